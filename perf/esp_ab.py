#!/usr/bin/python3
"""A/B of two msecgw binaries on the ESP benchmark's traffic (perf/esp_bench.py): the two are run
alternately (A B B A A B ...) on the same pcap -> net_null, and each run's rate is packets per CPU
second of the worker thread, so a shared, noisy machine charges its load to neither build. Prints
every run and the median of the pair ratios B/A. Run as root (hugepages) from the repository root:

  /usr/bin/python3 perf/esp_ab.py --a build-a/app/msecgw/msecgw --b build-perf/app/msecgw/msecgw \
      --dir out --size 64 --pairs 4
"""
import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bypass_bench import make_pcap, median  # noqa: E402
from esp_bench import Bench  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--a", required=True, help="baseline msecgw binary")
    p.add_argument("--b", required=True, help="changed msecgw binary")
    p.add_argument("--dir", default="out", choices=["out", "in", "bnd"])
    p.add_argument("--size", type=int, default=64, help="clear frame size")
    p.add_argument("--pairs", type=int, default=4)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--window", type=int, default=3)
    p.add_argument("--lcores", default="0,1")
    p.add_argument("--mem", default="-m 256 --huge-unlink")
    p.add_argument("--nice", type=int, default=0,
                   help="run both builds at this nice value, in a session (autogroup) of their own (e.g. -15 "
                        "on a box busy with compiles, so that neither runs in slivers of CPU time with cold caches)"
                        "; see esp_bench.Bench.prio")
    a = p.parse_args()
    try:
        os.sched_setaffinity(0, {int(a.lcores.split(",")[0])})
    except OSError:
        pass
    a.msecgw = a.a
    b = Bench(a)
    pcap = os.path.join(b.work, "mcast_%d.pcap" % a.size)
    make_pcap(pcap, a.size)
    if a.dir in ("in", "bnd"):  # boundary: the same leaf ESP as inbound, sealed again for the trunk
        pcap, _ = b.make_esp_pcap(a.size, pcap)  # made by A: both builds must agree on the wire format
    rates = {"A": [], "B": []}
    for k in range(a.pairs):
        for which in ("AB" if k % 2 == 0 else "BA"):
            a.msecgw = a.a if which == "A" else a.b
            r = b.run_fwd("gw", a.dir, a.size, pcap)
            rates[which].append(r["pps_cpu"])
            print("  pair %d %s %.3f Mpps per CPU s (share %.2f)" % (k, which, r["pps_cpu"] / 1e6, r["cpu_share"]),
                  flush=True)
    ratios = [y / x for x, y in zip(rates["A"], rates["B"])]
    print("%s %d B: A median %.3f, B median %.3f Mpps per CPU s; B/A per pair %s, median %.3f; load %.2f"
          % (a.dir, a.size, median(rates["A"]) / 1e6, median(rates["B"]) / 1e6,
             " ".join("%.3f" % r for r in ratios), median(ratios), os.getloadavg()[0]))
    shutil.rmtree(b.work, ignore_errors=True)


if __name__ == "__main__":
    main()
