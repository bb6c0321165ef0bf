#!/usr/bin/env bash
# Builds the images every edge site imports into its containerd (no image registry is reachable here), into
# $EF_CACHE/images/ outside the repo:
#   pause.tar    registry.k8s.io/pause:3.6                  /pause from hack/pause/pause.c (containerd 1.6's default
#                                                            sandbox_image, so no sandbox_image override is needed)
#   busybox.tar  docker.io/edgefarm/busybox:1.35 and :latest Debian's busybox-static + applet symlinks, cmd sh
#   images.txt   the image names, one a line
#   index.txt    TARBALL NAME MANIFEST-DIGEST, one line per name (what hack/site.sh compares before importing)
# Tarballs are OCI image layouts (oci-layout, index.json, blobs/) whose index entries carry the
# io.containerd.image.name annotation, which `ctr -n k8s.io images import` uses as the image name. Uncompressed
# layers, fixed mtimes, owners and entry order: the digests depend only on pause.c, the compiler and the busybox
# binary. Skips the build when none of its inputs changed. Safe to run concurrently (flock).
#
# Usage: hack/images.sh [--force]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/versions.sh"

out=$EF_CACHE/images
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9

busybox=/bin/busybox
[ -x "$busybox" ] && "$busybox" --list-full >/dev/null 2>&1 || {
  echo "error: $busybox (Debian's busybox-static) is missing: apt-get install busybox-static" >&2; exit 1; }
command -v gcc >/dev/null || { echo "error: gcc is missing: apt-get install gcc libc6-dev" >&2; exit 1; }
py=/usr/bin/python3; [ -x "$py" ] || py=python3

case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  armv7l) arch=arm ;;
  *) arch=$(uname -m) ;;
esac

# Contents, not paths: every checkout shares the cache and builds the same images.
inputs=$( {
  for f in "$here/images.sh" "$here/pause/pause.c" "$busybox"; do sha256sum < "$f"; done
  gcc --version | head -1
  echo "$arch"
} | sha256sum | cut -d' ' -f1)

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

"$py" - "$work" "$arch" "$busybox" <<'PY'
import hashlib, io, json, os, sys, tarfile

work, arch, busybox = sys.argv[1], sys.argv[2], sys.argv[3]
MTIME = 0  # fixed: the digest must not depend on when or where the image was built


def entry(name, kind, mode, data=b"", target=""):
    ti = tarfile.TarInfo(name)
    ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname, ti.mode = MTIME, 0, 0, "", "", mode
    if kind == "dir":
        ti.type = tarfile.DIRTYPE
    elif kind == "link":
        ti.type, ti.linkname = tarfile.SYMTYPE, target
    else:
        ti.size = len(data)
    return ti, (io.BytesIO(data) if kind == "file" else None)


def make_tar(entries):
    """entries: list of (name, kind, mode, data, target); written sorted, parents first (sort by path)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, kind, mode, data, target in sorted(entries, key=lambda e: e[0]):
            ti, f = entry(name, kind, mode, data, target)
            tf.addfile(ti, f)
    return buf.getvalue()


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def dirs_of(paths):
    out = set()
    for p in paths:
        parts = p.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            out.add("/".join(parts[:i]))
    return out


def image(tarname, names, layer_entries, config):
    layer = make_tar(layer_entries)
    cfg = {
        "created": "1970-01-01T00:00:00Z",
        "architecture": arch,
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [sha(layer)]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "hack/images.sh"}],
    }
    cfg_b = json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(cfg_b), "size": len(cfg_b)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(layer), "size": len(layer)}],
    }
    man_b = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha(man_b),
                "size": len(man_b),
                "platform": {"architecture": arch, "os": "linux"},
                "annotations": {"io.containerd.image.name": n, "org.opencontainers.image.ref.name": n.rsplit(":", 1)[1]},
            }
            for n in names
        ],
    }
    idx_b = json.dumps(index, sort_keys=True, separators=(",", ":")).encode()
    outer = [("oci-layout", "file", 0o644, b'{"imageLayoutVersion":"1.0.0"}', ""), ("index.json", "file", 0o644, idx_b, ""),
             ("blobs", "dir", 0o755, b"", ""), ("blobs/sha256", "dir", 0o755, b"", "")]
    for b in (layer, cfg_b, man_b):
        outer.append(("blobs/sha256/" + sha(b)[7:], "file", 0o644, b, ""))
    tmp = os.path.join(work, tarname)
    with open(tmp, "wb") as f:
        f.write(make_tar(outer))
    return [(tarname, n, sha(man_b)) for n in names]


rows = []

# pause: one file, like upstream's image (which also runs as 65535).
with open(os.path.join(work, "pause"), "rb") as f:
    pause = f.read()
rows += image("pause.tar", ["registry.k8s.io/pause:3.6"], [("pause", "file", 0o755, pause, "")],
              {"Entrypoint": ["/pause"], "User": "65535:65535", "WorkingDir": "/"})

# busybox: /bin/busybox, a symlink per applet at the path busybox itself names (`--list-full`, so /usr/bin/env
# exists for shebangs), root and nobody, /tmp.
with open(busybox, "rb") as f:
    bb = f.read()
applets = [l.strip() for l in os.popen(busybox + " --list-full").read().splitlines() if l.strip()]
files = {"bin/busybox": ("file", 0o755, bb, "")}
for a in applets:
    if a != "bin/busybox":
        files[a] = ("link", 0o777, b"", "/bin/busybox")
files["etc/passwd"] = ("file", 0o644, b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", "")
files["etc/group"] = ("file", 0o644, b"root:x:0:\nnobody:x:65534:\n", "")
dirs = dirs_of(files) | {"tmp", "root", "var", "var/tmp", "home", "proc", "sys", "dev"}
layer = [(d, "dir", 0o1777 if d in ("tmp", "var/tmp") else (0o700 if d == "root" else 0o755), b"", "") for d in dirs]
layer += [(p, k, m, d, t) for p, (k, m, d, t) in files.items()]
rows += image("busybox.tar", ["docker.io/edgefarm/busybox:1.35", "docker.io/edgefarm/busybox:latest"], layer,
              {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"], "WorkingDir": "/"})

with open(os.path.join(work, "index.txt"), "w") as f:
    for r in rows:
        f.write(" ".join(r) + "\n")
with open(os.path.join(work, "images.txt"), "w") as f:
    for r in rows:
        f.write(r[1] + "\n")
PY

for f in pause.tar busybox.tar index.txt images.txt; do mv -f "$work/$f" "$out/$f"; done
echo "$inputs" > "$out/.inputs"
echo "[images] built: $(tr '\n' ' ' < "$out/images.txt")" >&2
