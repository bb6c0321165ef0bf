/**
 * Runs inside a site's network namespace (started by latency.ts with nsenter), against the site's leaf nats-server,
 * as the site's agent user (its nkey from the join directory: the only user a joined site's server has):
 *   - prints `D <ms> <subject>` for every message arriving in the site's desired stream (new messages only);
 *   - echoes every message on the node's session subject `ef.session.<wire id>.bench-echo.down` back on `...up`: the
 *     hub side measures the round trip through the leaf link on subjects the node's permissions allow (decision 0008).
 * Prints `READY` once both are in place. Exits when stdin closes.
 * argv: <node> <wire id> <agent seed file> [natsUrl]
 */
import { readFileSync } from 'node:fs';
import { connect, nkeyAuthenticator } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { Streams, sessionSubjects, siteInboxPrefix } from '@edgefarm/proto';
import { ECHO_SESSION } from './echo.js';
import { nowMs } from './stats.js';

const [node = 'edge-1', wireId = node, seedFile, url = 'nats://127.0.0.1:4222'] = process.argv.slice(2);
if (!seedFile) throw new Error('usage: site-probe.js <node> <wire id> <agent seed file> [natsUrl]');
const nc = await connect({
  servers: url,
  name: 'ef-bench-probe',
  authenticator: nkeyAuthenticator(new TextEncoder().encode(readFileSync(seedFile, 'utf8').trim())),
  inboxPrefix: siteInboxPrefix(wireId),
});
const up = sessionSubjects.of(wireId, ECHO_SESSION, 'up');
nc.subscribe(sessionSubjects.of(wireId, ECHO_SESSION, 'down'), { callback: (_err, m) => nc.publish(up, m.data) });
const consumer = await jetstream(nc).consumers.get(Streams.siteDesired(node), { deliver_policy: DeliverPolicy.New });
const messages = await consumer.consume();
await nc.flush();
process.stdout.write('READY\n');
process.stdin.resume();
process.stdin.on(
  'end',
  () =>
    void messages
      .close()
      .then(() => nc.close())
      .then(() => process.exit(0)),
);
for await (const m of messages) process.stdout.write(`D ${nowMs().toFixed(3)} ${m.subject}\n`);
