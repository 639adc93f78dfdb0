#!/usr/bin/env bash
# plait build: RUN --mount=type=bind (from a stage, from the context read-only
# and rw) and ONBUILD triggers of a base image.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd skopeo umoci docker-registry curl jq
require_plait
[ "$(id -u)" = 0 ] || skip "umoci unpack with owners needs root"

registry_start R plain
bash "$LIB_DIR/mkbase.sh" "$T/base" busybox >/dev/null
skopeo_reg copy -q --all "oci:$T/base:busybox" "docker://$R_HOST/base/busybox:1"
BASE=$R_HOST/base/busybox:1

cp -a "$PLAIT_SRCDIR/tests/data/build/mounts" "$T/mounts"
run_ok "$PLAIT" build --cache-dir "$T/cache" --build-arg "BASE=$BASE" -t localhost/m:1 \
	--output "type=oci,dest=$T/out" "$T/mounts"
run_ok umoci unpack --image "$T/out:1" "$T/b1"
assert_eq "built artifact" "$(cat "$T/b1/rootfs/copied.txt")" "RUN --mount from=builder"
pass "RUN --mount=type=bind,from=<stage> sees that stage's files (and the stage is built for it)"
assert_eq "ctx data" "$(cat "$T/b1/rootfs/ctx.txt")" "RUN --mount from the context"
[ ! -e "$T/mounts/data/new.txt" ] || fail "an rw bind mount wrote into the build context: $T/mounts/data/new.txt"
[ ! -e "$T/b1/rootfs/mnt/d/new.txt" ] || fail "an rw bind mount's write ended up in the image"
pass "rw bind mounts may be written, and the writes are thrown away"
assert_eq readonly "$(cat "$T/b1/rootfs/ro.txt")" "a bind mount without rw"
pass "bind mounts are read-only by default"
[ -z "$(ls -A "$T/b1/rootfs/mnt" 2>/dev/null)" ] || fail "mount points left in the image: $(ls -A "$T/b1/rootfs/mnt")"
pass "mount points leave nothing in the image"

cp -a "$PLAIT_SRCDIR/tests/data/build/onbuild-parent" "$T/obp"
cp -a "$PLAIT_SRCDIR/tests/data/build/onbuild-child" "$T/obc"
run_ok "$PLAIT" build --cache-dir "$T/cache" --build-arg "BASE=$BASE" -t "$R_HOST/ob/parent:1" --push "$T/obp"
triggers=$(skopeo_reg inspect --config --raw "docker://$R_HOST/ob/parent:1" | jq -c '.config.OnBuild')
assert_contains "$triggers" "trigger ran" "the parent records its ONBUILD triggers"
run_ok "$PLAIT" build --cache-dir "$T/cache" --build-arg "PARENT=$R_HOST/ob/parent:1" -t localhost/c:1 \
	--output "type=oci,dest=$T/out" "$T/obc"
run_ok umoci unpack --image "$T/out:1" "$T/b2"
assert_eq "trigger ran
child context file" "$(cat "$T/b2/rootfs/both.txt")" "ONBUILD RUN and COPY ran in the child's build and context"
assert_eq null "$(skopeo inspect --config --raw "oci:$T/out:1" | jq -c '.config.OnBuild')" "OnBuild of the child"
pass "ONBUILD triggers of a base image run after FROM, in the child's context, and are not passed on"

# --build-context NAME=DIR: a second local context for COPY --from and RUN --mount from=.
mkdir -p "$T/named/sub" "$T/nctx"
echo "from named dir" >"$T/named/sub/f.txt"
printf 'ARG BASE\nFROM ${BASE}\nCOPY --from=extra sub/f.txt /named.txt\nRUN --mount=type=bind,from=extra,source=sub,target=/m cat /m/f.txt > /mounted.txt\n' >"$T/nctx/Dockerfile"
run_ok "$PLAIT" build --cache-dir "$T/cache" --build-arg "BASE=$BASE" --build-context "extra=$T/named" \
	-t localhost/n:1 --output "type=oci,dest=$T/out" "$T/nctx"
run_ok umoci unpack --image "$T/out:1" "$T/b3"
assert_eq "from named dir" "$(cat "$T/b3/rootfs/named.txt")" "COPY --from=<named dir context>"
assert_eq "from named dir" "$(cat "$T/b3/rootfs/mounted.txt")" "RUN --mount from=<named dir context>"
pass "--build-context NAME=DIR serves COPY --from=NAME and RUN --mount from=NAME"
echo "changed" >"$T/named/sub/f.txt"
run_ok "$PLAIT" build --cache-dir "$T/cache" --build-arg "BASE=$BASE" --build-context "extra=$T/named" \
	-t localhost/n:2 --output "type=oci,dest=$T/out" "$T/nctx"
assert_not_contains "$ERR" "CACHED" "a rebuild after the named context changed"
pass "a change in a named directory context invalidates the steps that read it"

# .dockerignore applies to RUN --mount=type=bind of the context as it does to COPY.
mkdir -p "$T/igctx"
echo "s3cr3t" >"$T/igctx/secret.env"
echo ok >"$T/igctx/visible.txt"
echo "secret.env" >"$T/igctx/.dockerignore"
printf 'ARG BASE\nFROM ${BASE}\nRUN --mount=type=bind,target=/m ls /m > /seen\n' >"$T/igctx/Dockerfile"
run_ok "$PLAIT" build --cache-dir "$T/cache" --build-arg "BASE=$BASE" -t localhost/ig:1 \
	--output "type=oci,dest=$T/igout" "$T/igctx"
run_ok umoci unpack --image "$T/igout:1" "$T/igb"
assert_not_contains "$(cat "$T/igb/rootfs/seen")" "secret.env" "what RUN saw of the mounted context"
assert_contains "$(cat "$T/igb/rootfs/seen")" "visible.txt" "what RUN saw of the mounted context"
pass "a bind mount of the context hides what .dockerignore excludes"
