#!/usr/bin/env bash
# One edge site on this machine: a network namespace joined to the host by a veth pair (a partition is a real cut
# link), containerd (CRI) inside it, the site's leaf nats-server, and the edge-agent. Every name, address, port and
# path comes from hack/lib.sh, so any number of sites (EF_SITES) and instances (EF_INSTANCE) run side by side.
# Layout and rationale: docs/site.md.
#
#   hack/site.sh join SITE [--force]   the site's side of joining the fleet: creates netns + veth, then runs
#                              `edgefarm join` inside the netns with the token read from standard input (the admin
#                              made it: edgefarm token create SITE) against the registrar ($EF_REGISTRAR_URL), into
#                              the site's join directory $(ef_site_state SITE)/identity: the node's and the agent's
#                              keys (made here, never sent), node.creds, ca.pem, nats-site.conf, agent.env.
#                              Refused when the site has joined already, unless --force (after edgefarm node revoke)
#   hack/site.sh up SITE       create netns + veth, start containerd (+ import images), nats (the join's
#                              nats-site.conf: a leaf to the hub with the node's credentials), agent (the join's
#                              agent.env); a site that has not joined is refused. nats and the agent are restarted
#                              when the site joined again since they started
#   hack/site.sh down SITE     stop agent, nats, containerd by PID; pods keep running under their shims and are
#                              re-adopted by the next `up` (a daemon restart on a real node); network stays
#   hack/site.sh status SITE   one line per component: PID and state, leaf link state
#   hack/site.sh clean SITE    remove every container, stop everything, unmount, delete netns/veth/bridge, cgroups,
#                              state: leaves the machine as it was before `up`
#   hack/site.sh start SITE containerd|nats|agent   start one component again as `up` does (hack/fault.sh restart)
#   hack/site.sh exec SITE CMD...   run CMD inside the site's network namespace
#   hack/site.sh import SITE DIR    import the images of DIR/index.txt (hack/images.sh's layout) that the site's
#                              containerd lacks or has at another digest (hack/conformance-images.sh)
#
# A hollow site (scale tests, bench/scale.ts): `EF_SITE_HOLLOW="FIRST COUNT" hack/site.sh up SITE` starts no
# containerd and joins nothing; instead of the edge-agent, one hollow-site process (edge-agent/src/hollow/main.ts)
# runs COUNT hollow edge nodes hollow-<FIRST..> (4 digits) against the site's leaf nats-server, every one a real
# agent over an in-memory runtime. Its leaf dials the hub as the bench-only hollow user (identity's hollow-creds:
# every node's subjects behind one leaf; never made outside make bench), its agents connect to their site server
# without credentials (loopback inside the netns). Recorded in site.env, so down/clean/status/fault.sh treat it as
# any site (component `agent`).
# The agent (and every node of a hollow site) gets the environment this script runs with, so the agent's settings
# (EF_LOG_LEVEL, EF_RESYNC_MS, ...: docs/reference/settings.md) can be given to it; the names, addresses and
# directories of the site are set here.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1 site=$2
shift 2

# ---- names (recorded at `up` in site.env, so down/clean/status still find the right netns and veth if EF_SITES
# changed in between) ----
st=$(ef_site_state "$site")
if [ -f "$st/site.env" ]; then
  . "$st/site.env"
else
  ef_site_index "$site" >/dev/null 2>&1 || {
    case "$cmd" in up|join) ef_die "site $site is not in EF_SITES ($EF_SITES): export EF_SITES=\"$EF_SITES $site\"" ;; esac
    ef_log "site $site: not in EF_SITES and no state at $st: nothing to do"; exit 0; }
  ns=$(ef_site_netns "$site")
  veth_host=$(ef_site_veth_host "$site")
  veth_site=$(ef_site_veth_site "$site")
  host_ip=$(ef_site_host_ip "$site")
  site_ip=$(ef_site_ip "$site")
  pod_cidr=$(ef_site_pod_cidr "$site")
  run=$(ef_site_run "$site")
  sock=$(ef_site_containerd_sock "$site")
  hollow=${EF_SITE_HOLLOW:-}
fi
hollow=${hollow:-}
ctd_dir=$st/containerd                    # containerd config, root, CNI config and IPAM (hack/containerd-config.sh)
ctd_state=$(dirname "$sock")/state        # containerd state: shim bundles, runc root, pod netns mounts
cgroup_parent=/edgefarm/$EF_INSTANCE/$site  # pod cgroups go below this in every cgroup hierarchy
pod_logs=$st/pods                         # pod log directories (CRI log_directory) go below this
pod_volumes=$st/pod-volumes               # pod volume directories (<uid>/volumes/<name>; some are tmpfs mounts)
agent_state=$st/agent                     # the agent's own state (its desired-state snapshot)
nats_conf=$st/nats.conf                   # a hollow site's server configuration (a joined site runs the join's)
id_dir=$st/identity                       # the join directory (edgefarm join --dir)
images=$EF_CACHE/images

# The site's programs. EF_DEPLOY=cluster (make up): the site package's installed tree ($EF_STATE/site-root, written
# by hack/package.sh --tree from the same files as the .deb), run from the paths a gateway has them at below it:
# usr/bin/edgefarm (the join), usr/lib/edgefarm/bin/nats-server and usr/lib/edgefarm/bin/edgefarm-agent (the
# commands of edgefarm-nats.service and edgefarm-agent.service). EF_DEPLOY=process (DEV=1, the suites' stacks):
# this checkout's builds.
pkg_root=$EF_STATE/site-root
if [ "$EF_DEPLOY" = cluster ]; then
  site_cli=("$pkg_root/usr/bin/edgefarm")
  site_nats=$pkg_root/usr/lib/edgefarm/bin/nats-server
else
  site_cli=(node "$EF_ROOT/cli/dist/main.js")
  site_nats=$EF_BIN/nats-server
fi

in_ns() { nsenter --net="/run/netns/$ns" "$@"; }
netns_exists() { [ -e "/run/netns/$ns" ] && ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns"; }
ctr_() { ctr --address "$sock" "$@"; }
# Processes of a site run with only their network namespace switched (nsenter --net), NOT `ip netns exec`: that
# also unshares the mount namespace and remounts /sys, which hides /sys/fs/cgroup (runc cannot find the cgroup v1
# hierarchies) and keeps containerd's overlay/netns/shm mounts out of the host's view, so a restarted containerd
# could not see the mounts of the pods it re-adopts.
site_start() { local name=$1; shift; ef_start "$name" --netns "$ns" -- "$@"; }

leafz() { in_ns curl -sf --noproxy "*" --max-time 2 "http://127.0.0.1:$EF_SITE_NATS_MON_PORT/leafz"; }
leaf_connected() { leafz | jq -e '(.leafs // []) | length >= 1' >/dev/null; }
hub_reachable() { local p; for p in $(ef_hub_leaf_ports); do in_ns timeout 2 bash -c "exec 3<>/dev/tcp/$EF_FLEET_IP/$p" 2>/dev/null && return 0; done; return 1; }
joined() { [ -f "$id_dir/node.json" ] && [ -f "$id_dir/nats-site.conf" ] && [ -f "$id_dir/agent.env" ]; }
# older_than NAME FILE: NAME runs and started before FILE was written.
older_than() { ef_running "$1" && [ "$2" -nt "$EF_PIDS/$1.pid" ]; }

# ---- up ----
net_up() {
  if ! netns_exists; then ip netns add "$ns"; fi
  if ! ip link show "$veth_host" >/dev/null 2>&1; then
    ip link add "$veth_host" type veth peer name "$veth_site" netns "$ns"
  fi
  ip addr replace "$host_ip/24" dev "$veth_host"
  ip link set "$veth_host" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr replace "$site_ip/24" dev "$veth_site"
  ip -n "$ns" link set "$veth_site" up
  ip -n "$ns" route replace default via "$host_ip" dev "$veth_site"
  # Pods' replies to the host (no masquerade at the site): the pod subnet is reached through the site.
  ip route replace "$pod_cidr" via "$site_ip" dev "$veth_host"
}

containerd_up() {
  "$EF_ROOT/hack/images.sh"
  "$EF_ROOT/hack/containerd-config.sh" "$ctd_dir" "$sock" "$pod_cidr"
  mkdir -p "$(dirname "$sock")"
  site_start "containerd-$site" containerd --config "$ctd_dir/config.toml"
  ef_wait_up "containerd-$site" "containerd on $sock" 30 ctr_ version
  ef_wait_up "containerd-$site" "the CRI plugin" 10 sh -c "ctr --address '$sock' plugins ls | grep -q 'io.containerd.grpc.v1 *cri .* ok'"
  import_images "$images"
}

# import_images DIR: imports each tarball of DIR/index.txt (TARBALL NAME MANIFEST-DIGEST) whose images are missing
# from the site's containerd or differ (compared by manifest digest).
import_images() {
  local dir=$1 have tar name digest todo=""
  have=$(ctr_ -n k8s.io images ls 2>/dev/null | awk 'NR > 1 {print $1, $3}')
  while read -r tar name digest; do
    grep -qxF "$name $digest" <<<"$have" || case " $todo " in *" $tar "*) ;; *) todo+=" $tar" ;; esac
  done < "$dir/index.txt"
  for tar in $todo; do
    ctr_ -n k8s.io images import "$dir/$tar" >/dev/null
  done
  [ -z "$todo" ] || ef_log "$site: imported$todo"
}

nats_up() {
  local conf=$id_dir/nats-site.conf
  [ -x "$site_nats" ] || ef_die "$site_nats is missing: run hack/build-binaries.sh (DEV=1) or hack/package.sh --tree $pkg_root"
  if [ -n "$hollow" ]; then
    hollow_nats_conf
    conf=$nats_conf
  else
    # The join's configuration (identity's renderSiteConfig): JetStream in the site's domain with its store in
    # $st/jetstream capped at 1 GiB (max_file_store; the agent keeps that much free beside it, EF_STORE_RESERVE, and
    # rotates container logs: docs/site.md#disk), fsync before every ack (an edge box loses power more often than it crashes; cost measured by
    # bench/fsync.ts, decision 0004), pings every 2 s, monitoring on 127.0.0.1:$EF_SITE_NATS_MON_PORT, the agent's
    # nkey as the only user, the leaf remote with the node's credentials file (read again at every dial) over TLS.
    joined || ef_die "site $site has not joined the fleet (no $id_dir/node.json): edgefarm token create $site | hack/site.sh join $site (make up does)"
    if older_than "nats-$site" "$conf"; then
      echo "[$site] the site joined again since its nats-server started: restarting it"
      ef_stop "nats-$site" 15
    fi
  fi
  # A server of another build (the checkout's before the package's, or an older package) is restarted.
  if ef_running "nats-$site" && [ "$(readlink -f "/proc/$(ef_pid "nats-$site")/exe")" != "$(readlink -f "$site_nats")" ]; then
    echo "[$site] its nats-server is not $site_nats: restarting it"
    ef_stop "nats-$site" 15
  fi
  site_start "nats-$site" "$site_nats" -c "$conf"
  ef_wait_up "nats-$site" "nats-server of $site (JetStream ready)" 30 \
    in_ns curl -sf --noproxy "*" --max-time 2 "http://127.0.0.1:$EF_SITE_NATS_MON_PORT/healthz?js-enabled-only=true"
  if hub_reachable; then
    ef_wait_up "nats-$site" "the leaf link of $site to the hub at $EF_FLEET_IP (ports $(ef_hub_leaf_ports))" 20 leaf_connected
  else
    echo "warning: no hub at $EF_FLEET_IP (leaf ports $(ef_hub_leaf_ports); hack/hub.sh up?): site $site runs offline; its leaf connects when the hub comes up" >&2
  fi
}

# A hollow site's server: JetStream in the site's domain with its store on tmpfs (a hollow site stands in for
# hundreds of edge boxes, each with a disk of its own: on one machine their stores would measure this machine's one
# disk, not EdgeFarm; decision 0007), no client credentials (its hollow agents, on loopback inside the netns), and the
# leaf remote as the bench-only hollow user over TLS.
hollow_nats_conf() {
  local domain store creds=$st/hollow.creds urls
  domain=$(ef_site_domain "$site")
  store=$(hollow_store)
  mkdir -p "$store"
  if [ ! -f "$creds" ]; then
    ef_use_node
    ef_identity hollow-creds --dir "$EF_FLEET" --out "$creds" >/dev/null
  fi
  urls=$(ef_hub_leaf_urls | sed 's/[^,]*/"&"/g; s/,/, /g')
  cat > "$nats_conf.tmp" <<EOF
# Written by hack/site.sh: the leaf nats-server of hollow site $site (inside netns $ns). BENCH ONLY.
server_name: "$site"
listen: "127.0.0.1:$EF_SITE_NATS_PORT"
http: "127.0.0.1:$EF_SITE_NATS_MON_PORT"
# A silent (cut) link is detected in ~5 s instead of minutes; nats-server has no per-leaf ping setting.
ping_interval: "2s"
ping_max: 2
jetstream {
  domain: "$domain"
  store_dir: "$store"
}
leafnodes {
  reconnect: 1
  # Every hub member (HUB=3: a cluster); the leaf dials the next one when its member goes away.
  remotes: [ {
    urls: [ $urls ]
    credentials: "$creds"
    tls: { ca_file: "$EF_FLEET_TLS/ca.crt" }
  } ]
}
EOF
  mv -f "$nats_conf.tmp" "$nats_conf"
}

# The agent has started: it answers /healthz on its metrics address ($1, inside the netns), or, with the metrics
# server off, it has logged "edge-agent started" after byte $2 of its log.
agent_started() {
  local addr=$1 from=$2
  if [ "$addr" = off ]; then
    tail -c +"$((from + 1))" "$EF_LOGS/agent-$site.log" | grep -q '"msg":"edge-agent started"'
  else
    addr=${addr/#0.0.0.0:/127.0.0.1:}; addr=${addr/#\[::\]:/[::1]:}
    in_ns curl -sf --noproxy "*" --max-time 2 -o /dev/null "http://$addr/healthz"
  fi
}

# The join's agent.env (EF_NODE_NAME, EF_SITE, EF_NATS_URL, EF_NODE_WIRE_ID, EF_NATS_SEED_FILE, EF_IDENTITY_DIR:
# names, the site server's URL and paths, nothing secret), one NAME=VALUE a line.
join_env() {
  local line
  while IFS= read -r line; do
    [[ "$line" =~ ^EF_[A-Z_]+=[^[:space:]]*$ ]] || ef_die "$id_dir/agent.env: unexpected line: ${line:0:40}"
    echo "$line"
  done < "$id_dir/agent.env"
}

agent_up() {
  local main=${EF_AGENT_MAIN:-$EF_ROOT/edge-agent/dist/main.js} metrics=${EF_METRICS_ADDR:-127.0.0.1:$EF_SITE_AGENT_METRICS_PORT} from env cmd
  if [ "$EF_DEPLOY" = cluster ] && [ -z "${EF_AGENT_MAIN:-}" ]; then
    # the package's wrapper: its Node, its bundle, the node flags (EF_AGENT_NODE_FLAGS), as edgefarm-agent.service
    main=$pkg_root/usr/lib/edgefarm/edge-agent/dist/main.js
    cmd=("$pkg_root/usr/lib/edgefarm/bin/edgefarm-agent")
  else
    cmd=(node ${EF_AGENT_NODE_FLAGS---lite-mode --max-semi-space-size=2} "$main")
  fi
  [ -f "$main" ] || ef_die "$main is missing: run make build (DEV=1) or hack/package.sh --tree $pkg_root"
  joined || ef_die "site $site has not joined the fleet (no $id_dir/agent.env): edgefarm token create $site | hack/site.sh join $site (make up does)"
  if older_than "agent-$site" "$id_dir/agent.env"; then
    echo "[$site] the site joined again since its agent started: restarting it"
    ef_stop "agent-$site" 15
  fi
  # An agent started from an older build is restarted, as make up restarts the provider: the pods keep running
  # under their shims and the new agent adopts them.
  if [ -z "${EF_AGENT_MAIN:-}" ] && { ef_stale_build "agent-$site" edge-agent proto workqueue streaming settings cri registrar || older_than "agent-$site" "$main"; }; then
    echo "[$site] build is newer than the running agent: restarting it"
    ef_stop "agent-$site" 15
  fi
  ef_running "agent-$site" && { ef_log "agent-$site already running (pid $(ef_pid "agent-$site"))"; return 0; }
  ef_use_node
  mapfile -t env < <(join_env)
  mkdir -p "$pod_logs" "$pod_volumes" "$agent_state" "$EF_LOGS"
  from=$(stat -c %s "$EF_LOGS/agent-$site.log" 2>/dev/null || echo 0)
  # The join's settings, then the site's own (its containerd, address, directories, metrics address).
  site_start "agent-$site" env "${env[@]}" EF_CRI_ENDPOINT="$sock" EF_NODE_IP="$site_ip" \
    EF_CGROUP_PARENT="$cgroup_parent" EF_POD_LOG_DIR="$pod_logs" EF_VOLUME_DIR="$pod_volumes" EF_STATE_DIR="$agent_state" \
    EF_METRICS_ADDR="$metrics" "${cmd[@]}"
  ef_wait_up "agent-$site" "the edge-agent of $site to start (/healthz on $metrics)" 60 agent_started "$metrics" "$from"
}

# The JetStream store of a hollow site's leaf: tmpfs.
hollow_store() { echo "/dev/shm/edgefarm/$EF_INSTANCE/$site"; }

# The hollow-site process in place of the agent; waits until every one of its agents has started.
hollow_up() {
  local main=$EF_ROOT/edge-agent/dist/hollow/main.js first count log=$EF_LOGS/agent-$site.log
  read -r first count <<<"$hollow"
  [ -f "$main" ] || ef_die "$main is missing: run make build"
  ef_use_node
  mkdir -p "$st/hollow" "$EF_LOGS"
  : > "$log"
  site_start "agent-$site" env EF_SITE="$site" EF_NATS_URL="nats://127.0.0.1:$EF_SITE_NATS_PORT" EF_NODE_IP="$site_ip" \
    EF_HOLLOW_FIRST="$first" EF_HOLLOW_COUNT="$count" EF_HOLLOW_DIR="$st/hollow" \
    node "$main"
  ef_wait_up "agent-$site" "$count hollow agents of $site" $((60 + count / 2)) grep -q '^hollow site started' "$log"
}

# Records the site's names (site.env) and brings its network up (idempotent).
site_net() {
  mkdir -p "$st"
  cat > "$st/site.env.tmp" <<EOF
ns=$ns
veth_host=$veth_host
veth_site=$veth_site
host_ip=$host_ip
site_ip=$site_ip
pod_cidr=$pod_cidr
run=$run
sock=$sock
hollow="$hollow"
EOF
  mv -f "$st/site.env.tmp" "$st/site.env"
  net_up
}

# ---- join ----
# `edgefarm join` inside the site's netns, the token on standard input (never on a command line). The site server's
# listener, monitoring port and JetStream store are the site's (rendered into nats-site.conf). The join's report
# (-o json: node, key, steps and their durations; nothing secret) is kept in $st/join.json.
site_join() {
  local force=${1:-} out rc=0
  [ -z "$hollow" ] || ef_die "site $site is hollow: hollow sites never join (make bench only)"
  [ -z "$force" ] || [ "$force" = --force ] || usage
  if joined && [ -z "$force" ]; then ef_die "site $site has joined already ($id_dir/node.json); --force joins again (after edgefarm node revoke $site)"; fi
  if [ -t 0 ]; then ef_die "hack/site.sh join reads the join token from standard input: edgefarm token create $site -o json | jq -r .token | hack/site.sh join $site"; fi
  site_net
  ef_use_node
  out=$(in_ns "${site_cli[@]}" join --token-file - --hub "$EF_REGISTRAR_URL" --dir "$id_dir" --node "$site" \
    --listen "127.0.0.1:$EF_SITE_NATS_PORT" --monitor "127.0.0.1:$EF_SITE_NATS_MON_PORT" --store-dir "$st/jetstream" \
    ${force:+--force} -o json 2> >(sed -u "s/^/[$site] edgefarm join /" >&2)) || rc=$?
  [ $rc = 0 ] || ef_die "edgefarm join of site $site failed (exit $rc: cli/README.md lists the codes)"
  printf '%s\n' "$out" > "$st/join.json"
  echo "[$site] joined as node $(jq -r .node <<<"$out") with key $(jq -r .wireId <<<"$out") in $(jq -r .durationMs <<<"$out") ms, credentials until $(jq -r .expiresAt <<<"$out")"
}

# ---- up ----
site_up() {
  site_net
  local t0; t0=$(date +%s%N)
  if [ -n "$hollow" ]; then
    nats_up
    hollow_up
    ef_log "hollow site $site up (first node, nodes: $hollow) in $((($(date +%s%N) - t0) / 1000000)) ms: netns $ns, $site_ip"
    return
  fi
  containerd_up
  nats_up
  agent_up
  ef_log "site $site up in $((($(date +%s%N) - t0) / 1000000)) ms: netns $ns, $site_ip, pods $pod_cidr, containerd $sock"
}

# ---- down / clean ----
site_down() {
  ef_stop "agent-$site"
  # nats (~1.3 s, JetStream flush) and containerd (~2 s) stop independently.
  ef_stop "nats-$site" & ef_stop "containerd-$site" & wait
  ef_log "site $site down (pods keep running under their shims; network kept)"
}

# Mount points under the given directories, deepest first.
mounts_under() {
  local d
  for d in "$@"; do
    awk -v d="$d/" '{ mp = $5; gsub(/\\040/, " ", mp); if (index(mp "/", d) == 1) print mp }' /proc/self/mountinfo
  done | sort -ru
}

remove_containers() {
  local nsp id ids=""
  for nsp in $(ctr_ namespaces ls -q 2>/dev/null); do
    for id in $(ctr_ -n "$nsp" tasks ls -q 2>/dev/null); do
      ctr_ -n "$nsp" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    for id in $(ctr_ -n "$nsp" tasks ls -q 2>/dev/null); do
      ctr_ -n "$nsp" tasks delete -f "$id" >/dev/null 2>&1 || true
    done
    for id in $(ctr_ -n "$nsp" containers ls -q 2>/dev/null); do
      ids+=" $id"
      ctr_ -n "$nsp" containers delete "$id" >/dev/null 2>&1 || true
    done
  done
  echo "$ids"
}

# Last resort when containerd cannot be started: the shims and their containers are children of our containerd;
# their PIDs are in the bundles it wrote.
kill_shims() {
  local f pid
  for f in "$ctd_state"/io.containerd.runtime.v2.task/*/*/init.pid "$ctd_state"/io.containerd.runtime.v2.task/*/*/shim.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f"); [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  done
  # A shim whose bundle is already gone (containerd killed mid-delete) is found by the socket of our containerd it
  # was started for: `containerd-shim-runc-v2 -namespace k8s.io -id ID -address SOCK`.
  for pid in $(pgrep -f "containerd-shim.* -address $sock( |\$)" || true); do kill -KILL "$pid" 2>/dev/null || true; done
}

site_clean() {
  local ids="" d h m
  ef_stop "agent-$site"
  ef_stop "nats-$site"
  if [ -f "$ctd_dir/config.toml" ] && [ -d "$ctd_state" ] && netns_exists; then
    # Containers outlive containerd (`down`): bring it back to remove them through their shims.
    ef_running "containerd-$site" || site_start "containerd-$site" containerd --config "$ctd_dir/config.toml"
    local i
    for ((i = 0; i < 100; i++)); do ctr_ version >/dev/null 2>&1 && break; sleep 0.1; done
    if ctr_ version >/dev/null 2>&1; then
      ids=$(remove_containers)
    else
      echo "warning: containerd of $site did not start; killing its shims by PID" >&2
    fi
  fi
  ef_stop "containerd-$site"
  kill_shims
  local store; store=$(hollow_store)
  rm -rf "$store"
  rmdir "$(dirname "$store")" /dev/shm/edgefarm 2>/dev/null || true   # when empty
  # Bundle dirs name every container containerd knew, even ones it lost track of.
  for d in "$ctd_state"/io.containerd.runtime.v2.task/*/*/; do [ -d "$d" ] && ids+=" $(basename "$d")"; done
  # Mounts: rootfs overlays, sandbox /dev/shm tmpfs, pod netns bind mounts, the agent's tmpfs volumes ($pod_volumes).
  for m in $(mounts_under "$ctd_dir" "$ctd_state" "$st" "$run"); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "warning: could not unmount $m" >&2
  done
  # Network: deleting the netns deletes the veth pair (and the host route through it), efbr0 and pod veths.
  if netns_exists; then ip netns del "$ns"; fi
  if ip link show "$veth_host" >/dev/null 2>&1; then ip link del "$veth_host"; fi
  ip route del "$pod_cidr" 2>/dev/null || true
  [ -e "/run/netns/$ns" ] && rm -f "/run/netns/$ns"
  # A partition left by an interrupted run (hack/fault.sh's rules, tagged by instance and site): the rules name the
  # veth, so a site made again under the same name would start cut off from the hub.
  local rule tag="edgefarm:$EF_INSTANCE:partition:$site"
  while read -r rule; do
    [ -n "$rule" ] && eval "iptables ${rule/#-A /-D }" && echo "removed a partition rule of $site left behind: $rule"
  done < <(iptables -S 2>/dev/null | grep -F -- "\"$tag\"" || true)
  # Pod cgroups (runc removes a container's own cgroup, not the parents it created).
  for h in /sys/fs/cgroup/*/; do
    d=$h${cgroup_parent#/}
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    [ -d "$d" ] && echo "warning: cgroup $d still in use" >&2
    rmdir "$h/edgefarm/$EF_INSTANCE" "$h/edgefarm" 2>/dev/null || true
    # containerd's default parent for a sandbox created without linux.cgroup_parent.
    rmdir "$h/k8s.io" 2>/dev/null || true
  done
  # libcni's result cache is always /var/lib/cni (no setting in containerd 1.6); CNI DEL did not run for
  # sandboxes removed through ctr.
  for id in $ids; do rm -f /var/lib/cni/results/*-"$id"-* 2>/dev/null || true; done
  rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null || true
  # Files and directories.
  rm -rf "$st" "$run"
  rm -f "$EF_LOGS/containerd-$site.log" "$EF_LOGS/nats-$site.log" "$EF_LOGS/agent-$site.log"
  rmdir "$EF_STATE/sites" "$EF_RUN" /run/edgefarm 2>/dev/null || true
  # containerd 1.6 always puts shim sockets in /run/containerd/s; ip netns creates and mounts /run/netns.
  rmdir /run/containerd/s /run/containerd 2>/dev/null || true
  if [ -d /run/netns ] && [ -z "$(ls -A /run/netns)" ]; then
    if mountpoint -q /run/netns; then umount /run/netns 2>/dev/null && rmdir /run/netns 2>/dev/null; else rmdir /run/netns 2>/dev/null; fi || true
  fi
  ef_log "site $site cleaned"
}

# ---- status ----
site_status() {
  local name pid state leaf tasks
  if netns_exists; then
    state="present ($veth_host $host_ip <-> $veth_site $site_ip, host side $(cat "/sys/class/net/$veth_host/operstate" 2>/dev/null || echo missing))"
  else
    state="absent"
  fi
  printf '%-8s %-11s %-8s %s\n' "$site" network - "netns $ns $state"
  if [ -n "$hollow" ]; then state="hollow site: the bench-only hollow user, no join"
  elif [ -f "$id_dir/node.json" ]; then
    state=$(jq -r '"joined as \(.node), key \(.wireId[0:12])..., credentials until \(.expiresAt)"' "$id_dir/node.json" 2>/dev/null || echo "unreadable $id_dir/node.json")
  else state="not joined (no $id_dir/node.json)"; fi
  printf '%-8s %-11s %-8s %s\n' "$site" identity - "$state"
  for name in containerd nats agent; do
    pid=$(ef_pid "$name-$site")
    if ef_running "$name-$site"; then state=running; elif [ -n "$pid" ]; then state="dead (stale pidfile)"; else state=stopped; fi
    case "$name" in
      containerd)
        if [ "$state" = running ]; then
          tasks=$(ctr_ -n k8s.io tasks ls 2>/dev/null | awk 'NR > 1 && $3 == "RUNNING"' | wc -l)
          state+=", $sock, $tasks running tasks"
        fi ;;
      nats)
        if [ "$state" = running ]; then
          leaf=$(leafz 2>/dev/null | jq -r '(.leafs // []) as $l | if ($l | length) >= 1 then "connected to \($l[0].name) at \($l[0].ip):\($l[0].port), rtt \($l[0].rtt)" else "not connected" end' 2>/dev/null || echo "unknown")
          state+=", domain $(ef_site_domain "$site"), leaf $leaf"
        fi ;;
    esac
    printf '%-8s %-11s %-8s %s\n' "$site" "$name" "${pid:--}" "$state"
  done
}

case "$cmd" in
  join) [ $# -le 1 ] || usage; site_join "${1:-}" ;;
  up) site_up ;;
  down) site_down ;;
  clean) site_clean ;;
  status) site_status ;;
  start)
    [ $# -eq 1 ] || usage
    [ -f "$st/site.env" ] && netns_exists || ef_die "site $site is not up (hack/site.sh up $site first)"
    case "$1" in containerd) containerd_up ;; nats) nats_up ;; agent) if [ -n "$hollow" ]; then hollow_up; else agent_up; fi ;; *) usage ;; esac ;;
  exec) [ $# -ge 1 ] || usage; netns_exists || ef_die "site $site is not up (no netns $ns)"; exec nsenter --net="/run/netns/$ns" "$@" ;;
  import)
    [ $# -eq 1 ] && [ -f "$1/index.txt" ] || ef_die "usage: hack/site.sh import SITE DIR (DIR/index.txt: TARBALL NAME MANIFEST-DIGEST lines)"
    ctr_ version >/dev/null 2>&1 || ef_die "site $site's containerd is not up ($sock): make up first"
    import_images "$(cd "$1" && pwd)" ;;
  *) usage ;;
esac
