#!/usr/bin/env bash
# bench/build.sh [PLAIT] - `plait build --push` against `buildah build
# --layers` + `buildah push` (not a test).
#
# Both build the same multi-stage Dockerfile (bench/build/Dockerfile: a few
# thousand small files, a 32 MiB incompressible layer, several COPY and RUN
# steps, COPY --from) FROM an offline busybox base in a local
# docker-registry, and push the result into that registry. Each round gets a
# fresh registry (the base pushed into it untimed) and runs, alternating
# which tool goes first (odd rounds plait, even rounds buildah):
#   cold         empty plait cache dir / empty buildah storage root
#   warm         the same again, nothing changed (same caches)
#   incremental  one source file changed (src/app/main.txt, COPY'd late)
# Every timed run includes the push. Reports the median wall time per tool
# and scenario and the ratio plait/buildah against the targets (cold <= 0.6,
# warm <= 0.25, incremental <= 0.5).
#
# Multi-platform mode (MULTI=1, or PLATFORMS=linux/amd64,linux/arm64 or any
# list of two or more): the base is an image index for every platform
# (tests/integration/mkbase.sh; the foreign arches' busybox-static .debs are
# downloaded with apt-get, their QEMU handlers registered with `plait qemu
# install`), and each timed run is
#   plait:   plait build --platform LIST -t REG/... --push  (platforms in
#            parallel, foreign ones under QEMU)
#   buildah: buildah build --platform LIST --jobs 2 --layers --manifest NAME
#            then buildah manifest push --all NAME docker://REG/...
# Both pushes are checked to be an index with one entry per platform, in
# order. Results go to bench/out/build-multi.txt instead.
#
# buildah is hermetic (own --root/--runroot under $T, no system registries
# or policy, --isolation chroot), like tests/integration/test_build_diff.sh.
# (`buildah manifest push` has no --signature-policy: it reads the system's
# /etc/containers/policy.json.)
# Its storage driver is overlay where that works here (its usual, fast
# setup) and vfs otherwise; BUILDAH_DRIVER=vfs|overlay forces one. Note:
# buildah as root keeps its blob-info cache in /var/lib/containers/cache;
# each round's registry has a new port, so nothing learnt there carries over.
#
# Environment: ROUNDS (3), FILES (3000 small files; at least 1000: the last
# RUN checks it), BIG_MIB (32), BUILDAH_DRIVER, PLAIT_ARGS (extra options for plait build),
# MULTI=1 / PLATFORMS, BUILDAH_JOBS (buildah --jobs in multi mode, 2),
# STRICT=1 (exit 1 when a target is missed). Results also go to
# bench/out/build.txt (bench/out/build-multi.txt in multi mode).
# Needs root (buildah and plait RUN sandboxes), buildah, skopeo,
# docker-registry, curl, python3; multi mode also apt-get (or the .debs in
# /var/cache/apt/archives), dpkg-deb and qemu-user-static.
set -Eeuo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=$(cd "$BENCH_DIR/.." && pwd)
PLAIT=${1:-${PLAIT:-$SRCDIR/build/cmd/plait}}
case "$PLAIT" in /*) ;; *) PLAIT=$PWD/$PLAIT ;; esac
ROUNDS=${ROUNDS:-3}
PLATFORMS=${PLATFORMS:-}
if [ -z "$PLATFORMS" ] && [ "${MULTI:-0}" = 1 ]; then
	PLATFORMS=linux/amd64,linux/arm64
fi
MULTI=0
case "$PLATFORMS" in
*,*) MULTI=1 ;;
*) PLATFORMS= ;; # one platform: the host's, as before
esac
FILES=${FILES:-3000}
BUILDAH_JOBS=${BUILDAH_JOBS:-2}
BIG_MIB=${BIG_MIB:-32}
PLAIT_ARGS=${PLAIT_ARGS:-}
BUILDAH_DRIVER=${BUILDAH_DRIVER:-}

# shellcheck source=../tests/integration/lib.sh
source "$SRCDIR/tests/integration/lib.sh"
# shellcheck source=lib.sh
source "$BENCH_DIR/lib.sh"
require_cmd buildah skopeo docker-registry curl
[ "$(id -u)" = 0 ] || skip "buildah --isolation chroot and plait's RUN sandbox need root here"
[ -x "$PLAIT" ] || fail "plait binary '$PLAIT' not found; run 'make' first or pass its path"

[ "$FILES" -ge 1000 ] || fail "FILES=$FILES: the workload's last RUN needs at least 1000 files"
OUTDIR=$SRCDIR/bench/out
mkdir -p "$OUTDIR"
OUTFILE=$OUTDIR/build.txt
[ "$MULTI" = 1 ] && OUTFILE=$OUTDIR/build-multi.txt

bench_trap
buildah_setup

CTX=$T/ctx
"$PY" "$BENCH_DIR/build/gen-context.py" "$CTX" "$FILES" "$BIG_MIB"
ctx_mib=$(du -sm "$CTX" | cut -f1)
MAIN=$CTX/src/app/main.txt
make_base "$T/base" "${PLATFORMS:-}"
echo "# context: $ctx_mib MiB, $((FILES + 1)) source files, ${BIG_MIB} MiB asset; buildah storage: $BUILDAH_DRIVER${PLATFORMS:+; platforms: $PLATFORMS}"

# check_index TOOL REF : in multi mode, REF must be an index of $PLATFORMS;
# plait's in --platform order, buildah's in any (its --jobs add them to the
# list as they finish).
check_index() {
	[ "$MULTI" = 1 ] || return 0
	local got
	got=$(skopeo_reg inspect --raw "docker://$2" | "$PY" -c '
import json, sys
m = json.load(sys.stdin)
out = []
for d in m.get("manifests", []):
    p = d.get("platform", {})
    if p.get("architecture") == "unknown":
        continue  # attestation manifests
    s = p.get("os", "") + "/" + p.get("architecture", "")
    if p.get("variant") and p.get("architecture") != "arm64":
        s += "/" + p["variant"]
    out.append(s)
if sys.argv[1] != "plait":
    out.sort()
print(",".join(out))' "$1")
	local want=$PLATFORMS
	[ "$1" = plait ] || want=$(tr , '\n' <<<"$PLATFORMS" | LC_ALL=C sort | paste -sd,)
	assert_eq "$want" "$got" "platforms of the index $1 pushed to $2"
}

# one_run TOOL SCENARIO ROUND : build + push, append "TOOL SCENARIO SECONDS"
# to $T/results and remember the pushed digest in $T/digest-TOOL-SCENARIO-ROUND.
one_run() {
	local tool=$1 scen=$2 r=$3
	local log=$T/$tool-$scen-r$r.log ref
	# shellcheck disable=SC2206
	local pcmd=("$PLAIT" build --progress plain --cache-dir "$T/pc-$r" $PLAIT_ARGS
		${PLATFORMS:+--platform "$PLATFORMS"}
		--build-arg "BASE=$BASE" -t "$HOST/bench/plait:$scen" --push "$CTX")
	local bcmd=(bah "$T/b-$r" build -q --isolation chroot --layers --tls-verify=false
		--signature-policy "$T/policy.json" --build-arg "BASE=$BASE"
		-t "localhost/bench/app:$scen" "$CTX")
	local pushcmd=(bah "$T/b-$r" push -q --tls-verify=false --authfile "$T/buildah-auth.json"
		--signature-policy "$T/policy.json" "localhost/bench/app:$scen"
		"docker://$HOST/bench/buildah:$scen")
	if [ "$MULTI" = 1 ]; then
		# A list per scenario: --manifest adds to an existing list, so one
		# name for all three would push the earlier scenarios' images too.
		bcmd=(bah "$T/b-$r" build -q --isolation chroot --layers --tls-verify=false
			--signature-policy "$T/policy.json" --build-arg "BASE=$BASE"
			--platform "$PLATFORMS" --jobs "$BUILDAH_JOBS"
			--manifest "localhost/bench/app-$scen" "$CTX")
		pushcmd=(bah "$T/b-$r" manifest push -q --all --tls-verify=false
			--authfile "$T/buildah-auth.json" "localhost/bench/app-$scen"
			"docker://$HOST/bench/buildah:$scen")
	fi
	local t0 t1 ok=1
	t0=$(date +%s.%N)
	if [ "$tool" = plait ]; then
		"${pcmd[@]}" >"$log" 2>&1 || ok=0
		ref=$HOST/bench/plait:$scen
	else
		{ "${bcmd[@]}" && "${pushcmd[@]}"; } >"$log" 2>&1 || ok=0
		ref=$HOST/bench/buildah:$scen
	fi
	t1=$(date +%s.%N)
	if [ "$ok" = 0 ]; then
		tail -n 30 "$log" >&2
		fail "$tool $scen build + push failed in round $r (log above)"
	fi
	local secs
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	echo "$tool $scen $secs" >>"$T/results"
	raw_digest "docker://$ref" >"$T/digest-$tool-$scen-$r"
	check_index "$tool" "$ref"
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
	# Each round starts from the generated main.txt (cold is cold either way,
	# but the same input keeps the rounds comparable).
	printf '// the entry point\nversion 0\n' >"$MAIN"
	touch -d @1600000000 "$MAIN"
	for scen in cold warm incremental; do
		if [ "$scen" = incremental ]; then
			printf '// the entry point\nversion %d\n' "$r" >"$MAIN"
		fi
		for tool in "${order[@]}"; do
			one_run "$tool" "$scen" "$r"
		done
	done
	for tool in plait buildah; do
		w=$(cat "$T/digest-$tool-warm-$r") i=$(cat "$T/digest-$tool-incremental-$r")
		assert_ne "$w" "$i" "round $r $tool: the incremental image must differ from the warm one"
	done
	kill "${!pv}" 2>/dev/null || true
	wait "${!pv}" 2>/dev/null || true
	umount_under "$T/b-$r"
	rm -rf "${!dv}" "$T/pc-$r" "$T/b-$r"
done

rc=0
"$PY" - "$T/results" "$ROUNDS" "$BUILDAH_DRIVER" "$FILES" "$BIG_MIB" "$PLATFORMS" "$BUILDAH_JOBS" \
	<<'EOF' | tee "$OUTFILE" || rc=$?
import statistics, sys
res, rounds, driver, files, big, platforms, jobs = sys.argv[1:8]
targets = {"cold": 0.6, "warm": 0.25, "incremental": 0.5}
t = {}
for line in open(res):
    tool, scen, sec = line.split()
    t.setdefault((tool, scen), []).append(float(sec))
print(f"workload: bench/build/Dockerfile, {files} small files + a {big} MiB layer, "
      f"{rounds} rounds, build + push; buildah storage driver: {driver}")
if "," in platforms:
    print(f"platforms: {platforms} (one index pushed per run); plait build --platform, "
          f"buildah build --platform --jobs {jobs} --layers --manifest + manifest push --all")
print(f"{'scenario':<12} {'plait s':>9} {'buildah s':>10} {'ratio':>7} {'target':>8}")
ok = True
for scen, target in targets.items():
    mp = statistics.median(t[("plait", scen)])
    mb = statistics.median(t[("buildah", scen)])
    ratio = mp / mb if mb else float("inf")
    met = ratio <= target
    ok = ok and met
    print(f"{scen:<12} {mp:9.2f} {mb:10.2f} {ratio:7.2f} {'<= ' + str(target):>8}  "
          f"{'MET' if met else 'MISSED'}")
sys.exit(0 if ok else 3)
EOF
if [ "$rc" = 3 ] && [ "${STRICT:-0}" = 1 ]; then
	exit 1
fi
[ "$rc" = 0 ] || [ "$rc" = 3 ] || exit 1
exit 0
