#!/usr/bin/env bash
# Installs and builds everything EdgeFarm needs on this machine, skipping what is there already:
#   1. Debian packages (containerd, runc, CNI plugins, busybox-static, bzip2, make, iptables, iproute2, openssl, gcc,
#      libc6-dev, curl, jq, python3, docker-registry, skopeo, apache2-utils)
#   2. Go components from their modules (hack/build-binaries.sh: kube-*, kubelet, etcd, nats-server) into $EF_BIN
#   3. Node.js 24 (hack/ensure-node.sh)
#   4. npm ci (when node_modules is missing or package-lock.json changed)
#   5. tsc -b (every workspace package into its dist/)
# Safe to run again: a warm run takes a few seconds. Non-interactive (CI=true, no stdin).
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
cd "$EF_ROOT"
t0=$SECONDS
say() { printf '[deps %3ss] %s\n' "$((SECONDS - t0))" "$*"; }

# 1. Debian packages. Beyond the runtime itself: curl (health checks), jq (hack/site.sh), python3 (hack/images.sh,
# make verify-proto); docker-registry (distribution 2.8, a real OCI registry for hack/registry.sh), skopeo (pushes the
# image archives of hack/images.sh into it), apache2-utils (htpasswd -B for the registry's basic auth) and gnuplot-nox
# (the growth-curve PNG of `make bench`, bench/plot.gp); bzip2 and make build upstream busybox for the conformance
# test images (hack/conformance-images.sh); binutils (readelf: the shared libraries an image's node needs,
# hack/cloud-images.sh); systemd for systemd-analyze (hack/package.sh verifies the site package's units with it; no
# systemd runs); python3-pymodbus (with python3-serial and python3-serial-asyncio, which it imports): the Modbus TCP
# server the Modbus mapper is tested against (mapper/).
PKGS="containerd runc containernetworking-plugins busybox-static bzip2 make iptables iproute2 openssl gcc libc6-dev curl jq python3 docker-registry skopeo apache2-utils gnuplot-nox binutils systemd python3-pymodbus python3-serial python3-serial-asyncio"
installed=" $(dpkg-query -W -f='${Package}:${Status}\n' $PKGS 2>/dev/null | sed -n 's/:install ok installed$//p' | tr '\n' ' ' || true) "
missing=()
for p in $PKGS; do case "$installed" in *" $p "*) ;; *) missing+=("$p") ;; esac; done
if [ ${#missing[@]} -eq 0 ]; then
  say "debian packages: all present"
else
  say "debian packages: installing ${missing[*]}"
  [ "$(id -u)" = 0 ] || ef_die "installing packages needs root (missing: ${missing[*]})"
  # No init system here: keep the packages' maintainer scripts from trying to start services (e.g. a system containerd).
  added_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; added_policy=1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq </dev/null
  apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold "${missing[@]}" </dev/null
  if [ $added_policy = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  say "debian packages: installed"
fi

# 2. Go components. Go is needed only when something is not built yet.
[ -x /usr/local/go/bin/go ] && export PATH="/usr/local/go/bin:$PATH"
stale=()
for b in nats-server:$NATS_VERSION etcd:$ETCD_VERSION kube-apiserver:$K8S_VERSION kube-controller-manager:$K8S_VERSION kube-scheduler:$K8S_VERSION kubelet:$K8S_VERSION kube-proxy:$K8S_VERSION coredns:$COREDNS_VERSION; do
  n=${b%%:*} v=${b#*:}
  { [ -x "$EF_BIN/$n" ] && [ "$(cat "$EF_BIN/.$n.version" 2>/dev/null)" = "$v" ]; } || stale+=("$n")
done
if [ ${#stale[@]} -eq 0 ]; then
  say "go components: all built in $EF_BIN (kubernetes $K8S_VERSION, etcd $ETCD_VERSION, nats-server $NATS_VERSION)"
else
  command -v go >/dev/null || ef_die "Go is not installed (expected /usr/local/go/bin/go): it is needed to build ${stale[*]} from their Go modules. Install Go (1.24 or newer) and run this again."
  mkdir -p "$EF_CACHE"
  # Someone else (another shell, another checkout) may be building right now: wait for it rather than race it.
  while others=$(pgrep -f 'build-binaries\.sh' | grep -vx "$$" || true); [ -n "$others" ]; do
    say "another build-binaries.sh is running (pid $(echo $others | tr '\n' ' ')); waiting for it"
    sleep 20
  done
  case " ${stale[*]} " in *kube-*) say "go components: building ${stale[*]} — Kubernetes takes ~10-15 min cold on 2 cores (cached in $EF_BIN afterwards)" ;;
    *) say "go components: building ${stale[*]}" ;; esac
  # A heartbeat, so a long silent `go build` does not look hung.
  ( while sleep 60; do say "still building (go build is quiet; see ps for progress)"; done ) & beat=$!
  trap 'kill $beat 2>/dev/null || true' EXIT
  flock "$EF_CACHE/.build.lock" "$EF_ROOT/hack/build-binaries.sh" all </dev/null
  kill $beat 2>/dev/null || true; trap - EXIT
  say "go components: built"
fi

# 3. Node.js 24.
nodedir=$("$EF_ROOT/hack/ensure-node.sh")
export PATH="$nodedir:$PATH"
say "node: $(node --version) ($nodedir)"

# 4. npm ci when node_modules is missing or older than the lockfile.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci (node_modules missing or package-lock.json changed)"
  npm ci --no-audit --no-fund </dev/null
  touch node_modules/.package-lock.json
else
  say "npm: node_modules up to date"
fi

# 5. TypeScript build of every package (EF_SKIP_TSC=1 skips it, e.g. while someone else's code does not compile).
if [ "${EF_SKIP_TSC:-0}" = 1 ]; then
  say "tsc -b: skipped (EF_SKIP_TSC=1)"
  for f in provider/dist/main.js edge-agent/dist/main.js proto/dist/names.js; do
    [ -f "$f" ] || ef_die "EF_SKIP_TSC=1, but there is no earlier build ($f is missing): run once without it"
  done
else
  say "tsc -b"
  node_modules/.bin/tsc -b || ef_die "tsc -b failed (type errors above); fix them, or EF_SKIP_TSC=1 to run on the last build"
fi
say "done"
