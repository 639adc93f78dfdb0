#!/usr/bin/env bash
# tests/fuzz/run.sh EXE SECONDS SEED_DIR... - run one libFuzzer target for
# SECONDS ($PLAIT_FUZZ_SECONDS instead when set, as make fuzz does) over the
# seed directories, which stay read-only: new inputs go to a work corpus,
# $FUZZ_CORPUS/<target> when set (kept between runs: make fuzz), else a
# temporary one. A crash, leak, sanitizer report or slow input (10 s) fails
# the run; the input that did it is left in $FUZZ_WORKDIR (or the current
# directory) as crash-*, leak-*, timeout-*: replay it with `EXE FILE`.
set -u
exe=$1 seconds=${PLAIT_FUZZ_SECONDS:-$2}
shift 2
name=$(basename "$exe")
work=${FUZZ_WORKDIR:-$PWD}
mkdir -p "$work"
if [ -n "${FUZZ_CORPUS:-}" ]; then
	corpus=$FUZZ_CORPUS/$name
	mkdir -p "$corpus"
	tmp=
else
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/plait-fuzz-corpus-XXXXXX")
	corpus=$tmp
fi
seeds=()
for d in "$@"; do [ -d "$d" ] && seeds+=("$d"); done
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
# make test's short runs start from a fixed seed, so that a CI run explores
# the same inputs as the last one did (make fuzz explores anew each time).
seed=()
[ -z "${PLAIT_FUZZ_SECONDS:-}" ] && seed=(-seed=1)
"$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 "${seed[@]}" \
	-print_final_stats=1 -artifact_prefix="$work/" "$corpus" "${seeds[@]}"
rc=$?
[ -n "$tmp" ] && rm -rf "$tmp"
[ $rc -eq 0 ] || echo "$name: failed (rc $rc); artifacts in $work" >&2
# any failure is a failure: meson would count a crash that exits 77 as skipped
[ $rc -eq 0 ] || exit 1
exit 0
