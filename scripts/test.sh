#!/usr/bin/env bash
# Installs what is missing, builds, runs every test (unit + integration on DPDK vdevs).
# The last line is always `tests: N passed, N failed`; exit status is non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
builddir=${MSECGW_BUILD_DIR:-build}

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
rm -f "$builddir/meson-logs/testlog.junit.xml"
meson test -C "$builddir" --print-errorlogs --num-processes 2 ${MSECGW_TEST_ARGS:-} >"$builddir/test-output.txt" 2>&1
meson_rc=$?
grep -E '^ *[0-9]+/[0-9]+ ' "$builddir/test-output.txt" || true
if [ $meson_rc -ne 0 ]; then
  echo "--- failures (full log: $builddir/meson-logs/testlog.txt) ---"
  sed -n '/^Summary of Failures/,$p' "$builddir/test-output.txt"
fi
scripts/count_tests.py "$builddir/meson-logs/testlog.junit.xml"
count_rc=$?
[ $meson_rc -eq 0 ] && [ $count_rc -eq 0 ]
