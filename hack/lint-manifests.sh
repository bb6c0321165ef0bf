#!/usr/bin/env bash
# Checks the shipped manifests (manifests/: crds, base, components/monitoring, overlays/local and pod-network):
#   hack/lint-manifests.sh render           every kustomization renders (kubectl kustomize), the base with the
#                                           monitoring component too; no Secret and no certificate in what renders
#                                           (make lint)
#   hack/lint-manifests.sh server KUBECONFIG   server-side dry-run apply of each rendering on a real cluster, after
#                                           the Prometheus Operator's ServiceMonitor and PrometheusRule CRDs (from its
#                                           Go module at $PROMETHEUS_OPERATOR_VERSION) are applied there (e2e). Each
#                                           is checked as a new install (namespace edgefarm-lint, names prefixed
#                                           lint-, the namespace made for the check and removed): the cluster may run
#                                           EdgeFarm already, and a dry run over it would check an update instead.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/versions.sh"
root=$(cd "$here/.." && pwd)
m=$root/manifests
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# The base with the monitoring component, as a user's overlay adds it.
mkdir -p "$tmp/monitoring"
printf 'resources: [%s]\ncomponents: [%s]\n' "$(realpath --relative-to="$tmp/monitoring" "$m/base")" \
  "$(realpath --relative-to="$tmp/monitoring" "$m/components/monitoring")" > "$tmp/monitoring/kustomization.yaml"
targets=("$m/crds" "$m/base" "$tmp/monitoring" "$m/overlays/local" "$m/overlays/pod-network")
name() { case "$1" in "$tmp"/*) echo "base + components/monitoring" ;; *) echo "${1#"$root/"}" ;; esac; }

render() {
  local t out
  for t in "${targets[@]}"; do
    out=$tmp/$(echo "$(name "$t")" | tr '/ +' '___').yaml
    kubectl kustomize "$t" > "$out" || { echo "error: $(name "$t") does not render" >&2; exit 1; }
    # Nothing made at render time: no Secret, no key or certificate (Argo CD would see drift on every render).
    if grep -qE '^kind: Secret$|BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)' "$out"; then
      echo "error: $(name "$t") renders a Secret or a certificate: those are the install's, not the manifests'" >&2; exit 1
    fi
    echo "[manifests] $(name "$t"): $(grep -c '^kind:' "$out") objects render"
  done
}

server() {
  local kubeconfig=$1 po t
  export PATH=/usr/local/go/bin:$PATH
  po=$(cd "$tmp" && go mod init lint >/dev/null 2>&1 && GOFLAGS=-mod=mod go mod download -json \
    "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" | jq -r .Dir)
  [ -d "$po/example/prometheus-operator-crd" ] || { echo "error: no CRDs in the prometheus-operator module at $po" >&2; exit 1; }
  for c in servicemonitors prometheusrules; do
    kubectl --kubeconfig "$kubeconfig" apply --server-side --field-manager=edgefarm-lint \
      -f "$po/example/prometheus-operator-crd/monitoring.coreos.com_$c.yaml" >/dev/null
  done
  kubectl --kubeconfig "$kubeconfig" wait --for=condition=Established --timeout=30s \
    crd/servicemonitors.monitoring.coreos.com crd/prometheusrules.monitoring.coreos.com >/dev/null
  kubectl --kubeconfig "$kubeconfig" apply --server-side --dry-run=server --field-manager=edgefarm-lint -k "$m/crds" >/dev/null ||
    { echo "error: the server refuses manifests/crds" >&2; exit 1; }
  echo "[manifests] manifests/crds: server-side apply (dry run) accepted"
  kubectl --kubeconfig "$kubeconfig" create namespace edgefarm-lint --dry-run=client -o yaml |
    kubectl --kubeconfig "$kubeconfig" apply --server-side --field-manager=edgefarm-lint -f - >/dev/null
  local rc=0 d
  for t in "${targets[@]:1}"; do
    d=$tmp/lint-$(echo "$(name "$t")" | tr '/ +' '___')
    mkdir -p "$d"
    printf 'namespace: edgefarm-lint\nnamePrefix: lint-\nresources: [%s]\n' "$(realpath --relative-to="$d" "$t")" > "$d/kustomization.yaml"
    if kubectl --kubeconfig "$kubeconfig" apply --server-side --dry-run=server --field-manager=edgefarm-lint -k "$d" >/dev/null; then
      echo "[manifests] $(name "$t"): server-side apply (dry run, as a new install) accepted"
    else
      echo "error: the server refuses $(name "$t")" >&2; rc=1
    fi
  done
  kubectl --kubeconfig "$kubeconfig" delete namespace edgefarm-lint --wait=false >/dev/null
  return $rc
}

case "${1:-}" in
  render) render ;;
  server) [ -n "${2:-}" ] || { echo "usage: $0 server KUBECONFIG" >&2; exit 2; }; render; server "$2" ;;
  *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
