#!/usr/bin/env bash
# Runs the libFuzzer targets long: scripts/fuzz.sh [TARGET|all] [SECONDS] [JOBS]
# scripts/fuzz.sh --build-only: only configures and builds them (scripts/test.sh does that).
# Builds build-fuzz/ (clang, ASan + UBSan, -Dfuzz=true; tests on: scripts/test.sh runs its
# sanitizer suites there too) once, then fuzzes each target from its
# checked-in seed corpus (fuzz/corpus/TARGET, read only) into build-fuzz/corpus/TARGET, at nice 10.
# Crashes, leaks and hangs land in build-fuzz/artifacts/TARGET/; the exit status is non-zero then.
# Targets: packet ike config cli srcauth. Needs root (the packet target starts DPDK's EAL).
# MSECGW_FUZZ_RUNS=N also stops each target after N executions (acceptance: 10000000).
set -uo pipefail
cd "$(dirname "$0")/.."
target=${1:-all}
seconds=${2:-600}
jobs=${3:-1}
builddir=${MSECGW_FUZZ_BUILD_DIR:-build-fuzz}
mkdir -p "$builddir" && builddir=$(realpath "$builddir")
src=$PWD
targets=(packet ike config cli srcauth)
[ "$target" = all ] || [ "$target" = --build-only ] || targets=("$target")

if [ ! -f "$builddir/build.ninja" ]; then
  CXX=clang++ meson setup "$builddir" --buildtype=debugoptimized -Dfuzz=true -Dtests=true \
    -Db_sanitize=address,undefined -Db_lundef=false >/dev/null || exit 1
fi
if [ "$target" = --build-only ]; then
  targets=(packet ike config cli srcauth)
fi
ninja -C "$builddir" -j2 $(printf 'fuzz/fuzz_%s ' "${targets[@]}") >/dev/null || exit 1
[ "$target" = --build-only ] && exit 0

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
rc=0
for t in "${targets[@]}"; do
  mkdir -p "$builddir/corpus/$t" "$builddir/artifacts/$t"
  echo "fuzz.sh: $t for ${seconds}s"
  # With -jobs, libFuzzer writes fuzz-N.log into the working directory (and copies each into its
  # own output when the job ends): run in the target's artifact directory, remove them after.
  extra=()
  [ "$jobs" -gt 1 ] && extra=(-jobs="$jobs" -workers="$jobs")
  [ -n "${MSECGW_FUZZ_RUNS:-}" ] && extra+=(-runs="$MSECGW_FUZZ_RUNS")
  (cd "$builddir/artifacts/$t" && rm -f fuzz-*.log &&
    nice -n 10 "$builddir/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=2048 \
      "${extra[@]}" -print_final_stats=1 -artifact_prefix="$builddir/artifacts/$t/" \
      "$builddir/corpus/$t" "$src/fuzz/corpus/$t" >"$builddir/fuzz-$t.log" 2>&1
    rm -f fuzz-*.log)
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$builddir/fuzz-$t.log" | awk '{s += $2} END {print s + 0}')
  found=$(ls "$builddir/artifacts/$t" | grep -cE '^(crash|leak|timeout|oom|slow-unit)-')
  echo "fuzz.sh: $t: $execs executions, $found crash/leak/timeout artifacts (log: $builddir/fuzz-$t.log)"
  [ "$found" -eq 0 ] || rc=1
done
exit $rc
