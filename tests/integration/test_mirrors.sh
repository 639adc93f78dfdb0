#!/usr/bin/env bash
# test_mirrors.sh - registry mirrors (--registry-mirror, registries.conf):
# docker-registry instances on loopback act as mirrors of docker.io while the
# real Docker Hub is out of reach; the second mirror answers when the first is
# down or lacks the image; a location rewrite; blocked entries refuse pulls and
# pushes naming the file and line; pushes never go to a mirror; errors name
# each mirror and then the registry. Checked with skopeo and the registries' logs.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd skopeo docker-registry curl jq
require_plait

registry_start M1 plain
registry_start M2 plain
registry_start DST plain
DOWN=127.0.0.1:$(free_port) # nothing listens there: a mirror that is down
DEAD=127.0.0.1:$(free_port) # nor there: a registry that is down
export PLAIT_BACKOFF_MS=20  # retries of the unreachable hosts stay quick
# Keep the machine's and the user's registries.conf out of every run that
# does not name its own.
: >"$T/empty.conf"
export CONTAINERS_REGISTRIES_CONF=$T/empty.conf

PLAT=$(host_platform)
mkimage "$T/img" --tag 1.36 --platform "$PLAT" --layers 2 --layer-size 64K --single >/dev/null
ORIG=sha256:$(raw_digest "oci:$T/img:1.36")
# Docker Hub's library/busybox:1.36 on both mirrors; library/only2:1 on M2 alone
skopeo_reg copy -q "oci:$T/img:1.36" "docker://$M1_HOST/library/busybox:1.36"
skopeo_reg copy -q "oci:$T/img:1.36" "docker://$M2_HOST/library/busybox:1.36"
skopeo_reg copy -q "oci:$T/img:1.36" "docker://$M2_HOST/library/only2:1"
skopeo_reg copy -q "oci:$T/img:1.36" "docker://$M2_HOST/hub/busybox:1.36"
pass "fixtures on the mirrors"

# requests LOG PATTERN : how many lines of a registry's log match
requests() {
	grep -c -E "$2" "$1" || true
}

# ---------------------------------------------------------------- --registry-mirror

run_ok "$PLAIT" inspect --format json --registry-mirror "$M1_HOST" docker.io/library/busybox:1.36
assert_eq "$ORIG" "$(printf '%s' "$OUT" | jq -r .digest)" "digest plait inspect read through the mirror"
assert_eq "$M1_HOST/library/busybox" "$(printf '%s' "$OUT" | jq -r .source.name)" "inspect's source"
assert_eq true "$(printf '%s' "$OUT" | jq -r .source.mirror)" "inspect's source.mirror"
assert_eq --registry-mirror "$(printf '%s' "$OUT" | jq -r .source.configuredBy)" "inspect's source.configuredBy"
run_ok "$PLAIT" inspect --registry-mirror "http://$M1_HOST" busybox:1.36
assert_contains "$OUT" "Source:     $M1_HOST/library/busybox (mirror, from --registry-mirror)" "plait inspect"
assert_contains "$OUT" "Name:       docker.io/library/busybox:1.36" "plait inspect"
pass "inspect reads docker.io's busybox from the mirror and says so"

# without a mirror there is no source but Docker Hub, which is out of reach here
run_expect_fail "$PLAIT" inspect --retries 1 busybox:1.36
assert_contains "$ERR" "registry-1.docker.io" "error without a mirror"
assert_not_contains "$ERR" "$M1_HOST" "error without a mirror"
pass "without --registry-mirror, docker.io is asked (and cannot be reached)"

run_ok "$PLAIT" copy --registry-mirror "$M1_HOST" busybox:1.36 "$DST_HOST/copied/busybox:1.36"
assert_eq "$ORIG" "sha256:$(raw_digest "docker://$DST_HOST/copied/busybox:1.36")" "digest copied from the mirror"
skopeo_reg copy -q "docker://$DST_HOST/copied/busybox:1.36" "oci:$T/check:1" # skopeo verifies every blob
pass "copy pulls docker.io/library/busybox from the mirror to another registry"

# the second mirror answers when the first is down
m2_before=$(requests "$M2_LOG" 'GET /v2/library/busybox/manifests/1.36')
run_ok "$PLAIT" copy --registry-mirror "$DOWN" --registry-mirror "$M2_HOST" busybox:1.36 \
	"$DST_HOST/second/busybox:1.36"
assert_eq "$ORIG" "sha256:$(raw_digest "docker://$DST_HOST/second/busybox:1.36")" "digest via the second mirror"
m2_after=$(requests "$M2_LOG" 'GET /v2/library/busybox/manifests/1.36')
[ "$m2_after" -gt "$m2_before" ] || fail "the second mirror $M2_HOST was not asked for the manifest (log: $M2_LOG)"
run_ok "$PLAIT" inspect --format json --registry-mirror "$DOWN" --registry-mirror "$M2_HOST" busybox:1.36
assert_eq "$M2_HOST/library/busybox" "$(printf '%s' "$OUT" | jq -r .source.name)" "source with the first mirror down"
assert_contains "$ERR" "plait: warning: mirror $DOWN (--registry-mirror) is not used for the rest of this run: cannot reach registry $DOWN" "warning about the down mirror"
[ "$(grep -c 'plait: warning' <<<"$ERR")" = 1 ] || fail "one warning per down mirror, got: $ERR"
pass "the second mirror answers when the first is down"

# ... and when the first does not have the image
run_ok "$PLAIT" inspect --format json --registry-mirror "$M1_HOST" --registry-mirror "$M2_HOST" only2:1
assert_eq "$M2_HOST/library/only2" "$(printf '%s' "$OUT" | jq -r .source.name)" "source when M1 lacks the image"
assert_eq "$ORIG" "$(printf '%s' "$OUT" | jq -r .digest)" "digest of only2:1"
pass "the second mirror answers when the first lacks the image"

# ... and when the first sends corrupt blobs (each is checked before the next source is asked)
faultproxy_start BAD "$M1_HOST" --corrupt-blob
run_ok "$PLAIT" copy --registry-mirror "$BAD_HOST" --registry-mirror "$M2_HOST" busybox:1.36 \
	"$DST_HOST/corrupt/busybox:1.36"
assert_eq "$ORIG" "sha256:$(raw_digest "docker://$DST_HOST/corrupt/busybox:1.36")" "digest past a corrupt mirror"
[ "$(stat_of "$BAD_STATS" corrupt_blob)" -ge 1 ] || fail "the corrupt mirror sent no blob (stats: $BAD_STATS)"
skopeo_reg copy -q "docker://$DST_HOST/corrupt/busybox:1.36" "oci:$T/check-corrupt:1"
# with the corrupt mirror alone, the registry (Docker Hub, out of reach) is next: the error says both
run_expect_fail "$PLAIT" copy --retries 1 --registry-mirror "$BAD_HOST" busybox:1.36 "$DST_HOST/corrupt2/busybox:1.36"
assert_contains "$ERR" "mirror $BAD_HOST (--registry-mirror): digest mismatch for sha256:" "error past a corrupt mirror"
assert_contains "$ERR" "then the registry: " "error past a corrupt mirror"
pass "a mirror that sends corrupt blobs is passed over"

# a build FROM docker.io/library/busybox takes its base from the mirror
mkdir -p "$T/ctx"
printf 'FROM docker.io/library/busybox:1.36\nCOPY hello.txt /hello.txt\n' >"$T/ctx/Dockerfile"
echo hello >"$T/ctx/hello.txt"
run_ok "$PLAIT" build --cache-dir "$T/cache" --registry-mirror "$DOWN" --registry-mirror "$M1_HOST" \
	--platform "$PLAT" --progress plain -t "$DST_HOST/built/app:1" --push "$T/ctx"
skopeo_reg copy -q "docker://$DST_HOST/built/app:1" "oci:$T/built:1"
base_layers=$(jq -r '.layers[].digest' "$T/img/blobs/sha256/${ORIG#sha256:}")
built_manifest=$(skopeo_reg inspect --raw "docker://$DST_HOST/built/app:1")
for l in $base_layers; do
	assert_contains "$built_manifest" "$l" "layers of the image built FROM the mirrored busybox"
done
# plan resolves its base images through the same mirrors
run_ok "$PLAIT" plan --registry-mirror "$M1_HOST" --platform "$PLAT" -t "$DST_HOST/built/app:2" "$T/ctx"
pass "build and plan take FROM docker.io/library/busybox from the mirror"

# ---------------------------------------------------------------- registries.conf

cat >"$T/mirrors.conf" <<EOF
# docker.io is "down": its location is a port nobody listens on
unqualified-search-registries = ["docker.io"]

[[registry]]
prefix = "docker.io"
location = "$DEAD"

[[registry.mirror]]
location = "$DOWN"

[[registry.mirror]]
location = "$M2_HOST"
insecure = true
EOF
run_ok "$PLAIT" inspect --format json --registries-conf "$T/mirrors.conf" busybox:1.36
assert_eq "$M2_HOST/library/busybox" "$(printf '%s' "$OUT" | jq -r .source.name)" "source from registries.conf"
assert_eq "$T/mirrors.conf:11" "$(printf '%s' "$OUT" | jq -r .source.configuredBy)" "the mirror's entry"
# the same file through the environment
CONTAINERS_REGISTRIES_CONF=$T/mirrors.conf run_ok "$PLAIT" copy busybox:1.36 "$DST_HOST/env/busybox:1.36"
assert_eq "$ORIG" "sha256:$(raw_digest "docker://$DST_HOST/env/busybox:1.36")" "digest via \$CONTAINERS_REGISTRIES_CONF"
pass "registries.conf mirrors (from --registries-conf and \$CONTAINERS_REGISTRIES_CONF)"

# every source fails: the error names each mirror, then the registry
run_expect_fail "$PLAIT" inspect --registries-conf "$T/mirrors.conf" missing:1
expect_rc 1
assert_contains "$ERR" "plait: error: docker.io/library/missing:1: mirror $DOWN ($T/mirrors.conf:8): cannot reach registry $DOWN" "error of a pull nothing answers"
assert_contains "$ERR" "; mirror $M2_HOST ($T/mirrors.conf:11): manifest '$M2_HOST/library/missing:1' not found" "error of a pull nothing answers"
assert_contains "$ERR" "; then the registry: cannot reach registry $DEAD" "error of a pull nothing answers"
pass "a failed pull names each mirror and then the registry"

# the location rewrite: docker.io/library/* lives in $M2_HOST/hub
cat >"$T/rewrite.conf" <<EOF
[[registry]]
prefix = "docker.io/library"
location = "$M2_HOST/hub"
EOF
run_ok "$PLAIT" inspect --format json --registries-conf "$T/rewrite.conf" busybox:1.36
assert_eq "$M2_HOST/hub/busybox" "$(printf '%s' "$OUT" | jq -r .source.name)" "source of a rewritten location"
assert_eq false "$(printf '%s' "$OUT" | jq -r .source.mirror)" "a location is not a mirror"
pass "a [[registry]] location rewrites the pull"

# ---------------------------------------------------------------- pushes

# a push goes to the reference itself, never to a mirror of it
cat >"$T/dst-mirror.conf" <<EOF
[[registry]]
location = "$DST_HOST"
[[registry.mirror]]
location = "$M1_HOST"
EOF
m1_writes_before=$(requests "$M1_LOG" '"(PUT|POST|PATCH) ')
run_ok "$PLAIT" copy --registries-conf "$T/dst-mirror.conf" "oci:$T/img:1.36" "$DST_HOST/pushed/img:1"
assert_eq "$ORIG" "sha256:$(raw_digest "docker://$DST_HOST/pushed/img:1")" "digest pushed to the registry"
assert_eq "$m1_writes_before" "$(requests "$M1_LOG" '"(PUT|POST|PATCH) ')" "writes the mirror received"
code=$(curl -s -o /dev/null -w '%{http_code}' "$M1_URL/v2/pushed/img/manifests/1")
assert_eq 404 "$code" "the pushed image on the mirror"
# reading it back: the mirror lacks it, the registry answers
run_ok "$PLAIT" inspect --format json --registries-conf "$T/dst-mirror.conf" "$DST_HOST/pushed/img:1"
assert_eq "$DST_HOST/pushed/img" "$(printf '%s' "$OUT" | jq -r .source.name)" "source after the mirror's 404"
assert_eq false "$(printf '%s' "$OUT" | jq -r .source.mirror)" "source after the mirror's 404"
# index create --append starts from the index the registry has, not from a stale copy on its mirror
mkimage "$T/pa" --tag a --platform linux/amd64 --single --seed a >/dev/null
mkimage "$T/pb" --tag b --platform linux/arm64 --single --seed b >/dev/null
mkimage "$T/pc" --tag c --platform linux/riscv64 --single --seed c >/dev/null
skopeo_reg copy -q "oci:$T/pa:a" "docker://$DST_HOST/app/a:1"
skopeo_reg copy -q "oci:$T/pb:b" "docker://$DST_HOST/app/b:1"
skopeo_reg copy -q "oci:$T/pc:c" "docker://$M1_HOST/app/c:1"
run_ok "$PLAIT" index create -q -t "$DST_HOST/app/idx:1" "$DST_HOST/app/a:1"
run_ok "$PLAIT" index create -q -t "$M1_HOST/app/idx:1" "$M1_HOST/app/c:1" # the mirror's stale copy
m1_writes_before=$(requests "$M1_LOG" '"(PUT|POST|PATCH) ')
run_ok "$PLAIT" index create -q --registries-conf "$T/dst-mirror.conf" --append -t "$DST_HOST/app/idx:1" \
	"$DST_HOST/app/b:1"
platforms=$(skopeo_reg inspect --raw "docker://$DST_HOST/app/idx:1" |
	jq -r '[.manifests[].platform | .os + "/" + .architecture] | join(",")')
assert_eq "linux/amd64,linux/arm64" "$platforms" "platforms of the appended index"
assert_eq "$m1_writes_before" "$(requests "$M1_LOG" '"(PUT|POST|PATCH) ')" "writes the mirror received"
# a push to docker.io with --registry-mirror goes to Docker Hub (out of reach), not to the mirror
run_expect_fail "$PLAIT" copy --retries 1 --registry-mirror "$M1_HOST" "oci:$T/img:1.36" docker.io/library/pushed:1
assert_not_contains "$ERR" "$M1_HOST" "error of a push to docker.io"
assert_eq "$m1_writes_before" "$(requests "$M1_LOG" '"(PUT|POST|PATCH) ')" "writes the mirror received"
pass "pushes never go to a mirror"

# ---------------------------------------------------------------- blocked

cat >"$T/blocked.conf" <<EOF
[[registry]]
prefix = "$M2_HOST/blocked"
location = "$M2_HOST/blocked"
blocked = true

[[registry]]
prefix = "docker.io"
location = "docker.io"
blocked = true
[[registry.mirror]]
location = "$M1_HOST"
EOF
m2_before=$(wc -l <"$M2_LOG")
run_expect_fail "$PLAIT" inspect --registries-conf "$T/blocked.conf" "$M2_HOST/blocked/x:1"
expect_rc 1
assert_contains "$ERR" "pull of $M2_HOST/blocked/x:1 is blocked by $T/blocked.conf:1 ([[registry]] prefix '$M2_HOST/blocked' has blocked = true)" "blocked pull"
run_expect_fail "$PLAIT" copy --registries-conf "$T/blocked.conf" "oci:$T/img:1.36" "$M2_HOST/blocked/x:1"
expect_rc 1
assert_contains "$ERR" "push to $M2_HOST/blocked/x:1 is blocked by $T/blocked.conf:1" "blocked push"
assert_eq "$m2_before" "$(wc -l <"$M2_LOG")" "requests the blocked registry received"
# a blocked docker.io is refused before its mirror is asked, in a build too
m1_before=$(wc -l <"$M1_LOG")
run_expect_fail "$PLAIT" build --cache-dir "$T/cache" --registries-conf "$T/blocked.conf" --platform "$PLAT" \
	-t "$DST_HOST/built/app:3" --push "$T/ctx"
assert_contains "$ERR" "pull of docker.io/library/busybox:1.36 is blocked by $T/blocked.conf:6" "blocked base image"
assert_eq "$m1_before" "$(wc -l <"$M1_LOG")" "requests the blocked registry's mirror received"
# other names on the same host are not blocked
run_ok "$PLAIT" inspect --registries-conf "$T/blocked.conf" "$M2_HOST/library/only2:1"
pass "blocked entries refuse pulls and pushes, naming the file and line"

# ---------------------------------------------------------------- bad configuration

printf '[[registry]]\nlocation = "%s"\ninsecure = yes\n' "$M1_HOST" >"$T/bad.conf"
run_expect_fail "$PLAIT" inspect --registries-conf "$T/bad.conf" busybox:1.36
expect_rc 2
assert_contains "$ERR" "$T/bad.conf:3:12: expected a value (a quoted string, true, false or an array of strings), found 'y'" "bad registries.conf"
run_expect_fail "$PLAIT" inspect --registries-conf "$T/nonexistent.conf" busybox:1.36
expect_rc 2
assert_contains "$ERR" "read registries configuration $T/nonexistent.conf: No such file or directory" "missing registries.conf"
CONTAINERS_REGISTRIES_CONF=$T/bad.conf run_expect_fail "$PLAIT" copy busybox:1.36 "$DST_HOST/x/y:1"
expect_rc 2
assert_contains "$ERR" "\$CONTAINERS_REGISTRIES_CONF: $T/bad.conf:3:12" "bad \$CONTAINERS_REGISTRIES_CONF"
run_expect_fail "$PLAIT" inspect --registry-mirror "$M1_HOST/path" busybox:1.36
expect_rc 2
assert_contains "$ERR" "--registry-mirror '$M1_HOST/path': give a registry host[:port]" "bad --registry-mirror"
pass "a bad registries.conf or --registry-mirror is refused with its position"
