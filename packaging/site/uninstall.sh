#!/bin/sh
# Removes what install.sh installed (the files in /usr/lib/edgefarm/installed-files). The join's identity
# (/etc/edgefarm), the JetStream store and the agent's state (/var/lib/edgefarm), pod logs (/var/log/edgefarm) and
# the site's configuration files stay, unless --purge (then the node must join again). Data directories with
# something still mounted below them (a running pod's volume) are kept, with a warning.
# Pods keep running under containerd's shims; remove them with crictl or ctr if the node is retired.
set -eu
purge=
case "${1:-}" in --purge) purge=1 ;; "") ;; *) echo "usage: $0 [--purge]" >&2; exit 2 ;; esac
dest=${DESTDIR:-}
list=$dest/usr/lib/edgefarm/installed-files
[ -f "$list" ] || { echo "uninstall.sh: $list is missing: edgefarm-site was not installed by install.sh" >&2; exit 1; }
if [ -z "$dest" ] && [ -d /run/systemd/system ]; then
  systemctl disable --now edgefarm-agent.service edgefarm-nats.service || true
fi
while IFS= read -r f; do rm -f "$dest/$f"; done < "$list"
rm -f "$list" "$dest/usr/lib/edgefarm/uninstall.sh"
# the package's directories, when empty
for d in usr/lib/edgefarm/edge-agent/dist usr/lib/edgefarm/edge-agent usr/lib/edgefarm/cli/dist usr/lib/edgefarm/cli \
  usr/lib/edgefarm/bin usr/lib/edgefarm usr/share/edgefarm/containerd usr/share/edgefarm usr/share/doc/edgefarm-site; do
  rmdir "$dest/$d" 2>/dev/null || true
done
if [ -z "$dest" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
mounted_below() {
  awk -v d="$1/" '{ mp = $5; gsub(/\\040/, " ", mp); if (index(mp "/", d) == 1) found = 1 } END { exit !found }' /proc/self/mountinfo 2>/dev/null
}
if [ -n "$purge" ]; then
  rm -f "$dest/etc/default/edgefarm-agent" "$dest/etc/cni/net.d/10-edgefarm.conflist"
  rm -rf "$dest/etc/edgefarm"
  for d in "$dest/var/lib/edgefarm" "$dest/var/log/edgefarm"; do
    [ -d "$d" ] || continue
    if mounted_below "$d"; then echo "kept $d: something is mounted below it (pods still running?)" >&2; else rm -rf "$d"; fi
  done
  echo "edgefarm-site removed and purged"
else
  echo "edgefarm-site removed; /etc/edgefarm, /var/lib/edgefarm, /var/log/edgefarm and /etc/default/edgefarm-agent stay (--purge deletes them)"
fi
