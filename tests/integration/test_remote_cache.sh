#!/usr/bin/env bash
# test_remote_cache.sh - the shared build cache (--cache-to / --cache-from)
# against a real docker-registry on loopback and OCI layout directories:
#  1. bad specs: exit 2 naming the option; bake's cache-from / cache-to fields;
#  2. type=local round trip: a fresh cache dir runs no RUN, same digest, and
#     the directory is an OCI layout holding the cache artifact;
#  3. two "runners" (separate --cache-dir) export linux/amd64 and linux/arm64
#     (QEMU) to the same ref at the same time; a third, empty, builds both
#     platforms and both variants with --cache-from: no RUN executes
#     (--progress json), its images' digests equal the runners', and the
#     layers it did not need stay in the registry (mounted, not pulled);
#  4. mode=min vs mode=max on a builder stage;
#  5. an unreachable, foreign or corrupt cache: a warning and a correct cold
#     build; a --cache-to failure after the push: exit 1 saying the images
#     are published, or a warning and exit 0 with ignore-error=true.
# Needs root (the RUN sandbox, binfmt_misc), an amd64 host, qemu-user-static
# and busybox-static:arm64 (apt-get download; $MULTI_DEB_DIR may hold it).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd docker-registry skopeo curl jq
require_plait
[ "$(id -u)" = 0 ] || skip "plait build's RUN sandbox needs root"
multi_base
EPOCH=1700000000

# A builder stage, a final stage that copies from it, and a variant arg.
CTX=$T/ctx
mkdir -p "$CTX"
cat >"$CTX/Dockerfile" <<'EOF'
ARG BASE
FROM $BASE AS builder
RUN echo "RAN-builder" && mkdir -p /out && uname -m >/out/arch && echo tool >/out/tool
FROM $BASE
COPY --from=builder /out /app
RUN echo "RAN-final" && cat /app/arch >/final-arch
ARG VARIANT=cpu
RUN echo "RAN-variant-$VARIANT" && cat /final-arch /app/tool && echo "$VARIANT" >/variant
EOF
pass "context and two-platform base image at $BASE"

# build CACHE_DIR ARGS... : a build of $CTX; stderr in $ERR (json events).
build() {
	local dir=$1
	shift
	run_ok "$PLAIT" build --progress json --cache-dir "$dir" --build-arg "BASE=$BASE" \
		--source-date-epoch "$EPOCH" "$@" "$CTX"
}

# ran : the RAN-* markers RUN steps printed (their output events), sorted.
ran() {
	grep '^{' <<<"$ERR" | jq -r 'select(.event == "output") | .text' | grep -o 'RAN-[a-z0-9-]*' | sort -u | tr '\n' ' ' || true
}

# ---------------------------------------------------------------- 1. specs

run_expect_fail "$PLAIT" build --cache-to type=foo,ref=x "$CTX"
expect_rc 2
assert_contains "$ERR" "--cache-to 'type=foo,ref=x': unknown type 'foo'" "unknown type"
run_expect_fail "$PLAIT" build --cache-from type=local,dest=/tmp "$CTX"
expect_rc 2
assert_contains "$ERR" "--cache-from 'type=local,dest=/tmp': unknown key 'dest' (only --cache-to has it)" "dest on --cache-from"
run_expect_fail "$PLAIT" build --cache-to "type=registry,ref=$REG/c/x:1,mode=all" "$CTX"
expect_rc 2
assert_contains "$ERR" "mode must be min or max, not 'all'" "bad mode"
run_expect_fail "$PLAIT" build --cache-to "type=registry,ref=$REG/c/x" "$CTX"
expect_rc 2
assert_contains "$ERR" "needs a tag" "registry ref without a tag"
run_expect_fail "$PLAIT" build --cache-to "type=registry,ref=$REG/c/x:1,ignore-error=maybe" "$CTX"
expect_rc 2
assert_contains "$ERR" "ignore-error takes true or false" "bad ignore-error"
pass "bad --cache-from/--cache-to specs: exit 2 naming the option and the fix"

cat >"$T/bake.json" <<EOF
{"target": {"app": {"context": "$CTX", "tags": ["localhost/app:1"],
  "args": {"BASE": "$BASE"},
  "cache-from": ["type=local,src=$T/bake-cache"], "cache-to": ["type=local,dest=$T/bake-cache,mode=max"]}}}
EOF
run_ok "$PLAIT" bake -f "$T/bake.json" --print
assert_eq "type=local,dest=$T/bake-cache,mode=max" "$(jq -r '.target.app."cache-to"[0]' <<<"$OUT")" "bake --print cache-to"
run_ok "$PLAIT" bake -f "$T/bake.json" --progress json --source-date-epoch "$EPOCH" --cache-dir "$T/bake-c1"
assert_contains "$ERR" "nothing there yet" "first bake: warning about the empty cache"
run_ok "$PLAIT" bake -f "$T/bake.json" --progress json --source-date-epoch "$EPOCH" --cache-dir "$T/bake-c2"
assert_eq "" "$(ran)" "RUN steps a second bake with a fresh --cache-dir ran"
jq -e '.target.app."cache-to" = ["type=nope"]' "$T/bake.json" >"$T/bake-bad.json"
run_expect_fail "$PLAIT" bake -f "$T/bake-bad.json" --cache-dir "$T/bake-c3"
expect_rc 2
assert_contains "$ERR" "cache-to 'type=nope'" "bake: bad cache-to"
pass "bake: cache-from / cache-to fields read, printed, used; a bad one is exit 2"

# ---------------------------------------------------------------- 2. type=local

build "$T/L1" --platform linux/amd64 -t localhost/app:1 --output "type=oci,dest=$T/l1-out" \
	--cache-to "type=local,dest=$T/lc,mode=max" --metadata-file "$T/l1.json"
assert_eq "RAN-builder RAN-final RAN-variant-cpu " "$(ran)" "RUN steps of the cold build"
L1=$(jq -r '.images[0].digest' "$T/l1.json")
run_ok skopeo inspect --raw "oci:$T/lc:cache"
assert_eq "application/vnd.plait.cache.v1+json" "$(jq -r .artifactType <<<"$OUT")" "artifactType of the local cache index"
assert_eq "default/-/linux/amd64" "$(jq -r '.manifests[0].annotations."dev.plait.cache.part"' <<<"$OUT")" "part name"
PART=$(jq -r '.manifests[0].digest' <<<"$OUT")
verify_layout_blobs "$T/lc"
assert_eq "" "$(find "$T/lc" -name '*.tmp*' -o -name '.tmp-*')" "temporary files left in the local cache"
build "$T/L2" --platform linux/amd64 -t localhost/app:1 --output "type=oci,dest=$T/l2-out" \
	--cache-from "type=local,src=$T/lc" --metadata-file "$T/l2.json"
assert_eq "" "$(ran)" "RUN steps run by a fresh cache dir with --cache-from type=local"
assert_eq "$L1" "$(jq -r '.images[0].digest' "$T/l2.json")" "digest built from the local cache"
verify_layout_blobs "$T/l2-out"
pass "type=local round trip: OCI layout with the cache artifact, no RUN, same digest $L1"

# a changed last step runs on the imported layers: fetched (lazily) and unpacked for it
build "$T/L3" --platform linux/amd64 -t localhost/app:1 --build-arg VARIANT=other \
	--cache-from "type=local,src=$T/lc"
assert_eq "RAN-variant-other " "$(ran)" "RUN steps with one changed step on top of imported ones"
assert_contains "$ERR" '"text":"x86_64"' "the changed RUN read the imported layers' files"
pass "a step that misses runs on the imported layers below it (fetched when needed)"

# ---------------------------------------------------------------- 5. bad input

build "$T/U1" --platform linux/amd64 -t localhost/app:1 --output "type=oci,dest=$T/u1-out" \
	--cache-from "type=registry,ref=127.0.0.1:1/nothing/here:1" --metadata-file "$T/u1.json"
assert_contains "$ERR" "plait: warning: cache type=registry,ref=127.0.0.1:1/nothing/here:1 cannot be read" "unreachable cache warning"
assert_eq "RAN-builder RAN-final RAN-variant-cpu " "$(ran)" "RUN steps with an unreachable cache"
assert_eq "$L1" "$(jq -r '.images[0].digest' "$T/u1.json")" "digest of the cold build past an unreachable cache"
pass "unreachable --cache-from: warning, cold build, correct image"

build "$T/F1" --platform linux/amd64 -t localhost/app:1 --cache-from "type=registry,ref=$BASE"
assert_contains "$ERR" "is not a plait cache" "foreign cache warning"
pass "an image given as --cache-from: warning 'not a plait cache', cold build"

cp -a "$T/lc" "$T/lc-bad"
REC=$(jq -r '.layers[0].digest' "$T/lc-bad/blobs/sha256/${PART#sha256:}")
chmod u+w "$T/lc-bad/blobs/sha256/${REC#sha256:}"
sed -i 's/"created"/"cre4ted"/' "$T/lc-bad/blobs/sha256/${REC#sha256:}"
build "$T/C1" --platform linux/amd64 -t localhost/app:1 --output "type=oci,dest=$T/c1-out" \
	--cache-from "type=local,src=$T/lc-bad" --metadata-file "$T/c1.json"
assert_contains "$ERR" "ignored: step records $REC: blob $REC in oci:$T/lc-bad is corrupt" "corrupt record named"
assert_eq "RAN-builder RAN-final RAN-variant-cpu " "$(ran)" "RUN steps with a corrupt cache"
assert_eq "$L1" "$(jq -r '.images[0].digest' "$T/c1.json")" "digest past a corrupt cache"
pass "corrupt step records (digest mismatch): named, ignored, correct cold build"

# a newer format: the index says format 2
cp -a "$T/lc" "$T/lc-new"
IDX=$(jq -r '.manifests[] | select(.annotations."org.opencontainers.image.ref.name" == "cache") | .digest' "$T/lc-new/index.json")
jq -c '.annotations."dev.plait.cache.format" = "2"' "$T/lc-new/blobs/sha256/${IDX#sha256:}" >"$T/new-idx.json"
NEWD=sha256:$(sha256sum "$T/new-idx.json" | cut -d' ' -f1)
cp "$T/new-idx.json" "$T/lc-new/blobs/sha256/${NEWD#sha256:}"
jq --arg d "$NEWD" --argjson s "$(stat -c %s "$T/new-idx.json")" \
	'(.manifests[] | select(.annotations."org.opencontainers.image.ref.name" == "cache")) |= (.digest = $d | .size = $s)' \
	"$T/lc-new/index.json" >"$T/lc-new/index.json.n" && mv "$T/lc-new/index.json.n" "$T/lc-new/index.json"
build "$T/N1" --platform linux/amd64 -t localhost/app:1 --cache-from "type=local,src=$T/lc-new"
assert_contains "$ERR" "written by a newer plait (format 2)" "newer format warning"
assert_eq "RAN-builder RAN-final RAN-variant-cpu " "$(ran)" "RUN steps with a newer-format cache"
pass "a cache of a newer format: warning, cold build"

run_expect_fail "$PLAIT" build --progress plain --cache-dir "$T/E1" --build-arg "BASE=$BASE" --source-date-epoch "$EPOCH" \
	--platform linux/amd64 -t "$REG/app/e:1" --push --cache-to "type=registry,ref=127.0.0.1:1/no/cache:1" "$CTX"
expect_rc 1
assert_contains "$ERR" "the images ARE published (tags moved), but --cache-to type=registry,ref=127.0.0.1:1/no/cache:1 failed" "cache-to failure message"
run_ok skopeo_reg inspect --raw "docker://$REG/app/e:1"
run_ok "$PLAIT" build --progress plain --cache-dir "$T/E1" --build-arg "BASE=$BASE" --source-date-epoch "$EPOCH" \
	--platform linux/amd64 -t "$REG/app/e:1" --push --cache-to "type=registry,ref=127.0.0.1:1/no/cache:1,ignore-error=true" "$CTX"
assert_contains "$ERR" "plait: warning: --cache-to type=registry,ref=127.0.0.1:1/no/cache:1,ignore-error=true failed (ignored" "ignore-error warning"
pass "--cache-to failure after the push: exit 1 saying the images are published; ignore-error=true: warning, exit 0"

# ---------------------------------------------------------------- 3. runners A, B -> C

CREF=$REG/cache/app:ci
VARIANTS=(--variant cpu --variant gpu:VARIANT=gpu)
# runner PLATFORM DIR : one CI runner's build, pushed by digest, exporting the cache (max).
runner() {
	"$PLAIT" build --progress json --cache-dir "$2" --build-arg "BASE=$BASE" --source-date-epoch "$EPOCH" \
		--platform "$1" "${VARIANTS[@]}" -t "$REG/app/x:1-{variant}" --push-by-digest \
		--cache-to "type=registry,ref=$CREF,mode=max" --metadata-file "$2.json" "$CTX" >"$2.out" 2>"$2.err"
}
runner linux/amd64 "$T/A" &
PA=$!
runner linux/arm64 "$T/B" &
PB=$!
wait "$PA" || fail "runner A (linux/amd64) failed: $(tail -n 5 "$T/A.err")"
wait "$PB" || fail "runner B (linux/arm64) failed: $(tail -n 5 "$T/B.err")"
grep -q '"RAN-builder"' "$T/A.err" || fail "runner A did not run its RUN steps (cold): $(tail -n 3 "$T/A.err")"
grep -q '"RAN-builder"' "$T/B.err" || fail "runner B did not run its RUN steps (cold)"
run_ok skopeo_reg inspect --raw "docker://$CREF"
assert_eq "application/vnd.plait.cache.v1+json" "$(jq -r .artifactType <<<"$OUT")" "artifactType at $CREF"
assert_eq "default/cpu/linux/amd64 default/cpu/linux/arm64 default/gpu/linux/amd64 default/gpu/linux/arm64" \
	"$(jq -r '[.manifests[].annotations."dev.plait.cache.part"] | sort | join(" ")' <<<"$OUT")" \
	"parts of the shared cache after two concurrent writers"
merges=$(cat "$T/A.err" "$T/B.err" | grep -c '"exported cache' || true)
assert_eq 2 "$merges" "runners that reported an exported cache"
echo "# runner A: $(grep -o 'merged in [0-9]* index writes*' "$T/A.err"), runner B: $(grep -o 'merged in [0-9]* index writes*' "$T/B.err")"
run_ok skopeo_reg copy -q --all "docker://$CREF" "oci:$T/cache-copy:ci"
run_ok "$PLAIT" inspect --format json "$CREF"
assert_eq "application/vnd.plait.cache.v1+json 4" "$(jq -r '"\(.artifactType) \(.manifests | length)"' <<<"$OUT")" "plait inspect of the cache"
pass "two runners exported linux/amd64 and linux/arm64 to $CREF at once: all four parts are there (skopeo copies it)"

# digest_of META VARIANT PLATFORM : a platform's manifest digest in a metadata file
digest_of() {
	jq -r --arg v "$2" --arg p "$3" '.variants[$v].platforms[] | select(.platform == $p) | .digest' "$1"
}
build "$T/C" --platform linux/amd64,linux/arm64 "${VARIANTS[@]}" -t "$REG/app/c:1-{variant}" --push \
	--cache-from "type=registry,ref=$CREF" --metadata-file "$T/C.json"
assert_eq "" "$(ran)" "RUN steps runner C executed"
for v in cpu gpu; do
	assert_eq "$(digest_of "$T/A.json" $v linux/amd64)" "$(digest_of "$T/C.json" $v linux/amd64)" "C's $v linux/amd64 digest vs A's"
	assert_eq "$(digest_of "$T/B.json" $v linux/arm64)" "$(digest_of "$T/C.json" $v linux/arm64)" "C's $v linux/arm64 digest vs B's"
	assert_eq "4 4" "$(jq -r --arg v $v '[.variants[$v].platforms[] | .cached] | map(tostring) | join(" ")' "$T/C.json")" \
		"cached steps (RUN, COPY, RUN, RUN) of C's $v images per platform"
done
# C pushed to the cache's registry: the RUN layers were mounted there, never pulled
RUNLAYER=$(skopeo_reg inspect --raw "docker://$REG/app/c@$(digest_of "$T/C.json" gpu linux/arm64)" | jq -r '.layers[-1].digest')
[ ! -e "$T/C/store/blobs/sha256/${RUNLAYER#sha256:}" ] || fail "runner C pulled layer $RUNLAYER, which it only had to mount"
# COPY --from=builder is found by the builder stage's layers (the alias the
# exporters recorded next to its content key), so C reads none of the
# builder's files: no layer is fetched or unpacked at all.
run_ok skopeo_reg inspect "docker://$REG/app/c:1-gpu"
UNPACKED=$(find "$T/C/layers" -mindepth 1 -maxdepth 1 ! -name '.*' 2>/dev/null | wc -l)
assert_eq 0 "$UNPACKED" "layers runner C unpacked (a fully cached build needs none: COPY --from is found by its source's layers)"
run_ok "$PLAIT" cache du --cache-dir "$T/C" --format json
nimp=$(jq -r '.imported.entries' <<<"$OUT")
assert_eq 12 "$nimp" "imported step records in runner C's cache (per platform: RUN, COPY and its alias, RUN; per job: RUN)"
run_ok "$PLAIT" cache du --cache-dir "$T/C"
assert_contains "$OUT" "$nimp of the step records came from --cache-from" "cache du table"
pass "runner C (empty cache dir) built 2 platforms x 2 variants from the shared cache: no RUN, digests equal A's and B's, the final stage's own layers mounted, not pulled"

# ---------------------------------------------------------------- 4. mode=min vs max

build "$T/M1" --platform linux/amd64 -t localhost/app:1 --cache-to "type=registry,ref=$REG/cache/min:1"
build "$T/M2" --platform linux/amd64 -t localhost/app:1 --cache-from "type=registry,ref=$REG/cache/min:1"
assert_eq "RAN-builder " "$(ran)" "RUN steps run from a mode=min cache (the builder stage is not in it)"
build "$T/X1" --platform linux/amd64 -t localhost/app:1 --cache-to "type=registry,ref=$REG/cache/max:1,mode=max"
build "$T/X2" --platform linux/amd64 -t localhost/app:1 --cache-from "type=registry,ref=$REG/cache/max:1"
assert_eq "" "$(ran)" "RUN steps run from a mode=max cache"
nmin=$(skopeo_reg inspect --raw "docker://$REG/cache/min:1" | jq -r '.manifests[0].digest')
nmin=$(skopeo_reg inspect --raw "docker://$REG/cache/min@$nmin" | jq '.layers | length')
nmax=$(skopeo_reg inspect --raw "docker://$REG/cache/max:1" | jq -r '.manifests[0].digest')
nmax=$(skopeo_reg inspect --raw "docker://$REG/cache/max@$nmax" | jq '.layers | length')
[ "$nmax" -gt "$nmin" ] || fail "mode=max part has $nmax blobs, mode=min $nmin: expected more with max"
pass "mode=min exports the final image's steps (the builder stage runs again), mode=max every stage's ($nmin vs $nmax blobs)"

# --cache-from tried in order: an unreachable first, the good one second
build "$T/O1" --platform linux/amd64 -t localhost/app:1 --cache-from "type=registry,ref=127.0.0.1:1/x/y:1" \
	--cache-from "type=registry,ref=$REG/cache/max:1"
assert_eq "" "$(ran)" "RUN steps with an unreachable then a good --cache-from"
pass "--cache-from is repeatable, tried in order"

# ---------------------------------------------------------------- 6. cache mounts

MCTX=$T/mctx
mkdir -p "$MCTX"
cat >"$MCTX/Dockerfile" <<'EOF2'
ARG BASE
FROM $BASE
ARG N=1
RUN --mount=type=cache,id=dl,target=/cache echo "RAN-count-$N $(ls /cache | wc -l)" && touch /cache/file-$N
EOF2
# mbuild DIR N ARGS... : build $MCTX with N
mbuild() {
	local dir=$1 n=$2
	shift 2
	run_ok "$PLAIT" build --progress json --cache-dir "$dir" --build-arg "BASE=$BASE" --build-arg "N=$n" \
		--source-date-epoch "$EPOCH" --platform linux/amd64 -t localhost/m:1 "$@" "$MCTX"
}
mbuild "$T/P1" 1 --cache-to "type=local,dest=$T/mc,mounts=dl"
assert_contains "$ERR" '"text":"RAN-count-1 0"' "first build: the cache mount starts empty"
run_ok skopeo inspect --raw "oci:$T/mc:cache"
assert_eq "default/-/linux/amd64 mount/dl" "$(jq -r '[.manifests[].annotations."dev.plait.cache.part"] | sort | join(" ")' <<<"$OUT")" "parts with mounts=dl"
mbuild "$T/P2" 2 --cache-from "type=local,src=$T/mc"
assert_contains "$ERR" '"text":"RAN-count-2 1"' "a fresh runner's RUN sees the restored cache mount"
assert_contains "$ERR" "cache mount 'dl' restored from --cache-from" "restore said in the RUN output"
# a fully cached build neither restores the mount nor exports an empty one over it
mbuild "$T/P3" 1 --cache-from "type=local,src=$T/mc" --cache-to "type=local,dest=$T/mc,mounts=all"
assert_not_contains "$ERR" '"text":"RAN-count' "RUN output of a fully cached build"
assert_not_contains "$ERR" "restored" "a cached RUN's mount restore"
# nothing of the image was needed on this runner: not the base's layers either
[ -z "$(ls "$T/P3/layers")" ] || fail "a fully cached build unpacked layers: $(ls "$T/P3/layers")"
n_layer_blobs=$(find "$T/P3/store/blobs/sha256" -type f -size +100k | wc -l)
assert_eq 0 "$n_layer_blobs" "layer-sized blobs a fully cached build pulled into its store"
mbuild "$T/P4" 3 --cache-from "type=local,src=$T/mc"
assert_contains "$ERR" '"text":"RAN-count-3 1"' "the mount part survived a fully cached export"
mbuild "$T/P5" 1 --cache-to "type=local,dest=$T/mc2"
run_ok skopeo inspect --raw "oci:$T/mc2:cache"
assert_eq "default/-/linux/amd64" "$(jq -r '[.manifests[].annotations."dev.plait.cache.part"] | join(" ")' <<<"$OUT")" "parts without mounts="
pass "RUN --mount=type=cache contents travel with mounts=ID (opt-in), restored before the RUN that runs with them"

# max-size: the others' least recently written parts go first, the writer's own stay
mbuild "$T/P6" 4 --variant big --cache-to "type=local,dest=$T/mc2,max-size=1K"
assert_contains "$ERR" "older parts dropped for max-size" "max-size note"
run_ok skopeo inspect --raw "oci:$T/mc2:cache"
assert_eq "default/big/linux/amd64" "$(jq -r '[.manifests[].annotations."dev.plait.cache.part"] | join(" ")' <<<"$OUT")" "parts after max-size=1K"
pass "--cache-to max-size=SIZE drops other writers' least recently written parts"
