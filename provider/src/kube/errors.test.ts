import { ApiException } from '@kubernetes/client-node';
import { ApiError } from './fake.js';
import { isAlreadyExists, isConflict, isNotFound, statusReasonOf } from './errors.js';

/** What @kubernetes/client-node 2.x throws for an error response: the Status body as the text it read. */
const apiException = (code: number, reason?: string) =>
  new ApiException<string>(
    code,
    'Unknown API Status Code!',
    JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'm', reason, code }),
    {},
  );

describe('API error classification', () => {
  it('tells a 409 AlreadyExists from a 409 Conflict by the Status reason', () => {
    const exists = apiException(409, 'AlreadyExists');
    const conflict = apiException(409, 'Conflict');
    expect([isAlreadyExists(exists), isConflict(exists)]).toEqual([true, false]);
    expect([isAlreadyExists(conflict), isConflict(conflict)]).toEqual([false, true]);
  });

  it('reads the reason from a body that is already an object', () => {
    const e = Object.assign(new Error('x'), { code: 409, body: { kind: 'Status', reason: 'AlreadyExists' } });
    expect(isAlreadyExists(e)).toBe(true);
    expect(isConflict(e)).toBe(false);
  });

  it('falls back to the HTTP code only when there is no reason the API defines (as client-go)', () => {
    const bare = Object.assign(new Error('conflict'), { code: 409 });
    expect(isConflict(bare)).toBe(true);
    expect(isAlreadyExists(bare)).toBe(false); // AlreadyExists is never guessed from the code
    expect(isConflict(apiException(409, 'SomethingNew'))).toBe(true);
    expect(isConflict(Object.assign(new Error('x'), { code: 409, body: 'not json' }))).toBe(true);
    expect(isNotFound(Object.assign(new Error('x'), { statusCode: 404 }))).toBe(true);
    expect(isNotFound(Object.assign(new Error('x'), { response: { statusCode: 404 } }))).toBe(true);
    expect(isNotFound(apiException(404, 'NotFound'))).toBe(true);
    expect(isNotFound(apiException(409, 'NotFound'))).toBe(true); // the reason decides
    expect(isConflict(apiException(404))).toBe(false);
  });

  it('is false for anything that is not an API error', () => {
    for (const e of [undefined, null, 'conflict', new Error('409 Conflict'), { code: '409' }]) {
      expect([isNotFound(e), isConflict(e), isAlreadyExists(e)]).toEqual([false, false, false]);
    }
  });

  it("the fake API's errors carry the reasons the apiserver gives", () => {
    expect(statusReasonOf(new ApiError(409, 'exists', 'AlreadyExists'))).toBe('AlreadyExists');
    expect(statusReasonOf(new ApiError(409, 'conflict'))).toBe('Conflict');
    expect(statusReasonOf(new ApiError(404, 'not found'))).toBe('NotFound');
  });
});
