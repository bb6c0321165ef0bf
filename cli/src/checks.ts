/**
 * The checks of `edgefarm doctor`: each runs in turn, its result printed as it ends (`✓` ok, `!` warning, `✗` failure,
 * `-` skipped) with a one-line fix hint, and recorded. Warnings do not fail the run; any failure makes it exit 1.
 */
import { CliError, EXIT } from './errors.js';
import { structured, type Format, type Streams } from './output.js';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  check: string;
  status: CheckStatus;
  /** What was found, one line. */
  detail: string;
  /** What to do about it (warn and fail). */
  hint?: string;
}

/** What a check returns: its findings without its name. */
export type Finding = Omit<CheckResult, 'check'>;

export interface Check {
  name: string;
  run(): Promise<Finding | Finding[]>;
}

export const ok = (detail: string): Finding => ({ status: 'ok', detail });
export const warn = (detail: string, hint: string): Finding => ({ status: 'warn', detail, hint });
export const fail = (detail: string, hint: string): Finding => ({ status: 'fail', detail, hint });
export const skip = (detail: string): Finding => ({ status: 'skip', detail });

const MARK: Record<CheckStatus, string> = { ok: '✓', warn: '!', fail: '✗', skip: '-' };

/** One printed line (and its hint line) of a result. */
export function formatResult(r: CheckResult): string {
  const line = `${MARK[r.status]} ${r.check}: ${r.detail}\n`;
  return r.hint && (r.status === 'warn' || r.status === 'fail') ? `${line}    fix: ${r.hint}\n` : line;
}

/** Strips control characters from text that came from outside (a server's answer, a file) before printing it. */
export function clean(text: string, max = 200): string {
  // eslint-disable-next-line no-control-regex
  const t = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max)}...` : t;
}

/**
 * Runs the checks in order, each one's result printed as it ends: on stdout for the table format, on stderr when
 * stdout carries JSON or YAML (printed at the end). A check that throws is a failure. Throws a CliError (EXIT.failed)
 * when any check failed.
 */
export async function runChecks(streams: Streams, title: string, checks: Check[], format: Format): Promise<CheckResult[]> {
  const progress = format === 'json' || format === 'yaml' ? streams.err : streams.out;
  progress(`${title}\n`);
  const results: CheckResult[] = [];
  for (const c of checks) {
    let found: Finding[];
    try {
      const f = await c.run();
      found = Array.isArray(f) ? f : [f];
    } catch (err) {
      found = [fail(clean((err as Error).message), 'see the message; rerun with the same arguments once it is fixed')];
    }
    for (const f of found) {
      const r: CheckResult = { check: c.name, ...f };
      results.push(r);
      progress(formatResult(r));
    }
  }
  const failed = results.filter((r) => r.status === 'fail').length;
  const warned = results.filter((r) => r.status === 'warn').length;
  const data = structured(format, { ok: failed === 0, failed, warnings: warned, checks: results });
  if (data) streams.out(data);
  else progress(`${failed === 0 ? 'all good' : `${failed} failed`}${warned ? `, ${warned} warning(s)` : ''}\n`);
  if (failed > 0) throw new CliError(EXIT.failed, `${failed} check(s) failed`);
  return results;
}
