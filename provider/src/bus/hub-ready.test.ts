import { JetStreamApiError } from '@nats-io/jetstream';
import { isJetStreamNotReady } from './hub.js';

describe('isJetStreamNotReady (a hub cluster still forming: the provider waits instead of exiting)', () => {
  it.each([
    [
      'JetStream not enabled for the account (client check)',
      Object.assign(new Error('JetStream not enabled for account'), { name: 'JetStreamNotEnabled' }),
    ],
    [
      'JetStream not enabled for the account (API 10039)',
      new JetStreamApiError({ code: 503, err_code: 10039, description: 'jetstream not enabled for account' }),
    ],
    [
      'temporarily unavailable (503)',
      new JetStreamApiError({ code: 503, err_code: 10008, description: 'JetStream system temporarily unavailable' }),
    ],
    ['no responders', Object.assign(new Error('503'), { name: 'NoRespondersError' })],
    ['a request timing out (no meta leader yet)', Object.assign(new Error('timeout'), { name: 'TimeoutError' })],
  ])('waits on %s', (_what, err) => expect(isJetStreamNotReady(err)).toBe(true));

  it.each([
    ['stream not found', new JetStreamApiError({ code: 404, err_code: 10059, description: 'stream not found' })],
    ['a bad configuration', new JetStreamApiError({ code: 400, err_code: 10052, description: 'stream configuration invalid' })],
    ['an authorization failure', new Error('Permissions Violation for Publish to "$JS.API.STREAM.UPDATE.EF_STATUS"')],
  ])('fails at once on %s', (_what, err) => expect(isJetStreamNotReady(err)).toBe(false));
});
