#!/usr/bin/env bash
# test_copy_link.sh - COPY --link as BuildKit defines it (Dockerfile
# reference, "COPY --link"): the files go into a layer of their own, made in
# an empty root, that does not depend on what came before, then stacked on
# the stage. So:
#  1. a two-platform build (linux/amd64 native, linux/arm64 under QEMU) makes
#     each --link layer once: one job makes it, the other finds it (CACHED),
#     and both platform manifests name the same blob; a plain COPY of the
#     same files is made by each job;
#  2. the destination does not follow a symlink of the previous state: the
#     path is made of directories only, and the symlink's target stays empty
#     (the documented difference from COPY without --link); --chown by name
#     is looked up in the stage's /etc/passwd;
#  3. a change before the --link step (a build arg a RUN uses) reruns the
#     plain COPY after it but finds the --link layer.
# BuildKit 20.10's frontend has no --link (dockerfile 1.4), so this test
# states the documented result rather than comparing with dockerd.
# The Dockerfile's ${BASE} is for plait to expand:
# shellcheck disable=SC2016
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd jq skopeo umoci docker-registry curl dpkg-deb
require_plait
[ "$(id -u)" = 0 ] || skip "RUN sandboxes and binfmt_misc handlers need root"
multi_base
pass "amd64 + arm64 busybox base pushed to $BASE"

CTX=$T/ctx
mkdir -p "$CTX/dir"
echo "a file" >"$CTX/a.txt"
echo "b file" >"$CTX/dir/b.txt"
cat >"$CTX/Dockerfile" <<'DF'
ARG BASE
FROM ${BASE}
ARG V=1
RUN mkdir -p /srv/real /home/app && ln -s /srv/real /srv/data && \
    echo "linker:x:1234:2345::/home/app:/bin/sh" >> /etc/passwd && echo "linkers:x:2345:" >> /etc/group && \
    echo "$V" > /v
COPY --link a.txt dir/ /srv/data/
COPY --link --chown=linker:linkers a.txt /home/app/owned.txt
COPY a.txt /plain/a.txt
RUN { if [ -L /srv/data ]; then echo "data: symlink"; elif [ -d /srv/data ]; then echo "data: dir"; fi; \
      ls /srv/data | tr '\n' ' '; echo; ls /srv/real | wc -l; stat -c '%u:%g' /home/app/owned.txt; } > /report
DF

# build V : the two-platform build, pushed to $REG/link/app:V; LOG its output
build() {
	run_ok "$PLAIT" build --progress plain --cache-dir "$T/cache" --platform linux/amd64,linux/arm64 \
		--build-arg "BASE=$BASE" --build-arg "V=$1" -t "$REG/link/app:$1" --push "$CTX"
	LOG="$OUT
$ERR"
}
# layers REF PLATFORM : the platform's layer digests, one per line
layers() {
	local idx d
	idx=$(skopeo_reg inspect --raw "docker://$1")
	d=$(jq -r --arg a "${2#linux/}" '.manifests[] | select(.platform.architecture == $a) | .digest' <<<"$idx")
	skopeo_reg inspect --raw "docker://${1%:*}@$d" | jq -r '.layers[].digest'
}
# step_states STEP : "DONE"/"CACHED" of each platform's step whose title has STEP
step_states() {
	local n p out=
	for p in linux/amd64 linux/arm64; do
		n=$(grep -F "[$p] #" <<<"$LOG" | grep -F -- "$1" | head -n1 | sed -E 's|^\[[^]]*\] #([0-9]+)/.*|\1|')
		[ -n "$n" ] || fail "no step '$1' for $p in the progress:
$LOG"
		st=$(grep -E "^\[$p\] #$n (DONE|CACHED)" <<<"$LOG" | head -n1 | awk '{print $3}' || true)
		[ -n "$st" ] || fail "no DONE or CACHED line for $p's step #$n ('$1') in the progress:
$LOG"
		out+="$st "
	done
	echo "$out" | tr ' ' '\n' | sed '/^$/d' | sort | paste -sd' '
}

# ---------------------------------------------------------------- 1. once for both platforms
build 1
assert_eq "CACHED DONE" "$(step_states "COPY --link a.txt dir/ /srv/data/")" \
	"the first --link step's states in the two jobs (one makes the layer, the other finds it)"
assert_eq "CACHED DONE" "$(step_states "COPY --link --chown=linker:linkers")" "the --chown --link step's states"
assert_eq "DONE DONE" "$(step_states "COPY a.txt /plain/a.txt")" "the plain COPY's states"
mapfile -t A < <(layers "$REG/link/app:1" linux/amd64)
mapfile -t B < <(layers "$REG/link/app:1" linux/arm64)
[ "${#A[@]}" = 6 ] && [ "${#B[@]}" = 6 ] || fail "expected 6 layers per platform (base, RUN, two --link, COPY, RUN): amd64 ${#A[@]}, arm64 ${#B[@]}"
assert_eq "${A[2]} ${A[3]}" "${B[2]} ${B[3]}" "the --link layers of amd64 and arm64"
pass "each --link layer made once and shared by both platforms' manifests"

# ---------------------------------------------------------------- 2. the documented result
for p in amd64 arm64; do
	d=$(skopeo_reg inspect --raw "docker://$REG/link/app:1" | jq -r --arg a "$p" '.manifests[] | select(.platform.architecture == $a) | .digest')
	run_ok skopeo_reg copy -q "docker://$REG/link/app@$d" "oci:$T/img-$p:x"
	run_ok umoci unpack --image "$T/img-$p:x" "$T/root-$p"
	got=$(cat "$T/root-$p/rootfs/report")
	assert_eq "data: dir
a.txt b.txt 
0
1234:2345" "$got" "/report of linux/$p (what the RUN after the --link steps saw)"
done
pass "--link does not follow the destination's symlink; --chown names are the stage's users"

# ---------------------------------------------------------------- 3. independent of the steps before
build 2
assert_eq "CACHED CACHED" "$(step_states "COPY --link a.txt dir/ /srv/data/")" "the --link step after a change before it"
assert_eq "DONE DONE" "$(step_states "COPY a.txt /plain/a.txt")" "the plain COPY after a change before it"
mapfile -t C < <(layers "$REG/link/app:2" linux/amd64)
assert_eq "${A[2]}" "${C[2]}" "the --link layer after a change before it"
assert_ne "${A[1]}" "${C[1]}" "the RUN layer that used the changed arg"
pass "a change before a --link step reruns the plain COPY after it, not the --link layer"
