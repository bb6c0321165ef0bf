/** A hand-written {@link SiteProbe}: files, answers and failures set per call target; every call recorded. */
import type { SiteProbe } from './probe.js';

type Answer<T> = T | Error;

export class FakeSiteProbe implements SiteProbe {
  readonly files = new Map<string, string>();
  /** Per registrar URL: its clock (ms) and round trip, or an error. */
  readonly registrars = new Map<string, Answer<{ serverMs: number; roundTripMs: number }>>();
  /** Per leaf URL: what was negotiated, or an error; unlisted URLs refuse. */
  readonly leaves = new Map<string, Answer<string>>();
  /** Per http URL: status and body, or an error; unlisted URLs refuse. */
  readonly http = new Map<string, Answer<{ status: number; body: string }>>();
  /** Per CRI endpoint; unlisted endpoints refuse. */
  readonly cri = new Map<string, Answer<{ runtimeName: string; runtimeVersion: string }>>();
  readonly calls: string[] = [];

  private answer<T>(what: string, a: Answer<T> | undefined): T {
    this.calls.push(what);
    if (a === undefined) throw new Error(`connect ECONNREFUSED (${what})`);
    if (a instanceof Error) throw a;
    return a;
  }

  async readFile(file: string, maxBytes: number): Promise<string> {
    this.calls.push(`read ${file}`);
    const text = this.files.get(file);
    if (text === undefined) throw new Error(`ENOENT: no such file, open '${file}'`);
    if (text.length > maxBytes) throw new Error(`${file}: larger than ${maxBytes} bytes`);
    return text;
  }
  async registrarTime(url: string) {
    return this.answer(`registrar ${url}`, this.registrars.get(url));
  }
  async leafHandshake(url: string) {
    return this.answer(`leaf ${url}`, this.leaves.get(url));
  }
  async httpGet(url: string) {
    return this.answer(`get ${url}`, this.http.get(url));
  }
  async criVersion(endpoint: string) {
    return this.answer(`cri ${endpoint}`, this.cri.get(endpoint));
  }
}
