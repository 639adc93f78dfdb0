#!/usr/bin/env bash
# test_registry_plain.sh - copy, inspect and index create against plain HTTP
# docker-registry instances on loopback, checked with skopeo.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd skopeo docker-registry curl jq
require_plait

registry_start A plain
registry_start B plain

# The test image: 3 platforms, the first layer shared between them.
mkimage "$T/img" --tag v1 --platform linux/amd64 --platform linux/arm64 \
	--platform linux/arm/v7 --layers 2 --layer-size 512K --shared-base >/dev/null
skopeo_reg inspect --raw "oci:$T/img:v1" >"$T/orig.json"
ORIG=$(sha256_file "$T/orig.json")
ORIG_BLOBS=$(blob_names "$T/img")
CHILDREN=$(jq -r '.manifests[].digest' "$T/orig.json")
digest_for() { # PLATFORM -> child digest in the original index
	jq -r --arg p "$1" '.manifests[] | select(
		(.platform.os + "/" + .platform.architecture +
		 (if .platform.variant then "/" + .platform.variant else "" end)) == $p) | .digest' \
		"$T/orig.json"
}
AMD64=$(digest_for linux/amd64)
ARM64=$(digest_for linux/arm64)
ARMV7=$(digest_for linux/arm/v7)
[ -n "$AMD64" ] && [ -n "$ARM64" ] && [ -n "$ARMV7" ] || fail "mkimage index lacks a platform"

skopeo_reg copy -q --all "oci:$T/img:v1" "docker://$A_HOST/src/img:v1"
assert_eq "$ORIG" "$(raw_digest "docker://$A_HOST/src/img:v1")" "index digest after the skopeo push"
pass "fixture pushed with skopeo"

# check_copy SKOPEO_REF LABEL : the index there is byte-identical, and a
# skopeo copy --all from there (skopeo verifies every digest) yields exactly
# the original blobs.
n_check=0
check_copy() {
	local ref=$1 label=$2
	n_check=$((n_check + 1))
	skopeo_reg inspect --raw "$ref" >"$T/check.json"
	assert_eq "$ORIG" "$(sha256_file "$T/check.json")" "$label: sha256 of the index"
	assert_eq "$CHILDREN" "$(jq -r '.manifests[].digest' "$T/check.json")" "$label: child manifest digests"
	local v=$T/verify-$n_check
	skopeo_reg copy -q --all "$ref" "oci:$v:x" ||
		fail "$label: skopeo copy --all from '$ref' failed"
	assert_eq "$ORIG_BLOBS" "$(blob_names "$v")" "$label: blobs reachable from the copy"
	verify_layout_blobs "$v"
	pass "$label"
}

# registry -> other repository on the same registry: blobs are mounted
run_ok "$PLAIT" copy --all "$A_HOST/src/img:v1" "$A_HOST/other/img:v1"
check_copy "docker://$A_HOST/other/img:v1" "copy --all to another repository of the same registry"
grep -q 'POST /v2/other/img/blobs/uploads/?[^ ]*mount=' "$A_LOG" ||
	fail "no blob mount request (POST .../blobs/uploads/?mount=) for other/img in the registry log"
if grep -qE '"(PATCH|PUT) /v2/other/img/blobs/uploads/' "$A_LOG"; then
	fail "blobs were uploaded to other/img although they could be mounted:
$(grep -E '"(PATCH|PUT) /v2/other/img/blobs/uploads/' "$A_LOG" | head -n 5)"
fi
pass "same-registry copy mounts blobs instead of uploading them"

# -> another registry
run_ok "$PLAIT" copy --all "$A_HOST/other/img:v1" "$B_HOST/copy/img:v1"
check_copy "docker://$B_HOST/copy/img:v1" "copy --all to another registry"

# -> OCI layout
run_ok "$PLAIT" copy --all "$B_HOST/copy/img:v1" "oci:$T/layout:v1"
check_copy "oci:$T/layout:v1" "copy --all to an OCI layout"
assert_eq "sha256:$ORIG" "$(layout_tag_digest "$T/layout" v1)" "index.json entry for tag v1"
verify_layout_blobs "$T/layout"
assert_eq "$ORIG_BLOBS" "$(blob_names "$T/layout")" "blobs in the OCI layout"
pass "OCI layout holds exactly the image's blobs"

# -> OCI archive
run_ok "$PLAIT" copy --all "oci:$T/layout:v1" "oci-archive:$T/img.tar:v1"
assert_file_exists "$T/img.tar" "OCI archive"
check_copy "oci-archive:$T/img.tar:v1" "copy --all to an OCI archive"

# -> registry again
run_ok "$PLAIT" copy --all "oci-archive:$T/img.tar:v1" "$B_HOST/final/img:v1"
check_copy "docker://$B_HOST/final/img:v1" "copy --all from an OCI archive to a registry"

# a copy onto the same destination again is fine and changes nothing
run_ok "$PLAIT" copy --all "$A_HOST/src/img:v1" "$B_HOST/final/img:v1"
assert_eq "$ORIG" "$(raw_digest "docker://$B_HOST/final/img:v1")" "index digest after a repeated copy"
pass "repeated copy is idempotent"

# inspect: table lists the platforms and digests
run_ok "$PLAIT" inspect "$A_HOST/src/img:v1"
for p in linux/amd64 linux/arm64 linux/arm/v7; do
	assert_contains "$OUT" "$p" "plait inspect table"
done
for d in $CHILDREN; do
	# tables may shorten digests; the first 12 hex digits must be there
	short=${d#sha256:}
	assert_contains "$OUT" "${short:0:12}" "plait inspect table"
done
pass "inspect lists the 3 platforms and their digests"

# inspect --raw: exactly skopeo's bytes, for registry, layout and archive
for ref in "$A_HOST/src/img:v1" "oci:$T/layout:v1" "oci-archive:$T/img.tar:v1"; do
	"$PLAIT" inspect --raw "$ref" >"$T/raw.out" || fail "plait inspect --raw '$ref' failed"
	cmp -s "$T/orig.json" "$T/raw.out" ||
		fail "plait inspect --raw '$ref' differs from skopeo's bytes: sha256 $(sha256_file "$T/raw.out"), want $ORIG"
done
pass "inspect --raw equals skopeo inspect --raw byte for byte"
"$PLAIT" inspect --raw "$A_HOST/src/img@$ARM64" >"$T/raw-arm64.out" ||
	fail "plait inspect --raw by digest failed"
assert_eq "${ARM64#sha256:}" "$(sha256_file "$T/raw-arm64.out")" "sha256 of inspect --raw REPO@DIGEST"
pass "inspect --raw by digest returns that manifest"

# inspect a single manifest: layers and config
run_ok "$PLAIT" inspect "$A_HOST/src/img@$ARM64"
layer0=$(skopeo_reg inspect --raw "docker://$A_HOST/src/img@$ARM64" | jq -r '.layers[0].digest')
short=${layer0#sha256:}
assert_contains "$OUT" "${short:0:12}" "plait inspect of a manifest (first layer)"
pass "inspect of a manifest shows its layers"
run_ok "$PLAIT" inspect --platform linux/arm64 "$A_HOST/src/img:v1"
assert_contains "$OUT" "${short:0:12}" "plait inspect --platform linux/arm64 (first layer)"
pass "inspect --platform picks the platform's manifest"

# inspect --format json: valid JSON naming every child
run_ok "$PLAIT" inspect --format json "$A_HOST/src/img:v1"
printf '%s' "$OUT" | jq . >/dev/null 2>&1 || fail "plait inspect --format json is not JSON:
$OUT"
for d in $CHILDREN; do
	assert_contains "$OUT" "$d" "plait inspect --format json"
done
pass "inspect --format json is JSON with every child digest"

# copy --platform with one platform: that platform's manifest, unchanged
run_ok "$PLAIT" copy --platform linux/arm64 "$A_HOST/src/img:v1" "$A_HOST/arm/img:1"
skopeo_reg inspect --raw "docker://$A_HOST/arm/img:1" >"$T/arm.json"
assert_eq "${ARM64#sha256:}" "$(sha256_file "$T/arm.json")" "digest after copy --platform linux/arm64"
assert_eq "application/vnd.oci.image.manifest.v1+json" "$(jq -r .mediaType "$T/arm.json")" "media type after copy --platform linux/arm64"
skopeo_reg copy -q "docker://$A_HOST/arm/img:1" "oci:$T/arm-verify:x" ||
	fail "skopeo cannot copy the single-platform result"
pass "copy --platform linux/arm64 yields the arm64 manifest"

# copy --platform with two platforms: a new index with exactly those
run_ok "$PLAIT" copy --platform linux/amd64,linux/arm/v7 "$A_HOST/src/img:v1" "$A_HOST/two/img:1"
skopeo_reg inspect --raw "docker://$A_HOST/two/img:1" >"$T/two.json"
assert_eq "2" "$(jq '.manifests | length' "$T/two.json")" "entries in the 2-platform index"
assert_eq "$(printf '%s\n' "$AMD64" "$ARMV7" | sort)" \
	"$(jq -r '.manifests[].digest' "$T/two.json" | sort)" "digests in the 2-platform index"
assert_eq "linux/amd64 linux/arm/v7" \
	"$(jq -r '.manifests[].platform | .os + "/" + .architecture + (if .variant then "/" + .variant else "" end)' "$T/two.json" | sort | xargs)" \
	"platforms in the 2-platform index"
skopeo_reg copy -q --all "docker://$A_HOST/two/img:1" "oci:$T/two-verify:x" ||
	fail "skopeo cannot copy the 2-platform index"
pass "copy --platform linux/amd64,linux/arm/v7 yields an index of those two"

# copy without --all/--platform: narrowed to the host platform
hp=$(host_platform)
hd=$(digest_for "$hp")
if [ -n "$hd" ]; then
	run_ok "$PLAIT" copy "$A_HOST/src/img:v1" "$A_HOST/host/img:1"
	assert_eq "${hd#sha256:}" "$(raw_digest "docker://$A_HOST/host/img:1")" "digest after copy without --all on $hp"
	pass "copy without --all picks the host platform ($hp)"
else
	echo "# host platform $hp is not in the test image; narrowing not checked"
fi

# index create from single-platform images
for p in linux/amd64 linux/arm64 linux/arm/v7; do
	tag=$(echo "$p" | tr / -)
	mkimage "$T/single" --tag "$tag" --platform "$p" --single --layers 1 \
		--layer-size 64K --seed single >/dev/null
	skopeo_reg copy -q "oci:$T/single:$tag" "docker://$A_HOST/single/img:$tag"
done
S_AMD64=$(layout_tag_digest "$T/single" linux-amd64)
S_ARM64=$(layout_tag_digest "$T/single" linux-arm64)
S_ARMV7=$(layout_tag_digest "$T/single" linux-arm-v7)
assert_eq "${S_ARM64#sha256:}" "$(raw_digest "docker://$A_HOST/single/img:linux-arm64")" "single-platform fixture digest"

plat_list() { # JSON file -> "digest os/arch[/variant]" lines, sorted
	jq -r '.manifests[] | .digest + " " + .platform.os + "/" + .platform.architecture +
		(if .platform.variant then "/" + .platform.variant else "" end)' "$1" | sort
}

run_ok "$PLAIT" index create -t "$A_HOST/multi/img:1" -t "$A_HOST/multi/img:also" \
	--annotation org.opencontainers.image.description=plait-test \
	"$A_HOST/single/img:linux-amd64" "$A_HOST/single/img:linux-arm64"
skopeo_reg inspect --raw "docker://$A_HOST/multi/img:1" >"$T/multi.json"
assert_eq "application/vnd.oci.image.index.v1+json" "$(jq -r .mediaType "$T/multi.json")" "index create media type"
assert_eq "$(printf '%s\n' "$S_AMD64 linux/amd64" "$S_ARM64 linux/arm64" | sort)" \
	"$(plat_list "$T/multi.json")" "index create entries"
assert_eq "plait-test" "$(jq -r '.annotations["org.opencontainers.image.description"]' "$T/multi.json")" \
	"index-level annotation"
assert_eq "$(sha256_file "$T/multi.json")" "$(raw_digest "docker://$A_HOST/multi/img:also")" \
	"digest of the second -t tag"
skopeo_reg copy -q --all "docker://$A_HOST/multi/img:1" "oci:$T/multi-verify:x" ||
	fail "skopeo cannot copy the created index"
pass "index create pushes an index with the right platforms and annotation to every -t"

run_ok "$PLAIT" index create --append -t "$A_HOST/multi/img:1" "$A_HOST/single/img:linux-arm-v7"
skopeo_reg inspect --raw "docker://$A_HOST/multi/img:1" >"$T/multi2.json"
assert_eq "$(printf '%s\n' "$S_AMD64 linux/amd64" "$S_ARM64 linux/arm64" "$S_ARMV7 linux/arm/v7" | sort)" \
	"$(plat_list "$T/multi2.json")" "entries after index create --append"
assert_eq "plait-test" "$(jq -r '.annotations["org.opencontainers.image.description"]' "$T/multi2.json")" \
	"index annotation kept by --append"
pass "index create --append adds a platform and keeps the rest"

# --append onto a single-platform image: it becomes the index's first entry
skopeo_reg copy -q "docker://$A_HOST/single/img:linux-amd64" "docker://$A_HOST/grow/img:1"
run_ok "$PLAIT" index create --append -t "$A_HOST/grow/img:1" "$A_HOST/single/img:linux-arm64"
assert_contains "$ERR" "with 2 entries" "index create --append onto a manifest"
skopeo_reg inspect --raw "docker://$A_HOST/grow/img:1" >"$T/grow.json"
assert_eq "$(printf '%s\n' "$S_AMD64 linux/amd64" "$S_ARM64 linux/arm64" | sort)" \
	"$(plat_list "$T/grow.json")" "entries after index create --append onto a single-platform image"
pass "index create --append onto a single-platform image makes an index of both"

run_ok "$PLAIT" index create --index-format docker -t "$A_HOST/multi/img:docker" \
	"$A_HOST/single/img:linux-amd64" "$A_HOST/single/img:linux-arm64"
skopeo_reg inspect --raw "docker://$A_HOST/multi/img:docker" >"$T/multi-docker.json"
assert_eq "application/vnd.docker.distribution.manifest.list.v2+json" \
	"$(jq -r .mediaType "$T/multi-docker.json")" "media type with --index-format docker"
assert_eq "$(printf '%s\n' "$S_AMD64 linux/amd64" "$S_ARM64 linux/arm64" | sort)" \
	"$(plat_list "$T/multi-docker.json")" "entries with --index-format docker"
pass "index create --index-format docker pushes a manifest list"

# Two -t into one OCI archive (and one layout): both tags end up in it.
run_ok "$PLAIT" index create -q -t "oci-archive:$T/two.tar:one" -t "oci-archive:$T/two.tar:two" \
	-t "oci:$T/two-layout:one" -t "oci:$T/two-layout:two" \
	"$A_HOST/single/img:linux-amd64" "$A_HOST/single/img:linux-arm64"
want=$(sha256_file "$T/multi-docker.json")
for tag in one two; do
	got=$(raw_digest "oci-archive:$T/two.tar:$tag") || fail "tag $tag is missing from the archive"
	assert_eq "$(raw_digest "oci:$T/two-layout:one")" "$got" "digest of $tag in the archive"
	raw_digest "oci:$T/two-layout:$tag" >/dev/null || fail "tag $tag is missing from the layout"
done
[ "$want" != "$got" ] || fail "the OCI index equals the Docker list"
assert_eq "blobs index.json oci-layout" "$(ls -A "$T/two-layout" | sort | paste -sd' ')" "files of a layout plait wrote"
pass "index create with two -t in one archive and one layout keeps both tags"

# Writers of one OCI archive take turns: six copies at once add six tags.
mkdir -p "$T/arc"
pids=()
for i in 1 2 3 4 5 6; do
	"$PLAIT" copy -q --all "$A_HOST/single/img:linux-amd64" "oci-archive:$T/arc/conc.tar:t$i" >/dev/null 2>"$T/arc/err$i" &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || fail "a concurrent copy into conc.tar failed: $(cat "$T"/arc/err*)"
done
assert_eq "t1 t2 t3 t4 t5 t6" \
	"$(tar -xOf "$T/arc/conc.tar" index.json | jq -r '[.manifests[].annotations["org.opencontainers.image.ref.name"]] | sort | join(" ")')" \
	"tags in an archive six copies wrote at once ($(cat "$T"/arc/err*))"
# An existing archive keeps its mode, a symlinked one is written through the
# link, and an empty file (mktemp's) is a new archive.
chmod 600 "$T/arc/conc.tar"
ln -s conc.tar "$T/arc/link.tar"
run_ok "$PLAIT" copy -q --all "$A_HOST/single/img:linux-amd64" "oci-archive:$T/arc/link.tar:vialink"
[ -L "$T/arc/link.tar" ] || fail "the symlinked archive was replaced by a file"
assert_eq 600 "$(stat -c %a "$T/arc/conc.tar")" "mode of an archive plait added a tag to"
grep -q '"vialink"' <<<"$(tar -xOf "$T/arc/conc.tar" index.json)" || fail "the tag written through the symlink is not in its target"
: >"$T/arc/empty.tar"
run_ok "$PLAIT" copy -q --all "$A_HOST/single/img:linux-amd64" "oci-archive:$T/arc/empty.tar:e"
raw_digest "oci-archive:$T/arc/empty.tar:e" >/dev/null || fail "no tag e in the archive made from an empty file"
pass "OCI archive writers take turns (6 at once keep 6 tags); mode, symlink and an empty file are respected"

# Docker schema2 manifest list: copied byte for byte
mkimage "$T/dimg" --tag d1 --docker --platform linux/amd64 --platform linux/arm64 \
	--layers 2 --layer-size 256K --seed docker --push "$A_HOST/docker/img:1" >/dev/null
DORIG=$(raw_digest "docker://$A_HOST/docker/img:1")
assert_eq "sha256:$DORIG" "$(layout_tag_digest "$T/dimg" d1)" "docker fixture digest"
run_ok "$PLAIT" copy --all "$A_HOST/docker/img:1" "$B_HOST/docker/img:1"
skopeo_reg inspect --raw "docker://$B_HOST/docker/img:1" >"$T/d.json"
assert_eq "$DORIG" "$(sha256_file "$T/d.json")" "Docker manifest list digest after plait copy --all"
assert_eq "application/vnd.docker.distribution.manifest.list.v2+json" "$(jq -r .mediaType "$T/d.json")" \
	"Docker manifest list media type after copy"
skopeo_reg copy -q --all "docker://$B_HOST/docker/img:1" "dir:$T/d-verify" ||
	fail "skopeo cannot copy the Docker image plait pushed"
run_ok "$PLAIT" copy --all "$A_HOST/docker/img:1" "oci:$T/dlayout:d1"
assert_eq "sha256:$DORIG" "$(layout_tag_digest "$T/dlayout" d1)" "Docker manifest list digest in an OCI layout"
verify_layout_blobs "$T/dlayout"
assert_eq "$(blob_names "$T/dimg")" "$(blob_names "$T/dlayout")" "blobs of the Docker image in the layout"
pass "Docker schema2 image copies byte-identical"
