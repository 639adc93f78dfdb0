#!/bin/sh
# Build and install plait from source on a Debian or Ubuntu CI runner.
#   PLAIT_REPO  the git repository (default https://github.com/example/plait)
#   PLAIT_REF   the tag or branch to build (default v0.1.0)
set -eu
repo=${PLAIT_REPO:-https://github.com/example/plait}
ref=${PLAIT_REF:-v0.1.0}
src=${TMPDIR:-/tmp}/plait-src
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
	git ca-certificates meson ninja-build pkg-config gcc libc6-dev jq make \
	libcurl4-openssl-dev libjansson-dev libarchive-dev libssl-dev zlib1g-dev libzstd-dev
rm -rf "$src"
git clone --depth 1 --branch "$ref" "$repo" "$src"
meson setup "$src/build" "$src" --buildtype=release
ninja -C "$src/build"
$sudo ninja -C "$src/build" install
plait --help >/dev/null
