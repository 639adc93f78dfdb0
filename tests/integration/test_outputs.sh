#!/usr/bin/env bash
# test_outputs.sh - the local outputs of `plait build`: --output type=docker
# (loaded with `docker load` into a private dockerd and run there, and with
# `podman load`), --load (the Engine API through DOCKER_HOST's socket: a
# private dockerd's, and podman's Docker-compatible service), type=local and type=tar
# (compared entry by entry with umoci's unpacking of the same image's OCI
# output: path, type, mode, size, content hash, link target), --iidfile
# (against --metadata-file), the refused combinations, and a failed build
# that must leave no output behind.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd skopeo umoci docker-registry curl jq
require_plait
[ "$(id -u)" = 0 ] || skip "dockerd and umoci unpack with owners need root"

HOSTP=$(host_platform)

trap dockerd_cleanup EXIT
registry_start R plain
bash "$LIB_DIR/mkbase.sh" "$T/base" busybox >/dev/null
skopeo_reg copy -q --all "oci:$T/base:busybox" "docker://$R_HOST/base/busybox:1"
BASE=$R_HOST/base/busybox:1

# A context whose layers have a whiteout (a file a later RUN removes), a
# symlink, a hardlink, odd modes and a CMD whose output the run checks.
CTX=$T/ctx
mkdir -p "$CTX"
cat >"$CTX/Dockerfile" <<'EOF'
ARG BASE
FROM $BASE
RUN mkdir -p /data/sub && echo hello >/data/hello.txt && echo gone >/data/gone.txt && \
	ln -s hello.txt /data/link && ln /data/hello.txt /data/hard && chmod 0640 /data/hello.txt && \
	chmod 0700 /data/sub
RUN rm /data/gone.txt && echo second >/data/sub/second.txt
COPY msg.txt /msg.txt
CMD ["/bin/sh", "-c", "cat /msg.txt"]
EOF
echo "plait outputs ok" >"$CTX/msg.txt"
chmod 644 "$CTX/msg.txt" "$CTX/Dockerfile"

# listing DIR|TAR : one line per entry "path type mode size sha256|target",
# sorted; the root itself left out, owners and mtimes too (a rootless local
# tree keeps the user's ownership; mtimes are not what is compared).
listing() {
	"$PY" - "$1" <<'PY'
import hashlib, os, stat, sys, tarfile
src = sys.argv[1]
rows = []
def h(f):
    d = hashlib.sha256()
    for b in iter(lambda: f.read(1 << 16), b""):
        d.update(b)
    return d.hexdigest()
if os.path.isdir(src):
    for top, dirs, files in os.walk(src):
        for n in dirs + files:
            p = os.path.join(top, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, src)
            m = "%04o" % stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                rows.append(f"{rel} dir {m} -")
            elif stat.S_ISLNK(st.st_mode):
                rows.append(f"{rel} symlink {m} -> {os.readlink(p)}")
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    rows.append(f"{rel} file {m} {st.st_size} {h(f)}")
            else:
                rows.append(f"{rel} other {m} -")
else:
    with tarfile.open(src) as t:
        for e in t.getmembers():
            rel = e.name.rstrip("/")
            if rel.startswith("./"):
                rel = rel[2:]
            if rel in ("", "."):
                continue
            m = "%04o" % e.mode
            if e.isdir():
                rows.append(f"{rel} dir {m} -")
            elif e.issym():
                rows.append(f"{rel} symlink 0777 -> {e.linkname}")
            elif e.isfile() or e.islnk():
                f = t.extractfile(e)
                size = t.getmember(e.linkname).size if e.islnk() else e.size
                rows.append(f"{rel} file {m} {size} {h(f)}")
            else:
                rows.append(f"{rel} other {m} -")
print("\n".join(sorted(rows)))
PY
}

# same_listing WHAT EXPECTED ACTUAL : the two listings are equal, or the diff.
same_listing() {
	local what=$1 a=$2 b=$3
	if [ "$a" != "$b" ]; then
		fail "$what differs from the OCI image unpacked by umoci (- umoci, + plait):
$(diff <(echo "$a") <(echo "$b") | grep '^[<>]' | sed 's/^</-/; s/^>/+/' | head -n 40)"
	fi
}

# ---------------------------------------------------------------- one build, every output

O=$T/out
mkdir -p "$O"
run_ok "$PLAIT" build --progress plain --cache-dir "$T/cache" --build-arg "BASE=$BASE" --platform "$HOSTP" \
	-t localhost/outputs:1 -t localhost/outputs:extra \
	--output "type=oci,dest=$O/oci" -o "type=docker,dest=$O/img.tar" \
	--output "type=tar,dest=$O/root.tar" --output "type=local,dest=$O/root" \
	--iidfile "$O/iid" --metadata-file "$O/meta.json" "$CTX"
LOG="$OUT
$ERR"
for f in oci img.tar root.tar root iid meta.json; do assert_file_exists "$O/$f" "output"; done
assert_contains "$LOG" "exported docker:$O/img.tar" "build log"
left=$(find "$O" -maxdepth 1 -name '.*' -printf '%f\n')
assert_eq "" "$left" "temporary entries left next to the outputs"
pass "one build wrote type=oci, docker, tar, local, the iidfile and the metadata"

umoci unpack --image "$O/oci:1" "$T/unpacked" >/dev/null 2>&1 ||
	fail "umoci unpack of the OCI output failed: $(umoci unpack --image "$O/oci:1" "$T/unpacked2" 2>&1)"
EXPECT=$(listing "$T/unpacked/rootfs")
assert_contains "$EXPECT" "data/link symlink 0777 -> hello.txt" "umoci's unpacking"
assert_not_contains "$EXPECT" "data/gone.txt" "umoci's unpacking"
same_listing "type=local" "$EXPECT" "$(listing "$O/root")"
assert_eq "$(stat -c %i "$O/root/data/hello.txt")" "$(stat -c %i "$O/root/data/hard")" "inode of data/hard (a hardlink of data/hello.txt) in type=local"
assert_file_absent "$O/root/data/gone.txt" "whited-out file in type=local"
pass "type=local holds the image's root file system entry by entry (whiteout applied, hardlink kept)"

same_listing "type=tar" "$EXPECT" "$(listing "$O/root.tar")"
owners=$(tar -tvf "$O/root.tar" | awk '$6 == "home/app/" || $6 == "home/app" { print $2 }')
assert_eq "1000/1000" "$owners" "owner of home/app in type=tar"
pass "type=tar lists the same entries (and keeps the image's owners)"

CONFIG=$(jq -r '."containerimage.config.digest"' "$O/meta.json")
assert_match "$CONFIG" '^sha256:[0-9a-f]{64}$' "containerimage.config.digest of the metadata"
assert_eq "$CONFIG" "$(cat "$O/iid")" "--iidfile content (buildx: the config digest of a one-platform image)"
MANIFEST=$(layout_tag_digest "$O/oci" 1)
OCI_CONFIG=$(jq -r .config.digest "$O/oci/blobs/sha256/${MANIFEST#sha256:}")
assert_eq "$OCI_CONFIG" "$CONFIG" "config digest of the OCI output's manifest"
pass "--iidfile holds the config digest (= metadata, = the OCI manifest's config)"

# the docker archive itself: manifest.json with Config, RepoTags, Layers
mkdir -p "$T/dockertar"
tar -xf "$O/img.tar" -C "$T/dockertar"
assert_eq "blobs/sha256/${CONFIG#sha256:}" "$(jq -r '.[0].Config' "$T/dockertar/manifest.json")" "manifest.json Config"
assert_eq '["localhost/outputs:1","localhost/outputs:extra"]' "$(jq -c '.[0].RepoTags' "$T/dockertar/manifest.json")" "manifest.json RepoTags"
want_layers=$(jq -c '[.layers[].digest | sub("sha256:"; "blobs/sha256/")]' "$O/oci/blobs/sha256/${MANIFEST#sha256:}")
assert_eq "$want_layers" "$(jq -c '.[0].Layers' "$T/dockertar/manifest.json")" "manifest.json Layers"
pass "the docker archive's manifest.json names the config, the tags and the layers in order"

# ---------------------------------------------------------------- docker load, --load

dockerd_start
run_ok dk load -i "$O/img.tar"
assert_contains "$OUT" "localhost/outputs:1" "docker load output"
run_ok dk run --rm --network none localhost/outputs:1
assert_eq "plait outputs ok" "$OUT" "docker run of the loaded type=docker archive"
assert_eq "$CONFIG" "$(dk image inspect --format '{{.Id}}' localhost/outputs:extra)" "docker's image ID of the loaded image"
pass "docker load -i accepts the type=docker archive; the image runs; its ID is the --iidfile's"

run_ok env DOCKER_HOST="unix://$T/dockerd/docker.sock" "$PLAIT" build --progress plain --cache-dir "$T/cache" \
	--build-arg "BASE=$BASE" --platform "$HOSTP" -t localhost/outputs-load:2 --load "$CTX"
assert_contains "$OUT
$ERR" "loaded into the docker daemon: localhost/outputs-load:2" "build --load log"
run_ok dk run --rm --network none localhost/outputs-load:2
assert_eq "plait outputs ok" "$OUT" "docker run of the image --load loaded"
pass "--load through DOCKER_HOST loads the image into the daemon; it runs"

dockerd_stop

# ---------------------------------------------------------------- podman load, --load into podman
# podman's own store (vfs) under $T; its containers cannot start in every CI
# sandbox (rlimits), so the image's Cmd runs in a chroot of `podman image mount`.
pm() { podman --root "$T/podman/root" --runroot "$T/podman/run" --storage-driver vfs "$@"; }
# pm_run REF : the image's Cmd, run in its mounted root file system.
pm_run() {
	local mnt cmd=()
	mapfile -t cmd < <(pm image inspect --format '{{json .Config.Cmd}}' "$1" | jq -r '.[]')
	mnt=$(pm image mount "$1")
	lib_run chroot "$mnt" "${cmd[@]}"
	pm image unmount "$1" >/dev/null
}
if command -v podman >/dev/null; then
	mkdir -p "$T/podman"
	run_ok pm load -i "$O/img.tar"
	assert_contains "$OUT" "localhost/outputs:1" "podman load output"
	assert_eq "${CONFIG#sha256:}" "$(pm image inspect --format '{{.Id}}' localhost/outputs:extra)" "podman's image ID of the loaded archive"
	pm_run localhost/outputs:1
	assert_eq "plait outputs ok" "$OUT" "the Cmd of the image podman loaded"
	bg_start podman-service podman --root "$T/podman/root" --runroot "$T/podman/run" --storage-driver vfs \
		system service --time=0 "unix://$T/podman/podman.sock"
	for _ in $(seq 50); do [ -S "$T/podman/podman.sock" ] && break; sleep 0.2; done
	run_ok env DOCKER_HOST="unix://$T/podman/podman.sock" "$PLAIT" build --progress plain --cache-dir "$T/cache" \
		--build-arg "BASE=$BASE" --platform "$HOSTP" -t localhost/outputs-podman:3 --load "$CTX"
	kill "$BG_PID"
	pm_run localhost/outputs-podman:3
	assert_eq "plait outputs ok" "$OUT" "the Cmd of the image --load put into podman"
	pass "podman load -i takes the type=docker archive; --load through podman's Docker API socket loads into podman"
else
	echo "# podman is not installed: podman load and --load into podman not checked"
fi

# ---------------------------------------------------------------- several platforms

# FROM scratch with COPY: nothing runs, so a foreign platform needs no QEMU
SCR=$T/scratch
mkdir -p "$SCR"
printf 'FROM scratch\nCOPY f.txt /f.txt\n' >"$SCR/Dockerfile"
echo f >"$SCR/f.txt"
OTHER=linux/arm64
[ "$HOSTP" = linux/arm64 ] && OTHER=linux/amd64
run_ok "$PLAIT" build --progress plain --cache-dir "$T/cache" --platform "$HOSTP,$OTHER" \
	--output "type=local,dest=$O/multi" --output "type=tar,dest=$O/multi.tar" --iidfile "$O/multi.iid" \
	--metadata-file "$O/multi.json" "$SCR"
for p in "$HOSTP" "$OTHER"; do
	d=${p//\//_}
	assert_eq "f" "$(cat "$O/multi/$d/f.txt")" "$d/f.txt in type=local of two platforms"
	assert_contains "$(tar -tf "$O/multi.tar")" "$d/f.txt" "type=tar of two platforms"
done
assert_eq "$(jq -r '."containerimage.digest"' "$O/multi.json")" "$(cat "$O/multi.iid")" "--iidfile of an index (its digest)"
pass "two platforms: type=local and type=tar get linux_<arch>/ subdirectories; --iidfile is the index digest"

# ---------------------------------------------------------------- refused

refused() {
	local want=$1
	shift
	run_expect_fail "$PLAIT" build --progress plain --cache-dir "$T/cache" "$@" "$SCR"
	expect_rc 2
	assert_contains "$ERR" "$want" "error of plait build $*"
}
refused "--output type=docker,dest=$O/x.tar: a docker archive holds one platform per image" \
	--platform "$HOSTP,$OTHER" --output "type=docker,dest=$O/x.tar"
assert_contains "$ERR" "pass --platform with one" "type=docker with two platforms"
refused "--load: the docker daemon holds one platform per image" --platform "$HOSTP,$OTHER" --load
assert_contains "$ERR" "pass --platform with one" "--load with two platforms"
refused "--output type=local,dest=$O/multi: '$O/multi' is not empty" --output "type=local,dest=$O/multi"
# two bake targets writing one tar (a shared output) are refused at plan time
cat >"$T/bake-same.json" <<EOF
{"target": {"a": {"context": "$SCR", "args": {"BASE": "$BASE"}, "output": ["type=tar,dest=$O/same.tar"]},
            "b": {"context": "$SCR", "args": {"BASE": "$BASE"}, "output": ["type=tar,dest=$O/same.tar"]}},
 "group": {"default": {"targets": ["a", "b"]}}}
EOF
run_expect_fail "$PLAIT" bake -f "$T/bake-same.json" --cache-dir "$T/cache"
expect_rc 2
assert_contains "$ERR" "--output type=tar,dest=$O/same.tar (target a) and --output type=tar,dest=$O/same.tar (target b) write the same path" \
	"two bake targets writing one tar"
assert_file_absent "$O/same.tar" "the tar two targets would write"
refused "--output type=docker,dest=$O/x.tar: docker load (Docker 20.10) cannot read zstd layers" \
	--compression zstd --output "type=docker,dest=$O/x.tar"
refused "--output type=local,dest=$O/v: one root file system per output" \
	--variant a --variant b -t "localhost/v:{variant}" --output "type=local,dest=$O/v"
refused "--iidfile $O/v.iid: one image ID per file" --variant a --variant b -t "localhost/v:{variant}" \
	--iidfile "$O/v.iid"
refused "--output 'type=registry,dest=x': unknown type 'registry'" --output type=registry,dest=x
refused "--output 'type=docker': type=docker needs dest=FILE" --output type=docker
assert_file_absent "$O/x.tar" "type=docker of a refused build"
assert_file_absent "$O/v" "type=local of a refused build"
pass "refused combinations exit 2 and name the option and value"

run_expect_fail env DOCKER_HOST="unix://$T/no-such.sock" "$PLAIT" build --progress plain --cache-dir "$T/cache" \
	--platform "$HOSTP" --load "$SCR"
assert_contains "$ERR" "--load: no docker daemon answers on '$T/no-such.sock'" "--load without a daemon"
assert_contains "$ERR" "DOCKER_HOST=unix://PATH" "--load without a daemon"
run_expect_fail env DOCKER_HOST="tcp://127.0.0.1:2375" "$PLAIT" build --progress plain --cache-dir "$T/cache" \
	--platform "$HOSTP" --load "$SCR"
assert_contains "$ERR" "--load: DOCKER_HOST 'tcp://127.0.0.1:2375'" "--load with a tcp DOCKER_HOST"
pass "--load without a daemon (or a DOCKER_HOST that is not unix://) names the socket and what to do"

# ---------------------------------------------------------------- a failed build writes nothing

FAILCTX=$T/failctx
mkdir -p "$FAILCTX"
printf 'ARG BASE\nFROM $BASE\nRUN echo x >/x && false\n' >"$FAILCTX/Dockerfile"
run_expect_fail "$PLAIT" build --progress plain --cache-dir "$T/cache" --build-arg "BASE=$BASE" \
	--platform "$HOSTP" -t localhost/failed:1 --output "type=docker,dest=$O/failed.tar" \
	--output "type=tar,dest=$O/failed-root.tar" --output "type=local,dest=$O/failed-root" \
	--iidfile "$O/failed.iid" "$FAILCTX"
for f in failed.tar failed-root.tar failed-root failed.iid; do assert_file_absent "$O/$f" "output of a failed build"; done
left=$(find "$O" -maxdepth 1 -name '.*' -printf '%f\n')
assert_eq "" "$left" "temporary entries left next to the outputs after a failed build"
pass "a failed build writes no docker archive, tar, directory or iidfile"
