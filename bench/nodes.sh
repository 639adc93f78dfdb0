#!/usr/bin/env bash
# bench/nodes.sh [PLAIT] - a two-platform build on two builder nodes against
# the same build on this host (arm64 under its QEMU), same run (not a test).
#
# The nodes are reached over a real sshd on loopback (as
# tests/integration/test_remote_builders.sh makes them): node A runs
# linux/amd64 natively, node B linux/arm64 through its QEMU handler, each
# with its own cache. One machine plays both nodes, so this measures what
# the node protocol costs (context sync, the result's blobs coming back,
# ssh) on top of the same work, not the gain of a native arm64 machine; the
# script also times the workload's arm64 job alone on this host's QEMU and
# its amd64 job natively, the factor a native arm64 node would save.
#
# Workload: bench/build.sh's (bench/build/Dockerfile, FILES small files, a
# BIG_MIB asset). Each round (alternating which goes first), cold caches:
#   nodes: plait build --builder farm --platform linux/amd64,linux/arm64 --push
#   local: plait build --builder local --platform linux/amd64,linux/arm64 --push
# and then incremental (one source file changed). Every result is checked:
# both pushes are an index of both platforms, and the node build's jobs ran
# on the nodes (--metadata-file). (Their digests differ from run to run: the
# workload's RUN tars directories whose mtimes are the build's time, as
# BuildKit gives them; tests/integration/test_remote_builders.sh checks the
# digest-for-digest equality on a workload without that.) Prints medians and
# the ratio nodes/local; results also go to bench/out/nodes.txt.
#
# Environment: ROUNDS (3), FILES (3000), BIG_MIB (32). Needs root (sshd,
# RUN sandboxes), an amd64 host, openssh-server, qemu-user-static,
# docker-registry, skopeo, jq, and busybox-static:arm64 from Debian's archive.
set -Eeuo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=$(cd "$BENCH_DIR/.." && pwd)
PLAIT=${1:-${PLAIT:-$SRCDIR/build/cmd/plait}}
case "$PLAIT" in /*) ;; *) PLAIT=$PWD/$PLAIT ;; esac
ROUNDS=${ROUNDS:-3}
FILES=${FILES:-3000}
BIG_MIB=${BIG_MIB:-32}

# shellcheck source=../tests/integration/lib.sh
source "$SRCDIR/tests/integration/lib.sh"
# shellcheck source=lib.sh
source "$BENCH_DIR/lib.sh"
require_cmd skopeo docker-registry curl jq ssh ssh-keygen
[ "$(id -u)" = 0 ] || skip "sshd and plait's RUN sandbox need root here"
[ "$(uname -m)" = x86_64 ] || skip "an amd64 host is expected (arm64 emulated)"
[ -x "$PLAIT" ] || fail "plait binary '$PLAIT' not found; run 'make' first or pass its path"
OUTDIR=$SRCDIR/bench/out
mkdir -p "$OUTDIR"
bench_trap

export XDG_CONFIG_HOME=$T/config
unset SSH_AUTH_SOCK
S=$T/ssh
sshd_start "$S" "AcceptEnv PLAIT_NODE"
printf '[127.0.0.1]:%s %s\n' "$SSHD_PORT" "$(cut -d' ' -f1,2 "$S/host_key.pub")" >"$S/known_hosts"
cat >"$S/ssh_config" <<EOC
Host node-a
  HostName 127.0.0.1
  Port $SSHD_PORT
  User root
  SetEnv PLAIT_NODE=a
Host node-b
  HostName 127.0.0.1
  Port $SSHD_PORT
  User root
  SetEnv PLAIT_NODE=b
Host *
  UserKnownHostsFile $S/known_hosts
  StrictHostKeyChecking yes
  GlobalKnownHostsFile /dev/null
  LogLevel ERROR
EOC
export PLAIT_SSH_COMMAND="ssh -F $S/ssh_config"
N=$T/nodes
mkdir -p "$N/a-none" "$T/local-none"
# node B and this host see the real binfmt_misc (arm64 through QEMU); node A
# and the planning of the node build see none, so arm64 goes to node B
cat >"$N/plait-node" <<EOF
#!/bin/sh
case "\$PLAIT_NODE" in
a) export XDG_CACHE_HOME=\${PLAIT_BENCH_NODE_CACHE:-$N}/a PLAIT_BINFMT_DIR=$N/a-none ;;
b) export XDG_CACHE_HOME=\${PLAIT_BENCH_NODE_CACHE:-$N}/b ;;
*) exit 3 ;;
esac
exec "$PLAIT" "\$@"
EOF
chmod 755 "$N/plait-node"
"$PLAIT" qemu install arm64 >/dev/null
"$PLAIT" builder create farm --node ssh://node-a --node ssh://node-b --identity "$S/id" \
	--remote-plait "$N/plait-node" >/dev/null
"$PLAIT" builder inspect farm --format json | jq -e '.nodes[1].qemu | index("linux/arm64")' >/dev/null ||
	fail "node B does not serve linux/arm64 through QEMU (is qemu-user-static installed?)"

"$PY" "$BENCH_DIR/build/gen-context.py" "$T/ctx" "$FILES" "$BIG_MIB"
make_base "$T/base" linux/amd64,linux/arm64
registry_start R plain
skopeo_reg copy -q --all "oci:$T/base:busybox" "docker://$R_HOST/base/busybox:1"
MAIN=$T/ctx/src/app/main.txt

# one_run TOOL SCENARIO ROUND
one_run() {
	local tool=$1 scen=$2 r=$3 t0 t1 args=()
	if [ "$tool" = nodes ]; then
		args=(--builder farm --metadata-file "$T/meta-$scen-$r.json")
		export PLAIT_BINFMT_DIR=$T/local-none
	else
		args=(--builder local)
		unset PLAIT_BINFMT_DIR
	fi
	export PLAIT_BENCH_NODE_CACHE=$T/nc-$r
	t0=$(date +%s.%N)
	"$PLAIT" build --progress plain --platform linux/amd64,linux/arm64 --source-date-epoch 1700000000 \
		--cache-dir "$T/lc-$tool-$r" "${args[@]}" --build-arg "BASE=$R_HOST/base/busybox:1" \
		-t "$R_HOST/bench/$tool:$scen-$r" --push "$T/ctx" >"$T/$tool-$scen-$r.log" 2>&1 ||
		{ tail -n 20 "$T/$tool-$scen-$r.log" >&2; fail "$tool $scen build failed in round $r"; }
	t1=$(date +%s.%N)
	unset PLAIT_BINFMT_DIR
	echo "$tool $scen $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" >>"$T/results"
}

: >"$T/results"
for r in $(seq 1 "$ROUNDS"); do
	printf '// the entry point\nversion 0\n' >"$MAIN"
	touch -d @1600000000 "$MAIN"
	order=(nodes local)
	[ $((r % 2)) = 1 ] || order=(local nodes)
	for tool in "${order[@]}"; do one_run "$tool" cold "$r"; done
	printf '// the entry point\nversion %s\n' "$r" >"$MAIN"
	for tool in "${order[@]}"; do one_run "$tool" incremental "$r"; done
	for scen in cold incremental; do
		# the same shape (the workload's RUN tars directories whose mtimes are
		# the build's time, as under BuildKit, so digests differ between runs)
		for tool in local nodes; do
			idx=$(skopeo_reg inspect --raw "docker://$R_HOST/bench/$tool:$scen-$r")
			assert_eq "amd64 arm64" "$(jq -r '[.manifests[].platform.architecture] | join(" ")' <<<"$idx")" \
				"round $r $scen: the platforms of the $tool index"
		done
		assert_eq "ssh://node-a ssh://node-b" "$(jq -r '.platforms | map(.node) | join(" ")' "$T/meta-$scen-$r.json")" \
			"round $r $scen: the nodes of the jobs"
	done
	echo "# round $r: $(tail -n 4 "$T/results" | tr '\n' ' ')"
done

# the arm64 job under this host's QEMU and the amd64 job natively, alone, cold
for p in amd64 arm64; do
	t0=$(date +%s.%N)
	"$PLAIT" build --progress plain --platform "linux/$p" --cache-dir "$T/lc-alone-$p" \
		--build-arg "BASE=$R_HOST/base/busybox:1" -o "type=oci,dest=$T/alone-$p.tar" "$T/ctx" >"$T/alone-$p.log" 2>&1 ||
		fail "the $p job alone failed: $(tail -n 5 "$T/alone-$p.log")"
	t1=$(date +%s.%N)
	echo "alone-$p cold $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" >>"$T/results"
done

"$PY" - "$T/results" "$ROUNDS" "$FILES" "$BIG_MIB" <<'PYEOF' | tee "$OUTDIR/nodes.txt"
import statistics, sys
path, rounds, files, big = sys.argv[1:]
t = {}
for line in open(path):
    tool, scen, secs = line.split()
    t.setdefault((tool, scen), []).append(float(secs))
m = {k: statistics.median(v) for k, v in t.items()}
print(f"two-node build vs this host (arm64 under QEMU), {rounds} rounds, medians; {files} files + {big} MiB, two platforms, build + push")
print(f"{'scenario':12} {'nodes s':>8} {'local s':>8} {'nodes/local':>12}")
for s in ("cold", "incremental"):
    n, l = m[("nodes", s)], m[("local", s)]
    print(f"{s:12} {n:8.2f} {l:8.2f} {n / l:12.2f}")
a, b = m[("alone-amd64", "cold")], m[("alone-arm64", "cold")]
print(f"one job alone on this host, cold: amd64 native {a:.2f} s, arm64 under QEMU {b:.2f} s ({b / a:.1f}x)")
PYEOF
