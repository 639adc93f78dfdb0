#!/usr/bin/env bash
# test_bake.sh - plait bake on tests/data/bake/docker-bake.json (a 2x2 matrix
# over variant x target, two platforms): --print resolves variables from the
# environment and --set; the matrix builds the four expected targets, each an
# index of amd64 and arm64 pushed to a real registry with its own tag and the
# right build arg; errors name the file and what was wrong.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd jq skopeo docker-registry
require_plait
[ "$(id -u)" = 0 ] || skip "planning arm64 jobs needs a QEMU handler, registered as root"
[ -x /usr/bin/qemu-aarch64-static ] || skip "/usr/bin/qemu-aarch64-static is missing: apt-get install qemu-user-static"
case "$(uname -m)" in
aarch64 | arm64) skip "the host is arm64: this test emulates arm64" ;;
esac
run_ok "$PLAIT" qemu install arm64

D=$PLAIT_SRCDIR/tests/data/bake
cd "$D"

# --print: variables from defaults and the environment, the matrix expanded.
run_ok env TAG=2.0 "$PLAIT" bake --print
assert_eq "inference-cpu inference-cuda train-cpu train-cuda" \
	"$(jq -r '.target | keys | join(" ")' <<<"$OUT")" "targets made by the matrix"
assert_eq "localhost:5000/ml/train:2.0-cuda" "$(jq -r '.target["train-cuda"].tags[0]' <<<"$OUT")" "tag from \$TAG"
assert_eq "cuda" "$(jq -r '.target["train-cuda"].args.VARIANT' <<<"$OUT")" "matrix value in args"
assert_eq "train" "$(jq -r '.target["train-cuda"].target' <<<"$OUT")" "matrix value in target"
run_ok "$PLAIT" bake --print --set 'train-cpu.args.VARIANT=other' train-cpu
assert_eq "train-cpu" "$(jq -r '.target | keys | join(" ")' <<<"$OUT")" "only the named target"
assert_eq "other" "$(jq -r '.target["train-cpu"].args.VARIANT' <<<"$OUT")" "--set args.VARIANT"
pass "bake --print resolves variables, the matrix and --set"

run_expect_fail "$PLAIT" bake --print nosuch
expect_rc 2
assert_contains "$ERR" "nosuch"
assert_contains "$ERR" "targets: _common, ml"
run_expect_fail "$PLAIT" bake -f "$T/missing.json" --print
assert_contains "$ERR" "missing.json"
printf '{"target": {"a": {"tags": ["x:${NOPE}"]}}}' >"$T/bad.json"
run_expect_fail "$PLAIT" bake -f "$T/bad.json" --print
expect_rc 2
assert_contains "$ERR" 'unknown variable "${NOPE}"'
mkdir -p "$T/badplat"
printf 'FROM scratch\nCOPY Dockerfile /\n' >"$T/badplat/Dockerfile"
printf '{"target": {"web": {"context": "%s", "platforms": ["linux/amd64", "linux/zzz"], "tags": ["x.io/a:1"]}}}' \
	"$T/badplat" >"$T/badplat.json"
run_expect_fail "$PLAIT" bake -f "$T/badplat.json" --plan web
expect_rc 2
assert_contains "$ERR" "web: platforms: unknown platform 'linux/zzz'" "an unknown platform in a bake target"
pass "bake errors name the target or variable that is wrong"

# --plan: 4 targets x 2 platforms, arm64 emulated.
registry_start R plain
run_ok env REGISTRY="$R_HOST" TAG=1.0 "$PLAIT" bake --plan --format json
assert_eq 8 "$(jq '.jobs | length' <<<"$OUT")" "jobs planned"
assert_eq "qemu" "$(jq -r '[.jobs[] | select(.platform == "linux/arm64")][0].builder' <<<"$OUT")" "arm64 builder"
assert_eq "native" "$(jq -r '[.jobs[] | select(.platform == "linux/amd64")][0].builder' <<<"$OUT")" "amd64 builder"
pass "bake --plan shows 8 jobs with their builders"

# The real run: every target pushed, each an index of both platforms.
run_ok env REGISTRY="$R_HOST" TAG=1.0 SOURCE_DATE_EPOCH=1700000000 "$PLAIT" bake --push \
	--cache-dir "$T/cache" --progress plain --metadata-file "$T/meta.json"
for v in cpu cuda; do
	for t in train inference; do
		raw=$(skopeo_reg inspect --raw "docker://$R_HOST/ml/$t:1.0-$v")
		assert_eq "linux/amd64 linux/arm64" \
			"$(jq -r '[.manifests[].platform | .os + "/" + .architecture] | join(" ")' <<<"$raw")" \
			"platforms of ml/$t:1.0-$v"
		cfg=$(skopeo_reg inspect --config --raw --override-arch arm64 "docker://$R_HOST/ml/$t:1.0-$v")
		assert_eq "$v" "$(jq -r '.config.Labels["ml.variant"]' <<<"$cfg")" "VARIANT arg in ml/$t:1.0-$v (arm64)"
		assert_eq arm64 "$(jq -r .architecture <<<"$cfg")" "architecture of the arm64 entry"
	done
done
assert_eq 4 "$(jq '.images | length' "$T/meta.json")" "images in the metadata file"
pass "bake --push builds the matrix: 4 indexes of 2 platforms with their tags and args"

# The live tty view: one line per running job, redrawn in place (cursor up,
# clear), finished steps scrolling above it with their job's name.
run_ok env REGISTRY="$R_HOST" TAG=1.1 "$PLAIT" bake --progress tty --no-cache --cache-dir "$T/cache" \
	train-cpu inference-cpu
assert_contains "$ERR" $'\033[J' "tty view clears below the cursor"
assert_contains "$ERR" "[train-cpu linux/arm64] #" "a live line names its job"
assert_contains "$ERR" "[inference-cpu linux/amd64] #" "a live line names its job"
assert_contains "$ERR" "=> " "finished steps"
assert_contains "$ERR" "images:" "the summary"
# json: every line is one JSON object, the summary included.
run_ok env REGISTRY="$R_HOST" TAG=1.1 "$PLAIT" bake --progress json --cache-dir "$T/cache" train-cpu
printf '%s\n' "$ERR" | jq -e . >/dev/null || fail "a --progress json line is not JSON: $ERR"
assert_eq summary "$(printf '%s\n' "$ERR" | tail -n 1 | jq -r .event)" "last json event"
assert_eq "train-cpu linux/arm64" "$(printf '%s\n' "$ERR" | jq -r 'select(.event == "start") | .job' | grep arm64 | head -n 1)" "job of a json event"
pass "progress: tty live view per job, json events with the job and a summary"

# --index-format docker: a Docker manifest list of Docker schema 2 manifests.
run_ok "$PLAIT" build --platform linux/amd64,linux/arm64 --index-format docker --target train \
	--progress quiet --cache-dir "$T/cache" -t "$R_HOST/dk/train:1.0" --push "$D"
raw=$(skopeo_reg inspect --raw "docker://$R_HOST/dk/train:1.0")
assert_eq application/vnd.docker.distribution.manifest.list.v2+json "$(jq -r .mediaType <<<"$raw")" "list media type"
assert_eq "linux/amd64 linux/arm64" "$(jq -r '[.manifests[].platform | .os + "/" + .architecture] | join(" ")' <<<"$raw")" "list platforms"
md=$(jq -r '.manifests[] | select(.platform.architecture == "arm64") | .digest' <<<"$raw")
m=$(skopeo_reg inspect --raw "docker://$R_HOST/dk/train@$md")
assert_eq application/vnd.docker.distribution.manifest.v2+json "$(jq -r .mediaType <<<"$m")" "manifest media type"
assert_eq application/vnd.docker.container.image.v1+json "$(jq -r .config.mediaType <<<"$m")" "config media type"
assert_eq application/vnd.docker.image.rootfs.diff.tar.gzip "$(jq -r '.layers[0].mediaType' <<<"$m")" "layer media type"
run_expect_fail "$PLAIT" build --index-format docker --compression zstd --cache-dir "$T/cache" "$D"
expect_rc 2
assert_contains "$ERR" "no zstd"
pass "--index-format docker pushes a Docker manifest list of Docker manifests (and refuses zstd)"
