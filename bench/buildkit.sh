#!/usr/bin/env bash
# bench/buildkit.sh [PLAIT] - `plait build --push` against BuildKit, the tool
# most users would pick instead: `DOCKER_BUILDKIT=1 docker build` + `docker
# push` on a private dockerd (Debian's docker.io, 20.10, with its embedded
# BuildKit) that this script starts and stops by PID (not a test).
#
# Workloads (WORKLOADS, comma-separated, all by default):
#   build   bench/build/Dockerfile (bench/build.sh's: a two-stage build, a few
#           thousand small files, a 32 MiB incompressible layer), one platform
#           (the host's)
#   build2  the same for two platforms, the host's and FOREIGN (linux/arm64,
#           under QEMU): plait build --platform A,B --push (one index); docker:
#           both `docker build --platform P` + `docker push` at once (as a user
#           would), then `docker manifest create` + `docker manifest push`
#   ml      bench/ml/Dockerfile, the "ML layer": a RUN that writes RUN_MIB
#           (2048) MiB, half incompressible and half text-like, a COPY of a
#           MODEL_MIB (512) MiB model file from the context, a small source
#           file COPY'd last; one platform
# Scenarios, per workload: cold (empty plait cache; `docker builder prune -af`
# and no images in dockerd), warm (nothing changed), incremental (one source
# file changed: src/app/main.txt, app.py). Each round gets a fresh registry
# (the base pushed into it untimed); rounds alternate which tool goes first;
# every timed run includes the push. After each round, every pushed result is
# checked (untimed): a manifest for the host's platform or an index of both
# platforms, in order for plait; and the image runs in dockerd (`docker run
# --platform P REF@DIGEST`, its CMD prints what the build made; ml: in the
# first round only, its images being gigabytes). Prints medians per tool and
# scenario, the ratio plait/BuildKit against the targets of issue 13, and
# plait's peak RSS (from /usr/bin/time) per workload.
#
# Environment: ROUNDS (3), WORKLOADS (build,build2,ml), FOREIGN
# (linux/arm64), FILES (3000), BIG_MIB (32), RUN_MIB (2048), MODEL_MIB (512),
# PLAIT_ARGS (extra options for plait build), DOCKER (the docker client:
# /usr/bin/docker, Debian's, matching its dockerd), STRICT=1 (exit 1 when a
# target is missed). Results also go to bench/out/buildkit.txt.
# Needs root, docker.io (dockerd, containerd, runc), skopeo, docker-registry,
# curl, python3, time; build2 also qemu-user-static and apt-get (the foreign
# busybox-static .deb).
set -Eeuo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=$(cd "$BENCH_DIR/.." && pwd)
PLAIT=${1:-${PLAIT:-$SRCDIR/build/cmd/plait}}
case "$PLAIT" in /*) ;; *) PLAIT=$PWD/$PLAIT ;; esac
ROUNDS=${ROUNDS:-3}
WORKLOADS=${WORKLOADS:-build,build2,ml}
FOREIGN=${FOREIGN:-linux/arm64}
FILES=${FILES:-3000}
BIG_MIB=${BIG_MIB:-32}
RUN_MIB=${RUN_MIB:-2048}
MODEL_MIB=${MODEL_MIB:-512}
PLAIT_ARGS=${PLAIT_ARGS:-}

# shellcheck source=../tests/integration/lib.sh
source "$SRCDIR/tests/integration/lib.sh"
# shellcheck source=lib.sh
source "$BENCH_DIR/lib.sh"
require_cmd skopeo docker-registry curl
[ -x /usr/bin/time ] || fail "/usr/bin/time not found: apt-get install time"
[ "$(id -u)" = 0 ] || skip "dockerd and plait's RUN sandbox need root here"
[ -x "$PLAIT" ] || fail "plait binary '$PLAIT' not found; run 'make' first or pass its path"
[ "$FILES" -ge 1000 ] || fail "FILES=$FILES: the build workload's last RUN needs at least 1000 files"
IFS=, read -r -a WL <<<"$WORKLOADS"
for w in "${WL[@]}"; do
	case "$w" in build | build2 | ml) ;; *) fail "WORKLOADS: unknown workload '$w' (build, build2, ml)" ;; esac
done
OUTDIR=$SRCDIR/bench/out
mkdir -p "$OUTDIR"
HOSTPLAT=linux/$(dpkg --print-architecture)
case "$HOSTPLAT" in linux/amd64 | linux/arm64) ;; *) fail "host platform $HOSTPLAT: only amd64 and arm64 hosts are set up" ;; esac

# ---- the private dockerd (tests/integration/lib.sh: dockerd_start, dk, dockerd_stop)
BENCH_CLEANUP_HOOK=dockerd_stop
bench_trap
dockerd_start
echo "# $(dk version --format 'dockerd {{.Server.Version}}, client {{.Client.Version}}'), storage $(dk info --format '{{.Driver}}')"

# ---- contexts and the base
has() { [[ ",$WORKLOADS," == *",$1,"* ]]; }
if has build || has build2; then
	"$PY" "$BENCH_DIR/build/gen-context.py" "$T/ctx-build" "$FILES" "$BIG_MIB"
fi
if has ml; then
	mkdir -p "$T/ctx-ml"
	cp "$BENCH_DIR/ml/Dockerfile" "$T/ctx-ml/Dockerfile"
	head -c $((MODEL_MIB * 1048576)) /dev/urandom >"$T/ctx-ml/model.bin"
fi
PLATS2=$HOSTPLAT,$FOREIGN
[ "$FOREIGN" != "$HOSTPLAT" ] || fail "FOREIGN=$FOREIGN is the host's platform"
if has build2; then
	make_base "$T/base" "$PLATS2"
else
	make_base "$T/base"
fi
echo "# workloads: $WORKLOADS; $ROUNDS rounds; build: $FILES files + $BIG_MIB MiB; ml: RUN $RUN_MIB MiB + model $MODEL_MIB MiB"

ctx_of() { case "$1" in ml) echo "$T/ctx-ml" ;; *) echo "$T/ctx-build" ;; esac; }
plats_of() { case "$1" in build2) echo "$PLATS2" ;; *) echo "$HOSTPLAT" ;; esac; }
# set_source WORKLOAD VERSION : the file the incremental case changes. Version
# 0 (each round's start) gets a fixed time; an edit keeps the time of the
# write, as an editor's does: BuildKit's context transfer takes a file of the
# same size and time as unchanged, and would build stale content.
set_source() {
	local f=$T/ctx-build/src/app/main.txt
	[ "$1" != ml ] || f=$T/ctx-ml/app.py
	case "$1" in
	ml) printf 'print("model server, version %s")\n' "$2" >"$f" ;;
	*) printf '// the entry point\nversion %s\n' "$2" >"$f" ;;
	esac
	[ "$2" != 0 ] || touch -d @1600000000 "$f"
}
# What the image's CMD prints.
expect_out() { case "$1" in ml) cat "$T/ctx-ml/app.py" ;; *) echo built ;; esac; }

# cold_prepare TOOL WORKLOAD ROUND (untimed)
cold_prepare() {
	if [ "$1" = plait ]; then
		rm -rf "$T/pc-$2-$3"
	else
		dk builder prune -af >/dev/null
		local imgs
		imgs=$(dk image ls -aq)
		[ -z "$imgs" ] || dk image rm -f $imgs >/dev/null 2>&1 || true
		[ -z "$(dk image ls -aq)" ] || fail "dockerd still has images after the cold clean-up"
	fi
}

# docker_build WORKLOAD SCENARIO : build + push (+ manifest list) as a user would.
docker_build() {
	local wl=$1 scen=$2 ctx ref
	ctx=$(ctx_of "$wl")
	ref=$HOST/bench/$wl-buildkit:$scen
	local args=(build --progress plain --network host --build-arg "BASE=$BASE" --build-arg "RUN_MIB=$RUN_MIB")
	if [ "$wl" != build2 ]; then
		dk "${args[@]}" -t "$ref" "$ctx" && dk push "$ref"
		return
	fi
	local p refs=() pids=() rc=0
	IFS=, read -r -a ps <<<"$PLATS2"
	for p in "${ps[@]}"; do
		local r=$ref-${p//\//-}
		refs+=("$r")
		{ dk "${args[@]}" --platform "$p" -t "$r" "$ctx" && dk push "$r"; } &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	[ "$rc" = 0 ] || return 1
	dk manifest rm "$ref" >/dev/null 2>&1 || true
	dk manifest create --insecure "$ref" "${refs[@]}" && dk manifest push --insecure --purge "$ref"
}

# one_run TOOL WORKLOAD SCENARIO ROUND : timed; appends "TOOL WL SCEN SECONDS
# RSS_KIB" to $T/results and "TOOL WL SCEN REF@DIGEST" to $T/pushed-ROUND.
one_run() {
	local tool=$1 wl=$2 scen=$3 r=$4
	local log=$T/$tool-$wl-$scen-r$r.log ref ctx t0 t1 ok=1 rss=0
	ctx=$(ctx_of "$wl")
	[ "$scen" != cold ] || cold_prepare "$tool" "$wl" "$r"
	t0=$(date +%s.%N)
	if [ "$tool" = plait ]; then
		ref=$HOST/bench/$wl-plait:$scen
		local plats=()
		[ "$wl" != build2 ] || plats=(--platform "$PLATS2")
		# shellcheck disable=SC2086
		/usr/bin/time -f %M -o "$T/rss" "$PLAIT" build --progress plain --cache-dir "$T/pc-$wl-$r" \
			$PLAIT_ARGS "${plats[@]}" --build-arg "BASE=$BASE" --build-arg "RUN_MIB=$RUN_MIB" \
			-t "$ref" --push "$ctx" >"$log" 2>&1 || ok=0
		rss=$(tail -n 1 "$T/rss")
	else
		ref=$HOST/bench/$wl-buildkit:$scen
		docker_build "$wl" "$scen" >"$log" 2>&1 || ok=0
	fi
	t1=$(date +%s.%N)
	if [ "$ok" = 0 ]; then
		tail -n 30 "$log" >&2
		fail "$tool $wl $scen build + push failed in round $r (log above: $log)"
	fi
	local secs
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	echo "$tool $wl $scen $secs $rss" >>"$T/results"
	echo "$tool $wl $scen ${ref%:*}@sha256:$(raw_digest "docker://$ref")" >>"$T/pushed-$r"
	echo "# round $r $wl $scen $tool: $secs s"
}

# check_round ROUND : the shape of every pushed result, and that it runs.
check_round() {
	local r=$1 tool wl scen ref raw
	while read -r tool wl scen ref; do
		raw=$(skopeo_reg inspect --raw "docker://$ref")
		local want got
		want=$(plats_of "$wl")
		got=$("$PY" -c '
import json, sys
m = json.loads(sys.argv[1])
if "manifests" in m:
    out = [d["platform"]["os"] + "/" + d["platform"]["architecture"] for d in m["manifests"]
           if d.get("platform", {}).get("architecture") != "unknown"]
    if sys.argv[2] != "plait":
        out.sort()
    print(",".join(out))
else:
    print("manifest")' "$raw" "$tool")
		if [ "$wl" = build2 ]; then
			[ "$tool" = plait ] || want=$(tr , '\n' <<<"$want" | LC_ALL=C sort | paste -sd,)
		else
			want=manifest
		fi
		assert_eq "$want" "$got" "round $r $tool $wl $scen: the shape of $ref"
		[ "$wl" != ml ] || [ "$r" = 1 ] || continue
		local p
		IFS=, read -r -a ps <<<"$(plats_of "$wl")"
		for p in "${ps[@]}"; do
			local out img=$ref
			# An index's platform image by its own digest: dockerd 20.10 will
			# not pull one index digest for a second platform.
			if [ "$wl" = build2 ]; then
				img=${ref%@*}@$("$PY" -c '
import json, sys
m = json.loads(sys.argv[1])
print(next(d["digest"] for d in m["manifests"]
           if d["platform"]["os"] + "/" + d["platform"]["architecture"] == sys.argv[2]))' "$raw" "$p")
			fi
			dk pull -q --platform "$p" "$img" >"$T/pull.log" 2>&1 ||
				fail "round $r $tool $wl $scen: docker pull --platform $p $img: $(cat "$T/pull.log")"
			out=$(dk run --rm --network host --platform "$p" "$img" 2>"$T/run.err") ||
				fail "round $r $tool $wl $scen: $img does not run for $p: $(cat "$T/run.err")"
			dk image rm -f "$img" >/dev/null 2>&1 || true
			# Warm and cold print the first version; incremental the round's.
			local v=0
			[ "$scen" != incremental ] || v=$r
			set_source "$wl" "$v"
			assert_eq "$(expect_out "$wl")" "$out" "round $r $tool $wl $scen: what $img ($p) prints"
		done
		dk image rm -f "$ref" >/dev/null 2>&1 || true
	done <"$T/pushed-$r"
}

: >"$T/results"
for r in $(seq 1 "$ROUNDS"); do
	name=R$r
	registry_start "$name" plain
	hv=${name}_HOST pv=${name}_PID dv=${name}_DIR
	HOST=${!hv}
	skopeo_reg copy -q --all "oci:$T/base:busybox" "docker://$HOST/base/busybox:1"
	BASE=$HOST/base/busybox:1
	: >"$T/pushed-$r"
	order=(plait buildkit)
	[ $((r % 2)) = 1 ] || order=(buildkit plait)
	for wl in "${WL[@]}"; do
		set_source "$wl" 0
		for scen in cold warm incremental; do
			[ "$scen" != incremental ] || set_source "$wl" "$r"
			for tool in "${order[@]}"; do
				one_run "$tool" "$wl" "$scen" "$r"
			done
		done
	done
	for wl in "${WL[@]}"; do
		for tool in plait buildkit; do
			w=$(awk -v t="$tool" -v w="$wl" '$1 == t && $2 == w && $3 == "warm" { print $4 }' "$T/pushed-$r")
			i=$(awk -v t="$tool" -v w="$wl" '$1 == t && $2 == w && $3 == "incremental" { print $4 }' "$T/pushed-$r")
			assert_ne "${w#*@}" "${i#*@}" "round $r $tool $wl: the incremental image must differ from the warm one"
		done
	done
	check_round "$r"
	echo "# round $r: every result has the expected shape and runs"
	kill "${!pv}" 2>/dev/null || true
	wait "${!pv}" 2>/dev/null || true
	rm -rf "${!dv}" "$T"/pc-*-"$r"
done

rc=0
"$PY" - "$T/results" "$ROUNDS" "$FILES" "$BIG_MIB" "$RUN_MIB" "$MODEL_MIB" "$PLATS2" \
	"$(dk version --format '{{.Server.Version}}')" <<'EOF' | tee "$OUTDIR/buildkit.txt" || rc=$?
import statistics, sys
res, rounds, files, big, run_mib, model_mib, plats2, dver = sys.argv[1:9]
targets = {
    "build": {"cold": 0.6, "warm": 0.3, "incremental": 0.4},
    "build2": {"cold": 0.5, "warm": 0.25, "incremental": 0.3},
    "ml": {"cold": 0.25, "warm": 0.3, "incremental": 0.3},
}
names = {
    "build": f"build bench, one platform ({files} files + {big} MiB)",
    "build2": f"build bench, two platforms ({plats2})",
    "ml": f"ML layer ({run_mib} MiB RUN + {model_mib} MiB model)",
}
t, rss = {}, {}
for line in open(res):
    tool, wl, scen, sec, kib = line.split()
    t.setdefault((tool, wl, scen), []).append(float(sec))
    if tool == "plait":
        rss[wl] = max(rss.get(wl, 0), int(kib))
print(f"plait vs BuildKit (dockerd {dver}), {rounds} rounds, medians, build + push")
print(f"{'workload':<44} {'scenario':<12} {'plait s':>8} {'BuildKit s':>10} {'ratio':>6} {'target':>8}")
ok = True
for wl in targets:
    if ("plait", wl, "cold") not in t:
        continue
    for scen, target in targets[wl].items():
        mp = statistics.median(t[("plait", wl, scen)])
        mb = statistics.median(t[("buildkit", wl, scen)])
        ratio = mp / mb if mb else float("inf")
        met = ratio <= target
        ok = ok and met
        print(f"{names[wl]:<44} {scen:<12} {mp:8.2f} {mb:10.2f} {ratio:6.2f} {'<= ' + str(target):>8}  "
              f"{'MET' if met else 'MISSED'}")
for wl, kib in rss.items():
    print(f"plait peak RSS, {names[wl]}: {kib / 1024:.1f} MiB (target <= 64 MiB: {'MET' if kib <= 65536 else 'MISSED'})")
    ok = ok and kib <= 65536
sys.exit(0 if ok else 3)
EOF
if [ "$rc" = 3 ] && [ "${STRICT:-0}" = 1 ]; then
	exit 1
fi
[ "$rc" = 0 ] || [ "$rc" = 3 ] || exit 1
exit 0
