#!/usr/bin/env bash
# test_faults.sh - copies through tests/integration/faultproxy.py: 503s,
# 429 with Retry-After, downloads and uploads cut mid-body must all be
# retried to a complete, digest-exact copy; corrupted blob bytes must fail
# the copy naming the digest and leave no blob under that digest.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd skopeo docker-registry curl jq
require_plait

# 1 MiB upload chunks so a 3 MiB layer takes several PATCH requests.
export PLAIT_CHUNK_SIZE=1048576

registry_start R plain
mkimage "$T/img" --tag v1 --platform linux/amd64 --platform linux/arm64 \
	--layers 2 --layer-size 3M >/dev/null
ORIG=$(raw_digest "oci:$T/img:v1")
ORIG_BLOBS=$(blob_names "$T/img")
skopeo_reg copy -q --all "oci:$T/img:v1" "docker://$R_HOST/src/img:v1"
pass "fixture pushed with skopeo"

# check_registry_copy REPO LABEL : R/REPO:v1 is the original, every blob
# verified by a skopeo copy from the registry itself (not the proxy).
n_check=0
check_registry_copy() {
	n_check=$((n_check + 1))
	assert_eq "$ORIG" "$(raw_digest "docker://$R_HOST/$1:v1")" "$2: index digest"
	local v=$T/verify-$n_check
	skopeo_reg copy -q --all "docker://$R_HOST/$1:v1" "oci:$v:x" ||
		fail "$2: skopeo copy --all from the destination failed"
	assert_eq "$ORIG_BLOBS" "$(blob_names "$v")" "$2: blobs"
}
check_layout_copy() {
	assert_eq "sha256:$ORIG" "$(layout_tag_digest "$1" v1)" "$2: index digest"
	verify_layout_blobs "$1"
	assert_eq "$ORIG_BLOBS" "$(blob_names "$1")" "$2: blobs"
}

# 503 on every 3rd request, downloads and uploads (a second registry as
# the destination, so nothing can be mounted)
registry_start D plain
faultproxy_start P503S "$R_HOST" --fail-every-nth 503:3
faultproxy_start P503D "$D_HOST" --fail-every-nth 503:3
run_ok "$PLAIT" copy --all --retries 10 "$P503S_HOST/src/img:v1" "$P503D_HOST/dst503/img:v1"
assert_eq "$ORIG" "$(raw_digest "docker://$D_HOST/dst503/img:v1")" "503: index digest"
skopeo_reg copy -q --all "docker://$D_HOST/dst503/img:v1" "oci:$T/v503:x" ||
	fail "503: skopeo cannot copy the result"
assert_eq "$ORIG_BLOBS" "$(blob_names "$T/v503")" "503: blobs"
f1=$(stat_of "$P503S_STATS" fail_every_nth)
f2=$(stat_of "$P503D_STATS" fail_every_nth)
[ "$f1" -ge 1 ] && [ "$f2" -ge 1 ] ||
	fail "503 faults did not happen on both sides: source $f1, destination $f2"
pass "copy through 503 every 3rd request completes ($f1 + $f2 faults)"

# A manifest PUT answered 400 DIGEST_INVALID, for bytes whose digest plait
# computed itself (distribution's race when two clients put the same
# manifest at once): two more tries, then the registry's error; no tag.
faultproxy_start PDIG "$R_HOST" --reply /v2/dig/img/manifests/ 400
run_expect_fail "$PLAIT" copy --platform linux/amd64 "oci:$T/img:v1" "$PDIG_HOST/dig/img:v1"
assert_contains "$ERR" "400"
assert_contains "$ERR" "dig/img"
n=$(grep -c 'PUT /v2/dig/img/manifests/[^ ]* -> 400 (reply)' "$T/PDIG-proxy.log" || true)
assert_eq 3 "$n" "PUTs of the manifest answered 400 DIGEST_INVALID (one and two retries)"
if skopeo_reg inspect --raw "docker://$R_HOST/dig/img:v1" >/dev/null 2>&1; then
	fail "dig/img:v1 exists after its manifest PUT was refused"
fi
pass "a manifest PUT answered DIGEST_INVALID is tried three times, then fails naming the registry's answer"

# 429 with Retry-After: 1 on the first 4 blob/manifest requests
faultproxy_start P429 "$R_HOST" --429 4
start=$(date +%s)
run_ok "$PLAIT" copy --all "$P429_HOST/src/img:v1" "oci:$T/o429:v1"
took=$(($(date +%s) - start))
check_layout_copy "$T/o429" "429"
assert_eq 4 "$(stat_of "$P429_STATS" 429)" "429 answers given"
[ "$took" -ge 1 ] || fail "429: the copy took ${took}s; Retry-After: 1 was not honoured"
pass "copy through 429 + Retry-After completes and waits"

# downloads cut after 100000 bytes, 3 times
faultproxy_start PDROP "$R_HOST" --drop-blob-after 100000:3
run_ok "$PLAIT" copy --all "$PDROP_HOST/src/img:v1" "oci:$T/odrop:v1"
check_layout_copy "$T/odrop" "dropped downloads"
assert_eq 3 "$(stat_of "$PDROP_STATS" drop_blob)" "downloads cut"
pass "copy with blob downloads cut mid-body completes"

# uploads cut after 300000 bytes of a PATCH/PUT body; the first such request
# goes through, so a cut lands in the middle of a multi-chunk layer
registry_start U plain
faultproxy_start PUP "$U_HOST" --drop-upload-after 300000:2:1
run_ok "$PLAIT" copy --all "oci:$T/img:v1" "$PUP_HOST/up/img:v1"
assert_eq "$ORIG" "$(raw_digest "docker://$U_HOST/up/img:v1")" "dropped uploads: index digest"
skopeo_reg copy -q --all "docker://$U_HOST/up/img:v1" "oci:$T/vup:x" ||
	fail "dropped uploads: skopeo cannot copy the result"
assert_eq "$ORIG_BLOBS" "$(blob_names "$T/vup")" "dropped uploads: blobs"
assert_eq 2 "$(stat_of "$PUP_STATS" drop_upload)" "uploads cut"
grep -q '"PATCH /v2/up/img/blobs/uploads/' "$U_LOG" ||
	fail "no chunked (PATCH) upload reached the registry; PLAIT_CHUNK_SIZE=$PLAIT_CHUNK_SIZE was not used"
pass "copy with uploads cut mid-body completes"

# everything at once, registry to registry
registry_start M plain
faultproxy_start PALLS "$R_HOST" --fail-every-nth 503:5 --drop-blob-after 50000:2
faultproxy_start PALLD "$M_HOST" --fail-every-nth 502:4 --drop-upload-after 200000:2:1 --429 2
run_ok "$PLAIT" copy --all --retries 10 "$PALLS_HOST/src/img:v1" "$PALLD_HOST/mixed/img:v1"
assert_eq "$ORIG" "$(raw_digest "docker://$M_HOST/mixed/img:v1")" "mixed faults: index digest"
skopeo_reg copy -q --all "docker://$M_HOST/mixed/img:v1" "oci:$T/vmixed:x" ||
	fail "mixed faults: skopeo cannot copy the result"
assert_eq "$ORIG_BLOBS" "$(blob_names "$T/vmixed")" "mixed faults: blobs"
pass "copy through mixed faults on both sides completes"

# corrupted blob bytes: the copy fails naming the digest, nothing is kept
faultproxy_start PBAD "$R_HOST" --corrupt-blob
run_expect_fail "$PLAIT" copy --all --retries 2 "$PBAD_HOST/src/img:v1" "oci:$T/obad:v1"
expect_rc 1
[ "$(stat_of "$PBAD_STATS" corrupt_blob)" -ge 1 ] || fail "no blob was corrupted"
bad=$(printf '%s\n' "$ERR" | grep -oE 'sha256:[0-9a-f]{64}' | head -n 1 || true)
[ -n "$bad" ] || fail "the error does not name a digest:
$ERR"
printf '%s\n' "$ORIG_BLOBS" | grep -qx "${bad#sha256:}" ||
	fail "the digest in the error ($bad) is not one of the image's blobs"
assert_file_absent "$T/obad/blobs/sha256/${bad#sha256:}" "blob of the corrupted digest in the destination"
if [ -d "$T/obad/blobs/sha256" ]; then
	verify_layout_blobs "$T/obad"
fi
assert_eq "" "$(layout_tag_digest "$T/obad" v1)" "tag v1 in the destination after a failed copy"
pass "corrupted blob bytes fail the copy naming $bad and store nothing under it"

# the same into a registry: the corrupted blob never lands there
registry_start C plain
run_expect_fail "$PLAIT" copy --all --retries 2 "$PBAD_HOST/src/img:v1" "$C_HOST/bad/img:v1"
expect_rc 1
assert_match "$ERR" 'sha256:[0-9a-f]{64}' "stderr of a corrupted copy into a registry"
code=$(curl -s -o /dev/null -w '%{http_code}' "$C_URL/v2/bad/img/manifests/v1")
assert_eq 404 "$code" "status of the destination tag after a failed copy"
pass "corrupted blob bytes fail a registry copy and leave no tag"
