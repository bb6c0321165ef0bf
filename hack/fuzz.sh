#!/usr/bin/env bash
# make fuzz: every property of the `*.fuzz.test.ts` files with many more inputs than the unit suite runs
# (EF_FUZZ_RUNS, default 20000 per property; EF_FUZZ_SEED fixed unless given), then one summary: properties, inputs
# run, crashes found. Writes bench/results/fuzz-<time>.json. Exits non-zero when any property failed.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
ef_use_node
cd "$EF_ROOT"
export EF_FUZZ_RUNS=${EF_FUZZ_RUNS:-20000}
report=$(mktemp); trap 'rm -f "$report"' EXIT
export EF_FUZZ_REPORT=$report
rc=0
NODE_OPTIONS=--experimental-vm-modules node_modules/.bin/jest --selectProjects unit --testPathPatterns '\.fuzz\.test\.ts$' --forceExit "$@" || rc=$?
mkdir -p bench/results
out=bench/results/fuzz-$(date -u +%Y%m%dT%H%M%SZ).json
node -e '
const fs = require("node:fs");
const lines = fs.readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
const runs = lines.reduce((a, l) => a + l.runs, 0), failures = lines.reduce((a, l) => a + l.failures, 0);
const summary = { at: new Date().toISOString(), seed: lines[0]?.seed, runsPerProperty: Number(process.env.EF_FUZZ_RUNS), properties: lines.length, inputs: runs, crashes: failures, byProperty: lines };
fs.writeFileSync(process.argv[2], JSON.stringify(summary, null, 2) + "\n");
console.log(`fuzz: ${lines.length} properties, ${runs} inputs run, ${failures} crashes found (${process.argv[2]})`);
if (failures > 0) process.exitCode = 1;
' "$report" "$out" || rc=1
exit $rc
