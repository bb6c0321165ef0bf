#!/usr/bin/env bash
# Brings up the whole local EdgeFarm stack for instance $EF_INSTANCE (default dev), secured as a user installs it
# (decisions 0008, 0009 and 0011; docs/security.md, docs/getting-started.md):
#   EF_DEPLOY=cluster (make up): deps -> images -> pki -> control plane (CRDs, RBAC) -> the cloud node (kubelet,
#     containerd, the images imported) -> the fleet's identity and TLS -> install: Secrets + ConfigMap edgefarm-fleet,
#     then the shipped manifests (manifests/overlays/local) applied: the hub, the provider and the registrar as pods
#   EF_DEPLOY=process (make up DEV=1, the test suites' stacks): deps -> pki -> control plane -> the fleet's identity
#     and TLS -> NATS hub (operator mode, TLS) -> provider (its two hub users, the revoker) -> registrar (+ ConfigMap
#     edgefarm-fleet), processes of this checkout
#   then each site in $EF_SITES: edgefarm token create, edgefarm join at the site (once), start it -> wait for the Nodes.
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
STEP_TOTAL=$((8 + ${#sites[@]})); [ "$EF_DEPLOY" != cluster ] || STEP_TOTAL=$((STEP_TOTAL + 1))
step_no=0 step_names=() step_starts=()
step() {
  step_no=$((step_no + 1)); step_names+=("$*"); step_starts+=("$SECONDS")
  printf '\033[1m==> [%d/%d] %s\033[0m (t+%ss)\n' "$step_no" "$STEP_TOTAL" "$*" "$((SECONDS - T0))"
}

step "dependencies (hack/deps.sh)"
"$H/deps.sh"
ef_use_node

# The hub's JetStream store is the process's ($EF_STATE/hub) or the pod's ($EF_STATE/cloud/hub-data): sites source
# from its streams by sequence, so a stack keeps the way it was set up until make clean.
mode_file=$EF_STATE/deploy
if [ -f "$mode_file" ] && [ "$(cat "$mode_file")" != "$EF_DEPLOY" ]; then
  ef_die "instance $EF_INSTANCE was set up with EF_DEPLOY=$(cat "$mode_file") ($( [ "$(cat "$mode_file")" = process ] && echo "make up DEV=1" || echo "make up")); switching to EF_DEPLOY=$EF_DEPLOY needs make clean first"
fi
mkdir -p "$EF_STATE"; echo "$EF_DEPLOY" > "$mode_file"
if [ "$EF_DEPLOY" = process ] && [ "$EF_INSTANCE" = dev ] && [ "${DEV:-0}" != 1 ]; then
  echo "note: this stack was set up with DEV=1 (the cloud side as processes); make clean && make up installs it into the cluster"
fi

if [ "$EF_DEPLOY" = cluster ]; then
  step "images: bundles, then edgefarm and nats-server as OCI image indexes (hack/cloud-images.sh build)"
  "$H/cloud-images.sh" build
  step "the site package's installed tree in $EF_STATE/site-root: the sites run from it (hack/package.sh --tree)"
  "$H/package.sh" --tree "$EF_STATE/site-root"
fi

step "PKI and kubeconfigs (hack/pki.sh)"
"$H/pki.sh"

step "control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler"
"$H/controlplane.sh" up

# One EdgeNode per site, created with an empty spec (defaults: autonomy keep). The apply names no spec field, so it
# never conflicts with, nor undoes, what a user set since (kubectl edit edgenode). The provider serves every
# EdgeNode; its replicas shard them with Leases in namespace edgefarm-system.
edgenodes() {
  for s in "${sites[@]}"; do
    printf 'apiVersion: edgefarm.io/v1alpha1\nkind: EdgeNode\nmetadata:\n  name: %s\n---\n' "$s"
  done | kubectl --kubeconfig "$EF_KUBECONFIG" apply --server-side --field-manager=edgefarm-make-up -f - >/dev/null
}

if [ "$EF_DEPLOY" = cluster ]; then
  step "cloud node $EF_CLOUD_NODE: containerd and kubelet (hack/cloud-node.sh up)"
  "$H/cloud-node.sh" up

  step "the fleet's NATS identities and TLS (hack/fleet.sh identity)"
  "$H/fleet.sh" identity

  step "install: Secrets, ConfigMap edgefarm-fleet, then the manifests: hub, provider, registrar pods (hack/install.sh up)"
  edgenodes
  "$H/install.sh" up
else
  step "the fleet's NATS identities and TLS (hack/fleet.sh identity)"
  "$H/fleet.sh" identity

  step "NATS hub: $EF_HUB server(s), operator mode, TLS, JetStream domain hub (hack/hub.sh)"
  "$H/hub.sh" up

  step "provider ($EF_PROVIDERS replica(s))"
  edgenodes
  [ -f "$EF_PIDS/provider.pid" ] && { echo "[provider] stopping a provider of an older layout (pid $(ef_pid provider))"; ef_stop provider 15; }
  for ((r = 1; r <= EF_PROVIDERS; r++)); do
    name=provider-$r http=$(ef_provider_http_port $r) kport=$(ef_provider_kubelet_port $r)
    # A provider started from an older build is restarted (its code, or a package it uses, changed since).
    if ef_stale_build $name provider proto workqueue streaming settings; then
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

  step "registrar and ConfigMap edgefarm-fleet (hack/fleet.sh registrar)"
  "$H/fleet.sh" registrar
fi

# A site's join, as a user makes it: the admin creates a single-use token (edgefarm token create: only its hash is
# stored), the site runs edgefarm join with it (hack/site.sh join: inside the site's netns, where its keys are made;
# the token goes through a pipe, never on a command line). Skipped when the site holds the key its EdgeNode records.
# A site whose key is not its EdgeNode's (revoked, or its join directory removed) joins again; a key the EdgeNode
# records that the site does not hold is revoked first (edgefarm node revoke).
edgefarm_admin() { ef_edgefarm --kubeconfig "$EF_KUBECONFIG" "$@"; }
join_site() {
  local s=$1 nodejson recorded have="" force="" tj id rc=0
  nodejson=$(ef_site_state "$s")/identity/node.json
  recorded=$(kubectl --kubeconfig "$EF_KUBECONFIG" get edgenode "$s" -o jsonpath='{.status.identity.publicKey}')
  if [ -f "$nodejson" ]; then
    have=$(jq -r .wireId "$nodejson")
    if [ "$recorded" = "$have" ]; then echo "[$s] joined already with key ${have:0:12}...: reusing $(dirname "$nodejson")"; return 0; fi
    force=--force
    [ -n "$recorded" ] || echo "[$s] EdgeNode $s records no identity (revoked?): joining again"
  fi
  if [ -n "$recorded" ]; then
    echo "[$s] EdgeNode $s records key ${recorded:0:12}..., which the site does not hold: revoking it (edgefarm node revoke $s)"
    edgefarm_admin node revoke "$s" | sed "s/^/[$s] /"
  fi
  tj=$(edgefarm_admin token create "$s" --ttl 10m -o json)
  id=$(jq -r .id <<<"$tj")
  echo "[$s] edgefarm token create $s: token $id (single use, valid 10 min); edgefarm join --hub $EF_REGISTRAR_URL at the site"
  jq -r .token <<<"$tj" | bash "$H/site.sh" join "$s" $force || rc=$?
  if [ $rc != 0 ]; then
    edgefarm_admin token delete "$id" >/dev/null 2>&1 || true
    ef_die "site $s did not join (see above); its token $id was deleted"
  fi
}

for s in "${sites[@]}"; do
  step "site $s: join (edgefarm token create, edgefarm join), then start (hack/site.sh up $s)"
  join_site "$s"
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
echo "  export PATH=$EF_STATE/bin:\$PATH   # edgefarm (also kubectl edgefarm): tokens, nodes, join"
echo
kubectl --kubeconfig "$EF_KUBECONFIG" get nodes -o wide 2>&1 | sed 's/^/  /'
echo
echo "Try next:"
echo "  kubectl apply -f examples/hello.yaml"
echo "  kubectl get pods -o wide -w"
echo "  kubectl get edgenodes        # connectivity, last heartbeat, pods, desired sequence"
echo "  edgefarm node list           # joined nodes: key, credentials expiry; edgefarm token create NODE to join another"
echo "  make status        # components, PIDs, ports"
echo "  make down          # stop everything, keep state (make up resumes)"
[ -z "$failure" ]
