#!/usr/bin/env bash
# The local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler (built by
# hack/build-binaries.sh into $EF_BIN), on loopback, with the PKI from hack/pki.sh. Data in $EF_STATE/etcd is kept
# across down/up. `up` also applies manifests/crds and the namespace, RBAC and API priority of manifests/base.
#   hack/controlplane.sh up|down|status|apply
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
P=$EF_PKI
COMPONENTS="etcd kube-apiserver kube-controller-manager kube-scheduler"

kc() { kubectl --kubeconfig "$EF_KUBECONFIG" "$@"; }
etcd_healthy() { curl -fsS --noproxy '*' -m 2 "http://127.0.0.1:$EF_ETCD_PORT/health" | grep -q '"health":"true"'; }
apiserver_ready() {
  curl -fsS --noproxy '*' -m 3 --cacert "$P/ca.crt" --cert "$P/admin.crt" --key "$P/admin.key" \
    "https://127.0.0.1:$EF_APISERVER_PORT/readyz" | grep -qx ok
}
secure_healthz() { curl -fsSk --noproxy '*' -m 2 "https://127.0.0.1:$1/healthz" | grep -qx ok; }

need_bin() { [ -x "$EF_BIN/$1" ] || ef_die "$EF_BIN/$1 is missing: run hack/deps.sh (or hack/build-binaries.sh)"; }

start_etcd() {
  need_bin etcd
  mkdir -p "$EF_STATE/etcd"; chmod 700 "$EF_STATE/etcd"
  ef_start etcd -- "$EF_BIN/etcd" \
    --name "ef-$EF_INSTANCE" \
    --data-dir "$EF_STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$EF_ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$EF_ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$EF_ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$EF_ETCD_PEER_PORT" \
    --initial-cluster "ef-$EF_INSTANCE=http://127.0.0.1:$EF_ETCD_PEER_PORT" \
    --initial-cluster-state new \
    --log-level warn
  ef_wait_up etcd "etcd /health on 127.0.0.1:$EF_ETCD_PORT" 30 etcd_healthy
}

# --endpoint-reconciler-type none (EF_CLOUD_NET=host): the advertised address is loopback, which the Endpoints of Service `kubernetes`
# may not hold (the default reconciler logs an error every 10 s). Nothing here routes service IPs anyway.
# Node authorization and NodeRestriction admission scope every client certificate CN=system:node:<name> (the
# provider's calls for a node it serves, decision 0010) to that node, as they scope a kubelet.
start_apiserver() {
  need_bin kube-apiserver
  # EF_CLOUD_NET=pod: the pods reach the apiserver through Service kubernetes (kube-proxy), whose endpoint is the
  # fleet address on the host's loopback device: it listens on every address (client certificates required).
  local net=(--bind-address 127.0.0.1 --advertise-address 127.0.0.1 --endpoint-reconciler-type none)
  if [ "$EF_CLOUD_NET" = pod ]; then
    ef_fleet_ip_up
    net=(--bind-address 0.0.0.0 --advertise-address "$EF_FLEET_IP" --service-node-port-range "$EF_PORT_BASE-$((EF_PORT_BASE + 999))")
  fi
  ef_start kube-apiserver -- "$EF_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$EF_ETCD_PORT" \
    "${net[@]}" \
    --secure-port "$EF_APISERVER_PORT" \
    --tls-cert-file "$P/apiserver.crt" --tls-private-key-file "$P/apiserver.key" \
    --client-ca-file "$P/ca.crt" \
    --service-cluster-ip-range "$EF_SERVICE_CIDR" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$P/sa.pub" \
    --service-account-signing-key-file "$P/sa.key" \
    --kubelet-client-certificate "$P/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$P/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --requestheader-client-ca-file "$P/front-proxy-ca.crt" \
    --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User \
    --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$P/front-proxy-client.crt" \
    --proxy-client-key-file "$P/front-proxy-client.key" \
    --enable-aggregator-routing=true \
    --allow-privileged=true \
    --profiling=false
  ef_wait_up kube-apiserver "kube-apiserver /readyz on 127.0.0.1:$EF_APISERVER_PORT" 90 apiserver_ready
}

start_controller_manager() {
  need_bin kube-controller-manager
  local kcfg="$EF_STATE/controller-manager.kubeconfig"
  ef_start kube-controller-manager -- "$EF_BIN/kube-controller-manager" \
    --kubeconfig "$kcfg" --authentication-kubeconfig "$kcfg" --authorization-kubeconfig "$kcfg" \
    --requestheader-client-ca-file "$P/front-proxy-ca.crt" \
    --client-ca-file "$P/ca.crt" \
    --cluster-signing-cert-file "$P/ca.crt" --cluster-signing-key-file "$P/ca.key" \
    --root-ca-file "$P/ca.crt" \
    --service-account-private-key-file "$P/sa.key" \
    --use-service-account-credentials=true \
    --controllers '*' \
    --leader-elect=false \
    --bind-address 127.0.0.1 --secure-port "$EF_CM_PORT" \
    --node-monitor-grace-period 50s \
    --profiling=false
  ef_wait_up kube-controller-manager "kube-controller-manager /healthz on 127.0.0.1:$EF_CM_PORT" 60 secure_healthz "$EF_CM_PORT"
}

start_scheduler() {
  need_bin kube-scheduler
  local kcfg="$EF_STATE/scheduler.kubeconfig"
  ef_start kube-scheduler -- "$EF_BIN/kube-scheduler" \
    --kubeconfig "$kcfg" --authentication-kubeconfig "$kcfg" --authorization-kubeconfig "$kcfg" \
    --leader-elect=false \
    --bind-address 127.0.0.1 --secure-port "$EF_SCHED_PORT" \
    --profiling=false
  ef_wait_up kube-scheduler "kube-scheduler /healthz on 127.0.0.1:$EF_SCHED_PORT" 60 secure_healthz "$EF_SCHED_PORT"
}

# Applies manifests/crds (then waits until they are Established), then the parts of manifests/base every stack needs
# before anything runs: the namespace, RBAC and API priority (the workloads are hack/install.sh's, EF_DEPLOY=cluster).
# Server-side apply: no size limit from the last-applied annotation (CRDs get large).
BASE_PARTS="namespace.yaml provider-rbac.yaml registrar-rbac.yaml provider-flowschema.yaml"
apply_manifests() {
  local args=(apply --server-side --force-conflicts --field-manager=edgefarm-hack) f
  kc "${args[@]}" -k "$EF_ROOT/manifests/crds" >/dev/null
  kc wait --for=condition=Established --timeout=30s -f "$EF_ROOT/manifests/crds/edgenode-crd.yaml" >/dev/null
  for f in $BASE_PARTS; do args+=(-f "$EF_ROOT/manifests/base/$f"); done
  kc "${args[@]}" >/dev/null
  echo "[controlplane] applied manifests/crds and manifests/base: $BASE_PARTS"
}

up() {
  [ -f "$EF_KUBECONFIG" ] && [ -f "$P/ca.crt" ] || ef_die "no PKI in $EF_PKI: run hack/pki.sh first"
  local t=$SECONDS
  start_etcd
  start_apiserver
  start_controller_manager
  start_scheduler
  apply_manifests
  # The controller-manager is working once it has made the default ServiceAccount (pods need it to be admitted).
  ef_wait_up kube-controller-manager "ServiceAccount default/default (made by kube-controller-manager)" 60 \
    kc -n default get serviceaccount default
  echo "[controlplane] up in $((SECONDS - t))s: etcd :$EF_ETCD_PORT, kube-apiserver https://127.0.0.1:$EF_APISERVER_PORT, controller-manager :$EF_CM_PORT, scheduler :$EF_SCHED_PORT"
}

down() {
  local c
  for c in kube-scheduler kube-controller-manager kube-apiserver etcd; do
    if [ -f "$EF_PIDS/$c.pid" ]; then echo "[controlplane] stopping $c (pid $(ef_pid "$c"))"; ef_stop "$c" 20; fi
  done
}

status() {
  local c port pid st
  for c in $COMPONENTS; do
    case $c in
      etcd) port=$EF_ETCD_PORT ;; kube-apiserver) port=$EF_APISERVER_PORT ;;
      kube-controller-manager) port=$EF_CM_PORT ;; kube-scheduler) port=$EF_SCHED_PORT ;;
    esac
    pid=$(ef_pid "$c"); if ef_running "$c"; then st=running; elif [ -n "$pid" ]; then st=dead; else st=stopped; fi
    printf '%-26s %-8s %-8s %s\n' "$c" "${pid:--}" "$st" "$port"
  done
}

case "${1:-status}" in
  up) up ;;
  down) down ;;
  status) status ;;
  apply) apply_manifests ;;
  *) echo "usage: $0 up|down|status|apply" >&2; exit 2 ;;
esac
