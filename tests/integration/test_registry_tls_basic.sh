#!/usr/bin/env bash
# test_registry_tls_basic.sh - a TLS registry with htpasswd (Basic) auth:
# login/logout, credentials in $DOCKER_CONFIG/config.json, --cert-dir, TLS
# verification errors, and the password never showing in any output.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd skopeo docker-registry curl jq openssl htpasswd
require_plait

registry_start R tls-basic
H=$R_HOST
CFG=$DOCKER_CONFIG/config.json
ALL=$T/all-output   # every plait stdout/stderr, grepped for the password

# plait_run MODE CMD... : run plait (MODE ok|fail), keep its output in $ALL.
plait_run() {
	local mode=$1
	shift
	if [ "$mode" = ok ]; then
		run_ok "$PLAIT" "$@"
	else
		run_expect_fail "$PLAIT" "$@"
	fi
	printf '%s\n%s\n' "$OUT" "$ERR" >>"$ALL"
}

mkimage "$T/img" --tag v1 --platform linux/amd64 --platform linux/arm64 \
	--layers 2 --layer-size 256K >/dev/null
ORIG=$(raw_digest "oci:$T/img:v1")
skopeo_reg copy -q --all --dest-creds "alice:$R_PASS" "oci:$T/img:v1" "docker://$H/src/img:v1"
pass "fixture pushed with skopeo"

# no credentials yet
plait_run fail copy --all --cert-dir "$CERTS_DIR" "$H/src/img:v1" "oci:$T/out:v1"
expect_rc 1
assert_contains "$ERR" "plait: error:" "stderr without credentials"
assert_contains "$ERR" "$H" "stderr without credentials (registry name)"
assert_contains "$ERR" "plait login" "stderr without credentials (the fix)"
pass "copy without login fails naming the registry and suggesting 'plait login'"

# wrong password
plait_run fail login --cert-dir "$CERTS_DIR" -u alice --password-stdin "$H" <<<"not-$R_PASS"
expect_rc 1
assert_contains "$ERR" "$H" "stderr of a login with a wrong password"
if [ -f "$CFG" ]; then
	assert_eq "null" "$(jq -c --arg h "$H" '.auths[$h]' "$CFG")" "config.json entry after a failed login"
fi
pass "login with a wrong password fails and stores nothing"

# login without --cert-dir: the TLS check fails, naming the host
plait_run fail login -u alice --password-stdin "$H" <<<"$R_PASS"
expect_rc 1
assert_contains "$ERR" "$H" "stderr of login without the CA"
pass "login without the CA fails naming the registry"

# login
plait_run ok login --cert-dir "$CERTS_DIR" -u alice --password-stdin "$H" <<<"$R_PASS"
assert_file_mode "$CFG" 600 "mode of config.json"
want_auth=$(printf '%s' "alice:$R_PASS" | base64 -w0)
assert_eq "$want_auth" "$(jq -r --arg h "$H" '.auths[$h].auth' "$CFG")" "auths[\"$H\"].auth in config.json"
if grep -qF -- "$R_PASS" "$CFG"; then
	fail "config.json holds the password in plain text: $(cat "$CFG")"
fi
pass "login --password-stdin stores docker's base64 auth with mode 0600"

# a second login (-p form) for the same registry keeps one entry
plait_run ok login --cert-dir "$CERTS_DIR" -u alice -p "$R_PASS" "$H"
assert_eq "1" "$(jq --arg h "$H" '[.auths | keys[] | select(. == $h)] | length' "$CFG")" "entries for $H"
assert_file_mode "$CFG" 600 "mode of config.json after a second login"
pass "login -p works and keeps one entry per registry"

# other entries in config.json survive plait's rewrite
tmp=$(jq '.auths["other.example:5000"] = {"auth": "b3RoZXI6c2VjcmV0"} | .credsStore_test = "kept"' "$CFG")
printf '%s\n' "$tmp" >"$CFG"
chmod 600 "$CFG"

# copy with --cert-dir: registry -> registry, registry -> layout, layout -> registry
plait_run ok copy --all --cert-dir "$CERTS_DIR" "$H/src/img:v1" "$H/dst/img:v1"
assert_eq "$ORIG" "$(skopeo_reg inspect --raw --creds "alice:$R_PASS" "docker://$H/dst/img:v1" | sha256_stdin)" \
	"index digest after copy on the TLS registry"
plait_run ok copy --all --cert-dir "$CERTS_DIR" "$H/src/img:v1" "oci:$T/out:v1"
assert_eq "sha256:$ORIG" "$(layout_tag_digest "$T/out" v1)" "index digest in the OCI layout"
verify_layout_blobs "$T/out"
plait_run ok copy --all --cert-dir "$CERTS_DIR" "oci:$T/out:v1" "$H/back/img:v1"
assert_eq "$ORIG" "$(skopeo_reg inspect --raw --creds "alice:$R_PASS" "docker://$H/back/img:v1" | sha256_stdin)" \
	"index digest after a push to the TLS registry"
skopeo_reg copy -q --all --src-creds "alice:$R_PASS" "docker://$H/back/img:v1" "oci:$T/verify:x" ||
	fail "skopeo cannot copy what plait pushed"
pass "copy with --cert-dir and stored credentials works both ways"

plait_run ok inspect --cert-dir "$CERTS_DIR" "$H/src/img:v1"
assert_contains "$OUT" "linux/arm64" "plait inspect on the TLS registry"
pass "inspect with --cert-dir works"

assert_eq "b3RoZXI6c2VjcmV0" "$(jq -r '.auths["other.example:5000"].auth' "$CFG")" "other registry's entry"
assert_eq "kept" "$(jq -r '.credsStore_test' "$CFG")" "unknown config.json key"
pass "plait keeps other entries and keys of config.json"

# without --cert-dir the certificate is not trusted
plait_run fail copy --all "$H/src/img:v1" "oci:$T/out2:v1"
expect_rc 1
assert_contains "$ERR" "$H" "stderr when the CA is unknown"
assert_match "$ERR" '[Cc]ertificate|TLS|tls|x509|verif' "stderr when the CA is unknown"
assert_eq "" "$(layout_tag_digest "$T/out2" v1)" "layout entry after a failed copy"
pass "without --cert-dir TLS verification fails with a message naming the host"

plait_run fail inspect "$H/src/img:v1"
expect_rc 1
assert_contains "$ERR" "$H" "stderr of inspect when the CA is unknown"
assert_contains "$ERR" "/etc/docker/certs.d/$H/ca.crt" "stderr of inspect when the CA is unknown: where the CA goes"
assert_contains "$ERR" "--insecure-registry $H" "stderr of inspect when the CA is unknown: the other way"
pass "inspect without --cert-dir fails naming the host, where its CA goes and --insecure-registry"

# --insecure-registry skips verification
plait_run ok inspect --raw --insecure-registry "$H" "$H/src/img:v1"
assert_eq "$ORIG" "$(sha256_file "$OUT_FILE")" "inspect --raw with --insecure-registry"
plait_run ok inspect --raw --insecure-registry "https://$H/" "$H/src/img:v1"
assert_eq "$ORIG" "$(sha256_file "$OUT_FILE")" "inspect --raw with --insecure-registry https://HOST/"
plait_run fail inspect --insecure-registry "$H/v2/x" "$H/src/img:v1"
expect_rc 2
assert_contains "$ERR" "give a registry host[:port]" "--insecure-registry with a path"
pass "--insecure-registry accepts the unverified certificate"

# logout
plait_run ok logout "$H"
assert_eq "null" "$(jq -c --arg h "$H" '.auths[$h]' "$CFG")" "config.json entry after logout"
assert_eq "b3RoZXI6c2VjcmV0" "$(jq -r '.auths["other.example:5000"].auth' "$CFG")" "other registry's entry after logout"
assert_file_mode "$CFG" 600 "mode of config.json after logout"
plait_run fail inspect --cert-dir "$CERTS_DIR" "$H/src/img:v1"
expect_rc 1
assert_contains "$ERR" "plait login" "stderr after logout"
pass "logout removes the entry and access is refused again"

# the password never appears in anything plait printed
if grep -qF -- "$R_PASS" "$ALL"; then
	fail "the password appears in plait's output:
$(grep -nF -- "$R_PASS" "$ALL" | head -n 5)"
fi
pass "the password never appears in plait's output"
