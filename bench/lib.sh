# bench/lib.sh - helpers shared by the bench scripts (sourced after
# tests/integration/lib.sh, whose $T, fail and require_cmd they use).

# umount_under DIR : unmount everything at or below DIR, deepest first and
# lazily (a busy mount must not stop cleanup). buildah's overlay storage and
# dockerd leave mounts under $T, which lib.sh's cleanup removes.
umount_under() {
	local dir=$1 m
	awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

# deb_arch OCI-PLATFORM : the Debian architecture of linux/ARCH[/VARIANT].
deb_arch() {
	case "${1#linux/}" in
	amd64) echo amd64 ;;
	arm64 | arm64/v8) echo arm64 ;;
	arm | arm/v7) echo armhf ;;
	386) echo i386 ;;
	ppc64le) echo ppc64el ;;
	s390x) echo s390x ;;
	riscv64) echo riscv64 ;;
	*) fail "PLATFORMS: no Debian architecture known for '$1'" ;;
	esac
}
# last_file GLOB-RESULT... : the last of the existing files ("" if none).
last_file() {
	local f last=
	for f in "$@"; do [ -f "$f" ] && last=$f; done
	echo "$last"
}
# fetch_busybox DEB_ARCH : path of a busybox-static .deb for a foreign arch,
# from apt's cache or downloaded (the way tests/integration/test_qemu.sh does).
fetch_busybox() {
	local a=$1 deb
	deb=$(last_file /var/cache/apt/archives/busybox-static_*_"$a".deb)
	if [ -n "$deb" ]; then
		echo "$deb"
		return 0
	fi
	mkdir -p "$T/deb"
	if ! dpkg --print-foreign-architectures | grep -qx "$a"; then
		dpkg --add-architecture "$a" || fail "dpkg --add-architecture $a failed"
		timeout 300 apt-get update -qq >"$T/apt.log" 2>&1 ||
			fail "apt-get update failed (needed for busybox-static:$a): $(tail -n 3 "$T/apt.log")"
	fi
	if ! (cd "$T/deb" && timeout 300 apt-get download -qq "busybox-static:$a") >>"$T/apt.log" 2>&1; then
		# The lists may predate the architecture: update once and retry.
		timeout 300 apt-get update -qq >>"$T/apt.log" 2>&1 || true
		(cd "$T/deb" && timeout 300 apt-get download -qq "busybox-static:$a") >>"$T/apt.log" 2>&1 ||
			fail "could not download busybox-static:$a: $(tail -n 3 "$T/apt.log")"
	fi
	deb=$(last_file "$T/deb"/busybox-static_*_"$a".deb)
	[ -n "$deb" ] || fail "apt-get download busybox-static:$a left no .deb in $T/deb"
	echo "$deb"
}


# make_base DIR [PLATFORMS] : an OCI layout DIR holding busybox:busybox, the
# offline busybox base (tests/integration/mkbase.sh): the host's only, or an
# index of every platform in the comma-separated PLATFORMS, whose foreign
# busybox-static .debs are fetched and QEMU handlers registered with
# `plait qemu install` ($PLAIT).
make_base() {
	local dir=$1 platforms=${2:-} host_deb p a specs=()
	host_deb=$(dpkg --print-architecture)
	if [ -n "$platforms" ]; then
		local plat_list
		IFS=, read -r -a plat_list <<<"$platforms"
		for p in "${plat_list[@]}"; do
			a=$(deb_arch "$p")
			if [ "$a" = "$host_deb" ]; then
				specs+=("$a")
				continue
			fi
			require_cmd dpkg-deb apt-get
			specs+=("$a=$(fetch_busybox "$a")")
			"$PLAIT" qemu install "${p#linux/}" >"$T/qemu-$a.log" 2>&1 ||
				fail "plait qemu install ${p#linux/} failed: $(cat "$T/qemu-$a.log")"
			echo "# $(cat "$T/qemu-$a.log")"
		done
	fi
	bash "$LIB_DIR/mkbase.sh" "$dir" busybox "${specs[@]}" >/dev/null
}

# bench_cleanup (the EXIT trap of bench_trap): unmount what is under $T, run
# $BENCH_CLEANUP_HOOK if set (a function: stop a daemon), then lib.sh's cleanup.
# shellcheck disable=SC2317 # invoked by the EXIT trap
bench_cleanup() {
	local rc=$?
	set +e
	trap - ERR
	[ -z "${BENCH_CLEANUP_HOOK:-}" ] || "$BENCH_CLEANUP_HOOK"
	umount_under "$T"
	(exit "$rc")
	lib_cleanup
}
bench_trap() { trap bench_cleanup EXIT; }

# buildah_setup : buildah made hermetic under $T (own policy, no registries,
# its storage driver in a storage.conf of its own, TMPDIR=$T, an empty auth
# file) and the storage driver chosen: $BUILDAH_DRIVER, else overlay where a
# probe build works here, else vfs. Defines bah ROOT ARGS... (buildah on the
# storage under ROOT).
bah() {
	local root=$1
	shift
	buildah --root "$root/store" --runroot "$root/run" --storage-driver "$BUILDAH_DRIVER" "$@"
}
buildah_setup() {
	echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$T/policy.json"
	: >"$T/registries.conf"
	export CONTAINERS_REGISTRIES_CONF=$T/registries.conf
	mkdir -p "$T/storage-conf"
	export TMPDIR=$T
	# buildah push insists that an auth file exists ($DOCKER_CONFIG is lib.sh's).
	echo '{"auths":{}}' >"$T/buildah-auth.json"
	if [ -z "${BUILDAH_DRIVER:-}" ]; then
		BUILDAH_DRIVER=overlay
		mkdir -p "$T/probe/ctx"
		printf 'FROM scratch\nCOPY a /a\n' >"$T/probe/ctx/Dockerfile"
		echo a >"$T/probe/ctx/a"
		bah "$T/probe" build -q --isolation chroot --signature-policy "$T/policy.json" \
			-t localhost/probe:1 "$T/probe/ctx" >"$T/probe.log" 2>&1 || BUILDAH_DRIVER=vfs
		umount_under "$T/probe"
		rm -rf "$T/probe"
	fi
	printf '[storage]\ndriver = "%s"\n' "$BUILDAH_DRIVER" >"$T/storage-conf/storage.conf"
	export CONTAINERS_STORAGE_CONF=$T/storage-conf/storage.conf
}
