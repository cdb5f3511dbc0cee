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

bench=esp_bench
. perf/dpdk_memory.sh

exec "$py" perf/esp_bench.py --msecgw "$msecgw" --testpmd "$testpmd" --cryptoperf "$cryptoperf" \
  --mem "$mem" --mem-note "$note" --out perf/results/esp.json "$@"
