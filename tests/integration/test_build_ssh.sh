#!/usr/bin/env bash
# test_build_ssh.sh - RUN --mount=type=ssh with `plait build --ssh`: a real
# sshd on loopback and a real ssh-agent holding the key it accepts; a RUN on
# a base the test makes (busybox plus Debian's own ssh client and its
# libraries) logs in through the forwarded agent and keeps what the server
# said. Checked: --ssh default ($SSH_AUTH_SOCK), --ssh ID=SOCKET, --ssh
# ID=KEYFILE (plait's own agent, gone afterwards, also after kill -9), the
# socket's default place (/run/buildkit/ssh_agent.0, SSH_AUTH_SOCK), owner
# and mode, target=/mode=/uid=, an optional agent not given (no socket), a
# required one (the error names it), a key ssh-add refuses, the cache key
# (another agent socket, the same step), and that neither the key nor the
# socket reaches the image.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd ssh ssh-agent ssh-add ssh-keygen ldd jq
require_plait
S=$T/ssh
sshd_start "$S"
echo "answer-from-sshd-$RANDOM" >"$S/answer"
ANSWER=$(cat "$S/answer")
unset SSH_AUTH_SOCK

# ---------------------------------------------------------------- the base
bash "$LIB_DIR/mkbase.sh" "$T/base" busybox >/dev/null
sb=$T/sshbase
ssh_client_root "$sb/root"
printf 'FROM base\nCOPY root/ /\n' >"$sb/Dockerfile"
run_ok "$PLAIT" build --cache-dir "$T/cache" --build-context "base=oci:$T/base:busybox" \
	-t localhost/sshbase:1 --output "type=oci,dest=$T/sshbase.oci" "$sb"

ctx=$T/ctx
mkdir -p "$ctx"
SSHCMD="ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p $SSHD_PORT root@127.0.0.1 cat $S/answer"
cat >"$ctx/Dockerfile" <<EOF
FROM sshbase
RUN --mount=type=ssh echo "\$SSH_AUTH_SOCK" >/sock-env && ls -ln /run/buildkit/ssh_agent.0 | cut -c1-10 >/sock-mode && \\
    ls -ln /run/buildkit/ssh_agent.0 | awk '{print \$3 ":" \$4}' >/sock-owner && $SSHCMD >/from-default
RUN --mount=type=ssh,id=deploy,target=/tmp/agent.sock,mode=0666,uid=1000 \\
    ls -ln /tmp/agent.sock | cut -c1-10 >/deploy-mode && ls -ln /tmp/agent.sock | awk '{print \$3}' >/deploy-owner && \\
    SSH_AUTH_SOCK=/tmp/agent.sock $SSHCMD >/from-deploy
RUN --mount=type=ssh,id=absent if [ -e /run/buildkit/ssh_agent.0 ]; then echo present; else echo absent; fi >/optional
EOF
build() {
	CMD_TIMEOUT=120 run_ok "$PLAIT" build --progress plain --cache-dir "$T/cache" \
		--build-context "sshbase=oci:$T/sshbase.oci:1" -t localhost/ssh:1 "$@" "$ctx"
}

# ---------------------------------------------------------------- the test's agent
eval "$(ssh-agent -s -a "$T/agent.sock")" >/dev/null
LIB_PIDS+=("$SSH_AGENT_PID")
run_ok ssh-add -q "$S/id"
rm -rf "$T/out1"
build --ssh default --ssh "deploy=$SSH_AUTH_SOCK" --output "type=local,dest=$T/out1"
assert_eq "$ANSWER" "$(cat "$T/out1/from-default")" "what sshd said through --ssh default"
assert_eq "$ANSWER" "$(cat "$T/out1/from-deploy")" "what sshd said through --ssh deploy=SOCKET"
assert_eq "/run/buildkit/ssh_agent.0" "$(cat "$T/out1/sock-env")" "SSH_AUTH_SOCK in the RUN"
assert_eq "srw-------" "$(cat "$T/out1/sock-mode")" "mode of the default agent socket"
assert_eq "0:0" "$(cat "$T/out1/sock-owner")" "owner of the default agent socket"
assert_eq "srw-rw-rw-" "$(cat "$T/out1/deploy-mode")" "mode=0666 of the deploy socket"
assert_eq "1000" "$(cat "$T/out1/deploy-owner")" "uid=1000 of the deploy socket"
assert_eq "absent" "$(cat "$T/out1/optional")" "an optional agent that was not given"
assert_file_absent "$T/out1/run/buildkit" "/run/buildkit in the image"
assert_file_absent "$T/out1/tmp/agent.sock" "/tmp/agent.sock in the image"
if grep -rqF "$(sed -n 2p "$S/id")" "$T/out1" "$T/cache" 2>/dev/null; then
	fail "the private key reached the image or the cache"
fi
pass "--ssh default and ID=SOCKET: the RUN logs in through the agent; the socket's place, owner and mode; nothing left in the image"

# another socket for the same agent: the steps are the same (the key has the id, not the path)
ln -s "$T/agent.sock" "$T/agent-link.sock"
build --ssh default --ssh "deploy=$T/agent.sock"
assert_eq 3 "$(grep -c 'CACHED' <<<"$OUT$ERR")" "cached RUN steps with the agent given through another path"
pass "the agent's path is not in the cache key"

# ---------------------------------------------------------------- --ssh ID=KEYFILE
kill "$SSH_AGENT_PID"
unset SSH_AUTH_SOCK SSH_AGENT_PID
rm -rf "$T/out2"
build --no-cache --ssh "default=$S/id" --ssh "deploy=$S/id" --output "type=local,dest=$T/out2"
assert_eq "$ANSWER" "$(cat "$T/out2/from-default")" "what sshd said through plait's own agent"
assert_eq "" "$(pgrep -f 'plait-agent-' || true)" "ssh-agent processes plait started, after the build"
assert_eq "" "$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'plait-agent-*' -o -maxdepth 1 -name 'plait-ssh-*')" \
	"agent and relay directories left behind"
pass "--ssh ID=KEYFILE: plait's own ssh-agent serves the key, and is gone afterwards"

# killed mid-RUN: the agent dies with plait
cat >"$T/Dockerfile.sleep" <<'EOF'
FROM sshbase
RUN --mount=type=ssh sleep 30
EOF
"$PLAIT" build --progress plain --cache-dir "$T/cache" --build-context "sshbase=oci:$T/sshbase.oci:1" \
	-f "$T/Dockerfile.sleep" --ssh "default=$S/id" "$ctx" >"$T/killed.log" 2>&1 &
bpid=$!
for _ in $(seq 100); do pgrep -f 'plait-agent-' >/dev/null && pgrep -x sleep >/dev/null && break; sleep 0.1; done
pgrep -f 'plait-agent-' >/dev/null || fail "no ssh-agent of plait's while the RUN sleeps: $(cat "$T/killed.log")"
kill -9 "$bpid"
wait "$bpid" 2>/dev/null || true
for _ in $(seq 50); do pgrep -f 'plait-agent-' >/dev/null || break; sleep 0.1; done
assert_eq "" "$(pgrep -f 'plait-agent-' || true)" "ssh-agent after plait was killed"
pkill -x sleep 2>/dev/null || true
pass "a killed build leaves no ssh-agent behind"

# ---------------------------------------------------------------- refusals
cat >"$T/Dockerfile.req" <<'EOF'
FROM sshbase
RUN --mount=type=ssh,id=gitlab,required=true true
EOF
run_expect_fail "$PLAIT" build --cache-dir "$T/cache" --build-context "sshbase=oci:$T/sshbase.oci:1" \
	-f "$T/Dockerfile.req" "$ctx"
assert_contains "$ERR" "Dockerfile.req:2" "the error's place"
assert_contains "$ERR" "ssh agent 'gitlab' is required: pass --ssh gitlab" "a required agent not given"
run_expect_fail "$PLAIT" build --ssh default "$ctx"
assert_contains "$ERR" "--ssh default: \$SSH_AUTH_SOCK is not set" "--ssh default without an agent"
ssh-keygen -q -t ed25519 -N 'a passphrase' -f "$S/locked"
run_expect_fail "$PLAIT" build --ssh "default=$S/locked" "$ctx"
assert_contains "$ERR" "could not add the key '$S/locked'" "a key ssh-add cannot add"
assert_eq "" "$(pgrep -f 'plait-agent-' || true)" "ssh-agent after a refused key"
run_expect_fail "$PLAIT" build --ssh "default=$T/nothing-here" "$ctx"
assert_contains "$ERR" "--ssh default: cannot read '$T/nothing-here'" "a missing key file"
pass "a required agent, no \$SSH_AUTH_SOCK, a passphrase key and a missing file are refused by name"
