#!/usr/bin/env bash
# test_push_stream.sh - with --push, a layer of the image uploads to its
# repository while it is compressed (core/push_stream.c): PATCHes as the
# blob grows, then the final PUT with its digest. The pushed image must be
# digest-exact, each streamed blob sent once (publishing finds it in
# place), a layer below 32 MiB left to publishing, a builder stage's layer
# never sent, a failing build tags nothing, and an upload cut mid-stream
# still ends in a complete copy.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd docker-registry skopeo curl jq
require_plait
[ "$(id -u)" = 0 ] || skip "plait build's RUN sandbox needs root"

registry_start R plain
bash "$LIB_DIR/mkbase.sh" "$T/base" busybox >/dev/null
skopeo_reg copy -q --all "oci:$T/base:busybox" "docker://$R_HOST/base/busybox:1"
BASE=$R_HOST/base/busybox:1
CACHE=$T/cache

# 100 MiB of random bytes: stored as they are, so the blob is ~100 MiB,
# well above the 32 MiB from which a layer is streamed.
mkdir -p "$T/ctx"
cat >"$T/ctx/Dockerfile" <<'DF'
ARG BASE
FROM ${BASE}
RUN /bin/head -c 104857600 /dev/urandom > /big
RUN /bin/sleep 4
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
[ "${#layers[@]}" = 3 ] || fail "expected 3 layers (base, RUN, COPY; the sleep makes none), got ${#layers[@]}: ${layers[*]}"
big=${layers[1]} small=${layers[2]}
new_log=$(tail -n +$((n0 + 1)) "$R_LOG")
# put_line DIGEST : the access-log line number of the blob's final PUT(s)
put_line() { grep -nE "\"PUT /v2/stream/img/blobs/uploads/[^ ]*digest=sha256%3A${1#sha256:}" <<<"$new_log" | cut -d: -f1; }
big_puts=$(put_line "$big")
assert_eq 1 "$(wc -w <<<"$big_puts")" "final PUTs of the streamed blob $big (publishing must find it in place, not send it again)"
small_puts=$(put_line "$small")
assert_eq 1 "$(wc -w <<<"$small_puts")" "uploads of the small COPY layer $small (published once, after the build)"
# The big layer is written behind `RUN sleep 4`, and streamed as it is:
# its upload ends seconds before publishing sends the layers it pushes.
[ "$big_puts" -lt "$small_puts" ] || fail "the 100 MiB RUN layer was uploaded after the build (its final PUT is log line $big_puts, the published COPY layer's $small_puts): it was not streamed while written
$(grep -E '"(POST|PATCH|PUT) /v2/stream' <<<"$new_log")"
patches=$(grep -cE '"PATCH /v2/stream/img/blobs/uploads/' <<<"$new_log" || true)
skopeo_reg copy -q "docker://$R_HOST/stream/img:v1" "oci:$T/check:v1" ||
	fail "skopeo could not copy the streamed image back from the registry"
verify_layout_blobs "$T/check"
[ -f "$CACHE/store/blobs/sha256/${big#sha256:}" ] || fail "the streamed layer $big is not in the cache's store too"
cmp -s "$CACHE/store/blobs/sha256/${big#sha256:}" "$T/check/blobs/sha256/${big#sha256:}" ||
	fail "the registry's copy of $big differs from the cache's"
pass "a 100 MiB layer streams to the registry while it is written ($patches PATCHes), uploaded once, digest-exact"

# A builder stage's big layer is not the image's: it is never uploaded, not
# by the job nor by the prefetch that runs the builder stage's COPY alongside
# the first stage. The image itself is small: publishing sends no PATCH.
mkdir -p "$T/ctx2"
head -c 41943040 /dev/urandom >"$T/ctx2/big.bin"
cat >"$T/ctx2/Dockerfile" <<'DF'
ARG BASE
FROM ${BASE} AS tool
RUN echo tool > /tool
FROM ${BASE} AS builder
COPY big.bin /big.bin
RUN /bin/head -c 16 /big.bin > /head
FROM ${BASE}
COPY --from=builder /head /head
COPY --from=tool /tool /tool
DF
n2=$(wc -l <"$R_LOG")
run_ok "$PLAIT" build --progress plain --cache-dir "$CACHE" --build-arg "BASE=$BASE" \
	-t "$R_HOST/stream/multi:v1" --push "$T/ctx2"
new_log=$(tail -n +$((n2 + 1)) "$R_LOG")
patches=$(grep -cE '"PATCH /v2/stream/multi/blobs/uploads/' <<<"$new_log" || true)
assert_eq 0 "$patches" "PATCH uploads to stream/multi, whose image holds no big layer (the builder stage's 40 MiB COPY was uploaded)"
assert_eq 3 "$(layer_digests "$R_HOST/stream/multi:v1" | wc -l)" "layers of stream/multi"
pass "a builder stage's 40 MiB layer is not uploaded"

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
