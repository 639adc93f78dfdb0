#!/usr/bin/env bash
# bench/copy.sh [PLAIT] - registry-to-registry copy benchmark (not a test).
#
# Builds a ~1 GiB multi-platform image (PLATFORMS x LAYERS x LAYER_SIZE of
# incompressible data, cached in bench/out/ since it is deterministic),
# pushes it into a local docker-registry with skopeo, then runs ROUNDS
# rounds of `plait copy --all` and `skopeo copy --all` into a second local
# registry (alternating which goes first). Every run gets a freshly started
# destination registry with empty storage, so no blob can be skipped or
# mounted. Reports the median wall time of each tool, the ratio plait/skopeo
# and plait's peak RSS against the targets (ratio <= 0.7, RSS <= 64 MiB).
#
# Environment: ROUNDS (3), PLATFORMS ("linux/amd64 linux/arm64"), LAYERS (4),
# LAYER_SIZE (128M), PLAIT_ARGS (extra options for plait copy),
# STRICT=1 (exit 1 when a target is missed). Results also go to
# bench/out/copy.txt.
set -Eeuo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=$(cd "$BENCH_DIR/.." && pwd)
PLAIT=${1:-${PLAIT:-$SRCDIR/build/cmd/plait}}
case "$PLAIT" in /*) ;; *) PLAIT=$PWD/$PLAIT ;; esac
ROUNDS=${ROUNDS:-3}
PLATFORMS=${PLATFORMS:-linux/amd64 linux/arm64}
LAYERS=${LAYERS:-4}
LAYER_SIZE=${LAYER_SIZE:-128M}
PLAIT_ARGS=${PLAIT_ARGS:-}
TARGET_RATIO=0.7
TARGET_RSS_MIB=64

# shellcheck source=../tests/integration/lib.sh
source "$SRCDIR/tests/integration/lib.sh"
require_cmd skopeo docker-registry curl
[ -x /usr/bin/time ] || skip "/usr/bin/time is missing (Debian package 'time')"
[ -x "$PLAIT" ] || fail "plait binary '$PLAIT' not found; build it or pass its path"

OUTDIR=$SRCDIR/bench/out
mkdir -p "$OUTDIR"
plat_args=()
for p in $PLATFORMS; do plat_args+=(--platform "$p"); done
key=$(echo "$PLATFORMS $LAYERS $LAYER_SIZE" | sha256sum | cut -c1-12)
IMG=$OUTDIR/img-$key
if [ ! -f "$IMG/index.json" ]; then
	echo "# building the image ($PLATFORMS, $LAYERS x $LAYER_SIZE each) in $IMG"
	rm -rf "$IMG.tmp"
	mkimage "$IMG.tmp" --tag bench --seed bench "${plat_args[@]}" \
		--layers "$LAYERS" --layer-size "$LAYER_SIZE" >/dev/null
	mv "$IMG.tmp" "$IMG"
fi
size_mib=$(du -sm "$IMG/blobs" | cut -f1)

registry_start SRC plain
echo "# pushing ${size_mib} MiB into the source registry $SRC_HOST"
skopeo_reg copy -q --all "oci:$IMG:bench" "docker://$SRC_HOST/bench/img:1"
want=$(raw_digest "docker://$SRC_HOST/bench/img:1")

# one_run TOOL ROUND : copy into a fresh destination registry, append
# "TOOL SECONDS RSS_KIB CLIENT_CPU SRC_REGISTRY_CPU DST_REGISTRY_CPU" (CPU
# in seconds, user + system) to $T/results.
one_run() {
	local tool=$1 r=$2 name=DST$2$1
	registry_start "$name" plain
	local hv=${name}_HOST pv=${name}_PID dv=${name}_DIR
	local dst=${!hv}/bench/$tool-r$r:1
	local cmd
	if [ "$tool" = floor ]; then
		# The least any client can do: upload the image's blobs from local
		# files with curl (no pull, no verification), 4 at a time, as
		# monolithic POST + PUT. The destination registry's own work
		# (hashing, writing) sets this floor.
		cmd=(bash "$BENCH_DIR/upload-floor.sh" "$IMG" "${!hv}" "bench/floor-r$r")
	elif [ "$tool" = plait ]; then
		# shellcheck disable=SC2206
		cmd=("$PLAIT" copy --all $PLAIT_ARGS "$SRC_HOST/bench/img:1" "$dst")
	else
		cmd=(skopeo copy -q --all --src-tls-verify=false --dest-tls-verify=false
			"docker://$SRC_HOST/bench/img:1" "docker://$dst")
	fi
	local s0 d0
	s0=$(cpu_ticks "$SRC_PID")
	d0=$(cpu_ticks "${!pv}")
	if ! /usr/bin/time -f '%e %M %U %S' -o "$T/time.out" "${cmd[@]}" \
		>"$T/$tool-r$r.out" 2>&1; then
		cat "$T/$tool-r$r.out" >&2
		fail "$tool copy failed in round $r: ${cmd[*]}"
	fi
	local s1 d1
	s1=$(cpu_ticks "$SRC_PID")
	d1=$(cpu_ticks "${!pv}")
	local got
	if [ "$tool" != floor ]; then
		got=$(raw_digest "docker://$dst")
		assert_eq "$want" "$got" "$tool round $r: index digest at the destination"
	fi
	tail -n 1 "$T/time.out" | awk -v tool="$tool" -v s=$((s1 - s0)) -v d=$((d1 - d0)) -v hz="$HZ" \
		'{ printf "%s %s %s %.2f %.2f %.2f\n", tool, $1, $2, $3 + $4, s / hz, d / hz }' >>"$T/results"
	echo "# round $r $tool: $(tail -n 1 "$T/time.out" | awk '{printf "%.2f s, %.1f MiB RSS", $1, $2/1024}')"
	kill "${!pv}" 2>/dev/null || true
	wait "${!pv}" 2>/dev/null || true
	rm -rf "${!dv}"
}

# cpu_ticks PID : user + system time of a process so far, in clock ticks.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}
HZ=$(getconf CLK_TCK)
: >"$T/results"
for r in $(seq 1 "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then
		one_run plait "$r"
		one_run skopeo "$r"
	else
		one_run skopeo "$r"
		one_run plait "$r"
	fi
	one_run floor "$r"
done

rc=0
"$PY" - "$T/results" "$TARGET_RATIO" "$TARGET_RSS_MIB" "$size_mib" "$ROUNDS" "$(nproc)" \
	<<'EOF' | tee "$OUTDIR/copy.txt" || rc=$?
import statistics, sys
res, ratio_t, rss_t, size, rounds, cores = (sys.argv[1], float(sys.argv[2]), float(sys.argv[3]),
                                            sys.argv[4], sys.argv[5], int(sys.argv[6]))
tools = ("plait", "skopeo", "floor")
t = {k: [] for k in tools}
rss = {k: [] for k in tools}
cpu = {k: [] for k in tools}  # (client, source registry, destination registry)
for line in open(res):
    tool, sec, kib, c, s, d = line.split()
    t[tool].append(float(sec))
    rss[tool].append(int(kib) / 1024)
    cpu[tool].append((float(c), float(s), float(d)))
med = {k: statistics.median(v) for k, v in t.items()}
mp, ms, mf = med["plait"], med["skopeo"], med["floor"]
ratio = mp / ms if ms else float("inf")
peak = max(rss["plait"])
print(f"image: {size} MiB, {rounds} rounds, {cores} cores")
print(f"{'':7}{'median s':>9} {'peak RSS':>9}   CPU s (medians): {'client':>7} {'src reg':>8} {'dst reg':>8}")
for k, what in (("plait", ""), ("skopeo", ""),
                ("floor", "  (curl uploads the blobs from local files)")):
    c = [statistics.median(x[i] for x in cpu[k]) for i in range(3)]
    print(f"{k:<7}{med[k]:9.2f} {max(rss[k]):7.1f}Mi   {'':17}{c[0]:7.2f} {c[1]:8.2f} {c[2]:8.2f}{what}")
dst = statistics.median(x[2] for x in cpu["floor"])
print(f"the destination registry alone burns {dst:.2f} s of CPU storing the image "
      f"({dst / cores:.2f} s of wall time on {cores} cores at best); the floor, which neither "
      f"downloads nor checks a digest, takes {mf / ms:.2f} x skopeo's time")
ok_r = ratio <= ratio_t
ok_m = peak <= rss_t
print(f"ratio plait/skopeo {ratio:.2f} (target <= {ratio_t}): {'MET' if ok_r else 'MISSED'}")
print(f"plait peak RSS {peak:.1f} MiB (target <= {rss_t:.0f} MiB): {'MET' if ok_m else 'MISSED'}")
sys.exit(0 if ok_r and ok_m else 3)
EOF
if [ "$rc" = 3 ] && [ "${STRICT:-0}" = 1 ]; then
	exit 1
fi
[ "$rc" = 0 ] || [ "$rc" = 3 ] || exit 1
exit 0
