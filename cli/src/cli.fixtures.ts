/** The unit tests' command line: run() on a {@link FakeCliKube} and a {@link FakeSiteProbe}, output captured. */
import { FakeCliKube } from './kube-fake.js';
import { FakeSiteProbe } from './probe-fake.js';
import { run } from './program.js';

export const NOW = Date.parse('2026-01-10T12:00:00Z');

export function fakeCli(files: Record<string, string> = {}, now = () => NOW) {
  const kube = new FakeCliKube();
  const probe = new FakeSiteProbe();
  const readInput = (file: string) =>
    file in files ? Promise.resolve(files[file]!) : Promise.reject(new Error(`ENOENT: no such file, open '${file}'`));
  const cli = async (...args: string[]) => {
    let out = '';
    let err = '';
    const code = await run(args, { out: (t) => (out += t), err: (t) => (err += t), now, kube: () => kube, readInput, probe });
    return { code, out, err };
  };
  return { kube, probe, cli };
}
