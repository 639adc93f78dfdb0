#!/usr/bin/env bash
# mkbase.sh - small, real base images for the build tests, made offline from
# Debian's busybox-static package.
#
#   mkbase.sh OUTDIR TAG [ARCH[=DEB]]...
#
# ARCH is a Debian architecture (amd64, arm64, armhf, i386, ppc64le, s390x,
# riscv64); DEB the busybox-static .deb for it. Without =DEB the .deb comes
# from apt's cache (/var/cache/apt/archives), and for the host architecture
# the installed /bin/busybox is used when no cached .deb is there. Foreign
# architectures need the .deb, e.g. after
#   dpkg --add-architecture arm64 && apt-get update && apt-get download busybox-static:arm64
# Default ARCH list: the host's architecture.
#
# The image: one layer with bin/busybox, a symlink per applet the tests use,
# /etc/passwd (root, app 1000:1000, nobody), /etc/group, /tmp 1777, /root
# 0700, /home/app owned by app, empty /dev /proc /sys /run; config with
# Env PATH, Cmd ["sh"]. One ARCH gives an image manifest under TAG, several
# an image index. OUTDIR is an OCI image layout (created or extended; an
# entry with the same tag is replaced).
#
# Deterministic: no file is written to disk for the rootfs (ownership does
# not depend on who runs this), tar entries are sorted with fixed mtimes,
# gzip has mtime 0 and no name. Same busybox -> same digests.
# Prints "TAG DIGEST". Needs python3 and dpkg-deb (only for =DEB).
set -euo pipefail

[ $# -ge 2 ] || {
	echo "usage: mkbase.sh OUTDIR TAG [ARCH[=DEB]]..." >&2
	exit 2
}
out=$1
tag=$2
shift 2
host_arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
[ $# -gt 0 ] || set -- "$host_arch"

# busybox_for ARCH [DEB] : path of a busybox binary for ARCH (extracted
# from the .deb into a temp dir when one is given or cached).
work=$(mktemp -d "${TMPDIR:-/tmp}/mkbase.XXXXXX")
trap 'rm -rf "$work"' EXIT
busybox_for() {
	local arch=$1 deb=${2:-}
	if [ -z "$deb" ]; then
		deb=$(ls /var/cache/apt/archives/busybox-static_*_"$arch".deb 2>/dev/null | sort | tail -n 1 || true)
	fi
	if [ -n "$deb" ]; then
		[ -f "$deb" ] || {
			echo "mkbase.sh: '$deb' does not exist" >&2
			return 1
		}
		mkdir -p "$work/$arch"
		dpkg-deb -x "$deb" "$work/$arch" || {
			echo "mkbase.sh: cannot extract '$deb'" >&2
			return 1
		}
		[ -f "$work/$arch/bin/busybox" ] || {
			echo "mkbase.sh: '$deb' has no bin/busybox" >&2
			return 1
		}
		echo "$work/$arch/bin/busybox"
		return 0
	fi
	if [ "$arch" = "$host_arch" ] && [ -x /bin/busybox ]; then
		echo /bin/busybox
		return 0
	fi
	echo "mkbase.sh: no busybox-static .deb for '$arch'; run: apt-get download busybox-static:$arch and pass $arch=FILE" >&2
	return 1
}

specs=()
for a in "$@"; do
	arch=${a%%=*}
	deb=
	[ "$a" != "$arch" ] && deb=${a#*=}
	bb=$(busybox_for "$arch" "$deb")
	specs+=("$arch=$bb")
done

OCILAYOUT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd) "${PYTHON:-python3}" - "$out" "$tag" "${specs[@]}" <<'PYEOF'
import os, sys
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.environ["OCILAYOUT_DIR"])
from ocilayout import publish  # noqa: E402
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MTIME = 1600000000
CREATED = "2020-09-13T12:26:40Z"  # == MTIME

# Debian architecture -> OCI (architecture, variant)
ARCHES = {
    "amd64": ("amd64", None), "arm64": ("arm64", "v8"),
    "armhf": ("arm", "v7"), "armel": ("arm", "v5"), "i386": ("386", None),
    "ppc64el": ("ppc64le", None), "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
}

APPLETS = """sh ash echo cat ls id mkdir touch chmod chown chgrp uname env test [
wc sha256sum md5sum sleep true false grep egrep sed stat cp mv rm ln readlink
head tail sort uniq tr cut printf pwd find xargs whoami basename dirname expr
seq tee date hostname awk diff cmp tar gzip gunzip mktemp realpath rmdir
du df ps kill nproc od hexdump which""".split()

PASSWD = """root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """root:x:0:
app:x:1000:
nogroup:x:65534:
"""


class Blobs:
    def __init__(self, root):
        self.root = root
        os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)

    def put(self, data):
        d = hashlib.sha256(data).hexdigest()
        p = os.path.join(self.root, "blobs", "sha256", d)
        if not os.path.exists(p):
            with open(p + ".tmp", "wb") as f:
                f.write(data)
            os.rename(p + ".tmp", p)
        return "sha256:" + d, len(data)

    def put_json(self, obj):
        return self.put(json.dumps(obj, sort_keys=True,
                                   separators=(",", ":")).encode())


def entry(name, kind, mode, uid=0, gid=0, data=b"", target=""):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.uid, ti.gid = uid, gid
    ti.uname = ti.gname = ""
    ti.mtime = MTIME
    ti.linkname = target
    if kind == tarfile.REGTYPE:
        ti.size = len(data)
    return (name, ti, data)


def rootfs_entries(busybox):
    D, F, L = tarfile.DIRTYPE, tarfile.REGTYPE, tarfile.SYMTYPE
    e = []
    for d in ("bin", "dev", "etc", "home", "proc", "run", "sbin", "sys",
              "usr", "usr/bin", "usr/sbin", "var"):
        e.append(entry(d, D, 0o755))
    e.append(entry("root", D, 0o700))
    e.append(entry("tmp", D, 0o1777))
    e.append(entry("var/tmp", D, 0o1777))
    e.append(entry("home/app", D, 0o755, 1000, 1000))
    e.append(entry("bin/busybox", F, 0o755, data=busybox))
    for a in APPLETS:
        e.append(entry("bin/" + a, L, 0o777, target="busybox"))
    e.append(entry("usr/bin/env", L, 0o777, target="../../bin/busybox"))
    e.append(entry("etc/passwd", F, 0o644, data=PASSWD.encode()))
    e.append(entry("etc/group", F, 0o644, data=GROUP.encode()))
    e.append(entry("etc/os-release", F, 0o644,
                   data=b'NAME="plait test busybox"\nID=busybox\n'))
    # One entry per path, sorted.
    byname = {}
    for name, ti, data in e:
        byname[name] = (ti, data)
    return [(n,) + byname[n] for n in sorted(byname)]


def layer(entries):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, ti, data in entries:
            if ti.type == tarfile.DIRTYPE:
                ti.name = name + "/"
            tar.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
    raw = raw.getvalue()
    comp = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=comp, mtime=0,
                       compresslevel=9) as gz:
        gz.write(raw)
    return raw, comp.getvalue()


def image(blobs, deb_arch, busybox_path):
    if deb_arch not in ARCHES:
        sys.exit("mkbase.sh: unknown architecture '%s' (one of %s)"
                 % (deb_arch, ", ".join(sorted(ARCHES))))
    arch, variant = ARCHES[deb_arch]
    with open(busybox_path, "rb") as f:
        bb = f.read()
    raw, comp = layer(rootfs_entries(bb))
    ldigest, lsize = blobs.put(comp)
    config = {
        "created": CREATED,
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
        },
        "rootfs": {"type": "layers",
                   "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
        "history": [{"created": CREATED,
                     "created_by": "mkbase.sh: busybox-static rootfs"}],
    }
    if variant:
        config["variant"] = variant
    cdigest, csize = blobs.put_json(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cdigest, "size": csize},
        "layers": [{"mediaType": OCI_LAYER, "digest": ldigest, "size": lsize}],
    }
    mdigest, msize = blobs.put_json(manifest)
    plat = {"architecture": arch, "os": "linux"}
    if variant:
        plat["variant"] = variant
    return {"mediaType": OCI_MANIFEST, "digest": mdigest, "size": msize,
            "platform": plat}


def main():
    out, tag, specs = sys.argv[1], sys.argv[2], sys.argv[3:]
    blobs = Blobs(out)
    descs = []
    for s in specs:
        deb_arch, path = s.split("=", 1)
        descs.append(image(blobs, deb_arch, path))
    publish(out, tag, descs, blobs.put_json)


main()
PYEOF
