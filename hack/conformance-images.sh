#!/usr/bin/env bash
# Builds the test images the selected upstream node conformance specs run (make conformance; docs/conformance.md),
# into $EF_CACHE/images/conformance/ outside the repo, with the names the e2e binary v1.33 asks for
# (test/utils/image/manifest.go), so no spec is pointed elsewhere. No registry is reachable here: each image is
# made from what upstream's Dockerfile puts in that the specs use, over upstream busybox (built here, see
# upstream_busybox) as base (hack/oci.py; OCI layouts that `ctr images import` reads):
#   registry.k8s.io/pause:3.10                         hack/pause/pause.c (upstream's pause), user 65535
#   registry.k8s.io/e2e-test-images/busybox:1.36.1-1   busybox (upstream: busybox:1.36.1; here Debian's release), every
#                                                      applet in /bin as in Docker's image (/bin/sysctl), cmd sh
#   registry.k8s.io/e2e-test-images/agnhost:2.53       busybox + /agnhost (built from the module), /agnhost-2 a
#                                                      symlink to it, porter's localhost.crt/key, /uploads, the user
#                                                      user-defined-in-image (1000) in group-defined-in-image (50000);
#                                                      entrypoint /agnhost, cmd pause; Debian's curl and bash with
#                                                      the libraries they link (hooks run curl, probes bash; upstream
#                                                      adds them, dig and iperf from alpine)
#   registry.k8s.io/e2e-test-images/nonewprivs:1.3     busybox + the setuid /usr/local/bin/nnp (prints its euid)
#   registry.k8s.io/e2e-test-images/nonroot:1.4        busybox, user 1234
#   registry.k8s.io/e2e-test-images/nginx:1.14-4       busybox only: the one selected spec naming it switches a
#                                                      crashing container to it and keeps its shell command
# index.txt (TARBALL NAME MANIFEST-DIGEST) is what hack/site.sh import compares before importing.
# Needs hack/build-binaries.sh conformance first (agnhost, nnp). Skips the build when no input changed.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/versions.sh"
. "$here/image-inputs.sh"

out=$EF_CACHE/images/conformance
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9

mod=$(GOFLAGS=-mod=mod go env GOMODCACHE 2>/dev/null || echo "$HOME/go/pkg/mod")/k8s.io/kubernetes@$K8S_VERSION
# busybox as upstream builds it. Debian's busybox-static patches ash to drop environment variables whose names are
# not shell identifiers (debian/patches/revert-9c143ce...patch), so `sh -c env` would hide envFrom's "data-1" and
# the specs that look for it would fail because of the image. Upstream's ash keeps them, so the busybox of these
# images is built from Debian's source package of the same release without Debian's patches: the orig tarball,
# `make defconfig`, static (tc off: it does not build against current kernel headers), into $EF_BIN/busybox-upstream.
upstream_busybox() {
  local codename src apt tarball
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  src=$EF_CACHE/src/busybox apt=$EF_CACHE/src/apt-src
  if [ -x "$EF_BIN/busybox-upstream" ] && [ "$(cat "$EF_BIN/.busybox-upstream.version" 2>/dev/null)" = "$codename" ]; then return; fi
  echo "[conformance-images] building upstream busybox from Debian $codename's source package" >&2
  mkdir -p "$src" "$apt/lists/partial" "$apt/cache/archives/partial"
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $codename main" > "$apt/sources.list"
  local o=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$apt/lists"
    -o "Dir::Cache=$apt/cache" -o APT::Sandbox::User=root -qq)
  apt-get "${o[@]}" update >/dev/null
  rm -rf "$src"/*
  (cd "$src" && apt-get "${o[@]}" source --download-only busybox >/dev/null)
  tarball=$(ls "$src"/busybox_*.orig.tar.* | head -1)
  tar -xf "$tarball" -C "$src"
  (cd "$src"/busybox-*/ && make defconfig >/dev/null &&
    sed -i 's/^# CONFIG_STATIC is not set/CONFIG_STATIC=y/; s/^CONFIG_TC=y/# CONFIG_TC is not set/' .config &&
    make -j"$(nproc)" busybox >"$src/build.log" 2>&1) || { tail -20 "$src/build.log" >&2; exit 1; }
  env -i 'a-b=1' "$src"/busybox-*/busybox sh -c env | grep -qx 'a-b=1' ||
    { echo "error: the busybox built from $tarball drops environment names with '-'" >&2; exit 1; }
  install -m 0755 "$src"/busybox-*/busybox "$EF_BIN/busybox-upstream"
  echo "$codename" > "$EF_BIN/.busybox-upstream.version"
}
upstream_busybox
busybox=$EF_BIN/busybox-upstream

for f in "$EF_BIN/agnhost" "$EF_BIN/nnp" "$mod/test/images/agnhost/porter/localhost.crt" "$busybox" /usr/bin/curl /bin/bash; do
  [ -e "$f" ] || { echo "error: $f is missing: run hack/build-binaries.sh conformance" >&2; exit 1; }
done
arch=$(oci_arch)
inputs=$(build_inputs "$arch" "$here/conformance-images.sh" "$here/image-inputs.sh" "$here/oci.py" "$here/pause/pause.c" "$busybox" \
  "$EF_BIN/agnhost" "$EF_BIN/nnp" /usr/bin/curl /bin/bash)
if [ "${1:-}" != --force ] && [ "$(cat "$out/.inputs" 2>/dev/null)" = "$inputs" ] && [ -s "$out/index.txt" ]; then
  echo "[conformance-images] up to date in $out" >&2
  exit 0
fi

echo "[conformance-images] building into $out" >&2
work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
gcc -static -O2 -s -o "$work/pause" "$here/pause/pause.c"

/usr/bin/python3 - "$work" "$arch" "$busybox" "$here" "$EF_BIN" "$mod/test/images/agnhost/porter" <<'PY'
import os, sys

work, arch, busybox, here, bindir, porter = sys.argv[1:7]
sys.path.insert(0, here)
from oci import busybox_files, dirs_of, elf_closure, image, write_index

def read(p):
    with open(p, "rb") as f:
        return f.read()

E2E = "registry.k8s.io/e2e-test-images/"
PATH = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]

def with_files(base, files):
    """base layer entries plus files {path: (kind, mode, data, target)} and their parent directories."""
    have = {e[0] for e in base}
    extra = [(d, "dir", 0o755, b"", "") for d in dirs_of(files) if d not in have]
    return [e for e in base if e[0] not in files] + extra + [(p, k, m, d, t) for p, (k, m, d, t) in files.items()]

rows = []
rows += image(work, arch, "pause.tar", ["registry.k8s.io/pause:3.10"], [("pause", "file", 0o755, read(os.path.join(work, "pause")), "")],
              {"Entrypoint": ["/pause"], "User": "65535:65535", "WorkingDir": "/"})
rows += image(work, arch, "busybox.tar", [E2E + "busybox:1.36.1-1"], busybox_files(busybox, all_in_bin=True),
              {"Env": PATH, "Cmd": ["sh"], "WorkingDir": "/"})
agn = busybox_files(busybox, all_in_bin=True, users=["user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh"],
                    groups=["user-defined-in-image:x:1000:", "group-defined-in-image:x:50000:user-defined-in-image"])
agn = with_files(agn, {
    **elf_closure(["/usr/bin/curl", "/bin/bash"]),
    "agnhost": ("file", 0o755, read(os.path.join(bindir, "agnhost")), ""),
    "agnhost-2": ("link", 0o777, b"", "agnhost"),
    "localhost.crt": ("file", 0o644, read(os.path.join(porter, "localhost.crt")), ""),
    "localhost.key": ("file", 0o644, read(os.path.join(porter, "localhost.key")), ""),
    "uploads": ("dir", 0o755, b"", ""),
    "home/user-defined-in-image": ("dir", 0o755, b"", ""),
})
rows += image(work, arch, "agnhost.tar", [E2E + "agnhost:2.53"], agn,
              {"Env": PATH, "Entrypoint": ["/agnhost"], "Cmd": ["pause"], "WorkingDir": "/",
               "ExposedPorts": {"80/tcp": {}, "8080/tcp": {}, "8081/tcp": {}, "9376/tcp": {}, "5000/tcp": {}}})
nnp = with_files(busybox_files(busybox, all_in_bin=True), {"usr/local/bin/nnp": ("file", 0o4755, read(os.path.join(bindir, "nnp")), "")})
rows += image(work, arch, "nonewprivs.tar", [E2E + "nonewprivs:1.3"], nnp,
              {"Env": PATH, "Cmd": ["nnp"], "WorkingDir": "/"})
# nginx: only "should have their auto-restart back-off timer reset on image update" names it among the selected
# specs, as the image a crashing busybox container is switched to (command /bin/sh -c "sleep 5" kept): what it needs is
# a different image with a shell. No nginx binary: no selected spec runs nginx (a spec that did would fail loudly).
rows += image(work, arch, "nginx.tar", [E2E + "nginx:1.14-4"], busybox_files(busybox, all_in_bin=True),
              {"Env": PATH, "Cmd": ["sh"], "WorkingDir": "/", "ExposedPorts": {"80/tcp": {}}})
rows += image(work, arch, "nonroot.tar", [E2E + "nonroot:1.4"], busybox_files(busybox, all_in_bin=True),
              {"Env": PATH, "Cmd": ["sh"], "User": "1234", "WorkingDir": "/"})
write_index(work, rows)
PY

rm -f "$work/pause"
mv -f "$work"/*.tar "$work/index.txt" "$work/images.txt" "$out/"
echo "$inputs" > "$out/.inputs"
echo "[conformance-images] built: $(tr '\n' ' ' < "$out/images.txt")" >&2
