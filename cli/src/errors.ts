/**
 * The `edgefarm` command's failures, each with the exit code scripts act on (cli/README.md lists them).
 */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  alreadyJoined: 3,
  unreachable: 4,
  caMismatch: 5,
  clockSkew: 6,
  tokenRefused: 7,
  nameTaken: 8,
  writeFailed: 9,
  kubeFailed: 10,
  notFound: 11,
  /** status: a listed node is disconnected or its Node is not Ready. */
  unhealthy: 12,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure the command reports in one line (no stack) and exits with `exitCode`. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    readonly exitCode: ExitCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
export const isCliError = (err: unknown): err is CliError => err instanceof CliError;
