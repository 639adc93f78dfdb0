#!/usr/bin/env bash
# mkdebian.sh - a minimal Debian bookworm base image, one per architecture,
# made with mmdebstrap from the Debian archive (the only network access).
#
#   mkdebian.sh OUTDIR TAG ARCH...
#
# ARCH is a Debian architecture (amd64, arm64, armhf, i386, ppc64el, s390x,
# riscv64). Each root filesystem is `mmdebstrap --variant=apt` (essential
# packages + apt, merged /usr, about 75 MB) turned into one gzip layer;
# documentation, man pages and locales are left out of the layer and /dev is
# empty (the runtime provides it); like Debian's -slim images, dpkg is set
# to leave documentation out of later installs and not to fsync. One ARCH
# gives an image manifest under TAG, several an image index. OUTDIR is an
# OCI image layout (created or extended; an entry with the same tag is
# replaced). Prints "TAG DIGEST".
#
# Environment:
#   MIRROR          the archive (default http://deb.debian.org/debian)
#   SUITE           default bookworm
#   MKDEBIAN_POLICY packages whose candidate versions (from the freshly
#                   downloaded lists) are written to OUTDIR/candidates-ARCH,
#                   "PACKAGE VERSION" per line: what a Dockerfile's apt pins
#                   must name to install from this archive today.
#
# Needs root, mmdebstrap, python3 and, for a foreign ARCH, arch-test and a
# QEMU binfmt_misc handler (maintainer scripts run under it). The
# architectures are bootstrapped in parallel. Not bit-for-bit reproducible
# (the archive moves), but entries are sorted, mtimes are clamped to
# SOURCE_DATE_EPOCH when set and gzip has no name or time.
set -euo pipefail

[ $# -ge 3 ] || {
	echo "usage: mkdebian.sh OUTDIR TAG ARCH..." >&2
	exit 2
}
out=$1
tag=$2
shift 2
[ "$(id -u)" = 0 ] || {
	echo "mkdebian.sh: must run as root (mmdebstrap's root mode keeps file ownership)" >&2
	exit 1
}
command -v mmdebstrap >/dev/null || {
	echo "mkdebian.sh: mmdebstrap is not installed: apt-get install mmdebstrap arch-test" >&2
	exit 1
}
mirror=${MIRROR:-http://deb.debian.org/debian}
suite=${SUITE:-bookworm}
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/mkdebian.XXXXXX")
trap 'rm -rf "$work"' EXIT

# As Debian's -slim images do: later package installs (the Dockerfile's) leave
# out documentation and locales, and dpkg does not fsync every file (much
# faster under QEMU; a half-written image layer is thrown away anyway).
# shellcheck disable=SC2016 # $1 is the hook's argument (the root)
slim_hook='mkdir -p "$1/etc/dpkg/dpkg.cfg.d" && printf "%s\n" \
"path-exclude /usr/share/doc/*" "path-include /usr/share/doc/*/copyright" \
"path-exclude /usr/share/man/*" "path-exclude /usr/share/info/*" \
"path-exclude /usr/share/locale/*" "path-include /usr/share/locale/locale.alias" \
>"$1/etc/dpkg/dpkg.cfg.d/docker" && echo force-unsafe-io >"$1/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"'

pids=()
for a in "$@"; do
	hooks=(--customize-hook="$slim_hook")
	if [ -n "${MKDEBIAN_POLICY:-}" ]; then
		# Hooks run outside the chroot with APT_CONFIG pointing into it, so
		# apt-cache answers for the chroot's architecture and lists.
		hooks+=(--customize-hook="for p in $MKDEBIAN_POLICY; do printf '%s %s\n' \"\$p\" \"\$(apt-cache policy \"\$p\" | sed -n 's/^ *Candidate: //p')\"; done >'$out/candidates-$a'")
	fi
	# The merged-usr hook installs usr-is-merged instead of usrmerge, which
	# would pull in perl.
	mmdebstrap --variant=apt --architectures="$a" --mode=root \
		--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr "${hooks[@]}" \
		"$suite" "$work/$a.tar" "$mirror" >"$work/$a.log" 2>&1 &
	pids+=($!)
done
i=0
for a in "$@"; do
	if ! wait "${pids[$i]}"; then
		echo "mkdebian.sh: mmdebstrap for '$a' failed; its log ends:" >&2
		tail -n 25 "$work/$a.log" >&2
		exit 1
	fi
	i=$((i + 1))
done

OCILAYOUT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd) python3 - "$out" "$tag" "$work" "$@" <<'PYEOF'
import os, sys
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.environ["OCILAYOUT_DIR"])
from ocilayout import publish  # noqa: E402
import gzip, hashlib, json, os, sys, tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ARCHES = {
    "amd64": ("amd64", None), "arm64": ("arm64", "v8"),
    "armhf": ("arm", "v7"), "armel": ("arm", "v5"), "i386": ("386", None),
    "ppc64el": ("ppc64le", None), "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
}
# Not needed to run anything; they are most of the size of a minimal system.
DROP = ("usr/share/doc/", "usr/share/man/", "usr/share/locale/", "usr/share/info/",
        "var/cache/apt/", "var/lib/apt/lists/", "dev/")
KEEP_DIRS = ("usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/info",
             "var/cache/apt", "var/cache/apt/archives", "var/cache/apt/archives/partial",
             "var/lib/apt/lists", "var/lib/apt/lists/partial", "dev")
EPOCH = os.environ.get("SOURCE_DATE_EPOCH")
CREATED = "2024-01-01T00:00:00Z"


class Hashing:
    """A write-only file object that hashes and counts what passes through."""
    def __init__(self, f):
        self.f, self.h, self.n = f, hashlib.sha256(), 0

    def write(self, b):
        self.h.update(b)
        self.n += len(b)
        return self.f.write(b)

    def flush(self):
        self.f.flush()


def put(root, data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(root, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)


def put_json(root, obj):
    return put(root, json.dumps(obj, sort_keys=True, separators=(",", ":")).encode())


def norm(name):
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def layer(root, src):
    """The mmdebstrap tarball as one sorted, filtered gzip layer, written
    straight into the blob store. Returns (digest, size, diff_id)."""
    tmp = os.path.join(root, "blobs", "sha256", ".layer.tmp")
    with tarfile.open(src) as tin:
        members = []
        for m in tin.getmembers():
            n = norm(m.name)
            if not n:
                continue
            if (n.startswith(DROP) and n not in KEEP_DIRS and
                    not (n.startswith("usr/share/doc/") and n.endswith("/copyright"))):
                continue
            m.name = n
            if m.islnk():
                m.linkname = norm(m.linkname)
            if EPOCH is not None:
                m.mtime = min(m.mtime, int(EPOCH))
            m.uname = m.gname = ""
            members.append(m)
        members.sort(key=lambda m: m.name)
        # A hardlink must follow its target; sorting can break that.
        seen, ordered, later = set(), [], []
        for m in members:
            (later if m.islnk() and m.linkname not in seen else ordered).append(m)
            seen.add(m.name)
        ordered += later
        with open(tmp, "wb") as raw:
            comp = Hashing(raw)
            with gzip.GzipFile(filename="", mode="wb", fileobj=comp, mtime=0,
                               compresslevel=6) as gz:
                plain = Hashing(gz)
                with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tout:
                    for m in ordered:
                        if m.isreg():
                            tout.addfile(m, tin.extractfile(m))
                        else:
                            tout.addfile(m)
    digest = comp.h.hexdigest()
    os.rename(tmp, os.path.join(root, "blobs", "sha256", digest))
    return "sha256:" + digest, comp.n, "sha256:" + plain.h.hexdigest()


def image(root, work, deb_arch):
    if deb_arch not in ARCHES:
        sys.exit("mkdebian.sh: unknown architecture '%s' (one of %s)"
                 % (deb_arch, ", ".join(sorted(ARCHES))))
    arch, variant = ARCHES[deb_arch]
    ldigest, lsize, diff_id = layer(root, os.path.join(work, deb_arch + ".tar"))
    config = {
        "created": CREATED,
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["bash"],
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": CREATED,
                     "created_by": "mkdebian.sh: mmdebstrap --variant=apt"}],
    }
    if variant:
        config["variant"] = variant
    cdigest, csize = put_json(root, config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cdigest, "size": csize},
        "layers": [{"mediaType": OCI_LAYER, "digest": ldigest, "size": lsize}],
    }
    mdigest, msize = put_json(root, manifest)
    plat = {"architecture": arch, "os": "linux"}
    if variant:
        plat["variant"] = variant
    return {"mediaType": OCI_MANIFEST, "digest": mdigest, "size": msize, "platform": plat}


def main():
    out, tag, work, arches = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
    descs = [image(out, work, a) for a in arches]
    publish(out, tag, descs, lambda obj: put_json(out, obj))


main()
PYEOF
