#!/usr/bin/env bash
# plait build FROM a base image whose layer carries a block device node for a
# loop device on the host (as a hostile image would carry 7:0 or 254:0): a RUN
# can see the node but neither read nor write through it, the loop device's
# bytes stay as they were, /dev in RUN holds exactly the sandbox's own nodes,
# the node stays in the layer (as under BuildKit), and RUN has no_new_privs.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd skopeo umoci docker-registry curl jq losetup sha256sum
require_plait
[ "$(id -u)" = 0 ] || skip "loop devices and device nodes need root"

# A 64 KiB file of known bytes behind a loop device, detached on any exit.
head -c 65536 /dev/urandom >"$T/disk.img"
want=$(sha256sum <"$T/disk.img")
LOOP=$(losetup -f --show "$T/disk.img" 2>/dev/null) || skip "no loop device available (losetup -f failed)"
trap 'rc=$?; losetup -d "$LOOP" 2>/dev/null; (exit $rc); lib_cleanup' EXIT
[ -b "$LOOP" ] || skip "losetup gave '$LOOP', not a block device"
major=$((0x$(stat -c %t "$LOOP")))
minor=$((0x$(stat -c %T "$LOOP")))

registry_start R plain
bash "$LIB_DIR/mkbase.sh" "$T/base" busybox >/dev/null
# The hostile layer: the base plus /dev-node (b major:minor of the loop device).
run_ok umoci unpack --image "$T/base:busybox" "$T/bundle"
mknod -m 0666 "$T/bundle/rootfs/dev-node" b "$major" "$minor"
run_ok umoci repack --image "$T/base:devnode" "$T/bundle"
skopeo_reg copy -q "oci:$T/base:devnode" "docker://$R_HOST/evil/devnode:1"

mkdir -p "$T/ctx"
cat >"$T/ctx/Dockerfile" <<'DF'
ARG BASE
FROM ${BASE}
RUN test -b /dev-node && echo node-is-a-block-device >/result; \
    if head -c 16 /dev-node >/read.out 2>/read.err; then echo READ-SUCCEEDED >>/result; \
    else echo read-refused >>/result; fi; \
    if echo PWNED-PWNED-PWNED 2>/write.err >/dev-node; then echo WRITE-SUCCEEDED >>/result; \
    else echo write-refused >>/result; fi; \
    ls -A /dev | tr '\n' ' ' >/dev-list; \
    grep NoNewPrivs /proc/self/status >/nnp; \
    echo x >/dev/null && head -c 4 /dev/zero | od -An -tx1 >/dev-zero
DF
run_ok "$PLAIT" build --progress plain --cache-dir "$T/cache" --build-arg "BASE=$R_HOST/evil/devnode:1" \
	-t localhost/d:1 --output "type=oci,dest=$T/out" "$T/ctx"
run_ok umoci unpack --image "$T/out:1" "$T/b1"
r=$T/b1/rootfs

assert_eq "$want" "$(sha256sum <"$T/disk.img")" "the loop device's backing file after the build"
assert_eq "$want" "$(sha256sum <"$LOOP")" "the loop device's bytes after the build"
res=$(cat "$r/result")
assert_contains "$res" node-is-a-block-device "RUN's view of /dev-node (the layer was unpacked with it)"
assert_not_contains "$res" READ-SUCCEEDED "reading /dev-node in RUN (it read: $(od -An -tx1 "$r/read.out" | head -2))"
assert_not_contains "$res" WRITE-SUCCEEDED "writing /dev-node in RUN"
assert_contains "$res" read-refused "reading /dev-node in RUN"
assert_contains "$res" write-refused "writing /dev-node in RUN"
assert_contains "$(cat "$r/read.err")" "Permission denied" "why reading /dev-node failed"
pass "a block device node of a base layer can be neither read nor written by RUN, and the device is unchanged"

[ -b "$r/dev-node" ] || fail "the device node is gone from the built image (BuildKit keeps it): $(ls -l "$r/dev-node" 2>&1)"
pass "the device node stays in the layer, as under BuildKit"

assert_eq "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero " "$(cat "$r/dev-list")" "/dev in RUN"
assert_eq " 00 00 00 00" "$(cat "$r/dev-zero")" "/dev/zero in RUN"
[ ! -e "$r/dev/null" ] || fail "RUN's /dev/null ended up in the image"
pass "/dev in RUN holds exactly null, zero, full, random, urandom, tty, ptmx, pts, shm and the fd links, and they work"

assert_eq "NoNewPrivs:	1" "$(cat "$r/nnp")" "NoNewPrivs of the RUN command"
pass "RUN runs with no_new_privs"
