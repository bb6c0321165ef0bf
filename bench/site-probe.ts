/**
 * Runs inside a site's network namespace (started by run.ts with nsenter), against the site's leaf nats-server:
 *   - prints `D <ms> <subject>` for every message arriving in the site's desired stream (new messages only);
 *   - answers requests on `bench.echo` (the hub side measures the request-reply round trip through the leaf link).
 * Prints `READY` once both are in place. Exits when stdin closes. argv: <node> [natsUrl]
 */
import { connect } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { Streams } from '@edgefarm/proto';
import { nowMs } from './stats.js';

const node = process.argv[2] ?? 'edge-1';
const nc = await connect({ servers: process.argv[3] ?? 'nats://127.0.0.1:4222', name: 'ef-bench-probe' });
nc.subscribe('bench.echo', { callback: (_err, m) => void m.respond(m.data) });
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
