#!/usr/bin/env node
/**
 * The contract's names for shell scripts, made by the one module that makes them (subjects.ts), so that no script
 * encodes a name itself (hack/lib.sh ef_site_domain):
 *
 *   node proto/dist/names.js site-domain SITE     the JetStream domain of site SITE (siteDomain)
 *
 * Prints the name and a newline. Exit code 2 for a bad use, or a value no name can be made of.
 */
import { isSubjectError, siteDomain } from './subjects.js';

const commands: Record<string, (value: string) => string> = { 'site-domain': siteDomain };

const [command = '', value, ...rest] = process.argv.slice(2);
const make = commands[command];
if (!make || value === undefined || rest.length > 0) {
  process.stderr.write(`usage: names.js ${Object.keys(commands).join('|')} VALUE\n`);
  process.exit(2);
}
try {
  process.stdout.write(`${make(value)}\n`);
} catch (err) {
  if (!isSubjectError(err)) throw err;
  process.stderr.write(`names.js ${command}: ${err.message}\n`);
  process.exit(2);
}
