#!/usr/bin/env bash
# Shows what of the local EdgeFarm stack ($EF_INSTANCE) runs: component, PID, state, port; then each site
# (hack/site.sh status) and, when the apiserver answers, the Nodes.
set -uo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
H=$EF_ROOT/hack
echo "EdgeFarm instance $EF_INSTANCE   state $EF_STATE   run $EF_RUN"
printf '%-26s %-8s %-8s %s\n' COMPONENT PID STATE PORT
"$H/controlplane.sh" status
if [ "$EF_DEPLOY" = cluster ]; then
  "$H/cloud-node.sh" status
  ef_running kube-apiserver && "$H/install.sh" status
else
  "$H/hub.sh" status
  "$H/fleet.sh" status
fi
replicas=$( (ef_provider_replicas; [ "$EF_DEPLOY" = cluster ] || seq 1 "$EF_PROVIDERS") | sort -nu)
for r in $replicas; do
  n=provider-$r pid=$(ef_pid provider-$r)
  if ef_running $n; then st=running; elif [ -n "$pid" ]; then st=dead; else st=stopped; fi
  printf '%-26s %-8s %-8s %s\n' $n "${pid:--}" "$st" "$(ef_provider_http_port $r) (kubelet API $(ef_provider_kubelet_port $r))"
done
for s in $EF_SITES; do
  echo
  echo "site $s:"; bash "$H/site.sh" status "$s"
done
if ef_running kube-apiserver && [ -f "$EF_KUBECONFIG" ]; then
  echo
  kubectl --kubeconfig "$EF_KUBECONFIG" get nodes -o wide 2>&1
fi
echo
echo "export KUBECONFIG=$EF_KUBECONFIG     logs: $EF_LOGS"
