#!/usr/bin/env bash
# test_build_security.sh - RUN --security=insecure is an entitlement, as in
# buildx: refused (exit 2, naming Dockerfile:line and the flag to give)
# unless the build is given --allow security.insecure; then that RUN keeps
# every capability and may gain privileges (no no_new_privs), while the
# other RUN steps of the same build stay confined. An unknown --security
# value is refused.
# shellcheck disable=SC2016
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd umoci
require_plait
[ "$(id -u)" = 0 ] || skip "plait build's RUN sandbox needs root"

bash "$LIB_DIR/mkbase.sh" "$T/base" busybox >/dev/null
CTX=$T/ctx
mkdir -p "$CTX"
cat >"$CTX/Dockerfile" <<'DF'
FROM busybox
RUN grep -E '^(CapEff|NoNewPrivs):' /proc/self/status > /default.txt
RUN --security=insecure grep -E '^(CapEff|NoNewPrivs):' /proc/self/status > /insecure.txt
RUN --security=sandbox grep -E '^(CapEff|NoNewPrivs):' /proc/self/status > /sandbox.txt
DF
build() {
	lib_run "$PLAIT" build --progress plain --cache-dir "$T/cache" --build-context "busybox=oci:$T/base:busybox" \
		-t localhost/sec:1 --output "type=oci,dest=$T/out" "$@" "$CTX"
}

build
expect_rc 2
assert_contains "$ERR" "Dockerfile:3" "the refusal's place"
assert_contains "$ERR" "--allow security.insecure" "the refusal's fix"
assert_file_absent "$T/out" "the output of a refused build"
pass "RUN --security=insecure without --allow security.insecure: refused at that step, nothing written"

build --allow security.insecure
expect_rc 0
run_ok umoci unpack --image "$T/out:1" "$T/root"
# bit 21 of CapEff is CAP_SYS_ADMIN, which the sandbox always drops
cap_sys_admin() {
	local hex
	hex=$(awk '/^CapEff:/ { print $2 }' "$T/root/rootfs/$1")
	[ -n "$hex" ] || fail "no CapEff in /$1: $(cat "$T/root/rootfs/$1")"
	echo $(((16#$hex >> 21) & 1))
}
assert_eq 1 "$(cap_sys_admin insecure.txt)" "CAP_SYS_ADMIN in the insecure RUN ($(cat "$T/root/rootfs/insecure.txt"))"
assert_eq 0 "$(cap_sys_admin default.txt)" "CAP_SYS_ADMIN in a plain RUN ($(cat "$T/root/rootfs/default.txt"))"
assert_eq 0 "$(cap_sys_admin sandbox.txt)" "CAP_SYS_ADMIN in a --security=sandbox RUN"
assert_contains "$(cat "$T/root/rootfs/insecure.txt")" "NoNewPrivs:	0" "no_new_privs of the insecure RUN"
assert_contains "$(cat "$T/root/rootfs/default.txt")" "NoNewPrivs:	1" "no_new_privs of a plain RUN"
pass "with --allow security.insecure that RUN has every capability; the others stay confined"

sed -i 's/--security=sandbox/--security=bogus/' "$CTX/Dockerfile"
build --allow security.insecure
expect_rc 2
assert_contains "$ERR" "Dockerfile:4" "the place of the unknown --security value"
assert_contains "$ERR" "--security=bogus: use sandbox or insecure" "the unknown --security value's error"
lib_run "$PLAIT" build --allow bogus.thing "$CTX"
expect_rc 2
assert_contains "$ERR" "unknown entitlement 'bogus.thing'" "an unknown --allow"
pass "unknown --security values and entitlements are refused"
