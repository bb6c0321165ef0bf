# Pinned versions of every component EdgeFarm builds or installs. Sourced by hack/ scripts.
# Kubernetes 1.33: the preinstalled kubectl dispatcher carries a 1.33 client, so no kubectl build is needed.
K8S_VERSION=v1.33.13
ETCD_VERSION=v3.5.35
NATS_VERSION=v2.12.15
COREDNS_VERSION=v1.15.0
NODE_VERSION=24.21.0
# Where built binaries live, outside the repo so warm runs and fresh clones reuse them.
EF_CACHE=${EF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgefarm}
EF_BIN=$EF_CACHE/bin
PROMETHEUS_OPERATOR_VERSION=v0.85.0  # its ServiceMonitor and PrometheusRule CRDs validate manifests/components/monitoring (hack/lint-manifests.sh)
