#!/usr/bin/env bash
# Faults by hand on a running stack (`make up`, instance $EF_INSTANCE), to watch what EdgeFarm does about them.
#
#   hack/fault.sh partition SITE        cut SITE's link to the hub: every packet to/from the hub's leafnode ports on
#                                       the site's veth is dropped (the leaf link goes silent, not refused; the site's
#                                       own NATS, containerd, agent and pods run on untouched)
#   hack/fault.sh heal SITE             remove exactly those rules again
#   hack/fault.sh status                current partitions (and the processes' states)
#   hack/fault.sh kill COMPONENT [SITE]       SIGKILL by recorded PID (no cleanup, like a crash or OOM kill)
#   hack/fault.sh restart COMPONENT [SITE]    stop it if it runs (TERM, by PID), then start it as make up does
#
# COMPONENT: agent | site-nats | containerd (per site: SITE is required), provider (every replica) or provider-N,
# hub (every hub server) or hub-N (with HUB=3; the single server is "hub"), registrar.
# Partition and heal are idempotent. Killing containerd leaves the pods running under their shims.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
H=$EF_ROOT/hack

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

# ---- sites ----
# The names recorded by hack/site.sh up (veth_host, ...); dies for a site that is not up.
load_site() {
  local site=$1 env
  env=$(ef_site_state "$site")/site.env
  [ -f "$env" ] || ef_die "unknown site '$site': no $env (sites of this instance: $EF_SITES; is it up?)"
  # shellcheck disable=SC1090
  . "$env"
}

# All packets of a leaf connection: site -> hub arrive on the host side of the veth with the hub's leaf port as
# destination; hub -> site leave through it with that port as source. DROP, not REJECT: a cut cable, not a refusal.
# With the hub in pods behind a NodePort (EF_CLOUD_NET=pod), kube-proxy has rewritten the destination before the
# filter table sees it and the packets are forwarded, not delivered: those connections are matched in FORWARD by the
# port they were opened to (conntrack's original destination port).
rule_tag() { echo "edgefarm:$EF_INSTANCE:partition:$1"; }
rules() { # SITE: one line per rule: CHAIN ARGS...
  local p
  for p in $(ef_hub_leaf_ports); do
    echo "INPUT -i $veth_host -p tcp --dport $p -m comment --comment $(rule_tag "$1") -j DROP"
    echo "OUTPUT -o $veth_host -p tcp --sport $p -m comment --comment $(rule_tag "$1") -j DROP"
    if [ "$EF_CLOUD_NET" = pod ]; then
      echo "FORWARD -i $veth_host -p tcp -m conntrack --ctorigdstport $p -m comment --comment $(rule_tag "$1") -j DROP"
      echo "FORWARD -o $veth_host -p tcp -m conntrack --ctorigdstport $p -m comment --comment $(rule_tag "$1") -j DROP"
    fi
  done
}

partition() {
  local site=$1 chain args n=0
  load_site "$site"
  while read -r chain args; do
    # shellcheck disable=SC2086
    iptables -C "$chain" $args 2>/dev/null || { iptables -I "$chain" $args; n=$((n + 1)); }
  done < <(rules "$site")
  if [ $n = 0 ]; then echo "site $site is already partitioned from the hub"; else
    echo "site $site partitioned from the hub at $(date +%T.%3N) (drop tcp ports $(ef_hub_leaf_ports) on $veth_host)"; fi
}

heal() {
  local site=$1 chain args n=0
  load_site "$site"
  while read -r chain args; do
    # shellcheck disable=SC2086
    while iptables -C "$chain" $args 2>/dev/null; do iptables -D "$chain" $args; n=$((n + 1)); done
  done < <(rules "$site")
  if [ $n = 0 ]; then echo "site $site was not partitioned"; else echo "site $site healed at $(date +%T.%3N)"; fi
}

status() {
  local found=0 site
  echo "partitions (instance $EF_INSTANCE):"
  for site in $(iptables -S 2>/dev/null | grep -o "edgefarm:$EF_INSTANCE:partition:[^ \"]*" | sed 's/.*:partition://' | sort -u); do
    echo "  $site: cut from the hub (leaf ports $(ef_hub_leaf_ports))"; found=1
  done
  [ $found = 1 ] || echo "  none"
  echo
  "$H/status.sh" | sed -n '/^COMPONENT/,/^export KUBECONFIG/p' | sed '$d'
}

# ---- processes ----
# Pidfile names the component stands for (several for provider/hub).
targets() {
  local comp=$1 site=${2:-} r
  [ -z "$site" ] || case "$comp" in provider|provider-*|hub|hub-*|registrar) ef_die "$comp takes no site" ;; esac
  case "$comp" in
    agent|site-nats|containerd)
      [ -n "$site" ] || ef_die "$comp needs a site: hack/fault.sh ${cmd:-kill} $comp SITE (sites: $EF_SITES)"
      load_site "$site"
      case "$comp" in agent) echo "agent-$site" ;; site-nats) echo "nats-$site" ;; containerd) echo "containerd-$site" ;; esac ;;
    provider)
      for r in $( (ef_provider_replicas; seq 1 "$EF_PROVIDERS") | sort -nu); do echo "provider-$r"; done ;;
    provider-[0-9]*)
      r=${comp#provider-}; [[ "$r" =~ ^[0-9]+$ ]] || ef_die "unknown component '$comp'"
      [ -f "$EF_PIDS/$comp.pid" ] || [ "$r" -le "$EF_PROVIDERS" ] || ef_die "no $comp in this instance (EF_PROVIDERS=$EF_PROVIDERS)"
      echo "$comp" ;;
    hub) ef_hub_members | awk '{print $1}' ;;
    registrar) echo registrar ;;
    hub-*)
      ef_hub_members | awk '{print $1}' | grep -qx "$comp" || ef_die "no hub member '$comp' (members: $(ef_hub_members | awk '{printf "%s ", $1}'))"
      echo "$comp" ;;
    *) ef_die "unknown component '$comp': agent, site-nats, containerd (with SITE), provider[-N], hub[-N], registrar" ;;
  esac
}

kill_() {
  local name pid i
  for name in "$@"; do
    pid=$(ef_pid "$name")
    if [ -z "$pid" ] || ! ef_pid_alive "$pid"; then echo "$name is not running"; continue; fi
    kill -KILL "$pid"
    for ((i = 0; i < 50; i++)); do ef_pid_alive "$pid" || break; sleep 0.1; done
    echo "$name (pid $pid) killed with SIGKILL at $(date +%T.%3N)"
  done
}

start_() { # NAME [SITE]
  local name=$1 site=${2:-} r
  case "$name" in
    agent-*) bash "$H/site.sh" start "$site" agent ;;
    nats-*) bash "$H/site.sh" start "$site" nats ;;
    containerd-*) bash "$H/site.sh" start "$site" containerd ;;
    provider-*)
      r=${name#provider-}
      ef_provider_start "$r"
      ef_wait_up "$name" "$name /healthz" 30 ef_http_ok "http://127.0.0.1:$(ef_provider_http_port "$r")/healthz" ;;
    # Every member that does not run (a cluster member alone has no JetStream meta quorum to wait for).
    hub|hub-*) "$H/hub.sh" up ;;
    registrar) "$H/fleet.sh" start ;;
  esac
  echo "$name started (pid $(ef_pid "$name")) at $(date +%T.%3N)"
}

restart() {
  local site=$1 name hub_started=""; shift
  for name in "$@"; do ef_running "$name" && { echo "stopping $name (pid $(ef_pid "$name"))"; ef_stop "$name" 15; }; done
  for name in "$@"; do
    case "$name" in hub|hub-*) [ -n "${hub_started:-}" ] && continue; hub_started=1 ;; esac
    start_ "$name" "$site"
  done
}

[ $# -ge 1 ] || usage
cmd=$1; shift
case "$cmd" in
  partition|heal) [ $# -eq 1 ] || usage; "$cmd" "$1" ;;
  status) [ $# -eq 0 ] || usage; status ;;
  kill|restart)
    [ $# -ge 1 ] && [ $# -le 2 ] || usage
    mapfile -t names < <(targets "$@")
    [ ${#names[@]} -gt 0 ] || exit 1
    if [ "$cmd" = kill ]; then kill_ "${names[@]}"; else restart "${2:-}" "${names[@]}"; fi ;;
  -h|--help|help) usage ;;
  *) echo "unknown command '$cmd'" >&2; usage ;;
esac
