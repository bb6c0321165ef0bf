/**
 * Child processes for integration tests: started with their output in a log file, stopped by their own PID
 * (TERM, then KILL after a timeout). Never by name.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  alive(): boolean;
  /** TERM, then KILL after `timeoutMs`; resolves when it has exited. */
  stop(timeoutMs?: number): Promise<void>;
  /** Last lines of its log. */
  tail(lines?: number): string;
}

export interface SpawnOptions {
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export function spawnLogged(name: string, command: string, args: string[], options: SpawnOptions): ManagedProcess {
  const fd = openSync(options.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, { stdio: ['ignore', fd, fd], env: options.env ?? process.env, cwd: options.cwd });
  } finally {
    closeSync(fd);
  }
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  const pid = child.pid;
  let done = false;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      resolve(code ?? signal ?? -1);
    });
    child.once('error', () => {
      done = true;
      resolve(-1);
    });
  });
  return {
    name,
    pid,
    logFile: options.logFile,
    exited,
    alive: () => !done,
    async stop(timeoutMs = 10_000) {
      if (done) return;
      process.kill(pid, 'SIGTERM');
      const timer = setTimeout(() => {
        if (!done) process.kill(pid, 'SIGKILL');
      }, timeoutMs);
      await exited;
      clearTimeout(timer);
    },
    tail(lines = 30) {
      try {
        return readFileSync(options.logFile, 'utf8').split('\n').slice(-lines).join('\n');
      } catch {
        return '';
      }
    },
  };
}

/**
 * The kernel hands out source ports for outgoing connections from this range; a port picked from it with
 * listen(0) can be taken by any connect() on the machine between our check and the server's own bind (seen in CI:
 * nats-server "bind: address already in use" on such a port). Test servers therefore take ports below it.
 */
function ephemeralLow(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  } catch {
    return 32768;
  }
}

/** Below this the hack/ stacks live (EF_PORT_BASE 16000–21000 plus their offsets). */
const TEST_PORTS_FROM = 24000;

function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, '127.0.0.1', () => {
      const addr = srv.address();
      const bound = typeof addr === 'object' && addr ? addr.port : undefined;
      srv.close(() => resolve(bound));
    });
  });
}

/**
 * A TCP port that was free a moment ago on 127.0.0.1: a random one between the hack/ stacks' ports and the kernel's
 * ephemeral range (so outgoing connections cannot take it), or one the kernel picks when that window is missing or
 * full.
 */
export async function freePort(): Promise<number> {
  const high = ephemeralLow();
  for (let i = 0; high - TEST_PORTS_FROM > 100 && i < 50; i++) {
    const port = await tryListen(TEST_PORTS_FROM + Math.floor(Math.random() * (high - TEST_PORTS_FROM)));
    if (port) return port;
  }
  const port = await tryListen(0);
  if (!port) throw new Error('no free TCP port on 127.0.0.1');
  return port;
}

/** Thrown by a waitFor check to stop waiting at once (the process it waits for has exited). */
export class GiveUp extends Error {}

/** Polls `check` until it returns a truthy value or the timeout passes. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 15_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      if (err instanceof GiveUp) throw new Error(`gave up waiting for ${what}: ${err.message}`, { cause: err });
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
