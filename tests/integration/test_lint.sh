#!/usr/bin/env bash
# test_lint.sh - `plait lint` on the cases in tests/data/lint: exit codes
# (0 clean or below --fail-on, 1 findings, 2 parse and usage errors), text
# output against a golden file, JSON output, --fail-on, --explain, --help,
# and large files and .git in the context with and without .dockerignore.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd jq
require_plait
D=$PLAIT_SRCDIR/tests/data/lint

# A clean Dockerfile: nothing printed, exit 0.
run_ok "$PLAIT" lint "$D/clean"
assert_eq "" "$OUT" "findings for the clean case"
run_ok "$PLAIT" lint --fail-on info "$D/clean"
run_ok "$PLAIT" lint --format json "$D/clean"
assert_eq "[]" "$OUT" "json for the clean case"
pass "clean Dockerfile: no findings, exit 0"

# The bad case: one finding per broken rule, in the golden order and words.
run_expect_fail bash -c 'cd "$1" && "$2" lint' _ "$D/bad" "$PLAIT"
expect_rc 1
assert_eq "$(cat "$D/bad/expected.txt")" "$OUT" "text output for tests/data/lint/bad"
pass "bad Dockerfile: text output matches expected.txt, exit 1"

# Paths in the output are as the user named the context.
run_expect_fail "$PLAIT" lint "$D/bad"
assert_match "$OUT" "^$D/bad/Dockerfile:1: PL002 info: base image 'nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04' is not pinned by digest \(add the digest: " "first line"
run_expect_fail "$PLAIT" lint -f "$D/bad/Dockerfile" "$D/clean"
expect_rc 1
assert_contains "$OUT" "$D/bad/Dockerfile:2: PL018 error: ARG 'HF_TOKEN' looks like a secret"
pass "-f picks the Dockerfile; file names follow the arguments"

# JSON: the same findings as objects with every field.
run_expect_fail "$PLAIT" lint --format json "$D/bad"
expect_rc 1
assert_eq "$(wc -l <"$D/bad/expected.txt")" "$(jq length <<<"$OUT")" "number of json findings"
assert_eq "PL002 PL014 PL017 PL021 PL018" "$(jq -r '[.[0:5][].id] | join(" ")' <<<"$OUT")" "first json ids"
first=$(jq -c '.[0]' <<<"$OUT")
assert_eq "$D/bad/Dockerfile" "$(jq -r .file <<<"$first")" "json file"
assert_eq 1 "$(jq -r .line <<<"$first")" "json line"
assert_eq base-image-no-digest "$(jq -r .name <<<"$first")" "json name"
assert_eq info "$(jq -r .severity <<<"$first")" "json severity"
assert_eq "add the digest: FROM image:tag@sha256:<digest>" "$(jq -r .fix <<<"$first")" "json fix"
assert_contains "$(jq -r .message <<<"$first")" "is not pinned by digest"
assert_eq "error" "$(jq -r '.[] | select(.id == "PL018") | .severity' <<<"$OUT")" "severity of PL018"
assert_eq "4" "$(jq -r '.[] | select(.id == "PL010") | .line' <<<"$OUT")" "line of PL010"
pass "json output has file, line, id, name, severity, message and fix"

# --fail-on: warnings and infos pass by default and fail when asked.
run_ok "$PLAIT" lint "$D/warn"
assert_contains "$OUT" "Dockerfile:4: PL008 warning: pip install without --no-cache-dir"
assert_contains "$OUT" "Dockerfile:1: PL002 info:"
run_expect_fail "$PLAIT" lint --fail-on warning "$D/warn"
expect_rc 1
run_expect_fail "$PLAIT" lint --fail-on info "$D/warn"
expect_rc 1
run_ok "$PLAIT" lint --fail-on error "$D/warn"
pass "--fail-on decides which severities fail"

# A Dockerfile that does not parse: exit 2, the error names file and line.
run_expect_fail "$PLAIT" lint "$D/syntax"
expect_rc 2
assert_contains "$ERR" "Dockerfile:3:1: unknown instruction 'FRUM'"
assert_eq "" "$OUT" "stdout for a parse error"
run_expect_fail "$PLAIT" lint "$T/nowhere"
expect_rc 2
assert_contains "$ERR" "read Dockerfile '$T/nowhere/Dockerfile'"
pass "unparsable or missing Dockerfile: exit 2"

# Usage errors: exit 2.
run_expect_fail "$PLAIT" lint --format yaml "$D/clean"
expect_rc 2
assert_contains "$ERR" "--format: 'yaml' is not text or json"
run_expect_fail "$PLAIT" lint --fail-on fatal "$D/clean"
expect_rc 2
assert_contains "$ERR" "--fail-on: 'fatal' is not info, warning or error"
run_expect_fail "$PLAIT" lint --large-file-size 10Q "$D/clean"
expect_rc 2
assert_contains "$ERR" "--large-file-size: '10Q'"
run_expect_fail "$PLAIT" lint "$D/clean" "$D/bad"
expect_rc 2
run_expect_fail "$PLAIT" lint --bogus
expect_rc 2
pass "bad options: exit 2"

# --explain and --help.
run_ok "$PLAIT" lint --explain PL005
assert_contains "$OUT" "PL005 apt-lists-not-removed (warning)"
assert_contains "$OUT" "why: apt package lists left in the layer"
assert_contains "$OUT" "fix: end the same RUN with"
assert_contains "$OUT" "rm -rf /var/lib/apt/lists/*"
run_ok "$PLAIT" lint --explain pip-install-cache
assert_contains "$OUT" "PL008 pip-install-cache"
run_expect_fail "$PLAIT" lint --explain PL999
expect_rc 2
assert_contains "$ERR" "unknown rule 'PL999': use one of PL001, PL002"
run_ok "$PLAIT" lint --help
for opt in --file --format --fail-on --large-file-size --explain CONTEXT "Exit status"; do
	assert_contains "$OUT" "$opt" "help"
done
for id in $(seq -f 'PL%03g' 1 21); do
	assert_contains "$OUT" "  $id " "rule list in help"
done
pass "--explain prints a rule (exit 2 for an unknown one); --help lists options and rules"

# Large files and .git in the context, with and without .dockerignore.
C=$T/ctx
cp -r "$D/context" "$C"
run_ok "$PLAIT" lint --fail-on info "$C"
assert_eq "" "$OUT" "findings before the large file"
truncate -s 60M "$C/weights.bin"
run_expect_fail "$PLAIT" lint --fail-on warning "$C"
expect_rc 1
assert_eq "$C/weights.bin: PL011 warning: 'weights.bin' is 60.0 MiB and not excluded by .dockerignore (add the file to .dockerignore; download or mount weights and data at run time)" "$OUT" "large file finding"
run_ok "$PLAIT" lint "$C"
pass "a 60 MiB file is reported (a warning: exit 0 by default)"
run_ok "$PLAIT" lint --fail-on warning --large-file-size 100M "$C"
assert_eq "" "$OUT" "findings with --large-file-size 100M"
run_expect_fail "$PLAIT" lint --fail-on warning --large-file-size 1M "$C"
run_ok "$PLAIT" lint --format json --large-file-size 1048576 "$C"
assert_eq "PL011 0 $C/weights.bin" "$(jq -r '.[] | "\(.id) \(.line) \(.file)"' <<<"$OUT")" "json for the large file"
pass "--large-file-size sets the limit"
printf 'weights.bin\n' >"$C/.dockerignore"
run_ok "$PLAIT" lint --fail-on info "$C"
assert_eq "" "$OUT" "findings with weights.bin in .dockerignore"
pass ".dockerignore silences the large file"

mkdir -p "$C/.git/objects"
printf 'ref: refs/heads/main\n' >"$C/.git/HEAD"
run_expect_fail "$PLAIT" lint --fail-on warning "$C"
assert_match "$OUT" "^$C/.git: PL012 warning: '.git' is in the build context" ".git finding"
printf 'weights.bin\n.git\n' >"$C/.dockerignore"
run_ok "$PLAIT" lint --fail-on info "$C"
assert_eq "" "$OUT" "findings with .git in .dockerignore"
pass ".git is reported until .dockerignore excludes it"

# plait build --lint: findings of severity error stop the build before it starts.
run_expect_fail "$PLAIT" build --lint --cache-dir "$T/cache" "$D/bad"
expect_rc 1
assert_contains "$ERR" "PL018 error"
assert_contains "$ERR" "--lint:"
assert_file_absent "$T/cache/store" "cache store (nothing may be built)"
mkdir -p "$T/okctx"
printf 'FROM scratch\nCOPY a.txt /a.txt\nUSER 1000\n' >"$T/okctx/Dockerfile"
echo a >"$T/okctx/a.txt"
run_ok "$PLAIT" build --lint --progress quiet --cache-dir "$T/cache" "$T/okctx"
assert_match "$OUT" "^sha256:[0-9a-f]{64}$" "digest of the linted build"
pass "build --lint stops on error findings and builds a clean Dockerfile"

# The Dockerfile's own say: `# check=skip=` (plait's IDs or BuildKit's check
# names), `# check=error=true` (warnings fail `plait lint` and stop
# `build --lint`) and `# plait-lint ignore=` above one instruction.
mkdir -p "$T/checkctx"
echo a >"$T/checkctx/a.txt"
printf '# check=skip=SecretsUsedInArgOrEnv;error=true\nFROM scratch\nARG API_TOKEN\n# plait-lint ignore=PL015\nADD a.txt /a.txt\nADD a.txt /b.txt\nUSER 1000\n' >"$T/checkctx/Dockerfile"
lib_run "$PLAIT" lint "$T/checkctx"
expect_rc 1
assert_eq "$T/checkctx/Dockerfile:6: PL015" "$(cut -d' ' -f1-2 <<<"$OUT")" "the one finding left (PL018 skipped, line 5's PL015 ignored)"
run_ok "$PLAIT" lint --fail-on error "$T/checkctx"
run_expect_fail "$PLAIT" build --lint --cache-dir "$T/cache" "$T/checkctx"
expect_rc 1
assert_contains "$ERR" "# check=error=true" "build --lint stopping on a warning"
sed -i 's/error=true/error=false/' "$T/checkctx/Dockerfile"
run_ok "$PLAIT" lint "$T/checkctx"
sed -i 's/SecretsUsedInArgOrEnv/NoSuchCheck/' "$T/checkctx/Dockerfile"
lib_run "$PLAIT" lint "$T/checkctx"
expect_rc 2
assert_contains "$ERR" "Dockerfile:1: # check=skip: unknown rule 'NoSuchCheck'" "an unknown rule in # check=skip"
pass "# check=skip/error and # plait-lint ignore= are honoured by plait lint and build --lint"
