#!/usr/bin/env bash
# Writes the configuration of one self-contained containerd instance (an edge site's, or a throwaway one in a test):
#
#   DIR/config.toml                 containerd config (version 2)
#   DIR/root/                       containerd root: content store, snapshots (overlayfs), metadata
#   DIR/opt/, DIR/tmp/              opt plugin dir and temporary mounts (instead of /opt/containerd and /tmp)
#   DIR/cni/net.d/10-edgefarm.conflist   bridge efbr0 + host-local(POD_CIDR) + portmap
#   DIR/cni/ipam/                   host-local's allocations (instead of the shared /var/lib/cni/networks)
#   $(dirname SOCK)/state/          containerd state: shim bundles, runc root (state/runc), pod netns mounts
#                                   (state/netns), sandbox /dev/shm mounts
#   SOCK, SOCK.ttrpc                the only listeners besides the CRI streaming server (127.0.0.1, random port,
#                                   inside whatever netns containerd runs in); no TCP gRPC, no debug, no metrics
#
#   DIR/certs.d/                    registry hosts (containerd's config_path, see hack/registry.sh hosts), unless
#                                   REGISTRY_CONFIG_DIR names another directory
#
# Usage: hack/containerd-config.sh DIR SOCK POD_CIDR [REGISTRY_CONFIG_DIR [BRIDGE]]
#   DIR       absolute directory for config, root and CNI files (created)
#   SOCK      absolute path of the gRPC unix socket, short (< 108 bytes), e.g. /run/edgefarm/dev/edge-1/containerd.sock
#   POD_CIDR  pod subnet for host-local, e.g. 10.221.1.0/24 (its .1 is the bridge's gateway address)
#   REGISTRY_CONFIG_DIR  absolute; one HOST:PORT/hosts.toml per registry (e.g. a plain-HTTP one on the host), read
#             by containerd on every pull (default DIR/certs.d)
#   BRIDGE    the CNI bridge's name (default efbr0; each site has its own netns, the cloud node shares the host's)
# Start containerd with `containerd --config DIR/config.toml`, inside the site's netns via `nsenter --net=...`, NOT
# `ip netns exec` (that remounts /sys, hiding the cgroup v1 hierarchies runc needs). See docs/site.md.
set -euo pipefail
[ $# -ge 3 ] && [ $# -le 5 ] || { echo "usage: $0 DIR SOCK POD_CIDR [REGISTRY_CONFIG_DIR [BRIDGE]]" >&2; exit 2; }
dir=$1 sock=$2 cidr=$3 registry_dir=${4:-$1/certs.d} bridge=${5:-efbr0}
[[ "$bridge" =~ ^[a-z0-9-]{1,15}$ ]] || { echo "error: BRIDGE is not an interface name: $bridge" >&2; exit 2; }
case "$registry_dir" in /*) ;; *) echo "error: REGISTRY_CONFIG_DIR must be absolute: $registry_dir" >&2; exit 2 ;; esac
case "$dir" in /*) ;; *) echo "error: DIR must be absolute: $dir" >&2; exit 2 ;; esac
case "$sock" in /*) ;; *) echo "error: SOCK must be absolute: $sock" >&2; exit 2 ;; esac
[[ "$cidr" =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}$ ]] || { echo "error: POD_CIDR is not an IPv4 CIDR: $cidr" >&2; exit 2; }
[ ${#sock} -lt 100 ] || { echo "error: socket path too long for a unix socket (${#sock} bytes): $sock" >&2; exit 2; }
state=$(dirname "$sock")/state

mkdir -p "$dir/root" "$dir/opt" "$dir/tmp" "$dir/cni/net.d" "$dir/cni/ipam" "$state" "$(dirname "$sock")" "$registry_dir"

cat > "$dir/config.toml.tmp" <<EOF
# Written by hack/containerd-config.sh; one containerd per edge site.
version = 2
root = "$dir/root"
state = "$state"
temp = "$dir/tmp"
oom_score = 0
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "$sock"
  tcp_address = ""

[ttrpc]
  # empty: containerd listens on "$sock.ttrpc" (unix), which the shims use
  address = ""

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$dir/opt"

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.6"
    # No CAP_SYS_RESOURCE here: without this runc fails with "can't get final child's PID from pipe: EOF".
    restrict_oom_score_adj = true
    # Pod netns bind mounts under state/netns instead of the host's /run/netns.
    netns_mounts_under_state_dir = true
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_selinux = false
    disable_apparmor = true
    max_container_log_line_size = 16384

    [plugins."io.containerd.grpc.v1.cri".registry]
      # hosts.toml per registry (hack/registry.sh hosts): how to reach it, e.g. over plain HTTP.
      config_path = "$registry_dir"

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "$dir/cni/net.d"
      max_conf_num = 1

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          Root = "$state/runc"
EOF
mv -f "$dir/config.toml.tmp" "$dir/config.toml"

cat > "$dir/cni/net.d/10-edgefarm.conflist.tmp" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "edgefarm",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$cidr" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$dir/cni/ipam"
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
mv -f "$dir/cni/net.d/10-edgefarm.conflist.tmp" "$dir/cni/net.d/10-edgefarm.conflist"
