#!/usr/bin/env bash
# test_mlapp.sh - examples/ml-app end to end: it lints clean; `make plan` and
# `make push` (plait bake) build its 4 targets (train, inference x cpu, cuda)
# for linux/amd64 and linux/arm64 (arm64 under QEMU) on a real Debian base and
# push them to a real registry; for each platform the train image trains (the
# accuracy is high enough) and the inference image answers predictions on
# stdin, run from the pulled images in a chroot; the cuda images carry their
# CUDA_VERSION and share every layer with the cpu ones; the CI matrix flow
# (--push-by-digest per platform, index create --from-metadata) gives the
# same images.
#
# The public bases the example names (debian:12.11-slim, nvidia/cuda) are not
# reachable here: both variants build FROM one Debian bookworm base made by
# mkdebian.sh from the Debian archive (the only network access; RUN apt-get
# reaches it too), with bookworm's pins for both. MLAPP_BASE=DIR reuses a
# layout made earlier with
#   MKDEBIAN_POLICY="python3 python3-numpy" mkdebian.sh DIR bookworm amd64 arm64
# (to iterate on this test without bootstrapping again).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd jq skopeo umoci docker-registry curl make chroot
require_plait
[ "$(id -u)" = 0 ] || skip "bootstrapping Debian, QEMU handlers and chroot need root"
[ -x /usr/bin/qemu-aarch64-static ] || skip "/usr/bin/qemu-aarch64-static is missing: apt-get install qemu-user-static"
case "$(uname -m)" in
x86_64 | amd64) ;;
*) skip "this test builds arm64 under QEMU on an amd64 host" ;;
esac
SRC=$PLAIT_SRCDIR/examples/ml-app
START=$SECONDS

run_ok "$PLAIT" qemu install arm64

# ---------------------------------------------------------------- lint
run_ok make -s -C "$SRC" lint PLAIT="$PLAIT"
run_ok "$PLAIT" lint --format json "$SRC"
assert_eq "[]" "$(jq -c '[.[] | select(.severity != "info") | .id]' <<<"$OUT")" "lint findings above info in examples/ml-app"
pass "examples/ml-app lints clean (make lint: --fail-on warning)"
# The same lint fails a copy whose images would run as root.
mkdir -p "$T/rootapp"
cp -r "$SRC/." "$T/rootapp/"
sed -i '/^USER app$/d' "$T/rootapp/Dockerfile"
run_expect_fail make -s -C "$T/rootapp" lint PLAIT="$PLAIT"
assert_contains "$OUT$ERR" "PL017 warning" "make lint of a Dockerfile without USER"
pass "make lint fails when the images would run as root"

# ---------------------------------------------------------------- base
if [ -n "${MLAPP_BASE:-}" ]; then
	cp -r "$MLAPP_BASE" "$T/base"
else
	if ! command -v mmdebstrap >/dev/null || ! command -v arch-test >/dev/null; then
		timeout 300 env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			mmdebstrap arch-test >"$T/apt-install.log" 2>&1 ||
			skip "cannot install mmdebstrap and arch-test (no Debian archive?): $(tail -n 3 "$T/apt-install.log")"
	fi
	CMD_TIMEOUT=400 run_ok env MKDEBIAN_POLICY="python3 python3-numpy" \
		bash "$LIB_DIR/mkdebian.sh" "$T/base" bookworm amd64 arm64
fi
registry_start R plain
BASE=$R_HOST/library/debian:bookworm
skopeo_reg copy -q --all "oci:$T/base:bookworm" "docker://$BASE"
echo "# base ready after $((SECONDS - START)) s"

# One pin serves both architectures (binNMUs could make them differ).
assert_eq "$(cat "$T/base/candidates-amd64")" "$(cat "$T/base/candidates-arm64")" \
	"candidate versions of python3 and python3-numpy, amd64 vs arm64"
py_pin=$(awk '$1 == "python3" { print $2 }' "$T/base/candidates-amd64")
np_pin=$(awk '$1 == "python3-numpy" { print $2 }' "$T/base/candidates-amd64")
{ [ -n "$py_pin" ] && [ -n "$np_pin" ]; } || fail "no candidate versions in $T/base/candidates-amd64: $(cat "$T/base/candidates-amd64")"
def_py=$(jq -r '.variable.CPU_PYTHON_VERSION.default' "$SRC/docker-bake.json")
def_np=$(jq -r '.variable.CPU_NUMPY_VERSION.default' "$SRC/docker-bake.json")
if [ "$def_py $def_np" != "$py_pin $np_pin" ]; then
	# The archive moved on: build with what it has, and say that the
	# example's pins need a bump.
	echo "# NOTE: bookworm now has python3=$py_pin python3-numpy=$np_pin; examples/ml-app pins $def_py / $def_np"
fi

# Both variants FROM the local base, with bookworm's pins (the cuda variant's
# defaults are Ubuntu 22.04's, for nvidia/cuda).
export REGISTRY=$R_HOST/test TAG=0.1.0 CPU_BASE=$BASE CUDA_BASE=$BASE \
	CPU_PYTHON_VERSION=$py_pin CPU_NUMPY_VERSION=$np_pin \
	CUDA_PYTHON_VERSION=$py_pin CUDA_NUMPY_VERSION=$np_pin \
	SOURCE_DATE_EPOCH=1700000000
TARGETS=(train-cpu inference-cpu train-cuda inference-cuda)

# ---------------------------------------------------------------- plan
run_ok make -s -C "$SRC" plan PLAIT="$PLAIT" BAKE_FLAGS="--format json"
assert_eq 8 "$(jq '.jobs | length' <<<"$OUT")" "jobs planned (4 targets x 2 platforms)"
assert_eq "native" "$(jq -r '[.jobs[] | select(.platform == "linux/amd64") | .builder] | unique | join(",")' <<<"$OUT")" "amd64 builders"
assert_eq "qemu" "$(jq -r '[.jobs[] | select(.platform == "linux/arm64") | .builder] | unique | join(",")' <<<"$OUT")" "arm64 builders"
pass "make plan: 8 jobs, amd64 native and arm64 under QEMU"

# ---------------------------------------------------------------- build and push
CMD_TIMEOUT=500 run_ok make -s -C "$SRC" push PLAIT="$PLAIT" \
	BAKE_FLAGS="--cache-dir $T/cache --metadata-file $T/meta.json --progress plain --sbom"
echo "# built and pushed after $((SECONDS - START)) s"
assert_eq 4 "$(jq '.images | length' "$T/meta.json")" "images in the metadata file"
for t in "${TARGETS[@]}"; do
	tgt=${t%-*} v=${t##*-}
	ref=docker://$R_HOST/test/ml-app/$tgt:0.1.0-$v
	raw=$(skopeo_reg inspect --raw "$ref")
	assert_eq "linux/amd64 linux/arm64" \
		"$(jq -r '[.manifests[].platform | .os + "/" + .architecture] | join(" ")' <<<"$raw")" "platforms of $t"
	assert_eq "https://github.com/example/ml-app" \
		"$(jq -r '.annotations["org.opencontainers.image.source"]' <<<"$raw")" "index annotation of $t"
	for a in amd64 arm64; do
		cfg=$(skopeo_reg inspect --config --raw --override-arch "$a" "$ref")
		assert_eq "$a" "$(jq -r .architecture <<<"$cfg")" "architecture of $t ($a)"
		assert_eq "$v" "$(jq -r '.config.Labels["ml.variant"]' <<<"$cfg")" "ml.variant label of $t ($a)"
		assert_eq app "$(jq -r .config.User <<<"$cfg")" "user of $t ($a)"
		assert_eq "0.1.0" "$(jq -r '.config.Labels["org.opencontainers.image.version"]' <<<"$cfg")" "version label of $t ($a)"
	done
done
pass "make push: 4 targets, each an index of linux/amd64 and linux/arm64 with its labels"

# The pins are applied: a version the archive does not have fails the build
# at the apt-get line, and no tag moves.
before=$(raw_digest "docker://$R_HOST/test/ml-app/train:0.1.0-cpu")
run_expect_fail make -s -C "$SRC" push PLAIT="$PLAIT" TARGETS=train-cpu \
	BAKE_FLAGS="--set train-cpu.args.NUMPY_VERSION=1:0.0-nosuch --set train-cpu.platform=linux/amd64 --cache-dir $T/cache"
assert_contains "$ERR" "Dockerfile:$(grep -n -m1 '^RUN --mount=type=cache' "$SRC/Dockerfile" | cut -d: -f1)" "the error names the RUN apt-get line"
assert_contains "$ERR" "Version '1:0.0-nosuch' for 'python3-numpy' was not found" "apt-get's error"
assert_eq "$before" "$(raw_digest "docker://$R_HOST/test/ml-app/train:0.1.0-cpu")" "train:0.1.0-cpu after a failed build"
pass "a pin the archive does not have fails the build and moves no tag"

# ---------------------------------------------------------------- run them
# run_image NAME ARGS... : run the unpacked image $T/run-NAME's entrypoint
# with ARGS (its Cmd when none), as its user, with its Env, in a chroot;
# stdin is passed on. Output in $OUT like run_ok.
run_image() {
	local name=$1
	shift
	local b=$T/run-$name cfg user env=() argv=()
	cfg=$b/config.json
	user=$(jq -r '.process.user | "\(.uid):\(.gid)"' "$cfg")
	mapfile -t env < <(jq -r '.process.env[]' "$cfg")
	mapfile -t argv < <(jq -r '.process.args[]' "$cfg")
	if [ $# -gt 0 ]; then
		# Replace the Cmd (what follows the Entrypoint) with ARGS.
		local n_ep
		n_ep=$(jq -r '.Entrypoint | length' "$b.image-config.json")
		argv=("${argv[@]:0:n_ep}" "$@")
	fi
	lib_run chroot --userspec="$user" "$b/rootfs" env -i "${env[@]}" "${argv[@]}"
	[ "$RC" = 0 ] || fail "$name: ${argv[*]} exited $RC
  stdout: $OUT
  stderr: $ERR"
}

# unpack REF NAME ARCH : the ARCH image of REF unpacked into $T/run-NAME
# (an OCI runtime bundle: rootfs/ and config.json).
unpack() {
	local ref=$1 name=$2 a=$3
	skopeo_reg copy -q --override-arch "$a" "docker://$ref" "oci:$T/pulled:$name"
	skopeo inspect --config --raw "oci:$T/pulled:$name" | jq .config >"$T/run-$name.image-config.json"
	umoci unpack --image "$T/pulled:$name" "$T/run-$name" >/dev/null
}

queries='{"x": [1, 0, 0, 0]}
{"x": [-1, 1, 0, 0]}
{"x": [1, 2]}
not json'
declare -A answers trained
for a in amd64 arm64; do
	unpack "$R_HOST/test/ml-app/train:0.1.0-cpu" "train-$a" "$a"
	unpack "$R_HOST/test/ml-app/inference:0.1.0-cpu" "inference-$a" "$a"

	# Its SBOM lists exactly the packages dpkg-query lists in its root
	# file system (with the same versions), numpy as a Python package too;
	# its provenance names the base image's $a digest.
	run_ok "$PLAIT" inspect --attestations --platform "linux/$a" --format json "$R_HOST/test/ml-app/train:0.1.0-cpu"
	att=$OUT
	sbom=$(jq '[.[] | select(.artifactType == "application/spdx+json")][0].layers[0].content' <<<"$att")
	want=$(dpkg-query --admindir="$T/run-train-$a/rootfs/var/lib/dpkg" -W -f '${db:Status-Status} ${Package} ${Version}\n' |
		awk '$1 != "not-installed" && $1 != "config-files" { print $2 " " $3 }' | sort)
	got=$(jq -r '.packages[] | select((.externalRefs // [])[0].referenceLocator // "" | startswith("pkg:deb/")) | "\(.name) \(.versionInfo)"' <<<"$sbom" | sort)
	[ "$(wc -l <<<"$want")" -gt 50 ] || fail "dpkg-query lists only $(wc -l <<<"$want") packages in the $a image"
	assert_eq "$want" "$got" "dpkg packages in the $a SBOM vs dpkg-query in the image"
	assert_eq "${np_pin#*:}" "$(jq -r '.packages[] | select(.name == "python3-numpy") | .versionInfo' <<<"$sbom" | sed 's/^[0-9]*://')" \
		"python3-numpy's version in the $a SBOM"
	np_up=${np_pin#*:}
	assert_eq "${np_up%%-*}" "$(jq -r '.packages[] | select((.externalRefs // [])[0].referenceLocator // "" | startswith("pkg:pypi/numpy@")) | .versionInfo' <<<"$sbom")" \
		"numpy as a Python package in the $a SBOM"
	assert_eq "pkg:deb/debian/python3-numpy@$(jq -rn --arg v "$np_pin" '$v | @uri')?arch=$a&distro=debian-12&upstream=numpy" \
		"$(jq -r '.packages[] | select(.name == "python3-numpy") | .externalRefs[0].referenceLocator' <<<"$sbom")" "python3-numpy's purl ($a)"
	prov=$(jq '[.[] | select(.artifactType == "application/vnd.in-toto+json")][0].layers[0].content' <<<"$att")
	base_digest=$(skopeo_reg inspect --raw "docker://$BASE" | jq -r --arg a "$a" '.manifests[] | select(.platform.architecture == $a) | .digest')
	assert_eq "$base_digest" "$(jq -r --arg b "$BASE" '.predicate.buildDefinition.resolvedDependencies[] | select(.name == $b) | "sha256:" + .digest.sha256' <<<"$prov")" \
		"the base image's $a digest in the provenance"
	assert_eq "train-cpu cpu" "$(jq -r '.predicate.buildDefinition.externalParameters.request | "\(.bakeTarget) \(.args.VARIANT)"' <<<"$prov")" \
		"bake target and variant arg in the $a provenance"
	pass "linux/$a: the SBOM lists what dpkg-query lists, the provenance names the base's digest"
	want_m=$([ "$a" = amd64 ] && echo x86_64 || echo aarch64)
	lib_run chroot "$T/run-train-$a/rootfs" uname -m
	assert_eq "$want_m" "$OUT" "uname -m in the $a image"

	# train: its Cmd writes the model to /home/app/model.json.
	run_image "train-$a"
	res=$OUT
	acc=$(jq -r .accuracy <<<"$res")
	jq -e '.accuracy >= 0.9 and .loss < 0.3' <<<"$res" >/dev/null ||
		fail "train-cpu ($a): accuracy below 0.9 or loss above 0.3: $res"
	assert_eq cpu "$(jq -r .variant <<<"$res")" "variant train.py saw ($a)"
	np_ver=${np_pin#*:}
	assert_eq "${np_ver%%-*}" "$(jq -r .numpy <<<"$res")" "numpy version the train image imports ($a), from the pin"
	m=$T/run-train-$a/rootfs/home/app/model.json
	assert_file_exists "$m" "model written by the train image ($a)"
	assert_eq "10001" "$(stat -c %u "$m")" "owner of the model ($a)"
	trained[$a]=$res

	# inference: --stdin instead of the Cmd's --http.
	run_image "inference-$a" --stdin <<<"$queries"
	ans=$OUT
	assert_eq 4 "$(wc -l <<<"$ans")" "answer lines ($a)"
	assert_eq "1 0" "$(jq -rs '.[0:2] | map(.label) | join(" ")' <<<"$ans")" "labels of the two queries ($a)"
	jq -se '.[0].probability > 0.9 and .[1].probability < 0.1' <<<"$ans" >/dev/null ||
		fail "probabilities of clear-cut queries ($a): $ans"
	assert_eq 'request needs "x": a list of 4 numbers' "$(jq -rs '.[2].error' <<<"$ans")" "answer to a short x ($a)"
	assert_match "$(jq -rs '.[3].error' <<<"$ans")" '^invalid JSON' "answer to a line that is not JSON ($a)"
	answers[$a]=$ans
	pass "linux/$a: train-cpu trains (accuracy $acc) and inference-cpu answers on stdin"
done
# The image's default: HTTP (its Cmd's --http), here on a loopback port.
port=$(free_port)
b=$T/run-inference-amd64
mapfile -t http_env < <(jq -r '.process.env[]' "$b/config.json")
mapfile -t http_argv < <(jq -r '.process.args[]' "$b/config.json")
assert_eq "--http 0.0.0.0:8080" "${http_argv[*]: -2}" "the inference image's Cmd"
bg_start serve chroot --userspec="$(jq -r '.process.user | "\(.uid):\(.gid)"' "$b/config.json")" "$b/rootfs" \
	env -i "${http_env[@]}" "${http_argv[@]:0:${#http_argv[@]}-1}" "127.0.0.1:$port"
wait_http "http://127.0.0.1:$port/healthz"
got=$(curl -sS -X POST --data '{"x": [1, 0, 0, 0]}' "http://127.0.0.1:$port/predict")
assert_eq "$(head -n1 <<<"${answers[amd64]}")" "$got" "answer over HTTP vs on stdin"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data '{"x": []}' "http://127.0.0.1:$port/predict")
assert_eq 400 "$code" "HTTP status of a bad request"
kill "$BG_PID"
pass "inference-cpu serves over HTTP (its default Cmd) as it does on stdin"

assert_eq "${answers[amd64]}" "${answers[arm64]}" "inference answers, amd64 vs arm64"
assert_eq "${trained[amd64]}" "${trained[arm64]}" "training results, amd64 vs arm64"
pass "both platforms train the same model and give the same answers"

# ---------------------------------------------------------------- cuda variant
for t in train inference; do
	for a in amd64 arm64; do
		cfg=$(skopeo_reg inspect --config --raw --override-arch "$a" "docker://$R_HOST/test/ml-app/$t:0.1.0-cuda")
		assert_eq "12.4.1" "$(jq -r '.config.Labels["ml.cuda-version"]' <<<"$cfg")" "ml.cuda-version of $t-cuda ($a)"
		assert_contains "$(jq -r '.config.Env | join(" ")' <<<"$cfg")" "ML_CUDA_VERSION=12.4.1" "Env of $t-cuda ($a)"
		cpu=$(skopeo_reg inspect --override-arch "$a" "docker://$R_HOST/test/ml-app/$t:0.1.0-cpu" | jq -c .Layers)
		cuda=$(skopeo_reg inspect --override-arch "$a" "docker://$R_HOST/test/ml-app/$t:0.1.0-cuda" | jq -c .Layers)
		assert_eq "$cpu" "$cuda" "layers of $t-cpu and $t-cuda ($a): same base and pins, the variant args come after the shared steps"
	done
	cfg=$(skopeo_reg inspect --config --raw --override-arch amd64 "docker://$R_HOST/test/ml-app/$t:0.1.0-cpu")
	assert_eq "none" "$(jq -r '.config.Labels["ml.cuda-version"]' <<<"$cfg")" "ml.cuda-version of $t-cpu"
done
unpack "$R_HOST/test/ml-app/train:0.1.0-cuda" train-cuda amd64
run_image train-cuda --out /tmp/model.json
assert_eq "cuda 12.4.1" "$(jq -r '"\(.variant) \(.cuda_version)"' <<<"$OUT")" "variant and CUDA version train-cuda reports"
assert_eq "$(jq -c 'del(.variant, .cuda_version)' <<<"${trained[amd64]}")" "$(jq -c 'del(.variant, .cuda_version)' <<<"$OUT")" \
	"train-cuda's result vs train-cpu's (same data, same numpy)"
pass "cuda variant: CUDA_VERSION label and env, layers shared with cpu, train-cuda runs"

# ---------------------------------------------------------------- the CI flow
# .github/workflows/images.yml: one job per (target, platform) pushes by
# digest, the last job joins them. Everything is cached by now.
for a in amd64 arm64; do
	run_ok make -s -C "$SRC" push PLAIT="$PLAIT" TARGETS=inference-cpu \
		BAKE_FLAGS="--push-by-digest --set inference-cpu.platform=linux/$a --cache-dir $T/cache --metadata-file $T/ci-$a.json"
done
run_ok "$PLAIT" index create -q -t "$R_HOST/test/ml-app/inference:0.1.0-cpu-ci" \
	--annotation "index:org.opencontainers.image.source=https://github.com/example/ml-app" \
	--from-metadata "$T/ci-amd64.json" --from-metadata "$T/ci-arm64.json"
want=$(skopeo_reg inspect --raw "docker://$R_HOST/test/ml-app/inference:0.1.0-cpu" | jq -c '[.manifests[] | .digest]')
got=$(skopeo_reg inspect --raw "docker://$R_HOST/test/ml-app/inference:0.1.0-cpu-ci" | jq -c '[.manifests[] | .digest]')
assert_eq "$want" "$got" "per-platform manifests of the CI flow's index vs the one-command build's"
pass "CI matrix flow: bake --push-by-digest per platform + index create --from-metadata"

echo "# total $((SECONDS - START)) s"
