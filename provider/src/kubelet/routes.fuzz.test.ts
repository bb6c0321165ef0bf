// Kubelet API request targets and queries (routes.ts, auth.ts requestAttributes): only the module's own errors, and
// never a path routed as one endpoint and authorized as another.
import { fc, fuzzDecoder, fuzzProperty, hostileString } from '@edgefarm/testing/fuzz';
import { requestAttributes } from './auth.js';
import {
  BadRequestError,
  parseCommand,
  parseKubeletPath,
  parseLogOptions,
  parsePodRoute,
  parsePort,
  parsePorts,
  parseStreamOptions,
  type KubeletPath,
} from './routes.js';

const PREFIXES = ['/stats', '/metrics', '/logs', '/spec', '/exec', '/attach', '/portForward', '/containerLogs', '/pods', '/healthz', ''];
const SEGMENTS = ['..', '.', '%2e%2e', '%2E.', '%2f', '%5c', '', 'ns', 'web', 'app', 'uid-1', 'summary', 'resource', 'a%20b', '%00', '\\'];

/** Targets: hostile strings, and paths assembled from kubelet prefixes and tricky segments, with hostile queries. */
const targets: fc.Arbitrary<string> = fc.oneof(
  hostileString(),
  fc.tuple(hostileString(), hostileString()).map(([p, q]) => `/${p}?${q}`),
  fc
    .tuple(
      fc.constantFrom(...PREFIXES),
      fc.array(fc.oneof(fc.constantFrom(...SEGMENTS), hostileString('./%2e%2f%5cabc')), { maxLength: 6 }),
      fc.option(hostileString('?&=%;,#0123456789portcommandinputoutput'), { nil: undefined }),
    )
    .map(([prefix, segs, q]) => `${prefix}/${segs.join('/')}${q === undefined ? '' : `?${q}`}`),
);

/** The subresource the kubelet's auth.go would pick for a path, by its first segment. */
const subresourceOf = (attrsPath: KubeletPath | string) => requestAttributes('GET', attrsPath, 'edge-1').resource?.subresource;

describe('kubelet API paths under fuzzing', () => {
  it('parseKubeletPath throws only BadRequestError; its canonical path parses back to the same segments', () => {
    fuzzDecoder('kubelet parseKubeletPath', {
      inputs: targets,
      decode: (t) => parseKubeletPath(t),
      errors: [BadRequestError],
      check: (_t, out) => {
        const p = out as KubeletPath;
        const again = parseKubeletPath(p.search ? `${p.pathname}?${p.search}` : p.pathname);
        if (JSON.stringify(again.segments) !== JSON.stringify(p.segments)) return false;
        if (p.segments.some((s) => s === '.' || s === '..' || s.includes('/') || s.includes('\\'))) return false;
        // What a URL-based router would make of the canonical path is the path itself: no normalization left.
        return new URL(p.pathname, 'https://kubelet').pathname === p.pathname;
      },
    });
  });

  it('routing and authorization read the same path: the route and the subresource of the raw target and of the canonical one agree', () => {
    fuzzProperty('kubelet route = authorize', [targets], (t) => {
      let p: KubeletPath;
      try {
        p = parseKubeletPath(t);
      } catch (err) {
        if (!(err instanceof BadRequestError)) throw err;
        // Refused: authorization refuses it too (never authorized as something else).
        try {
          requestAttributes('GET', t, 'edge-1');
        } catch (e) {
          return e instanceof BadRequestError;
        }
        return false;
      }
      const canonical = p.search ? `${p.pathname}?${p.search}` : p.pathname;
      if (subresourceOf(t) !== subresourceOf(p) || subresourceOf(canonical) !== subresourceOf(p)) return false;
      // The subresource follows the first segment the route is chosen by.
      const first = p.segments[0];
      const want =
        new Map([
          ['stats', 'stats'],
          ['metrics', 'metrics'],
          ['logs', 'log'],
          ['spec', 'spec'],
        ]).get(first ?? '') ?? 'proxy';
      if (subresourceOf(p) !== want) return false;
      let route: unknown;
      let routeAgain: unknown;
      try {
        route = parsePodRoute(p);
      } catch (err) {
        if (!(err instanceof BadRequestError)) throw err;
        route = 'refused';
      }
      try {
        routeAgain = parsePodRoute(canonical);
      } catch (err) {
        if (!(err instanceof BadRequestError)) throw err;
        routeAgain = 'refused';
      }
      if (JSON.stringify(route) !== JSON.stringify(routeAgain)) return false;
      // A pod route is never authorized as stats, metrics, log or spec.
      return route === undefined || route === 'refused' || subresourceOf(p) === 'proxy';
    });
  });

  it('query parsers throw only BadRequestError', () => {
    const queries = fc.oneof(
      hostileString('=&%;,+0123456789-'),
      fc
        .array(
          fc.tuple(
            fc.constantFrom(
              'port',
              'command',
              'input',
              'output',
              'error',
              'tty',
              'follow',
              'tailLines',
              'sinceSeconds',
              'sinceTime',
              'limitBytes',
              'previous',
              'timestamps',
            ),
            hostileString('0123456789,-:TZ.+%'),
          ),
          { maxLength: 8 },
        )
        .map((kv) => kv.map(([k, v]) => `${k}=${v}`).join('&')),
    );
    fuzzDecoder('kubelet query parsers', {
      inputs: queries,
      decode: (s) => {
        const q = new URLSearchParams(s);
        const out: unknown[] = [];
        for (const f of [parseLogOptions, parseStreamOptions, parseCommand, parsePorts] as ((q: URLSearchParams) => unknown)[]) {
          try {
            out.push(f(q));
          } catch (err) {
            if (!(err instanceof BadRequestError)) throw err;
          }
        }
        for (const v of q.getAll('port')) out.push(parsePort(v));
        return out;
      },
      errors: [BadRequestError],
      check: (s) => {
        const q = new URLSearchParams(s);
        let ports: number[];
        try {
          ports = parsePorts(q);
        } catch {
          return true;
        }
        return ports.every((p) => Number.isInteger(p) && p >= 1 && p <= 65535);
      },
    });
  });
});
