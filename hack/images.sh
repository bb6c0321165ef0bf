#!/usr/bin/env bash
# Builds the images every edge site imports into its containerd (no image registry is reachable here), into
# $EF_CACHE/images/ outside the repo:
#   pause.tar    registry.k8s.io/pause:3.6                  /pause from hack/pause/pause.c (containerd 1.6's default
#                                                            sandbox_image, so no sandbox_image override is needed)
#   busybox.tar  docker.io/edgefarm/busybox:1.35 and :latest Debian's busybox-static + applet symlinks, cmd sh
#   images.txt   the image names, one a line
#   index.txt    TARBALL NAME MANIFEST-DIGEST, one line per name (what hack/site.sh compares before importing)
# Tarballs are OCI image layouts written by hack/oci.py (oci-layout, index.json, blobs/) whose index entries carry the
# io.containerd.image.name annotation, which `ctr -n k8s.io images import` uses as the image name. Uncompressed
# layers, fixed mtimes, owners and entry order: the digests depend only on pause.c, the compiler and the busybox
# binary. Skips the build when none of its inputs changed. Safe to run concurrently (flock).
#
# Usage: hack/images.sh [--force]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/versions.sh"
. "$here/image-inputs.sh"

out=$EF_CACHE/images
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9

busybox=/bin/busybox
[ -x "$busybox" ] && "$busybox" --list-full >/dev/null 2>&1 || {
  echo "error: $busybox (Debian's busybox-static) is missing: apt-get install busybox-static" >&2; exit 1; }
command -v gcc >/dev/null || { echo "error: gcc is missing: apt-get install gcc libc6-dev" >&2; exit 1; }
py=/usr/bin/python3; [ -x "$py" ] || py=python3

arch=$(oci_arch)
inputs=$(build_inputs "$arch" "$here/images.sh" "$here/image-inputs.sh" "$here/oci.py" "$here/pause/pause.c" "$busybox")

if [ "${1:-}" != --force ] && [ -f "$out/.inputs" ] && [ "$(cat "$out/.inputs")" = "$inputs" ] &&
  [ -s "$out/pause.tar" ] && [ -s "$out/busybox.tar" ] && [ -s "$out/images.txt" ] && [ -s "$out/index.txt" ]; then
  echo "[images] up to date in $out" >&2
  exit 0
fi

echo "[images] building into $out" >&2
work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

gcc -static -O2 -s -o "$work/pause" "$here/pause/pause.c"
"$work/pause" -v >/dev/null

"$py" - "$work" "$arch" "$busybox" "$here" <<'PY'
import os, sys

work, arch, busybox, here = sys.argv[1:5]
sys.path.insert(0, here)
from oci import busybox_files, image, write_index

rows = []

# pause: one file, like upstream's image (which also runs as 65535).
with open(os.path.join(work, "pause"), "rb") as f:
    pause = f.read()
rows += image(work, arch, "pause.tar", ["registry.k8s.io/pause:3.6"], [("pause", "file", 0o755, pause, "")],
              {"Entrypoint": ["/pause"], "User": "65535:65535", "WorkingDir": "/"})

rows += image(work, arch, "busybox.tar", ["docker.io/edgefarm/busybox:1.35", "docker.io/edgefarm/busybox:latest"],
              busybox_files(busybox),
              {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"], "WorkingDir": "/"})

write_index(work, rows)
PY

for f in pause.tar busybox.tar index.txt images.txt; do mv -f "$work/$f" "$out/$f"; done
echo "$inputs" > "$out/.inputs"
echo "[images] built: $(tr '\n' ' ' < "$out/images.txt")" >&2
