#!/usr/bin/env bash
# Stops the stack of instance $EF_INSTANCE (hack/down.sh), cleans every site (hack/site.sh clean) and the cloud node
# (hack/cloud-node.sh clean: its pods' containers, mounts and bridge), removes the fleet
# address from lo (hack/fleet.sh clean), and the instance's state ($EF_STATE: etcd data, PKI, the fleet's identity and
# TLS, kubeconfigs, JetStream stores, joins, logs) and runtime dir ($EF_RUN).
# Built binaries and node_modules stay (they live in $EF_CACHE and the repo).
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
H=$EF_ROOT/hack
"$H/down.sh"
for s in $EF_SITES; do bash "$H/site.sh" clean "$s" || echo "warning: hack/site.sh clean $s failed" >&2; done
"$H/cloud-node.sh" clean
"$H/fleet.sh" clean
for d in "$EF_STATE" "$EF_RUN"; do
  case "$d" in ""|/|/run|/run/|"$HOME"|"$EF_ROOT"|"$EF_ROOT/") ef_die "refusing to remove '$d'" ;; esac
done
if [ -d "$EF_STATE" ]; then
  # Mounts a site clean did not reach (a site no longer in EF_SITES): the agents' tmpfs pod volumes, below this
  # instance's sites/ only (another instance's state may sit inside). rm -rf would empty a mounted tmpfs and then
  # fail on its mount point.
  awk -v d="$EF_STATE/sites/" '{ mp = $5; gsub(/\\040/, " ", mp); if (index(mp "/", d) == 1) print mp }' /proc/self/mountinfo | sort -ru |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "warning: could not unmount $m" >&2; done
  # Another instance's state may sit inside this one's (the dev state dir holds .local/<instance>): keep those.
  shopt -s dotglob nullglob
  for e in "$EF_STATE"/*; do
    case "$(basename "$e")" in logs|pids|pki|etcd|hub|sites) ;; *)
      if [ -d "$e" ] && { [ -d "$e/pids" ] || { [ -f "$e/.instance" ] && [ "$(cat "$e/.instance")" != "$EF_INSTANCE" ]; }; }; then
        echo "[clean] keeping $e (state of another instance)"; continue
      fi ;;
    esac
    rm -rf "$e"
  done
  shopt -u dotglob nullglob
  rmdir "$EF_STATE" 2>/dev/null || true
fi
rm -rf "$EF_RUN"
rmdir "$(dirname "$EF_RUN")" 2>/dev/null || true
echo "[clean] removed $EF_STATE and $EF_RUN"
