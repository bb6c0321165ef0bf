#!/usr/bin/env node
/**
 * The fleet identity for scripts (hack/): made once per instance into a directory, then read.
 *
 *   node identity/dist/cli.js init --dir D [--desired-consumers N]
 *       makes the fleet (store.ts layout: seeds 0600, directory 0700) unless D already holds one; prints the
 *       operator's and the accounts' public keys
 *   node identity/dist/cli.js hub-config --dir D --name NAME --listen H:P --monitor 127.0.0.1:P --leaf H:P
 *       [--cluster H:P --route nats-route://H:P ...] --cert F --key F --ca F
 *       --store DIR --resolver-dir DIR [--out FILE]
 *       renders a hub member's configuration (renderHubConfig) from D's operator and account JWTs
 *   node identity/dist/cli.js provider-creds --dir D
 *       prints EF_NATS_DESIRED_CREDS=<file> and EF_NATS_CLOUD_CREDS=<file> (the provider's two users)
 *   node identity/dist/cli.js node-creds --dir D --node NAME --out DIR [--days N]
 *       a node identity without the registrar (tests, scripts): DIR/node.nk and DIR/node.creds (0600), signed by
 *       the node signer, expiring in N days (default 30); prints the node's wire id (its public key)
 *   node identity/dist/cli.js hollow-creds --dir D --out FILE
 *       BENCH ONLY (make bench): the hollow site's leaf user, every node's subjects behind one leaf
 *
 * Prints no seed. Exit code 2 for a bad use or refused input, 1 for anything else.
 */
import { runCli } from './cli-commands.js';

process.exitCode = await runCli(
  process.argv.slice(2),
  (s) => process.stdout.write(s),
  (s) => process.stderr.write(s),
);
