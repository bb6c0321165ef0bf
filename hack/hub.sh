#!/usr/bin/env bash
# The NATS hub the provider talks to and every site's leaf node dials: nats-server (built into $EF_BIN) with
# JetStream in domain "hub", the leafnode listener on all addresses (sites reach it over their veth), client and
# monitoring ports on loopback. Server-wide ping_interval 2s / ping_max 2 so a silently cut leaf link is seen in ~5 s
# (the defaults take minutes; there is no per-leaf setting).
#   hack/hub.sh up|down|status        HUB=N picks the number of hub servers (only 1 is built so far).
#
# Layout, so that a cluster is an addition: each hub server is one "member" with its own name, ports, config and
# store dir. HUB=1 is the single member "hub" in $EF_STATE/hub (nats.conf, js/) on the ports from lib.sh. A cluster
# (HUB=3) would add members hub-1..hub-3 under $EF_STATE/hub/<member>/, a `cluster {}` block with routes between
# them, and per-member port offsets; clients and leaves would then list every member's URL.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
HUB=${HUB:-1}
[ "$HUB" = 1 ] || ef_die "HUB=$HUB: only a single hub server is implemented so far (HUB=1)"

# members: one line per hub server: NAME DIR CLIENT_PORT MON_PORT LEAF_PORT
members() { echo "hub $EF_STATE/hub $EF_HUB_PORT $EF_HUB_MON_PORT $EF_HUB_LEAF_PORT"; }

write_conf() { # NAME DIR CLIENT_PORT MON_PORT LEAF_PORT
  local name=$1 dir=$2 port=$3 mon=$4 leaf=$5
  mkdir -p "$dir/js"
  cat > "$dir/nats.conf.tmp" <<EOF
# Written by hack/hub.sh (instance $EF_INSTANCE); edits are overwritten on the next \`up\`.
server_name: $name
listen: 127.0.0.1:$port
http: 127.0.0.1:$mon
# Dead-link detection: a silent leaf link is closed after ~2 missed pings (~5 s).
ping_interval: "2s"
ping_max: 2
jetstream {
  domain: hub
  store_dir: "$dir/js"
}
leafnodes {
  host: 0.0.0.0
  port: $leaf
}
EOF
  mv "$dir/nats.conf.tmp" "$dir/nats.conf"
}

healthy() { ef_http_ok "http://127.0.0.1:$1/healthz?js-enabled-only=true"; }

up() {
  [ -x "$EF_BIN/nats-server" ] || ef_die "$EF_BIN/nats-server is missing: run hack/deps.sh (or hack/build-binaries.sh nats)"
  local name dir port mon leaf
  while read -r name dir port mon leaf; do
    write_conf "$name" "$dir" "$port" "$mon" "$leaf"
    ef_start "$name" -- "$EF_BIN/nats-server" -c "$dir/nats.conf"
  done < <(members)
  while read -r name dir port mon leaf; do
    ef_wait_up "$name" "nats $name /healthz?js-enabled-only=true on 127.0.0.1:$mon" 30 healthy "$mon"
    echo "[hub] $name up: nats://127.0.0.1:$port (leafnodes 0.0.0.0:$leaf, monitoring http://127.0.0.1:$mon, JetStream domain hub)"
  done < <(members)
}

down() {
  local name rest
  while read -r name rest; do
    if [ -f "$EF_PIDS/$name.pid" ]; then echo "[hub] stopping $name (pid $(ef_pid "$name"))"; ef_stop "$name" 15; fi
  done < <(members)
}

status() {
  local name dir port mon leaf pid st
  while read -r name dir port mon leaf; do
    pid=$(ef_pid "$name"); if ef_running "$name"; then st=running; elif [ -n "$pid" ]; then st=dead; else st=stopped; fi
    printf '%-26s %-8s %-8s %s\n' "nats $name" "${pid:--}" "$st" "$port (leaf $leaf, mon $mon)"
  done < <(members)
}

case "${1:-status}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
