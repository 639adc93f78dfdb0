#!/usr/bin/env bash
# test_cli.sh - the command line itself: version, --help of every command,
# usage errors (exit 2 with a message naming the offending word).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_plait

# version
run_ok "$PLAIT" version
assert_match "$OUT" '^plait [0-9]+\.[0-9]+' "'plait version' output"
assert_eq "" "$ERR" "stderr of 'plait version'"
pass "plait version prints the version"
version_line=$(printf '%s\n' "$OUT" | head -n 1)
run_ok "$PLAIT" --version
assert_eq "$version_line" "$(printf '%s\n' "$OUT" | head -n 1)" "first line of 'plait --version'"
pass "plait --version equals plait version"

run_expect_fail "$PLAIT" version extra
expect_rc 2
assert_contains "$ERR" "extra" "stderr of 'plait version extra'"
pass "plait version rejects arguments"

# top-level help
for h in --help -h help; do
	run_ok "$PLAIT" "$h"
	for c in inspect copy index login logout version; do
		assert_contains "$OUT" "$c" "'plait $h' output"
	done
done
pass "plait --help lists every command"

run_expect_fail "$PLAIT"
expect_rc 2
assert_contains "$ERR" "usage" "stderr of plait without arguments"
pass "plait without a command exits 2 with usage"

# --help of each command: exit 0, usage on stdout, nothing on stderr
check_help() {
	local name=$1
	shift
	run_ok "$PLAIT" "$@" --help
	assert_contains "$OUT" "usage: plait $name" "'plait $* --help' output"
	assert_eq "" "$ERR" "stderr of 'plait $* --help'"
	pass "plait $* --help"
}
check_help inspect inspect
check_help copy copy
check_help "index create" index create
check_help login login
check_help logout logout
check_help version version
run_ok "$PLAIT" index --help
assert_contains "$OUT" "create" "'plait index --help' output"
pass "plait index --help names the create subcommand"

# options from the spec appear in the help texts
run_ok "$PLAIT" copy --help
for o in --all --platform --parallel --insecure-registry --cert-dir --retries; do
	assert_contains "$OUT" "$o" "'plait copy --help'"
done
run_ok "$PLAIT" inspect --help
for o in --raw --format --platform; do
	assert_contains "$OUT" "$o" "'plait inspect --help'"
done
run_ok "$PLAIT" index create --help
for o in --annotation --append --index-format; do
	assert_contains "$OUT" "$o" "'plait index create --help'"
done
run_ok "$PLAIT" login --help
for o in --password-stdin --username; do
	assert_contains "$OUT" "$o" "'plait login --help'"
done
pass "help texts name the documented options"

# unknown command
run_expect_fail "$PLAIT" frobnicate
expect_rc 2
assert_contains "$ERR" "frobnicate" "stderr for an unknown command"
pass "unknown command exits 2 naming it"

# unknown flag, per command
for cmd in "inspect" "copy" "index create" "login" "logout" "version"; do
	# shellcheck disable=SC2086
	run_expect_fail "$PLAIT" $cmd --frobnicate
	expect_rc 2
	assert_contains "$ERR" "--frobnicate" "stderr of 'plait $cmd --frobnicate'"
	pass "plait $cmd --frobnicate exits 2 naming the flag"
done

run_expect_fail "$PLAIT" index frob
expect_rc 2
assert_contains "$ERR" "frob" "stderr of 'plait index frob'"
pass "unknown index subcommand exits 2 naming it"

# wrong argument counts and bad option values
run_expect_fail "$PLAIT" copy only-one
expect_rc 2
pass "copy with one argument exits 2"
run_expect_fail "$PLAIT" copy a b c
expect_rc 2
pass "copy with three arguments exits 2"
run_expect_fail "$PLAIT" inspect
expect_rc 2
pass "inspect without REF exits 2"
run_expect_fail "$PLAIT" copy --all --platform linux/amd64 oci:"$T/a" oci:"$T/b"
expect_rc 2
assert_contains "$ERR" "--all" "stderr of copy --all --platform"
pass "copy --all with --platform exits 2"
run_expect_fail "$PLAIT" inspect --format yaml oci:"$T/a"
expect_rc 2
assert_contains "$ERR" "yaml" "stderr of inspect --format yaml"
pass "inspect --format yaml exits 2 naming it"
run_expect_fail "$PLAIT" copy --parallel 0 oci:"$T/a" oci:"$T/b"
expect_rc 2
assert_contains "$ERR" "0" "stderr of copy --parallel 0"
pass "copy --parallel 0 exits 2"
run_expect_fail "$PLAIT" copy --retries abc oci:"$T/a" oci:"$T/b"
expect_rc 2
assert_contains "$ERR" "abc" "stderr of copy --retries abc"
pass "copy --retries abc exits 2 naming the value"
run_expect_fail "$PLAIT" index create oci:"$T/a"
expect_rc 2
assert_contains "$ERR" "-t" "stderr of index create without -t"
pass "index create without -t exits 2"
run_expect_fail "$PLAIT" index create --index-format weird -t oci:"$T/x:1" oci:"$T/a"
expect_rc 2
assert_contains "$ERR" "weird" "stderr of --index-format weird"
pass "index create --index-format weird exits 2 naming it"
run_expect_fail "$PLAIT" index create --annotation novalue -t oci:"$T/x:1" oci:"$T/a"
expect_rc 2
assert_contains "$ERR" "novalue" "stderr of --annotation novalue"
pass "index create --annotation without = exits 2 naming it"
run_expect_fail "$PLAIT" login
expect_rc 2
pass "login without REGISTRY exits 2"
run_expect_fail "$PLAIT" logout
expect_rc 2
pass "logout without REGISTRY exits 2"
run_expect_fail "$PLAIT" login -u alice -p x --password-stdin 127.0.0.1:1 </dev/null
expect_rc 2
pass "login with -p and --password-stdin exits 2"
# nothing was written for usage errors
assert_file_absent "$DOCKER_CONFIG/config.json" "config.json after usage errors"
pass "usage errors leave no config.json behind"

# What plait prints must arrive: a full disk or a closed stdout is exit 1
# with the reason, a reader that stops early (| head) is not an error.
rc=0
"$PLAIT" version >/dev/full 2>"$T/full.err" || rc=$?
assert_eq 1 "$rc" "exit code of plait version > /dev/full"
assert_contains "$(cat "$T/full.err")" "cannot write standard output: No space left on device" "stderr with a full stdout"
rc=0
"$PLAIT" version >&- 2>"$T/closed.err" || rc=$?
assert_eq 1 "$rc" "exit code of plait version with stdout closed"
rc=0
"$PLAIT" --help 2>"$T/pipe.err" | head -c 1 >/dev/null || true
"$PLAIT" version 2>"$T/pipe.err" | true
assert_eq "" "$(cat "$T/pipe.err")" "stderr when the reader stops early"
pass "a stdout that cannot be written is exit 1 naming why; an early-closing pipe is not an error"

run_expect_fail "$PLAIT" copy oci:"$T/a" "127.0.0.1:5000/a/b:t@sha256:$(printf '0%.0s' $(seq 64))"
expect_rc 2
assert_contains "$ERR" "has both a tag and a digest" "copy to a DST with a tag and a digest"
run_expect_fail "$PLAIT" copy oci:"$T/a" oci:"$T/b" --all
expect_rc 2
assert_contains "$ERR" "options go before SRC and DST" "copy with an option after DST"
pass "copy refuses a DST with both tag and digest, and says options go first"

# --build-context values a build cannot use are refused the same way by plan
# and build, before anything is planned or pulled.
mkdir -p "$T/bcctx"
printf 'FROM scratch\nCOPY --from=x a /a\n' >"$T/bcctx/Dockerfile"
for cmd in plan build; do
	run_expect_fail "$PLAIT" "$cmd" --build-context x=oci-layout://example -t x/y:1 "$T/bcctx"
	expect_rc 2
	assert_contains "$ERR" "--build-context x=oci-layout://example: plait cannot build from a oci-layout:// context yet" \
		"plait $cmd of an oci-layout:// build context"
	# git and URL contexts are fetched first (test_build_remote_context.sh): one
	# that cannot be is an error naming it
	run_expect_fail "$PLAIT" "$cmd" --build-context x=https://example.invalid/a.tar.gz -t x/y:1 "$T/bcctx"
	assert_contains "$ERR" "--build-context x: URL context https://example.invalid/a.tar.gz:" "plait $cmd of an unreachable URL context"
	run_expect_fail "$PLAIT" "$cmd" --build-context x=git@example.invalid:r.git -t x/y:1 "$T/bcctx"
	assert_contains "$ERR" "--build-context x: git context git@example.invalid:r.git: git fetch failed" \
		"plait $cmd of an unreachable git build context"
	run_expect_fail "$PLAIT" "$cmd" --build-context "x=$T/no-such-dir" -t x/y:1 "$T/bcctx"
	assert_contains "$ERR" "--build-context x=$T/no-such-dir: no such directory" "plait $cmd of a missing directory"
done
pass "plan and build refuse the same --build-context values, naming them"
