#!/usr/bin/env bash
# plait build: ADD of local archives (gzip, zstd) and of URLs with --checksum,
# COPY --exclude, --parents and --from=<image>, checked by unpacking the image
# with umoci.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd skopeo umoci docker-registry curl jq zstd xz bzip2 python3
require_plait
[ "$(id -u)" = 0 ] || skip "umoci unpack with owners needs root"

registry_start R plain
bash "$LIB_DIR/mkbase.sh" "$T/base" busybox >/dev/null
skopeo_reg copy -q --all "oci:$T/base:busybox" "docker://$R_HOST/base/busybox:1"
BASE=$R_HOST/base/busybox:1

ctx=$T/ctx
cp -a "$PLAIT_SRCDIR/tests/data/build/add" "$ctx"
tar -C "$ctx/t" -czf "$ctx/arch.tar.gz" d
tar -C "$ctx/t" -cf - d | zstd -q -o "$ctx/arch.tar.zst"
tar -C "$ctx/t" -cJf "$ctx/arch.tar.xz" d
tar -C "$ctx/t" -cjf "$ctx/arch.tar.bz2" d
mkdir -p "$T/www"
echo downloaded >"$T/www/file.txt"
touch -d @981173106 "$T/www/file.txt" # the server's Last-Modified (http.server sends the file's time)
SUM=sha256:$(sha256sum "$T/www/file.txt" | cut -d' ' -f1)
port=$(free_port)
bg_start www "$PY" -m http.server "$port" --bind 127.0.0.1 --directory "$T/www"
wait_http "http://127.0.0.1:$port/file.txt"
URL=http://127.0.0.1:$port/file.txt

run_ok "$PLAIT" build --cache-dir "$T/cache" --build-arg "BASE=$BASE" --build-arg "URL=$URL" \
	--build-arg "SUM=$SUM" -t localhost/add:1 --output "type=oci,dest=$T/out" "$ctx"
run_ok umoci unpack --image "$T/out:1" "$T/bundle"
R=$T/bundle/rootfs
assert_eq in-tar "$(cat "$R/gz/d/f.txt")" "ADD of a .tar.gz extracts it"
assert_eq in-tar "$(cat "$R/zst/d/f.txt")" "ADD of a .tar.zst extracts it"
assert_eq in-tar "$(cat "$R/xz/d/f.txt")" "ADD of a .tar.xz extracts it"
assert_eq in-tar "$(cat "$R/bz2/d/f.txt")" "ADD of a .tar.bz2 extracts it"
assert_eq "1000:1000 1000:1000" "$(stat -c %u:%g "$R/own") $(stat -c %u:%g "$R/own/new")" \
	"owner of the directories ADD --chown=1000:1000 made for an archive"
assert_eq "not an archive" "$(cat "$R/plain/plain.gz")" "ADD of a file named .gz that is no archive copies it"
pass "ADD extracts local tar archives (gzip, zstd, xz, bzip2) and copies other files"
assert_eq downloaded "$(cat "$R/dl/file.txt")" "ADD of a URL"
assert_eq 600 "$(stat -c %a "$R/dl/file.txt")" "mode of a file ADDed from a URL"
assert_eq 981173106 "$(stat -c %Y "$R/dl/file.txt")" "time of a file ADDed from a URL (the server's Last-Modified)"
pass "ADD --checksum of a URL downloads it with mode 600 and the server's Last-Modified as its time"
[ -f "$R/ex/a/keep.txt" ] || [ -f "$R/ex/keep.txt" ] || fail "COPY --exclude dropped a file it should keep: $(find "$R/ex")"
[ ! -e "$R/ex/skip.log" ] || fail "COPY --exclude=*.log kept $R/ex/skip.log"
pass "COPY --exclude leaves out the matching files"
# An excluded file is no input: changing it keeps the step cached.
echo changed >>"$ctx/src/a/b/skip.log"
run_ok "$PLAIT" build --progress plain --cache-dir "$T/cache" --build-arg "BASE=$BASE" --build-arg "URL=$URL" \
	--build-arg "SUM=$SUM" -t localhost/add:excl --output "type=oci,dest=$T/out-excl" "$ctx"
step=$(printf '%s\n' "$ERR" | sed -n 's/^#\([0-9]*\) .*COPY --exclude=\*\.log.*/\1/p' | head -n 1)
[ -n "$step" ] || fail "no COPY --exclude step in the progress output: $ERR"
assert_contains "$ERR" "#$step CACHED"
pass "COPY --exclude: a change to an excluded file keeps the step cached"
assert_eq keep "$(cat "$R/par/src/a/b/keep.txt")" "COPY --parents keeps the source path"
assert_eq x "$(cat "$R/par/src/c/x.txt")" "COPY --parents keeps the source path"
pass "COPY --parents keeps each source's path below the destination"
cmp -s "$R/from-image/busybox" "$R/bin/busybox" || fail "COPY --from=<image> did not copy the image's /bin/busybox"
pass "COPY --from=<image reference> copies from that image"

# A wrong checksum fails the build, names the URL and both digests, writes no tag.
run_expect_fail "$PLAIT" build --cache-dir "$T/cache" --build-arg "BASE=$BASE" --build-arg "URL=$URL" \
	--build-arg "SUM=sha256:$(printf '0%.0s' $(seq 64))" -t localhost/add:2 --output "type=oci,dest=$T/out" "$ctx"
assert_contains "$ERR" "$URL" "error names the URL"
assert_contains "$ERR" "digest mismatch" "error says the digest did not match"
assert_contains "$ERR" "$SUM" "error names the digest that arrived"
[ -z "$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]=="2") | .digest' "$T/out/index.json")" ] ||
	fail "a failed build tagged '2' in $T/out"
pass "ADD --checksum mismatch fails the build, naming URL and digests, and tags nothing"

# COPY of a URL is refused.
printf 'ARG BASE\nFROM ${BASE}\nCOPY %s /x\n' "$URL" >"$ctx/Dockerfile.copyurl"
run_expect_fail "$PLAIT" build --cache-dir "$T/cache" --build-arg "BASE=$BASE" -f "$ctx/Dockerfile.copyurl" "$ctx"
assert_contains "$ERR" "use ADD for URLs" "COPY of a URL"
pass "COPY of a URL is refused with a hint to use ADD"

# Destination rules: a symlinked destination directory is followed inside the
# root (merged-usr /lib -> usr/lib), an existing directory keeps its mode, "."
# is the working directory, and WORKDIR makes its directory.
mkdir -p "$T/dctx/libs"
echo lib >"$T/dctx/libs/a.so"
chmod 700 "$T/dctx/libs"
cat >"$T/dctx/Dockerfile" <<'DOCKERFILE'
ARG BASE
FROM ${BASE}
RUN mkdir -p /usr/lib && ln -s usr/lib /lib && chmod 755 /usr/lib
COPY libs/ /lib/
WORKDIR /srv/app
COPY libs/a.so .
WORKDIR /srv/empty
DOCKERFILE
run_ok "$PLAIT" build --cache-dir "$T/cache" --build-arg "BASE=$BASE" -t localhost/d:1 \
	--output "type=oci,dest=$T/dout" "$T/dctx"
run_ok umoci unpack --image "$T/dout:1" "$T/db"
D=$T/db/rootfs
[ -L "$D/lib" ] || fail "COPY into /lib/ replaced the symlink /lib -> usr/lib: $(ls -ld "$D/lib")"
assert_eq lib "$(cat "$D/usr/lib/a.so")" "COPY through a symlinked destination directory"
assert_eq 755 "$(stat -c %a "$D/usr/lib")" "mode of an existing destination directory"
pass "COPY follows a symlinked destination directory inside the root and keeps its mode"
assert_eq lib "$(cat "$D/srv/app/a.so")" "COPY a.so . in WORKDIR /srv/app"
pass "COPY to '.' copies into the working directory"
[ -d "$D/srv/empty" ] || fail "WORKDIR /srv/empty did not create the directory"
pass "WORKDIR creates its directory"

# ADD of a local tar is an archive, not a layer: a '.wh.' member is a file,
# and nothing already in the image is deleted because of it.
mkdir -p "$T/whctx/t"
echo x >"$T/whctx/t/.wh.keep"
echo n >"$T/whctx/t/new"
tar -C "$T/whctx/t" -cf "$T/whctx/wh.tar" .wh.keep new
echo keep >"$T/whctx/a.txt"
printf 'ARG BASE\nFROM ${BASE}\nCOPY a.txt /app/keep\nADD wh.tar /app/\nRUN ls -A /app > /listing\n' >"$T/whctx/Dockerfile"
run_ok "$PLAIT" build --cache-dir "$T/cache" --build-arg "BASE=$BASE" -t localhost/wh:1 \
	--output "type=oci,dest=$T/whout" "$T/whctx"
run_ok umoci unpack --image "$T/whout:1" "$T/whb"
assert_eq ".wh.keep
keep
new" "$(cat "$T/whb/rootfs/listing")" "files in /app after ADD of a tar with a .wh. member"
pass "ADD of a tar does not apply whiteouts: /app/keep stays, .wh.keep is a file"

# A RUN heredoc starting with #! runs as a script file.
mkdir -p "$T/shctx"
printf 'ARG BASE\nFROM ${BASE}\nRUN <<EOT\n#!/bin/sh\necho "shebang heredoc ran" > /shebang.txt\nEOT\n' >"$T/shctx/Dockerfile"
run_ok "$PLAIT" build --cache-dir "$T/cache" --build-arg "BASE=$BASE" -t localhost/sh:1 \
	--output "type=oci,dest=$T/shout" "$T/shctx"
run_ok umoci unpack --image "$T/shout:1" "$T/shb"
assert_eq "shebang heredoc ran" "$(cat "$T/shb/rootfs/shebang.txt")" "RUN <<EOT with #!"
[ -z "$(ls -A "$T/shb/rootfs" | grep plait-heredoc)" ] || fail "the heredoc script's mount point stayed in the image"
pass "a RUN heredoc with #! runs as a script and leaves nothing behind"

# No accidental latest: -t NAME:latest is refused unless --allow-latest.
run_expect_fail "$PLAIT" build --cache-dir "$T/cache" --build-arg "BASE=$BASE" -t localhost/x:latest "$T/dctx"
assert_eq 2 "$RC" "exit status for -t ...:latest"
assert_contains "$ERR" "--allow-latest" "the error says how to allow it"
run_ok "$PLAIT" build --cache-dir "$T/cache" --build-arg "BASE=$BASE" -t localhost/x:latest --allow-latest "$T/dctx"
pass "a 'latest' tag is refused unless --allow-latest"
