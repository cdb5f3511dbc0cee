#!/usr/bin/python3
"""Data plane under flood (issue [I]): what a packet of invalid inbound ESP costs the worker against
a packet of valid ESP, measured in the same run. Driven like perf/esp_bench.py (its Bench: msecgw,
one worker lcore, `net_pcap0,rx_pcap=F,infinite_rx=1` -> `net_null0`, the inbound SA with
replay_window 0), with F one of:

  valid        the 128 ESP frames msecgw made of the clear frames (opened and forwarded)
  bad_icv      the same, last ICV byte flipped                  (dropped: auth_failed)
  unknown_spi  the same, SPI changed to one no SA has           (dropped: esp_no_sa)
  truncated    cut inside the IV, IPv4 length/checksum fixed    (dropped: esp_malformed)

Cost = worker CPU seconds (schedstat) per packet port 0 received, over the window after the
warm-up; per repeat the four variants run back to back in a rotating order, and the ratio
invalid / valid is taken within the repeat; the table gives medians. Every run's --stats-json is
checked: a valid run drops nothing, an invalid run drops only under its reason.

  perf/esp_flood_bench.sh [--sizes 64,1420] [--repeats 3] [--out perf/results/esp_flood.json]
"""
import argparse
import datetime
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from bypass_bench import machine, make_pcap, median  # noqa: E402
from esp_bench import Bench, git_state  # noqa: E402
from esp_flood_test import other_spi, tampered_icv, truncated  # noqa: E402 (the functional test's forgeries)
from gwharness import read_pcap, write_pcap  # noqa: E402

VARIANTS = {
    "valid": (lambda f, k: f, None),
    "bad_icv": (lambda f, k: tampered_icv(f), "auth_failed"),
    "unknown_spi": (other_spi, "esp_no_sa"),
    "truncated": (lambda f, k: truncated(f), "esp_malformed"),
}


class FloodBench(Bench):
    counted = (0, "ipackets")  # every packet the worker took, forwarded or dropped


def check_drops(rec, reason):
    """'' when the run dropped exactly what its variant should, else what went wrong."""
    st = rec["gw_stats"]
    drops = st["drops"]
    if reason is None:
        return "" if not drops else "valid ESP dropped: %s" % drops
    if set(drops) != {reason}:
        return "dropped under %s, expected only %s" % (drops, reason)
    if st["opened"]:
        return "%d invalid packets opened" % st["opened"]
    return ""


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--msecgw", required=True)
    p.add_argument("--sizes", default="64,1420", help="clear frame sizes the ESP frames are made of")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--window", type=int, default=3)
    p.add_argument("--lcores", default="0,1")
    p.add_argument("--mem", default="--no-huge -m 1024")
    p.add_argument("--out", default="perf/results/esp_flood.json")
    a = p.parse_args()
    try:
        os.sched_setaffinity(0, {int(a.lcores.split(",")[0])})
    except OSError:
        pass
    b = FloodBench(a)
    sizes = [int(s) for s in a.sizes.split(",")]
    mach = machine()
    hz = mach["clock_hz"]
    print("esp_flood_bench: %s, %s CPUs; source %s" % (mach["cpu"], mach["cpus"], git_state()), flush=True)
    pcaps = {}
    for s in sizes:
        clear = os.path.join(b.work, "mcast_%d.pcap" % s)
        make_pcap(clear, s)
        esp, _ = b.make_esp_pcap(s, clear)
        frames = read_pcap(esp)
        for v, (make, _) in VARIANTS.items():
            pcaps[(v, s)] = os.path.join(b.work, "%s_%d.pcap" % (v, s))
            write_pcap(pcaps[(v, s)], [make(f, k) for k, f in enumerate(frames)])
    runs, problems = [], []
    names = list(VARIANTS)
    for rep in range(a.repeats):
        for s in sizes:
            order = names[rep % len(names):] + names[:rep % len(names)]
            line = []
            for v in order:
                for attempt in range(3):  # a worker starved of all CPU for the window is run again
                    try:
                        r = b.run_fwd("gw", "in", s, pcaps[(v, s)])
                        break
                    except RuntimeError as e:
                        if "no CPU time" not in str(e) or attempt == 2:
                            raise
                        print("    %s %d B: %s; again" % (v, s, e), flush=True)
                r.update({"variant": v, "repeat": rep})
                bad = check_drops(r, VARIANTS[v][1])
                if bad:
                    problems.append("%s %d B rep %d: %s" % (v, s, rep, bad))
                runs.append(r)
                line.append("%s %.2f" % (v, r["pps_cpu"] / 1e6))
            print("  rep %d %5d B  %s  [Mpps per CPU s] (shares %s)" % (
                rep, s, ", ".join(line), " ".join("%.2f" % r["cpu_share"] for r in runs[-len(order):])), flush=True)
    summary = []
    print("\nclear  variant       Mpps/CPU-s  cycles/pkt  cost / valid (median [min-max] of same-repeat ratios)")
    for s in sizes:
        per = {v: {r["repeat"]: r["pps_cpu"] for r in runs if r["variant"] == v and r["size"] == s} for v in names}
        for v in names:
            ratios = [per["valid"][k] / per[v][k] for k in per[v]]
            row = {"size": s, "variant": v, "mpps_cpu": median(list(per[v].values())) / 1e6,
                   "cycles_per_pkt": hz / median(list(per[v].values())), "cost_ratio": median(ratios),
                   "cost_ratio_min": min(ratios), "cost_ratio_max": max(ratios), "drop_reason": VARIANTS[v][1]}
            summary.append(row)
            print("%5d B %-12s %8.2f  %10.0f  %.2f [%.2f-%.2f]" % (s, v, row["mpps_cpu"], row["cycles_per_pkt"],
                                                                     row["cost_ratio"], row["cost_ratio_min"],
                                                                     row["cost_ratio_max"]))
    print("(cycles at the %.0f MHz TSC; ratio > 1 means the invalid packet costs more than a valid one)" % (hz / 1e6))
    for x in problems:
        print("PROBLEM: " + x)
    result = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "source": git_state(),
              "machine": mach, "commands": b.commands, "summary": summary, "problems": problems, "runs": runs,
              "method": "worker CPU seconds (schedstat) per packet received on port 0, window %d s after %.0f s "
                        "warm-up; ratio = valid rate / variant rate within a repeat" % (a.window, a.warmup)}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
    print("wrote %s" % a.out)
    shutil.rmtree(b.work, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
