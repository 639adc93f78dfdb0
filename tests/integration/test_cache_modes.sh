#!/usr/bin/env bash
# test_cache_modes.sh - the build cache is private to its owner (issue 11,
# finding 2): a setuid-root file of a base image, unpacked under the cache's
# layers/, can be neither run nor read by another local user; a new cache
# (--cache-dir or $XDG_CACHE_HOME/plait) is 0700 even under umask 000, and a
# cache left at 0755 by an older plait is tightened by the next build.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd skopeo docker-registry curl jq setpriv stat
require_plait
[ "$(id -u)" = 0 ] || skip "a setuid-root file in a layer and a second user need root"

# setpriv keeps its capabilities until its own execve (so CAP_DAC_OVERRIDE
# would resolve the first path): the command runs from a shell it started.
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups /bin/sh -c 'exec "$@"' sh)
# $T is 0700: open a path to a public place in it, so that only the cache's
# own modes stand between the other user and the cache.
chmod 711 "$T"
PUB=$T/pub
mkdir -p "$PUB"
chmod 755 "$PUB"

registry_start R plain
bash "$LIB_DIR/mkbase.sh" "$T/base" busybox >/dev/null
skopeo_reg copy -q --all "oci:$T/base:busybox" "docker://$R_HOST/base/busybox:1"

# A base image whose top layer holds a setuid-root copy of busybox.
mkdir -p "$T/ctx-suid" "$T/ctx"
printf 'ARG BASE\nFROM ${BASE}\nRUN cp /bin/busybox /suid && chmod 4755 /suid\n' \
	>"$T/ctx-suid/Dockerfile"
run_ok "$PLAIT" build --progress plain --cache-dir "$T/cache-suid" \
	--build-arg "BASE=$R_HOST/base/busybox:1" -t localhost/suid:1 \
	--output "type=oci,dest=$T/suid-oci" "$T/ctx-suid"
skopeo_reg copy -q "oci:$T/suid-oci:1" "docker://$R_HOST/evil/suid:1"
printf 'ARG BASE\nFROM ${BASE}\nRUN test -u /suid\n' >"$T/ctx/Dockerfile"
pass "a base image with a setuid-root /suid pushed to $R_HOST/evil/suid:1"

CACHE=$PUB/cache
build_on() { # CACHE-DIR-OPTION... : build FROM the setuid base under umask 000
	(
		umask 000
		run_ok "$PLAIT" build --progress plain "$@" --build-arg "BASE=$R_HOST/evil/suid:1" \
			--output "type=oci,dest=$T/out" "$T/ctx"
	)
}
modes_of() { # DIR : "<mode> <name>" of the cache root and its private subdirectories
	local d
	for d in "" layers steps mounts work; do
		echo "$(stat -c %a "$1/$d") ${d:-.}"
	done
}
PRIVATE=$(printf '700 %s\n' . layers steps mounts work)

build_on --cache-dir "$CACHE"
assert_eq "$PRIVATE" "$(modes_of "$CACHE")" "modes of a new --cache-dir made under umask 000"
pass "a new --cache-dir is 0700 (and layers/ steps/ mounts/ work/) under umask 000"

# The setuid file really is in the cache, setuid and world-executable by its own mode ...
SUID=$(find "$CACHE/layers" -name suid -type f | head -n1)
[ -n "$SUID" ] || fail "no unpacked /suid under $CACHE/layers: $(find "$CACHE/layers" -maxdepth 2)"
assert_eq 4755 "$(stat -c %a "$SUID")" "mode of the unpacked setuid file $SUID"
# ... and another user can neither run it nor read it.
lib_run "${NOBODY[@]}" "$SUID" true
[ "$RC" != 0 ] || fail "uid 65534 ran the setuid-root file $SUID from the cache"
assert_contains "$ERR" "Permission denied" "uid 65534 running $SUID"
lib_run "${NOBODY[@]}" cat "$SUID"
[ "$RC" != 0 ] || fail "uid 65534 read the setuid-root file $SUID from the cache"
assert_contains "$ERR" "Permission denied" "uid 65534 reading $SUID"
lib_run "${NOBODY[@]}" ls "$CACHE"
[ "$RC" != 0 ] || fail "uid 65534 listed the cache $CACHE: $OUT"
pass "another user can neither run nor read a setuid-root file of an image through the cache"

# An older cache left at 0755: the other user gets in (the exposure) ...
chmod 755 "$CACHE" "$CACHE/layers" "$CACHE/steps" "$CACHE/mounts" "$CACHE/work"
# (a layer's root takes the mode of the layer's "./" entry, 0755 in most
# images; this RUN layer has none, so give it the usual one)
chmod 755 "$(dirname "$SUID")"
lib_run "${NOBODY[@]}" cat "$SUID"
assert_eq 0 "$RC" "uid 65534 reading $SUID with the cache at 0755 (control: stderr $ERR)"
# ... until the next build tightens it.
build_on --cache-dir "$CACHE"
assert_eq "$PRIVATE" "$(modes_of "$CACHE")" "modes of a 0755 cache after a build"
lib_run "${NOBODY[@]}" cat "$SUID"
[ "$RC" != 0 ] || fail "uid 65534 still reads $SUID after the build tightened the cache"
pass "a cache at 0755 becomes 0700 after a build"

# The default cache: $XDG_CACHE_HOME/plait.
mkdir -p "$PUB/xdg"
chmod 755 "$PUB/xdg"
XDG_CACHE_HOME=$PUB/xdg build_on
assert_eq "$PRIVATE" "$(modes_of "$PUB/xdg/plait")" "modes of the default cache \$XDG_CACHE_HOME/plait"
pass "the default cache \$XDG_CACHE_HOME/plait is 0700 under umask 000"
