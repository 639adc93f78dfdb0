#!/usr/bin/env bash
# test_build_onbuild.sh - stages that only the base image names: an ONBUILD
# trigger of a pulled parent (COPY --from=<stage>, RUN --mount from=<stage>)
# or a --from=$VAR whose value only the parent's ENV sets. As BuildKit does
# (frontend 1.11), plait reads the base images' configs before it decides
# which stages to build, so the stage is built and the trigger sees it.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd skopeo umoci docker-registry curl jq
require_plait
[ "$(id -u)" = 0 ] || skip "umoci unpack with owners needs root"

registry_start R plain
bash "$LIB_DIR/mkbase.sh" "$T/base" busybox >/dev/null
skopeo_reg copy -q --all "oci:$T/base:busybox" "docker://$R_HOST/base/busybox:1"
BASE=$R_HOST/base/busybox:1

# parent NAME DOCKERFILE-LINES... : build FROM $BASE with those lines and
# push it as $R_HOST/onb/NAME:1.
parent() {
	local name=$1
	shift
	mkdir -p "$T/p-$name"
	{
		echo 'ARG BASE'
		echo 'FROM $BASE'
		printf '%s\n' "$@"
	} >"$T/p-$name/Dockerfile"
	run_ok "$PLAIT" build --cache-dir "$T/cache" --build-arg "BASE=$BASE" -t "$R_HOST/onb/$name:1" \
		--push "$T/p-$name"
}

# child NAME DOCKERFILE-LINES... : a context whose Dockerfile has a stage
# `helper` (FROM $BASE, /x holds "hi") before those lines; sets CTX.
child() {
	local name=$1
	shift
	CTX=$T/c-$name
	mkdir -p "$CTX"
	{
		echo 'ARG BASE'
		echo 'ARG PARENT'
		echo 'FROM $BASE AS helper'
		echo 'RUN echo hi > /x'
		printf '%s\n' "$@"
	} >"$CTX/Dockerfile"
}

# build_child NAME : build CTX to $T/out/NAME and unpack it; sets RFS.
build_child() {
	run_ok "$PLAIT" build --progress plain --cache-dir "$T/cache" --build-arg "BASE=$BASE" \
		--build-arg "PARENT=$R_HOST/onb/$1:1" -t "localhost/$1:1" --output "type=oci,dest=$T/out/$1" "$CTX"
	LOG="$OUT
$ERR"
	rm -rf "$T/b-$1"
	run_ok umoci unpack --image "$T/out/$1:1" "$T/b-$1"
	RFS=$T/b-$1/rootfs
}

parent copy 'ONBUILD COPY --from=helper /x /y'
triggers=$(skopeo_reg inspect --config --raw "docker://$R_HOST/onb/copy:1" | jq -c '.config.OnBuild')
assert_contains "$triggers" "COPY --from=helper /x /y" "the parent records its ONBUILD trigger"
child copy 'FROM $PARENT'
build_child copy
assert_file_exists "$RFS/y" "/y (written by the parent's trigger from stage helper)"
assert_eq hi "$(cat "$RFS/y")" "content of /y"
assert_contains "$LOG" "RUN echo hi > /x" "the helper stage's RUN in the progress"
pass "ONBUILD COPY --from=<stage> of a pulled parent builds a stage only the trigger names"

D1=$(layout_tag_digest "$T/out/copy" 1)
build_child copy
assert_eq "$D1" "$(layout_tag_digest "$T/out/copy" 1)" "digest of the warm rebuild"
assert_contains "$LOG" "CACHED" "progress of the warm rebuild"
pass "a warm rebuild gives the same digest"

parent mount 'ONBUILD RUN --mount=from=helper,target=/h cp /h/x /m'
child mount 'FROM $PARENT'
build_child mount
assert_eq hi "$(cat "$RFS/m")" "content of /m (RUN --mount from=helper in the parent's trigger)"
pass "ONBUILD RUN --mount from=<stage> of a pulled parent builds that stage"

parent env 'ENV SRC=helper'
child env 'FROM $PARENT' 'COPY --from=$SRC /x /z'
build_child env
assert_eq hi "$(cat "$RFS/z")" "content of /z (COPY --from=\$SRC, SRC from the parent's ENV)"
pass "COPY --from=\$VAR with VAR set only by the base image's ENV builds that stage"

# A trigger naming no stage of the child names an image, as before.
parent nostage 'ONBUILD COPY --from=nosuchstage /x /y'
child nostage 'FROM $PARENT'
run_expect_fail "$PLAIT" build --progress plain --cache-dir "$T/cache" --build-arg "BASE=$BASE" \
	--build-arg "PARENT=$R_HOST/onb/nostage:1" -t localhost/nostage:1 --output "type=oci,dest=$T/out/nostage" "$CTX"
assert_contains "$ERR" "--from=nosuchstage (no earlier stage has that name)" "a trigger naming no stage"
pass "a trigger naming no stage of the Dockerfile is an image reference"
