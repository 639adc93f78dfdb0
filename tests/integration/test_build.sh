#!/usr/bin/env bash
# test_build.sh - `plait build` end to end: the contexts in tests/data/build/
# built against a busybox base in a loopback registry, each result unpacked
# with umoci and checked (files, contents, modes, owners, image config), run
# with chroot; failures, bad input, the build cache, cache mounts, secrets,
# reproducibility, --push, --metadata-file and the output types.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd skopeo umoci docker-registry curl jq openssl
require_plait
# umoci unpack keeps owners and chroot runs the image only as root.
[ "$(id -u)" = 0 ] || skip "umoci unpack with owners and chroot need root"

DATA=$PLAIT_SRCDIR/tests/data/build
HOSTP=$(host_platform)
HOSTARCH=${HOSTP#linux/}
HOSTARCH=${HOSTARCH%%/*}

registry_start R plain
bash "$LIB_DIR/mkbase.sh" "$T/base" busybox >/dev/null
skopeo_reg copy -q --all "oci:$T/base:busybox" "docker://$R_HOST/base/busybox:1"
BASE=$R_HOST/base/busybox:1
mkdir -p "$T/out"
BASE_DIFF_ID=$(skopeo inspect --config "oci:$T/base:busybox" | jq -r '.rootfs.diff_ids[0]')
pass "busybox base image made and pushed to $BASE"

# ---------------------------------------------------------------- helpers

# ctx_copy NAME : a copy of tests/data/build/NAME under $T with normalised
# modes (a checkout under another umask must not change the answers).
ctx_copy() {
	local name=$1 dst=$T/ctx/$1
	rm -rf "$dst"
	mkdir -p "$T/ctx"
	cp -a "$DATA/$name" "$dst"
	find "$dst" -type d -exec chmod 755 {} +
	find "$dst" -type f ! -name '*.sh' -exec chmod 644 {} +
	find "$dst" -type f -name '*.sh' -exec chmod 755 {} +
	echo "$dst"
}

# build NAME CONTEXT [plait build options...] : plait build to the OCI layout
# $T/out/NAME, tag NAME, progress plain, cache $T/cache unless the options
# name another one. Must succeed. $LOG holds stdout+stderr.
build() {
	local name=$1 ctx=$2
	shift 2
	local cache=(--cache-dir "$T/cache") a
	for a in "$@"; do [ "$a" = --cache-dir ] && cache=(); done
	run_ok "$PLAIT" build --progress plain "${cache[@]}" --build-arg "BASE=$BASE" \
		-t "localhost/$name:$name" --output "type=oci,dest=$T/out/$name" "$@" "$ctx"
	LOG="$OUT
$ERR"
	[ -n "$(layout_tag_digest "$T/out/$name" "$name")" ] ||
		fail "$name: no tag '$name' in $T/out/$name/index.json after a successful build:
$(cat "$T/out/$name/index.json" 2>/dev/null)"
}

# build_fail NAME CONTEXT [options...] : the same, expected to fail.
build_fail() {
	local name=$1 ctx=$2
	shift 2
	local cache=(--cache-dir "$T/cache") a
	for a in "$@"; do [ "$a" = --cache-dir ] && cache=(); done
	run_expect_fail "$PLAIT" build --progress plain "${cache[@]}" --build-arg "BASE=$BASE" \
		-t "localhost/$name:$name" --output "type=oci,dest=$T/out/$name" "$@" "$ctx"
	LOG="$OUT
$ERR"
}

digest_of() { # NAME -> manifest digest of the built tag
	layout_tag_digest "$T/out/$1" "$1"
}

# unpack NAME : umoci unpack of the built tag; sets R to its rootfs.
unpack() {
	local b=$T/bundle/$1
	rm -rf "$b"
	mkdir -p "$T/bundle"
	umoci unpack --image "$T/out/$1:$1" "$b" >/dev/null 2>"$T/umoci.err" ||
		fail "$1: umoci cannot unpack the built image: $(cat "$T/umoci.err")"
	R=$b/rootfs
	BUNDLE=$b
}

# config NAME : the image config JSON into $T/cfg-NAME.json; sets CFG.
config() {
	CFG=$T/cfg-$1.json
	skopeo inspect --config "oci:$T/out/$1:$1" >"$CFG" ||
		fail "$1: skopeo cannot read the image config"
}

cfg() { # JQ-EXPR -> compact output against $CFG
	jq -c "$1" "$CFG"
}

assert_content() { # FILE EXPECTED
	[ -f "$1" ] || fail "'${1#"$T"/}' is not a regular file in the image"
	assert_eq "$2" "$(cat "$1")" "content of ${1#"$T"/}"
}

assert_owner() { # FILE UID:GID
	[ -e "$1" ] || [ -L "$1" ] || fail "'${1#"$T"/}' does not exist in the image"
	assert_eq "$2" "$(stat -c %u:%g "$1")" "owner of ${1#"$T"/}"
}

# steps LOG_TEXT : from --progress plain output, one line per step
# "N<TAB>STATUS<TAB>INSTRUCTION" (STATUS: CACHED, DONE, ERROR or NONE).
steps() {
	printf '%s\n' "$1" | "$PY" -c '
import re, sys
order, instr, status = [], {}, {}
for line in sys.stdin:
    line = line.rstrip("\n")
    m = re.match(r"#(\d+) \[([^\]]*)\] (.+)$", line)
    if m and m.group(1) not in instr:
        order.append(m.group(1))
        instr[m.group(1)] = m.group(3)
        continue
    m = re.match(r"#(\d+) (CACHED|DONE|ERROR)\b", line)
    if m and m.group(1) in instr and m.group(1) not in status:
        status[m.group(1)] = m.group(2)
for n in order:
    print("%s\t%s\t%s" % (n, status.get(n, "NONE"), instr[n]))
'
}

# layer_steps LOG_TEXT : the steps that make layers (RUN, COPY, ADD).
layer_steps() {
	steps "$1" | awk -F'\t' '$3 ~ /^(RUN|COPY|ADD)([ \t]|$)/'
}

# ---------------------------------------------------------------- basic

BASIC=$(ctx_copy basic)
build basic "$BASIC" --label build.by=plait-test
unpack basic
assert_content "$R/opt/app/files/a.txt" "file a"
assert_content "$R/opt/app/files/sub/b.txt" "file b in sub"
assert_content "$R/opt/app/files/keep.log" "kept despite **/*.log"
assert_file_absent "$R/opt/app/files/debug.log" "file excluded by '**/*.log'"
[ -L "$R/opt/app/files/link-to-a" ] || fail "files/link-to-a is not a symlink in the image"
assert_eq "a.txt" "$(readlink "$R/opt/app/files/link-to-a")" "target of files/link-to-a"
assert_file_mode "$R/opt/app/files/run.sh" 755 "mode of a copied executable"
assert_file_mode "$R/opt/app/files/a.txt" 644 "mode of a copied file"
assert_owner "$R/opt/app/files/a.txt" 0:0
pass "COPY of a directory keeps its tree, modes and symlinks and honours .dockerignore"
assert_content "$R/opt/app/hello.txt" "hello from the context"
assert_file_mode "$R/etc/app.conf" 640 "mode after COPY --chmod=640"
assert_owner "$R/etc/app.conf" 0:0
assert_owner "$R/home/app/owned.txt" 1000:1000
assert_file_mode "$R/home/app/owned.txt" 644 "mode after COPY --chown=app:app"
assert_owner "$R/home/app/private.txt" 1000:1000
assert_file_mode "$R/home/app/private.txt" 600 "mode after COPY --chown=1000:1000 --chmod=600"
pass "COPY --chmod and --chown (by name and by number)"
assert_content "$R/out" "hello world"
assert_content "$R/data/marker" "built in /opt/app"
pass "RUN as root sees ENV and WORKDIR"
assert_match "$(cat "$R/tmp/id.txt")" '^uid=1000\(app\) gid=1000\(app\)' "id output of RUN after USER app"
assert_owner "$R/tmp/id.txt" 1000:1000
assert_owner "$R/home/app/made-by-app" 1000:1000
assert_content "$R/tmp/home.txt" "/home/app"
pass "RUN after USER app runs as uid 1000 with HOME from /etc/passwd"
for f in Dockerfile .dockerignore hello.txt files/a.txt files/keep.log; do
	assert_file_exists "$R/ctx/$f" "context file ctx/$f"
done
for f in ignored ignored/x.txt top.log scratch.tmp files/debug.log; do
	assert_file_absent "$R/ctx/$f" "context file excluded by .dockerignore: ctx/$f"
done
pass "COPY . leaves out what .dockerignore excludes (and keeps its ! exception)"

config basic
assert_eq '"linux"' "$(cfg .os)" "config os"
assert_eq "\"$HOSTARCH\"" "$(cfg .architecture)" "config architecture"
assert_eq '["GREETING=hello world","APP_HOME=/opt/app"]' \
	"$(cfg '[.config.Env[] | select(startswith("GREETING=") or startswith("APP_HOME="))]')" "config Env"
assert_eq '1' "$(cfg '[.config.Env[] | select(startswith("PATH="))] | length')" "PATH entries in config Env"
assert_eq '["/bin/sh","-c"]' "$(cfg .config.Entrypoint)" "config Entrypoint"
assert_eq '["cat /out"]' "$(cfg .config.Cmd)" "config Cmd"
assert_eq '"/opt/app"' "$(cfg .config.WorkingDir)" "config WorkingDir"
assert_eq '"app"' "$(cfg .config.User)" "config User"
assert_eq '{"build.by":"plait-test","org.example.name":"basic","org.example.version":"1"}' \
	"$(jq -cS '.config.Labels' "$CFG")" "config Labels (Dockerfile LABEL + --label)"
assert_eq '["8080/tcp","9090/udp"]' "$(cfg '.config.ExposedPorts | keys')" "config ExposedPorts"
pass "config: os, architecture, Env, Entrypoint, Cmd, WorkingDir, User, Labels, ExposedPorts"

# Layers: the base layer is reused as is, one layer per COPY/RUN (6 + 2),
# WORKDIR may add one; history agrees with rootfs and the manifest.
ndiff=$(cfg '.rootfs.diff_ids | length')
assert_eq "\"$BASE_DIFF_ID\"" "$(cfg '.rootfs.diff_ids[0]')" "first diff_id (the base layer)"
case "$ndiff" in 9 | 10) ;; *) fail "rootfs.diff_ids has $ndiff entries, expected 9 (base + 6 COPY + 2 RUN) or 10 (+ WORKDIR)" ;; esac
assert_eq "$ndiff" "$(cfg '[.history[] | select(.empty_layer != true)] | length')" \
	"history entries with a layer vs rootfs.diff_ids"
nlayers=$(skopeo inspect --raw "oci:$T/out/basic:basic" | jq '.layers | length')
assert_eq "$ndiff" "$nlayers" "manifest layers vs rootfs.diff_ids"
nhist=$(cfg '.history | length')
[ "$nhist" -ge 16 ] || fail "history has $nhist entries, expected at least 16 (base + 15 instructions)"
assert_eq '"mkbase.sh: busybox-static rootfs"' "$(cfg '.history[0].created_by')" "history[0] (from the base)"
assert_contains "$(cfg '[.history[].created_by]')" 'echo \"$GREETING\" > /out' "history created_by"
pass "layers: base layer reused, $ndiff diff_ids, history consistent ($nhist entries)"
verify_layout_blobs "$T/out/basic"
skopeo copy -q "oci:$T/out/basic:basic" "oci:$T/verify-basic:x" ||
	fail "skopeo cannot copy the built image (digest or format error)"
pass "every blob matches its digest; skopeo copies the image"

# umoci's runtime config and running the image with chroot
assert_eq "1000" "$(jq -r .process.user.uid "$BUNDLE/config.json")" "runtime uid from User app"
assert_eq "/opt/app" "$(jq -r .process.cwd "$BUNDLE/config.json")" "runtime cwd"
mapfile -t argv < <(jq -r '.process.args[]' "$BUNDLE/config.json")
assert_eq "hello world" "$(chroot --userspec=1000:1000 "$R" "${argv[@]}")" "output of the image's ENTRYPOINT+CMD"
assert_eq "script ran" "$(chroot "$R" /bin/sh -c /opt/app/files/run.sh)" "running a copied script"
pass "the image runs: ENTRYPOINT+CMD under chroot prints 'hello world'"

# ---------------------------------------------------------------- cache

CACHED_DIGEST=$(digest_of basic)
build basic-again "$BASIC" --label build.by=plait-test
S=$(layer_steps "$LOG")
[ -n "$S" ] || fail "no RUN/COPY steps found in the --progress plain output:
$LOG"
notcached=$(printf '%s\n' "$S" | awk -F'\t' '$2 != "CACHED"')
[ -z "$notcached" ] || fail "second identical build: steps not CACHED:
$notcached
full output:
$LOG"
assert_not_contains "$LOG" "uid=1000" "second build's output (RUN must not run)"
assert_eq "$CACHED_DIGEST" "$(digest_of basic-again)" "manifest digest of an identical rebuild"
pass "identical rebuild: all $(printf '%s\n' "$S" | wc -l) RUN/COPY steps CACHED, same digest"

echo "changed" >"$BASIC/hello.txt"
build basic-changed "$BASIC" --label build.by=plait-test
S=$(layer_steps "$LOG")
seen=0
while IFS=$'\t' read -r n st ins; do
	case "$ins" in "COPY hello.txt"*) seen=1 ;; esac
	if [ "$seen" = 0 ] && [ "$st" != CACHED ]; then
		fail "step #$n '$ins' before the changed COPY was not CACHED ($st):
$LOG"
	fi
	if [ "$seen" = 1 ] && [ "$st" = CACHED ]; then
		fail "step #$n '$ins' at or after the changed COPY was CACHED:
$LOG"
	fi
done <<<"$S"
[ "$seen" = 1 ] || fail "no 'COPY hello.txt' step in the progress output:
$LOG"
assert_ne "$CACHED_DIGEST" "$(digest_of basic-changed)" "digest after a changed source file"
unpack basic-changed
assert_content "$R/opt/app/hello.txt" "changed"
assert_content "$R/out" "hello world"
pass "changing one copied file re-runs from that COPY on and nothing before it"

run_ok "$PLAIT" build --progress plain --cache-dir "$T/cache" --no-cache --build-arg "BASE=$BASE" \
	-t localhost/basic-nocache:nc --output "type=oci,dest=$T/out/basic-nocache" "$BASIC"
S=$(layer_steps "$OUT
$ERR")
[ -z "$(printf '%s\n' "$S" | awk -F'\t' '$2 == "CACHED"')" ] ||
	fail "--no-cache build still reports CACHED steps:
$S"
pass "--no-cache runs every step"

# ---------------------------------------------------------------- reproducibility

BASIC=$(ctx_copy basic)
for i in 1 2; do
	build "repro$i" "$BASIC" --cache-dir "$T/cache-repro$i" --source-date-epoch 1700000000
done
R1=$(digest_of repro1)
assert_eq "$R1" "$(digest_of repro2)" "manifest digest of two cold builds with --source-date-epoch"
export SOURCE_DATE_EPOCH=1700000000
build repro3 "$BASIC" --cache-dir "$T/cache-repro3"
unset SOURCE_DATE_EPOCH
assert_eq "$R1" "$(digest_of repro3)" "manifest digest with SOURCE_DATE_EPOCH from the environment"
config repro1
assert_eq '"2023-11-14T22:13:20Z"' "$(cfg .created)" "config created with --source-date-epoch 1700000000"
# every entry of the layers the build made has mtime <= the epoch
"$PY" - "$T/out/repro1" <<-'EOF' || fail "layer entries newer than SOURCE_DATE_EPOCH (see above)"
import gzip, json, os, sys, tarfile
root = sys.argv[1]
blob = lambda d: os.path.join(root, "blobs", *d.split(":"))
idx = json.load(open(os.path.join(root, "index.json")))
man = json.load(open(blob(idx["manifests"][0]["digest"])))
bad = []
for layer in man["layers"][1:]:
    with tarfile.open(fileobj=gzip.open(blob(layer["digest"]))) as t:
        bad += ["%s %d" % (m.name, m.mtime) for m in t if m.mtime > 1700000000]
if bad:
    print("FAIL: entries with mtime > 1700000000:\n  " + "\n  ".join(bad[:20]), file=sys.stderr)
    sys.exit(1)
EOF
pass "reproducible: two cold builds (and SOURCE_DATE_EPOCH) give $R1; mtimes clamped"

# ---------------------------------------------------------------- outputs, push, metadata

build basic-out "$BASIC" --source-date-epoch 1700000000 --cache-dir "$T/cache-repro1" \
	--output "type=oci-archive,dest=$T/basic.tar"
assert_eq "$R1" "$(digest_of basic-out)" "digest in the layout (cache-warm rebuild)"
assert_eq "${R1#sha256:}" "$(raw_digest "oci-archive:$T/basic.tar:basic-out")" "digest in the oci-archive output"
pass "two --output at once: OCI layout and OCI archive hold the same image"

run_ok "$PLAIT" build --progress plain --cache-dir "$T/cache-repro1" --source-date-epoch 1700000000 \
	--build-arg "BASE=$BASE" -t "$R_HOST/built/basic:1" -t "$R_HOST/built/basic:latest" --allow-latest --push \
	--metadata-file "$T/meta.json" "$BASIC"
for t in 1 latest; do
	assert_eq "${R1#sha256:}" "$(raw_digest "docker://$R_HOST/built/basic:$t")" "digest of pushed tag '$t'"
done
skopeo_reg copy -q "docker://$R_HOST/built/basic:1" "oci:$T/verify-push:x" ||
	fail "skopeo cannot pull the pushed image"
pass "--push: both -t tags in the registry with the built digest"
jq . "$T/meta.json" >/dev/null 2>&1 || fail "--metadata-file is not JSON: $(cat "$T/meta.json")"
assert_eq "$R1" "$(jq -r '.["containerimage.digest"]' "$T/meta.json")" "metadata containerimage.digest"
assert_eq "$R_HOST/built/basic:1,$R_HOST/built/basic:latest" \
	"$(jq -r '.["image.name"]' "$T/meta.json" | tr ',' '\n' | sort | paste -sd,)" "metadata image.name"
assert_eq "true" "$(jq '(.size | type) == "number" and .size > 0 and (.duration_s | type) == "number"' "$T/meta.json")" \
	"metadata size > 0 and duration_s a number ($(cat "$T/meta.json"))"
pass "--metadata-file names the digest, the tags, size and duration"

build basic-zstd "$BASIC" --compression zstd
assert_eq "application/vnd.oci.image.layer.v1.tar+zstd" \
	"$(skopeo inspect --raw "oci:$T/out/basic-zstd:basic-zstd" | jq -r '.layers[-1].mediaType')" \
	"media type of a layer built with --compression zstd"
verify_layout_blobs "$T/out/basic-zstd"
skopeo copy -q "oci:$T/out/basic-zstd:basic-zstd" "oci:$T/verify-zstd:x" ||
	fail "skopeo cannot copy the zstd image"
pass "--compression zstd gives zstd layers that skopeo accepts"

# ---------------------------------------------------------------- multistage

MS=$(ctx_copy multistage)
build ms "$MS"
unpack ms
assert_content "$R/opt/app.txt" "part one
part two"
assert_file_exists "$R/opt/app.sha256"
assert_content "$R/part1-by-index" "part one"
assert_content "$R/from-base" "base"
assert_file_absent "$R/base-marker" "/base-marker (final stage is FROM \${BASE}, not base)"
assert_file_absent "$R/tested" "/tested (from the tester stage)"
assert_not_contains "$LOG" "the unused stage ran" "build output"
config ms
assert_eq '["cat","/opt/app.txt"]' "$(cfg .config.Cmd)" "config Cmd of the final stage"
assert_eq "part one
part two" "$(chroot "$R" cat /opt/app.txt)" "output of the image's CMD"
pass "multistage: COPY --from by name and by index, FROM base, unused stage not run"

build ms-tester "$MS" --target tester
unpack ms-tester
assert_content "$R/tested" "tested"
assert_content "$R/app.txt" "part one
part two"
assert_content "$R/base-marker" "base"
assert_file_absent "$R/opt/app.txt" "/opt/app.txt (final stage only)"
assert_not_contains "$LOG" "the unused stage ran" "build output"
config ms-tester
assert_eq '["sh"]' "$(cfg .config.Cmd)" "Cmd of the tester stage (inherited from the base)"
pass "--target tester builds that stage and what it needs only"

build_fail ms-unused "$MS" --target unused
expect_rc 1
assert_contains "$LOG" "the unused stage ran" "output of --target unused"
pass "--target unused runs that stage (and so fails): the stage skipped above really would fail"

build_fail ms-nosuch "$MS" --target nosuch
expect_rc 2
assert_contains "$LOG" "nosuch" "error for an unknown --target"
pass "--target of an unknown stage is a usage error naming it"

# ---------------------------------------------------------------- args

ARGS=$(ctx_copy args)
build args "$ARGS"
unpack args
assert_content "$R/args.txt" "version=1.0
flavor=vanilla
greeting=hello
unset=default
global=not-visible
env=1.0"
assert_content "$R/platform.txt" "target=$HOSTP os=linux arch=$HOSTARCH build=$HOSTP"
config args
assert_eq '["FROM_ARG=1.0"]' "$(cfg '[.config.Env[] | select(startswith("PATH=") | not)]')" \
	"config Env (ARGs must not persist, ENV from an ARG must)"
assert_eq '{"flavor":"vanilla","version":"1.0"}' "$(jq -cS .config.Labels "$CFG")" "config Labels from ARGs"
pass "args: defaults, \${VAR:-default}, global ARG scoping, platform ARGs"

build args-set "$ARGS" --build-arg VERSION=2.5 --build-arg FLAVOR=chocolate \
	--build-arg GREETING=hi --build-arg UNSET_ARG=given --build-arg GLOBAL_ONLY=leaked \
	--platform "$HOSTP"
unpack args-set
assert_content "$R/args.txt" "version=2.5
flavor=chocolate
greeting=hi
unset=given
global=not-visible
env=2.5"
assert_content "$R/platform.txt" "target=$HOSTP os=linux arch=$HOSTARCH build=$HOSTP"
config args-set
assert_eq '{"flavor":"chocolate","version":"2.5"}' "$(jq -cS .config.Labels "$CFG")" "config Labels from overridden ARGs"
pass "--build-arg overrides global and stage ARGs; an undeclared one stays invisible"

run_ok "$PLAIT" build --progress plain --cache-dir "$T/cache" --build-arg BASE=localbase \
	--build-context "localbase=oci:$T/base:busybox" -t localhost/args-bc:bc \
	--output "type=oci,dest=$T/out/args-bc" "$ARGS"
umoci unpack --image "$T/out/args-bc:bc" "$T/bundle/args-bc" >/dev/null ||
	fail "cannot unpack the --build-context build"
assert_content "$T/bundle/args-bc/rootfs/args.txt" "version=1.0
flavor=vanilla
greeting=hello
unset=default
global=not-visible
env=1.0"
pass "--build-context NAME=oci:PATH:TAG provides a FROM base"

# ---------------------------------------------------------------- heredoc

HD=$(ctx_copy heredoc)
build heredoc "$HD"
unpack heredoc
assert_content "$R/hd/one" "one"
assert_content "$R/hd/two" "two"
assert_content "$R/hd/three" "run by sh"
assert_content "$R/etc/greeting" "hello from a heredoc
second line"
assert_content "$R/etc/expanded" "hello world"
assert_content "$R/etc/literal" 'hello ${NAME}'
pass "heredocs: RUN <<EOF, RUN <<EOT sh, COPY <<EOF (expanded) and <<'EOF' (literal)"

# ---------------------------------------------------------------- failing

FAILING=$(ctx_copy failing)
build_fail failing "$FAILING"
expect_rc 1
assert_contains "$LOG" "about to fail" "output of the failing build (the RUN's own output)"
assert_match "$LOG" 'exit (code|status):? 3' "output of the failing build"
assert_match "$ERR" 'Dockerfile:4([^0-9]|$)' "error message of the failing build (the RUN is on line 4)"
assert_not_contains "$LOG" "RUN echo after" "output of the failing build (no step after the failure)"
assert_eq "" "$(layout_tag_digest "$T/out/failing" failing)" "tag 'failing' in the output layout after a failed build"
pass "a failing RUN: exit 1, names Dockerfile:4 and exit code 3, no tag written"

run_expect_fail "$PLAIT" build --progress plain --cache-dir "$T/cache" --build-arg "BASE=$BASE" \
	-t "$R_HOST/built/failing:1" --push "$FAILING"
expect_rc 1
if skopeo_reg inspect --raw "docker://$R_HOST/built/failing:1" >/dev/null 2>&1; then
	fail "tag built/failing:1 exists in the registry after a failed build with --push"
fi
pass "a failing build with --push leaves no tag in the registry"

# ---------------------------------------------------------------- bad input

BAD=$(ctx_copy bad)
# bad_input DOCKERFILE LINE NEEDLE [exit codes...]
bad_input() {
	local df=$1 line=$2 needle=$3
	shift 3
	local codes=" ${*:-1 2} "
	run_expect_fail "$PLAIT" build --progress plain --cache-dir "$T/cache" --build-arg "BASE=$BASE" \
		-f "$BAD/$df" -t localhost/bad:bad --output "type=oci,dest=$T/out/bad" "$BAD"
	case "$codes" in *" $RC "*) ;; *) fail "$df: exit code $RC, expected one of:$codes
  stderr: $ERR" ;; esac
	assert_match "$ERR" "Dockerfile[.a-z]*:$line([^0-9]|$)" "$df: error message (the bad line is $line)"
	assert_contains "$(printf '%s' "$ERR" | tr 'A-Z' 'a-z')" "$(printf '%s' "$needle" | tr 'A-Z' 'a-z')" "$df: error message"
	assert_eq "" "$(layout_tag_digest "$T/out/bad" bad)" "$df: tag written despite the error"
	pass "$df: exit $RC, message names line $line and '$needle'"
}
bad_input Dockerfile.syntax 3 FROBNICATE 2
bad_input Dockerfile.missing 4 not-there.txt
bad_input Dockerfile.outside 3 outside
bad_input Dockerfile.ignored 4 excluded.key
bad_input Dockerfile.fromstage 5 "'/not-in-stage' not found in stage 'tools'"

run_expect_fail "$PLAIT" build --no-such-flag "$BAD"
expect_rc 2
assert_contains "$ERR" "no-such-flag" "error for an unknown option"
run_expect_fail "$PLAIT" build --cache-dir "$T/cache" "$T/does-not-exist"
expect_rc 2
assert_contains "$ERR" "does-not-exist" "error for a missing context"
run_expect_fail "$PLAIT" build --cache-dir "$T/cache" --build-arg "BASE=$BASE" \
	--output "type=bogus,dest=$T/x" "$BASIC"
expect_rc 2
assert_contains "$ERR" "bogus" "error for an unknown output type"
pass "usage errors exit 2 and name the bad value"

# ---------------------------------------------------------------- cache mounts

CM=$(ctx_copy cache-mount)
build cm1 "$CM" --cache-dir "$T/cache-cm"
unpack cm1
assert_content "$R/seen-counter" "1"
assert_file_absent "$R/cache/counter" "the cache mount's content in the image"
assert_content "$R/tmp/plain-uid" "10"
assert_content "$R/tmp/mount-uid" "10"
assert_content "$R/tmp/cache-owner" "10"
build cm2 "$CM" --cache-dir "$T/cache-cm" --no-cache
unpack cm2
assert_content "$R/seen-counter" "2"
pass "a cache mount keeps its content across builds, even with --no-cache; USER 10 runs with a cache mount uid=10 it owns"
build cm3 "$CM" --cache-dir "$T/cache-cm-other"
unpack cm3
assert_content "$R/seen-counter" "1"
pass "a cache mount lives in the cache dir (a fresh one starts empty)"

# ---------------------------------------------------------------- secrets

SEC=$(ctx_copy secret)
TOKEN=plaitsecret-$(openssl rand -hex 16)
printf '%s' "$TOKEN" >"$T/tok"
chmod 600 "$T/tok"
build sec "$SEC" --cache-dir "$T/cache-sec" --secret "id=tok,src=$T/tok"
unpack sec
assert_content "$R/tok-len" "${#TOKEN}"
assert_content "$R/after-secret" "gone"
assert_file_absent "$R/run/secrets/tok" "the secret file in the image"
# The value in no file of the output or the cache, compressed or not.
"$PY" - "$TOKEN" "$T/out/sec" "$T/cache-sec" <<-'EOF' || fail "the secret value leaked (see above)"
import gzip, os, subprocess, sys
needle = sys.argv[1].encode()
hits = []
for top in sys.argv[2:]:
    for d, _, files in os.walk(top):
        for n in files:
            p = os.path.join(d, n)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            data = open(p, "rb").read()
            if data[:2] == b"\x1f\x8b":
                try:
                    data = gzip.decompress(data)
                except Exception:
                    pass
            elif data[:4] == b"\x28\xb5\x2f\xfd":
                try:
                    r = subprocess.run(["zstd", "-dc", p], capture_output=True)
                    data = r.stdout or data
                except OSError:
                    print("# zstd not installed: %s searched compressed" % p)
            if needle in data:
                hits.append(p)
if hits:
    print("FAIL: the secret value is in:\n  " + "\n  ".join(hits), file=sys.stderr)
    sys.exit(1)
EOF
assert_not_contains "$LOG" "$TOKEN" "build output"
pass "--secret id=tok,src=FILE: readable in RUN, in no layer, config, cache file or output"

export PLAIT_TEST_TOK=$TOKEN-env
build sec-env "$SEC" --cache-dir "$T/cache-sec" --no-cache --secret id=tok,env=PLAIT_TEST_TOK
unpack sec-env
assert_content "$R/tok-len" "${#PLAIT_TEST_TOK}"
unset PLAIT_TEST_TOK
pass "--secret id=tok,env=VAR"

build sec-envmount "$SEC" -f "$SEC/Dockerfile.env" --cache-dir "$T/cache-sec" --secret "id=tok,src=$T/tok"
unpack sec-envmount
assert_content "$R/env-len" "${#TOKEN}"
assert_content "$R/both" "both"
assert_content "$R/after" "unset"
config sec-envmount
assert_not_contains "$(cat "$T/cfg-sec-envmount.json")" "$TOKEN" "image config"
assert_not_contains "$LOG" "$TOKEN" "build output"
pass "RUN --mount=type=secret,env=NAME: the value in that RUN's environment only"

build_fail sec-missing "$SEC" --cache-dir "$T/cache-sec" --no-cache
expect_rc 1
pass "without --secret the RUN that needs it fails (exit 1)"

# --progress json: every line one JSON object, a single job's events name its
# platform too, and RUN output that is not UTF-8 arrives with U+FFFD in place
# of the bad byte (jansson would refuse it and drop the text).
JS=$T/ctx-json
mkdir -p "$JS"
printf 'ARG BASE\nFROM ${BASE}\nRUN printf "caf\\351 ERROR: x\\nok\\n"\n' >"$JS/Dockerfile"
run_ok "$PLAIT" build --progress json --cache-dir "$T/cache-json" --build-arg "BASE=$BASE" \
	-t x/json:1 --output "type=oci,dest=$T/json-out" "$JS"
printf '%s\n' "$ERR" | jq -e . >/dev/null || fail "a --progress json line is not JSON: $ERR"
assert_eq "caf"$'\xef\xbf\xbd'" ERROR: x" \
	"$(printf '%s\n' "$ERR" | jq -r 'select(.event == "output") | .text' | grep ERROR)" "the non-UTF-8 RUN output line"
assert_eq "" "$(printf '%s\n' "$ERR" | jq -r 'select(.event == "start") | select(.platform == null or .job == null) | .step')" \
	"start events without platform or job"
pass "--progress json: a single job's events carry its platform, non-UTF-8 output is kept (U+FFFD)"

# A wildcard that matches one file is like naming it: COPY target/*.jar
# /app.jar makes a file (the usual Java pattern), as BuildKit and buildah
# do; its matches to a destination without '/' are copied there in turn, so
# the last file wins, as in BuildKit (buildah fills a directory; see
# test_buildkit_diff.sh, copy-sources).
WC=$T/ctx-wildcard
mkdir -p "$WC/target" "$WC/m"
echo jar >"$WC/target/demo-0.0.1.jar"
echo a >"$WC/m/a.txt"
echo b >"$WC/m/b.txt"
printf 'FROM scratch\nCOPY target/*.jar /app.jar\nCOPY m/*.txt /multi\nCOPY target/*.jar /dir/\n' >"$WC/Dockerfile"
build wildcard "$WC"
unpack wildcard
assert_content "$R/app.jar" jar
assert_content "$R/multi" b
assert_content "$R/dir/demo-0.0.1.jar" jar
pass "COPY with a wildcard matching one file makes that file; several to a non-directory: the last wins"

# ENV expands every value before it sets any (the Dockerfile reference's
# own example: "ENV abc=bye def=$abc" gives def=hello).
EV=$T/ctx-env-order
mkdir -p "$EV"
printf 'FROM scratch\nENV abc=hello\nENV abc=bye def=$abc\nENV X=1 Y=$X\nCOPY Dockerfile /\n' >"$EV/Dockerfile"
build env-order "$EV"
config env-order
assert_eq '["abc=bye","def=hello","X=1","Y="]' \
	"$(jq -c '[.config.Env[] | select(startswith("PATH=") | not)]' "$T/cfg-env-order.json")" "Env of ENV abc=bye def=\$abc"
pass "ENV: the values of one line see the variables from before it"

# WORKDIR makes its directories as USER (BuildKit's Mkdir WithUser): a RUN
# as that user can write there.
WU=$T/ctx-workdir-user
mkdir -p "$WU"
cat >"$WU/Dockerfile" <<'DF'
ARG BASE
FROM ${BASE}
RUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group
USER app
WORKDIR /home/app/wd
RUN touch /home/app/wd/t
USER 1001:1002
WORKDIR /n/m
USER root
WORKDIR /r
DF
build workdir-user "$WU"
unpack workdir-user
assert_owner "$R/home/app" 1000:1000
assert_owner "$R/home/app/wd" 1000:1000
assert_owner "$R/home/app/wd/t" 1000:1000
assert_owner "$R/n/m" 1001:1002
assert_owner "$R/r" 0:0
pass "WORKDIR creates its directories as USER (by name or uid:gid), so RUN as that user can write there"

# Secret and cache mounts take uid=, gid= and mode= (a secret defaults to
# root's 0400, as in BuildKit); --secret src= must be a file.
SP=$T/ctx-secret-perm
mkdir -p "$SP"
cat >"$SP/Dockerfile" <<'DF'
ARG BASE
FROM ${BASE}
RUN --mount=type=secret,id=tok stat -c '%u:%g %a' /run/secrets/tok > /sec-default
RUN --mount=type=secret,id=tok,uid=1000,gid=1001,mode=0440 stat -c '%u:%g %a' /run/secrets/tok > /sec-set
RUN --mount=type=cache,target=/c,id=perm-cache,uid=1000,gid=1000,mode=0700 stat -c '%u:%g %a' /c > /cache-set
DF
build secret-perm "$SP" --cache-dir "$T/cache-sp" --secret "id=tok,src=$T/tok"
unpack secret-perm
assert_content "$R/sec-default" "0:0 400"
assert_content "$R/sec-set" "1000:1001 440"
assert_content "$R/cache-set" "1000:1000 700"
mkdir -p "$T/secret-dir"
run_expect_fail "$PLAIT" build --cache-dir "$T/cache-sp" --build-arg "BASE=$BASE" --secret "id=tok,src=$T/secret-dir" \
	-t localhost/sp:1 --output "type=oci,dest=$T/out/sp-dir" "$SP"
expect_rc 2
assert_contains "$ERR" "is not a file" "--secret src= a directory"
pass "secret and cache mounts honour uid=, gid=, mode= (a secret is root's 0400 by default); --secret src= must be a file"

# Bad Dockerfiles are named for what they are: a COPY --from cycle (not an
# image to pull), an unknown signal, an unknown mount type.
BD=$T/ctx-bad-more
mkdir -p "$BD"
echo x >"$BD/x"
bad_df() { # DOCKERFILE-TEXT EXPECTED-STDERR
	printf '%b' "$1" >"$BD/Dockerfile"
	run_expect_fail "$PLAIT" build --cache-dir "$T/cache" --build-arg "BASE=$BASE" -t localhost/bad:1 \
		--output "type=oci,dest=$T/out/bad-more" "$BD"
	expect_rc 2
	assert_contains "$ERR" "$2" "stderr for: $1"
}
bad_df 'FROM scratch AS a\nCOPY --from=a /x /y\n' "Dockerfile:2: COPY --from=a: that is this stage itself"
bad_df 'FROM scratch AS a\nCOPY --from=b /x /y\nFROM scratch AS b\nCOPY --from=a /y /y\n' "COPY --from=b: that is a later stage"
bad_df 'FROM scratch\nSTOPSIGNAL FOO\n' "Dockerfile:2: STOPSIGNAL FOO: not a signal"
bad_df 'ARG BASE\nFROM ${BASE}\nRUN --mount=type=bogus true\n' "unknown type 'bogus'"
pass "a COPY --from cycle, an unknown STOPSIGNAL and an unknown mount type are named (exit 2)"

# An unused --build-arg is warned about in BuildKit's words; an ARG of a stage
# the target does not need does not count, a global ARG does, a stage ARG
# whose name uses a variable counts expanded, and the proxy args need no ARG.
UA=$T/ctx-unused
mkdir -p "$UA"
printf 'ARG BASE\nARG GLOBAL\nFROM ${BASE} AS a\nARG USED\nARG ${USED}_NAMED=1\nRUN true\nFROM ${BASE}\nARG FINAL_ONLY\n' >"$UA/Dockerfile"
build unused "$UA" --target a --build-arg GLOBAL=1 --build-arg USED=u --build-arg u_NAMED=2 \
	--build-arg FINAL_ONLY=3 --build-arg NOT_DECLARED=4 --build-arg HTTP_PROXY=http://proxy.invalid:3128
assert_contains "$ERR" "warning: One or more build-args [FINAL_ONLY NOT_DECLARED] were not consumed" \
	"the warning for unused build args"
build unused2 "$UA" --build-arg GLOBAL=1 --build-arg FINAL_ONLY=3
assert_not_contains "$ERR" "were not consumed" "stderr of a build whose build args are all declared"
pass "unused --build-args are warned about, as BuildKit does"

# A later stage FROM an image starts with steps that read nothing of the
# stages before it (COPY from the context): they run alongside the earlier
# stage (as BuildKit runs independent steps), so their layer is in the cache
# while the first stage's RUN still sleeps; the build shows them done, not
# cached, and the image is what it is without that.
PF=$T/ctx/prefetch
mkdir -p "$PF"
marker="prefetch-marker-$$"
echo "$marker" >"$PF/$marker"
cat >"$PF/Dockerfile" <<EOF
ARG BASE
FROM \$BASE AS slow
RUN /bin/sleep 4 && echo slow > /slow
FROM \$BASE
COPY $marker /opt/$marker
COPY --from=slow /slow /slow
EOF
"$PLAIT" build --progress plain --cache-dir "$T/cache-pf" --build-arg "BASE=$BASE" -t localhost/pf:1 \
	--output "type=oci,dest=$T/out/pf" "$PF" >"$T/pf.log" 2>&1 &
pf_pid=$!
found=0
for _ in $(seq 1 30); do
	for blob in "$T"/cache-pf/store/blobs/sha256/*; do
		[ -f "$blob" ] || continue
		if { gzip -dc "$blob" 2>/dev/null | tar -tf - 2>/dev/null; } | grep -q "opt/$marker"; then
			found=1
			break
		fi
	done
	[ "$found" = 1 ] && break
	sleep 0.1
done
still=0
kill -0 "$pf_pid" 2>/dev/null && still=1
wait "$pf_pid" || fail "the prefetch build failed: $(cat "$T/pf.log")"
[ "$found" = 1 ] || fail "the second stage's COPY layer was not made while the first stage's RUN slept"
[ "$still" = 1 ] || fail "the build was over before the layer was looked for"
assert_match "$(cat "$T/pf.log")" "#[0-9]+ DONE" "the progress of the prefetch build"
assert_not_contains "$(cat "$T/pf.log")" "CACHED" "a cold build (the prefetched COPY is this build's work)"
pass "a later stage's head (COPY from the context) runs while an earlier stage's RUN does; shown done, not cached"

# A step's layer is written behind the steps after it (core/build_commit.c):
# a layer that cannot be written (its blob does not fit the cache's file
# system) fails the build with the message naming that step, not the one
# running when the failure came in; the step is not recorded, the next step
# neither, and nothing is left under layers/ or as a blob. With room again
# the same cache builds it.
WB=$T/ctx/write-behind
mkdir -p "$WB" "$T/cache-small"
cat >"$WB/Dockerfile" <<'EOF2'
ARG BASE
FROM $BASE
RUN /bin/head -c 20971520 /dev/urandom > /big
RUN /bin/sleep 1 && echo after > /after
EOF2
mount -t tmpfs -o size=36m plait-test-small "$T/cache-small" || fail "cannot mount a tmpfs for the small cache"
LIB_MOUNTS+=("$T/cache-small")
build_fail wb "$WB" --cache-dir "$T/cache-small/c"
assert_contains "$ERR" "Dockerfile:3: writing the layer of 'RUN /bin/head -c 20971520 /dev/urandom > /big'" "stderr of a build whose layer does not fit"
assert_contains "$ERR" "No space left on device" "stderr of a build whose layer does not fit"
left=$(find "$T/cache-small/c/layers" -mindepth 1 -maxdepth 1 -name '.tmp-*' 2>/dev/null)
[ -z "$left" ] || fail "temporary layer trees left after the failed build: $left"
records=$(find "$T/cache-small/c/steps" -type f 2>/dev/null | wc -l)
[ "$records" = 0 ] || fail "$records step records after a build whose layers failed"
big=$(find "$T/cache-small/c/store/blobs" -type f -size +1M 2>/dev/null)
[ -z "$big" ] || fail "a blob of the failed layer was left: $big"
cp -a "$T/cache-small/c" "$T/cache-wb"
umount "$T/cache-small"
build wb "$WB" --cache-dir "$T/cache-wb"
unpack wb
[ "$(stat -c %s "$R/big")" = 20971520 ] && [ "$(cat "$R/after")" = after ] ||
	fail "the image built after the failure lacks /big or /after: $(ls -l "$R/big" "$R/after" 2>&1)"
pass "a layer written behind the next steps that fails names its own step; nothing of it is left or recorded"

# ---------------------------------------------------------------- one sync for queued steps
# Steps that end while an earlier step's layer is still being written queue
# their layers behind it; the syncfs of the next commit begins after all
# their trees are complete and writes them all, so the ones queued with it
# do not sync the file system again (5 layer steps: 2 syncs, not 5).
require_cmd strace
SY=$T/ctx/syncs
mkdir -p "$SY"
cat >"$SY/Dockerfile" <<'EOF2'
ARG BASE
FROM $BASE
RUN /bin/seq 1 8000000 > /text
RUN echo a > /a
RUN echo b > /b
RUN echo c > /c
RUN echo d > /d
EOF2
# (LeakSanitizer cannot run under ptrace: a sanitizer build skips its leak check here)
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
	strace -f -qq -e trace=syncfs -e signal=none -o "$T/syncs.trace" "$PLAIT" build --progress plain --cache-dir "$T/cache-syncs" \
	--build-arg "BASE=$BASE" --output "type=oci,dest=$T/out/syncs" "$SY" >"$T/syncs.log" 2>&1 ||
	fail "the build of $SY failed: $(tail -n 20 "$T/syncs.log")"
syncs=$(grep -c 'syncfs(' "$T/syncs.trace" || true)
# 2 when all four end before the first layer is written (here); up to 4 on a
# machine where that layer is written faster; 5 is one sync per layer, and
# fewer than 2 would mean a tree recorded without a sync begun after it.
[ "$syncs" -ge 2 ] && [ "$syncs" -le 4 ] ||
	fail "$syncs syncfs calls for 5 layer steps, 4 of them queued behind the first's layer (want 2-4): $(grep 'syncfs(' "$T/syncs.trace")"
assert_file_exists "$T/out/syncs/index.json"
run_ok "$PLAIT" build --progress plain --cache-dir "$T/cache-syncs" --build-arg "BASE=$BASE" \
	--output "type=oci,dest=$T/out/syncs2" "$SY"
assert_contains "$ERR$OUT" "#6 CACHED" "the second build (every step recorded after the shared syncs)"
pass "layers queued behind a slow one share its successor's syncfs ($syncs for 5 layer steps)"
