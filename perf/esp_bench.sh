#!/usr/bin/env bash
# ESP data-plane Mpps/Gbps per worker core of msecgw (outbound seal, inbound open) at 64/512/1420 B,
# each as a ratio to this machine's limit L = 1/(1/raw + 1/io) measured in the same run
# (raw: dpdk-test-crypto-perf AES-128-GCM, io: dpdk-testpmd io forwarding on the same vdevs), then a
# perf profile of msecgw at 64 B. Writes perf/results/esp.json. About 8 minutes. See perf/README.md.
#
#   perf/esp_bench.sh [extra esp_bench.py options, e.g. --repeats 6 --plot docs/img/esp_ratio.png]
#
# Environment: MSECGW_BUILD_DIR (default build), MSECGW_BIN, TESTPMD, CRYPTO_PERF, NO_HUGE=1.
set -euo pipefail
cd "$(dirname "$0")/.."
builddir=${MSECGW_BUILD_DIR:-build}
msecgw=${MSECGW_BIN:-$builddir/app/msecgw/msecgw}
testpmd=${TESTPMD:-$(command -v dpdk-testpmd || true)}
cryptoperf=${CRYPTO_PERF:-$(command -v dpdk-test-crypto-perf || true)}
py=/usr/bin/python3 # Debian's python: scapy (and matplotlib for --plot) live there

[ -x "$msecgw" ] || { echo "esp_bench: no $msecgw: run scripts/build.sh first" >&2; exit 1; }
[ -n "$testpmd" ] || { echo "esp_bench: dpdk-testpmd not found (set TESTPMD)" >&2; exit 1; }
[ -n "$cryptoperf" ] || { echo "esp_bench: dpdk-test-crypto-perf not found (set CRYPTO_PERF)" >&2; exit 1; }
"$py" -c 'import scapy' 2>/dev/null || { echo "esp_bench: $py has no scapy" >&2; exit 1; }

# The profile needs perf (Debian: linux-perf); install it as root if it is missing.
if ! command -v perf >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "esp_bench: installing linux-perf for the profile"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q linux-perf >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q linux-perf >/dev/null 2>&1; } ||
    echo "esp_bench: could not install linux-perf: the profile will be skipped"
fi

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
echo "esp_bench: memory: $note"
[ "$mem" = "--no-huge -m 1024" ] && echo "esp_bench: falling back to --no-huge (not root, or no hugepages could be reserved)"

exec "$py" perf/esp_bench.py --msecgw "$msecgw" --testpmd "$testpmd" --cryptoperf "$cryptoperf" \
  --mem "$mem" --mem-note "$note" --out perf/results/esp.json "$@"
