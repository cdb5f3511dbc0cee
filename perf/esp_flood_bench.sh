#!/usr/bin/env bash
# Data plane under flood: worker CPU per packet of invalid inbound ESP (bad ICV, unknown SPI,
# truncated) against valid ESP, as same-run ratios (perf/esp_flood_bench.py). About 2 minutes per
# size with the defaults. Writes perf/results/esp_flood.json.
#
#   perf/esp_flood_bench.sh [--sizes 64,1420] [--repeats 3] [--window 3]
#
# Environment: MSECGW_BUILD_DIR (default build), MSECGW_BIN, NO_HUGE=1.
set -euo pipefail
cd "$(dirname "$0")/.."
builddir=${MSECGW_BUILD_DIR:-build}
msecgw=${MSECGW_BIN:-$builddir/app/msecgw/msecgw}
py=/usr/bin/python3 # Debian's python: scapy lives there
[ -x "$msecgw" ] || { echo "esp_flood_bench: no $msecgw: run scripts/build.sh first" >&2; exit 1; }

bench=esp_flood_bench
. perf/dpdk_memory.sh

exec "$py" perf/esp_flood_bench.py --msecgw "$msecgw" --mem "$mem" "$@"
