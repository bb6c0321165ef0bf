#!/usr/bin/env bash
# Builds the Go components EdgeFarm runs for real (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kube-proxy, etcd, nats-server, CoreDNS) from their Go modules at pinned versions, into $EF_BIN (outside the repo). Skips what is built already.
# `nats-arch amd64|arm64` cross-builds nats-server into $EF_BIN/linux-ARCH/ (the site package, arm64 images).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"
mkdir -p "$EF_BIN" "$EF_CACHE/src"
log() { printf '[build] %s\n' "$*"; }

# Prints `replace` lines for every module that $1 (a go.mod) replaces with a local path: a wrapper module must point
# them at released versions instead. The version is the one $1 requires, or $2 where it requires a placeholder v0.0.0; unrequired ones are skipped.
release_replaces() {
  awk -v fallback="$2" '
    /^require \(/ { inreq = 1; next }
    inreq && /^\)/ { inreq = 0; next }
    inreq && NF >= 2 { ver[$1] = $2 }
    /^require [^(]/ { ver[$2] = $3 }
    /=> \.\.?\// { mod = ($1 == "replace") ? $2 : $1; loc[mod] = 1 }
    END { for (m in loc) { v = ver[m]; if (v == "") continue; if (v == "v0.0.0") v = fallback; print "replace " m " => " m " " v } }
  ' "$1" | sort
}

stamp_ok() { [ -x "$EF_BIN/$1" ] && [ "$(cat "$EF_BIN/.$1.version" 2>/dev/null)" = "$2" ]; }
stamp() { echo "$2" > "$EF_BIN/.$1.version"; }
# all_stamped VERSION BIN...: every BIN is built at VERSION.
all_stamped() { local v=$1 b; shift; for b in "$@"; do stamp_ok "$b" "$v" || return 1; done; }
# The version stamps of Kubernetes binaries (what `--version` prints), as its own build sets them.
k8s_ldflags() {
  local minor=${K8S_VERSION#v1.}
  echo "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor%%.*} -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
}

# wrapper_module DIR NAME MODULE VERSION FALLBACK PKG...: a module edgefarm.local/NAME in DIR that requires
# MODULE@VERSION and imports each PKG from tools.go, so `go build`/`go test -c` of MODULE's packages work although
# MODULE replaces modules with local paths (k8s.io/kubernetes its staging modules, etcd its own): those are pointed
# at released versions (release_replaces; FALLBACK where MODULE requires a placeholder v0.0.0). Not every such module
# is published at every patch release (the Go proxy has k8s.io/sample-apiserver only up to v0.33.5): a missing one
# is pointed at the newest published patch of the same minor. Then go mod tidy.
wrapper_module() {
  local dir=$1 name=$2 module=$3 version=$4 fallback=$5; shift 5
  local gomod mod ver newest pkg
  mkdir -p "$dir"
  rm -f "$dir/go.mod" "$dir/go.sum"
  gomod=$(cd "$dir" && GOFLAGS=-mod=mod go mod download -json "$module@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module edgefarm.local/$name"; echo
    grep -E '^go [0-9]' "$gomod"; echo
    echo "require $module $version"; echo
    release_replaces "$gomod" "$fallback"
  } > "$dir/go.mod"
  while read -r _ mod _ _ ver; do
    (cd "$dir" && GOFLAGS=-mod=mod go mod download "$mod@$ver" >/dev/null 2>&1) && continue
    newest=$(cd "$dir" && GOFLAGS=-mod=mod go list -m -versions "$mod" 2>/dev/null | tr ' ' '\n' | grep -E "^${ver%.*}\.[0-9]+$" | sort -t. -k3,3n | tail -1)
    [ -n "$newest" ] || { log "$name: $mod@$ver is not published and has no other ${ver%.*} release"; return 1; }
    log "$name: $mod@$ver is not published; using $newest"
    sed -i "s#^replace $mod => $mod $ver\$#replace $mod => $mod $newest#" "$dir/go.mod"
  done < <(grep '^replace ' "$dir/go.mod")
  { printf '//go:build tools\n\npackage tools\n\nimport (\n'; for pkg in "$@"; do printf '\t_ "%s"\n' "$pkg"; done; printf ')\n'; } > "$dir/tools.go"
  (cd "$dir" && log "$name: go mod tidy (downloads modules)" && go mod tidy -e >/dev/null 2>&1 || true)
}

build_k8s() {
  # kubelet: the local stack's cloud node, where the provider, the registrar and the hub run as pods (~7.5 min cold).
  # kube-proxy: the pod network's Services on the cloud node when EF_CLOUD_NET=pod (hack/cloud-node.sh).
  local bins="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy" b
  all_stamped "$K8S_VERSION" $bins && { log "kubernetes $K8S_VERSION: cached"; return; }
  local minor=${K8S_VERSION#v1.}; local staging="v0.${minor}"
  local dir="$EF_CACHE/src/k8s-$K8S_VERSION"
  log "kubernetes $K8S_VERSION: resolving module (staging modules at $staging)"
  wrapper_module "$dir" k8sbuild k8s.io/kubernetes "$K8S_VERSION" "$staging" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
  (cd "$dir" && GOFLAGS=-mod=mod go get "k8s.io/kubernetes@$K8S_VERSION" >/dev/null 2>&1 || true)
  for b in $bins; do
    if stamp_ok "$b" "$K8S_VERSION"; then continue; fi
    log "kubernetes: building $b (several minutes on 2 cores)"
    (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$(k8s_ldflags)" -o "$EF_BIN/$b" "k8s.io/kubernetes/cmd/$b")
    stamp "$b" "$K8S_VERSION"
  done
}

# The upstream node conformance suite (make conformance): the Kubernetes e2e test binary, agnhost (the suite's test
# server), nnp and the ginkgo CLI, from the same pinned module through their own wrapper module (test packages pull
# in ginkgo/gomega, which the control-plane wrapper does not need). The e2e binary is the slowest of them (4.5 minutes
# cold on 2 cores with the module cache warm); all are cached in $EF_BIN like the rest.
build_conformance() {
  local b
  all_stamped "$K8S_VERSION" e2e.test agnhost nnp ginkgo && { log "conformance $K8S_VERSION: cached"; return; }
  local minor=${K8S_VERSION#v1.} dir="$EF_CACHE/src/k8s-e2e-$K8S_VERSION"
  log "conformance $K8S_VERSION: resolving module"
  wrapper_module "$dir" k8se2e k8s.io/kubernetes "$K8S_VERSION" "v0.${minor}" \
    github.com/onsi/ginkgo/v2/ginkgo k8s.io/kubernetes/test/e2e k8s.io/kubernetes/test/images/agnhost k8s.io/kubernetes/test/images/nonewprivs
  # agnhost (the suite's test server), nnp (the nonewprivs image's setuid program), and the ginkgo CLI at the
  # version the module requires (it runs the e2e binary in parallel processes).
  local pkg
  for pkg in k8s.io/kubernetes/test/images/agnhost:agnhost k8s.io/kubernetes/test/images/nonewprivs:nnp github.com/onsi/ginkgo/v2/ginkgo:ginkgo; do
    b=${pkg##*:}; stamp_ok "$b" "$K8S_VERSION" && continue
    log "conformance: building $b"
    (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$EF_BIN/$b" "${pkg%:*}")
    stamp "$b" "$K8S_VERSION"
  done
  if ! stamp_ok e2e.test "$K8S_VERSION"; then
    log "conformance: building the e2e test binary (several minutes on 2 cores)"
    (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go test -c -trimpath -ldflags "$(k8s_ldflags)" -o "$EF_BIN/e2e.test" k8s.io/kubernetes/test/e2e)
    stamp e2e.test "$K8S_VERSION"
  fi
}

build_etcd() {
  if stamp_ok etcd "$ETCD_VERSION"; then log "etcd $ETCD_VERSION: cached"; return; fi
  local dir="$EF_CACHE/src/etcd-$ETCD_VERSION"
  log "etcd $ETCD_VERSION: building"
  # etcd's server module carries replace directives, so `go install` refuses it: use a wrapper module.
  wrapper_module "$dir" etcdbuild go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "$ETCD_VERSION" go.etcd.io/etcd/server/v3
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$EF_BIN/etcd" go.etcd.io/etcd/server/v3)
  stamp etcd "$ETCD_VERSION"
}

build_nats() {
  if stamp_ok nats-server "$NATS_VERSION"; then log "nats-server $NATS_VERSION: cached"; return; fi
  log "nats-server $NATS_VERSION: building"
  GOBIN="$EF_BIN" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "github.com/nats-io/nats-server/v2@$NATS_VERSION"
  stamp nats-server "$NATS_VERSION"
}

# nats-server for another architecture (the site package, images for arm64 nodes): GOARCH=amd64|arm64, static
# (CGO_ENABLED=0), into $EF_BIN/linux-ARCH/nats-server, stamped like the rest. The same module and flags as build_nats.
build_nats_arch() {
  local arch=$1 out
  case "$arch" in amd64|arm64) ;; *) echo "usage: $0 nats-arch amd64|arm64" >&2; exit 2 ;; esac
  out=$EF_BIN/linux-$arch
  if [ -x "$out/nats-server" ] && [ "$(cat "$out/.nats-server.version" 2>/dev/null)" = "$NATS_VERSION" ]; then
    log "nats-server $NATS_VERSION linux/$arch: cached"; return
  fi
  log "nats-server $NATS_VERSION linux/$arch: building"
  mkdir -p "$out" "$EF_CACHE/src/nats-build"
  # `go install` refuses GOBIN with a cross GOARCH: build through a throwaway module instead.
  (cd "$EF_CACHE/src/nats-build" && rm -f go.mod go.sum && go mod init edgefarm.local/natsbuild >/dev/null 2>&1 &&
    GOFLAGS=-mod=mod go get "github.com/nats-io/nats-server/v2@$NATS_VERSION" >/dev/null 2>&1 &&
    GOOS=linux GOARCH=$arch CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$out/nats-server" github.com/nats-io/nats-server/v2)
  echo "$NATS_VERSION" > "$out/.nats-server.version"
}

# CoreDNS: the cluster DNS of the cloud node's pod network (EF_CLOUD_NET=pod: the hub members find each other by
# their StatefulSet names). Its module has no replace directives: `go install` builds it (~3 min cold on 2 cores).
build_coredns() {
  if stamp_ok coredns "$COREDNS_VERSION"; then log "coredns $COREDNS_VERSION: cached"; return; fi
  log "coredns $COREDNS_VERSION: building (a few minutes on 2 cores)"
  GOBIN="$EF_BIN" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
  stamp coredns "$COREDNS_VERSION"
}

what=${1:-all}
case "$what" in
  all) build_nats; build_etcd; build_k8s; build_coredns ;;
  nats) build_nats ;; etcd) build_etcd ;; k8s) build_k8s ;; coredns) build_coredns ;; conformance) build_conformance ;;
  nats-arch) [ $# -eq 2 ] || { echo "usage: $0 nats-arch amd64|arm64" >&2; exit 2; }; build_nats_arch "$2"; log "done: $EF_BIN/linux-$2/nats-server"; exit 0 ;;
  *) echo "usage: $0 [all|nats|etcd|k8s|coredns|conformance|nats-arch amd64|arm64]" >&2; exit 2 ;;
esac
log "done: $(ls "$EF_BIN" | tr '\n' ' ')"
