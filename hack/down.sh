#!/usr/bin/env bash
# Stops the local EdgeFarm stack of instance $EF_INSTANCE, each process by its recorded PID (hack/lib.sh ef_stop):
# the provider replicas, the registrar, then every site (hack/site.sh down), the NATS hub, the cloud node with its
# pods (EF_DEPLOY=cluster: kubelet, the pods' containers, containerd), the control plane. State is
# kept (the fleet's identity, every site's join): hack/up.sh resumes.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
H=$EF_ROOT/hack
for r in $(ef_provider_replicas); do
  [ -f "$EF_PIDS/provider-$r.pid" ] && { echo "[provider-$r] stopping (pid $(ef_pid provider-$r))"; ef_stop provider-$r 15; }
done
"$H/fleet.sh" down
# Reverse order of EF_SITES.
rev=(); for s in $EF_SITES; do rev=("$s" "${rev[@]}"); done
for s in "${rev[@]}"; do bash "$H/site.sh" down "$s" || echo "warning: hack/site.sh down $s failed" >&2; done
"$H/hub.sh" down
# EF_DEPLOY=cluster: the hub, the provider and the registrar are pods of the cloud node.
"$H/cloud-node.sh" down
"$H/controlplane.sh" down
# Anything else still recorded for this instance (a component that another script started under another name).
shopt -s nullglob
for f in "$EF_PIDS"/*.pid; do
  n=$(basename "$f" .pid)
  if ef_running "$n"; then echo "warning: $n (pid $(ef_pid "$n")) is still running, left alone" >&2; else rm -f "$f"; fi
done
echo "EdgeFarm ($EF_INSTANCE) is down; state kept in $EF_STATE (make up resumes, make clean removes it)"
