#!/usr/bin/env bash
# Run the test suite (all, or one suite: unit | integration) and end with the
# plain closing line "N passed, N failed" that CI reads.
set -u
build=${1:-build}
suite=${2:-}
args=(--print-errorlogs --no-rebuild)
[ -n "$suite" ] && args+=(--suite "$suite")
ninja -C "$build" || exit 1
meson test -C "$build" "${args[@]}"
rc=$?
log="$build/meson-logs/testlog.json"
if [ -f "$log" ]; then
	python3 - "$log" <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
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
