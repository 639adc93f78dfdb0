#!/usr/bin/env bash
# test_rootless.sh - plait build as an ordinary user (issue 14).
#
# Creates users (removed at the end): A and B with /etc/subuid and
# /etc/subgid ranges, N without. Builds the build suite's main contexts
# (tests/data/build: basic, multistage, args, heredoc, cache-mount) and a
# context of its own (ADD of an archive with security.capability, setuid
# bits and foreign owners; RUN making whiteouts, an opaque directory, a fifo,
# hardlinks and files of many owners) for linux/amd64 and, with QEMU, for
# linux/arm64, pushed to a loopback registry, as A and as root with the same
# --source-date-epoch: the pushed indexes must be byte-identical (on a
# difference every layer's entries are listed side by side). Then: the same
# as root of `unshare --map-auto --map-root-user --mount` (a container with a
# range) and of `unshare --user --map-root-user --mount` (one id: refused
# unless --userns=single), N's named error and --userns=single, bake, the
# copying snapshotter (a cache on overlayfs), an owner beyond the range,
# device nodes in a base layer, inspect/copy/plan/index/login/logout as a
# user, the cache's and lock's owners and modes, two users building at once,
# `plait cache` as a user, a masked /proc refused with the named flag and
# --no-process-sandbox, and `plait qemu status` as a user.
# RL_CONTEXTS and RL_HOST_ONLY=1 shorten a debugging run.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd skopeo umoci docker-registry curl jq useradd userdel usermod runuser unshare newuidmap newgidmap tar
require_plait
[ "$(id -u)" = 0 ] || skip "the test creates users (useradd) and compares with a root build"

EPOCH=1700000000
UA=plait-rl-a UB=plait-rl-b UN=plait-rl-n
# Ranges of our own, clear of what useradd hands out from 100000 upwards.
RA=3100000 RB=3200000 COUNT=65536

del_users() {
	local u
	for u in $UA $UB $UN; do
		if id "$u" >/dev/null 2>&1; then
			pkill_user "$u"
			userdel -r "$u" >/dev/null 2>&1 || userdel "$u" >/dev/null 2>&1 || true
		fi
		# userdel removes the user's subordinate ranges; a killed run may not have.
		sed -i "/^$u:/d" /etc/subuid /etc/subgid 2>/dev/null || true
	done
}
# Only processes of the test's own users (they run nothing else).
pkill_user() {
	local p
	for p in $(ps -o pid= -u "$1" 2>/dev/null || true); do kill -9 "$p" 2>/dev/null || true; done
}
trap 'rc=$?; del_users; (exit $rc); lib_cleanup' EXIT
del_users
for r in $RA $RB; do
	if awk -F: -v lo=$r -v n=$COUNT '$2 < lo + n && $2 + $3 > lo { bad = 1 } END { exit !bad }' /etc/subuid /etc/subgid; then
		fail "the test's range $r-$((r + COUNT - 1)) overlaps one in /etc/subuid or /etc/subgid: $(cat /etc/subuid)"
	fi
done
for u in $UA $UB $UN; do
	useradd -m -s /bin/sh -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$u"
done
usermod --add-subuids $RA-$((RA + COUNT - 1)) --add-subgids $RA-$((RA + COUNT - 1)) $UA
usermod --add-subuids $RB-$((RB + COUNT - 1)) --add-subgids $RB-$((RB + COUNT - 1)) $UB
grep -q "^$UN:" /etc/subuid && fail "$UN got a subordinate range from useradd"
UIDA=$(id -u $UA) UIDB=$(id -u $UB)
pass "users $UA ($RA+), $UB ($RB+) and $UN (no range) created"

# Everything the users read lives below $T (mktemp made it 0700).
chmod 755 "$T"

# as USER CMD... : run CMD as USER with its own HOME, docker config and no
# inherited cache or temp settings (the default cache is ~/.cache/plait).
as() {
	local u=$1
	shift
	runuser -u "$u" -- env -u XDG_CACHE_HOME -u TMPDIR HOME=/home/$u DOCKER_CONFIG=/home/$u/.docker \
		PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin "$@"
}

registry_start R plain
HOSTARCH=$(dpkg --print-architecture)
PLATFORMS=linux/$HOSTARCH
arm_deb=
if [ "$HOSTARCH" = amd64 ] && [ -z "${RL_HOST_ONLY:-}" ]; then
	deb_dir=$T/deb
	mkdir -p "$deb_dir"
	if dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64; then
		(cd "$deb_dir" && timeout 300 apt-get download -qq busybox-static:arm64 >"$T/apt.log" 2>&1) ||
			{ timeout 300 apt-get update -qq >>"$T/apt.log" 2>&1
			(cd "$deb_dir" && timeout 300 apt-get download -qq busybox-static:arm64 >>"$T/apt.log" 2>&1); } || true
		arm_deb=$(ls "$deb_dir"/busybox-static_*_arm64.deb 2>/dev/null | head -n1 || true)
	fi
	if [ -n "$arm_deb" ] && command -v qemu-aarch64-static >/dev/null && "$PLAIT" qemu install arm64 >/dev/null 2>"$T/qemu.err"; then
		PLATFORMS=linux/amd64,linux/arm64
	else
		echo "SKIP (part): no arm64 busybox or QEMU handler; building linux/amd64 only ($(tail -n 2 "$T/apt.log" "$T/qemu.err" 2>/dev/null | tr '\n' ' '))"
		arm_deb=
	fi
fi
if [ -n "$arm_deb" ]; then
	bash "$LIB_DIR/mkbase.sh" "$T/base" busybox amd64 "arm64=$arm_deb" >/dev/null
else
	bash "$LIB_DIR/mkbase.sh" "$T/base" busybox >/dev/null
fi
skopeo_reg copy -q --all "oci:$T/base:busybox" "docker://$R_HOST/base/busybox:1"
BASE=$R_HOST/base/busybox:1
pass "base image for $PLATFORMS pushed to $BASE"

# ---------------------------------------------------------------- contexts

mkdir -p "$T/ctx"
for c in basic multistage args heredoc cache-mount; do
	cp -a "$PLAIT_SRCDIR/tests/data/build/$c" "$T/ctx/$c"
done
# Our own: what a root build writes that a user namespace must reproduce.
mkdir -p "$T/ctx/owners"
"$PY" - "$T/ctx/owners/caps.tar" <<'PY'
import io, struct, sys, tarfile
cap = struct.pack('<IIIII', 0x02000001, 1 << 10, 0, 0, 0)  # v2, effective, cap_net_bind_service
with tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT) as t:
    def add(name, data=b'', mode=0o644, uid=0, gid=0, typ=tarfile.REGTYPE, pax=None, link=''):
        i = tarfile.TarInfo(name)
        i.type, i.mode, i.uid, i.gid, i.mtime, i.linkname = typ, mode, uid, gid, 1600000000, link
        i.size = len(data) if typ == tarfile.REGTYPE else 0
        if pax:
            i.pax_headers = pax
        t.addfile(i, io.BytesIO(data) if typ == tarfile.REGTYPE else None)
    add('opt', typ=tarfile.DIRTYPE, mode=0o755)
    add('opt/ping', b'\x7fELF fake', 0o755,
        pax={'SCHILY.xattr.security.capability': cap.decode('utf-8', 'surrogateescape'),
             'SCHILY.xattr.user.note': 'kept'})
    add('opt/suid', b'#!/bin/sh\n', 0o4755)
    add('opt/sgid-dir', typ=tarfile.DIRTYPE, mode=0o2775, uid=0, gid=50)
    add('opt/foreign', b'owned by 1234:5678\n', 0o640, uid=1234, gid=5678)
    add('opt/nobody', b'nobody\n', 0o600, uid=65534, gid=65534)
    add('opt/link-to-foreign', typ=tarfile.LNKTYPE, link='opt/foreign', uid=1234, gid=5678)
    add('opt/sym', typ=tarfile.SYMTYPE, link='foreign', uid=1234, gid=5678)
PY
cat >"$T/ctx/owners/Dockerfile" <<'DF'
ARG BASE
FROM ${BASE}
ADD caps.tar /
RUN chown 4242:4343 /etc/group && chmod 4711 /bin/busybox && rm /etc/passwd && \
    rm -rf /home && mkdir -p /home/new && echo fresh > /home/new/file && \
    mkdir -p /run/x && chown 65534:65534 /run/x && \
    for i in 1 500 1000 65000 65535; do echo $i > /tmp/f$i && chown $i:$i /tmp/f$i; done && \
    ln /tmp/f1 /tmp/f1-hard && chmod 2755 /tmp && touch /tmp/f1
DF
chmod -R a+rX "$T/ctx"
# RL_CONTEXTS narrows the list when debugging (later checks need basic, multistage, args, owners).
CONTEXTS=${RL_CONTEXTS:-basic multistage args heredoc cache-mount owners}

# build WHO NAME CTX TAG [options...] : plait build of CTX as WHO ("root" or
# a user) for $PLATFORMS, pushed as $R_HOST/rl/NAME:TAG. Must succeed.
build() {
	local who=$1 name=$2 ctx=$3 tag=$4
	shift 4
	local cmd=("$PLAIT" build --progress plain --platform "$PLATFORMS" --build-arg "BASE=$BASE"
		--source-date-epoch $EPOCH -t "$R_HOST/rl/$name:$tag" --push "$@" "$ctx")
	if [ "$who" = root ]; then
		run_ok "${cmd[@]}"
	else
		run_ok as "$who" "${cmd[@]}"
	fi
}

# entries LAYOUT-DIR DIGEST : the tar listing (numeric owners, modes, times,
# links, sizes) of the layer blob DIGEST in a layout.
entries() {
	[ -f "$1/blobs/sha256/${2#sha256:}" ] || return 0
	tar --numeric-owner --xattrs --xattrs-include='*' -tvzf "$1/blobs/sha256/${2#sha256:}" 2>&1 ||
		{ zstd -dc "$1/blobs/sha256/${2#sha256:}" | tar --numeric-owner -tv 2>&1; } || true
}

# manifests LAYOUT : "ARCH DIGEST" per image of the layout's first entry
# (an index, or a single image manifest).
manifests() {
	local top b
	top=$(jq -r '.manifests[0].digest' "$1/index.json")
	b=$1/blobs/sha256/${top#sha256:}
	if jq -e '.manifests' "$b" >/dev/null 2>&1; then
		jq -r '.manifests[] | "\(.platform.architecture) \(.digest)"' "$b"
	else
		echo "$HOSTARCH $top"
	fi
}

# same_image NAME TAG1 TAG2 : the two pushed images are byte-identical; if
# not, each platform's config and layers are compared, and the test fails
# listing the entries (tar tv, numeric owners, xattrs) that differ.
same_image() {
	local name=$1 a=$2 b=$3 da db
	da=$(raw_digest "docker://$R_HOST/rl/$name:$a")
	db=$(raw_digest "docker://$R_HOST/rl/$name:$b")
	[ "$da" = "$db" ] && return 0
	rm -rf "$T/cmp"
	mkdir -p "$T/cmp"
	skopeo_reg copy -q --all "docker://$R_HOST/rl/$name:$a" "oci:$T/cmp/a:x"
	skopeo_reg copy -q --all "docker://$R_HOST/rl/$name:$b" "oci:$T/cmp/b:x"
	local report="" arch ma mb la lb i ca cb
	while read -r arch ma; do
		mb=$(manifests "$T/cmp/b" | awk -v a="$arch" '$1 == a { print $2 }')
		report+="$arch: manifest $ma ($a) vs ${mb:-none} ($b)
"
		[ -n "$mb" ] || continue
		ca=$(jq -r .config.digest "$T/cmp/a/blobs/sha256/${ma#sha256:}")
		cb=$(jq -r .config.digest "$T/cmp/b/blobs/sha256/${mb#sha256:}")
		[ "$ca" = "$cb" ] || report+="  configs differ:
$({ diff <(jq -S . "$T/cmp/a/blobs/sha256/${ca#sha256:}") <(jq -S . "$T/cmp/b/blobs/sha256/${cb#sha256:}") || true; } | head -n 20)
"
		la=($(jq -r '.layers[].digest' "$T/cmp/a/blobs/sha256/${ma#sha256:}"))
		lb=($(jq -r '.layers[].digest' "$T/cmp/b/blobs/sha256/${mb#sha256:}"))
		for ((i = 0; i < ${#la[@]} || i < ${#lb[@]}; i++)); do
			[ "${la[i]:-}" = "${lb[i]:-}" ] && continue
			report+="  layer $i: ${la[i]:-none} ($a) vs ${lb[i]:-none} ($b); entries (< $a, > $b):
$({ diff <(entries "$T/cmp/a" "${la[i]:-x}") <(entries "$T/cmp/b" "${lb[i]:-x}") || true; } | head -n 40)
"
		done
	done < <(manifests "$T/cmp/a")
	fail "$name: the images tagged $a and $b differ (manifest or index $da vs $db)
$report"
}

# ---------------------------------------------------------------- user vs root

for c in $CONTEXTS; do
	build $UA "$c" "$T/ctx/$c" user
	build root "$c" "$T/ctx/$c" root --cache-dir "$T/root-cache"
	same_image "$c" user root
done
pass "as $UA and as root, $CONTEXTS give byte-identical images for $PLATFORMS"

# The ADD of caps.tar really carried the capability, the setuid bit and the
# foreign owners through the user namespace (not just equally lost).
rm -rf "$T/ob"
skopeo_reg copy -q "docker://$R_HOST/rl/owners:user" "oci:$T/ob-layout:x" --override-arch "$HOSTARCH" --override-os linux
run_ok umoci unpack --image "$T/ob-layout:x" "$T/ob"
O=$T/ob/rootfs
assert_eq "1234:5678" "$(stat -c %u:%g "$O/opt/foreign")" "owner of /opt/foreign"
assert_eq "65534:65534" "$(stat -c %u:%g "$O/opt/nobody")" "owner of /opt/nobody"
assert_eq "4755" "$(stat -c %a "$O/opt/suid")" "mode of /opt/suid"
assert_eq "4242:4343" "$(stat -c %u:%g "$O/etc/group")" "owner RUN gave /etc/group"
assert_eq "65535:65535" "$(stat -c %u:%g "$O/tmp/f65535")" "owner RUN gave /tmp/f65535"
cap=$(getfattr --absolute-names -n security.capability -e hex "$O/opt/ping" 2>/dev/null | sed -n 's/^security.capability=//p' || true)
if command -v getfattr >/dev/null; then
	assert_eq "0x0100000200040000000000000000000000000000" "$cap" "security.capability of /opt/ping (v2, cap_net_bind_service)"
fi
pass "the rootless image keeps security.capability, setuid bits and every owner (1234, 4242, 65534, 65535)"

# plait bake as the user: the same namespace, the same image.
mkdir -p "$T/bake"
jq -n --arg ctx "$T/ctx/multistage" --arg base "$BASE" --arg tag "$R_HOST/rl/multistage:bake" --arg p "$PLATFORMS" \
	'{target: {default: {context: $ctx, args: {BASE: $base}, tags: [$tag], platforms: ($p | split(","))}}}' \
	>"$T/bake/docker-bake.json"
chmod -R a+rX "$T/bake"
run_ok as $UA "$PLAIT" bake -f "$T/bake/docker-bake.json" --progress plain --source-date-epoch $EPOCH --push
same_image multistage bake root
pass "plait bake as $UA gives the root build's image"

# The copying snapshotter (what a kernel without overlayfs in user namespaces
# gets): a cache on overlayfs cannot hold overlay uppers, so plait copies.
mkdir -p "$T/ovl/l" "$T/ovl/u" "$T/ovl/w" "$T/ovl/m"
mount -t overlay overlay -o "lowerdir=$T/ovl/l,upperdir=$T/ovl/u,workdir=$T/ovl/w" "$T/ovl/m"
trap 'rc=$?; umount -l "$T/ovl/m" 2>/dev/null || true; del_users; (exit $rc); lib_cleanup' EXIT
mkdir "$T/ovl/m/a"
chown $UA "$T/ovl/m/a"
chmod 755 "$T/ovl" "$T/ovl/m"
build $UA basic "$T/ctx/basic" copying --cache-dir "$T/ovl/m/a/cache"
same_image basic copying root
umount "$T/ovl/m"
pass "rootless with the copying snapshotter (cache on overlayfs) gives the root build's image"

# An owner beyond the range (uid 70000; 0 and 65536 subordinate ids mapped) cannot be written:
# the error names the entry, the id and the fix.
mkdir -p "$T/ctx/farid"
"$PY" - "$T/ctx/farid/far.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], 'w') as t:
    i = tarfile.TarInfo('far-owner')
    i.size, i.uid, i.gid, i.mtime = 2, 70000, 70000, 1600000000
    t.addfile(i, io.BytesIO(b'x\n'))
PY
printf 'ARG BASE\nFROM ${BASE}\nADD far.tar /\n' >"$T/ctx/farid/Dockerfile"
chmod -R a+rX "$T/ctx/farid"
run_expect_fail as $UA "$PLAIT" build --progress plain --build-arg "BASE=$BASE" -t "$R_HOST/rl/farid:user" "$T/ctx/farid"
assert_contains "$ERR" "chown 'far-owner' to 70000:70000: the id is not mapped in plait's user namespace (65537 uids, 65537 gids): give the user a larger range in /etc/subuid and /etc/subgid"
pass "an owner beyond the user's range is refused, naming the entry, the id and the fix"

# ---------------------------------------------------------------- device nodes

# A base whose layer carries device nodes: a user namespace cannot make them.
# They are left out with a warning; the layers the build writes are a root
# build's.
bash "$LIB_DIR/mkbase.sh" "$T/devbase" busybox >/dev/null # one platform: umoci unpacks no index
run_ok umoci unpack --image "$T/devbase:busybox" "$T/devbundle"
mknod -m 0666 "$T/devbundle/rootfs/dev/null2" c 1 3
mknod -m 0660 "$T/devbundle/rootfs/disk" b 7 0
run_ok umoci repack --image "$T/devbase:devnode" "$T/devbundle"
skopeo_reg copy -q "oci:$T/devbase:devnode" "docker://$R_HOST/base/devnode:1"
mkdir -p "$T/ctx/devnode"
printf 'ARG BASE\nFROM ${BASE}\nRUN echo built > /built && ls /dev >/dev/null\n' >"$T/ctx/devnode/Dockerfile"
chmod -R a+rX "$T/ctx/devnode"
run_ok as $UA "$PLAIT" build --progress plain --build-arg "BASE=$R_HOST/base/devnode:1" --source-date-epoch $EPOCH \
	-t "$R_HOST/rl/devnode:user" --push "$T/ctx/devnode"
assert_contains "$OUT$ERR" "2 device nodes left out: a rootless build (user namespace) cannot create devices"
run_ok "$PLAIT" build --progress plain --build-arg "BASE=$R_HOST/base/devnode:1" --source-date-epoch $EPOCH \
	-t "$R_HOST/rl/devnode:root" --push --cache-dir "$T/root-cache" "$T/ctx/devnode"
assert_not_contains "$OUT$ERR" "device node" "root build of the device-node base"
same_image devnode user root
pass "device nodes of a base layer are left out with a warning; the image is still a root build's"

# ---------------------------------------------------------------- the other commands as a user

run_ok as $UA "$PLAIT" inspect "$R_HOST/rl/basic:user"
assert_contains "$OUT" "linux/$HOSTARCH" "plait inspect as $UA"
run_ok as $UA "$PLAIT" copy --all "$R_HOST/rl/basic:user" "oci:/home/$UA/copied:1"
assert_eq "$(raw_digest "docker://$R_HOST/rl/basic:user")" "$(raw_digest "oci:/home/$UA/copied:1")" "digest of the index $UA copied"
assert_eq "$UIDA" "$(stat -c %u "/home/$UA/copied/index.json")" "owner of the layout $UA copied to"
run_ok as $UA "$PLAIT" plan --platform "$PLATFORMS" --build-arg "BASE=$BASE" -t "$R_HOST/rl/basic:plan" "$T/ctx/basic"
run_ok as $UA "$PLAIT" index create -q -t "$R_HOST/rl/basic:indexed" "$R_HOST/rl/basic:user"
assert_eq "$(tr , '\n' <<<"$PLATFORMS" | wc -l)" "$(skopeo_reg inspect --raw "docker://$R_HOST/rl/basic:indexed" | jq '.manifests | length')" \
	"entries of the index $UA made"
registry_start S tls-basic
chmod -R a+rX "$CERTS_DIR"
printf '%s\n' "$S_PASS" >"$T/pass"
chmod 644 "$T/pass"
run_ok as $UA sh -c "'$PLAIT' login --cert-dir '$CERTS_DIR' -u '$S_USER' --password-stdin '$S_HOST' <'$T/pass'"
assert_eq "$UIDA 600" "$(stat -c '%u %a' /home/$UA/.docker/config.json)" "owner and mode of $UA's docker config"
run_ok as $UA "$PLAIT" copy --cert-dir "$CERTS_DIR" "$R_HOST/rl/multistage:user" "$S_HOST/rl/multistage:user"
run_ok as $UA "$PLAIT" logout "$S_HOST"
pass "inspect, copy, plan, index create, login and logout work as $UA with $UA's docker config"

# ---------------------------------------------------------------- cache and lock ownership

CA=/home/$UA/.cache/plait
[ -d "$CA" ] || fail "$UA's build did not use ~/.cache/plait ($CA missing): $(ls -la /home/$UA/.cache 2>&1)"
assert_eq "$UIDA 700" "$(stat -c '%u %a' "$CA")" "owner and mode of $UA's cache"
for d in layers steps mounts work; do
	assert_eq "$UIDA 700" "$(stat -c '%u %a' "$CA/$d")" "owner and mode of $CA/$d"
done
assert_eq "$UIDA" "$(stat -c %u "$CA/lock")" "owner of $CA/lock"
# A cache mount's own directory carries the uid= its RUN --mount gave (the
# cache-mount case asks for uid=10: $UA's subordinate uid RA + 9 here), as
# it does in BuildKit; everything else is $UA's.
bad=$(find "$CA" -maxdepth 2 ! -uid "$UIDA" ! \( -path "$CA/mounts/*" -uid $((RA + 9)) \) -printf '%u %p\n' | head -n 5)
[ -z "$bad" ] || fail "entries of $UA's cache not owned by $UA: $bad"
assert_eq "$((RA + 9))" "$(find "$CA/mounts" -mindepth 1 -maxdepth 1 ! -uid "$UIDA" -printf '%u\n' | sort -u)" \
	"owner of the uid=10 cache mount's directory (10 in $UA's user namespace)"
# Below layers/ files keep their image owners, mapped into A's range: never
# root's, never outside A's ids.
bad=$(find "$CA" \( ! -uid "$UIDA" \( -uid -$RA -o -uid +$((RA + COUNT - 1)) \) \) -printf '%U %p\n' | head -n 5)
[ -z "$bad" ] || fail "files in $UA's cache owned by ids outside $UIDA and $RA..$((RA + COUNT - 1)): $bad"
[ -n "$(find "$CA/layers" -uid $((RA + 1233)) -print -quit)" ] ||
	fail "no file in $UA's layers owned by $((RA + 1233)) (image uid 1234 mapped into the range)"
[ ! -e /root/.cache/plait ] || [ "$(stat -c %U /root/.cache/plait)" = root ] || fail "root's cache changed owner"
pass "$UA's cache and lock are $UA's, 0700; image owners are stored mapped into $UA's range"

# ---------------------------------------------------------------- plait cache as a user

run_ok as $UA "$PLAIT" cache du --format json
[ "$(jq -r '.usage.total.bytes // 0' <<<"$OUT")" -gt 0 ] || fail "cache du as $UA shows an empty cache: $OUT"

# ---------------------------------------------------------------- two users at once

# B builds what A builds, at the same time, each with their own cache.
rm -rf "$T/two"
mkdir -p "$T/two"
chmod 777 "$T/two"
pids=()
for u in $UA $UB; do
	(as $u "$PLAIT" build --progress plain --platform "$PLATFORMS" --build-arg "BASE=$BASE" --no-cache \
		--source-date-epoch $EPOCH -t "$R_HOST/rl/basic:two-$u" --push "$T/ctx/basic" \
		>"$T/two/$u.log" 2>&1; echo $? >"$T/two/$u.rc") &
	pids+=($!)
done
wait "${pids[@]}" # not the registry
for u in $UA $UB; do
	assert_eq 0 "$(cat "$T/two/$u.rc")" "exit status of $u's build run at the same time as the other's ($(tail -n 5 "$T/two/$u.log"))"
done
same_image basic two-$UA two-$UB
same_image basic two-$UA root
CB=/home/$UB/.cache/plait
assert_eq "$UIDB 700" "$(stat -c '%u %a' "$CB")" "owner and mode of $UB's cache"
bad=$(find "$CB" \( ! -uid "$UIDB" \( -uid -$RB -o -uid +$((RB + COUNT - 1)) \) \) -printf '%U %p\n' | head -n 5)
[ -z "$bad" ] || fail "files in $UB's cache owned by ids outside $UB's: $bad"
# B cannot use (or spoil) A's cache.
run_expect_fail as $UB "$PLAIT" build --progress plain --cache-dir "$CA" --build-arg "BASE=$BASE" \
	-t "$R_HOST/rl/basic:stolen" "$T/ctx/basic"
assert_match "$ERR" "$CA" "error of $UB using $UA's cache"
bad=$(find "$CA" -uid "$UIDB" -printf '%p\n' | head -n 3)
[ -z "$bad" ] || fail "$UB left files in $UA's cache: $bad"
build $UA basic "$T/ctx/basic" again
[ "$(grep -c CACHED <<<"$OUT$ERR")" -gt 0 ] || fail "$UA's rebuild after $UB's attempt used no cached step: $OUT$ERR"
pass "two users build at once with separate caches; one cannot use the other's cache"

run_ok as $UA "$PLAIT" cache prune --all
left=$(find "$CA/layers" "$CA/steps" -mindepth 1 2>/dev/null | head -n 3)
[ -z "$left" ] || fail "cache prune --all as $UA left: $left"
pass "plait cache du and prune work as a user (prune removes files owned by the user's subordinate ids)"

# ---------------------------------------------------------------- no range

run_expect_fail as $UN "$PLAIT" build --progress plain --build-arg "BASE=$BASE" -t "$R_HOST/rl/x:n" "$T/ctx/multistage"
expect_rc 2
assert_contains "$ERR" "/etc/subuid: user '$UN' (uid $(id -u $UN)) has no subordinate uids"
assert_contains "$ERR" "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $UN"
assert_contains "$ERR" "--userns=single"
[ ! -e "/home/$UN/.cache/plait" ] || fail "the refused build of $UN made a cache"
build $UN multistage "$T/ctx/multistage" single --userns=single
same_image multistage single root
pass "a user without a range gets the error naming /etc/subuid and usermod; --userns=single builds"

# ---------------------------------------------------------------- nested user namespaces

# A container with a range (root of a user namespace mapping 65536 ids).
run_ok as $UA unshare --map-auto --map-root-user --mount -- "$PLAIT" build --progress plain --platform "$PLATFORMS" \
	--build-arg "BASE=$BASE" --source-date-epoch $EPOCH -t "$R_HOST/rl/owners:nested" --push \
	--cache-dir /home/$UA/nested-cache "$T/ctx/owners"
same_image owners nested root
# One id only (unshare --map-root-user): refused, unless --userns=single.
run_expect_fail as $UA unshare --user --map-root-user --mount -- "$PLAIT" build --progress plain \
	--build-arg "BASE=$BASE" -t "$R_HOST/rl/x:n1" --cache-dir /home/$UA/n1-cache "$T/ctx/multistage"
expect_rc 2
assert_contains "$ERR" "maps only 1 uids and 1 gids (/proc/self/uid_map, /proc/self/gid_map)"
assert_contains "$ERR" "--userns=single"
run_ok as $UA unshare --user --map-root-user --mount -- "$PLAIT" build --progress plain --platform "$PLATFORMS" \
	--build-arg "BASE=$BASE" --source-date-epoch $EPOCH -t "$R_HOST/rl/multistage:n1" --push --userns=single \
	--cache-dir /home/$UA/n1-cache "$T/ctx/multistage"
same_image multistage n1 root
pass "nested: root of a ranged user namespace builds identically; of a one-id one, only with --userns=single"

# ---------------------------------------------------------------- /proc refused

# As in a container whose /proc has masked paths: a mount over /proc/sys,
# locked in plait's namespace, makes the kernel refuse a new proc mount.
masked() {
	unshare --mount --propagation private -- sh -c 'mount -t tmpfs -o ro none /proc/sys && exec "$@"' sh "$@"
}
run_expect_fail masked runuser -u $UA -- env HOME=/home/$UA "$PLAIT" build --progress plain \
	--build-arg "BASE=$BASE" -t "$R_HOST/rl/x:masked" "$T/ctx/args"
assert_contains "$OUT$ERR" "--no-process-sandbox" "error of a build whose proc mount is refused"
run_ok masked runuser -u $UA -- env HOME=/home/$UA "$PLAIT" build --progress plain --no-process-sandbox \
	--build-arg "BASE=$BASE" --source-date-epoch $EPOCH -t "$R_HOST/rl/args:masked" --push "$T/ctx/args"
run_ok "$PLAIT" build --progress plain --build-arg "BASE=$BASE" --source-date-epoch $EPOCH \
	-t "$R_HOST/rl/args:root1" --push --cache-dir "$T/root-cache" "$T/ctx/args"
same_image args masked root1
pass "a refused proc mount names --no-process-sandbox; with it the build succeeds, identical"

# ---------------------------------------------------------------- qemu status

run_ok as $UA "$PLAIT" qemu status
if [ -n "$arm_deb" ]; then
	assert_match "$OUT" $'(^|\n)arm64 +no +enabled +yes +yes ' "arm64 row of qemu status as $UA"
fi
assert_contains "$OUT" "for user $UA" "qemu status as a user"
pass "plait qemu status works as a user"
