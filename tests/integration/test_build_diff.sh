#!/usr/bin/env bash
# test_build_diff.sh - differential test of `plait build` against buildah:
# the same contexts (tests/data/build/) built by both must give the same
# root filesystem (path, type, mode, owner, size, content hash, symlink
# target; mtimes left out) and the same image config fields (Env, Cmd,
# Entrypoint, WorkingDir, User, Labels less buildah's own, ExposedPorts).
#
# buildah runs as root with --isolation chroot and vfs storage under $T, so
# nothing global is touched. Contexts using syntax buildah lacks (heredocs in
# buildah 1.28) are skipped with a note, not failed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd buildah skopeo umoci docker-registry curl jq
require_plait
[ "$(id -u)" = 0 ] || skip "buildah --isolation chroot and umoci unpack need root"

DATA=$PLAIT_SRCDIR/tests/data/build

registry_start R plain
bash "$LIB_DIR/mkbase.sh" "$T/base" busybox >/dev/null
skopeo_reg copy -q --all "oci:$T/base:busybox" "docker://$R_HOST/base/busybox:1"
BASE=$R_HOST/base/busybox:1

# buildah, hermetic: own storage, no system registries or policy.
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$T/policy.json"
: >"$T/registries.conf"
export CONTAINERS_REGISTRIES_CONF=$T/registries.conf
mkdir -p "$T/storage-conf"
printf '[storage]\ndriver = "vfs"\n' >"$T/storage-conf/storage.conf"
export CONTAINERS_STORAGE_CONF=$T/storage-conf/storage.conf
# Not the system's containers.conf either. (buildah 1.28 still creates an
# empty /run/containers/networks whatever the settings.)
printf '[network]\nnetwork_config_dir = "%s"\n' "$T/netconf" >"$T/containers.conf"
export CONTAINERS_CONF=$T/containers.conf
# Cache mounts and temporary files go under TMPDIR, not /var/tmp.
export TMPDIR=$T
# buildah push insists that an auth file exists ($DOCKER_CONFIG is lib.sh's).
echo '{"auths":{}}' >"$T/buildah-auth.json"
bah() {
	buildah --root "$T/bstore" --runroot "$T/brun" --storage-driver vfs "$@"
}

# Contexts are copied with normalised modes so a checkout under another
# umask gives the same answers.
ctx_copy() {
	local name=$1 dst=$T/ctx/$1
	rm -rf "$dst"
	mkdir -p "$T/ctx"
	cp -a "$DATA/$name" "$dst"
	find "$dst" -type d -exec chmod 755 {} +
	find "$dst" -type f ! -name '*.sh' -exec chmod 644 {} +
	find "$dst" -type f -name '*.sh' -exec chmod 755 {} +
	echo "$dst"
}

# rootfs_list DIR : one line per entry, sorted:
#   path type mode uid:gid size sha256|- ->target
# Left out: mtimes, directory sizes, the files a RUN sandbox bind-mounts
# (/etc/hostname, /etc/hosts, /etc/resolv.conf) and whatever is under the
# run-time mountpoints /dev /proc /sys (the directories themselves stay).
rootfs_list() {
	"$PY" - "$1" <<-'EOF'
	import hashlib, os, stat, sys
	root = sys.argv[1]
	skip = {"etc/hostname", "etc/hosts", "etc/resolv.conf"}
	under = ("dev/", "proc/", "sys/")
	out = []
	for dirpath, dirs, files in os.walk(root):
	    for n in dirs + files:
	        p = os.path.join(dirpath, n)
	        rel = os.path.relpath(p, root)
	        if rel in skip or rel.startswith(under):
	            continue
	        st = os.lstat(p)
	        m = st.st_mode
	        kind = {stat.S_IFDIR: "dir", stat.S_IFREG: "file", stat.S_IFLNK: "link",
	                stat.S_IFIFO: "fifo", stat.S_IFCHR: "chr", stat.S_IFBLK: "blk",
	                stat.S_IFSOCK: "sock"}.get(stat.S_IFMT(m), "?")
	        size, digest, target = "-", "-", ""
	        if kind == "file":
	            size = str(st.st_size)
	            h = hashlib.sha256()
	            with open(p, "rb") as f:
	                for chunk in iter(lambda: f.read(1 << 16), b""):
	                    h.update(chunk)
	            digest = h.hexdigest()[:16]
	        elif kind == "link":
	            target = " -> " + os.readlink(p)
	        elif kind in ("chr", "blk"):
	            size = "%d,%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
	        out.append("/%s %s %04o %d:%d %s %s%s" % (rel, kind, stat.S_IMODE(m),
	                   st.st_uid, st.st_gid, size, digest, target))
	for line in sorted(out):
	    print(line)
	EOF
}

# config_fields OCI_REF : the compared config fields as sorted JSON.
config_fields() {
	skopeo inspect --config "$1" | jq -S '.config | {
		Env: (.Env // []), Cmd: (.Cmd // null), Entrypoint: (.Entrypoint // null),
		WorkingDir: (.WorkingDir // ""), User: (.User // ""),
		Labels: ((.Labels // {}) | del(.["io.buildah.version"])),
		ExposedPorts: (.ExposedPorts // {}) }'
}

# show_diff LABEL A B : fail with a unified diff (first 80 lines).
show_diff() {
	local label=$1 a=$2 b=$3
	if ! cmp -s "$a" "$b"; then
		diff -u --label buildah --label plait "$a" "$b" >"$T/diff.out" || true
		fail "$label: buildah (-) and plait (+) differ:
$(head -n 80 "$T/diff.out")"
	fi
}

# Does this buildah understand heredocs? (1.28 does not.)
mkdir -p "$T/probe"
printf 'FROM %s\nRUN <<EOF\ntrue\nEOF\n' "$BASE" >"$T/probe/Dockerfile"
BUILDAH_HEREDOC=1
if ! bah build --isolation chroot --tls-verify=false --signature-policy "$T/policy.json" \
	-q -t localhost/probe:1 "$T/probe" >/dev/null 2>&1; then
	BUILDAH_HEREDOC=0
fi

# compare NAME CONTEXT [build args...] : build with both, compare.
compare() {
	local name=$1 ctx
	ctx=$(ctx_copy "$2")
	shift 2
	local w=$T/cmp-$name
	mkdir -p "$w"

	lib_run bah build --isolation chroot --layers --tls-verify=false \
		--signature-policy "$T/policy.json" --build-arg "BASE=$BASE" "$@" \
		-t "localhost/diff-$name:1" "$ctx"
	[ "$RC" = 0 ] || fail "$name: buildah build failed (exit $RC):
$(tail -n 20 "$OUT_FILE")
$ERR"
	lib_run bah push -q --authfile "$T/buildah-auth.json" \
		--signature-policy "$T/policy.json" "localhost/diff-$name:1" \
		"oci:$w/buildah-img:$name"
	[ "$RC" = 0 ] || fail "$name: buildah push to an OCI layout failed: $ERR"
	umoci unpack --image "$w/buildah-img:$name" "$w/buildah" >/dev/null ||
		fail "$name: umoci cannot unpack buildah's image"

	run_ok "$PLAIT" build --progress plain --build-arg "BASE=$BASE" "$@" \
		--cache-dir "$T/plait-cache" -t "localhost/diff-$name:$name" \
		--output "type=oci,dest=$w/plait-img" "$ctx"
	umoci unpack --image "$w/plait-img:$name" "$w/plait" >/dev/null ||
		fail "$name: umoci cannot unpack plait's image (tag '$name' in $w/plait-img)"

	rootfs_list "$w/buildah/rootfs" >"$w/buildah.list"
	rootfs_list "$w/plait/rootfs" >"$w/plait.list"
	[ -s "$w/buildah.list" ] || fail "$name: empty listing of buildah's rootfs"
	show_diff "$name: root filesystem" "$w/buildah.list" "$w/plait.list"
	config_fields "oci:$w/buildah-img:$name" >"$w/buildah.cfg"
	config_fields "oci:$w/plait-img:$name" >"$w/plait.cfg"
	show_diff "$name: image config" "$w/buildah.cfg" "$w/plait.cfg"
	pass "$name: same root filesystem ($(wc -l <"$w/plait.list") entries) and config as buildah"
}

compare basic basic
compare multistage multistage
compare multistage-tester multistage --target tester
compare multistage-builder multistage --target builder
compare args args
compare args-overridden args --build-arg VERSION=2.5 --build-arg FLAVOR=chocolate \
	--build-arg GLOBAL_ONLY=ignored-in-stage
if [ "$BUILDAH_HEREDOC" = 1 ]; then
	compare heredoc heredoc
else
	echo "# buildah $(bah --version | awk '{print $3}') has no heredoc support: heredoc not compared"
fi
