import { pino } from 'pino';
import type { StreamSession } from './edge-streams.js';
import { runSession } from './session.js';

async function* chunks(...cs: string[]): AsyncIterable<Uint8Array> {
  for (const c of cs) yield Buffer.from(c);
}

describe('runSession', () => {
  it('sends no empty output message (client-go may not have made the stream yet and logs it), only the bytes', async () => {
    const session: StreamSession = {
      stdout: chunks('', 'a', '', 'b'),
      stderr: chunks(''),
      writeStdin: () => Promise.resolve(),
      closeStdin: () => Promise.resolve(),
      resize: () => undefined,
      done: Promise.resolve({ exitCode: 0 }),
      close: () => undefined,
    };
    const written: [string, string][] = [];
    const statuses: string[] = [];
    const channel = (name: string) => ({
      write: (c: Uint8Array) => {
        written.push([name, Buffer.from(c).toString()]);
        return Promise.resolve();
      },
      end: () => Promise.resolve(),
    });
    await runSession(
      () => Promise.resolve(session),
      {
        stdout: channel('stdout'),
        stderr: channel('stderr'),
        status: (s) => {
          statuses.push(s.status ?? '');
          return Promise.resolve();
        },
        clientGone: new Promise(() => undefined),
      },
      pino({ level: 'silent' }),
    );
    expect(written).toEqual([
      ['stdout', 'a'],
      ['stdout', 'b'],
    ]);
    expect(statuses).toEqual(['Success']);
  });
});
