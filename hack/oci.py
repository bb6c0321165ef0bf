"""OCI image layouts built by hand, byte for byte reproducible (hack/images.sh, hack/conformance.sh).

No image registry is reachable here and no image builder is installed, so images are written as OCI image layouts
(oci-layout, index.json, blobs/) whose index entries carry the io.containerd.image.name annotation, which
`ctr -n k8s.io images import` uses as the image name. Uncompressed layers, fixed mtimes, owners and entry order: a
digest depends only on the files that go in.
"""
import hashlib, io, json, os, tarfile

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
