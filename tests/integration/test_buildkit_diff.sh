#!/usr/bin/env bash
# test_buildkit_diff.sh - differential test of `plait build` against BuildKit
# itself (the reference for Dockerfile semantics): a private dockerd (Debian's
# docker.io 20.10, its embedded BuildKit and dockerfile frontend) and plait
# build the same contexts (tests/data/build/) FROM the same busybox base in a
# loopback registry; both results are pushed there, copied back into OCI
# layouts and unpacked, then compared entry by entry (path, type, mode,
# owner, size, content hash, link target; mtimes left out) and config field
# by field (Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, Volumes,
# Labels, StopSignal, Shell, Healthcheck, OnBuild).
#
# Contexts the 20.10 frontend cannot parse are skipped with a note (see
# SKIPPED below); BuildKit cannot fetch a newer frontend here (no network).
# A difference fails the test unless KNOWN below lists it with its issue.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd skopeo umoci docker-registry curl jq
require_plait
[ "$(id -u)" = 0 ] || skip "dockerd and umoci unpack with owners need root"

DATA=$PLAIT_SRCDIR/tests/data/build

# Contexts not built by BuildKit 20.10, and why.
declare -A SKIPPED=(
	[heredoc]="heredocs need dockerfile frontend 1.4 (its '# syntax=' would fetch it from Docker Hub)"
	[add]="COPY --exclude, --parents and ADD --checksum need frontend 1.6+/labs"
	[failing]="a build that must fail (test_build.sh checks plait's error)"
	[bad]="Dockerfiles that must be refused (test_bad_input.sh)"
	[outside]="not a context (a symlink target outside one)"
)
# Known differences, each issue-tracked: "CASE|LINE-PREFIX" (a line of the
# diff, without its -/+) -> reason. Keep this short.
# BuildKit since v0.11 (moby/buildkit#3651) puts the user's primary group in
# its supplementary groups, as plait does; 20.10's BuildKit (v0.8) does not,
# so `id` there prints no "groups=" (basic's RUN as USER app).
# BuildKit since v0.10 removes the empty mount targets (and the parents) a
# RUN --mount had to create (executor.MountStubsCleaner), as plait does;
# 20.10's leaves them in the layer.
# 20.10's BuildKit mounts the context read-write in a RUN whose bind mount
# has no rw when an earlier RUN mounted the same source rw (writes even stay
# for later RUNs); the Dockerfile reference's default is read-only, plait's.
STUBS="20.10's BuildKit leaves RUN --mount targets it created; BuildKit >= v0.10 removes them (MountStubsCleaner), as plait does"
declare -A KNOWN=(
	["mounts|/mnt dir "]=$STUBS
	["mounts|/mnt/"]=$STUBS
	["cache-mount|/cache dir "]=$STUBS
	["cache-mount|/home/ten"]=$STUBS
	["secret|/run/secrets dir "]=$STUBS
	["mount-relative|/w/"]=$STUBS
	["mounts|/ro.txt file 0644 0:0 9 "]="20.10's BuildKit leaks an earlier RUN's rw into a later read-only bind of the same source (writable); the reference's default is read-only (readonly)"
	["copy-sources|COPY nomatch-* /none-alone/ # buildkit"]="a COPY that copies nothing: 20.10's BuildKit gives it a layer of no files, plait (deliberately: no layer without files, as for a RUN that changes nothing) an empty history entry and no layer (the same files)"
	["run-nochange|RUN /bin/sh -c true # buildkit"]="20.10's BuildKit gives a RUN that changes nothing a layer holding the etc/ it copied up for resolv.conf's mount point; its newer differ and plait leave both out"
	["basic|/tmp/id.txt file 0644 1000:1000 "]="id's groups=: 20.10's BuildKit predates moby/buildkit#3651 (primary gid in the supplementary groups); newer BuildKit and plait agree"
)


trap dockerd_cleanup EXIT
registry_start R plain
bash "$LIB_DIR/mkbase.sh" "$T/base" busybox >/dev/null
skopeo_reg copy -q --all "oci:$T/base:busybox" "docker://$R_HOST/base/busybox:1"
BASE=$R_HOST/base/busybox:1
dockerd_start
echo "# $(dk version --format 'dockerd {{.Server.Version}}'), storage $(dk info --format '{{.Driver}}')"

# The comparison helpers are test_build_diff.sh's (same listing and format).
ctx_copy() {
	local name=$1 src=$DATA/$1 dst=$T/ctx/$1
	# a context the test made (hard links cannot live in git): its path
	[[ $name != /* ]] || { src=$name dst=$T/ctx/$(basename "$name"); }
	rm -rf "$dst"
	mkdir -p "$T/ctx"
	cp -a "$src" "$dst"
	find "$dst" -type d -exec chmod 755 {} +
	find "$dst" -type f ! -name '*.sh' -exec chmod 644 {} +
	find "$dst" -type f -name '*.sh' -exec chmod 755 {} +
	echo "$dst"
}
eval "$(sed -n '/^rootfs_list() {/,/^}/p' "$LIB_DIR/test_build_diff.sh")"
[ "$(type -t rootfs_list)" = function ] || fail "rootfs_list not found in test_build_diff.sh"

config_fields() {
	skopeo_reg inspect --config "$1" | jq -S '.config | {
		Env: (.Env // []), Cmd: (.Cmd // null), Entrypoint: (.Entrypoint // null),
		WorkingDir: (.WorkingDir // ""), User: (.User // ""),
		ExposedPorts: (.ExposedPorts // {}), Volumes: (.Volumes // {}),
		Labels: (.Labels // {}), StopSignal: (.StopSignal // ""),
		Shell: (.Shell // null), Healthcheck: (.Healthcheck // null),
		OnBuild: (.OnBuild // []) }'
}

# history_of REF : the image's history, one line per entry ("created_by
# [empty]"), after the base image's own: every instruction's, the config-only
# ones in BuildKit's forms (expanded values, Go's formatting: "EXPOSE
# map[80/tcp:{}]", "CMD [\"a\" \"b\"]", "HEALTHCHECK &{…}"; no ONBUILD entry).
# tests/data/build/metadata has every such instruction.
history_of() {
	local n
	n=$(skopeo_reg inspect --config "docker://$BASE" | jq '.history | length')
	skopeo_reg inspect --config "$1" |
		jq -r --argjson n "$n" '.history[$n:][] | (.created_by // "") + (if .empty_layer then " [empty]" else "" end)'
}

# show_diff CASE LABEL A B : fail with a unified diff unless every changed
# line is in KNOWN.
show_diff() {
	local case=$1 label=$2 a=$3 b=$4 line unknown=0
	cmp -s "$a" "$b" && return 0
	diff -u --label buildkit --label plait "$a" "$b" >"$T/diff.out" || true
	while IFS= read -r line; do
		case "$line" in
		---* | +++* | @@*) continue ;;
		[-+]*) ;;
		*) continue ;;
		esac
		local k hit=
		for k in "${!KNOWN[@]}"; do
			[ "${k%%|*}" = "$case" ] || continue
			[[ "${line:1}" == "${k#*|}"* ]] && hit=$k && break
		done
		if [ -n "$hit" ]; then
			echo "# known ($case): ${line} - ${KNOWN[$hit]}"
		else
			unknown=1
		fi
	done <"$T/diff.out"
	[ "$unknown" = 0 ] || fail "$case: $label: BuildKit (-) and plait (+) differ:
$(head -n 80 "$T/diff.out")"
}

# compare CASE CONTEXT [build args...] : build with both, compare.
# CASES (space-separated) limits the run to those cases, for debugging.
declare -A COMPARED=()
compare() {
	local name=$1 ctx
	COMPARED[$2]=1
	if [ -n "${CASES:-}" ] && [[ " $CASES " != *" $name "* ]]; then
		return 0
	fi
	ctx=$(ctx_copy "$2")
	shift 2
	local w=$T/cmp-$name ref_b=$R_HOST/bk/$name:1 ref_p=$R_HOST/plait/$name:1
	mkdir -p "$w"
	local extra=("$@") args=()
	# A PARENT build arg names the parent each tool built itself.
	local i
	for i in "${!extra[@]}"; do
		[ "${extra[$i]}" != PARENT ] || extra[$i]=PARENT=$R_HOST/TOOL/${name%-child}-parent:1
	done
	args=("${extra[@]}")

	lib_run dk build --progress plain --network host --build-arg "BASE=$BASE" \
		"${args[@]//TOOL/bk}" -t "$ref_b" "$ctx"
	[ "$RC" = 0 ] || fail "$name: BuildKit build failed (exit $RC):
$(tail -n 25 "$T/.run.err")"
	lib_run dk push "$ref_b"
	[ "$RC" = 0 ] || fail "$name: docker push $ref_b failed: $ERR"
	run_ok "$PLAIT" build --progress plain --build-arg "BASE=$BASE" "${args[@]//TOOL/plait}" \
		--cache-dir "$T/plait-cache" -t "$ref_p" --push "$ctx"

	skopeo_reg copy -q "docker://$ref_b" "oci:$w/bk-img:$name"
	skopeo_reg copy -q "docker://$ref_p" "oci:$w/plait-img:$name"
	umoci unpack --image "$w/bk-img:$name" "$w/bk" >/dev/null ||
		fail "$name: umoci cannot unpack BuildKit's image"
	umoci unpack --image "$w/plait-img:$name" "$w/plait" >/dev/null ||
		fail "$name: umoci cannot unpack plait's image"
	rootfs_list "$w/bk/rootfs" >"$w/bk.list"
	rootfs_list "$w/plait/rootfs" >"$w/plait.list"
	[ -s "$w/bk.list" ] || fail "$name: empty listing of BuildKit's rootfs"
	show_diff "$name" "root filesystem" "$w/bk.list" "$w/plait.list"
	config_fields "docker://$ref_b" >"$w/bk.cfg"
	config_fields "docker://$ref_p" >"$w/plait.cfg"
	show_diff "$name" "image config" "$w/bk.cfg" "$w/plait.cfg"
	history_of "docker://$ref_b" >"$w/bk.hist"
	history_of "docker://$ref_p" >"$w/plait.hist"
	show_diff "$name" "history" "$w/bk.hist" "$w/plait.hist"
	pass "$name: same root filesystem ($(wc -l <"$w/plait.list") entries), config and history as BuildKit"
}

# refused CASE PLAIT-MESSAGE DOCKERFILE-LINES... : a Dockerfile (FROM $BASE,
# then the lines; the context holds a.txt, dir/x.txt and the symlink
# dir/was-dir) that BuildKit
# refuses: plait must refuse it too, saying PLAIT-MESSAGE.
refused() {
	local name=$1 msg=$2 c=$T/refused-$1
	shift 2
	if [ -n "${CASES:-}" ] && [[ " $CASES " != *" $name "* ]]; then
		return 0
	fi
	mkdir -p "$c/dir"
	echo a >"$c/a.txt"
	echo x >"$c/dir/x.txt"
	ln -s elsewhere "$c/dir/was-dir"
	{
		echo 'ARG BASE'
		echo 'FROM ${BASE}'
		printf '%s\n' "$@"
	} >"$c/Dockerfile"
	lib_run dk build --progress plain --network host --build-arg "BASE=$BASE" -t "$R_HOST/bk/$name:1" "$c"
	[ "$RC" != 0 ] || fail "$name: BuildKit built it; this case expects BuildKit to refuse it"
	run_expect_fail "$PLAIT" build --progress plain --build-arg "BASE=$BASE" --cache-dir "$T/plait-cache" \
		--output "type=oci,dest=$T/refused-$name.oci" "$c"
	assert_contains "$ERR" "$msg" "$name: plait's error (BuildKit refuses it too)"
	pass "$name: refused by BuildKit and by plait"
}

for d in "$DATA"/*/; do
	d=$(basename "$d")
	[ -z "${SKIPPED[$d]:-}" ] || echo "# $d: not compared: ${SKIPPED[$d]}"
done

echo "tok-0123456789" >"$T/tok"
compare basic basic
compare multistage multistage
compare multistage-tester multistage --target tester
compare args args
compare args-overridden args --build-arg VERSION=2.5 --build-arg FLAVOR=chocolate \
	--build-arg GLOBAL_ONLY=ignored-in-stage
compare mounts mounts
compare cache-mount cache-mount
compare secret secret --secret "id=tok,src=$T/tok"
compare onbuild-parent onbuild-parent
compare onbuild-child onbuild-child --build-arg PARENT
compare eof-continuation eof-continuation
compare arg-names arg-names --build-arg greeting_two=set
compare add-archive add-archive
compare workdir workdir
compare copy-sources copy-sources
compare mount-relative mount-relative
compare volume-chown volume-chown
compare symlinks symlinks
compare metadata metadata --build-arg NAME=plait-app
compare chmod-dir chmod-dir
compare copy-replace copy-replace
# COPY of hard-linked context files keeps them linked (one inode), as
# BuildKit does; a file linked to one outside the COPY's sources is a file.
HL=$T/gen/hardlinks
mkdir -p "$HL/d"
echo one >"$HL/d/a"
ln "$HL/d/a" "$HL/d/b"
echo two >"$HL/c"
ln "$HL/c" "$HL/d/c-link"
printf 'ARG BASE\nFROM ${BASE}\nCOPY d/ /h/\n' >"$HL/Dockerfile"
compare hardlinks "$HL"
if [ -z "${CASES:-}" ] || [[ " $CASES " == *" hardlinks "* ]]; then
	for tool in bk plait; do
		r=$T/cmp-hardlinks/$tool/rootfs/h
		got="$(stat -c %h "$r/a" "$r/b" "$r/c-link" | paste -sd' ') $(stat -c %i "$r/a" "$r/b" | sort -u | wc -l)"
		assert_eq "2 2 1 1" "$got" "$tool: link counts of /h/a /h/b /h/c-link, then distinct inodes of a and b"
	done
	pass "hardlinks: hard links among the copied files are kept, as BuildKit keeps them"
fi
# A RUN that changes nothing makes no layer, and one that writes only /tmp
# has no etc/ entry (the mount points of resolv.conf and hosts are not
# changes), as newer BuildKit's differ has it; 20.10's keeps the copied-up
# etc/ (KNOWN), so plait's layers are checked as well as compared.
NC=$T/gen/run-nochange
mkdir -p "$NC"
printf 'ARG BASE\nFROM ${BASE}\nRUN true\nRUN echo hi > /tmp/x\n' >"$NC/Dockerfile"
compare run-nochange "$NC"
if [ -z "${CASES:-}" ] || [[ " $CASES " == *" run-nochange "* ]]; then
	w=$T/cmp-run-nochange
	d=$(jq -r '.manifests[0].digest' "$w/plait-img/index.json")
	m=$w/plait-img/blobs/sha256/${d#sha256:}
	assert_eq 2 "$(jq '.layers | length' "$m")" "plait's layers (the base and the RUN that wrote /tmp/x)"
	last=$(jq -r '.layers[-1].digest' "$m")
	assert_eq "tmp/ tmp/x" "$(tar -tzf "$w/plait-img/blobs/sha256/${last#sha256:}" | sort | paste -sd' ')" \
		"the entries of plait's RUN layer"
	pass "run-nochange: a RUN that changes nothing adds no layer; one that writes /tmp has no etc/ entry"
fi
refused copy-dir-onto-file "cannot copy directory 'dir' to '/x': that is a file" 'COPY a.txt dir /x'
refused copy-root-onto-file "cannot copy directory '.' to '/y': that is a file" 'COPY a.txt "" /y'
refused copy-symlink-over-dir "cannot replace the directory '/t/was-dir' with the symlink" 'RUN mkdir -p /t/was-dir/keep' 'COPY dir/ /t/'
refused copy-file-over-dir "cannot replace the directory '/t/x.txt' with the file" 'RUN mkdir -p /t/x.txt/keep' 'COPY dir/ /t/'

# Every context is compared or skipped with its reason.
for d in "$DATA"/*/; do
	d=$(basename "$d")
	[ -n "${COMPARED[$d]:-}" ] || [ -n "${SKIPPED[$d]:-}" ] ||
		fail "tests/data/build/$d is neither compared nor in SKIPPED: add it to test_buildkit_diff.sh"
done
