#!/usr/bin/env bash
# bench/rootless.sh [PLAIT] - the cost of building without root (issue 14):
# `plait build --push` of bench/build/Dockerfile as root and as an ordinary
# user (a user namespace with /etc/subuid ranges, overlayfs with userxattr),
# same run, alternating who goes first (odd rounds root, even rounds the
# user), in two scenarios per round:
#   cold   an empty cache dir
#   warm   the same build again (every step cached)
# Each round gets fresh caches; the registry is one for the whole run (the
# pushes go to different repositories). Prints the median wall time per
# side and scenario and the ratio rootless/root, and checks that both sides
# pushed images with the same layers count (the workload's RUN writes a
# tar | gzip, so its digests differ between any two builds, root or not;
# test_rootless.sh compares digests). Not a test.
#
# Environment: ROUNDS (3), FILES (3000), BIG_MIB (32), BENCH_USER (default
# plait-bench: created with a subuid/subgid range and removed at the end; an
# existing user given here is used as it is). Results also go to
# bench/out/rootless.txt. Needs root, useradd, runuser, newuidmap
# (Debian's uidmap), docker-registry, skopeo, curl, python3.
set -Eeuo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=$(cd "$BENCH_DIR/.." && pwd)
PLAIT=${1:-${PLAIT:-$SRCDIR/build/cmd/plait}}
case "$PLAIT" in /*) ;; *) PLAIT=$PWD/$PLAIT ;; esac
ROUNDS=${ROUNDS:-3}
FILES=${FILES:-3000}
BIG_MIB=${BIG_MIB:-32}
EPOCH=1700000000

# shellcheck source=../tests/integration/lib.sh
source "$SRCDIR/tests/integration/lib.sh"
require_cmd docker-registry skopeo curl jq bc useradd userdel runuser newuidmap
[ "$(id -u)" = 0 ] || skip "the benchmark creates a user and builds as root too"
[ -x "$PLAIT" ] || fail "plait binary '$PLAIT' not found; run 'make' first or pass its path"
OUTDIR=$SRCDIR/bench/out
mkdir -p "$OUTDIR"

U=${BENCH_USER:-}
made_user=
if [ -z "$U" ]; then
	U=plait-bench
	if ! id "$U" >/dev/null 2>&1; then
		useradd -m -s /bin/sh -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$U"
		made_user=1
		usermod --add-subuids 3300000-3365535 --add-subgids 3300000-3365535 "$U"
	fi
fi
trap 'rc=$?; [ -n "$made_user" ] && { userdel -r "$U" >/dev/null 2>&1; sed -i "/^$U:/d" /etc/subuid /etc/subgid; }; (exit $rc); lib_cleanup' EXIT
chmod 755 "$T"
mkdir -p "$T/u"
chown "$U" "$T/u"

registry_start R plain
bash "$LIB_DIR/mkbase.sh" "$T/base" busybox >/dev/null
skopeo_reg copy -q "oci:$T/base:busybox" "docker://$R_HOST/bench/base:1"
BASE=$R_HOST/bench/base:1
"$PY" "$BENCH_DIR/build/gen-context.py" "$T/ctx" "$FILES" "$BIG_MIB"
chmod -R a+rX "$T/ctx"

# one WHO SCENARIO ROUND : time one build + push; appends "WHO SCEN SECONDS".
one() {
	local who=$1 scen=$2 r=$3 cache t0 t1
	local cmd=("$PLAIT" build --progress plain --build-arg "BASE=$BASE" --source-date-epoch $EPOCH
		-t "$R_HOST/bench/$who:r$r-$scen" --push)
	t0=$(date +%s.%N)
	if [ "$who" = root ]; then
		"${cmd[@]}" --cache-dir "$T/root-$r" "$T/ctx" >"$T/$who-$scen-$r.log" 2>&1 ||
			fail "root build failed: $(tail -n 5 "$T/$who-$scen-$r.log")"
	else
		runuser -u "$U" -- env HOME="$T/u" "${cmd[@]}" --cache-dir "$T/u/cache-$r" "$T/ctx" \
			>"$T/$who-$scen-$r.log" 2>&1 || fail "rootless build failed: $(tail -n 5 "$T/$who-$scen-$r.log")"
	fi
	t1=$(date +%s.%N)
	echo "$who $scen $(echo "$t1 - $t0" | bc -l)" >>"$T/results"
}

: >"$T/results"
for ((r = 1; r <= ROUNDS; r++)); do
	order="root user"
	[ $((r % 2)) = 0 ] && order="user root"
	for scen in cold warm; do
		for who in $order; do
			one "$who" "$scen" "$r"
		done
	done
	# The workload is not reproducible even root against root (its RUN makes
	# a tar | gzip inside the image), so digests are not compared here;
	# tests/integration/test_rootless.sh compares them on contexts that are.
	n_root=$(skopeo_reg inspect --raw "docker://$R_HOST/bench/root:r$r-cold" | jq '.layers | length')
	n_user=$(skopeo_reg inspect --raw "docker://$R_HOST/bench/user:r$r-cold" | jq '.layers | length')
	assert_eq "$n_root" "$n_user" "layers of round $r's root and rootless images"
done

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
{
	echo "# plait build --push of bench/build ($FILES files, ${BIG_MIB} MiB asset), root vs rootless ($U), $ROUNDS rounds, medians"
	printf '%-6s %9s %9s %8s\n' scen root rootless ratio
	for scen in cold warm; do
		a=$(awk -v s=$scen '$1 == "root" && $2 == s { print $3 }' "$T/results" | median)
		b=$(awk -v s=$scen '$1 == "user" && $2 == s { print $3 }' "$T/results" | median)
		printf '%-6s %8.2fs %8.2fs %8.2f\n' "$scen" "$a" "$b" "$(echo "$b / $a" | bc -l)"
	done
} | tee "$OUTDIR/rootless.txt"
