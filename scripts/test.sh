#!/usr/bin/env bash
# Installs what is missing, builds, runs every test (unit + integration on DPDK vdevs), then the
# robustness runs of issue [I] in one clang build (build-fuzz/, ASan + UBSan): the unit suite and a
# subset of the integration tests again, the fuzz corpus replays, and each libFuzzer target for
# MSECGW_FUZZ_SECONDS (default 20). MSECGW_SANITIZE=0 / MSECGW_FUZZ=0 leave those out.
# The last line is always `tests: N passed, N failed` over all runs; exit status is non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
builddir=${MSECGW_BUILD_DIR:-build}
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
# run_tests DIR LOGBASE LABEL MESON-TEST-ARGS...: one meson test run, its JUnit log
# (DIR/meson-logs/LOGBASE.junit.xml) counted at the end. Meson selects the tests in the named
# suites AND with the given names, so names and suites go in separate runs.
run_tests() {
  local dir=$1 logbase=$2 label=$3
  shift 3
  rm -f "$dir/meson-logs/$logbase.junit.xml"
  meson test -C "$dir" --logbase "$logbase" --print-errorlogs --num-processes 2 "$@" >"$dir/$logbase-output.txt" 2>&1
  local rc=$?
  echo "--- $label ($dir)"
  grep -E '^ *[0-9]+/[0-9]+ ' "$dir/$logbase-output.txt" || true
  if [ $rc -ne 0 ]; then
    echo "--- failures (full log: $dir/meson-logs/$logbase.txt) ---"
    sed -n '/^Summary of Failures/,$p' "$dir/$logbase-output.txt"
    failed_steps=$((failed_steps + 1))
  fi
  logs+=("$dir/meson-logs/$logbase.junit.xml")
}

run_tests "$builddir" testlog "release build" ${MSECGW_TEST_ARGS:-}

# The robustness runs share one sanitizer build, build-fuzz/ (clang, ASan + UBSan, libFuzzer, tests
# on; a second, gcc, sanitizer build cost CI ~10 CPU-minutes for nothing more). There the unit suite
# and the integration subset run under ASan + UBSan (MSECGW_SANITIZE=0 leaves them out), and the fuzz
# suite replays each corpus and fuzzes each target (MSECGW_FUZZ=0 leaves it out).
if [ "${MSECGW_SANITIZE:-1}" != 0 ] || [ "${MSECGW_FUZZ:-1}" != 0 ]; then
  if scripts/fuzz.sh --build-only && { meson compile -C "$fuzzdir" >/dev/null || meson compile -C "$fuzzdir"; }; then
    # Leak detection stays on and needs no suppression for DPDK's EAL (docs/robustness.md).
    export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1"
    export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
    if [ "${MSECGW_SANITIZE:-1}" != 0 ]; then
      run_tests "$fuzzdir" asan-unit "ASan + UBSan: unit suite" --no-rebuild --suite unit
      run_tests "$fuzzdir" asan-integration "ASan + UBSan: integration subset" --no-rebuild "${asan_integration[@]}"
    fi
    if [ "${MSECGW_FUZZ:-1}" != 0 ]; then
      run_tests "$fuzzdir" fuzz "ASan + UBSan: corpus replays, libFuzzer ${MSECGW_FUZZ_SECONDS:-20} s per target" \
        --no-rebuild --suite fuzz --num-processes 1
    fi
    unset ASAN_OPTIONS UBSAN_OPTIONS
  else
    echo "test.sh: sanitizer/libFuzzer build ($fuzzdir, clang) failed"
    failed_steps=$((failed_steps + 1))
  fi
fi

scripts/count_tests.py "${logs[@]}"
count_rc=$?
[ $failed_steps -eq 0 ] && [ $count_rc -eq 0 ]
