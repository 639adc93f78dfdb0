#!/usr/bin/env bash
# plait build FROM base images whose layers try to write outside the root
# (absolute paths, '..', symlinks and hard links pointing out, a symlinked
# parent from an earlier layer): the build either refuses the layer or keeps
# every write inside the image, and nothing outside changes.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd skopeo docker-registry curl jq python3
require_plait
[ "$(id -u)" = 0 ] || skip "unpacking layers with owners needs root"

registry_start R plain
CANARY=$T/canary-dir
mkdir -p "$CANARY"
echo original >"$CANARY/canary"
snapshot() { (cd "$CANARY" && find . -printf '%p %s %m\n' | sort && cat canary); }
before=$(snapshot)

mkdir -p "$T/ctx"
printf 'ARG BASE\nFROM ${BASE}\nRUN ["/pwned-check"]\n' >"$T/ctx/Dockerfile"
for kind in abs dotdot symlink hardlink parent; do
	"$PY" "$LIB_DIR/mkevil.py" "$T/evil-$kind" 1 "$CANARY" "$kind"
	skopeo_reg copy -q "oci:$T/evil-$kind:1" "docker://$R_HOST/evil/$kind:1"
	# The build cannot succeed (the base has no /pwned-check); what matters is where writes went.
	"$PLAIT" build --progress quiet --cache-dir "$T/cache" --build-arg "BASE=$R_HOST/evil/$kind:1" \
		"$T/ctx" >"$T/$kind.out" 2>&1 || true
	after=$(snapshot)
	[ "$before" = "$after" ] || fail "layer kind '$kind' changed files outside the root:
--- before
$before
--- after
$after
--- plait said
$(cat "$T/$kind.out")"
	# The layer must really have been unpacked: refused naming the entry, or
	# contained (the build went on to the RUN, and the write is in the cache).
	case $kind in
	dotdot | symlink | hardlink)
		assert_contains "$(cat "$T/$kind.out")" "unpack" "plait's answer to the '$kind' layer" ;;
	abs | parent)
		assert_contains "$(cat "$T/$kind.out")" "RUN" "plait's answer to the '$kind' layer"
		[ -n "$(find "$T/cache/layers" -name pwned)" ] ||
			fail "the '$kind' layer's file is nowhere in the cache: was the layer unpacked?" ;;
	esac
	pass "a base layer with '$kind' escape attempts writes nothing outside the root"
done
