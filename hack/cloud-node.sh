#!/usr/bin/env bash
# The local cluster's cloud node (EF_DEPLOY=cluster): a real kubelet (built from the same Kubernetes module as the
# control plane) with its own containerd, on this host, where the EdgeFarm pods of the shipped manifests run: the
# provider, the registrar and the NATS hub (docs/decisions/0011-install.md).
#
#   hack/cloud-node.sh up       containerd (hack/containerd-config.sh; pause and the EdgeFarm images imported), then
#                               kubelet registering Node $EF_CLOUD_NODE, tainted node-role.kubernetes.io/control-plane
#                               (only pods that tolerate it land there: user workloads go to edge nodes); waits Ready
#   hack/cloud-node.sh down     stops kubelet, then the pods' containers (TERM, then KILL), then containerd, by PID;
#                               up starts them again (the kubelet makes the pods anew)
#   hack/cloud-node.sh clean    removes every pod container and the node's state (hack/clean.sh)
#   hack/cloud-node.sh status   make status's lines
#
# Design, EF_CLOUD_NET=host (make up): the pods on this node use the host's network (hostNetwork: true): no
# kube-proxy and no CoreDNS run here, so they reach the apiserver at 127.0.0.1 (the overlay sets
# KUBERNETES_SERVICE_HOST) and listen on this instance's ports, where the sites dial them (the fleet address) exactly
# as with EF_DEPLOY=process. A CNI configuration exists all the same (a bridge in the host's namespace,
# $(ef_cloud_pod_cidr)): a kubelet reports the node Ready only when the runtime's network is.
#
# EF_CLOUD_NET=pod (instance ha): the pods get addresses on that bridge, and this node runs what a cluster's nodes
# run for them, as host processes started here: kube-proxy (iptables mode: Service IPs, NodePorts on the host's
# addresses, Service kubernetes to the apiserver on the fleet address) and CoreDNS on the bridge's address (the
# kubelet's clusterDNS: cluster.local names only, nothing is forwarded). kube-proxy owns the host's KUBE-* chains:
# one such instance at a time (up refuses a second).
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

st=$(ef_cloud_state)
sock=$(ef_cloud_containerd_sock)
ctd_dir=$st/containerd
ctd_state=$(dirname "$sock")/state
kubelet_dir=$st/kubelet
bridge=${EF_NS_PREFIX}cbr0
# The kubelet's pod cgroups (kubepods/...) go below this in every hierarchy, apart from other instances' kubelets
# and from the sites' pods (/edgefarm/<instance>/<site>).
cgroup_root=/edgefarm/$EF_INSTANCE/cloud
ctr_() { ctr --address "$sock" "$@"; }
kc() { kubectl --kubeconfig "$EF_KUBECONFIG" "$@"; }

kubelet_config() {
  local addr; addr=$(ef_kubelet_address)
  mkdir -p "$kubelet_dir" "$st/pod-logs"
  cat > "$st/kubelet.yaml.tmp" <<EOF
# Written by hack/cloud-node.sh: the cloud node's kubelet ($EF_CLOUD_NODE).
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $addr
port: $EF_CLOUD_KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $EF_CLOUD_KUBELET_HEALTHZ_PORT
tlsCertFile: $EF_PKI/cloud-node-serving.crt
tlsPrivateKeyFile: $EF_PKI/cloud-node-serving.key
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $EF_PKI/ca.crt }
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://$sock
imageServiceEndpoint: unix://$sock
# No systemd here (PID 1 is not systemd): cgroupfs, as the sites' containerd.
cgroupDriver: cgroupfs
cgroupRoot: $cgroup_root
failSwapOn: false
failCgroupV1: false
podLogsDir: $st/pod-logs
# The images are imported, not pulled (no registry is reachable): never collect them, never evict for a host
# whose disk other work fills.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  imagefs.available: 1%
maxPods: 30
registerWithTaints:
  - key: node-role.kubernetes.io/control-plane
    effect: NoSchedule
serializeImagePulls: false
rotateCertificates: false
serverTLSBootstrap: false
$([ "$EF_CLOUD_NET" = pod ] && printf 'clusterDomain: cluster.local\nclusterDNS: [%s]\n' "$(ef_cloud_gateway)")
EOF
  mv -f "$st/kubelet.yaml.tmp" "$st/kubelet.yaml"
}

kubelet_ready() { [ "$(kc get node "$EF_CLOUD_NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]; }

up() {
  [ -x "$EF_BIN/kubelet" ] || ef_die "$EF_BIN/kubelet is missing: run hack/build-binaries.sh k8s"
  [ -f "$EF_STATE/cloud-node.kubeconfig" ] || ef_die "no $EF_STATE/cloud-node.kubeconfig: run hack/pki.sh (make up does)"
  "$EF_ROOT/hack/images.sh"
  "$EF_ROOT/hack/containerd-config.sh" "$ctd_dir" "$sock" "$(ef_cloud_pod_cidr)" "$ctd_dir/certs.d" "$bridge"
  ef_start containerd-cloud -- containerd --config "$ctd_dir/config.toml"
  ef_wait_up containerd-cloud "containerd on $sock" 30 ctr_ version
  ef_wait_up containerd-cloud "the CRI plugin" 10 sh -c "ctr --address '$sock' plugins ls | grep -q 'io.containerd.grpc.v1 *cri .* ok'"
  # pause (the sandbox image) from hack/images.sh; the EdgeFarm images from hack/cloud-images.sh.
  ctr_ -n k8s.io images ls -q | grep -qx 'registry.k8s.io/pause:3.6' || ctr_ -n k8s.io images import "$EF_CACHE/images/pause.tar" >/dev/null
  "$EF_ROOT/hack/cloud-images.sh" import "$sock"
  # The manifests name the images by digest (hack/install.sh): CRI resolves NAME@DIGEST only from an image record of
  # that name, which an import does not make (a pull does).
  local name digest have
  have=$(ctr_ -n k8s.io images ls -q)
  while read -r name digest; do
    grep -qxF "${name%:*}@$digest" <<<"$have" || ctr_ -n k8s.io images tag --force "$name" "${name%:*}@$digest" >/dev/null
  done < <(jq -r '.[] | "\(.name) \(.index)"' "$EF_ROOT/build/images/images.json")
  if ef_stale_kubelet; then echo "[cloud] kubelet configuration changed: restarting it"; ef_stop kubelet 15; fi
  kubelet_config
  local h; for h in /sys/fs/cgroup/*/; do mkdir -p "$h${cgroup_root#/}" 2>/dev/null || true; done
  if [ "$EF_CLOUD_NET" = pod ]; then bridge_up; fi
  ef_start kubelet -- "$EF_BIN/kubelet" --config "$st/kubelet.yaml" --kubeconfig "$EF_STATE/cloud-node.kubeconfig" \
    --root-dir "$kubelet_dir" --hostname-override "$EF_CLOUD_NODE" --node-ip "$(ef_kubelet_address)" \
    --node-labels "edgefarm.io/cloud-node=true"
  ef_wait_up kubelet "Node $EF_CLOUD_NODE Ready" 90 kubelet_ready
  # The role label is the admin's to set (NodeRestriction forbids a kubelet node-role.kubernetes.io/ labels).
  kc label node "$EF_CLOUD_NODE" node-role.kubernetes.io/control-plane= --overwrite >/dev/null
  echo "[cloud] Node $EF_CLOUD_NODE Ready (kubelet pid $(ef_pid kubelet), containerd $sock)"
  if [ "$EF_CLOUD_NET" = pod ]; then pod_network_up; fi
}

# The bridge and its gateway address exist before the first pod: CoreDNS listens there from the start.
bridge_up() {
  ip link show "$bridge" >/dev/null 2>&1 || ip link add "$bridge" type bridge
  ip -4 addr show dev "$bridge" | grep -q " $(ef_cloud_gateway)/" || ip addr add "$(ef_cloud_gateway)/24" dev "$bridge"
  ip link set "$bridge" up
}

proxy_healthy() { curl -fsS --noproxy '*' -m 2 "http://127.0.0.1:$EF_CLOUD_PROXY_HEALTHZ_PORT/healthz" >/dev/null; }
dns_healthy() { curl -fsS --noproxy '*' -m 2 "http://127.0.0.1:$EF_CLOUD_DNS_HEALTH_PORT/health" >/dev/null; }

pod_network_up() {
  local p other
  for p in "$EF_BIN/kube-proxy" "$EF_BIN/coredns"; do [ -x "$p" ] || ef_die "$p is missing: run hack/build-binaries.sh (hack/deps.sh does)"; done
  for p in $(pgrep -f "$EF_BIN/kube-proxy --config" || true); do
    [ "$p" = "$(ef_pid kube-proxy)" ] && continue
    other=$(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null || true)
    ef_die "another instance's kube-proxy runs (pid $p: $other): one EF_CLOUD_NET=pod instance at a time"
  done
  bridge_up
  # kube-proxy: the built-in ClusterRoleBinding system:node-proxier names user system:kube-proxy (hack/pki.sh).
  # conntrack 0: leave the host's conntrack sysctls alone; NodePorts on the fleet address only (where the sites dial
  # them), so no route_localnet either.
  cat > "$st/kube-proxy.yaml.new" <<EOF
# Written by hack/cloud-node.sh (EF_CLOUD_NET=pod).
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: { kubeconfig: $EF_STATE/kube-proxy.kubeconfig }
hostnameOverride: $EF_CLOUD_NODE
mode: iptables
clusterCIDR: $(ef_cloud_pod_cidr)
detectLocalMode: ClusterCIDR
healthzBindAddress: 127.0.0.1:$EF_CLOUD_PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$EF_CLOUD_PROXY_METRICS_PORT
iptables: { localhostNodePorts: false, masqueradeAll: false }
nodePortAddresses: [$EF_FLEET_IP/32]
conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s }
EOF
  # kube-proxy exits when its configuration file changes under it: replace it only when it differs, restarting it.
  if ! cmp -s "$st/kube-proxy.yaml.new" "$st/kube-proxy.yaml"; then ef_stop kube-proxy 10; mv -f "$st/kube-proxy.yaml.new" "$st/kube-proxy.yaml"; fi
  rm -f "$st/kube-proxy.yaml.new"
  ef_running kube-proxy || ef_start kube-proxy -- "$EF_BIN/kube-proxy" --config "$st/kube-proxy.yaml"
  ef_wait_up kube-proxy "kube-proxy /healthz" 60 proxy_healthy
  # CoreDNS reads Services, EndpointSlices, Pods and Namespaces (what kubeadm's system:coredns role grants).
  kc apply --server-side --field-manager=edgefarm-cloud-node -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: "edgefarm:coredns" }
rules:
  - { apiGroups: [""], resources: [endpoints, services, pods, namespaces], verbs: [list, watch] }
  - { apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: "edgefarm:coredns" }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "edgefarm:coredns" }
subjects: [{ apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:coredns" }]
EOF
  cat > "$st/Corefile.new" <<EOF
# Written by hack/cloud-node.sh (EF_CLOUD_NET=pod): the cluster's names, on the pod network's gateway.
.:53 {
    bind $(ef_cloud_gateway)
    errors
    health 127.0.0.1:$EF_CLOUD_DNS_HEALTH_PORT
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $EF_STATE/coredns.kubeconfig system:coredns@edgefarm
        pods insecure
    }
    cache 10
}
EOF
  if ! cmp -s "$st/Corefile.new" "$st/Corefile"; then ef_stop coredns 10; mv -f "$st/Corefile.new" "$st/Corefile"; fi
  rm -f "$st/Corefile.new"
  ef_running coredns || ef_start coredns -- "$EF_BIN/coredns" -conf "$st/Corefile"
  ef_wait_up coredns "CoreDNS /health" 60 dns_healthy
  echo "[cloud] pod network: $(ef_cloud_pod_cidr) on $bridge, kube-proxy pid $(ef_pid kube-proxy), CoreDNS pid $(ef_pid coredns) on $(ef_cloud_gateway):53"
}

pod_network_down() {
  ef_stop coredns 10
  ef_stop kube-proxy 10
}

# The kubelet runs a configuration older than what kubelet_config writes now (a changed script or address).
ef_stale_kubelet() {
  ef_running kubelet || return 1
  local cur=$st/kubelet.yaml old; old=$(cat "$cur" 2>/dev/null || true)
  kubelet_config
  [ "$old" != "$(cat "$cur")" ] || [ "$EF_ROOT/hack/cloud-node.sh" -nt "$EF_PIDS/kubelet.pid" ]
}

# Every container of the node's pods gets SIGTERM, SIGKILL after 15 s (the kubelet is stopped first, so nothing
# restarts them; the next up's kubelet makes new sandboxes for its pods).
stop_pods() {
  local ids i
  ids=$(ctr_ -n k8s.io tasks ls 2>/dev/null | awk 'NR > 1 && $3 == "RUNNING" {print $1}')
  [ -n "$ids" ] || return 0
  for i in $ids; do ctr_ -n k8s.io tasks kill -s TERM "$i" >/dev/null 2>&1 || true; done
  for ((i = 0; i < 150; i++)); do
    [ -z "$(ctr_ -n k8s.io tasks ls 2>/dev/null | awk 'NR > 1 && $3 == "RUNNING"')" ] && break
    sleep 0.1
  done
  for i in $(ctr_ -n k8s.io tasks ls 2>/dev/null | awk 'NR > 1 && $3 == "RUNNING" {print $1}'); do
    ctr_ -n k8s.io tasks kill -s KILL "$i" >/dev/null 2>&1 || true
  done
  echo "[cloud] stopped the containers of $(wc -w <<<"$ids") pod container(s) and sandbox(es)"
}

down() {
  [ -f "$EF_PIDS/kubelet.pid" ] && echo "[cloud] stopping kubelet (pid $(ef_pid kubelet))"
  pod_network_down
  ef_stop kubelet 15
  ef_running containerd-cloud && stop_pods
  ef_stop containerd-cloud 15
}

# Every pod of the node is removed through containerd (CRI), then the node's state; the kubelet's mounts (projected
# tokens, Secrets: tmpfs) are unmounted first.
clean() {
  pod_network_down
  # kube-proxy's rules (the KUBE-* chains) go with the pod network.
  if [ "$EF_CLOUD_NET" = pod ] && [ -x "$EF_BIN/kube-proxy" ]; then "$EF_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true; fi
  ef_stop kubelet 15
  if [ -S "$sock" ] || [ -f "$ctd_dir/config.toml" ]; then
    ef_running containerd-cloud || { [ -f "$ctd_dir/config.toml" ] && ef_start containerd-cloud -- containerd --config "$ctd_dir/config.toml"; }
    local i; for ((i = 0; i < 50; i++)); do ctr_ version >/dev/null 2>&1 && break; sleep 0.2; done
    stop_pods
    local c
    for c in $(ctr_ -n k8s.io tasks ls -q 2>/dev/null); do ctr_ -n k8s.io tasks delete -f "$c" >/dev/null 2>&1 || true; done
    for c in $(ctr_ -n k8s.io containers ls -q 2>/dev/null); do ctr_ -n k8s.io containers delete "$c" >/dev/null 2>&1 || true; done
    ef_stop containerd-cloud 15
  fi
  local m
  for m in $(awk -v d="$st/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
  for m in $(awk -v d="$ctd_state/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
  ip link del "$bridge" 2>/dev/null || true
  local h d
  for h in /sys/fs/cgroup/*/; do
    d=$h${cgroup_root#/}
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    rmdir "$h/edgefarm/$EF_INSTANCE" "$h/edgefarm" 2>/dev/null || true
  done
  rm -rf "$st" "$(dirname "$sock")"
}

status() {
  local name pid s
  local names="containerd-cloud kubelet"; [ "$EF_CLOUD_NET" = pod ] && names+=" kube-proxy coredns"
  for name in $names; do
    pid=$(ef_pid "$name"); if ef_running "$name"; then s=running; elif [ -n "$pid" ]; then s=dead; else s=stopped; fi
    printf '%-26s %-8s %-8s %s\n' "$name" "${pid:--}" "$s" "$(case $name in kubelet) echo "$EF_CLOUD_KUBELET_PORT (Node $EF_CLOUD_NODE)" ;; kube-proxy) echo "127.0.0.1:$EF_CLOUD_PROXY_HEALTHZ_PORT" ;; coredns) echo "$(ef_cloud_gateway):53" ;; *) echo "$sock" ;; esac)"
  done
}

case "${1:-status}" in
  up) up ;;
  down) down ;;
  clean) clean ;;
  status) status ;;
  *) echo "usage: $0 up|down|clean|status" >&2; exit 2 ;;
esac
