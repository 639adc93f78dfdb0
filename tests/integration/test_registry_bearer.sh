#!/usr/bin/env bash
# test_registry_bearer.sh - a registry with Bearer token auth (our token
# server): anonymous pulls of public/, login, the scopes plait asks for, and
# token renewal during a push that outlasts the token.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd skopeo docker-registry curl jq openssl
require_plait

registry_start R token
H=$R_HOST

mkimage "$T/img" --tag v1 --platform linux/amd64 --platform linux/arm64 \
	--platform linux/arm/v7 --layers 2 --layer-size 256K >/dev/null
ORIG=$(raw_digest "oci:$T/img:v1")
skopeo_reg copy -q --all --dest-creds "alice:$R_PASS" "oci:$T/img:v1" "docker://$H/public/img:v1"
skopeo_reg copy -q --all --dest-creds "alice:$R_PASS" "oci:$T/img:v1" "docker://$H/private/img:v1"
pass "fixtures pushed with skopeo"

# token_requests JQ_FILTER : the token server's successful requests that
# match the filter (one JSON object per line).
token_requests() {
	jq -c "select(.path == \"/token\" and .status == 200) | select($1)" "$R_TOKEN_LOG"
}

# anonymous pull of public/
run_ok "$PLAIT" copy --all "$H/public/img:v1" "oci:$T/pub:v1"
assert_eq "sha256:$ORIG" "$(layout_tag_digest "$T/pub" v1)" "index digest of the anonymous pull"
verify_layout_blobs "$T/pub"
[ -n "$(token_requests '.account == "" and (.scopes | index("repository:public/img:pull"))')" ] ||
	fail "no anonymous token request with scope repository:public/img:pull; token log:
$(cat "$R_TOKEN_LOG")"
pass "anonymous pull of public/ works with an anonymous token"

run_ok "$PLAIT" inspect --raw "$H/public/img:v1"
assert_eq "$ORIG" "$(sha256_file "$OUT_FILE")" "inspect --raw of public/img anonymously"
pass "anonymous inspect of public/ works"

# anonymous access elsewhere is refused
run_expect_fail "$PLAIT" inspect "$H/private/img:v1"
expect_rc 1
assert_contains "$ERR" "$H" "stderr of an anonymous private pull"
assert_contains "$ERR" "plait login" "stderr of an anonymous private pull"
pass "anonymous pull of a private repository fails suggesting 'plait login'"

run_expect_fail "$PLAIT" copy --all "oci:$T/pub:v1" "$H/public/new:v1"
expect_rc 1
assert_contains "$ERR" "$H" "stderr of an anonymous push"
assert_contains "$ERR" "plait login" "stderr of an anonymous push"
run_expect_fail skopeo_reg inspect --raw "docker://$H/public/new:v1"
pass "anonymous push is refused and nothing is tagged"

# login
run_expect_fail "$PLAIT" login -u alice --password-stdin "$H" <<<"wrong-$R_PASS"
expect_rc 1
pass "login with a wrong password fails"
run_ok "$PLAIT" login -u alice --password-stdin "$H" <<<"$R_PASS"
assert_file_mode "$DOCKER_CONFIG/config.json" 600 "mode of config.json"
assert_eq "$(printf '%s' "alice:$R_PASS" | base64 -w0)" \
	"$(jq -r --arg h "$H" '.auths[$h].auth' "$DOCKER_CONFIG/config.json")" "stored auth"
pass "login fetches a token with the credentials and stores them"

# push with login
: >"$R_TOKEN_LOG"
run_ok "$PLAIT" copy --all "oci:$T/img:v1" "$H/pushed/img:v1"
assert_eq "$ORIG" "$(skopeo_reg inspect --raw --creds "alice:$R_PASS" "docker://$H/pushed/img:v1" | sha256_stdin)" \
	"index digest after a push with login"
[ -n "$(token_requests '.account == "alice" and ([.scopes[] | select(test("^repository:pushed/img:.*push"))] | length > 0)')" ] ||
	fail "no token with a push scope for pushed/img; token log:
$(cat "$R_TOKEN_LOG")"
pass "copy --all into the registry after login; token asked with push scope"

# copy between repositories: pull scope for the source, push for the
# destination, and both in one token request for cross-repository mounts
: >"$R_TOKEN_LOG"
run_ok "$PLAIT" copy --all "$H/private/img:v1" "$H/copied/img:v1"
assert_eq "$ORIG" "$(skopeo_reg inspect --raw --creds "alice:$R_PASS" "docker://$H/copied/img:v1" | sha256_stdin)" \
	"index digest after a copy between repositories"
[ -n "$(token_requests '.account == "alice" and ([.scopes[] | select(test("^repository:private/img:.*pull"))] | length > 0)')" ] ||
	fail "no token with a pull scope for the source private/img; token log:
$(cat "$R_TOKEN_LOG")"
[ -n "$(token_requests '.account == "alice" and ([.scopes[] | select(test("^repository:copied/img:.*push"))] | length > 0)')" ] ||
	fail "no token with a push scope for the destination copied/img; token log:
$(cat "$R_TOKEN_LOG")"
[ -n "$(token_requests '.account == "alice" and
	([.scopes[] | select(test("^repository:copied/img:.*push"))] | length > 0) and
	([.scopes[] | select(test("^repository:private/img:.*pull"))] | length > 0)')" ] ||
	fail "no token request carrying both repository:copied/img:push and repository:private/img:pull (needed to mount); token log:
$(cat "$R_TOKEN_LOG")"
grep -q 'POST /v2/copied/img/blobs/uploads/?[^ ]*mount=' "$R_LOG" ||
	fail "no blob mount request for copied/img in the registry log"
pass "copy between repositories asks pull, push and mount scopes and mounts blobs"

# token renewal: tokens live 3 s, every request through the proxy is
# delayed, so one push takes several token lifetimes
TOKEN_ARGS="--lifetime 3" registry_start S token
skopeo_reg copy -q --all --dest-creds "alice:$S_PASS" "oci:$T/img:v1" "docker://$S_HOST/src/img:v1"
faultproxy_start P "$S_HOST" --delay-ms 300
run_ok "$PLAIT" login -u alice --password-stdin "$P_HOST" <<<"$S_PASS"
: >"$S_TOKEN_LOG"
start=$(date +%s)
run_ok "$PLAIT" copy --all --parallel 1 "oci:$T/img:v1" "$P_HOST/renew/img:v1"
took=$(($(date +%s) - start))
assert_eq "$ORIG" "$(skopeo_reg inspect --raw --creds "alice:$S_PASS" "docker://$S_HOST/renew/img:v1" | sha256_stdin)" \
	"index digest after the slow push"
[ "$took" -ge 7 ] || fail "the slow push took only ${took}s; it must outlast two 3 s tokens for this test to mean anything"
n=$(jq -s '[.[] | select(.path == "/token" and .status == 200 and .account == "alice")] | length' "$S_TOKEN_LOG")
[ "$n" -ge 2 ] || fail "tokens were not renewed during a ${took}s push with 3 s tokens: $n token fetches; token log:
$(cat "$S_TOKEN_LOG")"
pass "tokens are renewed during a push that outlasts them ($n fetches in ${took}s)"

# and pulls too
: >"$S_TOKEN_LOG"
start=$(date +%s)
run_ok "$PLAIT" copy --all --parallel 1 "$P_HOST/src/img:v1" "oci:$T/renew-pull:v1"
took=$(($(date +%s) - start))
assert_eq "sha256:$ORIG" "$(layout_tag_digest "$T/renew-pull" v1)" "index digest after the slow pull"
verify_layout_blobs "$T/renew-pull"
n=$(jq -s '[.[] | select(.path == "/token" and .status == 200 and .account == "alice")] | length' "$S_TOKEN_LOG")
[ "$took" -lt 7 ] || [ "$n" -ge 2 ] || fail "tokens were not renewed during a ${took}s pull: $n fetches"
pass "a slow pull with short-lived tokens succeeds ($n fetches in ${took}s)"
