/**
 * What loading the agent costs: which of Node's own modules the built agent (edge-agent/dist, so run `tsc -b` first)
 * pulls in. Every module Node loads is memory for the agent's whole life (its source, its compiled code, the objects
 * it makes when it loads), and on an edge box that is what the agent is measured by (bench/README.md, agent footprint).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const INDEX = pathToFileURL(path.resolve(import.meta.dirname, '../dist/index.js')).href;

/** The built-in modules a fresh `node` has loaded after importing `url`. */
async function builtinsAfterImport(url: string): Promise<string[]> {
  const script = `await import(${JSON.stringify(url)}); process.stdout.write(JSON.stringify(process.moduleLoadList));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--lite-mode', '--input-type=module', '-e', script], { timeout: 30_000 });
  return (JSON.parse(stdout) as string[]).filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice('NativeModule '.length));
}

describe('agent footprint', () => {
  it("loads Node's gRPC and HTTP modules but not undici (fetch, WebSocket, EventSource)", async () => {
    const loaded = await builtinsAfterImport(INDEX);
    expect(loaded).toEqual(expect.arrayContaining(['http2', 'http', 'net']));
    // An ESM import of node:http loads undici (2.4 MiB); the agent takes http through require() (util/node-http.ts).
    expect(loaded.filter((m) => m.includes('undici'))).toEqual([]);
  }, 60_000);

  it('a plain ESM import of node:http does load undici: the check above can fail', async () => {
    const loaded = await builtinsAfterImport('node:http');
    expect(loaded.filter((m) => m.includes('undici'))).not.toEqual([]);
  }, 60_000);
});
