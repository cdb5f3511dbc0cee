#!/usr/bin/env bash
# Installs what is missing, builds, runs every test (unit + integration on DPDK vdevs), then the
# robustness runs of issue [I]: the unit suite, the fuzz corpus replays and a subset of the
# integration tests again under ASan + UBSan (build-asan/), and each libFuzzer target for
# MSECGW_FUZZ_SECONDS (default 20) in a clang build (build-fuzz/, skipped when clang is missing).
# MSECGW_SANITIZE=0 / MSECGW_FUZZ=0 leave those out.
# The last line is always `tests: N passed, N failed` over all runs; exit status is non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
builddir=${MSECGW_BUILD_DIR:-build}
asandir=${MSECGW_ASAN_BUILD_DIR:-build-asan}
fuzzdir=${MSECGW_FUZZ_BUILD_DIR:-build-fuzz}
# Integration tests run under the sanitizers too (the rest take too long instrumented; see docs/robustness.md).
asan_integration=(integ_bypass integ_config_errors integ_sender_id integ_lifetime integ_packaging)

if ! scripts/install-deps.sh; then
  echo "test.sh: installing dependencies failed"
  echo "tests: 0 passed, 1 failed"
  exit 1
fi
if ! scripts/build.sh; then
  echo "test.sh: build failed"
  echo "tests: 0 passed, 1 failed"
  exit 1
fi

logs=()
failed_steps=0
# run_tests DIR LABEL MESON-TEST-ARGS...: one meson test run, its JUnit log counted at the end.
run_tests() {
  local dir=$1 label=$2
  shift 2
  rm -f "$dir/meson-logs/testlog.junit.xml"
  meson test -C "$dir" --print-errorlogs --num-processes 2 "$@" >"$dir/test-output.txt" 2>&1
  local rc=$?
  echo "--- $label ($dir)"
  grep -E '^ *[0-9]+/[0-9]+ ' "$dir/test-output.txt" || true
  if [ $rc -ne 0 ]; then
    echo "--- failures (full log: $dir/meson-logs/testlog.txt) ---"
    sed -n '/^Summary of Failures/,$p' "$dir/test-output.txt"
    failed_steps=$((failed_steps + 1))
  fi
  logs+=("$dir/meson-logs/testlog.junit.xml")
}

run_tests "$builddir" "release build" ${MSECGW_TEST_ARGS:-}

if [ "${MSECGW_SANITIZE:-1}" != 0 ]; then
  if MSECGW_BUILD_DIR="$asandir" MSECGW_MESON_ARGS="-Db_sanitize=address,undefined --buildtype=debugoptimized" \
      scripts/build.sh; then
    # Leak detection stays on and needs no suppression for DPDK's EAL (docs/robustness.md).
    ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1" \
    UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1" \
      run_tests "$asandir" "ASan + UBSan" --suite unit --suite fuzz "${asan_integration[@]}"
  else
    echo "test.sh: sanitizer build failed"
    failed_steps=$((failed_steps + 1))
  fi
fi

if [ "${MSECGW_FUZZ:-1}" != 0 ]; then
  if ! command -v clang++ >/dev/null; then
    echo "test.sh: clang++ not installed: libFuzzer runs skipped"
  elif scripts/fuzz.sh --build-only; then
    UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1" \
      run_tests "$fuzzdir" "libFuzzer, ${MSECGW_FUZZ_SECONDS:-20} s per target" --suite fuzz --num-processes 1
  else
    echo "test.sh: fuzz build failed"
    failed_steps=$((failed_steps + 1))
  fi
fi

scripts/count_tests.py "${logs[@]}"
count_rc=$?
[ $failed_steps -eq 0 ] && [ $count_rc -eq 0 ]
