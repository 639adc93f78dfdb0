#!/usr/bin/env bash
# make demo: plait end to end on this machine, offline.
#
# Starts a docker-registry on a free loopback port, makes a small two-platform
# image (linux/amd64 + linux/arm64) as an OCI layout, publishes it with
# `plait copy --all`, shows it with `plait inspect`, takes it apart into
# single-platform images and puts it back together with `plait index create`,
# and checks with skopeo that the digests survived. Idempotent: everything
# lives in a temporary directory that is removed at the end, with the registry.
set -euo pipefail

PLAIT=${1:-build/cmd/plait}
PLAIT=$(readlink -f "$PLAIT")
SRC=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/plait-demo.XXXXXX")
REG_PID=
cleanup() {
	local rc=$?
	if [ -n "$REG_PID" ]; then
		kill "$REG_PID" 2>/dev/null || true
		wait "$REG_PID" 2>/dev/null || true
	fi
	rm -rf "$W"
	exit "$rc"
}
trap cleanup EXIT

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$port
cat > "$W/registry.yml" <<YML
version: 0.1
log: { level: warn }
storage: { filesystem: { rootdirectory: $W/registry }, delete: { enabled: true } }
http: { addr: $REG }
YML
step "starting docker-registry on $REG"
docker-registry serve "$W/registry.yml" > "$W/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 50); do curl -fsS "http://$REG/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://$REG/v2/" >/dev/null || { echo "registry did not start:"; cat "$W/registry.log"; exit 1; }

step "making a two-platform image as an OCI layout"
python3 "$SRC/tests/integration/mkimage.py" "$W/layout" --tag 1.0 \
	--platform linux/amd64 --platform linux/arm64 --layers 2 --layer-size 256K --shared-base >/dev/null
run "$PLAIT" inspect "oci:$W/layout:1.0"

step "publishing it: plait copy --all"
run "$PLAIT" copy --all "oci:$W/layout:1.0" "$REG/demo/hello:1.0"
run "$PLAIT" inspect "$REG/demo/hello:1.0"
run "$PLAIT" inspect --platform linux/arm64 "$REG/demo/hello:1.0"

step "one platform to a local directory: plait copy --platform linux/arm64"
run "$PLAIT" copy --platform linux/arm64 "$REG/demo/hello:1.0" "oci:$W/arm64:1.0"

step "single-platform images merged into a new index (the CI matrix flow)"
run "$PLAIT" copy -q --platform linux/amd64 "$REG/demo/hello:1.0" "$REG/demo/hello:1.0-amd64"
run "$PLAIT" copy -q --platform linux/arm64 "$REG/demo/hello:1.0" "$REG/demo/hello:1.0-arm64"
run "$PLAIT" index create -t "$REG/demo/merged:1.0" --annotation org.opencontainers.image.version=1.0 \
	"$REG/demo/hello:1.0-amd64" "$REG/demo/hello:1.0-arm64"
run "$PLAIT" inspect "$REG/demo/merged:1.0"

step "checking with skopeo that the published index is byte-identical to the layout's"
a=$(skopeo inspect --raw "oci:$W/layout:1.0" | sha256sum | cut -d' ' -f1)
b=$(skopeo inspect --tls-verify=false --raw "docker://$REG/demo/hello:1.0" | sha256sum | cut -d' ' -f1)
echo "layout   sha256:$a"
echo "registry sha256:$b"
[ "$a" = "$b" ] || { echo "demo: digests differ" >&2; exit 1; }
echo
echo "demo finished: plait published, inspected, split and merged a two-platform image."
