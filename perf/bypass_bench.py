#!/usr/bin/python3
"""Bypass forwarding rate of msecgw against dpdk-testpmd io forwarding, on the same vdevs, in the
same run, as a ratio. Driven by perf/bypass_bench.sh (which sets up hugepages); see perf/README.md.

Both programs get the same EAL arguments: lcores 0,1 (lcore 0 = main/control, lcore 1 = the one
worker / forwarding core), port 0 = net_pcap replaying a pcap of multicast UDP frames forever
(infinite_rx=1), port 1 = net_null with no-rx=1 (a sink that never produces packets, so the
reverse direction of testpmd's io forwarding and msecgw's protected-side poll stay empty).

The rate of both is measured the same way, from outside: DPDK telemetry (/ethdev/stats,1 over the
process's dpdk_telemetry.v2 socket) is sampled once a second; after a warm-up the packets the sink
port transmitted over a fixed window, divided by the window's length, is the forwarding rate.
Each program's own figure is recorded beside it as a cross-check (testpmd's per-second Tx-pps of
port 1; msecgw's --stats-json tx_packets / seconds, which includes start-up and drain).

Runs alternate (testpmd, msecgw, msecgw, testpmd, ... per frame size and repeat) so slow drifts of a
shared machine hit both alike. The ratio reported is the median over repeats of the ratio of each
back-to-back pair (msecgw / testpmd); the median rate of each program and the ratio of those medians
are reported beside it. A size whose pair ratios spread more than 10 % or whose per-second rates
vary more than 10 % within a run is flagged as noisy. Since noise only ever slows a run down, the
best one-second rate of each program over all its runs, and their ratio, are printed as a second view.
"""
import argparse
import datetime
import glob
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time


# ------------------------------------------------------------------------------ traffic

def mcast_mac(group):
    o = [int(x) for x in group.split(".")]
    return "01:00:5e:%02x:%02x:%02x" % (o[1] & 0x7F, o[2], o[3])


def make_pcap(path, size, count=128):
    """`count` IPv4 multicast UDP frames of exactly `size` bytes (Ethernet header to end of
    payload, no FCS): 16 senders 10.1.0.1-16 to 32 groups in 239.1.0.0/16."""
    from scapy.all import Ether, IP, UDP, Raw, wrpcap  # noqa: E402 (slow import, only here)
    frames = []
    for i in range(count):
        src = "10.1.0.%d" % (1 + i % 16)
        grp = "239.1.%d.%d" % ((i // 8) % 4, 1 + i % 8)
        f = Ether(src="02:00:00:00:00:01", dst=mcast_mac(grp)) / IP(src=src, dst=grp, ttl=16)
        f = f / UDP(sport=5000 + i % 16, dport=5004)
        pad = size - len(f)
        if pad < 0:
            raise SystemExit("frame size %d is below the %d bytes of headers" % (size, len(f)))
        f = f / Raw(bytes(pad))
        assert len(bytes(f)) == size
        frames.append(f)
    wrpcap(path, frames)


GW_CONFIG = """# bypass benchmark: port 0 clear (net_pcap), port 1 protected (net_null)
state_dir: {state}
ports:
  - {{port: 0, side: clear}}
  - {{port: 1, side: protected, mtu: 1500}}
policies:
  - {{dir: out, dst: 239.1.0.0/16, action: bypass}}
  - {{dir: in, dst: 239.1.0.0/16, action: bypass}}
"""


# ------------------------------------------------------------------------------ telemetry

class Telemetry:
    """Minimal client of DPDK's telemetry v2 socket (one JSON reply per command)."""

    def __init__(self, path, proc, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError("process exited (rc %s) before its telemetry socket appeared" % proc.returncode)
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise RuntimeError("no telemetry socket at %s after %.0f s" % (path, timeout))
                time.sleep(0.05)
        self.max_len = json.loads(self.sock.recv(4096))["max_output_len"]

    def opackets(self, port):
        """(monotonic time of the reply, opackets of `port`) or (t, None) before the port is up."""
        return self.counter(port, "opackets")

    def counter(self, port, field):
        """(monotonic time of the reply, `field` of /ethdev/stats of `port`) or (t, None) before the port is up."""
        self.sock.send(b"/ethdev/stats,%d" % port)
        reply = json.loads(self.sock.recv(self.max_len + 1024))
        t = time.monotonic()
        stats = reply.get("/ethdev/stats")
        return t, (stats[field] if isinstance(stats, dict) else None)

    def close(self):
        self.sock.close()


def measure(tel, proc, warmup, window):
    """Waits for forwarding to start, skips `warmup` s, samples port 1 once a second for
    `window` s. Returns (rate over the window, [per-second rates])."""
    deadline = time.monotonic() + 30
    while True:
        t, c = tel.opackets(1)
        if c:
            break
        if proc.poll() is not None or t > deadline:
            raise RuntimeError("forwarding never started (port 1 transmitted nothing)")
        time.sleep(0.02)
    time.sleep(warmup)
    samples = [tel.opackets(1)]
    for k in range(1, int(window) + 1):
        time.sleep(max(0.0, samples[0][0] + k - time.monotonic()))
        samples.append(tel.opackets(1))
    (t0, c0), (t1, c1) = samples[0], samples[-1]
    per_sec = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(samples, samples[1:])]
    return (c1 - c0) / (t1 - t0), per_sec


# testpmd io forwarding, the I/O yardstick of both benchmarks
TESTPMD_IO_ARGS = ["--forward-mode=io", "--stats-period", "1", "--rxd=1024", "--txd=1024", "--burst=32",
                   "--total-num-mbufs=16384", "--no-mlockall"]


def run_sampled(cmd, prefix, log, sample, interrupt, cleanup):
    """Runs `cmd` (a DPDK program with EAL --file-prefix `prefix`, output into `log`), calls
    sample(tel, proc) with its telemetry socket, then ends it with SIGINT when `interrupt` (testpmd
    runs until told) or waits for it (msecgw has --duration); `cleanup(prefix)` removes its
    runtime files either way. Returns (what sample returned, the log text); raises with the
    log's tail when the program fails."""
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            tel = Telemetry("/var/run/dpdk/%s/dpdk_telemetry.v2" % prefix, proc, 60)
            try:
                got = sample(tel, proc)
            finally:
                tel.close()
            if interrupt:
                proc.send_signal(signal.SIGINT)
            rc = proc.wait(timeout=60)
        except BaseException:
            proc.kill()
            proc.wait()
            cleanup(prefix)
            sys.stderr.write("---- %s\n" % log + open(log).read()[-3000:])
            raise
    cleanup(prefix)
    text = open(log).read()
    if rc != 0:
        raise RuntimeError("%s exited %d; log %s:\n%s" % (os.path.basename(cmd[0]), rc, log, text[-3000:]))
    return got, text


# ------------------------------------------------------------------------------ runs

class Bench:
    def __init__(self, a):
        self.a = a
        self.work = tempfile.mkdtemp(prefix="msecgw_bypass_")
        self.n = 0
        self.commands = {}

    def eal(self, pcap):
        self.n += 1
        prefix = "msecgw_bb_%d_%d" % (os.getpid(), self.n)
        args = ["-l", self.a.lcores, "--no-pci", "--file-prefix", prefix] + self.a.mem.split()
        args += ["--vdev", "net_pcap0,rx_pcap=%s,infinite_rx=1" % pcap, "--vdev", "net_null0,no-rx=1"]
        return prefix, args

    def cleanup_prefix(self, prefix):
        shutil.rmtree("/var/run/dpdk/" + prefix, ignore_errors=True)
        for f in glob.glob("/dev/hugepages/%smap_*" % prefix):
            try:
                os.unlink(f)
            except OSError:
                pass

    def run(self, kind, size, pcap):
        prefix, eal = self.eal(pcap)
        log = os.path.join(self.work, "%s_%d_%d.log" % (kind, size, self.n))
        if kind == "testpmd":
            cmd = [self.a.testpmd] + eal + ["--"] + TESTPMD_IO_ARGS
        else:
            cfg = os.path.join(self.work, "bypass.yaml")
            with open(cfg, "w") as f:
                f.write(GW_CONFIG.format(state=os.path.join(self.work, "state")))
            stats = os.path.join(self.work, "stats_%d_%d.json" % (size, self.n))
            duration = self.a.warmup + self.a.window + 2
            cmd = [self.a.msecgw] + eal + ["--", "--config", cfg, "--duration", "%g" % duration,
                                          "--stats-json", stats]
        self.commands.setdefault(kind, " ".join(cmd))
        rec = {"kind": kind, "size": size}
        (rec["pps"], rec["per_second_pps"]), text = run_sampled(
            cmd, prefix, log, lambda tel, proc: measure(tel, proc, self.a.warmup, self.a.window),
            kind == "testpmd", self.cleanup_prefix)
        if kind == "testpmd":
            own = [int(x) for x in re.findall(r"NIC statistics for port 1 .*?Tx-pps:\s+(\d+)", text, re.S)]
            own = own[int(self.a.warmup) + 1:] or own
            rec["own_pps"] = statistics.median(own) if own else None
            rec["own_method"] = "median of testpmd's periodic Tx-pps of port 1 after warm-up"
        else:
            st = json.load(open(stats))
            rec["own_pps"] = st["tx_packets"] / st["seconds"]
            rec["own_method"] = "tx_packets / seconds of --stats-json (whole run, start-up and drain included)"
            rec["gw_stats"] = {k: st[k] for k in ("seconds", "rx_packets", "tx_packets", "bypassed", "drops_total")}
            rec["gw_stats"]["drops"] = {k: v for k, v in st["drops"].items() if v}
            lc = st["lcores"][0] if st.get("lcores") else {}
            rec["gw_stats"]["busy_polls"] = lc.get("busy_polls")
            rec["gw_stats"]["idle_polls"] = lc.get("idle_polls")
        return rec


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def clock_hz():
    try:
        out = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
        m = re.search(r"tsc: Detected ([\d.]+) MHz", out)
        if m:
            return float(m.group(1)) * 1e6
    except OSError:
        pass
    for line in open("/proc/cpuinfo"):
        if line.startswith("cpu MHz"):
            return float(line.split(":")[1]) * 1e6
    return float("nan")


def machine():
    info = {}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            info[k.strip()] = v.strip()
    except OSError:
        pass
    flags = info.get("Flags", "").split()
    return {
        "cpu": info.get("Model name", "?"),
        "cpus": info.get("CPU(s)", "?"),
        "hypervisor": info.get("Hypervisor vendor", "yes" if "hypervisor" in flags else "no"),
        "simd": [f for f in ("sse4_2", "avx2", "avx512f", "avx512bw", "avx512vl", "vaes", "vpclmulqdq") if f in flags],
        "clock_hz": clock_hz(),
        "kernel": os.uname().release,
    }


def plot(summary, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sizes = [s["size"] for s in summary]
    x = range(len(sizes))
    fig, ax = plt.subplots(figsize=(5.2, 3.0), dpi=100)
    w = 0.38
    tp = [s["testpmd_mpps"] for s in summary]
    gw = [s["msecgw_mpps"] for s in summary]
    ax.bar([i - w / 2 for i in x], tp, w, label="testpmd io", color="#8c8c8c")
    ax.bar([i + w / 2 for i in x], gw, w, label="msecgw bypass", color="#1f77b4")
    for i, s in enumerate(summary):
        ax.text(i + w / 2, gw[i], "%.2f×" % s["ratio"], ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(x))
    ax.set_xticklabels(["%d B" % s for s in sizes])
    ax.set_ylabel("Mpps, one worker core")
    ax.set_title("Bypass forwarding vs testpmd io (same run)", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    ax.set_ylim(0, max(tp + gw) * 1.18)
    fig.tight_layout()
    fig.savefig(path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--msecgw", required=True)
    p.add_argument("--testpmd", default=shutil.which("dpdk-testpmd") or "dpdk-testpmd")
    p.add_argument("--sizes", default="64,512,1420", help="frame sizes in bytes, without FCS")
    p.add_argument("--repeats", type=int, default=4, help="runs of each program per size (even: balanced order)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds skipped after forwarding starts")
    p.add_argument("--window", type=int, default=5, help="measured seconds per run")
    p.add_argument("--lcores", default="0,1", help="EAL -l: main lcore, then the one worker")
    p.add_argument("--mem", default="--no-huge -m 1024", help="EAL memory arguments")
    p.add_argument("--mem-note", default="", help="how memory was set up, for the report")
    p.add_argument("--out", default="perf/results/bypass.json")
    p.add_argument("--plot", default="", help="write a PNG bar chart here (needs python3-matplotlib)")
    a = p.parse_args()

    main_cpu = int(a.lcores.replace("-", ",").split(",")[0])
    try:  # keep this script (and its telemetry polling) off the worker's CPU
        os.sched_setaffinity(0, {main_cpu})
    except OSError:
        pass
    b = Bench(a)
    sizes = [int(s) for s in a.sizes.split(",")]
    pcaps = {}
    for s in sizes:
        pcaps[s] = os.path.join(b.work, "mcast_%d.pcap" % s)
        make_pcap(pcaps[s], s)
    mach = machine()
    print("bypass_bench: %s, %s CPUs, memory: %s" % (mach["cpu"], mach["cpus"], a.mem_note or a.mem))
    print("  %d repeat(s) per program and size, warm-up %.0f s, window %d s; work dir %s"
          % (a.repeats, a.warmup, a.window, b.work))
    runs = []
    t_start = time.monotonic()
    load_start = os.getloadavg()
    for rep in range(a.repeats):
        for s in sizes:
            order = ["testpmd", "msecgw"] if rep % 2 == 0 else ["msecgw", "testpmd"]
            pair = {}
            for kind in order:
                r = b.run(kind, s, pcaps[s])
                r["repeat"] = rep
                pair[kind] = r
                runs.append(r)
                print("  rep %d %5d B  %-8s %7.3f Mpps  (own figure %7.3f)"
                      % (rep, s, kind, r["pps"] / 1e6, (r["own_pps"] or 0) / 1e6), flush=True)
            pair["msecgw"]["pair_ratio"] = pair["msecgw"]["pps"] / pair["testpmd"]["pps"]
    hz = mach["clock_hz"]
    summary = []
    for s in sizes:
        tp = [r["pps"] for r in runs if r["size"] == s and r["kind"] == "testpmd"]
        gw = [r["pps"] for r in runs if r["size"] == s and r["kind"] == "msecgw"]
        pr = [r["pair_ratio"] for r in runs if r["size"] == s and r["kind"] == "msecgw"]
        tpm, gwm = median(tp), median(gw)
        cvs = [statistics.pstdev(r["per_second_pps"]) / statistics.mean(r["per_second_pps"])
               for r in runs if r["size"] == s]
        summary.append({
            "size": s,
            "testpmd_mpps": tpm / 1e6,
            "msecgw_mpps": gwm / 1e6,
            "ratio": median(pr),
            "pair_ratio_min": min(pr),
            "pair_ratio_max": max(pr),
            "ratio_of_medians": gwm / tpm,
            "testpmd_cycles_per_pkt": hz / tpm,
            "msecgw_cycles_per_pkt": hz / gwm,
            "extra_cycles_per_pkt": hz / gwm - hz / tpm,
            "max_per_second_cv": max(cvs),
            # Noise only ever slows a run down: the best 1 s of all runs approximates the
            # undisturbed rate; its ratio is a second, noise-robust view of the same comparison.
            "testpmd_peak_mpps": max(x for r in runs if r["size"] == s and r["kind"] == "testpmd"
                                     for x in r["per_second_pps"]) / 1e6,
            "msecgw_peak_mpps": max(x for r in runs if r["size"] == s and r["kind"] == "msecgw"
                                    for x in r["per_second_pps"]) / 1e6,
            "msecgw_gbps": gwm * s * 8 / 1e9,
            "testpmd_runs_mpps": [x / 1e6 for x in tp],
            "msecgw_runs_mpps": [x / 1e6 for x in gw],
        })
    print()
    print("frame   testpmd io  msecgw bypass  ratio gw/tp          ratio of   cycles/pkt               msecgw")
    print(" size   Mpps/core   Mpps/core      pairs: med [min-max] medians    testpmd msecgw  extra   Gbit/s")
    noisy = []
    for r in summary:
        print("%5d B  %8.2f    %8.2f       %.3f [%.3f-%.3f]   %.3f    %7.1f %6.1f  %6.1f   %6.2f"
              % (r["size"], r["testpmd_mpps"], r["msecgw_mpps"], r["ratio"], r["pair_ratio_min"],
                 r["pair_ratio_max"], r["ratio_of_medians"], r["testpmd_cycles_per_pkt"],
                 r["msecgw_cycles_per_pkt"], r["extra_cycles_per_pkt"], r["msecgw_gbps"]))
        r["peak_ratio"] = r["msecgw_peak_mpps"] / r["testpmd_peak_mpps"]
        spread = (r["pair_ratio_max"] - r["pair_ratio_min"]) / r["ratio"]
        if spread > 0.10 or r["max_per_second_cv"] > 0.10:
            noisy.append("%d B (pair ratios spread %.0f%%, per-second rates vary up to %.0f%%)"
                         % (r["size"], 100 * spread, 100 * r["max_per_second_cv"]))
    print("(Mpps: packets port 1 transmitted in the %d s window after a %.0f s warm-up, from DPDK telemetry,"
          % (a.window, a.warmup))
    print(" median of %d runs, one worker core each; ratio: median of the per-pair msecgw/testpmd ratios;"
          % a.repeats)
    print(" cycles/pkt = %.0f MHz TSC / rate; extra = msecgw - testpmd, the gateway's own work per packet)"
          % (hz / 1e6))
    print("best 1 s of all runs (noise only slows down):  "
          + "   ".join("%d B: %.2f / %.2f Mpps = %.3f" % (r["size"], r["msecgw_peak_mpps"], r["testpmd_peak_mpps"],
                                                         r["peak_ratio"]) for r in summary))
    load_end = os.getloadavg()
    print("load average %.2f at start, %.2f at end; total time %.0f s"
          % (load_start[0], load_end[0], time.monotonic() - t_start))
    for n in noisy:
        print("WARNING: noisy measurement at %s: the machine is busy, rerun when it is quieter" % n)
    result = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": mach,
        "memory": a.mem_note or a.mem,
        "method": {
            "rate": "DPDK telemetry /ethdev/stats,1 opackets sampled each second; rate = packets over the "
                    "window / window length after the warm-up",
            "warmup_s": a.warmup, "window_s": a.window, "repeats": a.repeats,
            "order": "per repeat and size: testpmd then msecgw on even repeats, msecgw then testpmd on odd",
            "ratio": "median over repeats of msecgw/testpmd of the two back-to-back runs",
        },
        "load_average": {"start": load_start, "end": load_end},
        "noisy": noisy,
        "commands": b.commands,
        "summary": summary,
        "runs": runs,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
    print("wrote %s" % a.out)
    if a.plot:
        try:
            plot(summary, a.plot)
            print("wrote %s" % a.plot)
        except ImportError:
            print("no matplotlib for /usr/bin/python3 (apt-get install python3-matplotlib): plot skipped")
    shutil.rmtree(b.work, ignore_errors=True)


if __name__ == "__main__":
    main()
