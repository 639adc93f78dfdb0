#!/usr/bin/env bash
# bench/ci-cache.sh [PLAIT] - a fresh CI runner with a shared build cache
# against a cold build, for plait and for buildah, in the same run (not a test).
#
# The workload is bench/build.sh's (bench/build/Dockerfile, a generated
# context), FROM an offline busybox base in a local docker-registry; every
# timed run pushes its image there. Each round gets a fresh registry and
# alternates which tool goes first:
#   cold   an empty cache dir (plait) / storage root (buildah), writing the
#          cache: plait --cache-to type=registry,ref=REG/bench/pcache:1,mode=max,
#          buildah --layers --cache-to REG/bench/bcache
#   fresh  another empty cache dir / storage root, reading it: plait
#          --cache-from type=registry,ref=REG/bench/pcache:1, buildah --layers
#          --cache-from REG/bench/bcache (the runner of the next CI job)
# The fresh plait build must run no RUN step and give the cold one's digest
# (same --source-date-epoch). Targets (issue 12): plait fresh <= 0.15 x plait
# cold, and <= 0.5 x buildah fresh. Results also go to bench/out/ci-cache.txt.
# Environment: ROUNDS (3), FILES (3000), BIG_MIB (32), BUILDAH_DRIVER
# (overlay where it works, else vfs). Needs root, buildah, skopeo,
# docker-registry, curl, python3.
set -Eeuo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=$(cd "$BENCH_DIR/.." && pwd)
PLAIT=${1:-${PLAIT:-$SRCDIR/build/cmd/plait}}
case "$PLAIT" in /*) ;; *) PLAIT=$PWD/$PLAIT ;; esac
ROUNDS=${ROUNDS:-3}
FILES=${FILES:-3000}
BIG_MIB=${BIG_MIB:-32}
BUILDAH_DRIVER=${BUILDAH_DRIVER:-}
EPOCH=1700000000

# shellcheck source=../tests/integration/lib.sh
source "$SRCDIR/tests/integration/lib.sh"
# shellcheck source=lib.sh
source "$BENCH_DIR/lib.sh"
require_cmd buildah skopeo docker-registry curl
[ "$(id -u)" = 0 ] || skip "buildah --isolation chroot and plait's RUN sandbox need root here"
[ -x "$PLAIT" ] || fail "plait binary '$PLAIT' not found; run 'make' first or pass its path"
OUTDIR=$SRCDIR/bench/out
mkdir -p "$OUTDIR"

bench_trap
buildah_setup

CTX=$T/ctx
"$PY" "$BENCH_DIR/build/gen-context.py" "$CTX" "$FILES" "$BIG_MIB"
bash "$SRCDIR/tests/integration/mkbase.sh" "$T/base" busybox >/dev/null

# one_run TOOL SCENARIO ROUND : timed build + push; "TOOL SCENARIO SECONDS" to $T/results.
one_run() {
	local tool=$1 scen=$2 r=$3 log=$T/$1-$2-r$3.log t0 t1 ok=1
	t0=$(date +%s.%N)
	if [ "$tool" = plait ]; then
		local cache=(--cache-to "type=registry,ref=$HOST/bench/pcache:1,mode=max")
		[ "$scen" = fresh ] && cache=(--cache-from "type=registry,ref=$HOST/bench/pcache:1")
		"$PLAIT" build --progress json --cache-dir "$T/pc-$scen-$r" --source-date-epoch "$EPOCH" \
			--build-arg "BASE=$BASE" -t "$HOST/bench/plait:$scen" --push "${cache[@]}" "$CTX" >"$log" 2>&1 || ok=0
	else
		local cache=(--cache-to "$HOST/bench/bcache")
		[ "$scen" = fresh ] && cache=(--cache-from "$HOST/bench/bcache")
		{ bah "$T/b-$scen-$r" build -q --isolation chroot --layers --tls-verify=false \
			--signature-policy "$T/policy.json" --build-arg "BASE=$BASE" "${cache[@]}" \
			-t "localhost/bench/app:$scen" "$CTX" &&
			bah "$T/b-$scen-$r" push -q --tls-verify=false --authfile "$T/buildah-auth.json" \
				--signature-policy "$T/policy.json" "localhost/bench/app:$scen" \
				"docker://$HOST/bench/buildah:$scen"; } >"$log" 2>&1 || ok=0
	fi
	t1=$(date +%s.%N)
	[ "$ok" = 1 ] || { tail -n 30 "$log" >&2; fail "$tool $scen failed in round $r (log above)"; }
	local secs
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	echo "$tool $scen $secs" >>"$T/results"
	echo "# round $r $scen $tool: $secs s"
}

: >"$T/results"
for r in $(seq 1 "$ROUNDS"); do
	name=R$r
	registry_start "$name" plain
	hv=${name}_HOST pv=${name}_PID dv=${name}_DIR
	HOST=${!hv}
	skopeo_reg copy -q --all "oci:$T/base:busybox" "docker://$HOST/base/busybox:1"
	BASE=$HOST/base/busybox:1
	order=(plait buildah)
	[ $((r % 2)) = 1 ] || order=(buildah plait)
	for scen in cold fresh; do
		for tool in "${order[@]}"; do
			one_run "$tool" "$scen" "$r"
		done
	done
	grep -q '"event":"output"' "$T/plait-fresh-r$r.log" && fail "round $r: the fresh plait runner ran a RUN step"
	assert_eq "$(raw_digest "docker://$HOST/bench/plait:cold")" "$(raw_digest "docker://$HOST/bench/plait:fresh")" \
		"round $r: digest of the fresh runner's image vs the cold one's"
	kill "${!pv}" 2>/dev/null || true
	wait "${!pv}" 2>/dev/null || true
	umount_under "$T"
	rm -rf "${!dv}" "$T"/pc-*-"$r" "$T"/b-*-"$r"
done

"$PY" - "$T/results" "$ROUNDS" "$BUILDAH_DRIVER" "$FILES" "$BIG_MIB" <<'PYEOF' | tee "$OUTDIR/ci-cache.txt"
import statistics, sys
res, rounds, driver, files, big = sys.argv[1:6]
t = {}
for line in open(res):
    tool, scen, sec = line.split()
    t.setdefault((tool, scen), []).append(float(sec))
m = {k: statistics.median(v) for k, v in t.items()}
print(f"workload: bench/build/Dockerfile, {files} small files + a {big} MiB layer, {rounds} rounds, "
      f"build + push, shared cache in the same registry; buildah storage driver: {driver}")
print(f"{'':<8} {'cold s':>8} {'fresh s':>8} {'fresh/cold':>11}")
for tool in ("plait", "buildah"):
    print(f"{tool:<8} {m[(tool, 'cold')]:8.2f} {m[(tool, 'fresh')]:8.2f} {m[(tool, 'fresh')] / m[(tool, 'cold')]:11.2f}")
a = m[("plait", "fresh")] / m[("plait", "cold")]
b = m[("plait", "fresh")] / m[("buildah", "fresh")]
print(f"plait fresh / plait cold   = {a:.2f} (target <= 0.15: {'MET' if a <= 0.15 else 'MISSED'})")
print(f"plait fresh / buildah fresh = {b:.2f} (target <= 0.5: {'MET' if b <= 0.5 else 'MISSED'})")
PYEOF
