#!/usr/bin/env bash
# test_demo.sh - `make demo` (examples/demo.sh) with the built plait: it exits
# 0, both architectures' image commands answer, the pushed index lists two
# platforms, the OCI layout build and the split-and-merged index give the
# build's index digest, and afterwards its registry process and temporary
# directory are gone. Run twice in a row it builds the same index
# (idempotent), and a TERM in the middle still stops the registry.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_plait
require_cmd docker-registry umoci curl python3 dpkg-deb apt-get chroot
[ "$(id -u)" = 0 ] || skip "the demo registers QEMU and chroots: it needs root"
case "$(dpkg --print-architecture)" in
amd64) [ -x /usr/bin/qemu-aarch64-static ] || skip "/usr/bin/qemu-aarch64-static is missing: apt-get install qemu-user-static" ;;
arm64) [ -x /usr/bin/qemu-x86_64-static ] || skip "/usr/bin/qemu-x86_64-static is missing: apt-get install qemu-user-static" ;;
*) skip "the demo runs on amd64 or arm64 hosts" ;;
esac
DEMO=$PLAIT_SRCDIR/examples/demo.sh

# run_demo N : run the demo with its temp dirs under $T/tmpN; output in
# $T/demoN.out, exit status in DEMO_RC.
run_demo() {
	mkdir -p "$T/tmp$1"
	DEMO_RC=0
	TMPDIR=$T/tmp$1 timeout -k 10 600 bash "$DEMO" "$PLAIT" >"$T/demo$1.out" 2>&1 || DEMO_RC=$?
	if [ "$DEMO_RC" != 0 ] && grep -q "demo: cannot download busybox-static" "$T/demo$1.out"; then
		skip "no busybox-static for the foreign architecture in Debian's archive: $(tail -n 3 "$T/demo$1.out")"
	fi
}

# section FILE TITLE : the lines after the "==> TITLE" header up to the next one.
section() {
	awk -v t="$2" 'index($0, "==> ") { on = index($0, "==> " t) > 0; next } on' "$1"
}

# registry_gone FILE : the registry the demo printed is neither running nor answering.
registry_gone() {
	local line host pid
	line=$(grep -o 'docker-registry on [0-9.:]* (pid [0-9]*)' "$1" || true)
	[ -n "$line" ] || fail "demo output does not name its registry ('docker-registry on HOST (pid N)'):
$(cat "$1")"
	host=$(sed -E 's/.* on ([0-9.:]+) .*/\1/' <<<"$line")
	pid=$(sed -E 's/.*pid ([0-9]+).*/\1/' <<<"$line")
	if kill -0 "$pid" 2>/dev/null && grep -q docker-registry "/proc/$pid/cmdline" 2>/dev/null; then
		fail "the demo's docker-registry (pid $pid) still runs after the demo exited"
	fi
	if curl -s -o /dev/null --max-time 2 "http://$host/v2/"; then
		fail "something still answers on the demo's registry address $host"
	fi
}

run_demo 1
[ "$DEMO_RC" = 0 ] || fail "examples/demo.sh exited $DEMO_RC:
$(tail -n 40 "$T/demo1.out")"
out=$(cat "$T/demo1.out")
pass "the demo exits 0"

assert_match "$out" $'(^|\n)hello from x86_64 \\(built for linux/amd64, built on x86_64\\)(\n|$)' "the linux/amd64 image's command"
assert_match "$out" $'(^|\n)hello from aarch64 \\(built for linux/arm64, built on aarch64\\)(\n|$)' "the linux/arm64 image's command"
pass "both architectures answer"

idx=$(section "$T/demo1.out" "the pushed index")
assert_contains "$idx" "MediaType:  application/vnd.oci.image.index.v1+json" "plait inspect of the pushed tag"
rows=$(grep -E '^linux/' <<<"$idx" | awk '{print $1}' | paste -sd' ')
assert_eq "linux/amd64 linux/arm64" "$rows" "platforms listed by plait inspect of the pushed index"
pass "the pushed index lists linux/amd64 and linux/arm64"

plan=$(section "$T/demo1.out" "examples/hello: lint, then the plan")
assert_match "$plan" $'linux/arm64 +qemu ' "plan row of linux/arm64"
assert_match "$plan" $'linux/amd64 +native ' "plan row of linux/amd64"
build=$(section "$T/demo1.out" "one build, two platforms")
assert_match "$build" $'\n  linux/arm64 .* emulated' "build summary row of linux/arm64"
assert_match "$build" $'\n  linux/amd64 .* native' "build summary row of linux/amd64"
pass "the demo shows the plan and the build summary"

layout=$(section "$T/demo1.out" "the same build without a registry")
assert_eq "linux/amd64 linux/arm64" "$(grep -E '^linux/' <<<"$layout" | awk '{print $1}' | paste -sd' ')" \
	"platforms of the OCI layout's index"
assert_contains "$layout" "same inputs, same digest" "the OCI layout build"
pass "the OCI layout build gives the same two-platform index"

merged=$(section "$T/demo1.out" "split into single-platform images")
assert_contains "$merged" "the merged index is the one the build pushed" "plait index create of the split images"
pass "split and merged again with index create, the index digest is the build's"

registry_gone "$T/demo1.out"
assert_eq "" "$(ls -A "$T/tmp1")" "what the demo left in its TMPDIR"
pass "the registry is stopped and the temporary directory removed"

# Idempotent: a second run does the same and builds the same index.
run_demo 2
[ "$DEMO_RC" = 0 ] || fail "the second run of examples/demo.sh exited $DEMO_RC:
$(tail -n 40 "$T/demo2.out")"
d1=$(grep -E '^built index sha256:' "$T/demo1.out" || true)
d2=$(grep -E '^built index sha256:' "$T/demo2.out" || true)
[ -n "$d1" ] || fail "no 'built index sha256:...' line in the demo's output"
assert_eq "${d1%% in *}" "${d2%% in *}" "the index digest of the second run"
registry_gone "$T/demo2.out"
assert_eq "" "$(ls -A "$T/tmp2")" "what the second run left in its TMPDIR"
pass "a second run succeeds and builds the same index"

# Interrupted after the registry started: it is stopped all the same.
mkdir -p "$T/tmp3"
TMPDIR=$T/tmp3 bash "$DEMO" "$PLAIT" >"$T/demo3.out" 2>&1 &
demo_pid=$!
for _ in $(seq 300); do
	grep -q 'docker-registry on .* (pid' "$T/demo3.out" && break
	kill -0 "$demo_pid" 2>/dev/null || break
	sleep 0.1
done
grep -q 'docker-registry on .* (pid' "$T/demo3.out" || fail "the demo did not start its registry:
$(cat "$T/demo3.out")"
kill -TERM "$demo_pid"
rc=0
wait "$demo_pid" || rc=$?
assert_ne 0 "$rc" "exit status of the interrupted demo"
registry_gone "$T/demo3.out"
assert_eq "" "$(ls -A "$T/tmp3")" "what the interrupted demo left in its TMPDIR"
pass "an interrupted demo stops its registry and removes its files"
