#!/usr/bin/env bash
# test_cache.sh - `plait cache du|prune` against a cache that a real
# `plait build` of tests/data/build/basic filled: du sees every kind, prune
# --keep shrinks it (least recently used first), a build after a full prune
# runs every step again, prune refuses while a build holds the lock.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd docker-registry skopeo curl jq openssl flock umoci
require_plait
# RUN steps need the sandbox (namespaces, overlay mounts).
[ "$(id -u)" = 0 ] || skip "plait build's RUN sandbox needs root"

registry_start R plain
bash "$LIB_DIR/mkbase.sh" "$T/base" busybox >/dev/null
skopeo_reg copy -q --all "oci:$T/base:busybox" "docker://$R_HOST/base/busybox:1"
BASE=$R_HOST/base/busybox:1
CACHE=$T/cache
CTX=$T/ctx/basic
mkdir -p "$T/ctx"
cp -a "$PLAIT_SRCDIR/tests/data/build/basic" "$CTX"
pass "busybox base image pushed to $BASE"

build() {
	run_ok "$PLAIT" build --progress plain --cache-dir "$CACHE" \
		--build-arg "BASE=$BASE" -t localhost/basic:1 --output "type=oci,dest=$T/out" "$CTX"
	LOG="$OUT
$ERR"
}

# du_json KIND FIELD : from `plait cache du --format json`
du_json() {
	run_ok "$PLAIT" cache du --cache-dir "$CACHE" --format json
	jq -r --arg k "$1" --arg f "$2" '.usage[$k][$f]' <<<"$OUT"
}

# ---------------------------------------------------------------- du

run_ok "$PLAIT" cache du --cache-dir "$T/no-such-cache"
assert_match "$OUT" 'total +0 +0 B +0' "du of a missing cache"
assert_file_absent "$T/no-such-cache" "cache dir created by du"
pass "du of a missing cache dir: all zero, nothing created"

build
for kind in store layers steps; do
	n=$(du_json "$kind" entries)
	b=$(du_json "$kind" bytes)
	[ "$n" -gt 0 ] && [ "$b" -gt 0 ] || fail "du after a build: $kind has $n entries, $b bytes; expected both > 0:
$OUT"
done
assert_eq 0 "$(du_json temporary entries)" "temporary entries after a finished build"
TOTAL=$(du_json total bytes)
run_ok "$PLAIT" cache du --cache-dir "$CACHE"
assert_match "$OUT" $'KIND +ENTRIES +SIZE +BYTES' "du table header"
assert_match "$OUT" "total +[0-9]+ +[0-9.]+ [KMG]iB +$TOTAL" "du table total"
pass "du after a build: store, layers and steps non-empty, total $TOTAL bytes"

# The layer, snapshot and mount directories carry ext4's "top of directory
# hierarchies" flag (lsattr's T), where the file system keeps it: a probe
# directory set by hand tells whether it does.
mkdir "$T/topdir-probe"
if chattr +T "$T/topdir-probe" 2>/dev/null && lsattr -d "$T/topdir-probe" 2>/dev/null | cut -d' ' -f1 | grep -q T; then
	for d in layers work mounts; do
		lsattr -d "$CACHE/$d" | cut -d' ' -f1 | grep -q T ||
			fail "cache dir $d lacks the T attribute: $(lsattr -d "$CACHE/$d")"
	done
	pass "layers/, work/ and mounts/ carry the T (unrelated subdirectories) attribute"
else
	echo "# the file system under $T keeps no T attribute: not checked"
fi

# ---------------------------------------------------------------- prune refused while in use

exec {lockfd}>>"$CACHE/lock"
flock -s "$lockfd"
run_expect_fail "$PLAIT" cache prune --cache-dir "$CACHE"
exec {lockfd}>&-
expect_rc 1
assert_contains "$ERR" "in use by a running build; try again when it ends"
assert_eq "$TOTAL" "$(du_json total bytes)" "cache size after a refused prune"
pass "prune refuses while a build holds the cache lock, and removes nothing"

# ---------------------------------------------------------------- prune --keep

run_ok "$PLAIT" cache prune --cache-dir "$CACHE" --keep 1K --dry-run
assert_contains "$OUT" "would free"
assert_eq "$TOTAL" "$(du_json total bytes)" "cache size after --dry-run"
run_ok "$PLAIT" cache prune --cache-dir "$CACHE" --keep 1K
assert_contains "$OUT" "freed"
AFTER=$(du_json total bytes)
[ "$AFTER" -le 1024 ] || fail "after prune --keep 1K the cache holds $AFTER bytes (> 1024):
$OUT"
assert_match "$OUT" "the cache holds .*\($AFTER bytes\)" "prune's report of what is left"
pass "prune --keep 1K: $TOTAL -> $AFTER bytes"

# A step record never outlives its blob: any left names a blob that exists.
for rec in "$CACHE"/steps/*; do
	[ -f "$rec" ] || continue
	d=$(jq -r '.digest // empty' "$rec")
	[ -z "$d" ] || assert_file_exists "$CACHE/store/blobs/sha256/${d#sha256:}" "blob of step record $rec"
done
pass "no step record names a missing blob"

# ---------------------------------------------------------------- rebuild, prune --all

build
S=$(printf '%s\n' "$LOG" | grep -E '^#[0-9]+ CACHED' || true)
[ -z "$S" ] || fail "build after prune: steps reported CACHED:
$LOG"
assert_file_exists "$T/out/index.json"
pass "a build after the prune runs every step again (no CACHED)"

build
printf '%s\n' "$LOG" | grep -qE '^#[0-9]+ CACHED' || fail "second build after prune: nothing CACHED:
$LOG"
pass "and the cache it refilled serves the next build"

run_ok "$PLAIT" cache prune --cache-dir "$CACHE" --all
run_ok "$PLAIT" cache du --cache-dir "$CACHE" --format json
assert_eq 0 "$(jq '.usage.total.entries' <<<"$OUT")" "entries after prune --all"
assert_file_exists "$CACHE/lock"
pass "prune --all leaves 0 entries (and the lock file)"

build
pass "a build into the emptied cache works"

# ---------------------------------------------------------------- COPY --from by its source's layers

# A COPY --from is keyed on the files it copies; a second key over the source
# stage's layers finds it again without digesting them. Neither may ever give
# files other than the source's: the builder's other output changes (COPY
# stays cached), then the copied file changes (COPY runs, new content), then
# both go back (every step cached: the first image, digest for digest).
FCTX=$T/ctx/from
mkdir -p "$FCTX"
cat >"$FCTX/Dockerfile" <<'EOF'
ARG BASE
FROM ${BASE} AS builder
ARG V=1
ARG W=a
RUN mkdir -p /src && echo "$V" > /src/v && echo "$W" > /other
FROM ${BASE}
COPY --from=builder /src /src
EOF
# from_build V W : build, sets LOG, DIG (the image digest) and GOT (/src/v).
from_build() {
	rm -rf "$T/fout"
	run_ok "$PLAIT" build --progress plain --cache-dir "$CACHE" --build-arg "BASE=$BASE" \
		--build-arg "V=$1" --build-arg "W=$2" -t localhost/from:f --output "type=oci,dest=$T/fout" "$FCTX"
	LOG=$ERR
	DIG=$(layout_tag_digest "$T/fout" f)
	rm -rf "$T/fbundle"
	umoci unpack --image "$T/fout:f" "$T/fbundle" >/dev/null 2>"$T/umoci.err" ||
		fail "umoci cannot unpack the COPY --from image: $(cat "$T/umoci.err")"
	GOT=$(cat "$T/fbundle/rootfs/src/v")
}
# (no grep -q at the end of a pipe: under pipefail, its early exit is a SIGPIPE failure)
copy_cached() { [[ "$(grep -A1 -F 'COPY --from=builder /src /src' <<<"$LOG")" == *CACHED* ]]; }
from_build 1 a
first=$DIG
assert_eq 1 "$GOT" "/src/v, first build"
from_build 1 b
copy_cached || fail "the builder's other output changed, /src did not: COPY --from ran again:
$LOG"
assert_eq "$first" "$DIG" "image digest when only the builder's /other changed"
from_build 2 b
copy_cached && fail "/src/v changed and COPY --from was CACHED:
$LOG"
assert_eq 2 "$GOT" "/src/v after it changed in the builder"
for w in a b; do
	from_build 1 "$w"
	copy_cached || fail "V=1 W=$w again: COPY --from not CACHED:
$LOG"
	assert_eq 1 "$GOT" "/src/v, V=1 W=$w again"
	assert_eq "$first" "$DIG" "image digest, V=1 W=$w again"
done
pass "COPY --from: cached while its files stay, rerun when they change, the first image when they come back"

# ---------------------------------------------------------------- a warm push
# An unchanged build whose tag already names its image writes nothing to the
# registry: the base is resolved once for every stage that names it (one
# manifest and one config GET) and the push is one HEAD of the tag. A tag
# moved elsewhere meanwhile is pushed again.
MCTX=$T/ctx/multistage
cp -a "$PLAIT_SRCDIR/tests/data/build/multistage" "$MCTX"
warm_push() {
	run_ok "$PLAIT" build --progress plain --cache-dir "$CACHE" \
		--build-arg "BASE=$BASE" -t "$R_HOST/warm/multi:1" --push "$MCTX"
	LOG="$OUT
$ERR"
}
# requests_since N : the registry's access log after line N, digests as D
requests_since() {
	tail -n +$(($1 + 1)) "$R_LOG" | grep -o '"[A-Z]* /v2/[^ ]*' | sed 's/sha256:[0-9a-f]*/D/g' | sort | uniq -c
}
warm_push
D1=sha256:$(raw_digest "docker://$R_HOST/warm/multi:1")
n0=$(wc -l <"$R_LOG")
warm_push
reqs=$(requests_since "$n0")
if grep -qE '"(PUT|POST|PATCH|DELETE) ' <<<"$reqs"; then
	fail "a warm push of an unchanged build wrote to the registry:
$reqs"
fi
base_gets=$(awk '/GET \/v2\/base\/busybox\/manifests\// { n += $1 } END { print n + 0 }' <<<"$reqs")
assert_eq 1 "$base_gets" "GETs of the base manifest by a warm build of two stages FROM it:
$reqs
count"
assert_contains "$LOG" "$R_HOST/warm/multi:1 is already $D1: nothing to push" "progress of the warm push"
assert_eq "$D1" "sha256:$(raw_digest "docker://$R_HOST/warm/multi:1")" "the tag after the warm push"
pass "warm push: the base resolved once, the tag looked at, nothing written"

skopeo_reg copy -q --all "docker://$BASE" "docker://$R_HOST/warm/multi:1"
n0=$(wc -l <"$R_LOG")
warm_push
reqs=$(requests_since "$n0")
assert_contains "$reqs" '"PUT /v2/warm/multi/manifests/1' "the retag of a tag moved elsewhere"
assert_not_contains "$LOG" "nothing to push" "progress of the push after the tag moved"
assert_eq "$D1" "sha256:$(raw_digest "docker://$R_HOST/warm/multi:1")" "the tag after it was moved back"
pass "a tag moved elsewhere meanwhile is moved back by the next push"

# ---------------------------------------------------------------- usage errors

run_expect_fail "$PLAIT" cache prune --cache-dir "$CACHE" --keep 12Q
expect_rc 2
assert_contains "$ERR" "--keep: '12Q' is not a size"
run_expect_fail "$PLAIT" cache prune --cache-dir "$CACHE" --keep 1M --all
expect_rc 2
run_expect_fail "$PLAIT" cache du --cache-dir "$CACHE" --format yaml
expect_rc 2
run_expect_fail "$PLAIT" cache frobnicate
expect_rc 2
run_ok "$PLAIT" cache prune --help
assert_contains "$OUT" "usage: plait cache prune"
pass "usage errors exit 2 and say what was wrong"
