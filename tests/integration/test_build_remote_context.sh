#!/usr/bin/env bash
# test_build_remote_context.sh - git and URL build contexts, as BuildKit
# spells them: a real `git daemon` on loopback (git://HOST/repo.git#REF:DIR
# at a branch, a tag, a commit; -f inside the repository; no .git in the
# context), git over a real sshd (ssh://), --build-context NAME=git://…, and
# a loopback HTTP server (python3 -m http.server) serving a tar.gz context,
# a plain Dockerfile (an empty context) and a hostile tar (refused by the
# safe unpacker); a bad ref, a missing subdirectory and a 404 are errors
# naming the URL that leave no temporary directory behind.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd git python3 ssh
require_plait
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com

bash "$LIB_DIR/mkbase.sh" "$T/base" busybox >/dev/null
BASECTX=(--build-context "busybox=oci:$T/base:busybox")

# ---------------------------------------------------------------- a repository
SRV=$T/srv
mkdir -p "$SRV"
git init -q --bare "$SRV/app.git"
git -C "$SRV/app.git" symbolic-ref HEAD refs/heads/main
W=$T/work
git init -q -b main "$W"
mkdir -p "$W/sub"
printf 'FROM busybox\nCOPY . /ctx/\n' >"$W/sub/Dockerfile"
echo one >"$W/sub/msg"
git -C "$W" add -A
git -C "$W" commit -qm one
git -C "$W" tag v1
C1=$(git -C "$W" rev-parse HEAD)
echo two >"$W/sub/msg"
printf 'FROM busybox\nCOPY sub/msg /top-msg\n' >"$W/Dockerfile.top"
ln -s /etc "$W/escape"
git -C "$W" add -A
git -C "$W" commit -qm two
git -C "$W" push -q "$SRV/app.git" main v1
GPORT=$(free_port)
bg_start git-daemon git daemon --reuseaddr --export-all --base-path="$SRV" --listen=127.0.0.1 --port="$GPORT" "$SRV"
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$GPORT") 2>/dev/null && break; sleep 0.1; done
G=git://127.0.0.1:$GPORT/app.git

build() { # OUTDIR CONTEXT [args...]
	local out=$1 ctx=$2
	shift 2
	rm -rf "$out"
	CMD_TIMEOUT=120 run_ok "$PLAIT" build --cache-dir "$T/cache" "${BASECTX[@]}" -t localhost/rc:1 \
		--output "type=local,dest=$out" "$@" "$ctx"
}
left() { find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'plait-context-*' -newer "$T/started" 2>/dev/null; }
touch "$T/started"

build "$T/o-tag" "$G#v1:sub"
assert_eq one "$(cat "$T/o-tag/ctx/msg")" "the context at tag v1"
assert_file_absent "$T/o-tag/ctx/.git" ".git in a git context"
build "$T/o-main" "$G#main:sub"
assert_eq two "$(cat "$T/o-main/ctx/msg")" "the context at branch main"
build "$T/o-commit" "$G#$C1:sub"
assert_eq one "$(cat "$T/o-commit/ctx/msg")" "the context at commit $C1"
build "$T/o-head" "$G" -f Dockerfile.top
assert_eq two "$(cat "$T/o-head/top-msg")" "the default branch with -f inside the repository"
assert_eq "" "$(left)" "temporary context directories after the builds"
pass "git:// contexts at a tag, a branch, a commit and HEAD, with #REF:DIR and -f inside the repository; no .git"

run_expect_fail "$PLAIT" build --cache-dir "$T/cache" "${BASECTX[@]}" "$G#nosuch-branch:sub"
assert_contains "$ERR" "git context $G#nosuch-branch:sub" "a bad ref names the URL"
assert_contains "$ERR" "nosuch-branch" "git's own message"
run_expect_fail "$PLAIT" build --cache-dir "$T/cache" "${BASECTX[@]}" "$G#main:missing"
assert_contains "$ERR" "no directory 'missing'" "a missing subdirectory"
run_expect_fail "$PLAIT" build --cache-dir "$T/cache" "${BASECTX[@]}" "$G#main:../x"
assert_contains "$ERR" "must be a path inside the repository" "a subdirectory leaving the repository"
run_expect_fail "$PLAIT" build --cache-dir "$T/cache" "${BASECTX[@]}" "$G#main:escape"
assert_contains "$ERR" "'escape' leads outside the repository (a symlink); refused" "a subdirectory that is a symlink out"
GIT_DIR=$T/not-this-repo GIT_WORK_TREE=$T/not-this-repo build "$T/o-env" "$G#v1:sub"
assert_eq one "$(cat "$T/o-env/ctx/msg")" "a git context fetched with GIT_DIR and GIT_WORK_TREE set by the caller"
assert_eq "" "$(left)" "temporary context directories after failed fetches"
pass "a bad ref, a missing, escaping or symlinked-out subdirectory are errors naming the URL; the caller's GIT_DIR is not used; nothing is left behind"

# --build-context NAME=git://…
printf 'FROM busybox\nCOPY --from=src sub/msg /named-msg\n' >"$T/Dockerfile.named"
mkdir -p "$T/empty"
build "$T/o-named" "$T/empty" -f "$T/Dockerfile.named" --build-context "src=$G#v1"
assert_eq one "$(cat "$T/o-named/named-msg")" "COPY --from a git named context"
run_ok "$PLAIT" plan --format json "${BASECTX[@]}" "$G#main:sub"
assert_eq 1 "$(jq '.jobs | length' <<<"$OUT")" "plan of a git context"
pass "--build-context NAME=git://… and plait plan of a git context"

# ---------------------------------------------------------------- git over ssh
S=$T/ssh
sshd_start "$S"
export GIT_SSH_COMMAND="ssh -i $S/id -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
build "$T/o-ssh" "ssh://root@127.0.0.1:$SSHD_PORT$SRV/app.git#v1:sub"
assert_eq one "$(cat "$T/o-ssh/ctx/msg")" "the context over ssh"
unset GIT_SSH_COMMAND
pass "ssh:// git contexts through a real sshd"

# ---------------------------------------------------------------- URL contexts
H=$T/http
mkdir -p "$H/tree/dir"
printf 'FROM busybox\nCOPY dir/ /from-tar/\n' >"$H/tree/Dockerfile"
echo "in the tarball" >"$H/tree/dir/f.txt"
tar -C "$H/tree" -czf "$H/ctx.tar.gz" .
printf 'FROM busybox\nRUN echo from-a-url-dockerfile >/made\n' >"$H/Dockerfile"
"$PY" - "$H/evil.tar" <<'EOF'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    data = b"FROM busybox\n"
    i = tarfile.TarInfo("Dockerfile"); i.size = len(data); t.addfile(i, io.BytesIO(data))
    i = tarfile.TarInfo("../../escaped.txt"); i.size = 4; t.addfile(i, io.BytesIO(b"evil"))
EOF
HPORT=$(free_port)
bg_start http python3 -m http.server "$HPORT" --bind 127.0.0.1 --directory "$H"
wait_http "http://127.0.0.1:$HPORT/Dockerfile"
U=http://127.0.0.1:$HPORT
build "$T/o-tar" "$U/ctx.tar.gz"
assert_eq "in the tarball" "$(cat "$T/o-tar/from-tar/f.txt")" "a file of the tar.gz context"
build "$T/o-df" "$U/Dockerfile"
assert_eq from-a-url-dockerfile "$(cat "$T/o-df/made")" "a URL that is a Dockerfile"
run_expect_fail "$PLAIT" build --cache-dir "$T/cache" "${BASECTX[@]}" "$U/evil.tar"
assert_contains "$ERR" "URL context $U/evil.tar" "the hostile tar names the URL"
assert_file_absent "$T/escaped.txt" "a file the hostile tar aimed outside"
[ -z "$(find "${TMPDIR:-/tmp}" -maxdepth 2 -name escaped.txt -newer "$T/started")" ] || fail "the hostile tar wrote escaped.txt"
run_expect_fail "$PLAIT" build --cache-dir "$T/cache" "${BASECTX[@]}" "$U/nosuch.tar.gz"
assert_contains "$ERR" "URL context $U/nosuch.tar.gz" "a 404 names the URL"
assert_contains "$ERR" "404" "the HTTP status"
assert_eq "" "$(left)" "temporary context directories after the URL builds"
pass "URL contexts: a tar.gz, a plain Dockerfile; a hostile tar and a 404 are refused naming the URL"

# ---------------------------------------------------------------- bake
cat >"$T/docker-bake.json" <<EOF2
{"target": {
  "fromgit": {"context": "$G#main", "dockerfile": "Dockerfile.top", "tags": ["localhost/rc-git:1"],
              "output": ["type=local,dest=$T/o-bake-git"]},
  "fromurl": {"context": "$U/Dockerfile", "tags": ["localhost/rc-url:1"], "output": ["type=local,dest=$T/o-bake-url"]}},
 "group": {"default": {"targets": ["fromgit", "fromurl"]}}}
EOF2
CMD_TIMEOUT=120 run_ok "$PLAIT" bake -f "$T/docker-bake.json" --cache-dir "$T/cache" "${BASECTX[@]}"
assert_eq two "$(cat "$T/o-bake-git/top-msg")" "bake target with a git context and a dockerfile in it"
assert_eq from-a-url-dockerfile "$(cat "$T/o-bake-url/made")" "bake target whose context is a Dockerfile URL"
pass "bake targets with git and URL contexts"

# ---------------------------------------------------------------- provenance of a git context
registry_start R plain
CMD_TIMEOUT=120 run_ok "$PLAIT" build --cache-dir "$T/cache" "${BASECTX[@]}" -t "$R_HOST/rc/git:1" --push "$G#v1:sub"
run_ok "$PLAIT" inspect --attestations --format json "$R_HOST/rc/git:1"
assert_eq "git+$G@$C1#sub" "$(jq -r '.[0].layers[0].content.predicate.buildDefinition.externalParameters.configSource.uri' <<<"$OUT")" \
	"the provenance's source of a git context"
assert_eq "$C1" "$(jq -r '.[0].layers[0].content.predicate.buildDefinition.resolvedDependencies[] | select(.name == "context") | .digest.gitCommit' <<<"$OUT")" \
	"the commit among the resolved dependencies"
pass "the provenance of a git context names its URL, subdirectory and commit"

# ---------------------------------------------------------------- ADD of a git repository
mkdir -p "$T/addgit"
cat >"$T/addgit/Dockerfile" <<EOF2
FROM busybox
ADD $G#v1:sub /src/
ADD --keep-git-dir=true $G#main /full/
EOF2
build "$T/o-addgit" "$T/addgit"
assert_eq one "$(cat "$T/o-addgit/src/msg")" "ADD of the repository at v1, its sub directory"
assert_file_absent "$T/o-addgit/src/.git" ".git of an ADD without --keep-git-dir"
assert_eq two "$(cat "$T/o-addgit/full/sub/msg")" "ADD --keep-git-dir of main"
[ -d "$T/o-addgit/full/.git" ] || fail "ADD --keep-git-dir left out .git"
assert_eq "$(git -C "$W" rev-parse main)" "$(git -C "$T/o-addgit/full" rev-parse HEAD)" "the commit in the kept .git"
printf 'FROM busybox\nADD --keep-git-dir=true Dockerfile /x\n' >"$T/addgit/Dockerfile.bad"
run_expect_fail "$PLAIT" build --cache-dir "$T/cache" "${BASECTX[@]}" -f "$T/addgit/Dockerfile.bad" "$T/addgit"
assert_contains "$ERR" "Dockerfile.bad:2" "the place of a --keep-git-dir without a repository"
assert_contains "$ERR" "--keep-git-dir applies to a git repository source" "the refusal"
pass "ADD URL.git#REF[:DIR] copies the checkout (.git only with --keep-git-dir)"
