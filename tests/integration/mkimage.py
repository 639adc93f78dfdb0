#!/usr/bin/env python3
"""Make deterministic multi-platform test images as an OCI image layout.

  mkimage.py OUTDIR --tag NAME --platform linux/amd64 --platform linux/arm64 \
      --layers 3 --layer-size 1M [--seed N] [--docker] [--shared-base] \
      [--single] [--annotation K=V]...

For each platform: LAYERS gzip layers of pseudo-random (incompressible)
content, roughly LAYER-SIZE compressed each, a config (architecture, os,
variant, rootfs.diff_ids, history) and an image manifest; then an image
index (or, with --docker, a Docker manifest list) listing them with platform
fields. OUTDIR gets oci-layout, index.json (entry annotated with
org.opencontainers.image.ref.name = TAG) and blobs/sha256/. An existing
layout is extended: an entry with the same tag is replaced.

--single     write the (only) platform's manifest under TAG, no index
--push HOST/REPO:TAG  also upload what TAG points at to a plain-HTTP
             registry (skopeo's oci: transport cannot read Docker media
             types from a layout, so --docker images get there this way)
--shared-base  the first layer is identical for every platform (dedup tests)

Same arguments give the same digests: random content comes from
random.Random seeded with a string, tar headers have fixed mtime/uid/gid and
sorted entries, gzip has mtime 0 and no file name.
Prints "TAG DIGEST" of what TAG points at. Standard library only.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import random
import sys
import tarfile
import http.client
from urllib.parse import urlsplit

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
REF_NAME = "org.opencontainers.image.ref.name"
EPOCH = "1970-01-01T00:00:00Z"


def parse_size(text):
    mult = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    t = text.strip().upper().rstrip("B").rstrip("I")
    unit = t[-1] if t and t[-1] in "KMG" else ""
    num = t[:-1] if unit else t
    return int(float(num) * mult[unit])


def parse_platform(text):
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise SystemExit(f"mkimage: invalid platform '{text}': want os/arch[/variant]")
    p = {"architecture": parts[1], "os": parts[0]}
    if len(parts) == 3:
        p["variant"] = parts[2]
    return p


class RandomReader:
    """A file-like object yielding SIZE deterministic pseudo-random bytes."""

    def __init__(self, seed, size):
        self.rng = random.Random(seed)
        self.left = size

    def read(self, n=-1):
        if n is None or n < 0 or n > self.left:
            n = self.left
        self.left -= n
        return self.rng.randbytes(n)


class HashWriter:
    """Hashes and counts what is written, passes it on to an optional sink."""

    def __init__(self, sink=None):
        self.sink = sink
        self.h = hashlib.sha256()
        self.size = 0

    def write(self, b):
        self.h.update(b)
        self.size += len(b)
        if self.sink is not None:
            self.sink.write(b)
        return len(b)

    def flush(self):
        pass

    def tell(self):
        return self.size

    def digest(self):
        return "sha256:" + self.h.hexdigest()


class Layout:
    def __init__(self, root):
        self.root = root
        self.blobdir = os.path.join(root, "blobs", "sha256")
        os.makedirs(self.blobdir, exist_ok=True)

    def put_bytes(self, data):
        d = hashlib.sha256(data).hexdigest()
        path = os.path.join(self.blobdir, d)
        if not os.path.exists(path):
            tmp = path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.rename(tmp, path)
        return "sha256:" + d, len(data)

    def put_json(self, obj):
        # Deliberately not the compact form: copies must keep these bytes.
        return self.put_bytes((json.dumps(obj, indent=3) + "\n").encode())

    def put_layer(self, seed, files):
        """files: list of (name, size, text): TEXT (bytes) as the content,
        or None for SIZE random bytes. Returns (digest, size, diff_id)."""
        tmp = os.path.join(self.blobdir, ".layer.tmp")
        with open(tmp, "wb") as out:
            comp = HashWriter(out)
            gz = gzip.GzipFile(filename="", mode="wb", fileobj=comp,
                               compresslevel=1, mtime=0)
            raw = HashWriter(gz)
            with tarfile.open(fileobj=raw, mode="w",
                              format=tarfile.USTAR_FORMAT) as tar:
                dirs = sorted({os.path.dirname(f[0]) for f in files} - {""})
                for d in dirs:
                    ti = tarfile.TarInfo(d)
                    ti.type = tarfile.DIRTYPE
                    ti.mode = 0o755
                    fix(ti)
                    tar.addfile(ti)
                for name, size, text in sorted(files):
                    ti = tarfile.TarInfo(name)
                    ti.size = size if text is None else len(text)
                    ti.mode = 0o644
                    fix(ti)
                    src = (io.BytesIO(text) if text is not None else
                           RandomReader(f"{seed}/{name}", size))
                    tar.addfile(ti, src)
            gz.close()
        digest = comp.digest()
        os.rename(tmp, os.path.join(self.blobdir, digest.split(":", 1)[1]))
        return digest, comp.size, raw.digest()


def fix(ti):
    ti.mtime = 0
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""


def build_image(layout, args, plat, plat_text, media):
    layer_size = parse_size(args.layer_size)
    layers = []
    diff_ids = []
    history = []
    for i in range(args.layers):
        shared = args.shared_base and i == 0
        seed = f"{args.seed}/{'shared' if shared else plat_text}/{i}"
        # A few files per layer; the payload is incompressible so the gzip
        # size is close to the requested size.
        n = 3
        per = max(layer_size // n, 1)
        files = [(f"layer{i}/data{j}.bin", per, None) for j in range(n)]
        label = "shared" if shared else plat_text
        files.append((f"layer{i}/about.txt", 0,
                      f"{label} layer {i}\n".encode()))
        digest, size, diff_id = layout.put_layer(seed, files)
        layers.append({"mediaType": media["layer"], "digest": digest,
                       "size": size})
        diff_ids.append(diff_id)
        history.append({"created": EPOCH,
                        "created_by": f"mkimage layer {i} ({label})"})
    config = {"architecture": plat["architecture"], "os": plat["os"]}
    if "variant" in plat:
        config["variant"] = plat["variant"]
    config.update({
        "created": EPOCH,
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                           "/usr/bin:/sbin:/bin"],
                   "Cmd": ["/bin/sh"],
                   "Labels": {"org.plait.test.platform": plat_text,
                              "org.plait.test.seed": str(args.seed)}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    })
    cdigest, csize = layout.put_json(config)
    manifest = {"schemaVersion": 2, "mediaType": media["manifest"],
                "config": {"mediaType": media["config"], "digest": cdigest,
                           "size": csize},
                "layers": layers}
    mdigest, msize = layout.put_json(manifest)
    return mdigest, msize


def push(layout_dir, top, target):
    """Uploads TOP (a descriptor in LAYOUT_DIR) and everything it references
    to TARGET = HOST:PORT/REPO:TAG over plain HTTP, children first."""
    hostport, _, rest = target.partition("/")
    repo, _, tag = rest.rpartition(":")
    if not repo or not tag:
        raise SystemExit(f"mkimage: --push wants HOST:PORT/REPO:TAG, got '{target}'")

    def blob_path(digest):
        return os.path.join(layout_dir, "blobs", "sha256",
                            digest.split(":", 1)[1])

    def request(method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(hostport, timeout=60)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp, data

    def put_blob(digest):
        resp, _ = request("HEAD", f"/v2/{repo}/blobs/{digest}")
        if resp.status == 200:
            return
        resp, data = request("POST", f"/v2/{repo}/blobs/uploads/")
        if resp.status != 202:
            raise SystemExit(f"mkimage: start upload: {resp.status} {data!r}")
        loc = urlsplit(resp.getheader("Location"))
        sep = "&" if loc.query else "?"
        with open(blob_path(digest), "rb") as f:
            body = f.read()
        resp, data = request(
            "PUT", f"{loc.path}?{loc.query}{sep}digest={digest}", body,
            {"Content-Type": "application/octet-stream",
             "Content-Length": str(len(body))})
        if resp.status != 201:
            raise SystemExit(f"mkimage: upload {digest}: {resp.status} {data!r}")

    def put_manifest(desc, ref):
        with open(blob_path(desc["digest"]), "rb") as f:
            body = f.read()
        obj = json.loads(body)
        for child in obj.get("manifests", []):
            put_manifest(child, child["digest"])
        if "config" in obj:
            put_blob(obj["config"]["digest"])
        for layer in obj.get("layers", []):
            put_blob(layer["digest"])
        resp, data = request("PUT", f"/v2/{repo}/manifests/{ref}", body,
                             {"Content-Type": desc["mediaType"]})
        if resp.status != 201:
            raise SystemExit(f"mkimage: put manifest {ref}: {resp.status} {data!r}")

    put_manifest(top, tag)


def main():
    ap = argparse.ArgumentParser(
        description="make deterministic multi-platform test images")
    ap.add_argument("outdir")
    ap.add_argument("--tag", required=True)
    ap.add_argument("--platform", action="append", required=True)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--layer-size", default="64K")
    ap.add_argument("--seed", default="0")
    ap.add_argument("--docker", action="store_true",
                    help="Docker schema2 media types (manifest list)")
    ap.add_argument("--shared-base", action="store_true",
                    help="first layer identical for every platform")
    ap.add_argument("--single", action="store_true",
                    help="tag the manifest itself (one platform only)")
    ap.add_argument("--push", metavar="HOST/REPO:TAG",
                    help="also upload the image to a plain-HTTP registry")
    ap.add_argument("--annotation", action="append", default=[],
                    help="K=V annotation on the index (not with --single)")
    args = ap.parse_args()

    if args.single and len(args.platform) != 1:
        ap.error("--single takes exactly one --platform")
    if args.layers < 1:
        ap.error("--layers must be at least 1")
    media = ({"index": DOCKER_LIST, "manifest": DOCKER_MANIFEST,
              "config": DOCKER_CONFIG, "layer": DOCKER_LAYER}
             if args.docker else
             {"index": OCI_INDEX, "manifest": OCI_MANIFEST,
              "config": OCI_CONFIG, "layer": OCI_LAYER})
    layout = Layout(args.outdir)

    entries = []
    for text in args.platform:
        plat = parse_platform(text)
        d, s = build_image(layout, args, plat, text, media)
        entries.append({"mediaType": media["manifest"], "digest": d,
                        "size": s, "platform": plat})

    if args.single:
        top = dict(entries[0])
        del top["platform"]
    else:
        index = {"schemaVersion": 2, "mediaType": media["index"],
                 "manifests": entries}
        if args.annotation:
            if args.docker:
                ap.error("--annotation is not available with --docker")
            index["annotations"] = dict(a.split("=", 1)
                                        for a in args.annotation)
        d, s = layout.put_json(index)
        top = {"mediaType": media["index"], "digest": d, "size": s}
    top["annotations"] = {REF_NAME: args.tag}

    with open(os.path.join(args.outdir, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    ipath = os.path.join(args.outdir, "index.json")
    try:
        with open(ipath) as f:
            top_index = json.load(f)
    except FileNotFoundError:
        top_index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
                     "manifests": []}
    top_index["manifests"] = [
        m for m in top_index.get("manifests", [])
        if m.get("annotations", {}).get(REF_NAME) != args.tag] + [top]
    with open(ipath + ".tmp", "w") as f:
        json.dump(top_index, f, indent=2)
        f.write("\n")
    os.rename(ipath + ".tmp", ipath)
    if args.push:
        push(args.outdir, top, args.push)
    print(args.tag, top["digest"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
