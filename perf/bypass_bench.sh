#!/usr/bin/env bash
# Bypass forwarding Mpps per worker core: msecgw vs dpdk-testpmd io forwarding on the same vdevs
# (net_pcap infinite_rx -> net_null), alternated in the same run, reported as a ratio.
# Writes perf/results/bypass.json. Takes about 3.5 minutes with the defaults (4 repeats). See perf/README.md.
#
#   perf/bypass_bench.sh [extra bypass_bench.py options, e.g. --repeats 5 --plot docs/img/bypass_ratio.png]
#
# Environment: MSECGW_BUILD_DIR (default build), MSECGW_BIN, TESTPMD, NO_HUGE=1 (skip hugepages).
set -euo pipefail
cd "$(dirname "$0")/.."
builddir=${MSECGW_BUILD_DIR:-build}
msecgw=${MSECGW_BIN:-$builddir/app/msecgw/msecgw}
testpmd=${TESTPMD:-$(command -v dpdk-testpmd || true)}
py=/usr/bin/python3 # Debian's python: scapy (and matplotlib for --plot) live there

[ -x "$msecgw" ] || { echo "bypass_bench: no $msecgw: run scripts/build.sh first" >&2; exit 1; }
[ -n "$testpmd" ] || { echo "bypass_bench: dpdk-testpmd not found (set TESTPMD)" >&2; exit 1; }
"$py" -c 'import scapy' 2>/dev/null || { echo "bypass_bench: $py has no scapy" >&2; exit 1; }

bench=bypass_bench
. perf/dpdk_memory.sh

exec "$py" perf/bypass_bench.py --msecgw "$msecgw" --testpmd "$testpmd" --mem "$mem" --mem-note "$note" \
  --out perf/results/bypass.json "$@"
