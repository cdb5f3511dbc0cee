#!/usr/bin/python3
"""Plots perf/lkh_bench --json output: single-leave rekey bytes and compute time against group
size (LKH vs naive unicast), and batch-rekey bytes against batch size.

    /usr/bin/python3 perf/lkh_plot.py perf/results/lkh.json docs/img/lkh_rekey_cost.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    with open(src) as f:
        data = json.load(f)
    sizes = data["sizes"]
    n = [s["n"] for s in sizes]
    fig, (size_ax, time_ax, batch_ax) = plt.subplots(1, 3, figsize=(15, 4.6))

    size_ax.loglog(n, [s["leave"]["bytes"] for s in sizes], "o-", label="LKH, one leave")
    size_ax.loglog(n, [s["join"]["bytes"] for s in sizes], "s-", label="LKH, one join")
    size_ax.loglog(n, [s["naive"]["bytes"] for s in sizes], "^--", label="naive: new key to each member")
    size_ax.axhline(1536, color="grey", linestyle=":", label="target 1.5 KB")
    size_ax.set_xlabel("members n")
    size_ax.set_ylabel("rekey bytes (KD payloads)")
    size_ax.set_title("Rekey size")
    size_ax.legend(fontsize=8)

    time_ax.loglog(n, [s["leave"]["us"] for s in sizes], "o-", label="LKH, one leave")
    time_ax.loglog(n, [s["join"]["us"] for s in sizes], "s-", label="LKH, one join")
    time_ax.loglog(n, [s["naive"]["ms"] * 1000 for s in sizes], "^--", label="naive: n−1 key wraps")
    time_ax.axhline(1000, color="grey", linestyle=":", label="target 1 ms")
    time_ax.set_xlabel("members n")
    time_ax.set_ylabel("compute time (µs, one core)")
    time_ax.set_title("Rekey compute time")
    time_ax.legend(fontsize=8)

    for s in sizes:
        b = [x["leaves"] for x in s["batches"]]
        batch_ax.loglog(b, [x["bytes"] for x in s["batches"]], "o-", label=f"n = {s['n']:,}")
        batch_ax.loglog(b, [x * s["leave"]["bytes"] for x in b], ":", color=batch_ax.lines[-1].get_color())
    batch_ax.set_xlabel("leaves in one batch")
    batch_ax.set_ylabel("rekey bytes")
    batch_ax.set_title("Batch rekey (dotted: b single leaves)")
    batch_ax.legend(fontsize=8)

    fig.suptitle(f"LKH, arity {data['arity']}, {data['key_size']}-byte keys, parts for MTU {data['mtu']}")
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
