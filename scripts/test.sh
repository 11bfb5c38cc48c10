#!/usr/bin/env bash
# The test command: installs dependencies, builds Release and ASan (+UBSan), runs the unit
# tests of both, the end-to-end tests against both binaries, and a short fuzz run.
# Ends with the runners' summaries (ctest, pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=${JOBS:-2}

scripts/setup-deps.sh

export CCACHE_DIR=${CCACHE_DIR:-$ROOT/build/.ccache}
status=0

echo "== build: release"
cmake --preset release >/dev/null
cmake --build --preset release -j "$JOBS"
echo "== build: asan"
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$JOBS"

echo "== unit tests (release)"
ctest --preset release -j "$JOBS" || status=1
echo "== unit tests (asan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --preset asan -j "$JOBS" || status=1

if command -v clang++ >/dev/null 2>&1; then
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz -j "$JOBS" --target fuzz_http1 fuzz_policy fuzz_apidef fuzz_h2 fuzz_h2_client
  for target in http1 policy apidef h2 h2_client; do
    echo "== fuzz: $target (short run)"
    mkdir -p "build/fuzz/corpus-$target"
    cp -n "fuzz/corpus/$target"/* "build/fuzz/corpus-$target/" 2>/dev/null || true
    "build/fuzz/fuzz_$target" -max_total_time="${FUZZ_SECONDS:-30}" -print_final_stats=1 \
      "build/fuzz/corpus-$target" 2>"build/fuzz/fuzz_$target.log" ||
      { tail -50 "build/fuzz/fuzz_$target.log"; status=1; }
    grep -E "stat::number_of_executed_units|Done" "build/fuzz/fuzz_$target.log" | tail -2 || true
  done
fi

echo "== end-to-end tests (asan binary)"
GATEHOUSE_BIN=$ROOT/build/asan/gatehouse ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e || status=1

echo "== end-to-end tests (release binary)"
GATEHOUSE_BIN=$ROOT/build/release/gatehouse \
  /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e || status=1

exit $status
