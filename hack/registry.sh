#!/usr/bin/env bash
# A real OCI registry (Debian's docker-registry: distribution 2.8, registry API v2) on a local address, for image pulls
# at the edge without the internet, and the two things around it: pushing the archives of hack/images.sh into it
# (skopeo) and telling a containerd that it speaks plain HTTP (a hosts.toml under containerd's registry config_path,
# see hack/containerd-config.sh).
#
#   hack/registry.sh config FILE ADDR PORT STORAGE_DIR [HTPASSWD_FILE]
#       Writes the registry's config (filesystem storage, deletes enabled, basic auth from HTPASSWD_FILE if given).
#   hack/registry.sh start NAME ADDR PORT STORAGE_DIR [HTPASSWD_FILE]
#       config + `docker-registry serve` started with ef_start (log $EF_LOGS/NAME.log, pid $EF_PIDS/NAME.pid, config
#       $EF_STATE/NAME.yml); waits until /v2/ answers (200, or 401 with auth).
#   hack/registry.sh stop NAME                  TERM (then KILL) by the recorded PID.
#   hack/registry.sh htpasswd FILE USER PASS    Adds a bcrypt entry (the only kind the registry accepts).
#   hack/registry.sh push ARCHIVE REF DEST [USER:PASS]
#       Copies image REF (e.g. docker.io/edgefarm/busybox:1.35) out of an OCI archive of hack/images.sh (or an OCI
#       layout directory) to DEST (HOST:PORT/REPO:TAG) over plain HTTP.
#   hack/registry.sh hosts CONFIG_DIR HOST:PORT
#       Writes CONFIG_DIR/HOST:PORT/hosts.toml: pull and resolve from http://HOST:PORT. containerd reads the
#       directory on every pull, so no restart is needed.
#
# A site's containerd runs in netns ef-<site> and reaches the host on the site veth's host address
# ($(ef_site_host_ip SITE), e.g. 10.201.1.1), not on 127.0.0.1: start the registry on that address (or 0.0.0.0),
# write hosts for that HOST:PORT into the site's registry config dir and name images HOST:PORT/repo:tag.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

usage() { sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

write_config() {
  local file=$1 addr=$2 port=$3 storage=$4 htpasswd=${5:-}
  case "$storage" in /*) ;; *) ef_die "STORAGE_DIR must be absolute: $storage" ;; esac
  [[ "$port" =~ ^[0-9]+$ ]] || ef_die "PORT is not a number: $port"
  mkdir -p "$storage" "$(dirname "$file")"
  {
    echo "# Written by hack/registry.sh"
    echo "version: 0.1"
    echo "log:"
    echo "  level: info"
    echo "  fields: { service: registry }"
    echo "storage:"
    echo "  filesystem: { rootdirectory: \"$storage\" }"
    echo "  delete: { enabled: true }"
    echo "  maintenance: { uploadpurging: { enabled: false } }"
    echo "http:"
    echo "  addr: \"$addr:$port\""
    echo "  # The debug server would listen on a fixed port; none."
    if [ -n "$htpasswd" ]; then
      case "$htpasswd" in /*) ;; *) ef_die "HTPASSWD_FILE must be absolute: $htpasswd" ;; esac
      [ -f "$htpasswd" ] || ef_die "no htpasswd file at $htpasswd (hack/registry.sh htpasswd FILE USER PASS)"
      echo "auth:"
      echo "  htpasswd: { realm: edgefarm, path: \"$htpasswd\" }"
    fi
  } > "$file.tmp"
  mv -f "$file.tmp" "$file"
}

cmd=${1:-}; [ -n "$cmd" ] || usage; shift
case "$cmd" in
  config)
    [ $# -ge 4 ] && [ $# -le 5 ] || usage
    write_config "$@" ;;
  start)
    [ $# -ge 4 ] && [ $# -le 5 ] || usage
    name=$1; shift
    command -v docker-registry >/dev/null || ef_die "docker-registry is missing: hack/deps.sh installs it"
    mkdir -p "$EF_STATE"
    write_config "$EF_STATE/$name.yml" "$@"
    ef_start "$name" -- docker-registry serve "$EF_STATE/$name.yml"
    host=$1; [ "$host" = 0.0.0.0 ] && host=127.0.0.1
    ef_wait_up "$name" "registry on $1:$2" 15 sh -c "code=\$(curl -s --noproxy '*' -m 2 -o /dev/null -w '%{http_code}' http://$host:$2/v2/); [ \"\$code\" = 200 ] || [ \"\$code\" = 401 ]"
    ef_log "registry $name on http://$1:$2 (pid $(ef_pid "$name"), storage $3)" ;;
  stop)
    [ $# -eq 1 ] || usage
    ef_stop "$1" ;;
  htpasswd)
    [ $# -eq 3 ] || usage
    command -v htpasswd >/dev/null || ef_die "htpasswd is missing: hack/deps.sh installs apache2-utils"
    mkdir -p "$(dirname "$1")"; touch "$1"
    htpasswd -B -b "$1" "$2" "$3" 2>/dev/null ;;
  push)
    [ $# -ge 3 ] && [ $# -le 4 ] || usage
    archive=$1 ref=$2 dest=$3 creds=${4:-}
    # An OCI archive (tar) of hack/images.sh, or an OCI layout directory; both name each manifest by its tag
    # (org.opencontainers.image.ref.name).
    if [ -d "$archive" ]; then src="oci:$archive:${ref##*:}"
    elif [ -f "$archive" ]; then src="oci-archive:$archive:${ref##*:}"
    else ef_die "no image archive at $archive (hack/images.sh builds them)"; fi
    args=(--insecure-policy copy --quiet --dest-tls-verify=false)
    [ -n "$creds" ] && args+=(--dest-creds "$creds")
    skopeo "${args[@]}" "$src" "docker://$dest" ;;
  hosts)
    [ $# -eq 2 ] || usage
    dir=$1/$2
    mkdir -p "$dir"
    printf 'server = "http://%s"\n\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' "$2" "$2" > "$dir/hosts.toml.tmp"
    mv -f "$dir/hosts.toml.tmp" "$dir/hosts.toml" ;;
  *) usage ;;
esac
