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

# Hugepages when we can (root): 512 x 2 MB, hugetlbfs on /dev/hugepages. Otherwise --no-huge.
mem="--no-huge -m 1024"
note="no hugepages (--no-huge -m 1024, 4 KB pages)"
if [ "${NO_HUGE:-0}" != 1 ] && [ "$(id -u)" = 0 ]; then
  if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt 512 ]; then
    echo 512 > /proc/sys/vm/nr_hugepages 2>/dev/null || true
  fi
  if ! grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts; then
    mkdir -p /dev/hugepages
    mount -t hugetlbfs none /dev/hugepages 2>/dev/null || true
  fi
  free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
  size_kb=$(awk '/^Hugepagesize:/ {print $2}' /proc/meminfo)
  if grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts && [ "${free:-0}" -ge 192 ] && [ "${size_kb:-0}" = 2048 ]; then
    # --huge-unlink: the pages go back to the pool when each run exits.
    mem="-m 256 --huge-unlink"
    note="hugepages: 2 MB pages, ${free} free of $(cat /proc/sys/vm/nr_hugepages) (-m 256 --huge-unlink)"
  fi
fi
echo "bypass_bench: memory: $note"
[ "$mem" = "--no-huge -m 1024" ] && echo "bypass_bench: falling back to --no-huge (not root, or no hugepages could be reserved)"

exec "$py" perf/bypass_bench.py --msecgw "$msecgw" --testpmd "$testpmd" --mem "$mem" --mem-note "$note" \
  --out perf/results/bypass.json "$@"
