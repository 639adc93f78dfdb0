#!/usr/bin/env bash
# test_bad_input.sh - what plait says about bad references, platforms,
# manifests, refused access, missing registries and missing tags.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd skopeo docker-registry curl jq
require_plait

registry_start R plain
H=$R_HOST
mkimage "$T/img" --tag v1 --platform linux/amd64 --platform linux/arm64 \
	--platform linux/arm/v7 --layers 1 --layer-size 64K >/dev/null
skopeo_reg copy -q --all "oci:$T/img:v1" "docker://$H/src/img:v1"
pass "fixture pushed with skopeo"

# expect_error RC_REGEX : after run_expect_fail, the exit code matches and
# stderr has plait's error prefix.
expect_error() {
	[[ $RC =~ ^($1)$ ]] || fail "exit code $RC, expected $1; stderr: $ERR"
	assert_contains "$ERR" "plait" "stderr"
}

# malformed references: exit 2 (usage) or 1, the message quotes the input
for ref in "$H/Upper/Case:1" "$H/src/img:bad:tag" "$H/src/img@sha256:1234" \
	"$H//double:1" "$H/src/img:$(printf 't%.0s' $(seq 1 200))"; do
	run_expect_fail "$PLAIT" inspect "$ref"
	expect_error '1|2'
	assert_contains "$ERR" "'$ref'" "stderr for malformed reference"
	pass "malformed reference '${ref:0:60}' is refused quoting it"
done
run_expect_fail "$PLAIT" copy --all "$H/src/img:v1" "$H/Bad Name:1"
expect_error '1|2'
assert_contains "$ERR" "'$H/Bad Name:1'" "stderr for a malformed destination"
run_expect_fail skopeo_reg inspect --raw "docker://$H/src/img:1"
pass "malformed destination is refused before anything is written"

run_expect_fail "$PLAIT" inspect "oci:$T/does-not-exist:v1"
expect_error 1
assert_contains "$ERR" "$T/does-not-exist" "stderr for a missing OCI layout"
pass "missing OCI layout is named"
printf 'this is not a tar archive\n' >"$T/garbage.tar"
run_expect_fail "$PLAIT" inspect "oci-archive:$T/garbage.tar:v1"
expect_error 1
assert_contains "$ERR" "$T/garbage.tar" "stderr for a broken OCI archive"
pass "broken OCI archive is named"

# unknown / malformed platform: lists the known ones
run_expect_fail "$PLAIT" copy --platform linux/notanarch "$H/src/img:v1" "oci:$T/x:v1"
expect_error '1|2'
assert_contains "$ERR" "notanarch" "stderr for an unknown architecture"
assert_contains "$ERR" "amd64" "stderr for an unknown architecture (known ones)"
assert_contains "$ERR" "arm64" "stderr for an unknown architecture (known ones)"
pass "unknown platform is named and the known ones are listed"
run_expect_fail "$PLAIT" copy --platform 'linux/' "$H/src/img:v1" "oci:$T/x:v1"
expect_error '1|2'
assert_contains "$ERR" "'linux/'" "stderr for a malformed platform"
pass "malformed platform is quoted"

# index without the asked platform: lists the platforms it has
for cmd in "copy --platform linux/s390x $H/src/img:v1 oci:$T/x:v1" \
	"inspect --platform linux/s390x $H/src/img:v1"; do
	# shellcheck disable=SC2086
	run_expect_fail "$PLAIT" $cmd
	expect_error 1
	assert_contains "$ERR" "linux/s390x" "stderr for a platform the index lacks"
	for p in linux/amd64 linux/arm64 linux/arm/v7; do
		assert_contains "$ERR" "$p" "stderr for a platform the index lacks (available ones)"
	done
	pass "plait ${cmd%% *} of a missing platform lists the index's platforms"
done
assert_eq "" "$(layout_tag_digest "$T/x" v1)" "tag in the destination after the failed copy"

# 404: unknown tag and unknown repository name the tag and the registry
run_expect_fail "$PLAIT" inspect "$H/src/img:nope"
expect_error 1
assert_contains "$ERR" "nope" "stderr for a missing tag"
assert_contains "$ERR" "$H" "stderr for a missing tag (registry)"
pass "missing tag names the tag and the registry"
run_expect_fail "$PLAIT" copy --all "$H/no/such/repo:v1" "oci:$T/y:v1"
expect_error 1
assert_contains "$ERR" "no/such/repo" "stderr for a missing repository"
assert_contains "$ERR" "$H" "stderr for a missing repository (registry)"
pass "missing repository names it and the registry"
missing=sha256:$(printf 'nothing' | sha256sum | cut -d' ' -f1)
run_expect_fail "$PLAIT" inspect "$H/src/img@$missing"
expect_error 1
assert_contains "$ERR" "$missing" "stderr for a missing digest"
pass "missing digest is named"

# unreachable registry: a free port with nothing listening
port=$(free_port)
run_expect_fail "$PLAIT" inspect --retries 2 "127.0.0.1:$port/x/y:1"
expect_error 1
assert_contains "$ERR" "127.0.0.1:$port" "stderr for an unreachable registry"
pass "unreachable registry is named"
run_expect_fail "$PLAIT" copy --all --retries 2 "oci:$T/img:v1" "127.0.0.1:$port/x/y:1"
expect_error 1
assert_contains "$ERR" "127.0.0.1:$port" "stderr for an unreachable destination"
pass "unreachable destination is named"

# content no registry would store, served by the proxy: malformed JSON,
# a manifest over 4 MiB, bytes that do not match the digest asked for
printf '{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {' \
	>"$T/broken.json"
idx=$(layout_tag_digest "$T/img" v1)
child=$(jq -r '.manifests[0].digest' "$T/img/blobs/sha256/${idx#sha256:}")
"$PY" - "$T/big.json" <<-'EOF'
	import json, sys
	m = {"schemaVersion": 2,
	     "mediaType": "application/vnd.oci.image.manifest.v1+json",
	     "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
	                "digest": "sha256:" + "0" * 64, "size": 2},
	     "layers": [],
	     "annotations": {"pad": "x" * (5 << 20)}}
	open(sys.argv[1], "w").write(json.dumps(m))
	EOF
cp "$T/img/blobs/sha256/${child#sha256:}" "$T/other.json"
wrong=sha256:$(printf 'a different manifest' | sha256sum | cut -d' ' -f1)
OCI_M=application/vnd.oci.image.manifest.v1+json
faultproxy_start P "$H" \
	--serve /v2/broken/img/manifests/v1 "$T/broken.json" "$OCI_M" \
	--serve /v2/big/img/manifests/v1 "$T/big.json" "$OCI_M" \
	--serve "/v2/liar/img/manifests/$wrong" "$T/other.json" "$OCI_M" \
	--reply /v2/forbidden/ 403 \
	--reply /v2/needauth/ 401

run_expect_fail "$PLAIT" inspect "$P_HOST/broken/img:v1"
expect_error 1
assert_contains "$ERR" "broken/img" "stderr for malformed manifest JSON"
assert_match "$ERR" '[Jj][Ss][Oo][Nn]|parse|malformed|invalid' "stderr for malformed manifest JSON"
pass "malformed manifest JSON is reported"
run_expect_fail "$PLAIT" copy --all "$P_HOST/broken/img:v1" "oci:$T/z:v1"
expect_error 1
assert_eq "" "$(layout_tag_digest "$T/z" v1)" "tag after copying a malformed manifest"
pass "malformed manifest is not copied"

run_expect_fail "$PLAIT" inspect "$P_HOST/big/img:v1"
expect_error 1
assert_contains "$ERR" "big/img" "stderr for a manifest over 4 MiB"
assert_match "$ERR" '4 ?MiB|too (big|large)|size|limit|exceeds' "stderr for a manifest over 4 MiB"
pass "manifest over 4 MiB is refused"

run_expect_fail "$PLAIT" inspect --raw "$P_HOST/liar/img@$wrong"
expect_error 1
assert_contains "$ERR" "$wrong" "stderr for a manifest that does not match its digest"
assert_eq "" "$OUT" "stdout for a manifest that does not match its digest"
pass "manifest bytes that do not match the digest are refused"

# refused access
run_expect_fail "$PLAIT" inspect "$P_HOST/forbidden/img:v1"
expect_error 1
assert_contains "$ERR" "$P_HOST" "stderr for 403"
assert_match "$ERR" '[Dd]enied|[Ff]orbidden|403' "stderr for 403"
pass "403 is reported naming the registry"
run_expect_fail "$PLAIT" inspect "$P_HOST/needauth/img:v1"
expect_error 1
assert_contains "$ERR" "$P_HOST" "stderr for 401"
assert_contains "$ERR" "plait login" "stderr for 401"
pass "401 is reported naming the registry and suggesting 'plait login'"
