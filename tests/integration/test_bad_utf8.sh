#!/usr/bin/env bash
# test_bad_utf8.sh - bytes that are not UTF-8 in anything that goes into JSON
# (a LABEL or ENV in the Dockerfile, a RUN heredoc, a --build-arg that reaches
# a LABEL, a --label, a -t, a bake --set or environment variable) are refused
# before anything is built: exit 2, the message names Dockerfile:line (or the
# flag, or the bake file), no RUN ran (its marker never reaches the cache
# mount) and the registry got nothing. A RUN whose output is not UTF-8 still
# builds, its output shown with U+FFFD in --progress json.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd skopeo docker-registry curl jq
require_plait
[ "$(id -u)" = 0 ] || skip "RUN needs root"

registry_start R plain
bash "$LIB_DIR/mkbase.sh" "$T/base" busybox >/dev/null
skopeo_reg copy -q --all "oci:$T/base:busybox" "docker://$R_HOST/base/busybox:1"
BASE=$R_HOST/base/busybox:1
CACHE=$T/cache
pass "busybox base image pushed to $BASE"

FF=$(printf '\377')
# The first line of every Dockerfile here: a RUN that leaves a marker in a
# cache mount, so that "no RUN ran" is something the test can see.
RUN_MARK='RUN --mount=type=cache,target=/mark,id=utf8-mark touch /mark/ran'

# ctx NAME TEXT : a context directory whose Dockerfile is TEXT (printf %b).
ctx() {
	mkdir -p "$T/ctx/$1"
	printf '%b' "$2" >"$T/ctx/$1/Dockerfile"
	echo "$T/ctx/$1"
}

# no_run_ran : nothing under the cache says a RUN ran
no_run_ran() {
	local found
	found=$(find "$CACHE" -name ran 2>/dev/null || true)
	[ -z "$found" ] || fail "$1: a RUN ran before the refusal: $found"
}

# nothing_pushed REPO : the registry has no such repository tag
nothing_pushed() {
	run_expect_fail skopeo_reg inspect --raw "docker://$R_HOST/$1:1"
}

# refused NAME CTX WANT [plait build options...] : exit 2, WANT in stderr,
# nothing ran, nothing pushed.
refused() {
	local name=$1 dir=$2 want=$3
	shift 3
	run_expect_fail "$PLAIT" build --progress plain --cache-dir "$CACHE" --build-arg "BASE=$BASE" \
		-t "$R_HOST/bad/$name:1" --push "$@" "$dir"
	expect_rc 2
	assert_contains "$ERR" "$want" "stderr for $name"
	assert_contains "$ERR" "nothing was built" "stderr for $name"
	no_run_ran "$name"
	nothing_pushed "bad/$name"
}

# --- in the Dockerfile: file:line, the byte and its column
D=$(ctx label "ARG BASE\nFROM \$BASE\n$RUN_MARK\nLABEL ok=yes bad=caf\351\n")
refused label "$D" "Dockerfile:4: LABEL is not valid UTF-8 (byte 0xe9 at column 21): image configs are JSON; write the text in UTF-8"
pass "LABEL with a latin-1 byte: exit 2, Dockerfile:4, nothing ran, nothing pushed"

D=$(ctx env "ARG BASE\nFROM \$BASE\n$RUN_MARK\nENV A=1 \\\\\n    B=\377\n")
refused env "$D" "Dockerfile:5: ENV is not valid UTF-8 (byte 0xff at column 7)"
pass "ENV with 0xff on a continuation line: exit 2, that line (5) and column"

D=$(ctx heredoc "ARG BASE\nFROM \$BASE\n$RUN_MARK\nRUN <<EOF\necho \355\240\200\nEOF\n")
refused heredoc "$D" "Dockerfile:5: RUN is not valid UTF-8 (byte 0xed at column 6)"
pass "a surrogate in a RUN heredoc body: exit 2, the body's line"

# plait lint reads the same way
run_expect_fail "$PLAIT" lint "$T/ctx/label"
expect_rc 2
assert_contains "$ERR" "Dockerfile:4: LABEL is not valid UTF-8"
pass "plait lint: the same message, exit 2"

# --- from the command line: the flag
D=$(ctx arg "ARG BASE\nFROM \$BASE\nARG V\n$RUN_MARK\nLABEL v=\$V\n")
refused build-arg "$D" "--build-arg V: the value is not valid UTF-8 (byte 0xff at column 4 of the argument)" \
	--build-arg "V=a$FF"
pass "--build-arg that reaches a LABEL: exit 2, the flag and the argument named"

refused label-flag "$D" "--label: the name is not valid UTF-8 (byte 0xff at column 1 of the argument)" \
	--build-arg V=ok --label "${FF}x=1"
refused annotation "$D" "--annotation k: the value is not valid UTF-8" --build-arg V=ok --annotation "k=$FF"
refused tag "$D" "-t: the tag is not valid UTF-8" --build-arg V=ok -t "$R_HOST/bad/tag:$FF"
pass "--label, --annotation, -t: exit 2, the flag named"

# --- bake: the bake file, the variable or the --set
cat >"$T/ctx/arg/docker-bake.json" <<JSON
{"variable": {"V": {"default": "ok"}},
 "target": {"app": {"context": ".", "args": {"BASE": "$BASE", "V": "\${V}"},
  "tags": ["$R_HOST/bad/bake:1"]}}}
JSON
run_expect_fail bash -c 'cd "$1" && V="$2" "$3" bake --cache-dir "$4" --push app' _ \
	"$T/ctx/arg" "x$FF" "$PLAIT" "$CACHE"
expect_rc 2
assert_contains "$ERR" "docker-bake.json: variable \"V\": \$V in the environment is not valid UTF-8 (byte 0xff at column 2)"
no_run_ran bake-env
nothing_pushed bad/bake
run_expect_fail bash -c 'cd "$1" && "$3" bake --cache-dir "$4" --push --set "app.labels.l=$2" app' _ \
	"$T/ctx/arg" "x$FF" "$PLAIT" "$CACHE"
expect_rc 2
assert_contains "$ERR" "docker-bake.json: --set 'app.labels.l=x...' is not valid UTF-8 (byte 0xff at column 15)"
no_run_ran bake-set
nothing_pushed bad/bake
pass "bake: an environment variable and a --set, exit 2, the bake file and the source named"

# --- the control: valid text builds, the marker appears, RUN output that is
# not UTF-8 is shown with U+FFFD in --progress json (every line is JSON)
D=$(ctx good "ARG BASE\nFROM \$BASE\n$RUN_MARK\nLABEL t=caf\303\251\nRUN printf 'caf\\\\351\\\\n'\n")
run_ok "$PLAIT" build --progress json --cache-dir "$CACHE" --build-arg "BASE=$BASE" \
	--label "note=$(printf '\360\237\230\200')" -t "$R_HOST/good/app:1" --push "$D"
[ -n "$(find "$CACHE" -name ran)" ] || fail "the control build's RUN left no marker: the probe sees nothing"
jq -e . <<<"$ERR" >/dev/null || fail "--progress json wrote lines that are not JSON: $ERR"
assert_contains "$(jq -r 'select(.text != null) | .text' <<<"$ERR")" "caf$(printf '\357\277\275')" "RUN output in --progress json"
cfg=$(skopeo_reg inspect --config "docker://$R_HOST/good/app:1")
assert_eq "café" "$(jq -r '.config.Labels.t' <<<"$cfg")" "LABEL t in the pushed config"
assert_eq "$(printf '\360\237\230\200')" "$(jq -r '.config.Labels.note' <<<"$cfg")" "--label note in the pushed config"
pass "valid UTF-8 builds and pushes; RUN output that is not UTF-8 becomes U+FFFD in --progress json"
