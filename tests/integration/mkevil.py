#!/usr/bin/env python3
"""mkevil.py OUTDIR TAG CANARY_DIR KIND - a one-layer OCI image whose layer tries
to write outside the root, for plait's escape tests. KIND:
  abs       a member named with an absolute path inside CANARY_DIR
  dotdot    a member '../../..' climbing to CANARY_DIR
  symlink   'esc' -> CANARY_DIR, then 'esc/pwned' written through it
  hardlink  a hard link to CANARY_DIR/canary, then content written to it
  parent    two layers: 'etc2' -> CANARY_DIR in the first, 'etc2/pwned' in the second
Standard library only; deterministic."""
import gzip, hashlib, io, json, os, sys, tarfile


def tar_bytes(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for m, data in members:
            t.addfile(m, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def member(name, kind=tarfile.REGTYPE, data=b"", link=""):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = 0o644 if kind == tarfile.REGTYPE else 0o777
    ti.mtime = 0
    ti.linkname = link
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    return ti, (data if kind == tarfile.REGTYPE else None)


def main():
    out, tag, canary, kind = sys.argv[1:5]
    c = canary.lstrip("/")
    depth = "../" * 12
    layers = {
        "abs": [[member("/" + c + "/pwned", data=b"pwned\n")]],
        "dotdot": [[member(depth + c + "/pwned", data=b"pwned\n")]],
        "symlink": [[member("esc", tarfile.SYMTYPE, link=canary),
                     member("esc/pwned", data=b"pwned\n")]],
        "hardlink": [[member("hl", tarfile.LNKTYPE, link=canary + "/canary"),
                      member("hl", data=b"pwned\n")]],
        "parent": [[member("etc2", tarfile.SYMTYPE, link=canary)],
                   [member("etc2/pwned", data=b"pwned\n")]],
    }[kind]
    os.makedirs(out + "/blobs/sha256", exist_ok=True)

    def put(data):
        d = hashlib.sha256(data).hexdigest()
        with open(f"{out}/blobs/sha256/{d}", "wb") as f:
            f.write(data)
        return "sha256:" + d, len(data)

    descs, diff_ids = [], []
    for ms in layers:
        raw = tar_bytes(ms)
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        gz = gzip.compress(raw, mtime=0)
        d, n = put(gz)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n})
    cfg = json.dumps({"architecture": os.uname().machine == "aarch64" and "arm64" or "amd64",
                      "os": "linux", "config": {},
                      "rootfs": {"type": "layers", "diff_ids": diff_ids}}, sort_keys=True).encode()
    cd, cn = put(cfg)
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
                      "layers": descs}).encode()
    md, mn = put(man)
    with open(out + "/oci-layout", "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(out + "/index.json", "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": md, "size": mn, "annotations": {"org.opencontainers.image.ref.name": tag}}]}, f)


main()
