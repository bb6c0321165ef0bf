#!/usr/bin/env bash
# Builds the site package: everything an edge node runs besides containerd, for Debian-family systems and as a tarball
# for the others (docs/reference/package.md):
#
#   build/package/edgefarm-site_<version>_<arch>.deb      dpkg-deb --root-owner-group -Zxz
#   build/package/edgefarm-site_<version>_<arch>.tar.gz   the same tree + install.sh, uninstall.sh, files.txt
#
# for amd64 and arm64: Node $NODE_VERSION (hack/node-dist.sh), nats-server $NATS_VERSION cross-built
# (hack/build-binaries.sh nats-arch), the edge-agent and cli bundles (hack/bundle.sh), the wrappers, the two systemd
# units, the containerd and CNI configuration, and the maintainer scripts, all from packaging/site/. The version is
# the root package.json's (edge-agent's while the root has none). Every unit is checked with systemd-analyze verify.
# Byte-reproducible: every mtime is SOURCE_DATE_EPOCH (default: the last commit's time), owners are root, the tarball
# is sorted and gzip -n; the same inputs (and EF_PACKAGE_COMMIT, default HEAD) give the same .deb and .tar.gz.
#
# Usage: hack/package.sh [--arch amd64|arm64|all]      (default all)
#        hack/package.sh --tree DIR                     only the installed tree, for this machine's architecture,
#                                                       into DIR (make up's sites run from it); no .deb, no tarball
#   EF_PACKAGE_MAINTAINER="Name <mail>"   the Maintainer (default: a placeholder lintian flags)
#   EF_SKIP_BUNDLE=1   use build/bundle as it is instead of running hack/bundle.sh edge-agent cli first
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/hack/versions.sh"
. "$root/hack/node-dist.sh"
nodedir=$("$root/hack/ensure-node.sh")
export PATH="$nodedir:$PATH"
cd "$root"
log() { printf '[package] %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

arch=all tree=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tree) [ $# -ge 2 ] || die "--tree needs a directory"; tree=$2; shift 2 ;;
    --arch) [ $# -ge 2 ] || die "--arch needs amd64|arm64|all"; arch=$2; shift 2 ;;
    --arch=*) arch=${1#--arch=}; shift ;;
    *) echo "usage: $0 [--arch amd64|arm64|all]" >&2; exit 2 ;;
  esac
done
case "$arch" in all) arches=(amd64 arm64) ;; amd64|arm64) arches=("$arch") ;; *) die "--arch: amd64, arm64 or all, not $arch" ;; esac
for tool in dpkg-deb systemd-analyze; do
  command -v "$tool" >/dev/null || die "$tool is missing: apt-get install dpkg systemd"
done

version=$(node -p 'require("./package.json").version || require("./edge-agent/package.json").version')
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
# The commit named in the changelog (a build of a working tree with changes is named after its HEAD).
commit=${EF_PACKAGE_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
src=$root/packaging/site
# The Maintainer field and the changelog's signature (lintian asks for a real mail domain).
maintainer=${EF_PACKAGE_MAINTAINER:-EdgeFarm <edgefarm@localhost>}
out=$root/build/package
bundle=$root/build/bundle
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9

if [ "${EF_SKIP_BUNDLE:-0}" != 1 ]; then "$root/hack/bundle.sh" edge-agent cli; fi
for c in edge-agent cli; do
  [ -f "$bundle/$c/dist/main.js" ] && [ -f "$bundle/$c/package.json" ] || die "$bundle/$c is missing: hack/bundle.sh $c"
done

# stage_tree DIR ARCH: the installed tree of the package below DIR (no DEBIAN/).
stage_tree() {
  local d=$1 a=$2 nd nats
  nd=$(node_dist "$a")
  "$root/hack/build-binaries.sh" nats-arch "$a" >&2
  nats=$EF_BIN/linux-$a/nats-server
  install -d "$d/usr/bin" "$d/usr/lib/edgefarm/bin" "$d/usr/lib/systemd/system" "$d/usr/share/edgefarm/containerd" \
    "$d/usr/share/doc/edgefarm-site" "$d/etc/default" "$d/etc/cni/net.d"
  install -m 755 "$nd/bin/node" "$d/usr/lib/edgefarm/bin/node"
  install -m 755 "$nats" "$d/usr/lib/edgefarm/bin/nats-server"
  install -m 755 "$src/edgefarm-agent" "$d/usr/lib/edgefarm/bin/edgefarm-agent"
  install -m 755 "$src/edgefarm" "$d/usr/bin/edgefarm"
  # The agent's source map (stack traces in the TypeScript sources, EF_AGENT_NODE_FLAGS=--enable-source-maps);
  # the CLI's is left out (8 MB for a short-lived command).
  install -D -m 644 "$bundle/edge-agent/dist/main.js" "$d/usr/lib/edgefarm/edge-agent/dist/main.js"
  install -D -m 644 "$bundle/edge-agent/dist/main.js.map" "$d/usr/lib/edgefarm/edge-agent/dist/main.js.map"
  install -D -m 644 "$bundle/edge-agent/package.json" "$d/usr/lib/edgefarm/edge-agent/package.json"
  install -D -m 644 "$bundle/cli/dist/main.js" "$d/usr/lib/edgefarm/cli/dist/main.js"
  install -D -m 644 "$bundle/cli/package.json" "$d/usr/lib/edgefarm/cli/package.json"
  install -m 644 "$src/edgefarm-nats.service" "$src/edgefarm-agent.service" "$d/usr/lib/systemd/system/"
  install -m 644 "$src/containerd-config.toml" "$d/usr/share/edgefarm/containerd/config.toml"
  install -m 644 "$src/default-edgefarm-agent" "$d/etc/default/edgefarm-agent"
  install -m 644 "$src/10-edgefarm.conflist" "$d/etc/cni/net.d/10-edgefarm.conflist"
  install -m 644 "$root/docs/reference/package.md" "$d/usr/share/doc/edgefarm-site/package.md"
  sed "s/@NATS_VERSION@/$NATS_VERSION/; s/@NODE_VERSION@/$NODE_VERSION/" "$src/copyright" > "$d/usr/share/doc/edgefarm-site/copyright"
  chmod 644 "$d/usr/share/doc/edgefarm-site/copyright"
  install -m 644 "$nd/LICENSE" "$d/usr/share/doc/edgefarm-site/LICENSE.node"
  install -D -m 644 "$src/lintian-overrides" "$d/usr/share/lintian/overrides/edgefarm-site"
  printf 'edgefarm-site (%s) unstable; urgency=medium\n\n  * Built from EdgeFarm commit %s.\n\n -- %s  %s\n' \
    "$version" "$commit" "$maintainer" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")" |
    gzip -n -9 > "$d/usr/share/doc/edgefarm-site/changelog.gz"
  chmod 644 "$d/usr/share/doc/edgefarm-site/changelog.gz"
}

# verify_units DIR: systemd-analyze verify of the staged units, against this machine's systemd units (sysinit.target,
# containerd.service) with the packaged paths pointed into DIR (verify checks that every ExecStart is executable).
verify_units() {
  local d=$1 tmp msg rc=0 u
  tmp=$(mktemp -d)
  for u in edgefarm-nats.service edgefarm-agent.service; do
    sed "s#/usr/lib/edgefarm/#$d/usr/lib/edgefarm/#g" "$d/usr/lib/systemd/system/$u" > "$tmp/$u"
  done
  msg=$(cd "$tmp" && systemd-analyze verify "$tmp/edgefarm-nats.service" "$tmp/edgefarm-agent.service" 2>&1) || rc=$?
  rm -rf "$tmp"
  if [ "$rc" != 0 ] || [ -n "$msg" ]; then die "systemd-analyze verify (exit $rc): $msg"; fi
  log "systemd-analyze verify: edgefarm-nats.service edgefarm-agent.service: clean"
}

fix_mtimes() { find "$1" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +; }

build_arch() {
  local a=$1 t0 stage deb tgz tdir size
  t0=$(date +%s)
  stage=$out/.stage-$a
  rm -rf "$stage"
  mkdir -p "$stage/deb"
  stage_tree "$stage/deb" "$a"
  verify_units "$stage/deb"
  # DEBIAN/
  install -d -m 755 "$stage/deb/DEBIAN"
  install -m 755 "$src/postinst" "$src/prerm" "$src/postrm" "$stage/deb/DEBIAN/"
  printf '/etc/default/edgefarm-agent\n/etc/cni/net.d/10-edgefarm.conflist\n' > "$stage/deb/DEBIAN/conffiles"
  (cd "$stage/deb" && find usr -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum) > "$stage/deb/DEBIAN/md5sums"
  size=$(du -sk --apparent-size --exclude=DEBIAN "$stage/deb" | cut -f1)
  sed "s/@VERSION@/$version/; s/@ARCH@/$a/; s/@SIZE@/$size/; s/@MAINTAINER@/$maintainer/" "$src/control" > "$stage/deb/DEBIAN/control"
  chmod 644 "$stage/deb/DEBIAN/control" "$stage/deb/DEBIAN/conffiles" "$stage/deb/DEBIAN/md5sums"
  fix_mtimes "$stage/deb"
  deb=$out/edgefarm-site_${version}_$a.deb
  dpkg-deb --root-owner-group -Zxz --build "$stage/deb" "$deb.tmp" >/dev/null
  mv -f "$deb.tmp" "$deb"
  # The tarball: the same tree, install.sh, uninstall.sh and the list of files below usr/.
  tdir=edgefarm-site_${version}_$a
  mkdir -p "$stage/tar/$tdir"
  cp -a "$stage/deb/usr" "$stage/deb/etc" "$stage/tar/$tdir/"
  for f in install.sh uninstall.sh; do
    sed "s/@VERSION@/$version/g; s/@ARCH@/$a/g" "$src/$f" > "$stage/tar/$tdir/$f"
    chmod 755 "$stage/tar/$tdir/$f"
  done
  (cd "$stage/tar/$tdir" && find usr \( -type f -o -type l \) | LC_ALL=C sort) > "$stage/tar/$tdir/files.txt"
  fix_mtimes "$stage/tar"
  tgz=$out/edgefarm-site_${version}_$a.tar.gz
  tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner -C "$stage/tar" -cf - "$tdir" |
    gzip -n -9 > "$tgz.tmp"
  mv -f "$tgz.tmp" "$tgz"
  rm -rf "$stage"
  log "$a: $(basename "$deb") $(stat -c %s "$deb") bytes, $(basename "$tgz") $(stat -c %s "$tgz") bytes, installed $size KiB ($(($(date +%s) - t0)) s)"
}

# --tree: the installed tree for this machine, replaced whole (a file the package no longer has goes too).
if [ -n "$tree" ]; then
  case "$tree" in /*) ;; *) die "--tree takes an absolute directory" ;; esac
  case "$(uname -m)" in x86_64) a=amd64 ;; aarch64) a=arm64 ;; *) die "no site package for $(uname -m)" ;; esac
  rm -rf "$tree.tmp"
  stage_tree "$tree.tmp" "$a"
  # the changelog names the commit: not a change of what runs
  if [ -d "$tree" ] && diff -rq -x changelog.gz "$tree.tmp" "$tree" >/dev/null 2>&1; then
    rm -rf "$tree.tmp"
    log "installed tree of edgefarm-site $version ($a) in $tree: up to date"
  else
    rm -rf "$tree"
    mv "$tree.tmp" "$tree"
    log "installed tree of edgefarm-site $version ($a) in $tree"
  fi
  exit 0
fi
for a in "${arches[@]}"; do build_arch "$a"; done
(cd "$out" && sha256sum -- *.deb *.tar.gz > SHA256SUMS)
log "done: $out"
