#!/usr/bin/env bash
# test_push_stream.sh - with --push, a layer of the image uploads to its
# repository while it is compressed (core/push_stream.c): PATCHes of about
# 32 MiB as the blob grows, then the final PUT with its digest. The pushed
# image must be digest-exact, each streamed blob sent once (publishing finds
# it in place), a layer below 32 MiB left to publishing, a failing build
# tags nothing, and an upload cut mid-stream still ends in a complete copy.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd docker-registry skopeo curl jq
require_plait
[ "$(id -u)" = 0 ] || skip "plait build's RUN sandbox needs root"

registry_start R plain
bash "$LIB_DIR/mkbase.sh" "$T/base" busybox >/dev/null
skopeo_reg copy -q --all "oci:$T/base:busybox" "docker://$R_HOST/base/busybox:1"
BASE=$R_HOST/base/busybox:1
CACHE=$T/cache

# 100 MiB of random bytes: stored as they are, so the blob is ~100 MiB and
# takes at least three 32 MiB PATCHes when streamed (publishing's own
# upload of it is one PATCH: PLAIT_CHUNK_SIZE is not set).
mkdir -p "$T/ctx"
cat >"$T/ctx/Dockerfile" <<'DF'
ARG BASE
FROM ${BASE}
RUN /bin/head -c 104857600 /dev/urandom > /big
COPY small.txt /small.txt
CMD ["cat", "/small.txt"]
DF
echo "a small file" >"$T/ctx/small.txt"

# layer_digests REF : the image's layer digests, one per line, in order
layer_digests() {
	skopeo_reg inspect --raw "docker://$1" | jq -r '.layers[].digest'
}
# count_in_log PATTERN : lines of the registry's access log matching an ERE
count_in_log() { grep -cE "$1" "$R_LOG" || true; }

n0=$(wc -l <"$R_LOG")
run_ok "$PLAIT" build --progress plain --cache-dir "$CACHE" --build-arg "BASE=$BASE" \
	-t "$R_HOST/stream/img:v1" --push "$T/ctx"
mapfile -t layers < <(layer_digests "$R_HOST/stream/img:v1")
[ "${#layers[@]}" = 3 ] || fail "expected 3 layers (base, RUN, COPY), got ${#layers[@]}: ${layers[*]}"
big=${layers[1]}
new_log=$(tail -n +$((n0 + 1)) "$R_LOG")
patches=$(grep -cE '"PATCH /v2/stream/img/blobs/uploads/' <<<"$new_log" || true)
[ "$patches" -ge 3 ] || fail "the 100 MiB RUN layer was not streamed: $patches PATCH request(s) to stream/img (streaming sends one per 32 MiB)
$(grep -E '"(POST|PATCH|PUT) /v2/stream' <<<"$new_log")"
puts=$(grep -cE "\"PUT /v2/stream/img/blobs/uploads/[^ ]*digest=sha256%3A${big#sha256:}" <<<"$new_log" || true)
assert_eq 1 "$puts" "final PUTs of the streamed blob $big (publishing must find it in place, not send it again)"
small=${layers[2]}
small_puts=$(grep -cE "\"PUT /v2/stream/img/blobs/uploads/[^ ]*digest=sha256%3A${small#sha256:}" <<<"$new_log" || true)
assert_eq 1 "$small_puts" "uploads of the small COPY layer $small (published once, after the build)"
skopeo_reg copy -q "docker://$R_HOST/stream/img:v1" "oci:$T/check:v1" ||
	fail "skopeo could not copy the streamed image back from the registry"
verify_layout_blobs "$T/check"
[ -f "$CACHE/store/blobs/sha256/${big#sha256:}" ] || fail "the streamed layer $big is not in the cache's store too"
cmp -s "$CACHE/store/blobs/sha256/${big#sha256:}" "$T/check/blobs/sha256/${big#sha256:}" ||
	fail "the registry's copy of $big differs from the cache's"
pass "a 100 MiB layer streams to the registry in $patches PATCHes while it is written, uploaded once, digest-exact"

# No --push: nothing goes to the registry (the tag's registry is not written).
n1=$(wc -l <"$R_LOG")
rm -rf "$CACHE"
run_ok "$PLAIT" build --progress plain --cache-dir "$CACHE" --build-arg "BASE=$BASE" \
	-t "$R_HOST/stream/local:v1" --output "type=oci,dest=$T/local" "$T/ctx"
writes=$(tail -n +$((n1 + 1)) "$R_LOG" | grep -cE '"(POST|PATCH|PUT) ' || true)
assert_eq 0 "$writes" "registry writes by a build without --push"
pass "without --push nothing is streamed"

# A build that fails after its big layer: no tag; plait exits and leaves no
# upload thread behind (the process is gone when the command returns).
cat >"$T/ctx/Dockerfile.fail" <<'DF'
ARG BASE
FROM ${BASE}
RUN /bin/head -c 104857600 /dev/urandom > /big
RUN echo "failing on purpose" && false
DF
run_expect_fail "$PLAIT" build --progress plain --cache-dir "$CACHE" --build-arg "BASE=$BASE" \
	-f "$T/ctx/Dockerfile.fail" -t "$R_HOST/stream/fail:v1" --push "$T/ctx"
assert_contains "$ERR" "failing on purpose"
if skopeo_reg inspect --raw "docker://$R_HOST/stream/fail:v1" >/dev/null 2>&1; then
	fail "a failed build's tag stream/fail:v1 exists in the registry"
fi
pass "a build that fails after a streamed layer tags nothing"

# An upload cut mid-stream (the first PATCH/PUT with more than 4 MB of
# body: the stream's first 32 MiB chunk): the upload resumes or publishing
# sends it again; the copy is complete and digest-exact either way.
faultproxy_start F "$R_HOST" --drop-upload-after 4000000:1
rm -rf "$CACHE"
run_ok "$PLAIT" build --progress plain --cache-dir "$CACHE" --build-arg "BASE=$BASE" \
	-t "$F_HOST/stream/cut:v1" --push "$T/ctx"
assert_eq 1 "$(stat_of "$F_STATS" drop_upload)" "uploads the proxy cut"
skopeo_reg copy -q "docker://$R_HOST/stream/cut:v1" "oci:$T/cut:v1" ||
	fail "skopeo could not copy the image whose stream was cut"
verify_layout_blobs "$T/cut"
pass "a stream cut mid-upload still ends in a digest-exact image"
