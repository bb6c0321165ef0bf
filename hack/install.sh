#!/usr/bin/env bash
# Installs EdgeFarm's cloud side into the local cluster from the shipped manifests, as a user installs it into theirs
# (EF_DEPLOY=cluster; docs/getting-started.md, docs/decisions/0011-install.md):
#
#   hack/install.sh secrets    the install-specific inputs the manifests name, from the fleet's identity and TLS
#                              (hack/fleet.sh identity): ConfigMap edgefarm-fleet and Secrets edgefarm-hub,
#                              edgefarm-provider, edgefarm-registrar (the provider's kubelet serving certificate
#                              comes from the cluster's CSR API)
#   hack/install.sh apply      $EF_STATE/install/kustomization.yaml (manifests/overlays/local + this instance's ports,
#                              addresses and image digests; EF_CLOUD_NET=pod: manifests/overlays/pod-network + the
#                              node ports and the hub's PersistentVolumes), applied server-side; waits for the rollouts
#   hack/install.sh up         both (make up)
#   hack/install.sh delete     removes the workloads (the Secrets, the ConfigMap and the RBAC stay)
#   hack/install.sh status     make status's lines: the EdgeFarm pods
#
# The CRDs come first and apart (manifests/crds, hack/controlplane.sh applies them). Nothing is generated at render
# time in the manifests themselves: what is particular to this install lives in the Secrets, ConfigMap edgefarm-fleet
# and the kustomization written here.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
NS=edgefarm-system
kc() { kubectl --kubeconfig "$EF_KUBECONFIG" "$@"; }
inst=$EF_STATE/install
hub_data=$(ef_cloud_state)/hub-data

secrets() {
  ef_use_node
  [ -f "$EF_FLEET/fleet.json" ] && [ -f "$EF_FLEET_TLS/hub.crt" ] || ef_die "no fleet identity in $EF_FLEET: run hack/fleet.sh identity first"
  [ "$EF_HUB" = 1 ] || ef_die "EF_DEPLOY=cluster sets the hub's size in the manifests (EF_CLOUD_NET=pod: the base's 3 servers): HUB= is for DEV=1"
  [ -f "$EF_ROOT/cli/dist/main.js" ] || ef_die "cli/dist/main.js is missing: build first (make build)"
  if [ "$EF_CLOUD_NET" = pod ]; then
    # The base's hub (3 servers, routes by their StatefulSet names); the sites dial the NodePorts on the fleet address.
    ef_edgefarm --kubeconfig "$EF_KUBECONFIG" -n $NS fleet secrets --apply --dir "$EF_FLEET" --tls-dir "$EF_FLEET_TLS" \
      --registrar-url "$EF_REGISTRAR_URL" --hub-leaf-urls "$(ef_hub_leaf_urls)" | sed 's/^/[install] /'
    return
  fi
  # What a user runs (docs/reference/install.md), with the local stack's openssl TLS (hack/pki.sh fleet) and its
  # single hub server in the host's network: listeners on this instance's ports, monitoring on loopback only (the
  # kubelet probes it there: the overlay's probe host).
  ef_edgefarm --kubeconfig "$EF_KUBECONFIG" -n $NS fleet secrets --apply --dir "$EF_FLEET" --tls-dir "$EF_FLEET_TLS" \
    --registrar-url "$EF_REGISTRAR_URL" --hub-leaf-urls "$(ef_hub_leaf_urls)" \
    --local "127.0.0.1:$EF_HUB_PORT,127.0.0.1:$EF_HUB_MON_PORT,$EF_FLEET_IP:$EF_HUB_LEAF_PORT" | sed 's/^/[install] /'
}

# The image references of build/images/images.json (hack/cloud-images.sh build): pinned by digest.
image_lines() {
  local j=$EF_ROOT/build/images/images.json
  [ -f "$j" ] || ef_die "$j is missing: run hack/cloud-images.sh build (make up does)"
  jq -r '.[] | "  - name: \(.name | sub(":[^:/]+$"; ""))\n    digest: \(.index)"' "$j"
}

# The hub's volumes on the pod network: one hostPath PersistentVolume per member, bound ahead to its claim
# (data-edgefarm-hub-N of the StatefulSet's volumeClaimTemplates), as a provisioner would make them.
hub_volumes() {
  local n dir
  for n in 0 1 2; do
    dir=$hub_data/$n; mkdir -p "$dir"; chown 65532:65532 "$dir"
    cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: edgefarm-$EF_INSTANCE-hub-$n
  labels: { app.kubernetes.io/part-of: edgefarm-local }
spec:
  capacity: { storage: 10Gi }
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  claimRef: { namespace: $NS, name: data-edgefarm-hub-$n }
  hostPath: { path: $dir, type: Directory }
  nodeAffinity:
    required:
      nodeSelectorTerms:
        - matchExpressions: [{ key: kubernetes.io/hostname, operator: In, values: [$EF_CLOUD_NODE] }]
EOF
  done
}

# EF_CLOUD_NET=pod: the base's pods and ports; only the node ports and the images are this instance's.
kustomization_pod() {
  local rel
  mkdir -p "$inst" "$hub_data"
  rel=$(realpath --relative-to="$inst" "$EF_ROOT/manifests/overlays/pod-network")
  hub_volumes > "$inst/hub-volumes.yaml"
  cat > "$inst/kustomization.yaml.tmp" <<EOF
# Written by hack/install.sh for instance $EF_INSTANCE (EF_CLOUD_NET=pod): manifests/overlays/pod-network with this
# instance's node ports, the hub's volumes, and the images built here pinned by digest.
# Apply: kubectl apply --server-side -k $inst
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $rel
  - hub-volumes.yaml
images:
$(image_lines)
patches:
  - target: { kind: Service, name: edgefarm-hub-leaf }
    patch: |-
      - { op: add, path: /spec/ports/0/nodePort, value: $EF_HUB_LEAF_PORT }
  - target: { kind: Service, name: edgefarm-registrar }
    patch: |-
      - { op: add, path: /spec/ports/0/nodePort, value: $EF_REGISTRAR_PORT }
EOF
  mv -f "$inst/kustomization.yaml.tmp" "$inst/kustomization.yaml"
}

kustomization() {
  if [ "$EF_CLOUD_NET" = pod ]; then kustomization_pod; return; fi
  local rel
  mkdir -p "$inst" "$hub_data"
  # The hub runs as user 65532 (manifests/base/hub.yaml).
  chown 65532:65532 "$hub_data"
  rel=$(realpath --relative-to="$inst" "$EF_ROOT/manifests/overlays/local")
  cat > "$inst/kustomization.yaml.tmp" <<EOF
# Written by hack/install.sh for instance $EF_INSTANCE: manifests/overlays/local with this instance's ports and
# addresses, and the images built here pinned by digest. Apply: kubectl apply --server-side -k $inst
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $rel
images:
$(image_lines)
configMapGenerator:
  - name: edgefarm-provider-config
    namespace: $NS
    behavior: merge
    literals:
      - EF_NATS_URL=$(ef_hub_urls)
      - EF_HUB_REPLICAS=$EF_HUB
      - EF_HTTP_PORT=$(ef_provider_http_port 1)
      - EF_KUBELET_PORT=$(ef_provider_kubelet_port 1)
      - EF_KUBELET_NODE_PORTS=$(ef_provider_kubelet_node_ports 1)
      # no kube-proxy here: the apiserver where it listens (the pods share the host's network)
      - KUBERNETES_SERVICE_HOST=127.0.0.1
      - KUBERNETES_SERVICE_PORT=$EF_APISERVER_PORT
  - name: edgefarm-registrar-config
    namespace: $NS
    behavior: merge
    literals:
      - EF_REGISTRAR_LISTEN=$EF_FLEET_IP:$EF_REGISTRAR_PORT
      - KUBERNETES_SERVICE_HOST=127.0.0.1
      - KUBERNETES_SERVICE_PORT=$EF_APISERVER_PORT
patches:
  - patch: |-
      apiVersion: apps/v1
      kind: StatefulSet
      metadata: { name: edgefarm-hub, namespace: $NS }
      spec:
        template:
          spec:
            volumes:
              - { name: data, hostPath: { path: $hub_data, type: Directory } }
  # Probes on this instance's ports.
  - target: { kind: Deployment, name: edgefarm-provider }
    patch: |-
      - { op: replace, path: /spec/template/spec/containers/0/ports, value: [{ name: http, containerPort: $(ef_provider_http_port 1) }, { name: kubelet, containerPort: $(ef_provider_kubelet_port 1) }] }
  - target: { kind: Deployment, name: edgefarm-registrar }
    patch: |-
      - { op: replace, path: /spec/template/spec/containers/0/ports, value: [{ name: https, containerPort: $EF_REGISTRAR_PORT }] }
      # it listens on the fleet address only
      - { op: add, path: /spec/template/spec/containers/0/startupProbe/httpGet/host, value: $EF_FLEET_IP }
      - { op: add, path: /spec/template/spec/containers/0/livenessProbe/httpGet/host, value: $EF_FLEET_IP }
      - { op: add, path: /spec/template/spec/containers/0/readinessProbe/httpGet/host, value: $EF_FLEET_IP }
  - target: { kind: StatefulSet, name: edgefarm-hub }
    patch: |-
      - { op: replace, path: /spec/template/spec/containers/0/ports, value: [{ name: client, containerPort: $EF_HUB_PORT }, { name: leafnodes, containerPort: $EF_HUB_LEAF_PORT }, { name: monitor, containerPort: $EF_HUB_MON_PORT }] }
      # monitoring listens on loopback only
      - { op: add, path: /spec/template/spec/containers/0/startupProbe/httpGet/host, value: 127.0.0.1 }
      - { op: add, path: /spec/template/spec/containers/0/livenessProbe/httpGet/host, value: 127.0.0.1 }
      - { op: add, path: /spec/template/spec/containers/0/readinessProbe/httpGet/host, value: 127.0.0.1 }
EOF
  mv -f "$inst/kustomization.yaml.tmp" "$inst/kustomization.yaml"
}

rollout_wait() {
  local what
  for what in statefulset/edgefarm-hub deployment/edgefarm-provider deployment/edgefarm-registrar; do
    if ! kc -n $NS rollout status "$what" --timeout=180s | sed "s/^/[install] /"; then
      kc -n $NS get pods -o wide >&2
      kc -n $NS get events --sort-by=.lastTimestamp 2>/dev/null | tail -n 15 >&2
      ef_die "$what did not roll out (above: the pods and the namespace's last Events; kubectl -n $NS logs ...)"
    fi
  done
}

apply() {
  kustomization
  kc apply --server-side --force-conflicts --field-manager=edgefarm-install -k "$inst" | grep -v unchanged | sed 's/^/[install] /' || true
  rollout_wait
}

delete() {
  kc -n $NS delete statefulset/edgefarm-hub deployment/edgefarm-provider deployment/edgefarm-registrar --ignore-not-found --wait=true
}

status() {
  kc -n $NS get pods -o wide --no-headers 2>/dev/null | awk '{printf "%-26s %-8s %-8s %s\n", "pod " $1, "-", $3, "node " $7 ", ready " $2 ", restarts " $4}'
}

case "${1:-}" in
  secrets) secrets ;;
  apply) apply ;;
  up) secrets; apply ;;
  delete) delete ;;
  status) status ;;
  *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
