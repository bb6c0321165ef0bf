# Shared layout and process helpers for every hack/ script. Source it; it sets names, ports and paths for one
# EdgeFarm instance. Two instances can run side by side: `make up` uses the defaults, the e2e suite sets
# EF_INSTANCE=e2e (other ports, netns names, subnets and state dir).
#
# Every process is started with ef_start (pidfile + log), stopped with ef_stop by that PID, never by name.
#
# The settings a user gives these scripts (or make) are declared here, one `#:` line each:
#   NAME[, other ways to set it] | takes | default | meaning
# and the names no longer read, one `#-` line each (NAME | what to set instead), which ef_check_retired refuses.
# docs/reference/settings.md is generated from these lines and the binaries' declarations (`make settings-doc`);
# `make lint` fails when a script reads an EF_ variable as a setting (with a default, or a check) that no declaration
# names.
# Settings of the provider and the agent (EF_LOG_LEVEL, EF_RESYNC_MS, ...) given to make or a script reach them
# through the environment the scripts start them with.
#
#: EF_INSTANCE | instance name | dev | which stack: its ports, netns names, subnets and state dir; e2e and e2e3 (the suites' stacks) also run 2 providers and 2 sites with EF_TOMBSTONE_TTL_SECONDS=30, bench is make bench's; another needs the next three
#: EF_PORT_BASE | port number | dev 16000, e2e 17000, e2e3 21000, conf 22000, inst 23000, ha 24000; other instances: required | first of the instance's host ports (it uses base+80 to base+999)
#: EF_NET_OCTET | 1-235 | dev 201, e2e 202, e2e3 206, conf 207, inst 208, ha 209; other instances: required | the sites' veth subnets are 10.N.<site>.0/24, their pods' 10.N+20.<site>.0/24
#: EF_NS_PREFIX | short name | dev ef, e2e efe, e2e3 ef3, conf efc, inst efi, ha efh; other instances: required | prefix of the sites' netns and veth names
#: EF_SITES | space-separated site names | edge-1 (e2e, e2e3: edge-1 edge-2) | the edge sites, one edge node each
#: EF_PROVIDERS, make PROVIDERS= | 1-5 | 1 (e2e, e2e3: 2) | provider replicas; they share the nodes through shard Leases
#: EF_HUB, make HUB=, HUB | 1, 3 or 5 | what the instance was set up with, else 1 (e2e3: 3) | NATS hub servers; 3 or 5 run a JetStream cluster with R3 hub streams; changing it needs make clean
#: EF_DEPLOY, make DEV=1 | cluster or process | what the instance was set up with, else dev, inst and ha: cluster, other instances: process | cluster: the provider, the registrar and the NATS hub run as pods of the shipped manifests on the cloud node (a real kubelet), as a user installs them; process: they run as processes of this checkout (the fast development loop; the test suites' stacks)
#: EF_CLOUD_NET | host or pod | ha: pod, other instances: host | EF_DEPLOY=cluster: how the cloud node's pods are networked. host: in the host's network, one replica each (manifests/overlays/local); pod: a pod network with kube-proxy and CoreDNS, the base manifests' replicas (3 hub servers, 2 providers, 2 registrars) with the hub's and the registrar's Services as NodePorts (manifests/overlays/pod-network). One instance with pod at a time: kube-proxy owns the host's KUBE-* iptables chains
#: EF_IMAGES_OUT | directory | build/images | where hack/cloud-images.sh writes the image layouts, tarballs and images.json (make images)
#: EF_PACKAGE_MAINTAINER | Name <mail> | EdgeFarm <edgefarm@localhost> | the Maintainer field of the site package (make package)
#: EF_PACKAGE_COMMIT | commit | HEAD | the commit the site package's changelog names (two builds of one tree give the same bytes)
#: EF_SKIP_BUNDLE | 0 or 1 | 0 | 1: hack/package.sh packages build/bundle as it is instead of bundling first
#: EF_CACHE | directory | $XDG_CACHE_HOME/edgefarm, else ~/.cache/edgefarm | built binaries, images and Node.js, outside the repository (hack/versions.sh; the tests use the same)
#: EF_SKIP_TSC | 0 or 1 | 0 | 1: hack/deps.sh (make up, make build) skips tsc -b and the stack runs the last build
#: EF_AGENT_MAIN | path | edge-agent/dist/main.js | the agent hack/site.sh starts (to compare two builds)
#: EF_AGENT_NODE_FLAGS | node options | --lite-mode --max-semi-space-size=2 | Node.js options of the agent (edge-agent/README.md, Memory); set and empty: none
#: EF_SITE_HOLLOW | FIRST COUNT | unset: a real site | hack/site.sh up starts a hollow site: no containerd, one process running COUNT hollow nodes from hollow-FIRST (make bench)
#: EF_CONFORMANCE_PROCS | count | 5 | make conformance: ginkgo's parallel processes running the upstream specs (docs/conformance.md)
#: EF_CONFORMANCE_ALL | 0 or 1 | 0 | 1: make conformance also runs the notSelected specs of e2e/conformance/selection.json (too slow for the budget)
#
#- EF_AGENT_METRICS_ADDR | set EF_METRICS_ADDR, the agent's own name (hack/site.sh passes it on)
#- EF_AGENT_METRICS_PUBLISH_SECONDS | set EF_METRICS_PUBLISH_SECONDS, the agent's own name
#- EF_HOLLOW_RESYNC_MS | set EF_RESYNC_MS: a hollow site passes every agent setting on to its nodes
#- EF_HOLLOW_RELIST_MS | set EF_RELIST_MS: a hollow site passes every agent setting on to its nodes
#- EF_HOLLOW_METRICS_PUBLISH_SECONDS | set EF_METRICS_PUBLISH_SECONDS: a hollow site passes it on to its nodes
#- EF_HOLLOW_LOG_LEVEL | set EF_LOG_LEVEL (a hollow site's default is warn)

EF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$EF_ROOT/hack/versions.sh"

# ef_check_retired: dies when a name of a `#-` line above is set, saying what to set instead.
ef_check_retired() {
  local name instead
  while IFS='|' read -r name instead; do
    name=${name// /}
    [ -z "${!name+set}" ] || ef_die "$name is no longer read: ${instead# }"
  done < <(sed -n 's/^#- //p' "$EF_ROOT/hack/lib.sh")
}

EF_INSTANCE=${EF_INSTANCE:-dev}
case "$EF_INSTANCE" in
  dev) : "${EF_PORT_BASE:=16000}" "${EF_NET_OCTET:=201}" "${EF_NS_PREFIX:=ef}" ;;
  # The e2e stack: 2 provider replicas and 2 sites (HA, and a healthy second node so the node lifecycle controller
  # is not in full-disruption mode when edge-1 goes silent).
  # Tombstones expire after 30 s, so the fault suite can outlast the compaction horizon within minutes.
  e2e) : "${EF_PORT_BASE:=17000}" "${EF_NET_OCTET:=202}" "${EF_NS_PREFIX:=efe}" "${EF_PROVIDERS:=2}" "${EF_SITES:=edge-1 edge-2}"
    export EF_TOMBSTONE_TTL_SECONDS=${EF_TOMBSTONE_TTL_SECONDS:-30} ;;
  # The fault suite again on a 3-server hub cluster (`make e2e-hub3`).
  e2e3) : "${EF_PORT_BASE:=21000}" "${EF_NET_OCTET:=206}" "${EF_NS_PREFIX:=ef3}" "${EF_PROVIDERS:=2}" "${EF_SITES:=edge-1 edge-2}" "${EF_HUB:=3}"
    export EF_TOMBSTONE_TTL_SECONDS=${EF_TOMBSTONE_TTL_SECONDS:-30} ;;
  # The node conformance suite's own stack in `make test` (hack/conformance.sh --clean): one site, as `make up`.
  conf) : "${EF_PORT_BASE:=22000}" "${EF_NET_OCTET:=207}" "${EF_NS_PREFIX:=efc}" ;;
  # The install suite's stack (`make e2e-install`): the cloud side installed into the cluster, as `make up`.
  inst) : "${EF_PORT_BASE:=23000}" "${EF_NET_OCTET:=208}" "${EF_NS_PREFIX:=efi}" ;;
  # The shipped manifests' replicas on a pod network (`make e2e-install-ha`): 3 hub servers, 2 providers.
  ha) : "${EF_PORT_BASE:=24000}" "${EF_NET_OCTET:=209}" "${EF_NS_PREFIX:=efh}" "${EF_CLOUD_NET:=pod}" ;;
  *) : "${EF_PORT_BASE:?set EF_PORT_BASE for instance $EF_INSTANCE}" "${EF_NET_OCTET:?}" "${EF_NS_PREFIX:?}" ;;
esac
if [ "$EF_INSTANCE" = dev ]; then EF_STATE=$EF_ROOT/.local; else EF_STATE=$EF_ROOT/.local/$EF_INSTANCE; fi
# Unix sockets have a 108-byte path limit: keep them short and outside the (possibly deep) checkout.
EF_RUN=/run/edgefarm/$EF_INSTANCE
EF_LOGS=$EF_STATE/logs
EF_PIDS=$EF_STATE/pids
EF_PKI=$EF_STATE/pki
EF_KUBECONFIG=$EF_STATE/kubeconfig          # admin, what users export
EF_SITES=${EF_SITES:-edge-1}                # space-separated site names; one edge node per site for now
# How the cloud side runs (EF_DEPLOY): asked for (DEV=1), else what the instance was set up with (hack/up.sh records
# it in $EF_STATE/deploy; a stack from before the record with a hub store ran processes), else cluster for dev and
# process for the test suites' instances.
if [ -z "${EF_DEPLOY:-}" ]; then
  if [ "${DEV:-0}" = 1 ]; then EF_DEPLOY=process
  elif [ -f "$EF_STATE/deploy" ]; then EF_DEPLOY=$(cat "$EF_STATE/deploy")
  elif [ -d "$EF_STATE/hub/js" ] || { [ "$EF_INSTANCE" != dev ] && [ "$EF_INSTANCE" != inst ] && [ "$EF_INSTANCE" != ha ]; }; then EF_DEPLOY=process
  else EF_DEPLOY=cluster; fi
fi
case "$EF_DEPLOY" in cluster|process) ;; *) echo "error: EF_DEPLOY=$EF_DEPLOY: cluster or process" >&2; exit 1 ;; esac
EF_CLOUD_NET=${EF_CLOUD_NET:-host}
case "$EF_CLOUD_NET" in host|pod) ;; *) echo "error: EF_CLOUD_NET=$EF_CLOUD_NET: host or pod" >&2; exit 1 ;; esac
[ "$EF_CLOUD_NET" = host ] || [ "$EF_DEPLOY" = cluster ] || { echo "error: EF_CLOUD_NET=pod needs EF_DEPLOY=cluster" >&2; exit 1; }

# Ports (all on the host; site-local services listen inside their netns on fixed ports).
EF_ETCD_PORT=$((EF_PORT_BASE + 379))
EF_ETCD_PEER_PORT=$((EF_PORT_BASE + 380))
EF_APISERVER_PORT=$((EF_PORT_BASE + 443))
EF_CM_PORT=$((EF_PORT_BASE + 257))
EF_SCHED_PORT=$((EF_PORT_BASE + 259))
EF_HUB_PORT=$((EF_PORT_BASE + 222))          # hub nats client port (127.0.0.1), the provider's connection
EF_HUB_LEAF_PORT=$((EF_PORT_BASE + 722))     # hub leafnode port, reached by sites over their veth
EF_HUB_MON_PORT=$((EF_PORT_BASE + 822))
EF_HUB_CLUSTER_PORT=$((EF_PORT_BASE + 622))  # hub cluster routes (127.0.0.1), HUB=3 only
# Hub servers (`make up HUB=3`): 1 (member "hub") or a JetStream cluster of 3 or 5 (hub-1..hub-N, member i on the
# ports above + i-1). Remembered in $EF_STATE/hub/size by hack/hub.sh up, so down/status/up without HUB act on what
# runs.
EF_HUB=${EF_HUB:-${HUB:-$(cat "$EF_STATE/hub/size" 2>/dev/null || echo 1)}}
# ef_hub_members: one line per hub server: NAME DIR CLIENT_PORT MON_PORT LEAF_PORT CLUSTER_PORT
ef_hub_members() {
  local i
  if [ "$EF_HUB" = 1 ]; then echo "hub $EF_STATE/hub $EF_HUB_PORT $EF_HUB_MON_PORT $EF_HUB_LEAF_PORT -"; return; fi
  for ((i = 1; i <= EF_HUB; i++)); do
    echo "hub-$i $EF_STATE/hub/hub-$i $((EF_HUB_PORT + i - 1)) $((EF_HUB_MON_PORT + i - 1)) $((EF_HUB_LEAF_PORT + i - 1)) $((EF_HUB_CLUSTER_PORT + i - 1))"
  done
}
# Comma-separated client URLs of every hub member (the provider's EF_NATS_URL).
ef_hub_urls() { ef_hub_members | awk '{printf "%snats://127.0.0.1:%s", (NR > 1 ? "," : ""), $3}'; }
# Leafnode ports of every hub member, space-separated.
ef_hub_leaf_ports() { ef_hub_members | awk '{printf "%s%s", (NR > 1 ? " " : ""), $5}'; }
# The cloud node (EF_DEPLOY=cluster): a real kubelet on this host with its own containerd; the EdgeFarm pods on it
# use the host's network (docs/decisions/0011-install.md).
EF_CLOUD_NODE=cloud-1
EF_CLOUD_KUBELET_PORT=$((EF_PORT_BASE + 248))
EF_CLOUD_KUBELET_HEALTHZ_PORT=$((EF_PORT_BASE + 249))
ef_cloud_state() { echo "$EF_STATE/cloud"; }
ef_cloud_containerd_sock() { echo "$EF_RUN/cloud/containerd.sock"; }
ef_cloud_pod_cidr() { echo "10.$EF_NET_OCTET.250.0/24"; }
# The cloud node's bridge address (the pod network's gateway); with EF_CLOUD_NET=pod also where CoreDNS answers.
ef_cloud_gateway() { echo "10.$EF_NET_OCTET.250.1"; }
EF_CLOUD_PROXY_HEALTHZ_PORT=$((EF_PORT_BASE + 246))  # kube-proxy's /healthz and /metrics (127.0.0.1), EF_CLOUD_NET=pod
EF_CLOUD_PROXY_METRICS_PORT=$((EF_PORT_BASE + 247))
EF_CLOUD_DNS_HEALTH_PORT=$((EF_PORT_BASE + 245))     # CoreDNS's /health and /ready (127.0.0.1)
EF_PROVIDER_HTTP_PORT=$((EF_PORT_BASE + 80)) # provider-1 /healthz, /metrics (provider-N: + N-1)
EF_KUBELET_PORT=$((EF_PORT_BASE + 250))      # provider-1's kubelet API, all its nodes on one port (provider-N: + N-1)
# Provider replicas (`make up PROVIDERS=2`): they shard the EdgeNodes with Leases. Replica i runs as provider-i.
EF_PROVIDERS=${EF_PROVIDERS:-1}
ef_provider_http_port() { echo $((EF_PROVIDER_HTTP_PORT + $1 - 1)); }
ef_provider_kubelet_port() { echo $((EF_KUBELET_PORT + $1 - 1)); }
# Provider-R's per-node kubelet ports (a node's /stats and /metrics/resource; docs/decisions/0006-kubelet-api.md):
# 20 per replica from base+900, so up to 5 replicas stay below base+1000.
EF_KUBELET_NODE_PORT_BASE=$((EF_PORT_BASE + 900))
ef_provider_kubelet_node_ports() { local from=$((EF_KUBELET_NODE_PORT_BASE + ($1 - 1) * 20)); echo "$from-$((from + 19))"; }
# Replica numbers with a pidfile (running or not), e.g. after an up with more replicas than now asked for.
ef_provider_replicas() { local f; for f in "$EF_PIDS"/provider-*.pid; do [ -e "$f" ] && basename "$f" .pid | sed 's/^provider-//'; done | sort -n; }
# The fleet's identity and TLS (decision 0008), made once per instance by hack/fleet.sh identity:
EF_FLEET=$EF_STATE/fleet                     # @edgefarm/identity's fleet directory: operator, accounts, keys/ and users/ (0600)
EF_FLEET_TLS=$EF_STATE/fleet-tls             # the fleet CA (ca.crt, ca.key) and the hub's and the registrar's certificates
# The fleet address: one address on the host's loopback device that every site reaches through its default route
# (the host end of its veth). The hub's leaf URLs and the registrar's URL name it, so one URL and one certificate
# SAN serve every site: the registrar hands every site the same hub URLs and the same URL to renew at.
EF_FLEET_IP=10.$EF_NET_OCTET.0.1
EF_REGISTRAR_PORT=$((EF_PORT_BASE + 543))    # the registrar's HTTPS API (join, renew, /healthz, /metrics) on the fleet address
EF_REGISTRAR_URL=https://$EF_FLEET_IP:$EF_REGISTRAR_PORT
# The hub's leaf URLs as sites dial them, comma-separated (every member).
ef_hub_leaf_urls() { local p u=""; for p in $(ef_hub_leaf_ports); do u+="${u:+,}tls://$EF_FLEET_IP:$p"; done; echo "$u"; }
# ef_fleet_ip_up: puts the fleet address on lo (idempotent; hack/clean.sh removes it).
ef_fleet_ip_up() { ip -4 addr show dev lo | grep -q " $EF_FLEET_IP/32 " || ip addr add "$EF_FLEET_IP/32" dev lo; }
# The edgefarm command (cli/) and identity's CLI, from their builds (after ef_use_node).
ef_edgefarm() { node "$EF_ROOT/cli/dist/main.js" "$@"; }
ef_identity() { node "$EF_ROOT/identity/dist/cli.js" "$@"; }
EF_SITE_NATS_PORT=4222                       # inside each site netns, 127.0.0.1
EF_SITE_NATS_MON_PORT=8222
EF_SITE_AGENT_METRICS_PORT=10255             # the agent's /metrics and /healthz, inside each site netns, 127.0.0.1
EF_SERVICE_CIDR=10.96.0.0/16
EF_SERVICE_IP=10.96.0.1

# Site i (1-based index in EF_SITES): netns, veth pair, addresses, pod subnet.
ef_site_index() { local i=1 s; for s in $EF_SITES; do [ "$s" = "$1" ] && { echo $i; return; }; i=$((i + 1)); done; echo "unknown site $1" >&2; return 1; }
ef_site_netns() { echo "${EF_NS_PREFIX}-$1"; }
ef_site_veth_host() { echo "${EF_NS_PREFIX}$(ef_site_index "$1")h"; }
ef_site_veth_site() { echo "${EF_NS_PREFIX}$(ef_site_index "$1")s"; }
ef_site_host_ip() { echo "10.$EF_NET_OCTET.$(ef_site_index "$1").1"; }
ef_site_ip() { echo "10.$EF_NET_OCTET.$(ef_site_index "$1").2"; }
ef_site_pod_cidr() { echo "10.$((EF_NET_OCTET + 20)).$(ef_site_index "$1").0/24"; }
ef_site_state() { echo "$EF_STATE/sites/$1"; }
ef_site_run() { echo "$EF_RUN/$1"; }
ef_site_containerd_sock() { echo "$EF_RUN/$1/containerd.sock"; }
# The site's JetStream domain, made by proto's siteDomain() (the built proto package), not re-encoded here.
ef_site_domain() {
  local cli=$EF_ROOT/proto/dist/names.js
  [ -f "$cli" ] || ef_die "$cli is missing: run make build"
  ef_use_node && node "$cli" site-domain "$1"
}

ef_log() { printf '\033[1m==>\033[0m %s\n' "$*"; }
ef_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ef_start NAME [--netns NS] -- CMD ARGS...   Starts CMD in the background (own session), log and pidfile by NAME.
ef_start() {
  local name=$1; shift; local netns=""
  if [ "${1:-}" = --netns ]; then netns=$2; shift 2; fi
  [ "${1:-}" = -- ] && shift
  mkdir -p "$EF_LOGS" "$EF_PIDS"
  if ef_running "$name"; then ef_log "$name already running (pid $(cat "$EF_PIDS/$name.pid"))"; return 0; fi
  if [ -n "$netns" ]; then
    # nsenter --net, not `ip netns exec`: the latter remounts /sys in a private mount namespace, which hides
    # /sys/fs/cgroup from runc and the pods' mounts from a restarted containerd.
    setsid nsenter --net="/run/netns/$netns" -- "$@" >>"$EF_LOGS/$name.log" 2>&1 < /dev/null &
  else
    setsid "$@" >>"$EF_LOGS/$name.log" 2>&1 < /dev/null &
  fi
  echo $! > "$EF_PIDS/$name.pid"
}

# A zombie counts as stopped: this machine's PID 1 reaps exited processes only every ~2 s.
ef_pid_alive() { [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
ef_running() { local f="$EF_PIDS/$1.pid"; [ -f "$f" ] && ef_pid_alive "$(cat "$f")"; }
# ef_stale_build NAME PKG...: NAME runs and a build of one of the workspace packages PKG (their dist/) is newer than
# its start: the caller restarts it, so make up runs what was last built.
ef_stale_build() {
  local name=$1 p dirs=(); shift
  for p in "$@"; do dirs+=("$EF_ROOT/$p/dist"); done
  ef_running "$name" && [ -n "$(find "${dirs[@]}" -name '*.js' -newer "$EF_PIDS/$name.pid" 2>/dev/null | head -n 1)" ]
}

# ef_stop NAME [TIMEOUT_S]: TERM the recorded PID, KILL after the timeout, remove the pidfile.
ef_stop() {
  local name=$1 timeout=${2:-15} f="$EF_PIDS/$1.pid" pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if ef_pid_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do ef_pid_alive "$pid" || break; sleep 0.1; done
    ef_pid_alive "$pid" && { kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; }
  fi
  rm -f "$f"
}

# Node.js 24 (pinned) first on PATH.
ef_use_node() { local d; d=$("$EF_ROOT/hack/ensure-node.sh") && export PATH="$d:$PATH"; }

# ef_pid NAME: the recorded PID of NAME (empty if none).
ef_pid() { cat "$EF_PIDS/$1.pid" 2>/dev/null || true; }
# ef_http_ok URL [CURL ARGS...]: true when URL answers 2xx within 2 s (never through a proxy).
ef_http_ok() { curl -fs --noproxy '*' -m 2 -o /dev/null "$@"; }
# ef_wait_up NAME DESC TIMEOUT_S CMD...: polls CMD (every 0.2 s) until it succeeds; dies when TIMEOUT_S pass, or at
# once when NAME (started with ef_start) has exited, saying what it waited for and showing the tail of NAME's log.
ef_wait_up() {
  local name=$1 desc=$2 timeout=$3 i; shift 3
  for ((i = 0; i < timeout * 5; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    if ! ef_running "$name"; then
      printf 'error: %s exited while waiting for %s; last lines of %s:\n' "$name" "$desc" "$EF_LOGS/$name.log" >&2
      tail -n 25 "$EF_LOGS/$name.log" >&2 2>/dev/null; exit 1
    fi
    sleep 0.2
  done
  printf 'error: timed out after %ss waiting for %s; last lines of %s:\n' "$timeout" "$desc" "$EF_LOGS/$name.log" >&2
  tail -n 25 "$EF_LOGS/$name.log" >&2 2>/dev/null; exit 1
}

# ef_kubelet_address: the address the providers give their Nodes as InternalIP, where the apiserver dials the kubelet
# API. Not loopback: the apiserver's node proxy (kubectl get --raw /api/v1/nodes/N/proxy/..., metrics-server's path
# too) refuses addresses that are not global unicast. The source address of the default route; 127.0.0.1 without one
# (then only the pod endpoints work: logs, exec, attach, port-forward).
ef_kubelet_address() {
  local a; a=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -1)
  echo "${a:-127.0.0.1}"
}

# ef_provider_start R: starts provider replica R (provider-R) against every hub member, hub streams with EF_HUB
# replicas. Does not wait (hack/up.sh waits for its /healthz).
# The provider connects as its two hub users (identity's provider-creds) over TLS with the fleet CA, and runs the
# revoker (the operator signing key, the claims pusher's credentials, the fleet's public keys).
ef_provider_start() {
  local r=$1 creds
  ef_use_node
  [ -f "$EF_FLEET/fleet.json" ] || ef_die "no fleet identity in $EF_FLEET: run hack/fleet.sh identity (make up does)"
  mapfile -t creds < <(ef_identity provider-creds --dir "$EF_FLEET")
  [ ${#creds[@]} -eq 2 ] || ef_die "identity's provider-creds printed no credentials files"
  ef_start "provider-$r" -- env KUBECONFIG="$EF_STATE/provider.kubeconfig" EF_NATS_URL="$(ef_hub_urls)" EF_HUB_REPLICAS="$EF_HUB" \
    "${creds[@]}" EF_NATS_CA_FILE="$EF_FLEET_TLS/ca.crt" \
    EF_OPERATOR_SIGNING_SEED_FILE="$EF_FLEET/keys/operator-signer.nk" EF_NATS_SYSTEM_CREDS="$EF_FLEET/users/claims-pusher.creds" \
    EF_FLEET_ACCOUNTS="$(jq -r '.keys.accounts | "system=\(.system),desired=\(.desired),cloud=\(.cloud),sites=\(.sites)"' "$EF_FLEET/fleet.json")" \
    EF_NODE_SIGNER_KEY="$(jq -r .keys.nodeSigner "$EF_FLEET/fleet.json")" \
    EF_PROVIDER_ID="provider-$r" EF_HTTP_PORT="$(ef_provider_http_port "$r")" EF_KUBELET_PORT="$(ef_provider_kubelet_port "$r")" \
    EF_KUBELET_ADDRESS="$(ef_kubelet_address)" EF_KUBELET_NODE_PORTS="$(ef_provider_kubelet_node_ports "$r")" \
    EF_KUBELET_TLS_CERT="$EF_PKI/kubelet-serving.crt" EF_KUBELET_TLS_KEY="$EF_PKI/kubelet-serving.key" EF_KUBELET_CLIENT_CA="$EF_PKI/ca.crt" \
    "$(command -v node)" "$EF_ROOT/provider/dist/main.js"
}

# ef_registrar_start: the registrar (registrar/dist/main.js) on the fleet address, as ServiceAccount
# edgefarm-system/edgefarm-registrar (its kubeconfig, made by hack/fleet.sh registrar), holding only the node
# signer's seed. Does not wait (ef_registrar_healthy).
ef_registrar_start() {
  ef_use_node
  [ -f "$EF_STATE/registrar.kubeconfig" ] || ef_die "no $EF_STATE/registrar.kubeconfig: run hack/fleet.sh registrar (make up does)"
  ef_start registrar -- env KUBECONFIG="$EF_STATE/registrar.kubeconfig" EF_REGISTRAR_LISTEN="$EF_FLEET_IP:$EF_REGISTRAR_PORT" \
    EF_REGISTRAR_TLS_CERT="$EF_FLEET_TLS/registrar.crt" EF_REGISTRAR_TLS_KEY="$EF_FLEET_TLS/registrar.key" \
    EF_FLEET_CA_FILE="$EF_FLEET_TLS/ca.crt" EF_REGISTRAR_SIGNER_SEED_FILE="$EF_FLEET/keys/node-signer.nk" \
    EF_SITES_ACCOUNT="$(jq -r .keys.accounts.sites "$EF_FLEET/fleet.json")" EF_HUB_LEAF_URLS="$(ef_hub_leaf_urls)" \
    EF_REGISTRAR_URL="$EF_REGISTRAR_URL" \
    "$(command -v node)" "$EF_ROOT/registrar/dist/main.js"
}
# The registrar answers /healthz over TLS, verified against the fleet CA (as a site verifies it).
ef_registrar_healthy() { ef_http_ok "$EF_REGISTRAR_URL/healthz" --cacert "$EF_FLEET_TLS/ca.crt"; }

ef_check_retired
