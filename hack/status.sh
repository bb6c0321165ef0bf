#!/usr/bin/env bash
# Shows what of the local EdgeFarm stack ($EF_INSTANCE) runs: component, PID, state, port; then each site
# (hack/site.sh status) and, when the apiserver answers, the Nodes.
set -uo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
H=$EF_ROOT/hack
echo "EdgeFarm instance $EF_INSTANCE   state $EF_STATE   run $EF_RUN"
printf '%-26s %-8s %-8s %s\n' COMPONENT PID STATE PORT
"$H/controlplane.sh" status
"$H/hub.sh" status
pid=$(ef_pid provider); if ef_running provider; then st=running; elif [ -n "$pid" ]; then st=dead; else st=stopped; fi
printf '%-26s %-8s %-8s %s\n' provider "${pid:--}" "$st" "$EF_PROVIDER_HTTP_PORT (kubelet API $EF_KUBELET_PORT)"
for s in $EF_SITES; do
  echo
  if [ -f "$H/site.sh" ]; then
    echo "site $s:"; bash "$H/site.sh" status "$s"
  else
    echo "site $s: hack/site.sh not there yet"
  fi
done
if ef_running kube-apiserver && [ -f "$EF_KUBECONFIG" ]; then
  echo
  kubectl --kubeconfig "$EF_KUBECONFIG" get nodes -o wide 2>&1
fi
echo
echo "export KUBECONFIG=$EF_KUBECONFIG     logs: $EF_LOGS"
