"""OCI image layouts built by hand, byte for byte reproducible (hack/images.sh, hack/conformance.sh).

No image registry is reachable here and no image builder is installed, so images are written as OCI image layouts
(oci-layout, index.json, blobs/) whose index entries carry the io.containerd.image.name annotation, which
`ctr -n k8s.io images import` uses as the image name. Uncompressed layers, fixed mtimes, owners and entry order: a
digest depends only on the files that go in.
"""
import hashlib, io, json, os, tarfile

MTIME = 0  # fixed: the digest must not depend on when or where the image was built


def entry(name, kind, mode, data=b"", target="", owner=0):
    ti = tarfile.TarInfo(name)
    ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname, ti.mode = MTIME, owner, owner, "", "", mode
    if kind == "dir":
        ti.type = tarfile.DIRTYPE
    elif kind == "link":
        ti.type, ti.linkname = tarfile.SYMTYPE, target
    else:
        ti.size = len(data)
    return ti, (io.BytesIO(data) if kind == "file" else None)


def make_tar(entries):
    """entries: list of (name, kind, mode, data, target[, owner uid=gid, default 0]); written sorted, parents first
    (sort by path)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for e in sorted(entries, key=lambda e: e[0]):
            ti, f = entry(*e)
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


def image(work, arch, tarname, names, layer_entries, config):
    """Writes work/tarname (one image, one layer, named every name in names); returns its index rows
    (tarname, name, manifest digest)."""
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


def busybox_files(busybox, users=(), groups=(), all_in_bin=False):
    """/bin/busybox, a symlink per applet at the path busybox itself names (`--list-full`, so /usr/bin/env exists
    for shebangs), root and nobody (plus users/groups: passwd and group lines), /tmp. all_in_bin: a link for every
    applet in /bin as well, as Docker's busybox image has (/bin/sysctl). Returns layer entries."""
    with open(busybox, "rb") as f:
        bb = f.read()
    applets = [l.strip() for l in os.popen(busybox + " --list-full").read().splitlines() if l.strip()]
    files = {"bin/busybox": ("file", 0o755, bb, "")}
    for a in applets:
        if a != "bin/busybox":
            files[a] = ("link", 0o777, b"", "/bin/busybox")
            if all_in_bin:
                files["bin/" + a.rsplit("/", 1)[-1]] = ("link", 0o777, b"", "/bin/busybox")
    passwd = "root:x:0:0:root:/root:/bin/sh\n" + "".join(u + "\n" for u in users) + "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    group = "root:x:0:\n" + "".join(g + "\n" for g in groups) + "nobody:x:65534:\n"
    files["etc/passwd"] = ("file", 0o644, passwd.encode(), "")
    files["etc/group"] = ("file", 0o644, group.encode(), "")
    dirs = dirs_of(files) | {"tmp", "root", "var", "var/tmp", "home", "proc", "sys", "dev"}
    layer = [(d, "dir", 0o1777 if d in ("tmp", "var/tmp") else (0o700 if d == "root" else 0o755), b"", "") for d in dirs]
    layer += [(p, k, m, d, t) for p, (k, m, d, t) in files.items()]
    return layer


def write_index(work, rows):
    """index.txt (TARBALL NAME MANIFEST-DIGEST a line: what hack/site.sh compares before importing), images.txt."""
    with open(os.path.join(work, "index.txt"), "w") as f:
        for r in rows:
            f.write(" ".join(r) + "\n")
    with open(os.path.join(work, "images.txt"), "w") as f:
        for r in rows:
            f.write(r[1] + "\n")


def elf_closure(programs):
    """Layer files {path: (kind, mode, data, target)} for dynamically linked programs (e.g. Debian's curl and bash)
    and every shared library ldd resolves for them, the dynamic loader included, each at the path ldd names (the
    image has no merged /usr: /lib and /lib64 are real directories there)."""
    import re
    import subprocess

    files = {}
    for prog in programs:
        with open(prog, "rb") as f:
            files[prog.lstrip("/")] = ("file", 0o755, f.read(), "")
        out = subprocess.run(["ldd", prog], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
            if not m:
                continue
            path = m.group(1)
            with open(os.path.realpath(path), "rb") as f:
                files[path.lstrip("/")] = ("file", 0o755, f.read(), "")
    return files


# Multi-architecture images (hack/cloud-images.sh): an OCI layout whose index.json names one image index, which
# lists one manifest per platform. Layers gzip-compressed (gzip -n: no name, no time stamp), so the bytes depend only
# on the files that go in and on gzip.


def gzip_n(data):
    import subprocess

    return subprocess.run(["gzip", "-n", "-6", "-c"], input=data, capture_output=True, check=True).stdout


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def elf_closure_in(root, programs, libdirs):
    """Layer files {path: (kind, mode, data, target)} for the dynamically linked programs (paths relative to root, a
    directory holding another architecture's files, e.g. unpacked Debian packages): each program, its ELF interpreter
    and every shared library its DT_NEEDED entries name, transitively, looked up in libdirs (relative to root), with
    the packages' symlinks kept as symlinks. readelf reads any architecture's ELF, so nothing is executed."""
    import re
    import subprocess

    files = {}

    def add(rel):
        """rel: a path under root; adds it (following and keeping symlinks); returns the regular file's path."""
        while True:
            full = os.path.join(root, rel)
            if os.path.islink(full):
                target = os.readlink(full)
                files[rel] = ("link", 0o777, b"", target)
                rel = os.path.normpath(os.path.join(os.path.dirname(rel), target) if not target.startswith("/") else target.lstrip("/"))
                continue
            with open(full, "rb") as f:
                files[rel] = ("file", os.stat(full).st_mode & 0o755 | 0o644, f.read(), "")
            return rel

    todo = [add(p.lstrip("/")) for p in programs]
    seen = set()
    while todo:
        rel = todo.pop()
        if rel in seen:
            continue
        seen.add(rel)
        full = os.path.join(root, rel)
        heads = subprocess.run(["readelf", "-lW", full], capture_output=True, text=True, check=True).stdout
        m = re.search(r"Requesting program interpreter: (/[^\]]+)\]", heads)
        if m:
            todo.append(add(m.group(1).lstrip("/")))
        dyn = subprocess.run(["readelf", "-dW", full], capture_output=True, text=True, check=True).stdout
        for soname in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn):
            for d in libdirs:
                if os.path.lexists(os.path.join(root, d, soname)):
                    todo.append(add(os.path.join(d, soname)))
                    break
            else:
                raise SystemExit(f"elf_closure_in: {soname} (needed by {rel}) is in none of {libdirs} under {root}")
    return files


def layer_of(files, dirs=(), owner_dirs=()):
    """Layer entries for files {path: (kind, mode, data, target)}: their parent directories (0755, root), the extra
    directories dirs ((path, mode) pairs) and owner_dirs ((path, mode, uid) triples)."""
    entries = {d: (d, "dir", 0o755, b"", "") for d in dirs_of(files)}
    for d, mode in dirs:
        entries[d] = (d, "dir", mode, b"", "")
    for d, mode, uid in owner_dirs:
        entries[d] = (d, "dir", mode, b"", "", uid)
    for p, (k, m, d, t) in files.items():
        entries[p] = (p, k, m, d, t)
    return list(entries.values())


def multiarch_image(outdir, name, platforms, annotations=None, created_by="hack/cloud-images.sh"):
    """Writes the OCI image layout outdir (new directory) holding one multi-platform image named name
    (REGISTRY/REPO:TAG): index.json -> an image index -> one manifest per platform. platforms: a list of
    (platform dict {"architecture", "os"[, "variant"]}, [layer entries, ...], image config dict). The index.json entry
    carries io.containerd.image.name (what `ctr images import` names the image after) and
    org.opencontainers.image.ref.name (the tag: skopeo's oci:DIR:TAG); the image index carries both as well, plus
    annotations. Returns {"index": digest, "platforms": {arch: {"manifest", "size", "layers"}}}, where size is what a
    pull transfers for that platform (manifest, config and compressed layers)."""
    blobs = {}

    def blob(b):
        blobs[sha(b)] = b
        return {"digest": sha(b), "size": len(b)}

    manifests, result = [], {}
    for platform, layers, config in platforms:
        tars = [make_tar(l) for l in layers]
        gz = [gzip_n(t) for t in tars]
        cfg = {"created": "1970-01-01T00:00:00Z", "os": platform["os"], "architecture": platform["architecture"],
               "config": config, "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in tars]},
               "history": [{"created": "1970-01-01T00:00:00Z", "created_by": created_by} for _ in tars]}
        if "variant" in platform:
            cfg["variant"] = platform["variant"]
        cfg_d = blob(canonical(cfg))
        man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg_d},
               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **blob(g)} for g in gz]}
        man_b = canonical(man)
        man_d = blob(man_b)
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", **man_d, "platform": platform})
        result[platform["architecture"]] = {
            "manifest": man_d["digest"],
            "size": len(man_b) + cfg_d["size"] + sum(len(g) for g in gz),
            "uncompressed": sum(len(t) for t in tars),
            "layers": [len(g) for g in gz]}
    names = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}
    idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests,
           "annotations": {**(annotations or {}), **names}}
    idx_d = blob(canonical(idx))
    top = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
           "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", **idx_d, "annotations": names}]}
    os.makedirs(os.path.join(outdir, "blobs", "sha256"))
    for d, b in sorted(blobs.items()):
        with open(os.path.join(outdir, "blobs", "sha256", d[7:]), "wb") as f:
            f.write(b)
    with open(os.path.join(outdir, "oci-layout"), "wb") as f:
        f.write(b'{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(outdir, "index.json"), "wb") as f:
        f.write(canonical(top))
    return {"index": idx_d["digest"], "platforms": result}


def layout_tar(outdir, tarpath):
    """The OCI layout outdir as one tarball (what `ctr images import` and `skopeo copy oci-archive:` read)."""
    entries = [("blobs", "dir", 0o755, b"", ""), ("blobs/sha256", "dir", 0o755, b"", "")]
    for rel in ["oci-layout", "index.json"] + ["blobs/sha256/" + n for n in sorted(os.listdir(os.path.join(outdir, "blobs", "sha256")))]:
        with open(os.path.join(outdir, rel), "rb") as f:
            entries.append((rel, "file", 0o644, f.read(), ""))
    with open(tarpath, "wb") as f:
        f.write(make_tar(entries))
