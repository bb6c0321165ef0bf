#!/bin/sh
# Installs edgefarm-site (@VERSION@, @ARCH@) from this tarball on a system without dpkg: the same files as the .deb.
# Files under usr/ are copied to /usr (listed in /usr/lib/edgefarm/installed-files for uninstall.sh); the files under
# etc/ only where absent (a site's edits stay). With systemd running, the units are enabled: they start once
# `edgefarm join` has written /etc/edgefarm. Without systemd, it prints how to start the two processes.
# Needs: containerd with its CRI plugin, runc, the CNI plugins (bridge, host-local, portmap), mount (util-linux).
# DESTDIR=DIR installs below DIR instead of / (and touches no service).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest=${DESTDIR:-}
if [ -z "$dest" ]; then
  [ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
  case "$(uname -m)" in x86_64|amd64) m=amd64 ;; aarch64|arm64) m=arm64 ;; *) m=$(uname -m) ;; esac
  [ "$m" = @ARCH@ ] || { echo "install.sh: this tarball is for @ARCH@, this machine is $m" >&2; exit 1; }
fi
cd "$here"
while IFS= read -r f; do
  mkdir -p "$dest/$(dirname "$f")"
  rm -f "$dest/$f.edgefarm-new"
  cp -P --preserve=mode "$f" "$dest/$f.edgefarm-new"
  mv -f "$dest/$f.edgefarm-new" "$dest/$f"
done < files.txt
for f in etc/default/edgefarm-agent etc/cni/net.d/10-edgefarm.conflist; do
  if [ -e "$dest/$f" ]; then echo "kept $dest/$f (yours); the packaged one is $here/$f"
  else mkdir -p "$dest/$(dirname "$f")"; cp --preserve=mode "$f" "$dest/$f"; fi
done
cp files.txt "$dest/usr/lib/edgefarm/installed-files"
cp uninstall.sh "$dest/usr/lib/edgefarm/uninstall.sh"
chmod 755 "$dest/usr/lib/edgefarm/uninstall.sh"
echo "installed edgefarm-site @VERSION@ (@ARCH@) into ${dest:-/}"
if [ -n "$dest" ]; then
  :
elif [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable edgefarm-nats.service edgefarm-agent.service
  systemctl try-restart edgefarm-nats.service edgefarm-agent.service || true
  [ -f /etc/edgefarm/node.json ] || cat <<'MSG'
this node has not joined a fleet yet; as root:
  edgefarm join --token-file - --hub https://HUB:PORT --dir /etc/edgefarm < token
  systemctl enable --now edgefarm-nats edgefarm-agent
MSG
else
  cat <<'MSG'
no systemd: after `edgefarm join --token-file - --hub https://HUB:PORT --dir /etc/edgefarm < token`, start the two
processes under your init system (containerd first), as root:
  /usr/lib/edgefarm/bin/nats-server -c /etc/edgefarm/nats-site.conf
  env EF_CRI_ENDPOINT=unix:///run/containerd/containerd.sock sh -c 'set -a; . /etc/edgefarm/agent.env;
    [ ! -f /etc/default/edgefarm-agent ] || . /etc/default/edgefarm-agent; exec /usr/lib/edgefarm/bin/edgefarm-agent'
Both run in the foreground and log to standard error; restart them when they exit (the agent's exit 2 is a
configuration error). Uninstall: /usr/lib/edgefarm/uninstall.sh [--purge]
MSG
fi
