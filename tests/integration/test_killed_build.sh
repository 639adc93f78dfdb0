#!/usr/bin/env bash
# test_killed_build.sh - a build killed with SIGKILL during a RUN that has a
# secret (issue 11, findings 3 and 4), while the step before it still has its
# layer written behind it: the secret never touches a disk (not
# while the RUN runs, not after the kill), the RUN's processes die with plait,
# no mount is left, the cache lock is free; the next build on that cache
# succeeds and removes what the killed one left (its work/run-* directory).
# A copy into an OCI archive killed mid-transfer: the next one removes its
# $TMPDIR/plait-archive-* directory.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd skopeo docker-registry curl pgrep
require_plait
[ "$(id -u)" = 0 ] || skip "RUN needs root (the sandbox's namespaces)"

registry_start R plain
bash "$LIB_DIR/mkbase.sh" "$T/base" busybox >/dev/null
skopeo_reg copy -q --all "oci:$T/base:busybox" "docker://$R_HOST/base/busybox:1"

TOKEN=plait-killed-secret-$(openssl rand -hex 16)
printf '%s' "$TOKEN" >"$T/tok"
# A marker no other process on this machine has in its command line.
NAP=$((3000 + RANDOM % 1000))
CTX=$T/ctx
mkdir -p "$CTX"
cat >"$CTX/Dockerfile" <<EOF
ARG BASE
FROM \${BASE}
RUN /bin/seq 1 6000000 > /numbers
RUN --mount=type=secret,id=tok test "\$(cat /run/secrets/tok)" = "$TOKEN" && echo run-started-$NAP && sleep $NAP
EOF
cat >"$CTX/Dockerfile.next" <<'EOF'
ARG BASE
FROM ${BASE}
RUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /secret-length
EOF
CACHE=$T/cache
export TMPDIR=$T/tmp
mkdir -p "$TMPDIR"
BUILD=(--progress plain --cache-dir "$CACHE" --secret "id=tok,src=$T/tok"
	--build-arg "BASE=$R_HOST/base/busybox:1" -t localhost/killed:1
	--output "type=oci-archive,dest=$T/out.tar")

sleepers() { pgrep -f "sleep $NAP" || true; }
secret_files() { # DIR... : files holding the secret's bytes
	grep -rlaF "$TOKEN" "$@" 2>/dev/null || true
}
mounts_under() { # DIR : mount points at or below DIR, in any mount namespace of a live process
	local real
	real=$(realpath "$1")
	{ cat /proc/[0-9]*/mountinfo 2>/dev/null || true; } | awk -v d="$real" '$5 == d || index($5, d "/") == 1 { print $5 }' | sort -u
}

"$PLAIT" build "${BUILD[@]}" "$CTX" >"$T/killed.log" 2>&1 &
PID=$!
LIB_PIDS+=("$PID")
wait_log "$PID" "$T/killed.log" "run-started-$NAP" 60 "the RUN started"
[ -n "$(sleepers)" ] || fail "the RUN's 'sleep $NAP' is not running"
# While the RUN reads it, the secret is on no disk: not in the cache, not in $TMPDIR.
HITS=$(secret_files "$CACHE" "$TMPDIR")
[ -z "$HITS" ] || fail "while the RUN runs, the secret is in a file: $HITS"
# The RUN's root is mounted, but only in plait's own mount namespace.
HOSTM=$(awk -v d="$(realpath "$CACHE")" 'index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo)
[ -z "$HOSTM" ] || fail "the build's mounts are visible in the caller's mount namespace: $HOSTM"
LEFT_RUN=$(ls -d "$CACHE"/work/run-* 2>/dev/null | head -n1)
[ -n "$LEFT_RUN" ] || fail "no work/run-* directory while the build runs: $(ls -la "$CACHE/work")"
pass "a RUN with a secret runs; the secret is in no file under the cache or \$TMPDIR; its mounts are plait's own"
# The first RUN's 46 MB layer is still being written behind the second: its
# tree waits in layers/.tmp-*/tree, and that step has no record yet.
LEFT_TREE=$(ls -d "$CACHE"/layers/.tmp-*/tree 2>/dev/null | head -n1)
[ -n "$LEFT_TREE" ] || fail "no layers/.tmp-*/tree while the first RUN's layer is written: $(ls -la "$CACHE/layers")"
RECS=$(ls -A "$CACHE/steps" 2>/dev/null | wc -l)
[ "$RECS" = 0 ] || fail "$RECS step records while the first RUN's layer is still being written: $(cat "$CACHE"/steps/* 2>/dev/null)"

kill -KILL "$PID"
wait "$PID" 2>/dev/null || true
for _ in $(seq 1 50); do
	[ -z "$(sleepers)" ] && break
	sleep 0.1
done
LEFT=$(sleepers)
if [ -n "$LEFT" ]; then
	kill -KILL $LEFT 2>/dev/null || true
	fail "after kill -9 of plait the RUN's processes still run: $(ps -o pid,ppid,args -p "$(echo $LEFT | tr ' ' ,)")"
fi
pass "kill -9 of plait: the RUN's processes (pid namespace) die with it"

M=$(mounts_under "$CACHE")
[ -z "$M" ] || fail "after kill -9, mounts are left under the cache: $M"
M=$(mounts_under "$TMPDIR")
[ -z "$M" ] || fail "after kill -9, mounts are left under \$TMPDIR: $M"
pass "kill -9 of plait: no mount is left (in any process's mount namespace)"

HITS=$(secret_files "$CACHE" "$TMPDIR" "$T/out.tar")
[ -z "$HITS" ] || fail "after kill -9, the secret is in a file: $HITS"
pass "kill -9 of plait: no secret bytes anywhere under the cache or \$TMPDIR"

# What the killed build left, to be removed by the next one. The sweep
# spares what is younger than 10 s (it may not be locked yet): wait that out.
[ -d "$LEFT_RUN" ] || fail "the killed build's $LEFT_RUN is already gone (nothing to test)"
[ -d "$LEFT_TREE" ] || fail "the killed build's $LEFT_TREE is already gone (nothing to test)"
sleep 11
run_ok "$PLAIT" build "${BUILD[@]}" -f "$CTX/Dockerfile.next" "$CTX"
assert_file_absent "$LEFT_RUN" "the killed build's run directory after the next build"
REST=$(ls -A "$CACHE/work" | grep '^run-' || true)
[ -z "$REST" ] || fail "run directories left in $CACHE/work after a clean build: $REST"
REST=$(ls -A "$TMPDIR")
[ -z "$REST" ] || fail "left in \$TMPDIR after a clean build: $REST"
REST=$(ls -A "$CACHE/layers" | grep '^\.tmp-' || true)
[ -z "$REST" ] || fail "unpack directories or unwritten layer trees left in $CACHE/layers: $REST"
assert_file_absent "$LEFT_TREE" "the killed build's unwritten layer tree after the next build"
grep -qx index.json <<<"$(tar -tf "$T/out.tar")" || fail "the next build's archive $T/out.tar has no index.json"
pass "the next build on that cache succeeds and removes the killed build's run directory and unwritten layer tree"

run_ok "$PLAIT" cache prune --cache-dir "$CACHE" --all
pass "the cache lock is free: cache prune --all runs"

# ------------------------------------------------- Ctrl-C while a layer is written
# A 1 GiB text layer is compressed behind the next RUN (several seconds at
# gzip level 6 on any machine): SIGINT then stops the write itself, not
# only the RUN, so plait exits at once with 130, stores no blob, records
# no step and leaves no unwritten tree.
NAP2=$((4000 + RANDOM % 1000))
CTX2=$T/ctx-int
mkdir -p "$CTX2"
cat >"$CTX2/Dockerfile" <<EOF
ARG BASE
FROM \${BASE}
RUN /bin/seq 1 200000 | /bin/head -c 1048576 > /tmp/mib && i=0 && \\
    while [ \$i -lt 1024 ]; do /bin/cat /tmp/mib; i=\$((i + 1)); done > /text && /bin/rm /tmp/mib
RUN echo after-text-$NAP2 && sleep $NAP2
EOF
CACHE2=$T/cache-int
"$PLAIT" build --progress plain --cache-dir "$CACHE2" --build-arg "BASE=$R_HOST/base/busybox:1" \
	-t localhost/int:1 --output "type=oci,dest=$T/out-int" "$CTX2" >"$T/int.log" 2>&1 &
PID=$!
LIB_PIDS+=("$PID")
wait_log "$PID" "$T/int.log" "after-text-$NAP2" 120 "the second RUN started"
ls -d "$CACHE2"/layers/.tmp-*/tree >/dev/null 2>&1 ||
	fail "no layers/.tmp-*/tree: the 1 GiB layer is not being written behind the second RUN (nothing to interrupt)"
RECS=$(ls -A "$CACHE2/steps" 2>/dev/null | wc -l)
[ "$RECS" = 0 ] || fail "the text layer was written already ($RECS step records) before SIGINT: nothing to interrupt"
t0=$(date +%s%N)
kill -INT "$PID"
wait_pid_gone "$PID" 30 || fail "plait still ran 30 s after SIGINT during a layer write: $(cat "$T/int.log")"
t1=$(date +%s%N)
rc=0
wait "$PID" || rc=$?
assert_eq 130 "$rc" "exit code after SIGINT during a layer write (output: $(cat "$T/int.log"))"
RECS=$(ls -A "$CACHE2/steps" 2>/dev/null | wc -l)
assert_eq 0 "$RECS" "step records after SIGINT during the text layer's write (it must stop, not finish)"
BIG=$(find "$CACHE2/store/blobs" -type f -size +10M 2>/dev/null || true)
[ -z "$BIG" ] || fail "a blob of the interrupted layer is stored: $BIG"
REST=$(ls -A "$CACHE2/layers" 2>/dev/null | grep '^\.tmp-' || true)
[ -z "$REST" ] || fail "unwritten layer trees left after SIGINT: $REST"
[ -z "$(pgrep -f "sleep $NAP2" || true)" ] || fail "the second RUN still runs after SIGINT"
pass "SIGINT while a 1 GiB layer is written behind a RUN: exit 130 in $(((t1 - t0) / 1000000)) ms, the write stopped (no blob, no record, no tree left)"

# ---------------------------------------------------------------- a killed copy
# Every registry request is held 2 s: the copy into an archive is killed
# while its unpacked layout ($TMPDIR/plait-archive-*) exists.
faultproxy_start P "$R_HOST" --delay-ms 2000
"$PLAIT" copy "docker://$P_HOST/base/busybox:1" "oci-archive:$T/copy.tar:1" >"$T/copy.log" 2>&1 &
PID=$!
LIB_PIDS+=("$PID")
LEFT_TMP=
for _ in $(seq 1 100); do
	LEFT_TMP=$(find "$TMPDIR" -maxdepth 1 -name 'plait-archive-*' | head -n1)
	[ -n "$LEFT_TMP" ] && break
	sleep 0.05
done
[ -n "$LEFT_TMP" ] || fail "no \$TMPDIR/plait-archive-* while copying into an archive: $(ls -la "$TMPDIR"; cat "$T/copy.log")"
kill -KILL "$PID"
wait "$PID" 2>/dev/null || true
[ -d "$LEFT_TMP" ] || fail "the killed copy's $LEFT_TMP is already gone (nothing to test)"
sleep 11
run_ok "$PLAIT" copy "docker://$R_HOST/base/busybox:1" "oci-archive:$T/copy.tar:1"
assert_file_absent "$LEFT_TMP" "the killed copy's \$TMPDIR directory after the next copy"
REST=$(ls -A "$TMPDIR")
[ -z "$REST" ] || fail "left in \$TMPDIR after a clean copy: $REST"
grep -qx index.json <<<"$(tar -tf "$T/copy.tar")" || fail "the next copy's $T/copy.tar has no index.json"
pass "a copy into an archive killed with kill -9: the next one removes its \$TMPDIR/plait-archive-* and writes the archive"
