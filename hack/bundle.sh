#!/usr/bin/env bash
# Bundles the programs EdgeFarm ships into one file each, with esbuild, into build/bundle/<component>/:
#   dist/main.js      ESM for Node 24 (platform node, target node24), every dependency inlined, not minified (stack
#                     traces keep names and lines); a createRequire banner gives the CommonJS dependencies the
#                     require() of builtins they call
#   dist/main.js.map  its source map, a separate file (chained through tsc's maps to the .ts sources; use
#                     node --enable-source-maps to apply it)
#   package.json      {"name","version","type":"module"}: edge-agent reads ../package.json next to its entry for its
#                     version, and "type" keeps the file ESM wherever it is copied
# Why: a single file per component with no node_modules is what an image (hack/cloud-images.sh) and a site package can
# carry: 2-9 MB instead of a node_modules tree of ~300 MB, and the bytes depend only on the sources and the lock file.
#
# Components: provider, registrar, cli, edge-agent (default: all). Runs `tsc -b` on them first (EF_SKIP_TSC=1: use the
# last build). Reproducible: the same dist/ and node_modules give the same bytes (esbuild is deterministic; paths in
# the output are relative to the repository). Optional dependencies esbuild cannot resolve stay a require() inside
# the library's own try/catch (ws's bufferutil and utf-8-validate: ws falls back to JavaScript); nothing is marked
# external. Each bundle is started once as a check (cli --help; the services with a bad setting must exit 2 with
# a configuration error, not a module-resolution crash).
#
# Usage: hack/bundle.sh [COMPONENT...]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/hack/versions.sh"
nodedir=$("$root/hack/ensure-node.sh")
export PATH="$nodedir:$PATH"
cd "$root"

all=(provider registrar cli edge-agent)
[ $# -gt 0 ] || set -- "${all[@]}"
for c in "$@"; do
  case " ${all[*]} " in *" $c "*) ;; *) echo "usage: $0 [${all[*]}]..." >&2; exit 2 ;; esac
done
esbuild=$root/node_modules/.bin/esbuild
[ -x "$esbuild" ] || { echo "error: $esbuild is missing: npm ci" >&2; exit 1; }

out=$root/build/bundle
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9

if [ "${EF_SKIP_TSC:-0}" != 1 ]; then
  node_modules/.bin/tsc -b "$@"
fi

banner="import { createRequire as __efCreateRequire } from 'node:module'; const require = __efCreateRequire(import.meta.url);"

# check COMPONENT DIR: the bundle starts and fails the way the program does on bad input, not on a missing module.
# Run from a copy outside the repository, so nothing resolves from its node_modules.
checkdir=$(mktemp -d)
trap 'rm -rf "$checkdir"' EXIT
check() {
  local c=$1 dir=$checkdir/$1 rc=0 msg
  rm -rf "$dir"; cp -r "$2" "$dir"
  case $c in
    cli) msg=$(env -i PATH="$PATH" node "$dir/dist/main.js" --help 2>&1) || rc=$?
      [ "$rc" = 0 ] || { echo "error: bundle $c: --help exited $rc: $msg" >&2; return 1; } ;;
    *) # EF_LOG_LEVEL=nope: a bad setting, refused by every service's configuration parser (exit 2)
      msg=$(env -i PATH="$PATH" EF_LOG_LEVEL=nope timeout 20 node "$dir/dist/main.js" 2>&1) || rc=$?
      [ "$rc" = 2 ] && grep -q 'EF_LOG_LEVEL' <<<"$msg" ||
        { echo "error: bundle $c: expected exit 2 with a configuration error, got $rc: $msg" >&2; return 1; } ;;
  esac
}

for c in "$@"; do
  [ -f "$c/dist/main.js" ] || { echo "error: $c/dist/main.js is missing: run tsc -b" >&2; exit 1; }
  stage=$out/.$c.tmp
  rm -rf "$stage"
  mkdir -p "$stage/dist"
  "$esbuild" "$c/dist/main.js" --bundle --platform=node --target=node24 --format=esm --log-level=warning \
    --sourcemap=external --legal-comments=eof "--banner:js=$banner" --outfile="$stage/dist/main.js"
  node -e '
    const p = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    process.stdout.write(JSON.stringify({ name: p.name, version: p.version, type: "module" }, null, 2) + "\n");
  ' "$c/package.json" > "$stage/package.json"
  check "$c" "$stage"
  rm -rf "$out/$c"
  mv "$stage" "$out/$c"
  printf '[bundle] %-10s %s (%s bytes)\n' "$c" "build/bundle/$c/dist/main.js" "$(stat -c %s "$out/$c/dist/main.js")" >&2
done
