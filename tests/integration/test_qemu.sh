#!/usr/bin/env bash
# test_qemu.sh - `plait qemu status|install` against the real binfmt_misc:
# install arm64 registers qemu-aarch64-static with the F flag, status shows
# it, a second install changes nothing, a handler without F is replaced, the
# native arch and non-root callers are refused, and a static arm64 busybox
# runs through the handler. Leaves qemu-aarch64 registered with F.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd jq
require_plait
[ "$(id -u)" = 0 ] || skip "registering binfmt_misc handlers needs root"
[ -x /usr/bin/qemu-aarch64-static ] || skip "/usr/bin/qemu-aarch64-static is missing: apt-get install qemu-user-static"
case "$(uname -m)" in
aarch64 | arm64) skip "the host is arm64: this test emulates arm64" ;;
esac
B=/proc/sys/fs/binfmt_misc

run_ok "$PLAIT" qemu status
assert_match "$OUT" $'(^|\n)ARCH +NATIVE +HANDLER +F-FLAG' "status table header"
assert_match "$OUT" $'\n(amd64|386|ppc64le|s390x|riscv64|mips64le|loong64|arm) +yes ' "host's native row"
pass "status prints a table"

# Non-root callers are told why, before anything is touched.
if command -v setpriv >/dev/null 2>&1; then
	run_expect_fail setpriv --reuid=65534 --regid=65534 --clear-groups "$PLAIT" qemu install arm64
	expect_rc 1
	assert_contains "$ERR" "qemu install must run as root"
	pass "install refuses non-root"
fi

run_expect_fail "$PLAIT" qemu install "$(jq -r .host <<<"$("$PLAIT" qemu status --format json)")"
expect_rc 2
assert_contains "$ERR" "runs natively on this"
run_expect_fail "$PLAIT" qemu install sparc
expect_rc 2
assert_contains "$ERR" "unknown architecture 'sparc'"
pass "install refuses the native arch and unknown arches"

run_ok "$PLAIT" qemu install arm64
assert_match "$OUT" "^linux/arm64: (registered|already registered with the F and P flags|replaced a handler without the F or P flag|enabled)"
assert_file_exists "$B/register" "binfmt_misc register file (mounted by install)"
run_ok "$PLAIT" qemu status --format json
assert_eq true "$(jq -r .mounted <<<"$OUT")" "mounted"
arm64=$(jq -c '.arches[] | select(.arch == "arm64")' <<<"$OUT")
assert_eq true "$(jq -r .registered <<<"$arm64")" "arm64 registered"
assert_eq true "$(jq -r .enabled <<<"$arm64")" "arm64 enabled"
assert_eq true "$(jq -r .fix_binary <<<"$arm64")" "arm64 has the F flag"
assert_eq true "$(jq -r .preserve_argv0 <<<"$arm64")" "arm64 has the P flag"
assert_eq false "$(jq -r .native <<<"$arm64")" "arm64 native"
handler=$(jq -r .handler <<<"$arm64")
grep -qx 'flags: .*F.*' "$B/$handler" || fail "$B/$handler has no F flag: $(cat "$B/$handler")"
grep -qx 'flags: .*P.*' "$B/$handler" || fail "$B/$handler has no P flag: $(cat "$B/$handler")"
run_ok "$PLAIT" qemu status
assert_match "$OUT" $'\narm64 +no +enabled +yes +yes ' "arm64 row of the status table"
pass "install arm64 registers a handler with F and P; status shows it"

run_ok "$PLAIT" qemu install arm64
assert_eq "linux/arm64: already registered with the F and P flags (qemu-aarch64)" "$OUT" "second install"
pass "install is idempotent"

# A handler without F (what some distributions register) is replaced.
echo -1 >"$B/$handler"
printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:' >"$B/register"
run_ok "$PLAIT" qemu status --format json
assert_eq false "$(jq -r '.arches[] | select(.arch == "arm64") | .fix_binary' <<<"$OUT")" "F flag before reinstall"
run_ok "$PLAIT" qemu install arm64
assert_eq "linux/arm64: replaced a handler without the F or P flag (qemu-aarch64)" "$OUT" "install over a handler without F"
grep -qx 'flags: PF' "$B/qemu-aarch64" || fail "qemu-aarch64 not registered with F and P: $(cat "$B/qemu-aarch64")"
# ... and so is one with F but without P (busybox applets would fail under it).
echo -1 >"$B/qemu-aarch64"
printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F' >"$B/register"
run_ok "$PLAIT" qemu install arm64
assert_eq "linux/arm64: replaced a handler without the F or P flag (qemu-aarch64)" "$OUT" "install over a handler without P"
grep -qx 'flags: PF' "$B/qemu-aarch64" || fail "qemu-aarch64 not registered with F and P: $(cat "$B/qemu-aarch64")"
pass "a handler without F, or without P, is replaced by one with both"

# A real static arm64 binary runs through the handler.
deb_dir=$T/deb
mkdir -p "$deb_dir"
got_deb=
if dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64; then
	# apt's lists may already know arm64; update only when the download fails
	# (and go on even if update reports a stale index: the download decides).
	if (cd "$deb_dir" && timeout 300 apt-get download -qq busybox-static:arm64 >"$T/apt.log" 2>&1) ||
		{ timeout 300 apt-get update -qq >>"$T/apt.log" 2>&1
		(cd "$deb_dir" && timeout 300 apt-get download -qq busybox-static:arm64 >>"$T/apt.log" 2>&1); }; then
		got_deb=$(ls "$deb_dir"/busybox-static_*_arm64.deb 2>/dev/null | head -n1)
	fi
fi
if [ -z "$got_deb" ]; then
	echo "SKIP (part): could not download busybox-static:arm64 (no network or no arm64 archive?); not running an arm64 binary"
	tail -n 5 "$T/apt.log" 2>/dev/null || true
else
	dpkg-deb -x "$got_deb" "$T/bb"
	run_ok "$T/bb/bin/busybox" uname -m
	assert_eq aarch64 "$OUT" "uname -m of an arm64 busybox"
	pass "a static arm64 busybox runs through the F handler"
fi

# With the handler in place, plait build --platform linux/arm64 runs RUN steps of
# an arm64 base under QEMU inside the sandbox's chroot (the F flag at work).
if [ -n "$got_deb" ]; then
	require_cmd skopeo docker-registry curl jq umoci
	registry_start R plain
	bash "$LIB_DIR/mkbase.sh" "$T/mb" busybox "arm64=$got_deb" >/dev/null
	skopeo_reg copy -q --all "oci:$T/mb:busybox" "docker://$R_HOST/base/arm64:1"
	mkdir -p "$T/xb"
	printf 'ARG BASE\nFROM ${BASE}\nARG TARGETARCH\nRUN sleep 0 && echo "$TARGETARCH $(uname -m)" > /arch.txt\n' >"$T/xb/Dockerfile"
	run_ok "$PLAIT" build --platform linux/arm64 --cache-dir "$T/cache" --build-arg "BASE=$R_HOST/base/arm64:1" \
		-t x/arm:1 --output "type=oci,dest=$T/xout" "$T/xb"
	run_ok umoci unpack --image "$T/xout:1" "$T/xbundle"
	assert_eq "arm64 aarch64" "$(cat "$T/xbundle/rootfs/arch.txt")" "TARGETARCH and uname -m inside the arm64 RUN"
	assert_eq arm64 "$(skopeo inspect --config --raw "oci:$T/xout:1" | jq -r .architecture)" "architecture of the built image"
	pass "plait build --platform linux/arm64 runs RUN under QEMU and makes an arm64 image"
fi

# Several platforms in one build: one OCI index, entries in --platform order,
# each image built for its own architecture; a failure on one platform
# leaves the tag where it was.
if [ -n "$got_deb" ]; then
	bash "$LIB_DIR/mkbase.sh" "$T/mb2" busybox "$(dpkg --print-architecture)" "arm64=$got_deb" >/dev/null
	skopeo_reg copy -q --all "oci:$T/mb2:busybox" "docker://$R_HOST/base/multi:1"
	run_ok "$PLAIT" build --platform linux/amd64,linux/arm64 --cache-dir "$T/cache" \
		--build-arg "BASE=$R_HOST/base/multi:1" -t "$R_HOST/app/multi:1.0" --push \
		--metadata-file "$T/meta.json" "$T/xb"
	raw=$(skopeo_reg inspect --raw "docker://$R_HOST/app/multi:1.0")
	assert_eq "application/vnd.oci.image.index.v1+json" "$(echo "$raw" | jq -r .mediaType)" "media type of the pushed tag"
	assert_eq "amd64 arm64" "$(echo "$raw" | jq -r '[.manifests[].platform.architecture] | join(" ")')" "index entries, in --platform order"
	assert_eq "$(jq -r '."containerimage.digest"' "$T/meta.json")" \
		"sha256:$(echo -n "$raw" | sha256sum | cut -d' ' -f1)" "metadata digest = pushed index digest"
	for a in amd64 arm64; do
		run_ok "$PLAIT" copy -q --platform "linux/$a" "$R_HOST/app/multi:1.0" "oci:$T/m-$a:x"
		run_ok umoci unpack --image "$T/m-$a:x" "$T/mb-$a"
		want=$a
		[ "$a" = amd64 ] && m=x86_64 || m=aarch64
		assert_eq "$want $m" "$(cat "$T/mb-$a/rootfs/arch.txt")" "linux/$a image of the index"
	done
	pass "--platform linux/amd64,linux/arm64 builds both and pushes one index, in order"

	# The native job yields the CPU to the emulated one (the critical
	# path): its RUN runs 10 nice steps lower than plait; alone, it does not.
	mkdir -p "$T/xn"
	printf 'ARG BASE\nFROM ${BASE}\nRUN /bin/awk "{ print \\$19 }" /proc/self/stat > /nice\n' >"$T/xn/Dockerfile"
	host_nice=$(awk '{ print $19 }' /proc/self/stat)
	want=$((host_nice + 10 > 19 ? 19 : host_nice + 10))
	run_ok "$PLAIT" build --platform linux/amd64,linux/arm64 --cache-dir "$T/cache" \
		--build-arg "BASE=$R_HOST/base/multi:1" -t "$R_HOST/app/nice:2" --push "$T/xn"
	run_ok "$PLAIT" copy -q --platform linux/amd64 "$R_HOST/app/nice:2" "oci:$T/n2:x"
	run_ok umoci unpack --image "$T/n2:x" "$T/n2b"
	assert_eq "$want" "$(cat "$T/n2b/rootfs/nice")" "nice value of the native job's RUN next to an emulated job (plait's is $host_nice)"
	run_ok "$PLAIT" build --platform linux/amd64 --no-cache --cache-dir "$T/cache" \
		--build-arg "BASE=$R_HOST/base/multi:1" -t "$R_HOST/app/nice:1" --push "$T/xn"
	run_ok "$PLAIT" copy -q --platform linux/amd64 "$R_HOST/app/nice:1" "oci:$T/n1:x"
	run_ok umoci unpack --image "$T/n1:x" "$T/n1b"
	assert_eq "$host_nice" "$(cat "$T/n1b/rootfs/nice")" "nice value of a RUN of a native-only build"
	pass "a native job yields the CPU (nice +10) only while an emulated job runs alongside"

	before=$(skopeo_reg inspect --raw "docker://$R_HOST/app/multi:1.0" | sha256sum)
	mkdir -p "$T/xfail"
	printf 'ARG BASE\nFROM ${BASE}\nRUN test "$(uname -m)" != aarch64\n' >"$T/xfail/Dockerfile"
	run_expect_fail "$PLAIT" build --platform linux/amd64,linux/arm64 --cache-dir "$T/cache" \
		--build-arg "BASE=$R_HOST/base/multi:1" -t "$R_HOST/app/multi:1.0" --push "$T/xfail"
	assert_contains "$ERR" "linux/arm64" "the error names the platform that failed"
	assert_contains "$ERR" "Dockerfile:3" "the error names the Dockerfile line"
	assert_eq "$before" "$(skopeo_reg inspect --raw "docker://$R_HOST/app/multi:1.0" | sha256sum)" "the tag after a failed arm64 build"
	pass "a RUN that fails only under emulation fails the build and moves no tag"
fi

# The CI matrix flow: one job per platform pushes by digest (no tag moves),
# a last job joins them with index create --from-metadata; the result is the
# same index a single multi-platform build makes.
if [ -n "$got_deb" ]; then
	for a in amd64 arm64; do
		run_ok "$PLAIT" build --platform "linux/$a" --cache-dir "$T/cache" \
			--build-arg "BASE=$R_HOST/base/multi:1" -t "$R_HOST/app/matrix:2.0" --push-by-digest \
			--metadata-file "$T/m-$a.json" "$T/xb"
	done
	# no image tag moved; the sha256-<hex> tags are the referrers tag
	# fallback holding each platform image's provenance
	tags=$(curl -s "http://$R_HOST/v2/app/matrix/tags/list" | jq -c '.tags // []')
	assert_eq "[]" "$(jq -c '[.[] | select(startswith("sha256-") | not)]' <<<"$tags")" "tags after two --push-by-digest builds"
	assert_eq 2 "$(jq '[.[] | select(startswith("sha256-"))] | length' <<<"$tags")" \
		"referrers tags after two --push-by-digest builds (one provenance per platform image)"
	run_ok "$PLAIT" index create -t "$R_HOST/app/matrix:2.0" --from-metadata "$T/m-amd64.json" \
		--from-metadata "$T/m-arm64.json"
	raw=$(skopeo_reg inspect --raw "docker://$R_HOST/app/matrix:2.0")
	assert_eq "amd64 arm64" "$(echo "$raw" | jq -r '[.manifests[].platform.architecture] | join(" ")')" "entries of the merged index"
	assert_eq "$(jq -r '."containerimage.digest"' "$T/meta.json")" "sha256:$(echo -n "$raw" | sha256sum | cut -d' ' -f1)" \
		"merged index digest = the one-command multi-platform build's"
	pass "CI matrix flow: --push-by-digest per platform, then index create --from-metadata"
fi
