#!/usr/bin/env bash
# The fleet's identity and registration for instance $EF_INSTANCE (decisions 0008 and 0009), as an install sets them up:
#
#   hack/fleet.sh identity     the fleet address on lo ($EF_FLEET_IP, what every site dials), the fleet's NATS
#                              identities (@edgefarm/identity init into $EF_FLEET: operator, SYS, EF_DESIRED, EF_CLOUD,
#                              EF_SITES, the node signer, the provider's users, the claims pusher; seeds 0600) and its
#                              TLS (hack/pki.sh fleet into $EF_FLEET_TLS: the fleet CA, a certificate for the hub and
#                              one for the registrar). Each is made once and reused.
#   hack/fleet.sh registrar    the registrar's kubeconfig (a token of ServiceAccount edgefarm-system/edgefarm-registrar,
#                              manifests/base/registrar-rbac.yaml; never the admin's), ConfigMap edgefarm-fleet (the fleet CA
#                              and the registrar's URL: what `edgefarm token create` reads), then the registrar itself
#                              (restarted when its build is newer than the running process); waits for its /healthz
#   hack/fleet.sh start        only the registrar process (hack/fault.sh restart registrar)
#   hack/fleet.sh down         stops the registrar
#   hack/fleet.sh status       the registrar's line of make status
#   hack/fleet.sh clean        removes the fleet address (hack/clean.sh; the directories go with $EF_STATE)
#
# The certificates name what their clients dial: the hub 127.0.0.1 (the provider, the routes between members,
# the claims pusher), localhost and the fleet address (the sites' leaf links); the registrar the fleet address.
# An existing certificate is kept (hack/pki.sh fleet): after changing EF_NET_OCTET, remove $EF_FLEET_TLS/*.crt.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
kc() { kubectl --kubeconfig "$EF_KUBECONFIG" "$@"; }

identity() {
  ef_use_node
  [ -f "$EF_ROOT/identity/dist/cli.js" ] || ef_die "$EF_ROOT/identity/dist/cli.js is missing: run make build"
  # A stack made before the fleet was secured holds JetStream stores of the unauthenticated layout (every stream in
  # the global account): the secured hub and sites would start next to them with nothing. Start over instead.
  if [ ! -f "$EF_FLEET/fleet.json" ] && [ -d "$EF_STATE/hub" ] && [ -n "$(ls -A "$EF_STATE/hub" 2>/dev/null)" ]; then
    ef_die "instance $EF_INSTANCE was set up before its hub required credentials ($EF_STATE/hub exists, no fleet identity): run make clean first"
  fi
  if ip -4 addr show dev lo | grep -q " $EF_FLEET_IP/32 "; then echo "[fleet] fleet address $EF_FLEET_IP on lo"; else
    ef_fleet_ip_up
    echo "[fleet] added the fleet address $EF_FLEET_IP/32 to lo: sites dial the hub and the registrar there"
  fi
  ef_identity init --dir "$EF_FLEET" | sed -n '1s/^/[fleet] /p'
  local hub_sans="IP:127.0.0.1,IP:$EF_FLEET_IP,DNS:localhost" n
  # EF_CLOUD_NET=pod: the StatefulSet's members, as the routes and the provider dial them (manifests/base/hub.yaml).
  if [ "$EF_CLOUD_NET" = pod ]; then
    for n in 0 1 2; do hub_sans+=",DNS:edgefarm-hub-$n.edgefarm-hub,DNS:edgefarm-hub-$n.edgefarm-hub.edgefarm-system.svc"; done
  fi
  "$EF_ROOT/hack/pki.sh" fleet "$EF_FLEET_TLS" hub "$hub_sans"
  "$EF_ROOT/hack/pki.sh" fleet "$EF_FLEET_TLS" registrar "IP:$EF_FLEET_IP"
  cli_wrappers
}

# $EF_STATE/bin/edgefarm and kubectl-edgefarm: the edgefarm command of this checkout under the pinned Node.js, for
# the admin's shell (export PATH=$EF_STATE/bin:$PATH).
cli_wrappers() {
  local b=$EF_STATE/bin n
  mkdir -p "$b"
  for n in edgefarm kubectl-edgefarm; do
    printf '#!/bin/sh\n# Written by hack/fleet.sh: the edgefarm command (cli/) of this checkout.\nexec "%s" "%s" "$@"\n' \
      "$(command -v node)" "$EF_ROOT/cli/dist/main.js" > "$b/$n.tmp"
    chmod 755 "$b/$n.tmp"
    mv -f "$b/$n.tmp" "$b/$n"
  done
}

# The registrar's kubeconfig: a TokenRequest token of its ServiceAccount (one year; made again when older than
# 300 days). Written with the shell's own redirection: the token never appears on a command line.
registrar_kubeconfig() {
  local f=$EF_STATE/registrar.kubeconfig token ca
  if [ -f "$f" ] && [ -z "$(find "$f" -mtime +300 2>/dev/null)" ]; then return 0; fi
  token=$(kc -n edgefarm-system create token edgefarm-registrar --duration 8760h) ||
    ef_die "could not get a token of ServiceAccount edgefarm-system/edgefarm-registrar (manifests/base/registrar-rbac.yaml applied?)"
  ca=$(base64 -w0 < "$EF_PKI/ca.crt")
  (umask 077; cat > "$f.tmp" <<EOF
# Written by hack/fleet.sh: the registrar's own identity, ServiceAccount edgefarm-system/edgefarm-registrar.
apiVersion: v1
kind: Config
clusters:
  - name: edgefarm
    cluster:
      server: https://127.0.0.1:$EF_APISERVER_PORT
      certificate-authority-data: $ca
users:
  - name: edgefarm-registrar
    user:
      token: $token
contexts:
  - name: edgefarm-registrar@edgefarm
    context: { cluster: edgefarm, user: edgefarm-registrar }
current-context: edgefarm-registrar@edgefarm
EOF
  )
  mv -f "$f.tmp" "$f"
  echo "[fleet] $f: a token of ServiceAccount edgefarm-system/edgefarm-registrar"
}

# ConfigMap edgefarm-fleet: the fleet CA and the registrar's URL (registrar/src/fleet.ts reads it).
fleet_configmap() {
  kc -n edgefarm-system create configmap edgefarm-fleet --from-file=ca.crt="$EF_FLEET_TLS/ca.crt" \
    --from-literal=registrarUrl="$EF_REGISTRAR_URL" --dry-run=client -o yaml |
    kc apply --server-side --force-conflicts --field-manager=edgefarm-make-up -f - >/dev/null
  echo "[fleet] ConfigMap edgefarm-system/edgefarm-fleet: the fleet CA and registrarUrl $EF_REGISTRAR_URL"
}

start() {
  [ -f "$EF_ROOT/registrar/dist/main.js" ] || ef_die "$EF_ROOT/registrar/dist/main.js is missing: run make build"
  ef_fleet_ip_up
  ef_registrar_start
  ef_wait_up registrar "the registrar's /healthz at $EF_REGISTRAR_URL" 30 ef_registrar_healthy
}

registrar() {
  [ -f "$EF_FLEET/fleet.json" ] || ef_die "no fleet identity in $EF_FLEET: run hack/fleet.sh identity first"
  registrar_kubeconfig
  fleet_configmap
  if ef_stale_build registrar registrar identity proto settings; then
    echo "[registrar] build is newer than the running registrar: restarting it"
    ef_stop registrar 15
  fi
  start
  echo "[registrar] up (pid $(ef_pid registrar)): $EF_REGISTRAR_URL, as ServiceAccount edgefarm-system/edgefarm-registrar"
}

down() {
  if [ -f "$EF_PIDS/registrar.pid" ]; then echo "[registrar] stopping (pid $(ef_pid registrar))"; ef_stop registrar 15; fi
}

status() {
  local pid st
  pid=$(ef_pid registrar)
  if ef_running registrar; then st=running; elif [ -n "$pid" ]; then st=dead; else st=stopped; fi
  printf '%-26s %-8s %-8s %s\n' registrar "${pid:--}" "$st" "$EF_REGISTRAR_PORT ($EF_REGISTRAR_URL)"
}

clean() {
  if ip -4 addr show dev lo | grep -q " $EF_FLEET_IP/32 "; then
    ip addr del "$EF_FLEET_IP/32" dev lo
    echo "[fleet] removed the fleet address $EF_FLEET_IP from lo"
  fi
}

case "${1:-}" in
  identity) identity ;;
  registrar) registrar ;;
  start) start; echo "[registrar] up (pid $(ef_pid registrar))" ;;
  down) down ;;
  status) status ;;
  clean) clean ;;
  *) usage ;;
esac
