#!/usr/bin/env bash
# test_multi.sh - multi-platform and multi-variant `plait build` end to end,
# against a real docker-registry, with real amd64 / arm64 / arm/v7 busybox
# images (arm64 and arm/v7 run under QEMU through binfmt_misc with the F flag):
#  1. three platforms, one index in --platform order; a FROM
#     --platform=$BUILDPLATFORM tool stage runs once, natively, and its file
#     lands in every image; each image runs as its own architecture;
#  2. variants: one image per variant, {variant} in tags, a variant's
#     platforms= restriction (one platform: a manifest), build args per
#     variant, the metadata file's "images" and "variants";
#  3. plait plan: all planning problems of a bad request in one run (exit 2),
#     --format json of a good one (jobs, builders);
#  4. a RUN that fails only under arm64: exit 1, the error names the platform
#     and the Dockerfile line, no tag moves or appears;
#  5. the CI matrix flow (--push-by-digest per platform, index create
#     --from-metadata) gives the one-command build's index digest;
#  6. --annotation index: / manifest[P]: and the index's created annotation;
#  7. --output type=oci with two variants: both tags in the layout;
#  8. SIGINT during a build: exit 130 quickly, no tag; the rerun reuses
#     the steps that finished;
#  9. busybox applets the shell execs (sleep) work under QEMU (argv[0]);
# 10. cache mounts shared by parallel jobs (sharing=locked|private);
# 11. a platform no builder runs, whose image only takes files from a
#     $BUILDPLATFORM stage, is built without one (builder "none");
# 12. --push: a finished job's image is in the registry by digest while the
#     other job still runs; no tag until both are built.
# A failed check ends its section; the test goes on and fails at the end.
# Needs root (binfmt_misc, the RUN sandbox), an amd64 host, qemu-user-static
# and the busybox-static .debs for arm64 and armhf (apt-get download); skips
# when any of these is missing.
# The Dockerfiles' ${BASE} is for plait to expand:
# shellcheck disable=SC2016
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd jq skopeo umoci docker-registry curl dpkg-deb chroot
require_plait
[ "$(id -u)" = 0 ] || skip "RUN sandboxes and binfmt_misc handlers need root"
[ "$(uname -m)" = x86_64 ] || skip "the host is $(uname -m): this test expects an amd64 host (arm64 and arm/v7 emulated)"
for q in qemu-aarch64-static qemu-arm-static; do
	[ -x "/usr/bin/$q" ] || skip "/usr/bin/$q is missing: apt-get install qemu-user-static"
done

# ---------------------------------------------------------------- setup

# The foreign busybox-static .debs, downloaded as test_qemu.sh does (first
# from the package lists already there, then after an update). $MULTI_DEB_DIR
# may hold them already (busybox-static_*_arm64.deb, ..._armhf.deb).
deb_dir=${MULTI_DEB_DIR:-$T/deb}
mkdir -p "$deb_dir"
deb_for() {
	find "$deb_dir" -maxdepth 1 -name "busybox-static_*_$1.deb" | sort | head -n1
}
get_debs() {
	local a
	for a in arm64 armhf; do
		dpkg --print-foreign-architectures | grep -qx "$a" || dpkg --add-architecture "$a" || return 1
	done
	[ -n "$(deb_for arm64)" ] && [ -n "$(deb_for armhf)" ] && return 0
	(cd "$deb_dir" && timeout 120 apt-get download -qq busybox-static:arm64 busybox-static:armhf) >"$T/apt.log" 2>&1 && return 0
	timeout 300 apt-get update -qq >>"$T/apt.log" 2>&1 || true
	(cd "$deb_dir" && timeout 120 apt-get download -qq busybox-static:arm64 busybox-static:armhf) >>"$T/apt.log" 2>&1
}
if ! get_debs || [ -z "$(deb_for arm64)" ] || [ -z "$(deb_for armhf)" ]; then
	tail -n 5 "$T/apt.log" 2>/dev/null || true
	skip "could not download busybox-static:arm64 and busybox-static:armhf (no network or no foreign archive?)"
fi
deb_arm64=$(deb_for arm64)
deb_armhf=$(deb_for armhf)

run_ok "$PLAIT" qemu install arm64 arm
run_ok "$PLAIT" qemu status --format json
for a in arm64 arm; do
	assert_eq "true true" "$(jq -r --arg a "$a" '.arches[] | select(.arch == $a) | "\(.enabled) \(.fix_binary)"' <<<"$OUT")" \
		"$a handler enabled with the F flag"
done

registry_start R plain
REG=$R_HOST
CACHE=$T/cache

bash "$LIB_DIR/mkbase.sh" "$T/bases" multi amd64 "arm64=$deb_arm64" "armhf=$deb_armhf" >/dev/null
bash "$LIB_DIR/mkbase.sh" "$T/bases" noarm64 amd64 "armhf=$deb_armhf" >/dev/null
skopeo_reg copy -q --all "oci:$T/bases:multi" "docker://$REG/base/multi:1"
skopeo_reg copy -q --all "oci:$T/bases:noarm64" "docker://$REG/base/noarm64:1"
BASE=$REG/base/multi:1

# tags_of REPO : the registry's tags of REPO, sorted, space separated;
# not the sha256-<hex> referrers tags that hold the images' provenance
# (test_build_attest.sh checks those).
tags_of() {
	curl -s "http://$REG/v2/$1/tags/list" | jq -r '(.tags // []) | map(select(startswith("sha256-") | not)) | sort | join(" ")'
}

# raw REF : the manifest/index bytes of docker://REF.
raw() {
	skopeo_reg inspect --raw "docker://$1"
}

# unpack_ref REF DIR : pull REF (a manifest, by digest or tag) into an OCI
# layout and unpack it; the root filesystem is DIR/rootfs.
unpack_ref() {
	local ref=$1 dir=$2
	rm -rf "$dir.oci" "$dir"
	run_ok skopeo_reg copy -q "docker://$ref" "oci:$dir.oci:x"
	run_ok umoci unpack --image "$dir.oci:x" "$dir"
}

# digest_for RAW_INDEX PLATFORM : the entry's digest for os/arch[/variant].
digest_for() {
	jq -r --arg p "$2" '.manifests[] |
		select((.platform.os + "/" + .platform.architecture +
			(if .platform.variant then "/" + .platform.variant else "" end)) == $p) | .digest' <<<"$1"
}


# a platform's name as a file name: linux/arm/v7 -> linux-arm-v7
fname() {
	echo "${1//\//-}"
}

FAILED=()
# section NAME FUNC : run FUNC in a subshell with the usual strict mode. A
# failed check ends its section, not the test, so one plait bug does not hide
# the others; the test fails at the end naming every failed section.
section() {
	local name=$1 rc
	shift
	echo "# $name"
	set +e
	trap - ERR
	(
		set -e
		trap 'lib_on_err $? "$BASH_COMMAND"' ERR
		"$@"
	)
	rc=$?
	set -e
	trap 'lib_on_err $? "$BASH_COMMAND"' ERR
	[ "$rc" = 0 ] || FAILED+=("$name")
}

# ---------------------------------------------------------------- 1. three platforms

s1_three_platforms() {
	mkdir -p "$T/c1"
	cat >"$T/c1/Dockerfile" <<-'EOF'
	ARG BASE
	FROM --platform=$BUILDPLATFORM ${BASE} AS tool
	RUN echo "$(uname -m) $(cat /proc/sys/kernel/random/uuid)" > /tool.txt
	FROM ${BASE}
	COPY --from=tool /tool.txt /tool.txt
	RUN uname -m > /arch
	EOF
	run_ok "$PLAIT" build --cache-dir "$CACHE" --progress json --platform linux/amd64,linux/arm64,linux/arm/v7 \
		--build-arg "BASE=$BASE" -t "$REG/x:1.0" --push --metadata-file "$T/m1.json" "$T/c1"
	# The summary after the events is plain text: keep the JSON lines.
	local progress idx
	progress=$(grep '^{' <<<"$ERR" || true)
	idx=$(raw "$REG/x:1.0")
	assert_eq "application/vnd.oci.image.index.v1+json" "$(jq -r .mediaType <<<"$idx")" "media type of x:1.0"
	assert_eq 3 "$(jq '.manifests | length' <<<"$idx")" "entries of the index"
	assert_eq "linux/amd64 linux/arm64 linux/arm/v7" \
		"$(jq -r '[.manifests[].platform | .os + "/" + .architecture + (if .variant then "/" + .variant else "" end)] | join(" ")' <<<"$idx")" \
		"platforms of the index, in --platform order"
	assert_eq "sha256:$(printf '%s' "$idx" | sha256_stdin)" "$(jq -r '."containerimage.digest"' "$T/m1.json")" \
		"metadata containerimage.digest vs the pushed index"
	pass "three platforms: one index, entries in --platform order"

	local -A want_m=([linux/amd64]=x86_64 [linux/arm64]=aarch64 [linux/arm/v7]=armv7l)
	local tool=() p d n cfg pa
	for p in linux/amd64 linux/arm64 linux/arm/v7; do
		d=$(digest_for "$idx" "$p")
		assert_match "$d" '^sha256:[0-9a-f]{64}$' "digest of the $p entry"
		n=$(fname "$p")
		unpack_ref "$REG/x@$d" "$T/u1-$n"
		run_ok chroot "$T/u1-$n/rootfs" /bin/busybox uname -m
		assert_eq "${want_m[$p]}" "$OUT" "uname -m of the $p image's busybox (run via chroot)"
		assert_eq "${want_m[$p]}" "$(cat "$T/u1-$n/rootfs/arch")" "/arch written by RUN in the $p image"
		cfg=$(skopeo_reg inspect --config --raw "docker://$REG/x@$d")
		pa=${p#linux/}
		assert_eq "${pa%%/*}" "$(jq -r .architecture <<<"$cfg")" "config architecture of the $p image"
		tool+=("$(cat "$T/u1-$n/rootfs/tool.txt")")
	done
	pass "each platform's image runs as its architecture (x86_64, aarch64, armv7l)"

	assert_match "${tool[0]}" '^x86_64 [0-9a-f-]{36}$' "the tool stage's file (native uname + nonce)"
	# The progress: each job reaches the tool RUN; exactly one runs it, the
	# others take its result from the cache (core/build.c lock_step).
	local ev counts
	ev=$(jq -sc '[.[] | select(.event == "start" and (.text // "" | test("random/uuid"))) | {job, step}]' <<<"$progress") ||
		fail "--progress json output is not JSON lines: $progress"
	assert_eq 3 "$(jq length <<<"$ev")" "jobs that reached the tool stage's RUN (start events: $ev)"
	counts=$(jq -sc --argjson ev "$ev" '[.[] | select(.event == "done" or .event == "cached") |
		select({job, step} as $k | $ev | index([$k])) | .event] | group_by(.) | map({(.[0]): length}) | add' <<<"$progress")
	assert_eq '{"cached":2,"done":1}' "$counts" "done/cached events of the tool stage's RUN across the three jobs"
	assert_eq "${tool[0]}" "${tool[1]}" "tool.txt in the linux/arm64 image vs linux/amd64"
	assert_eq "${tool[0]}" "${tool[2]}" "tool.txt in the linux/arm/v7 image vs linux/amd64"
	pass "the FROM --platform=\$BUILDPLATFORM stage ran once, natively, and all three images hold its file"
}

# ---------------------------------------------------------------- 2. variants

s2_variants() {
	mkdir -p "$T/c2"
	cat >"$T/c2/Dockerfile" <<-'EOF'
	ARG BASE
	FROM ${BASE}
	ARG FLAVOR=cpu
	RUN echo "$FLAVOR $(uname -m)" > /flavor
	EOF
	# shellcheck disable=SC2054 # the commas are --platform's
	local vargs=(--platform linux/amd64,linux/arm64 --build-arg "BASE=$BASE" --variant cpu
		--variant gpu:FLAVOR=gpu,platforms=linux/amd64 -t "$REG/v:1.0-{variant}")
	run_ok "$PLAIT" build --cache-dir "$CACHE" --progress plain "${vargs[@]}" --push \
		--metadata-file "$T/m2.json" "$T/c2"
	assert_eq "1.0-cpu 1.0-gpu" "$(tags_of v)" "tags of v after the variant build"
	local cpu gpu
	cpu=$(raw "$REG/v:1.0-cpu")
	gpu=$(raw "$REG/v:1.0-gpu")
	assert_eq "application/vnd.oci.image.index.v1+json" "$(jq -r .mediaType <<<"$cpu")" "media type of v:1.0-cpu"
	assert_eq "amd64 arm64" "$(jq -r '[.manifests[].platform.architecture] | join(" ")' <<<"$cpu")" "platforms of v:1.0-cpu"
	# A variant of one platform is a manifest: core/plan.h ("an image of one
	# platform is a manifest, not an index", as buildx does) and plait plan's
	# "kind" say so.
	assert_eq "application/vnd.oci.image.manifest.v1+json" "$(jq -r .mediaType <<<"$gpu")" \
		"media type of v:1.0-gpu (platforms=linux/amd64: one platform)"
	run_ok "$PLAIT" plan "${vargs[@]}" --format json "$T/c2"
	assert_eq "cpu index linux/amd64,linux/arm64 $REG/v:1.0-cpu;gpu manifest linux/amd64 $REG/v:1.0-gpu" \
		"$(jq -r '[.images[] | "\(.variant) \(.kind) \(.platforms | join(",")) \(.tags | join(","))"] | join(";")' <<<"$OUT")" \
		"plait plan's images for the same request"
	pass "two variants: one index (cpu) and one manifest (gpu, platforms=linux/amd64), tags with {variant}"

	local d
	d=$(digest_for "$cpu" linux/amd64)
	unpack_ref "$REG/v@$d" "$T/u2-cpu-amd64"
	assert_eq "cpu x86_64" "$(cat "$T/u2-cpu-amd64/rootfs/flavor")" "/flavor of cpu linux/amd64"
	d=$(digest_for "$cpu" linux/arm64)
	unpack_ref "$REG/v@$d" "$T/u2-cpu-arm64"
	assert_eq "cpu aarch64" "$(cat "$T/u2-cpu-arm64/rootfs/flavor")" "/flavor of cpu linux/arm64"
	unpack_ref "$REG/v:1.0-gpu" "$T/u2-gpu"
	assert_eq "gpu x86_64" "$(cat "$T/u2-gpu/rootfs/flavor")" "/flavor of gpu linux/amd64"
	pass "each variant's build args reach its images (ARG FLAVOR)"

	local m=$T/m2.json
	assert_eq 2 "$(jq '.images | length' "$m")" "images in the metadata file"
	assert_eq "cpu gpu" "$(jq -r '.variants | keys | join(" ")' "$m")" "variants in the metadata file"
	assert_eq "sha256:$(printf '%s' "$cpu" | sha256_stdin)" "$(jq -r .variants.cpu.digest "$m")" "metadata digest of cpu vs the registry"
	assert_eq "sha256:$(printf '%s' "$gpu" | sha256_stdin)" "$(jq -r .variants.gpu.digest "$m")" "metadata digest of gpu vs the registry"
	assert_eq "$REG/v:1.0-cpu" "$(jq -r '.variants.cpu.tags | join(" ")' "$m")" "metadata tags of cpu"
	assert_eq "$REG/v:1.0-gpu" "$(jq -r '.variants.gpu.tags | join(" ")' "$m")" "metadata tags of gpu"
	assert_eq "linux/amd64 linux/arm64" "$(jq -r '[.variants.cpu.platforms[].platform] | join(" ")' "$m")" "metadata platforms of cpu"
	assert_eq "$(digest_for "$cpu" linux/arm64)" "$(jq -r '.variants.cpu.platforms[1].digest' "$m")" "metadata digest of cpu linux/arm64"
	assert_eq "linux/amd64" "$(jq -r '[.variants.gpu.platforms[].platform] | join(" ")' "$m")" "metadata platforms of gpu"
	assert_eq "$(jq -c '[.images[] | {variant, digest}]' "$m")" "$(jq -c '[.variants[] | {variant, digest}]' "$m")" \
		"metadata: images and variants agree"
	pass "the metadata file lists both variants with their digests"
}

# ---------------------------------------------------------------- 3. plan

s3_plan() {
	mkdir -p "$T/c3"
	cat >"$T/c3/Dockerfile" <<-'EOF'
	ARG BASE
	FROM ${BASE}
	RUN true
	EOF
	run_ok "$PLAIT" plan --platform linux/amd64,linux/arm64 --build-arg "BASE=$BASE" --variant cpu \
		--variant gpu:FLAVOR=gpu,platforms=linux/amd64 -t "$REG/p:1.0-{variant}" --format json "$T/c3"
	local j=$OUT
	assert_eq 3 "$(jq '.jobs | length' <<<"$j")" "jobs in the plan"
	assert_eq "cpu linux/amd64 native false;cpu linux/arm64 qemu true;gpu linux/amd64 native false" \
		"$(jq -r '[.jobs[] | "\(.variant) \(.platform) \(.builder) \(.emulated)"] | sort | join(";")' <<<"$j")" \
		"(variant, platform, builder, emulated) of each job"
	assert_eq "FLAVOR=gpu" "$(jq -r '.jobs[] | select(.variant == "gpu") | .args | map(select(startswith("FLAVOR="))) | join(" ")' <<<"$j")" \
		"the gpu job's variant arg"
	assert_eq "linux/arm64" "$(jq -r '.jobs[0].platform' <<<"$j")" "the first job to start (emulated ones first)"
	assert_eq "" "$(tags_of p)" "tags of p after plait plan (nothing is built or pushed)"
	pass "plan --format json: three jobs, native for amd64, qemu for arm64"

	# A base image that lacks one platform is found at planning time, with
	# the platform and the Dockerfile line.
	run_expect_fail "$PLAIT" plan --platform linux/amd64,linux/arm64 --build-arg "BASE=$REG/base/noarm64:1" \
		-t "$REG/p:1.0" "$T/c3"
	expect_rc 2
	assert_contains "$ERR" "base image '$REG/base/noarm64:1' is missing for linux/arm64" "plan error"
	assert_contains "$ERR" "Dockerfile:2" "plan error"
	assert_not_contains "$ERR" "missing for linux/amd64" "plan error"
	pass "plan: a base image missing for linux/arm64 only is named with its Dockerfile line"

	# Every problem of one request in one run.
	run_expect_fail "$PLAIT" plan --platform linux/amd64,linux/arm64,linux/sparc64 \
		--build-arg "BASE=$REG/base/noarm64:1" --variant cpu --variant gpu:platforms=linux/amd64+linux/pdp11 \
		-t "$REG/p:1.0" -t "$REG/p:latest" "$T/c3"
	expect_rc 2
	assert_contains "$ERR" "--platform: unknown platform 'linux/sparc64'" "plan errors (unknown platform)"
	assert_contains "$ERR" "known: amd64, arm64" "plan errors (unknown platform: the known ones)"
	assert_contains "$ERR" "--variant 'gpu:platforms=linux/amd64+linux/pdp11': unknown platform 'linux/pdp11'" \
		"plan errors (unknown platform of a variant)"
	assert_contains "$ERR" "-t '$REG/p:1.0' has no {variant}" "plan errors (tag without {variant})"
	assert_contains "$ERR" "'latest'" "plan errors (the latest tag)"
	assert_contains "$ERR" "--allow-latest" "plan errors (the latest tag's fix)"
	assert_contains "$ERR" "missing for linux/arm64" "plan errors (the base image missing for arm64)"
	assert_contains "$ERR" "(6 problems; nothing was built)" "plan errors (how many)"
	pass "plan: unknown platforms (--platform, a variant's), {variant} missing, a latest tag and a missing arm64 base are all reported in one run (exit 2)"

	# How --platform entries are named in those problems.
	mkdir -p "$T/c3s"
	printf 'FROM scratch\nCOPY Dockerfile /\n' >"$T/c3s/Dockerfile"
	run_expect_fail "$PLAIT" plan --platform arm64,linux/arm64/v8,linux/amd64 -t "$REG/p:1.0" "$T/c3s"
	expect_rc 2
	assert_contains "$ERR" "'arm64' and 'linux/arm64/v8' are both linux/arm64" "plan error (one platform written twice)"
	run_expect_fail "$PLAIT" plan --platform 'linux/amd64, ' -t "$REG/p:1.0" "$T/c3s"
	expect_rc 2
	assert_contains "$ERR" "--platform 'linux/amd64, ': empty entry" "plan error (a blank entry)"
	# A bad platform of a variant does not take the host's default away.
	run_expect_fail "$PLAIT" plan --variant 'a:platforms=linux/amd64+linux/zzz' -t "$REG/p:1.0" "$T/c3s"
	expect_rc 2
	assert_contains "$ERR" "(1 problem;" "plan error (a variant's unknown platform, no --platform)"
	assert_contains "$ERR" "unknown platform 'linux/zzz'" "plan error (a variant's unknown platform, no --platform)"
	run_expect_fail "$PLAIT" plan --platform linux/amd64 --variant x --variant x-1 \
		-t "$REG/col:{variant}-1" -t "$REG/col:{variant}" "$T/c3s"
	expect_rc 2
	assert_contains "$ERR" "tag '$REG/col:x-1' is given to two images (x and x-1)" "plan error (variant tags alike)"
	pass "plan: a platform written twice, a blank entry and a variant's unknown platform are named as written"

	# --metadata-file that cannot be written: refused before anything is built or pushed
	run_expect_fail "$PLAIT" build --cache-dir "$CACHE" --platform linux/amd64,linux/arm64 -t "$REG/mf:1.0" --push \
		--metadata-file "$T/no-such-dir/m.json" "$T/c3s"
	expect_rc 2
	assert_contains "$ERR" "directory '$T/no-such-dir' does not exist" "a --metadata-file in a missing directory"
	assert_eq "" "$(tags_of mf)" "tags of mf after the refused build"
	pass "a --metadata-file that cannot be written is refused before the build (exit 2, no tag)"
}

# ---------------------------------------------------------------- 4. arm64-only failure

s4_partial_failure() {
	mkdir -p "$T/c4old" "$T/c4"
	printf 'ARG BASE\nFROM ${BASE}\nRUN echo old > /v\n' >"$T/c4old/Dockerfile"
	run_ok "$PLAIT" build --cache-dir "$CACHE" --progress plain --platform linux/amd64,linux/arm64 \
		--build-arg "BASE=$BASE" -t "$REG/f:1.0" --push "$T/c4old"
	local before
	before=$(raw "$REG/f:1.0" | sha256_stdin)
	cat >"$T/c4/Dockerfile" <<-'EOF'
	ARG BASE
	FROM ${BASE}
	RUN echo new > /v
	RUN [ "$(uname -m)" != aarch64 ]
	EOF
	run_expect_fail "$PLAIT" build --cache-dir "$CACHE" --progress plain --platform linux/amd64,linux/arm64 \
		--build-arg "BASE=$BASE" -t "$REG/f:1.0" -t "$REG/f:2.0" --push "$T/c4"
	expect_rc 1
	assert_contains "$ERR" "linux/arm64" "the error names the platform that failed"
	assert_contains "$ERR" "Dockerfile:4" "the error names the Dockerfile line"
	assert_contains "$ERR" "nothing was published" "the error says nothing was published"
	assert_not_contains "$ERR" "pushed $REG" "progress of the failed build"
	assert_eq "$before" "$(raw "$REG/f:1.0" | sha256_stdin)" "f:1.0 after the failed build (it must keep the old digest)"
	assert_eq "1.0" "$(tags_of f)" "tags of f after the failed build (2.0 must not appear)"
	pass "a RUN failing only under arm64: exit 1, platform and line named, no tag moved or added"
}

# ---------------------------------------------------------------- 5. CI matrix flow

s5_matrix() {
	mkdir -p "$T/c5"
	printf 'ARG BASE\nFROM ${BASE}\nRUN uname -m > /arch && echo matrix > /m\n' >"$T/c5/Dockerfile"
	export SOURCE_DATE_EPOCH=1700000000
	run_ok "$PLAIT" build --cache-dir "$CACHE" --progress plain --platform linux/amd64,linux/arm64 \
		--build-arg "BASE=$BASE" -t "$REG/one:1.0" --push --metadata-file "$T/m5-one.json" "$T/c5"
	local one a
	one=$(raw "$REG/one:1.0" | sha256_stdin)
	assert_eq "sha256:$one" "$(jq -r '."containerimage.digest"' "$T/m5-one.json")" "one-command build: metadata vs registry"
	# Each matrix job on its own (empty) cache, as on separate CI machines.
	for a in amd64 arm64; do
		run_ok "$PLAIT" build --cache-dir "$T/cache5-$a" --progress plain --platform "linux/$a" \
			--build-arg "BASE=$BASE" -t "$REG/mat:1.0" --push-by-digest --metadata-file "$T/m5-$a.json" "$T/c5"
	done
	assert_eq "" "$(tags_of mat)" "tags of mat after two --push-by-digest builds"
	run_ok "$PLAIT" index create -q -t "$REG/mat:1.0" --from-metadata "$T/m5-amd64.json" --from-metadata "$T/m5-arm64.json"
	local mat
	mat=$(raw "$REG/mat:1.0")
	assert_eq "amd64 arm64" "$(jq -r '[.manifests[].platform.architecture] | join(" ")' <<<"$mat")" "entries of the merged index"
	assert_eq "$(raw "$REG/one:1.0" | jq -c '[.manifests[].digest]')" "$(jq -c '[.manifests[].digest]' <<<"$mat")" \
		"manifest digests: matrix builds vs the one-command build"
	assert_eq "sha256:$one" "sha256:$(printf '%s' "$mat" | sha256_stdin)" \
		"index digest of index create --from-metadata vs the one-command build (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)
  one-command index: $(raw "$REG/one:1.0" | jq -c .annotations)
  matrix index:      $(jq -c .annotations <<<"$mat")
 "
	pass "CI matrix flow: per-platform --push-by-digest + index create --from-metadata = the one-command index"

	# The same with two variants: each runner builds both for its platform,
	# and one index create makes an index per variant.
	mkdir -p "$T/c5v"
	printf 'ARG BASE\nFROM ${BASE}\nARG FLAVOR=cpu\nRUN echo "$FLAVOR $(uname -m)" > /flavor\n' >"$T/c5v/Dockerfile"
	local vargs=(--build-arg "BASE=$BASE" --variant cpu --variant gpu:FLAVOR=gpu)
	run_ok "$PLAIT" build --cache-dir "$CACHE" --progress plain --platform linux/amd64,linux/arm64 \
		"${vargs[@]}" -t "$REG/onev:1.0-{variant}" --push "$T/c5v"
	for a in amd64 arm64; do
		run_ok "$PLAIT" build --cache-dir "$T/cache5-$a" --progress plain --platform "linux/$a" "${vargs[@]}" \
			-t "$REG/matv:1.0-{variant}" --push-by-digest --metadata-file "$T/m5v-$a.json" "$T/c5v"
	done
	assert_eq "" "$(tags_of matv)" "tags of matv after two --push-by-digest builds with variants"
	# -t without {variant} would put both variants' images in one index
	run_expect_fail "$PLAIT" index create -q -t "$REG/matv:1.0" --from-metadata "$T/m5v-amd64.json" \
		--from-metadata "$T/m5v-arm64.json"
	expect_rc 2
	assert_contains "$ERR" "2 variants (cpu, gpu)" "index create of two variants without {variant}"
	assert_contains "$ERR" "'$REG/matv:1.0-{variant}'" "index create without {variant}: the fix"
	# an SRC belongs to no variant
	run_expect_fail "$PLAIT" index create -q -t "$REG/matv:1.0-{variant}" --from-metadata "$T/m5v-amd64.json" \
		"$REG/one:1.0"
	expect_rc 2
	assert_contains "$ERR" "belongs to no variant" "index create with {variant} and an SRC"
	# metadata of a build without variants cannot fill {variant}
	run_expect_fail "$PLAIT" index create -q -t "$REG/matv:1.0-{variant}" --from-metadata "$T/m5-amd64.json"
	expect_rc 2
	assert_contains "$ERR" "m5-amd64.json' names an image of no variant" "index create with {variant}, metadata without"
	assert_eq "" "$(tags_of matv)" "tags of matv after the refused index creates"
	run_ok "$PLAIT" index create -q -t "$REG/matv:1.0-{variant}" --from-metadata "$T/m5v-amd64.json" \
		--from-metadata "$T/m5v-arm64.json"
	assert_eq "1.0-cpu 1.0-gpu" "$(tags_of matv)" "tags of matv after index create -t ...-{variant}"
	local v
	for v in cpu gpu; do
		mat=$(raw "$REG/matv:1.0-$v")
		assert_eq "amd64 arm64" "$(jq -r '[.manifests[].platform.architecture] | join(" ")' <<<"$mat")" \
			"entries of the merged $v index"
		assert_eq "$(raw "$REG/onev:1.0-$v" | sha256_stdin)" "$(printf '%s' "$mat" | sha256_stdin)" \
			"index digest of the merged $v index vs the one-command build's"
	done
	pass "CI matrix flow with variants: index create -t NAME:1.0-{variant} makes each variant's index, equal to the one-command build's"

	# variants whose tags expand alike are refused, and nothing is tagged
	run_ok "$PLAIT" build --cache-dir "$T/cache5-amd64" --progress plain --platform linux/amd64 \
		--build-arg "BASE=$BASE" --variant x --variant x-1 -t "$REG/xx:v-{variant}" --push-by-digest \
		--metadata-file "$T/m5x.json" "$T/c5v"
	run_expect_fail "$PLAIT" index create -q -t "$REG/xx:{variant}-1" -t "$REG/xx:{variant}" \
		--from-metadata "$T/m5x.json"
	expect_rc 2
	assert_contains "$ERR" "'$REG/xx:x-1' would be given to the indexes of two variants (x and x-1)" \
		"index create with variant tags alike"
	assert_eq "" "$(tags_of xx)" "tags of xx after the refused index create"
	pass "index create refuses -t values that two variants expand alike"
}

# ---------------------------------------------------------------- 6. annotations

s6_annotations() {
	mkdir -p "$T/c6"
	printf 'ARG BASE\nFROM ${BASE}\nRUN echo ann > /ann\n' >"$T/c6/Dockerfile"
	run_ok "$PLAIT" build --cache-dir "$CACHE" --progress plain --platform linux/amd64,linux/arm64 \
		--build-arg "BASE=$BASE" --source-date-epoch 1700000000 \
		--annotation index:org.example.a=1 --annotation 'manifest[linux/arm64]:org.example.b=2' \
		-t "$REG/ann:1.0" --push "$T/c6"
	local idx am64 arm
	idx=$(raw "$REG/ann:1.0")
	assert_eq "1" "$(jq -r '.annotations["org.example.a"]' <<<"$idx")" "index annotation org.example.a"
	assert_eq "2023-11-14T22:13:20Z" "$(jq -r '.annotations["org.opencontainers.image.created"]' <<<"$idx")" \
		"index org.opencontainers.image.created with --source-date-epoch 1700000000"
	assert_eq "null" "$(jq -r '.annotations["org.example.b"]' <<<"$idx")" "org.example.b on the index"
	am64=$(raw "$REG/ann@$(digest_for "$idx" linux/amd64)")
	arm=$(raw "$REG/ann@$(digest_for "$idx" linux/arm64)")
	assert_eq "2" "$(jq -r '.annotations["org.example.b"]' <<<"$arm")" "org.example.b on the linux/arm64 manifest"
	assert_eq "null" "$(jq -r '.annotations["org.example.b"] // "null"' <<<"$am64")" "org.example.b on the linux/amd64 manifest"
	assert_eq "null null" "$(jq -r '.annotations["org.example.a"] // "null"' <<<"$am64") $(jq -r '.annotations["org.example.a"] // "null"' <<<"$arm")" \
		"org.example.a (index only) on the manifests"
	pass "--annotation index:K=V on the index, manifest[linux/arm64]:K=V only on arm64; created = the epoch"
}

# ---------------------------------------------------------------- 7. OCI layout output

s7_layout() {
	local out=$T/layout7
	run_ok "$PLAIT" build --cache-dir "$CACHE" --progress plain --platform linux/amd64,linux/arm64 \
		--build-arg "BASE=$BASE" --variant cpu --variant gpu:FLAVOR=gpu,platforms=linux/amd64 \
		-t "$REG/v:1.0-{variant}" --output "type=oci,dest=$out" "$T/c2"
	verify_layout_blobs "$out"
	local cpu gpu
	cpu=$(layout_tag_digest "$out" 1.0-cpu)
	gpu=$(layout_tag_digest "$out" 1.0-gpu)
	assert_match "$cpu" '^sha256:[0-9a-f]{64}$' "digest of tag 1.0-cpu in the layout ($(cat "$out/index.json"))"
	assert_match "$gpu" '^sha256:[0-9a-f]{64}$' "digest of tag 1.0-gpu in the layout ($(cat "$out/index.json"))"
	assert_ne "$cpu" "$gpu" "the two variants' digests"
	assert_eq "amd64 arm64" "$(skopeo inspect --raw "oci:$out:1.0-cpu" | jq -r '[.manifests[].platform.architecture] | join(" ")')" \
		"platforms of 1.0-cpu in the layout"
	run_ok umoci unpack --image "$out:1.0-gpu" "$T/u7-gpu"
	assert_eq "gpu x86_64" "$(cat "$T/u7-gpu/rootfs/flavor")" "/flavor of 1.0-gpu from the layout"
	pass "--output type=oci with two variants: the layout holds 1.0-cpu and 1.0-gpu"

	# One image under two repositories, also kept in a layout: its own tags do not clash.
	run_ok "$PLAIT" build --cache-dir "$CACHE" --progress plain --platform linux/amd64,linux/arm64 \
		--build-arg "BASE=$BASE" -t "$REG/a7:1.0" -t "$REG/b7:1.0" --output "type=oci,dest=$T/layout7b" \
		--push "$T/c2"
	assert_eq "1.0 1.0" "$(tags_of a7) $(tags_of b7)" "tags of a7 and b7"
	assert_eq "$(raw "$REG/a7:1.0" | sha256_stdin)" "$(layout_tag_digest "$T/layout7b" 1.0 | sed 's/^sha256://')" \
		"the layout's 1.0 vs the pushed index"
	assert_eq 1 "$(jq '[.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "1.0")] | length' \
		"$T/layout7b/index.json")" "entries tagged 1.0 in the layout"
	pass "-t in two repositories with --output type=oci and --push: one image, pushed twice, tagged once in the layout"
}

# ---------------------------------------------------------------- 8. SIGINT

s8_sigint() {
	mkdir -p "$T/c8"
	local nonce
	nonce=$(cat /proc/sys/kernel/random/uuid)
	cat >"$T/c8/Dockerfile" <<-EOF
	ARG BASE
	FROM \${BASE}
	RUN echo "before $nonce" > /one
	RUN /bin/busybox sleep 37
	RUN echo after > /two
	EOF
	local log=$T/sigint.log pid t0 t1 rc=0 i
	"$PLAIT" build --cache-dir "$CACHE" --progress plain --platform linux/amd64,linux/arm64 \
		--build-arg "BASE=$BASE" -t "$REG/s:1.0" --push "$T/c8" >"$log" 2>&1 &
	pid=$!
	# shellcheck disable=SC2064 # this pid, now
	trap "kill -KILL $pid 2>/dev/null || true" EXIT
	for i in $(seq 1 300); do
		[ "$(grep -c 'RUN /bin/busybox sleep 37' "$log" || true)" -ge 2 ] && break
		kill -0 "$pid" 2>/dev/null || fail "plait exited before reaching the sleep: $(cat "$log")"
		sleep 0.1
	done
	[ "$(grep -c 'RUN /bin/busybox sleep 37' "$log" || true)" -ge 2 ] ||
		fail "both jobs did not reach 'RUN /bin/busybox sleep 37' in 30 s: $(cat "$log")"
	# Both sleeps running (the emulated one as qemu-aarch64-static /bin/busybox ...).
	for _ in $(seq 1 100); do
		[ "$(pgrep -fc 'busybox sleep 37$' || true)" -ge 2 ] && break
		sleep 0.1
	done
	[ "$(pgrep -fc 'busybox sleep 37$' || true)" -ge 2 ] ||
		fail "the two RUN sleeps are not running: $(pgrep -af 'sleep 37' || true); $(cat "$log")"
	t0=$(date +%s%N)
	kill -INT "$pid"
	if ! wait_pid_gone "$pid" 15; then
		kill -KILL "$pid"
		fail "plait still ran 15 s after SIGINT: $(cat "$log")"
	fi
	wait "$pid" || rc=$?
	t1=$(date +%s%N)
	assert_eq 130 "$rc" "exit code after SIGINT (output: $(cat "$log"))"
	[ $(((t1 - t0) / 1000000)) -le 5000 ] || fail "plait took $(((t1 - t0) / 1000000)) ms to exit after SIGINT (limit 5000)"
	assert_eq "" "$(tags_of s)" "tags of s after the interrupted build"
	assert_eq "" "$(pgrep -af 'busybox sleep 37$' || true)" "RUN processes left after the interrupted build"
	pass "SIGINT during RUN sleep: exit 130 in $(((t1 - t0) / 1000000)) ms, no tag, no RUN left running"

	sed -i '/sleep 37/d' "$T/c8/Dockerfile"
	run_ok "$PLAIT" build --cache-dir "$CACHE" --progress plain --platform linux/amd64,linux/arm64 \
		--build-arg "BASE=$BASE" -t "$REG/s:1.0" --push "$T/c8"
	assert_contains "$ERR" "[linux/amd64] #2 CACHED" "the rerun's progress (RUN echo before, amd64)"
	assert_contains "$ERR" "[linux/arm64] #2 CACHED" "the rerun's progress (RUN echo before, arm64)"
	assert_contains "$ERR" "[linux/amd64] #3 DONE" "the rerun's progress (RUN echo after, amd64)"
	assert_eq "1.0" "$(tags_of s)" "tags of s after the rerun"
	pass "the rerun without the sleep reuses the steps that finished before SIGINT"
}

# ---------------------------------------------------------------- 9. applets under QEMU

# busybox's shell runs most applets (sleep, ls, ...) by exec'ing itself with
# argv[0] set to the applet's name; under binfmt_misc that name only reaches
# the program when the handler has the P (preserve-argv0) flag, as docker's
# tonistiigi/binfmt registers it. Without it, 'sleep 1' becomes 'sh 1'.
s9_applets() {
	mkdir -p "$T/c9"
	printf 'ARG BASE\nFROM ${BASE}\nRUN sleep 0 && ls /bin/busybox > /ok\n' >"$T/c9/Dockerfile"
	run_ok "$PLAIT" build --cache-dir "$CACHE" --progress plain --platform linux/arm64,linux/arm/v7 \
		--build-arg "BASE=$BASE" -t x/applets:1 --output "type=oci,dest=$T/layout9" "$T/c9"
	pass "busybox applets exec'd by the shell (sleep, ls) run under QEMU for linux/arm64 and linux/arm/v7"
}

# ---------------------------------------------------------------- 10. cache mount sharing

# Parallel jobs share cache mounts: sharing=locked lets one RUN at a time in
# (a marker file would be seen by an overlapping RUN), sharing=private gives a
# RUN that finds the mount busy an empty one of its own.
s10_sharing() {
	mkdir -p "$T/c10"
	printf '%s\n' 'ARG BASE' 'FROM ${BASE}' \
		'RUN --mount=type=cache,id=shared-c10,target=/c,sharing=locked if [ -e /c/busy ]; then echo OVER""LAP; exit 1; fi; touch /c/busy; sleep 2; rm /c/busy; echo $(uname -m) >> /c/log' \
		>"$T/c10/Dockerfile"
	run_ok "$PLAIT" build --cache-dir "$CACHE" --no-cache --progress plain --platform linux/amd64,linux/arm64 \
		--build-arg "BASE=$BASE" -t x/locked:1 --output "type=oci,dest=$T/layout10" "$T/c10"
	assert_not_contains "$ERR" "OVERLAP" "a locked cache mount used by two RUNs at once"
	pass "RUN --mount=type=cache,sharing=locked: parallel jobs take turns"
	sed -i 's/sharing=locked/sharing=private/; s/exit 1; fi; touch/fi; touch/' "$T/c10/Dockerfile"
	sed -i 's/id=shared-c10/id=private-c10/' "$T/c10/Dockerfile"
	run_ok "$PLAIT" build --cache-dir "$CACHE" --no-cache --progress plain --platform linux/amd64,linux/arm64 \
		--build-arg "BASE=$BASE" -t x/private:1 --output "type=oci,dest=$T/layout10p" "$T/c10"
	assert_not_contains "$ERR" "OVERLAP" "a private cache mount shared by two RUNs at once"
	pass "RUN --mount=type=cache,sharing=private: a busy mount is not shared"
}

# ---------------------------------------------------------------- 11. no builder needed

# A platform with no QEMU handler and no native support can still be built
# when nothing runs on it: the image is FROM scratch and takes a file made in
# a FROM --platform=$BUILDPLATFORM stage (the cross-compiling pattern). One
# with a RUN of its own is still refused with the fix.
s11_no_builder() {
	local free
	free=$("$PLAIT" qemu status | awk 'NR > 1 && $2 == "no" && $3 == "-" { print $1; exit }')
	if [ -z "$free" ]; then
		echo "# every architecture plait knows has a builder here: nothing to check"
		return 0
	fi
	mkdir -p "$T/c11"
	printf '%s\n' 'ARG BASE' 'FROM --platform=$BUILDPLATFORM ${BASE} AS tools' 'ARG TARGETPLATFORM' \
		'RUN echo "made on $(uname -m) for $TARGETPLATFORM" > /out.txt' \
		'FROM scratch' 'COPY --from=tools /out.txt /out.txt' >"$T/c11/Dockerfile"
	run_ok "$PLAIT" plan --format json --platform "linux/amd64,linux/$free" --build-arg "BASE=$BASE" \
		-t "$REG/nobuilder:1.0" "$T/c11"
	assert_eq "native none" "$(jq -r '[.jobs[] | .builder] | sort | join(" ")' <<<"$OUT")" \
		"builders of linux/amd64 and linux/$free"
	run_ok "$PLAIT" build --cache-dir "$CACHE" --progress plain --platform "linux/amd64,linux/$free" \
		--build-arg "BASE=$BASE" -t "$REG/nobuilder:1.0" --push "$T/c11"
	local idx d
	idx=$(raw "$REG/nobuilder:1.0")
	d=$(digest_for "$idx" "linux/$free")
	[ -n "$d" ] || fail "no linux/$free entry in the index: $idx"
	unpack_ref "$REG/nobuilder@$d" "$T/u11"
	assert_eq "made on x86_64 for linux/$free" "$(cat "$T/u11/rootfs/out.txt")" "/out.txt of the linux/$free image"
	pass "linux/$free, which nothing here can run, built without a builder: its file made natively in the \$BUILDPLATFORM stage"

	printf '%s\n' 'ARG BASE' 'FROM ${BASE}' 'RUN true' >"$T/c11/Dockerfile.run"
	run_expect_fail "$PLAIT" plan --platform "linux/amd64,linux/$free" --build-arg "BASE=$BASE" \
		-f "$T/c11/Dockerfile.run" -t "$REG/nobuilder:1.1" "$T/c11"
	expect_rc 2
	assert_contains "$ERR" "no builder for linux/$free" "plan of a RUN on linux/$free"
	pass "a RUN on linux/$free is still refused at planning, with the fix"
}

# ---------------------------------------------------------------- 12. early push
# With --push, a job's image goes to its repository by digest as soon as it
# is built, while the other jobs still build (no tag, no index: those wait
# for every job); publishing finds it in place.
s12_early_push() {
	mkdir -p "$T/c12"
	cat >"$T/c12/Dockerfile" <<-'EOF'
	ARG BASE
	FROM ${BASE}
	ARG PAUSE=0
	RUN echo "slept $PAUSE" > /slept && /bin/sleep "$PAUSE"
	EOF
	local log=$T/early.log pid seen=0 n0
	n0=$(wc -l <"$R_LOG")
	"$PLAIT" build --cache-dir "$CACHE" --progress plain --jobs 2 --platform linux/amd64 --build-arg "BASE=$BASE" \
		--variant fast --variant slow:PAUSE=6 -t "$REG/early:{variant}" --push "$T/c12" >"$log" 2>&1 &
	pid=$!
	for _ in $(seq 1 100); do
		if grep -q 'PUT /v2/early/manifests/sha256:' "$R_LOG"; then
			seen=1
			break
		fi
		sleep 0.1
	done
	# the fast job's manifest is there by digest while the slow one sleeps; no tag yet
	local tags_then
	tags_then=$(tags_of early)
	local running=0
	kill -0 "$pid" 2>/dev/null && running=1
	wait "$pid" || fail "the build with two variants failed: $(cat "$log")"
	[ "$seen" = 1 ] || fail "no manifest of early was pushed by digest while the build ran"
	[ "$running" = 1 ] || fail "the build had ended before the check (the slow job should still sleep)"
	assert_eq "" "$tags_then" "tags of early while the slow job still ran"
	assert_eq "fast slow" "$(tags_of early)" "tags of early after the build"
	local fast
	fast=$(raw "$REG/early:fast" | sha256_stdin)
	grep -q "PUT /v2/early/manifests/sha256:$fast" "$R_LOG" ||
		fail "the manifest pushed early is not the one tagged fast (sha256:$fast)"
	pass "--push: the first job's image is pushed by digest while the other builds; tags move after both"

	# What the run stored it does not ask for again: publishing finds the
	# blobs the early push uploaded and the manifests it stored by digest
	# without a request (before: a HEAD of every blob, each manifest PUT twice).
	local again
	again=$(tail -n +$((n0 + 1)) "$R_LOG" | "$PY" -c '
import re, sys, collections
up, puts, bad = set(), collections.Counter(), []
for line in sys.stdin:
    m = re.search(r"\"(PUT|HEAD) (/v2/early/[^ ?]*)(\?[^ ]*)? HTTP[^\"]*\" (\d+)", line)
    if not m:
        continue
    meth, path, query, code = m.group(1), m.group(2), m.group(3) or "", m.group(4)
    if meth == "PUT" and "/blobs/uploads/" in path:
        d = re.search(r"digest=(sha256(?::|%3A)[0-9a-f]{64})", query)
        if d and code == "201":
            up.add(d.group(1).replace("%3A", ":"))
    elif meth == "HEAD" and "/blobs/" in path and path.rsplit("/", 1)[1] in up:
        bad.append("HEAD of blob %s after its upload" % path.rsplit("/", 1)[1][:19])
    elif meth == "PUT" and "/manifests/sha256:" in path:
        puts[path.rsplit("/", 1)[1]] += 1
bad += ["manifest %s PUT %d times" % (d[:19], n) for d, n in puts.items() if n > 1]
if not up or not puts:
    bad.append("the log shows %d blob uploads and %d manifest PUTs by digest: nothing to check" % (len(up), len(puts)))
print("; ".join(bad))')
	assert_eq "" "$again" "requests for what the run had stored already"
	pass "--push: nothing the early push stored is checked or stored again by publishing"
}

# ---------------------------------------------------------------- 13. one pull per base
# Two stages FROM one base (the second prefetched while the first runs) and
# two platforms at once: with an empty cache each base blob is fetched once,
# the stage that comes second waits for the first pull and unpack.
s13_one_pull() {
	mkdir -p "$T/c13"
	printf '%s\n' 'ARG BASE' 'FROM ${BASE} AS a' 'RUN echo a > /a' \
		'FROM ${BASE}' 'COPY f.txt /f.txt' 'COPY --from=a /a /a' 'RUN cat /a' >"$T/c13/Dockerfile"
	echo f >"$T/c13/f.txt"
	local n0 gets
	n0=$(wc -l <"$R_LOG")
	run_ok "$PLAIT" build --cache-dir "$T/cache13" --progress plain --platform linux/amd64,linux/arm64 \
		--build-arg "BASE=$BASE" -t "$REG/onepull:1" --push "$T/c13"
	gets=$(tail -n +$((n0 + 1)) "$R_LOG" | grep -oE '"GET /v2/base/multi/blobs/sha256:[0-9a-f]+' | sort | uniq -c |
		awk '{ n++; if ($1 != 1) bad = bad " " substr($3, 29, 12) " x" $1 } END { print n + 0 ":" bad }')
	assert_eq "4:" "$gets" "base blobs fetched (count: blobs fetched more than once)"
	pass "two stages and two platforms FROM one base: each of its blobs fetched once"
}

section "1. three platforms, BUILDPLATFORM tool stage" s1_three_platforms
section "2. variants" s2_variants
section "3. plait plan" s3_plan
section "4. failure under arm64 only" s4_partial_failure
section "5. CI matrix flow" s5_matrix
section "6. annotations" s6_annotations
section "7. OCI layout with variants" s7_layout
section "8. SIGINT" s8_sigint
section "9. busybox applets under QEMU" s9_applets
section "10. cache mount sharing" s10_sharing
section "11. no builder needed" s11_no_builder
section "12. early push" s12_early_push
section "13. one pull per base" s13_one_pull

if [ ${#FAILED[@]} -gt 0 ]; then
	fail "${#FAILED[@]} of 13 sections failed: $(printf '[%s] ' "${FAILED[@]}")"
fi
