#!/usr/bin/env bash
# make demo: plait's main job end to end on this machine, offline (Debian 12, as root).
#
#   bash examples/demo.sh [PATH/TO/plait]
#
# Registers QEMU for the foreign architecture (arm64 on an amd64 host),
# makes a small busybox base image for linux/amd64 + linux/arm64 from
# Debian's busybox-static packages, starts a docker-registry on a free
# loopback port and pushes the base there, then shows `plait lint` and
# `plait plan` of examples/hello and builds it for both platforms in one
# `plait build --push`. It prints `plait inspect` of the index and runs each
# platform's image command in a chroot of its root filesystem (arm64 through
# QEMU), so both architectures answer. Then the same build without a
# registry: base from an OCI layout, result to an OCI layout
# (--output type=oci), which gives the same digest. Last, the index is split
# into single-platform images and merged again with `plait index create`,
# the CI matrix flow, again with the same digest.
#
# Idempotent: everything lives in a temporary directory that is removed at
# the end, with the registry process, whatever the outcome. The only
# lasting changes are the system's: arm64 (or amd64) added to dpkg's
# architectures, apt's package lists, and the binfmt_misc handler.
set -euo pipefail

PLAIT=${1:-build/cmd/plait}
[ -x "$PLAIT" ] || { echo "demo: plait binary '$PLAIT' does not exist; build it first: make" >&2; exit 1; }
PLAIT=$(readlink -f "$PLAIT")
SRC=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it registers QEMU with binfmt_misc and chroots into the images)" >&2; exit 1; }
for c in docker-registry curl python3 umoci apt-get dpkg-deb chroot; do
	command -v "$c" >/dev/null || { echo "demo: '$c' is missing; run 'make demo-deps' (or make demo)" >&2; exit 1; }
done

W=$(mktemp -d "${TMPDIR:-/tmp}/plait-demo.XXXXXX")
REG_PID=
cleanup() {
	local rc=$?
	set +e
	if [ -n "$REG_PID" ]; then
		kill "$REG_PID" 2>/dev/null
		wait "$REG_PID" 2>/dev/null
		echo "stopped docker-registry (pid $REG_PID)"
	fi
	rm -rf "$W"
	[ "$rc" = 0 ] || echo "demo: failed (exit $rc)" >&2
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# Keep plait away from the user's registry credentials and build cache.
export DOCKER_CONFIG=$W/docker
CACHE=$W/cache

if [ -t 1 ]; then
	step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
else
	step() { printf '\n==> %s\n' "$*"; }
fi
# Show a command (with the temporary directory as $W), then run it.
run() {
	local s="$*"
	printf '$ %s\n' "${s//$W/\$W}"
	"$@"
}

host=$(dpkg --print-architecture)
case "$host" in
amd64) foreign=arm64 ;;
arm64) foreign=amd64 ;;
*) echo "demo: runs on amd64 or arm64 hosts, not '$host'" >&2; exit 1 ;;
esac
PLATFORMS=linux/amd64,linux/arm64

step "QEMU for linux/$foreign (a binfmt_misc handler with the F and P flags)"
run "$PLAIT" qemu install "$foreign"

step "busybox-static:$foreign from Debian's archive"
# As tests/integration/test_qemu.sh: add the architecture, update the lists
# only when the package cannot be found without, download into $W.
mkdir -p "$W/deb"
dpkg --print-foreign-architectures | grep -qx "$foreign" || run dpkg --add-architecture "$foreign"
get_deb() { (cd "$W/deb" && apt-get download -qq "busybox-static:$foreign") >>"$W/apt.log" 2>&1; }
if ! get_deb; then
	echo "$ apt-get update"
	apt-get update -qq >>"$W/apt.log" 2>&1 || true
	get_deb || { echo "demo: cannot download busybox-static:$foreign:" >&2; tail -n 5 "$W/apt.log" >&2; exit 1; }
fi
deb=$(ls "$W"/deb/busybox-static_*_"$foreign".deb)
version=$(dpkg-deb -f "$deb" Version)
basename "$deb"
# 1:1.35.0-4+deb12u1 -> 1.35
BBTAG=$(sed -E 's/^[0-9]+://; s/^([0-9]+\.[0-9]+).*/\1/' <<<"$version")

step "a busybox base image for $PLATFORMS (an OCI layout, made offline)"
native_deb=$(ls /var/cache/apt/archives/busybox-static_*_"$host".deb 2>/dev/null | sort | tail -n 1 || true)
# (mkbase.sh leaves its work dir behind - it execs python3 past its trap - so TMPDIR=$W.)
TMPDIR=$W run bash "$SRC/tests/integration/mkbase.sh" "$W/base" "$BBTAG" "$host${native_deb:+=$native_deb}" "$foreign=$deb" >/dev/null
run "$PLAIT" inspect "oci:$W/base:$BBTAG"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$port
cat >"$W/registry.yml" <<YML
version: 0.1
log: { level: warn }
storage: { filesystem: { rootdirectory: $W/registry }, delete: { enabled: true } }
http: { addr: $REG }
YML
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
REG_PID=$!
step "docker-registry on $REG (pid $REG_PID)"
for _ in $(seq 100); do curl -fsS "http://$REG/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://$REG/v2/" >/dev/null || { echo "demo: registry did not start:" >&2; cat "$W/registry.log" >&2; exit 1; }
run "$PLAIT" copy --all "oci:$W/base:$BBTAG" "$REG/demo/busybox:$BBTAG"

BUILD=(--platform "$PLATFORMS" --build-arg "BASE=$REG/demo/busybox:$BBTAG" -t "$REG/demo/hello:1.0"
	--cache-dir "$CACHE" --source-date-epoch 1700000000)

step "examples/hello: lint, then the plan (nothing is built yet)"
cat "$SRC/examples/hello/Dockerfile"
echo
run "$PLAIT" lint --fail-on warning "$SRC/examples/hello"
run "$PLAIT" plan "${BUILD[@]}" "$SRC/examples/hello"

step "one build, two platforms, one index pushed (arm64's RUN goes through QEMU)"
run "$PLAIT" build "${BUILD[@]}" --progress plain --push "$SRC/examples/hello" 2>&1

step "the pushed index"
run "$PLAIT" inspect "$REG/demo/hello:1.0"

step "each platform's image command (CMD, as its USER) in a chroot of its root filesystem"
for p in ${PLATFORMS//,/ }; do
	a=${p#linux/}
	run "$PLAIT" copy -q --platform "$p" "$REG/demo/hello:1.0" "oci:$W/run-$a:1.0" >/dev/null
	umoci unpack --image "$W/run-$a:1.0" "$W/bundle-$a" >/dev/null
	# umoci's runtime config has the image's Entrypoint + Cmd and User.
	mapfile -t cmd < <(python3 -c 'import json, sys
for a in json.load(open(sys.argv[1]))["process"]["args"]: print(a)' "$W/bundle-$a/config.json")
	user=$(python3 -c 'import json, sys
u = json.load(open(sys.argv[1]))["process"]["user"]; print("%d:%d" % (u["uid"], u["gid"]))' "$W/bundle-$a/config.json")
	echo "[$p]"
	run chroot --userspec="$user" "$W/bundle-$a/rootfs" "${cmd[@]}"
done

step "the same build without a registry: base from an OCI layout, image to an OCI layout"
# FROM ${BASE} names the build context: no registry is read or written.
run "$PLAIT" build --platform "$PLATFORMS" --build-arg BASE=demo-busybox \
	--build-context "demo-busybox=oci:$W/base:$BBTAG" -t hello:1.0 \
	--cache-dir "$CACHE" --source-date-epoch 1700000000 --progress quiet \
	--output "type=oci,dest=$W/out" "$SRC/examples/hello"
run "$PLAIT" inspect "oci:$W/out:1.0"
a=$("$PLAIT" inspect --raw "oci:$W/out:1.0" | sha256sum | cut -d' ' -f1)
b=$("$PLAIT" inspect --raw "$REG/demo/hello:1.0" | sha256sum | cut -d' ' -f1)
if [ "$a" = "$b" ]; then
	echo "same inputs, same digest: the layout's index is the pushed one (sha256:$a)"
else
	echo "the layout's index sha256:$a differs from the pushed sha256:$b"
fi

step "split into single-platform images, merged again (the CI matrix flow)"
for p in ${PLATFORMS//,/ }; do
	run "$PLAIT" copy -q --platform "$p" "$REG/demo/hello:1.0" "$REG/demo/hello:1.0-${p#linux/}"
done
run "$PLAIT" index create --source-date-epoch 1700000000 -t "$REG/demo/merged:1.0" \
	"$REG/demo/hello:1.0-amd64" "$REG/demo/hello:1.0-arm64"
run "$PLAIT" inspect "$REG/demo/merged:1.0"
a=$("$PLAIT" inspect --raw "$REG/demo/merged:1.0" | sha256sum | cut -d' ' -f1)
if [ "$a" = "$b" ]; then
	echo "the merged index is the one the build pushed (sha256:$a)"
else
	echo "the merged index sha256:$a differs from the one the build pushed (sha256:$b)"
fi

echo
echo "demo finished: one Dockerfile, built for $PLATFORMS in one command, pushed as one index; both architectures answered."
