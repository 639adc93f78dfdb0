#!/usr/bin/env bash
# Run the test suite (all, or one suite: unit | integration | fuzz) and end
# with the plain closing line "N passed, N failed" that CI reads. With
# FUZZ_BUILD set (make test: a clang -Dfuzz=true ASan+UBSan build dir), the
# suite "fuzz" of that build runs too (each target a few seconds) and counts
# in the same line.
set -u
build=${1:-build}
suite=${2:-}
fuzz_build=${FUZZ_BUILD:-}
args=(--print-errorlogs --no-rebuild)
[ -n "$suite" ] && args+=(--suite "$suite")
rc=0
logs=()
if [ "$suite" != fuzz ]; then
	ninja -C "$build" || exit 1
	meson test -C "$build" "${args[@]}"
	rc=$?
	logs+=("$build/meson-logs/testlog.json")
fi
if [ -n "$fuzz_build" ] && { [ -z "$suite" ] || [ "$suite" = fuzz ]; }; then
	ninja -C "$fuzz_build" fuzz-targets || exit 1
	meson test -C "$fuzz_build" --suite fuzz --print-errorlogs --no-rebuild || rc=1
	logs+=("$fuzz_build/meson-logs/testlog.json")
fi
existing=()
for log in "${logs[@]}"; do [ -f "$log" ] && existing+=("$log"); done
if [ ${#existing[@]} -gt 0 ]; then
	python3 - "${existing[@]}" <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    for line in open(path):
        r = json.loads(line)
        res = r.get("result")
        if res in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif res == "SKIP":
            skipped += 1
        else:
            failed += 1
            print("FAILED:", r.get("name"))
print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
PY
fi
exit $rc
