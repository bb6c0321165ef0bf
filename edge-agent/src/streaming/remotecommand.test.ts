import { describe, expect, it } from '@jest/globals';
import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import { isStreamRequestError } from './errors.js';
import { statusResult, validateExec } from './remotecommand.js';

describe('statusResult (remotecommand v4 error stream)', () => {
  it('maps Success, NonZeroExitCode and other failures', () => {
    expect(statusResult('{"metadata":{},"status":"Success"}')).toEqual({ exitCode: 0 });
    expect(statusResult('')).toEqual({ exitCode: 0 });
    expect(
      statusResult(
        '{"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 7], exit code 7","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}',
      ),
    ).toEqual({ exitCode: 7 });
    expect(statusResult('{"status":"Failure","message":"container not running"}')).toEqual({ exitCode: 1, error: 'container not running' });
    expect(statusResult('not json')).toEqual({ exitCode: 1, error: 'not json' });
  });
});

describe('validateExec', () => {
  const req = (over: { command?: string[]; stdout?: boolean }) =>
    create(edge.ExecRequestSchema, { command: ['sh'], stdout: true, ...over });
  it.each([
    [req({ command: [] }), false, /no command/],
    [req({ stdout: false }), false, /at least one of stdin, stdout, stderr/],
    [req({ command: ['x'.repeat(70_000)] }), false, /longer than/],
  ])('rejects %#', (r, attach, msg) => {
    let err: unknown;
    try {
      validateExec(r, attach);
    } catch (e) {
      err = e;
    }
    expect(isStreamRequestError(err) && err.code).toBe('BadRequest');
    expect((err as Error).message).toMatch(msg);
  });
  it('accepts attach without a command', () => {
    expect(() => validateExec(req({ command: [] }), true)).not.toThrow();
  });
});
