#!/usr/bin/env bash
# Brings up the whole local EdgeFarm stack for instance $EF_INSTANCE (default dev):
#   deps -> pki -> control plane -> NATS hub -> provider -> each site in $EF_SITES -> wait for the Nodes to be Ready.
# The provider starts before the sites because it creates the hub streams the sites source from: a site stream whose
# source does not exist yet only retries with backoff, which delayed the first pods by ~5 s on a fresh stack.
# Idempotent: what is built, created or running already is reused, so a warm run takes seconds; after
# hack/down.sh it resumes the same cluster (etcd data, PKI and JetStream stores are kept; hack/clean.sh removes them).
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
cd "$EF_ROOT"
H=$EF_ROOT/hack
T0=$SECONDS
sites=($EF_SITES)
failure=""

# Numbered steps with elapsed time; each step's duration is kept for the summary at the end.
STEP_TOTAL=$((6 + ${#sites[@]}))
step_no=0 step_names=() step_starts=()
step() {
  step_no=$((step_no + 1)); step_names+=("$*"); step_starts+=("$SECONDS")
  printf '\033[1m==> [%d/%d] %s\033[0m (t+%ss)\n' "$step_no" "$STEP_TOTAL" "$*" "$((SECONDS - T0))"
}

step "dependencies (hack/deps.sh)"
"$H/deps.sh"
ef_use_node

step "PKI and kubeconfigs (hack/pki.sh)"
"$H/pki.sh"

step "control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler"
"$H/controlplane.sh" up

step "NATS hub: $EF_HUB server(s), JetStream domain hub (hack/hub.sh)"
"$H/hub.sh" up

step "provider ($EF_PROVIDERS replica(s))"
# One EdgeNode per site, created with an empty spec (defaults: autonomy keep). The apply names no spec field, so it
# never conflicts with, nor undoes, what a user set since (kubectl edit edgenode). The provider serves every
# EdgeNode; its replicas shard them with Leases in namespace edgefarm-system.
for s in "${sites[@]}"; do
  printf 'apiVersion: edgefarm.io/v1alpha1\nkind: EdgeNode\nmetadata:\n  name: %s\n---\n' "$s"
done | kubectl --kubeconfig "$EF_KUBECONFIG" apply --server-side --field-manager=edgefarm-make-up -f - >/dev/null
[ -f "$EF_PIDS/provider.pid" ] && { echo "[provider] stopping a provider of an older layout (pid $(ef_pid provider))"; ef_stop provider 15; }
for ((r = 1; r <= EF_PROVIDERS; r++)); do
  name=provider-$r http=$(ef_provider_http_port $r) kport=$(ef_provider_kubelet_port $r)
  # A provider started from an older build is restarted (its code, or a package it uses, changed since).
  if ef_running $name && [ -n "$(find "$EF_ROOT/provider/dist" "$EF_ROOT/proto/dist" "$EF_ROOT/workqueue/dist" "$EF_ROOT/streaming/dist" "$EF_ROOT/settings/dist" -name '*.js' -newer "$EF_PIDS/$name.pid" 2>/dev/null | head -n 1)" ]; then
    echo "[$name] build is newer than the running provider: restarting it"
    ef_stop $name 15
  fi
  ef_provider_start $r
  ef_wait_up $name "$name /healthz on 127.0.0.1:$http" 30 ef_http_ok "http://127.0.0.1:$http/healthz"
  echo "[$name] up (pid $(ef_pid $name)): http :$http, kubelet API :$kport"
done
# Replicas beyond the number asked for (an earlier `make up PROVIDERS=3`) are stopped: they hand their nodes over.
for r in $(ef_provider_replicas); do
  [ "$r" -gt "$EF_PROVIDERS" ] && ef_running provider-$r && { echo "[provider-$r] not asked for: stopping it"; ef_stop provider-$r 15; }
done

for s in "${sites[@]}"; do
  step "site $s (hack/site.sh up $s)"
  bash "$H/site.sh" up "$s"
done

step "waiting for the Nodes to be Ready: ${sites[*]}"
deadline=$((SECONDS + 60)) pending=("${sites[@]}")
while :; do
  ready=$(kubectl --kubeconfig "$EF_KUBECONFIG" get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null || true)
  pending=()
  for s in "${sites[@]}"; do grep -qx "$s=True" <<<"$ready" || pending+=("$s"); done
  [ ${#pending[@]} -eq 0 ] && break
  if [ $SECONDS -ge $deadline ]; then
    failure="after 60 s these Nodes are not Ready: ${pending[*]} (see $EF_LOGS/provider-*.log, the site logs in $EF_LOGS/, make status)"
    echo "error: $failure" >&2
    break
  fi
  sleep 1
done
if [ -z "$failure" ]; then
  for s in "${sites[@]}"; do kubectl --kubeconfig "$EF_KUBECONFIG" wait --for=condition=Ready "node/$s" --timeout=5s >/dev/null; done
  echo "[nodes] Ready: ${sites[*]}"
fi

echo
echo "step durations:"
for ((i = 0; i < ${#step_names[@]}; i++)); do
  end=${step_starts[$((i + 1))]:-$SECONDS}
  printf '  %3ss  [%d] %s\n' "$((end - step_starts[i]))" "$((i + 1))" "${step_names[i]}"
done
if [ -n "$failure" ]; then
  printf '\033[1;31mEdgeFarm (%s) is NOT fully up after %ss:\033[0m %s\n\n' "$EF_INSTANCE" "$((SECONDS - T0))" "$failure"
else
  printf '\033[1mEdgeFarm (%s) is up in %ss\033[0m\n\n' "$EF_INSTANCE" "$((SECONDS - T0))"
fi
echo "  export KUBECONFIG=$EF_KUBECONFIG"
echo
kubectl --kubeconfig "$EF_KUBECONFIG" get nodes -o wide 2>&1 | sed 's/^/  /'
echo
echo "Try next:"
echo "  kubectl apply -f examples/hello.yaml"
echo "  kubectl get pods -o wide -w"
echo "  kubectl get edgenodes        # connectivity, last heartbeat, pods, desired sequence"
echo "  make status        # components, PIDs, ports"
echo "  make down          # stop everything, keep state (make up resumes)"
[ -z "$failure" ]
