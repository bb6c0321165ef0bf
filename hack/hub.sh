#!/usr/bin/env bash
# The NATS hub the provider talks to and every site's leaf node dials: nats-server (built into $EF_BIN) with
# JetStream in domain "hub", secured as decision 0008 has it: operator mode (the fleet's accounts from hack/fleet.sh
# identity, a full resolver that keeps pushed revocations in <member>/resolver/), TLS from the fleet CA on every port,
# the leafnode listener on the fleet address ($EF_FLEET_IP: sites reach it through their veth), client and monitoring
# ports on loopback. Server-wide ping_interval 2s / ping_max 2 so a silently cut leaf link is seen in ~5 s (the
# defaults take minutes; there is no per-leaf setting).
#   hack/hub.sh up [MEMBER]|down|status    HUB=N picks the number of hub servers: 1 (default) or 3/5 (a cluster).
#   `up MEMBER` starts that one member again (hack/fault.sh restart hub-N), the others keep running.
#
# Layout: each hub server is one "member" (lib.sh ef_hub_members) with its own name, ports, config and store dir.
# HUB=1 is the single member "hub" in $EF_STATE/hub (nats.conf, js/, resolver/) on the ports from lib.sh. HUB=3 is hub-1..hub-3
# under $EF_STATE/hub/<member>/ on lib.sh's ports + 0..2, each with a `cluster {}` block routing to the others; the
# provider lists every member's client URL, each site's leaf remote every member's leaf URL. The size is recorded
# in $EF_STATE/hub/size: down/status/up without HUB act on it; changing it needs `make clean` (the JetStream stores
# of the two layouts are unrelated, and sites would source from a stream that restarted at sequence 1).
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
case "$EF_HUB" in 1|3|5) ;; *) ef_die "HUB=$EF_HUB: the hub runs 1 server or a cluster of 3 or 5" ;; esac
members() { ef_hub_members; }

# The member's configuration, rendered by @edgefarm/identity (renderHubConfig, through its CLI) from the fleet's
# operator and account JWTs made at init: operator mode with a full resolver, TLS from the fleet CA on the client,
# leaf and cluster ports, the leaf port on the fleet address, client and monitoring ports on loopback.
write_conf() { # NAME DIR CLIENT_PORT MON_PORT LEAF_PORT CLUSTER_PORT
  local name=$1 dir=$2 port=$3 mon=$4 leaf=$5 cport=$6 cluster=() n c
  mkdir -p "$dir/js" "$dir/resolver"
  if [ "$cport" != - ]; then
    cluster=(--cluster "127.0.0.1:$cport")
    while read -r n _ _ _ _ c; do [ "$n" = "$name" ] || cluster+=(--route "nats-route://127.0.0.1:$c"); done < <(members)
  fi
  ef_identity hub-config --dir "$EF_FLEET" --name "$name" --listen "127.0.0.1:$port" --monitor "127.0.0.1:$mon" \
    --leaf "$EF_FLEET_IP:$leaf" "${cluster[@]}" --cert "$EF_FLEET_TLS/hub.crt" --key "$EF_FLEET_TLS/hub.key" \
    --ca "$EF_FLEET_TLS/ca.crt" --store "$dir/js" --resolver-dir "$dir/resolver" --out "$dir/nats.conf" >/dev/null
}

healthy() { ef_http_ok "http://127.0.0.1:$1/healthz?js-enabled-only=true"; }

# A JetStream meta leader is known (a cluster can create and serve streams).
meta_leader() { curl -fs --noproxy '*' -m 2 "http://127.0.0.1:$1/jsz" | jq -e '.meta_cluster.leader // "" | length > 0' >/dev/null; }

up() {
  local only=${1:-} name dir port mon leaf cport size_file=$EF_STATE/hub/size
  [ -x "$EF_BIN/nats-server" ] || ef_die "$EF_BIN/nats-server is missing: run hack/deps.sh (or hack/build-binaries.sh nats)"
  [ -f "$EF_FLEET/fleet.json" ] && [ -f "$EF_FLEET_TLS/hub.crt" ] || ef_die "no fleet identity or TLS in $EF_STATE: run hack/fleet.sh identity first (make up does)"
  ef_use_node
  ef_fleet_ip_up
  if [ -f "$size_file" ] && [ "$(cat "$size_file")" != "$EF_HUB" ]; then
    ef_die "this instance's hub was set up with HUB=$(cat "$size_file"); changing it to HUB=$EF_HUB needs \`make clean\` first"
  fi
  if [ -n "$only" ] && ! members | awk '{print $1}' | grep -qx "$only"; then
    ef_die "no hub member $only (members: $(members | awk '{printf "%s ", $1}'))"
  fi
  mkdir -p "$EF_STATE/hub"
  echo "$EF_HUB" > "$size_file"
  while read -r name dir port mon leaf cport; do
    [ -z "$only" ] || [ "$name" = "$only" ] || continue
    write_conf "$name" "$dir" "$port" "$mon" "$leaf" "$cport"
    ef_start "$name" -- "$EF_BIN/nats-server" -c "$dir/nats.conf"
  done < <(members)
  while read -r name dir port mon leaf cport; do
    [ -z "$only" ] || [ "$name" = "$only" ] || continue
    ef_wait_up "$name" "nats $name /healthz?js-enabled-only=true on 127.0.0.1:$mon" 30 healthy "$mon"
    [ "$cport" = - ] || ef_wait_up "$name" "a JetStream meta leader seen by $name" 30 meta_leader "$mon"
    echo "[hub] $name up: nats://127.0.0.1:$port (TLS, operator mode; leafnodes tls://$EF_FLEET_IP:$leaf, monitoring http://127.0.0.1:$mon, JetStream domain hub)"
  done < <(members)
}

down() {
  local name rest
  while read -r name rest; do
    if [ -f "$EF_PIDS/$name.pid" ]; then echo "[hub] stopping $name (pid $(ef_pid "$name"))"; ef_stop "$name" 15; fi
  done < <(members)
}

status() {
  local name dir port mon leaf cport pid st extra
  while read -r name dir port mon leaf cport; do
    pid=$(ef_pid "$name"); if ef_running "$name"; then st=running; elif [ -n "$pid" ]; then st=dead; else st=stopped; fi
    extra=""
    if [ "$cport" != - ]; then
      extra=", cluster $cport"
      [ "$st" = running ] && extra+=", meta leader $(curl -fs --noproxy '*' -m 2 "http://127.0.0.1:$mon/jsz" | jq -r '.meta_cluster.leader // "none"' 2>/dev/null || echo '?')"
    fi
    printf '%-26s %-8s %-8s %s\n' "nats $name" "${pid:--}" "$st" "$port (leaf $leaf, mon $mon$extra)"
  done < <(members)
}

case "${1:-status}" in
  up) up "${2:-}" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up [MEMBER]|down|status" >&2; exit 2 ;;
esac
