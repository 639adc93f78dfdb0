#!/usr/bin/env bash
# test_remote_builders.sh - `plait builder create|ls|inspect|use|rm` and
# `plait plan --builder` against a real sshd (Debian's openssh-server) on a
# free loopback port, with a host key, an authorized key, a known_hosts and
# an ssh client config that this test makes (the user's ~/.ssh is never
# read: PLAIT_SSH_COMMAND='ssh -F $T/ssh_config').
#
# Two nodes on that sshd, told apart by the ssh config (SetEnv PLAIT_NODE):
# the --remote-plait wrapper runs the real plait with a cache dir of its own
# and, on node B, a binfmt_misc copy (PLAIT_BINFMT_DIR) holding an arm64 QEMU
# handler with the F and P flags; node A has none. This host is planned with
# no QEMU handler (an empty PLAIT_BINFMT_DIR), then with one.
#
# Checks: create probes both nodes (native platforms, QEMU platforms, plait
# version and protocol, cache dir and free space) and stores builders.json
# with mode 0600; ls and inspect show them; plan --builder sends linux/amd64
# to node A (native) and linux/arm64 to node B (its QEMU) for both variants,
# and linux/arm64 to this host's QEMU once it has one; 'use' makes the
# builder the default and 'use local' undoes it; build --builder runs a
# linux/amd64 job on node A (the image equals the local build's, the node's
# cache has it, an ignored file never reaches it) and a failing job names
# the node and moves no tag; --fallback
# local leaves an unreachable node out and the plan says so; an
# unreachable node, a wrong key and an unknown host key are clear errors
# naming the node with ssh's message, in create and as planning problems; a
# node speaking another protocol is refused with the fix; a corrupt
# builders.json names the file; rm forgets a builder.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd jq ssh ssh-keygen
require_plait

export XDG_CONFIG_HOME=$T/config
unset SSH_AUTH_SOCK
S=$T/ssh

# ---------------------------------------------------------------- sshd
sshd_start "$S" "AcceptEnv PLAIT_NODE"
PORT=$SSHD_PORT
ssh-keygen -q -t ed25519 -N '' -f "$S/wrong" -C plait-test-wrong

printf '[127.0.0.1]:%s %s\n' "$PORT" "$(cut -d' ' -f1,2 "$S/host_key.pub")" >"$S/known_hosts"
: >"$S/known_hosts_empty"
DEAD=$(free_port)
cat >"$S/ssh_config" <<EOF
Host node-a
  HostName 127.0.0.1
  Port $PORT
  User root
  SetEnv PLAIT_NODE=a
Host node-b
  HostName 127.0.0.1
  SetEnv PLAIT_NODE=b
Host node-old
  HostName 127.0.0.1
  Port $PORT
  User root
  SetEnv PLAIT_NODE=old
Host node-noserve
  HostName 127.0.0.1
  Port $PORT
  User root
  SetEnv PLAIT_NODE=noserve
Host node-stranger
  HostName 127.0.0.1
  Port $PORT
  User root
  UserKnownHostsFile $S/known_hosts_empty
Host node-dead
  HostName 127.0.0.1
  Port $DEAD
  User root
Host *
  UserKnownHostsFile $S/known_hosts
  StrictHostKeyChecking yes
  GlobalKnownHostsFile /dev/null
  LogLevel ERROR
EOF
export PLAIT_SSH_COMMAND="ssh -F $S/ssh_config"

# ---------------------------------------------------------------- nodes
N=$T/nodes
mkdir -p "$N/a/cache" "$N/b/cache" "$N/b/binfmt" "$N/a/binfmt-none" "$T/local-none" "$T/local-qemu"
write_arm64_handler() {
	printf 'enabled\n' >"$1/status"
	: >"$1/register"
	cat >"$1/qemu-aarch64" <<'EOF'
enabled
interpreter /usr/bin/qemu-aarch64-static
flags: PF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
EOF
}
write_arm64_handler "$N/b/binfmt"
write_arm64_handler "$T/local-qemu"
cat >"$N/plait-node" <<EOF
#!/bin/sh
# The plait of each test node: the real one, with the node's own cache and
# binfmt_misc directory (ssh's SetEnv PLAIT_NODE says which node this is).
case "\$PLAIT_NODE" in
a) export XDG_CACHE_HOME=$N/a/cache PLAIT_BINFMT_DIR=$N/a/binfmt-none DOCKER_CONFIG=$N/a/docker ;;
b) export XDG_CACHE_HOME=$N/b/cache PLAIT_BINFMT_DIR=$N/b/binfmt DOCKER_CONFIG=$N/b/docker ;;
old)
	# a node with another plait: a protocol this one does not speak
	if [ "\$1" = version ]; then echo '{"version": "0.0.1", "protocol": 0}'; exit 0; fi ;;
noserve)
	# a plait whose serve prints text, not frames
	if [ "\$1" = serve ]; then echo "plait 0.1.0"; exit 0; fi ;;
*) echo "plait-node: unknown PLAIT_NODE '\$PLAIT_NODE'" >&2; exit 3 ;;
esac
exec "$PLAIT" "\$@"
EOF
chmod 755 "$N/plait-node"
# The local side of the plans: no QEMU handler at first.
export PLAIT_BINFMT_DIR=$T/local-none

run_ok ssh -F "$S/ssh_config" -i "$S/id" -o BatchMode=yes node-a "$N/plait-node" version --format json
assert_eq "$("$PLAIT" version --format json | jq -r .version)" "$(jq -r .version <<<"$OUT")" "version seen over ssh"
pass "sshd on 127.0.0.1:$PORT logs in with the test's key"

# ---------------------------------------------------------------- help
for sub in "" create ls inspect rm use; do
	run_ok "$PLAIT" builder $sub --help
	assert_contains "$OUT" "usage: plait builder create NAME --node ssh://"
	assert_eq "" "$ERR" "stderr of 'plait builder $sub --help'"
done
run_ok "$PLAIT" build --help
assert_contains "$OUT" "--builder NAME|local"
assert_contains "$OUT" "--fallback local"
run_expect_fail "$PLAIT" builder frob
expect_rc 2
assert_contains "$ERR" "use create, ls, inspect, rm or use"
pass "plait builder --help, build --help name the builder options"

# ---------------------------------------------------------------- version --format json
run_ok "$PLAIT" version --format json
assert_eq 1 "$(jq -r .protocol <<<"$OUT")" "protocol of plait version --format json"
assert_match "$(jq -r .cache.free_bytes <<<"$OUT")" '^[0-9]+$' "cache.free_bytes"
run_expect_fail "$PLAIT" version --format yaml
expect_rc 2
pass "plait version --format json gives version, protocol, cache dir and free space"

# ---------------------------------------------------------------- plait serve
# Frames in, frames out (core/frame.h): a hello is answered with a hello, a
# malformed job with an error naming what is wrong, bye ends the session.
frames() {
	"$PY" -c 'import json, struct, sys
out = b""
for m in sys.argv[1:]:
    p = m.encode()
    out += b"PLT1" + bytes([1, 0, 0, 0]) + struct.pack(">I", len(p)) + p
sys.stdout.buffer.write(out)' "$@"
}
unframe() {
	"$PY" -c 'import struct, sys
d = sys.stdin.buffer.read()
while d:
    assert d[:4] == b"PLT1", d[:16]
    n = struct.unpack(">I", d[8:12])[0]
    print(d[12:12 + n].decode())
    d = d[12 + n:]'
}
frames '{"type":"hello","protocol":1,"version":"x"}' '{"type":"job","id":7}' '{"type":"bye"}' >"$T/frames.in"
"$PLAIT" serve --protocol 1 <"$T/frames.in" >"$T/frames.out" 2>"$T/serve.err" || fail "plait serve failed: $(cat "$T/serve.err")"
replies=$(unframe <"$T/frames.out")
assert_eq "hello 1" "$(jq -rs '.[0] | "\(.type) \(.protocol)"' <<<"$replies")" "serve's first reply"
assert_eq "error 7" "$(jq -rs '.[1] | "\(.type) \(.id)"' <<<"$replies")" "serve's reply to a job"
assert_contains "$(jq -rs '.[1].message' <<<"$replies")" "job: 'platform' is not a string"
run_expect_fail "$PLAIT" serve --protocol 2
expect_rc 1
assert_contains "$ERR" "speaks protocol 1, not 2"
printf 'hello\n' >"$T/notframes"
lib_run "$PLAIT" serve --protocol 1 <"$T/notframes"
assert_eq 1 "$RC" "exit code of serve on a stream that is not frames"
assert_contains "$ERR" "frame 1: the stream ends inside its header"
pass "plait serve answers the hello in frames and refuses a malformed job, naming the field"

# ---------------------------------------------------------------- create, ls, inspect
run_ok "$PLAIT" builder create farm --node ssh://node-a --node "ssh://root@node-b:$PORT" \
	--identity "$S/id" --remote-plait "$N/plait-node"
assert_contains "$OUT" "builder farm: 2 nodes"
BJ=$XDG_CONFIG_HOME/plait/builders.json
assert_file_mode "$BJ" 600
assert_eq "ssh://node-a" "$(jq -r '.builders[0].nodes[0].url' "$BJ")" "node A's url"
assert_eq "linux/amd64,linux/386" "$(jq -r '.builders[0].nodes[0].native | join(",")' "$BJ")" "node A's native platforms"
assert_eq "" "$(jq -r '.builders[0].nodes[0].qemu | join(",")' "$BJ")" "node A's QEMU platforms"
assert_eq "linux/arm64" "$(jq -r '.builders[0].nodes[1].qemu | join(",")' "$BJ")" "node B's QEMU platforms"
assert_eq "$N/a/cache/plait" "$(jq -r '.builders[0].nodes[0].cache_dir' "$BJ")" "node A's cache dir"
assert_eq "$N/b/cache/plait" "$(jq -r '.builders[0].nodes[1].cache_dir' "$BJ")" "node B's cache dir"
assert_match "$(jq -r '.builders[0].nodes[1].cache_free_bytes' "$BJ")" '^[1-9][0-9]*$' "node B's free bytes"
assert_eq 1 "$(jq -r '.builders[0].nodes[0].protocol' "$BJ")" "node A's protocol"
assert_eq "$("$PLAIT" version --format json | jq -r .version)" "$(jq -r '.builders[0].nodes[1].plait_version' "$BJ")" \
	"node B's plait version"
assert_eq "$S/id" "$(jq -r '.builders[0].identity' "$BJ")" "identity"
pass "create probes both nodes over ssh and stores what they run (mode 0600)"

run_ok "$PLAIT" builder ls
assert_match "$OUT" $'\n\\* +local +this host' "ls: local in use"
assert_match "$OUT" $'\n +farm +ssh://node-a +linux/amd64,linux/386; -' "ls: node A"
assert_contains "$OUT" "ssh://root@node-b:$PORT"
pass "ls lists the builder and its nodes"

run_ok "$PLAIT" builder inspect farm
assert_contains "$OUT" "native:   linux/amd64,linux/386"
assert_contains "$OUT" "qemu:     linux/arm64"
assert_contains "$OUT" "cache:    $N/b/cache/plait"
run_ok "$PLAIT" builder inspect farm --format json
assert_eq "linux/arm64" "$(jq -r '.nodes[1].qemu | join(",")' <<<"$OUT")" "inspect json: node B's QEMU"
assert_eq "null" "$(jq -r '.nodes[0].error' <<<"$OUT")" "inspect json: node A's error"
run_expect_fail "$PLAIT" builder inspect nosuch
expect_rc 1
assert_contains "$ERR" "no builder named 'nosuch' in $BJ"
pass "inspect connects again and shows each node"

# ---------------------------------------------------------------- plan
C=$T/ctx
mkdir -p "$C"
printf 'FROM scratch\nCOPY f /f\nRUN ["/f"]\n' >"$C/Dockerfile"
echo x >"$C/f"
PLAN=(plan --platform linux/amd64,linux/arm64 --variant a --variant b -t reg.example/app:1-{variant})
run_ok "$PLAIT" "${PLAN[@]}" --builder farm --format json "$C"
assert_eq 4 "$(jq '.jobs | length' <<<"$OUT")" "jobs planned"
assert_eq "ssh://node-a ssh://node-a" "$(jq -r '[.jobs[] | select(.platform == "linux/amd64") | .node] | join(" ")' <<<"$OUT")" \
	"node of the linux/amd64 jobs"
assert_eq "ssh://root@node-b:$PORT ssh://root@node-b:$PORT" \
	"$(jq -r '[.jobs[] | select(.platform == "linux/arm64") | .node] | join(" ")' <<<"$OUT")" "node of the linux/arm64 jobs"
assert_eq "node node-qemu" "$(jq -r '[.jobs[] | .builder] | unique | join(" ")' <<<"$OUT")" "builders"
assert_contains "$(jq -r '.jobs[] | select(.platform == "linux/arm64") | .reason' <<<"$OUT")" "the node's QEMU does"
assert_contains "$(jq -r '.jobs[] | select(.platform == "linux/amd64") | .reason' <<<"$OUT")" "node runs amd64 natively"
run_ok "$PLAIT" "${PLAN[@]}" --builder farm "$C"
assert_contains "$OUT" "on ssh://node-a: node runs amd64 natively"
assert_contains "$OUT" "on ssh://root@node-b:$PORT: no node runs it natively, nor does this host; the node's QEMU does"
pass "plan --builder: amd64 to node A (native), arm64 to node B (its QEMU), both variants"

PLAIT_BINFMT_DIR=$T/local-qemu run_ok "$PLAIT" "${PLAN[@]}" --builder farm --format json "$C"
assert_eq "qemu" "$(jq -r '[.jobs[] | select(.platform == "linux/arm64") | .builder] | unique | join(" ")' <<<"$OUT")" \
	"builder of arm64 with local QEMU"
assert_eq "" "$(jq -r '[.jobs[] | select(.platform == "linux/arm64") | .node // empty] | join(" ")' <<<"$OUT")" \
	"node of arm64 with local QEMU"
assert_contains "$(jq -r '.jobs[] | select(.platform == "linux/arm64") | .reason' <<<"$OUT")" "this host's QEMU does"
pass "plan --builder: this host's QEMU comes before a node's QEMU"

run_expect_fail "$PLAIT" "${PLAN[@]}" "$C"
expect_rc 2
assert_contains "$ERR" "no builder for linux/arm64"
pass "without a builder, the same plan has no arm64 builder here"

# use / use local
run_ok "$PLAIT" builder use farm
assert_eq farm "$(jq -r .current "$BJ")" "current builder"
run_ok "$PLAIT" "${PLAN[@]}" --format json "$C"
assert_eq "ssh://node-a" "$(jq -r '.jobs[] | select(.platform == "linux/amd64") | .node' <<<"$OUT" | sort -u)" \
	"node of amd64 with 'use farm'"
run_ok "$PLAIT" builder ls
assert_match "$OUT" $'\n\\* +farm ' "ls marks farm in use"
PLAIT_BINFMT_DIR=$T/local-qemu run_ok "$PLAIT" "${PLAN[@]}" --builder local --format json "$C"
assert_eq "" "$(jq -r '[.jobs[] | .node // empty] | join(" ")' <<<"$OUT")" "nodes with --builder local"
assert_eq "native qemu" "$(jq -r '[.jobs[] | .builder] | unique | join(" ")' <<<"$OUT")" "builders with --builder local"
pass "use makes the builder the default; --builder local overrides it"

# ---------------------------------------------------------------- jobs on nodes
# A real build on node A (linux/amd64, native there): the context goes over
# the channel, the node builds with its own cache and resolves the base from
# the loopback registry itself, the image comes back into the local store and
# is pushed from here; with --source-date-epoch it is the local build's image
# digest for digest.
registry_start R plain
bash "$LIB_DIR/mkbase.sh" "$T/base" busybox >/dev/null
skopeo_reg copy -q --all "oci:$T/base:busybox" "docker://$R_HOST/base/busybox:1"
J=$T/jobctx
mkdir -p "$J/src/sub"
cat >"$J/Dockerfile" <<'DF'
ARG BASE
FROM $BASE AS base
COPY src/ /app/
RUN cat /app/a.txt /app/sub/b.txt > /app/both.txt && echo "$GREETING" > /app/greeting
ARG GREETING
RUN echo "$GREETING" > /app/greeting2
DF
printf 'secret.txt\n' >"$J/.dockerignore"
echo alpha >"$J/src/a.txt"
echo beta >"$J/src/sub/b.txt"
echo "not for the node" >"$J/secret.txt"
BUILD=(build --platform linux/amd64 --source-date-epoch 1700000000 --build-arg "BASE=$R_HOST/base/busybox:1"
	--build-arg GREETING=hello --progress plain --push)
run_ok "$PLAIT" "${BUILD[@]}" --builder farm --cache-dir "$T/local-cache" --provenance=mode=max -t "$R_HOST/app:node" "$J"
assert_contains "$OUT$ERR" "on ssh://node-a"
node_digest=$(raw_digest "docker://$R_HOST/app:node")
# its provenance (pushed from here) has what the node's build read and ran
fb=$(curl -s -H 'Accept: application/vnd.oci.image.index.v1+json' \
	"http://$R_HOST/v2/app/manifests/sha256-${node_digest#sha256:}" | jq -c 'select(.manifests)')
[ -n "$fb" ] || fail "no provenance referrer for the node's image"
pm=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
	"http://$R_HOST/v2/app/manifests/$(jq -r '.manifests[0].digest' <<<"$fb")")
curl -sf "http://$R_HOST/v2/app/blobs/$(jq -r '.layers[0].digest' <<<"$pm")" >"$T/node-prov.json"
assert_eq "$(raw_digest "docker://$R_HOST/base/busybox:1")" \
	"$(jq -r --arg b "$R_HOST/base/busybox:1" '.predicate.buildDefinition.resolvedDependencies[] | select(.name == $b) | .digest.sha256' "$T/node-prov.json")" \
	"the base image in the node build's provenance"
assert_contains "$(jq -c '.predicate.buildDefinition.internalParameters' "$T/node-prov.json")" "RUN echo"
run_ok "$PLAIT" "${BUILD[@]}" --builder local --cache-dir "$T/local-cache2" -t "$R_HOST/app:local" "$J"
assert_not_contains "$OUT$ERR" "on ssh://node-a"
assert_eq "$(raw_digest "docker://$R_HOST/app:local")" "$node_digest" "the node's image and the local one"
# the node built it: its cache has the image, and what the context sent
hex=${node_digest#sha256:}
assert_file_exists "$N/a/cache/plait/store/blobs/sha256/$hex"
assert_file_absent "$N/b/cache/plait/store/blobs/sha256/$hex"
[ -z "$(grep -rl "not for the node" "$N/a/cache/plait/store/blobs" 2>/dev/null)" ] ||
	fail "the .dockerignore'd file reached node A's store"
skopeo_reg copy -q "docker://$R_HOST/app:node" "oci:$T/fromnode:x"
pass "build --builder runs the linux/amd64 job on node A; its image equals the local build's"

# a job that fails on the node: named, with the node's message, nothing pushed
printf 'FROM %s\nRUN exit 3\n' "$R_HOST/base/busybox:1" >"$T/badctx.Dockerfile"
run_expect_fail "$PLAIT" build --platform linux/amd64 --builder farm --cache-dir "$T/local-cache" \
	-f "$T/badctx.Dockerfile" -t "$R_HOST/app:bad" --push "$J"
assert_contains "$ERR" "node ssh://node-a:"
assert_contains "$ERR" "failed with exit code 3"
run_expect_fail skopeo_reg inspect --raw "docker://$R_HOST/app:bad"
pass "a build failing on the node names the node and its error; nothing is tagged"

# --secret travels over the channel and stays in memory on the node: the RUN
# reads it (as a file and as an environment variable), and its value is in no
# file under the nodes' directories, in no temporary file and not in the
# progress
SECRET_VALUE="s3cr3t-$$-$RANDOM"
printf '%s' "$SECRET_VALUE" >"$T/token.txt"
sum=$(sha256sum "$T/token.txt" | cut -d' ' -f1)
cat >"$T/secret.Dockerfile" <<DF
FROM $R_HOST/base/busybox:1
RUN --mount=type=secret,id=tok test "\$(/bin/sha256sum /run/secrets/tok | /bin/cut -c1-64)" = "$sum" && echo file-ok > /ok
RUN --mount=type=secret,id=tok,env=TOK test "\$(printf %s "\$TOK" | /bin/sha256sum | /bin/cut -c1-64)" = "$sum" && echo env-ok > /ok2
DF
run_ok "$PLAIT" build --platform linux/amd64 --builder farm --cache-dir "$T/local-cache" --progress plain \
	--secret "id=tok,src=$T/token.txt" -f "$T/secret.Dockerfile" -t "$R_HOST/app:secret" --push "$J"
assert_contains "$OUT$ERR" "on ssh://node-a"
assert_not_contains "$OUT$ERR" "$SECRET_VALUE"
leaks=$(grep -rlF "$SECRET_VALUE" "$N" /tmp/plait-node-job-* 2>/dev/null || true)
[ -z "$leaks" ] || fail "the secret's value is in files on the node: $leaks"
pass "--secret reaches the node's RUN (file and env) and is written to no file there, nor shown"

# the second build of a barely changed context sends only what changed
echo alpha2 >"$J/src/a.txt"
run_ok "$PLAIT" "${BUILD[@]}" --builder farm --cache-dir "$T/local-cache" --metadata-file "$T/meta1.json" \
	-t "$R_HOST/app:node2" "$J"
assert_contains "$OUT$ERR" "linux/amd64 built on ssh://node-a: sent 1 file (7 bytes) the node lacked"
assert_eq "ssh://node-a" "$(jq -r '.platforms[0].node' "$T/meta1.json")" "the metadata file's node"
echo alpha >"$J/src/a.txt"
pass "a second build sends only the changed file (7 bytes); --metadata-file names the node"

# --cache-to with every job on a node: said, and no cache written (an empty
# part would replace what another run exported)
run_ok "$PLAIT" "${BUILD[@]}" --builder farm --cache-dir "$T/local-cache" --cache-to "type=registry,ref=$R_HOST/cache:node" \
	-t "$R_HOST/app:node3" "$J"
assert_contains "$ERR" "--cache-to: the steps of jobs built on nodes stay in those nodes' caches and are not exported: default/-/linux/amd64 on ssh://node-a"
run_expect_fail skopeo_reg inspect --raw "docker://$R_HOST/cache:node"
pass "--cache-to of a job built on a node: a warning names it, no empty cache part is written"

# --push from the node: to a registry that wants a login (bearer tokens), the
# node pushes the image by digest itself with the credentials this side
# logged in with (handed over for the job: the node's docker config stays
# empty), only the manifest and config come back, the tag moves from here;
# an OCI output of the same build fetches the layers from the registry
registry_start RT token
run_ok "$PLAIT" login -u alice --password-stdin "$RT_HOST" <<<"$RT_PASS"
run_ok "$PLAIT" "${BUILD[@]}" --builder farm --cache-dir "$T/lc-push" --metadata-file "$T/meta-push.json" \
	-t "$RT_HOST/team/app:node" -t "$RT_HOST/team/other:node" "$J"
assert_contains "$OUT$ERR" "linux/amd64 built on ssh://node-a: sent"
assert_match "$OUT$ERR" "pushed [1-9][0-9]* bytes from the node to $RT_HOST/team/app and the other repositories, fetched [0-9]+ bytes" \
	"the note of the node's push"
pushed_digest=$(jq -r '.platforms[0].digest' "$T/meta-push.json" | sed 's/^sha256://')
assert_eq "$node_digest" "$pushed_digest" "the image pushed from the node and the one built before"
for repo in app other; do
	assert_eq "$node_digest" "$(raw_digest --creds "alice:$RT_PASS" "docker://$RT_HOST/team/$repo:node")" \
		"team/$repo:node (tagged from here)"
done
skopeo_reg copy -q --src-creds "alice:$RT_PASS" "docker://$RT_HOST/team/app:node" "oci:$T/push-check:x"
layers=$(jq -r '.layers[].digest' "$T/push-check/blobs/sha256/${node_digest#sha256:}")
[ -n "$layers" ] || fail "the pushed image has no layers"
for l in $layers; do
	assert_file_absent "$T/lc-push/store/blobs/sha256/${l#sha256:}"
done
assert_file_exists "$T/lc-push/store/blobs/sha256/${node_digest#sha256:}"
# again with an OCI output: the node's cache has it, the push finds it in
# place, and the output's layers come from the registry
run_ok "$PLAIT" "${BUILD[@]}" --builder farm --cache-dir "$T/lc-push" --output "type=oci,dest=$T/push-out" \
	-t "$RT_HOST/team/app:node" "$J"
assert_match "$OUT$ERR" "pushed 0 bytes from the node to $RT_HOST/team/app, fetched [0-9]+ bytes" "the note of the second push"
for l in $layers; do
	assert_file_exists "$T/push-out/blobs/sha256/${l#sha256:}"
done
assert_eq "$node_digest" "$(jq -r '.manifests[0].digest' "$T/push-out/index.json" | sed 's/^sha256://')" \
	"the OCI output's image"
[ -z "$(ls -A "$N/a/docker" 2>/dev/null)" ] || fail "node A's docker config is not empty: $(ls -A "$N/a/docker")"
leaks=$(grep -rlF "$RT_PASS" "$N" /tmp/plait-node-job-* "$S" 2>/dev/null || true)
[ -z "$leaks" ] || fail "the registry password is in files on the node: $leaks"
assert_not_contains "$OUT$ERR" "$RT_PASS"
pass "--push from node A: the node pushes the layers with the handed-over login, the tags move from here, the output fetches them"

# a wrong password here: the node's push is refused, named with the node and
# the registry; nothing is tagged
mkdir -p "$T/docker-wrong"
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$RT_HOST" "$(printf 'alice:wrong-%s' "$RT_PASS" | base64 -w0)" \
	>"$T/docker-wrong/config.json"
DOCKER_CONFIG=$T/docker-wrong run_expect_fail "$PLAIT" "${BUILD[@]}" --builder farm --cache-dir "$T/lc-push" \
	-t "$RT_HOST/team/app:wrong" "$J"
assert_contains "$ERR" "node ssh://node-a: push $RT_HOST/team/app from this node"
assert_contains "$ERR" "plait login"
run_expect_fail skopeo_reg inspect --raw --creds "alice:$RT_PASS" "docker://$RT_HOST/team/app:wrong"
assert_not_contains "$OUT$ERR" "wrong-$RT_PASS"
pass "--push from the node with a wrong login: refused naming the node and the registry; no tag"

# plait bake with the builder: each target's job runs on node A, and the
# metadata file names the node of each
cat >"$T/bake.json" <<EOF
{"group": {"default": {"targets": ["one", "two"]}},
 "target": {
  "one": {"context": "$J", "platforms": ["linux/amd64"], "tags": ["$R_HOST/bake/one:1"],
          "args": {"BASE": "$R_HOST/base/busybox:1", "GREETING": "one"}},
  "two": {"context": "$J", "platforms": ["linux/amd64"], "tags": ["$R_HOST/bake/two:1"],
          "args": {"BASE": "$R_HOST/base/busybox:1", "GREETING": "two"}}}}
EOF
run_ok "$PLAIT" bake -f "$T/bake.json" --builder farm --push --cache-dir "$T/lc-bake" --progress plain \
	--metadata-file "$T/meta-bake.json"
for t in one two; do
	assert_contains "$OUT$ERR" "linux/amd64 built on ssh://node-a"
	assert_eq "ssh://node-a" "$(jq -r --arg t "$t" '.images[] | select(.target == $t) | .platforms[0].node' "$T/meta-bake.json")" \
		"bake target $t: its node"
	skopeo_reg copy -q "docker://$R_HOST/bake/$t:1" "oci:$T/bake-$t:x"
	got=$(for b in "$T/bake-$t"/blobs/sha256/*; do { gzip -dc "$b" 2>/dev/null | tar -xOf - app/greeting2 2>/dev/null; } || true; done)
	assert_eq "$t" "$got" "bake target $t: /app/greeting2 (its GREETING arg)"
done
pass "bake --builder: every target's job runs on node A; the metadata file names the node"

# --ssh on a node: plait's own agent for a key file here, forwarded by the
# job's ssh client to a socket on node A; the node's RUN logs in to this
# test's sshd through it. Afterwards no forwarded socket is left on the node
# and the key is in no file there.
sb=$T/sshbase
ssh_client_root "$sb/root"
printf 'FROM %s\nCOPY root/ /\n' "$R_HOST/base/busybox:1" >"$sb/Dockerfile"
run_ok "$PLAIT" build --platform linux/amd64 --builder local --cache-dir "$T/lc-ssh" -t "$R_HOST/sshbase:1" --push "$sb"
echo "answer-$RANDOM-$$" >"$S/answer"
SSHCMD="ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p $PORT root@127.0.0.1 cat $S/answer"
printf 'FROM %s\nRUN --mount=type=ssh,id=deploy %s >/answer\n' "$R_HOST/sshbase:1" "$SSHCMD" >"$T/ssh.Dockerfile"
ls /tmp/plait-node-ssh-* >/dev/null 2>&1 && fail "forwarded agent sockets are left from before: $(ls -d /tmp/plait-node-ssh-*)"
# one left by a session that is over (no listener): the next serve removes it
"$PY" -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()' \
	"/tmp/plait-node-ssh-stale$$-0.sock"
CMD_TIMEOUT=120 run_ok "$PLAIT" build --platform linux/amd64 --builder farm --cache-dir "$T/lc-ssh" --progress plain \
	--ssh "deploy=$S/id" -f "$T/ssh.Dockerfile" --output "type=local,dest=$T/ssh-out" "$J"
assert_contains "$OUT$ERR" "linux/amd64 built on ssh://node-a"
assert_eq "$(cat "$S/answer")" "$(cat "$T/ssh-out/answer")" "what sshd said to the node's RUN through the forwarded agent"
if ls /tmp/plait-node-ssh-* >/dev/null 2>&1; then fail "the forwarded agent's socket is left on the node: $(ls -d /tmp/plait-node-ssh-*)"; fi
keyline=$(sed -n 2p "$S/id")
leaks=$(grep -rlF "$keyline" "$N" /tmp/plait-node-job-* 2>/dev/null || true)
[ -z "$leaks" ] || fail "the --ssh key is in files on the node: $leaks"
pass "--ssh ID=KEYFILE on a node: its agent is forwarded over the job's ssh, the node's RUN logs in with it; nothing left there (a stale socket swept)"

# two platforms, two variants: amd64 on node A natively, arm64 on node B
# through its QEMU handler; every index equals the local build's (this host's
# QEMU), digest for digest, and each node's store holds its platform's images
deb=$(busybox_deb arm64)
if [ "$(uname -m)" = x86_64 ] && [ -x /usr/bin/qemu-aarch64-static ] && [ -n "$deb" ]; then
	run_ok "$PLAIT" qemu install arm64
	bash "$LIB_DIR/mkbase.sh" "$T/bases" multi amd64 "arm64=$deb" >/dev/null
	skopeo_reg copy -q --all "oci:$T/bases:multi" "docker://$R_HOST/base/multi:1"
	MB=(build --platform linux/amd64,linux/arm64 --variant a:GREETING=ha --variant b:GREETING=hb
		--source-date-epoch 1700000000 --build-arg "BASE=$R_HOST/base/multi:1" --progress plain --push)
	run_ok "$PLAIT" "${MB[@]}" --builder farm --cache-dir "$T/lc-multi" --metadata-file "$T/meta2.json" \
		-t "$R_HOST/multi:1-{variant}" "$J"
	PLAIT_BINFMT_DIR=/proc/sys/fs/binfmt_misc run_ok "$PLAIT" "${MB[@]}" --builder local --cache-dir "$T/lc-multil" \
		-t "$R_HOST/multil:1-{variant}" "$J"
	for v in a b; do
		assert_eq "$(raw_digest "docker://$R_HOST/multil:1-$v")" "$(raw_digest "docker://$R_HOST/multi:1-$v")" \
			"variant $v: the index built on the nodes and the local one"
		assert_eq "ssh://node-a ssh://root@node-b:$PORT" \
			"$(jq -r --arg v "$v" '.variants[$v].platforms | map(.node) | join(" ")' "$T/meta2.json")" \
			"variant $v: the nodes in the metadata file"
		for p in amd64:a arm64:b; do
			md=$(jq -r --arg v "$v" --arg a "linux/${p%%:*}" '.variants[$v].platforms[] | select(.platform == $a) | .digest' \
				"$T/meta2.json")
			assert_file_exists "$N/${p#*:}/cache/plait/store/blobs/sha256/${md#sha256:}"
		done
	done
	skopeo_reg copy -q --override-arch arm64 "docker://$R_HOST/multi:1-b" "oci:$T/arm64b:x"
	pass "two platforms x two variants: amd64 jobs on node A, arm64 jobs on node B's QEMU; the indexes equal the local build's"
else
	echo "# the two-platform part needs an amd64 host, qemu-user-static and busybox-static:arm64 (not here)"
fi

# the connection dropping mid-job (the local ssh client killed): the build
# fails naming the node and the last step, no tag moves, and the node stops
# the job (no build left running there)
# a sleep of this test's own length, told apart from any other on the machine
SLEEP="/bin/sleep $((3000 + $$ % 5000))"
printf 'FROM %s\nRUN echo started && %s\n' "$R_HOST/base/busybox:1" "$SLEEP" >"$T/slow.Dockerfile"
lib_run_bg() { "$@" >"$T/slow.out" 2>"$T/slow.err" & SLOW_PID=$!; }
lib_run_bg "$PLAIT" build --platform linux/amd64 --builder farm --cache-dir "$T/local-cache" --progress plain \
	-f "$T/slow.Dockerfile" -t "$R_HOST/app:slow" --push "$J"
wait_proc "$SLEEP" 20 || fail "the slow job never started on the node: $(cat "$T/slow.err")"
pkill -f "ssh -F $S/ssh_config .* serve --protocol" || fail "no ssh client of the job to kill (the build said: $(cat "$T/slow.err"))"
rc=0
wait "$SLOW_PID" || rc=$?
[ "$rc" != 0 ] || fail "the build whose connection dropped succeeded"
assert_contains "$(cat "$T/slow.err")" "node ssh://node-a: the connection ended during the build"
assert_contains "$(cat "$T/slow.err")" "RUN echo started"
if ! wait_proc_gone "$SLEEP" 10; then
	pkill -f "$SLEEP"
	pkill -f "$PLAIT serve --protocol" || true
	fail "the job kept running on the node after its connection dropped"
fi
run_expect_fail skopeo_reg inspect --raw "docker://$R_HOST/app:slow"
pass "a connection dropped mid-job fails the build naming the node and its last step; the node stops the job"

# Ctrl-C (SIGINT to the local plait alone: its ssh client stays): the cancel
# goes over the channel, the node stops the job, the build ends interrupted
SLEEP2="/bin/sleep $((3000 + ($$ + 1) % 5000))"
printf 'FROM %s\nRUN echo started && %s\n' "$R_HOST/base/busybox:1" "$SLEEP2" >"$T/slow2.Dockerfile"
"$PLAIT" build --platform linux/amd64 --builder farm --cache-dir "$T/local-cache" --progress plain \
	-f "$T/slow2.Dockerfile" -t "$R_HOST/app:int" --push "$J" >"$T/int.out" 2>"$T/int.err" &
INT_PID=$!
wait_proc "$SLEEP2" 20 || fail "the job to interrupt never started on the node: $(cat "$T/int.err")"
kill -INT "$INT_PID"
rc=0
wait "$INT_PID" || rc=$?
[ "$rc" != 0 ] || fail "the interrupted build succeeded"
assert_contains "$(cat "$T/int.err")" "interrupted (the job on node ssh://node-a was stopped)"
if ! wait_proc_gone "$SLEEP2" 10; then
	pkill -f "$SLEEP2"
	fail "the job kept running on the node after Ctrl-C here"
fi
run_expect_fail skopeo_reg inspect --raw "docker://$R_HOST/app:int"
pass "Ctrl-C here sends a cancel: the node stops the job, the build ends interrupted, no tag"

# --retry-jobs 1: the same drop, and the job runs again elsewhere: on node B
# (it runs amd64 natively too), or, for a builder of node A alone, here
# the sshd session process above a node's 'plait serve' (the node's side of the connection)
node_sshd_of() {
	local pid ppid
	pid=$(pgrep -f "^$PLAIT serve --protocol" | head -1)
	while [ -n "$pid" ] && [ "$pid" != 1 ]; do
		case "$(ps -o args= -p "$pid")" in sshd:*) echo "$pid"; return 0 ;; esac
		ppid=$(ps -o ppid= -p "$pid" | tr -d ' ')
		pid=$ppid
	done
	return 1
}
retry_drop() { # NAME BUILDER TAG [node] : a build whose first connection is killed mid-step
	local s="/bin/sleep $((4 + $$ % 3))"
	printf 'FROM %s\nRUN echo %s && %s\n' "$R_HOST/base/busybox:1" "$1" "$s" >"$T/$1.Dockerfile"
	"$PLAIT" build --platform linux/amd64 --builder "$2" --retry-jobs 1 --cache-dir "$T/local-cache" \
		--progress plain --metadata-file "$T/$1.json" -f "$T/$1.Dockerfile" -t "$3" --push "$J" \
		>"$T/$1.out" 2>"$T/$1.err" &
	local pid=$! i
	for i in $(seq 1 200); do
		pgrep -f "^$s\$" >/dev/null && break
		sleep 0.1
	done
	pgrep -f "^$s\$" >/dev/null || fail "$1: the job never started on node A: $(cat "$T/$1.err")"
	if [ "${4:-}" = node ]; then # the node's end: its sshd session goes, as when sshd is stopped
		local sp
		sp=$(node_sshd_of) || fail "$1: no sshd session above the node's plait serve"
		kill "$sp"
	else
		pkill -f "ssh -F $S/ssh_config .* serve --protocol" || fail "$1: no ssh client to kill"
	fi
	wait "$pid" || fail "$1: the retried build failed: $(cat "$T/$1.err")"
}
retry_drop retry-node farm "$R_HOST/app:retry" node
assert_contains "$(cat "$T/retry-node.err")" "linux/amd64: node ssh://node-a: the connection ended during the build"
assert_contains "$(cat "$T/retry-node.err")" "running it again ssh://root@node-b:$PORT (retry 1 of 1)"
assert_eq "ssh://root@node-b:$PORT" "$(jq -r '.platforms[0].node' "$T/retry-node.json")" "node of the retried job"
raw_digest "docker://$R_HOST/app:retry" >/dev/null
run_ok "$PLAIT" builder create solo --node ssh://node-a --identity "$S/id" --remote-plait "$N/plait-node"
retry_drop retry-here solo "$R_HOST/app:retry-here"
assert_contains "$(cat "$T/retry-here.err")" "running it again here (retry 1 of 1)"
assert_eq "null" "$(jq -r '.platforms[0].node' "$T/retry-here.json")" "node of the job retried here"
raw_digest "docker://$R_HOST/app:retry-here" >/dev/null
run_ok "$PLAIT" builder rm solo
pass "--retry-jobs 1: a job whose connection dropped (the node's sshd session killed) runs again on node B, or here for a one-node builder"

run_ok "$PLAIT" builder use local
assert_eq null "$(jq -r .current "$BJ")" "current builder after 'use local'"
pass "use local"

# ---------------------------------------------------------------- failures
run_expect_fail "$PLAIT" builder create dead --node ssh://node-dead --identity "$S/id" --remote-plait "$N/plait-node"
expect_rc 1
assert_contains "$ERR" "node ssh://node-dead: ssh could not connect"
assert_contains "$ERR" "Connection refused"
assert_eq "farm" "$(jq -r '[.builders[].name] | join(" ")' "$BJ")" "builders after a failed create"
pass "an unreachable node: create fails naming the node and ssh's message, stores nothing"

run_expect_fail "$PLAIT" builder create wrongkey --node ssh://node-a --identity "$S/wrong" --remote-plait "$N/plait-node"
expect_rc 1
assert_contains "$ERR" "node ssh://node-a: ssh could not connect"
assert_contains "$ERR" "Permission denied"
assert_contains "$ERR" "the key given with --identity"
pass "a wrong key: the node and ssh's 'Permission denied'"

run_expect_fail "$PLAIT" builder create stranger --node ssh://node-stranger --identity "$S/id" --remote-plait "$N/plait-node"
expect_rc 1
assert_contains "$ERR" "node ssh://node-stranger: ssh could not connect"
assert_contains "$ERR" "Host key verification failed"
pass "an unknown host key: the node and ssh's 'Host key verification failed'"

run_expect_fail "$PLAIT" builder create old --node ssh://node-old --identity "$S/id" --remote-plait "$N/plait-node"
expect_rc 2
assert_contains "$ERR" "node ssh://node-old runs plait 0.0.1, which speaks protocol 0"
assert_contains "$ERR" "install plait"
pass "a node of another protocol is refused with the fix"

run_expect_fail "$PLAIT" builder create noserve --node ssh://node-noserve --identity "$S/id" --remote-plait "$N/plait-node"
expect_rc 1
assert_contains "$ERR" "node ssh://node-noserve: 'plait serve' did not answer the hello: frame 1: no \"PLT1\" header"
pass "create checks the frame channel: a node whose serve prints no frames is refused"

run_expect_fail "$PLAIT" builder create nope --node ssh://node-a --identity "$S/id" --remote-plait /no/such/plait
expect_rc 1
assert_contains "$ERR" "'/no/such/plait' is not found on the node"
pass "a missing remote plait says --remote-plait"

run_expect_fail "$PLAIT" builder create bad --node http://node-a
expect_rc 2
assert_contains "$ERR" "write it as ssh://[USER@]HOST[:PORT]"
pass "a node that is no ssh:// URL is a usage error"

# A node that goes away after create: a planning problem with ssh's message.
cp "$BJ" "$T/builders.good"
jq --arg d "$DEAD" '.builders[0].nodes += [{"url": "ssh://root@127.0.0.1:\($d)"}]' "$T/builders.good" >"$BJ"
run_expect_fail "$PLAIT" "${PLAN[@]}" --builder farm "$C"
expect_rc 2
assert_contains "$ERR" "cannot plan this build"
assert_contains "$ERR" "builder 'farm': node ssh://root@127.0.0.1:$DEAD: ssh could not connect"
assert_contains "$ERR" "Connection refused"
assert_contains "$ERR" "--fallback local"
pass "an unreachable node is a planning problem with ssh's message"

PLAIT_BINFMT_DIR=$T/local-qemu run_ok "$PLAIT" "${PLAN[@]}" --builder farm --fallback local --format json "$C"
assert_eq "ssh://node-a" "$(jq -r '.jobs[] | select(.platform == "linux/amd64") | .node' <<<"$OUT" | sort -u)" \
	"node of amd64 with --fallback local"
assert_contains "$(jq -r '.jobs[] | select(.platform == "linux/arm64") | .reason' <<<"$OUT")" \
	"this host's QEMU does (--fallback local: ssh://root@127.0.0.1:$DEAD unreachable)"
run_expect_fail "$PLAIT" "${PLAN[@]}" --builder farm --fallback remote "$C"
expect_rc 2
pass "--fallback local leaves the unreachable node out and the plan says so"

run_expect_fail "$PLAIT" builder inspect farm
expect_rc 1
assert_contains "$OUT" "error:    node ssh://root@127.0.0.1:$DEAD: ssh could not connect"
assert_contains "$OUT" "native:   linux/amd64,linux/386"
pass "inspect shows the unreachable node's error next to the others"
cp "$T/builders.good" "$BJ"

# A corrupt file names itself.
echo '{"builders": [' >"$BJ"
run_expect_fail "$PLAIT" builder ls
expect_rc 1
assert_contains "$ERR" "$BJ:"
assert_contains "$ERR" "not valid JSON"
run_expect_fail "$PLAIT" "${PLAN[@]}" "$C"
assert_contains "$ERR" "$BJ:"
pass "a corrupt builders.json is named, with the fix"
cp "$T/builders.good" "$BJ"

# ---------------------------------------------------------------- rm
run_ok "$PLAIT" builder use farm
run_ok "$PLAIT" builder rm farm
assert_contains "$OUT" "removed builder farm (it was in use"
assert_eq "0 null" "$(jq -r '"\(.builders | length) \(.current)"' "$BJ")" "builders.json after rm"
assert_file_mode "$BJ" 600
run_expect_fail "$PLAIT" builder rm farm
assert_contains "$ERR" "no builder named 'farm'"
run_expect_fail "$PLAIT" "${PLAN[@]}" --builder farm "$C"
expect_rc 2
assert_contains "$ERR" "--builder farm: no builder of that name"
pass "rm forgets the builder (and the choice of it)"
