#!/usr/bin/python3
"""[D] source authentication in the gateway: Mpps of msecgw per worker core for each mode, at 64
and 1420 B, on the tagging and on the verifying side, as a ratio to ESP-only msecgw measured in the
same run; and the latency each mode adds (p50/p99).

Tagging side ("send"): the real binary like perf/esp_bench.py: port 0 = net_pcap of 128 clear
frames replayed forever (infinite_rx), port 1 = net_null; rate = sealed packets / run seconds of the
one worker (it busy-polls: one core, always busy).

Verifying side ("verify"): a live tagging gateway A (port 0 = the same endless pcap) sends over a
veth pair (net_af_packet on both ends, in a private network namespace) to a verifying gateway B
(port 1 = protected veth, port 0 = net_null). B's worker is not always busy (the veth carries less
than A can make), so its rate = packets verified (ESP only: opened; a mode: srcauth_released) / the
worker thread's CPU seconds (/proc/.../schedstat) x its busy share (busy_cycles / all cycles of its
polls, from --stats-json): packets per CPU second of work, not of empty polls.

Latency ("latency"): A's port 0 is a veth too; this script (re-run inside the namespace as a probe)
sends paced frames with CLOCK_REALTIME in the payload into A and takes B's clear output off another
veth with the kernel's receive timestamp (SO_TIMESTAMPNS): one-way A -> B latency, ESP-only and
each mode in the same run; "added" = mode - ESP-only at the same percentile.

    perf/srcauth_gw_bench.py --msecgw build/app/msecgw/msecgw [--seconds 4] [--sizes 64,1420]
        [--parts send,verify,latency] [--plot docs/img/srcauth_cost.png]
Needs root (network namespaces) for verify and latency.
"""
import argparse
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, HERE)
from gwharness import write_pcap  # noqa: E402
from traffic_paced import Netns  # noqa: E402
from esp_bench import find_thread, schedstat  # noqa: E402

# mode -> (tagging gateway's source_auth options, verifying gateway's, signing key algorithm).
# TESLA with 1 ms intervals so that what a verifier holds until disclosure (about (d + 1) intervals
# of traffic) stays inside hold_packets (at most 4096) at a veth's rate (~1 Mpps: d = 2, the default
# of --tesla-delay); both gateways share one clock (bound 0). On a loaded machine, where a gateway's
# worker may wait tens of ms for a CPU, packets arrive unsafe unless d is large (--tesla-delay 60),
# and then the hold overflows unless the rate is low.
_TESLA = "mode: tesla, interval_ms: 1, disclosure_delay: {d}, clock_offset_bound_ms: 0, chain_length: 100000"
_MF = "mode: manifest, manifest_packets: 64, manifest_max_age_ms: 5"
MODES = {"esp": ("", "", "ed25519"),
         "tesla": (_TESLA + ", bootstrap_period_ms: 200", _TESLA + ", hold_packets: 4096, hold_timeout_ms: 200", "ed25519"),
         "manifest": (_MF, _MF + ", hold_packets: 4096", "ed25519"),
         "manifest-ecdsa": (_MF, _MF + ", hold_packets: 4096", "ec"),
         "manifest-on-worker": (_MF + ", manifest_signer: worker", _MF + ", hold_packets: 4096", "ed25519"),
         "sign": ("mode: sign", "mode: sign", "ed25519"),
         "sign-ecdsa": ("mode: sign", "mode: sign", "ec")}
SO_TIMESTAMPNS = SCM_TIMESTAMPNS = 35  # Linux (asm-generic/socket.h); not in Python 3.11's socket module
SEND_ONLY = {"manifest-on-worker"}  # the verifying side is the same as manifest's
KEY = "11" * 20
SRC_NET = "10.1.0.0/24"


def frame(i, size, payload=None):
    eth = bytes.fromhex("01005e010101020000000101") + b"\x08\x00"
    if payload is None:
        payload = bytes((i + j) & 0xFF for j in range(size - 14 - 28))
    total = 28 + len(payload)
    ip = bytearray(bytes([0x45, 0]) + total.to_bytes(2, "big") + b"\0\0\x40\0" + bytes([16, 17]) + b"\0\0" +
                   bytes([10, 1, 0, 1 + i % 4]) + bytes([239, 1, 1, 1]))
    c = sum(int.from_bytes(ip[j:j + 2], "big") for j in range(0, 20, 2))
    c = (c & 0xFFFF) + (c >> 16)
    c = (c & 0xFFFF) + (c >> 16)
    ip[10:12] = (~c & 0xFFFF).to_bytes(2, "big")
    udp = (4000).to_bytes(2, "big") + (5000).to_bytes(2, "big") + (8 + len(payload)).to_bytes(2, "big") + b"\0\0"
    return eth + bytes(ip) + udp + payload


def keys(work, alg):
    key, pub = os.path.join(work, f"{alg}.pem"), os.path.join(work, f"{alg}.pub.pem")
    if not os.path.exists(key):
        gen = ["-algorithm", "ed25519"] if alg == "ed25519" else ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
        subprocess.run(["openssl", "genpkey", *gen, "-out", key], check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub], check=True, capture_output=True)
    return key, pub


def config(work, name, mode, out, mtu):
    """A gateway with one SA (outbound: tagging, inbound: verifying) and its policy; `mtu` of the
    protected port."""
    send, verify, alg = MODES[mode]
    key, pub = keys(work, alg)
    if out:
        sa = "{name: s, dir: out, spi: 0x1001, aead: aes-128-gcm, key: \"0x%s\"" % KEY
        auth = f", source_auth: {{{send}, signing_key: {key}}}" if send else ""
    else:
        sa = "{name: s, dir: in, spi: 0x1001, aead: aes-128-gcm, key: \"0x%s\", dst: 239.1.0.0/16, replay_window: 0" % KEY
        auth = f", source_auth: {{{verify}, trust: [{{sender: {SRC_NET}, public_key: {pub}}}]}}" if verify else ""
    cfg = os.path.join(work, f"{name}.yaml")
    with open(cfg, "w") as f:
        f.write(f"state_dir: {work}/state-{name}\nports:\n  - {{port: 0, side: clear}}\n  - {{port: 1, side: protected, mtu: {mtu}}}\n"
                f"sas:\n  - {sa}{auth}}}\npolicies:\n  - {{dir: {'out' if out else 'in'}, dst: 239.1.0.0/16, "
                "action: protect, sa: s}\n")
    return cfg


def cpu_until_exit(proc, comms, stop_when=None):
    """CPU seconds (schedstat) of the threads of proc named comms, read until proc exits (the
    threads are gone then: the last value read counts). Once stop_when() is true, proc gets a
    SIGTERM half a second later (it drains and exits)."""
    last = {c: 0 for c in comms}
    tasks = {}
    stop_at = None
    while proc.poll() is None:
        for c in comms:
            try:
                tasks[c] = tasks.get(c) or find_thread(proc.pid, c, timeout=0.01)
                last[c] = schedstat(tasks[c])[0] / 1e9
            except (OSError, RuntimeError):
                pass
        if stop_at is None and stop_when is not None and stop_when():
            stop_at = time.monotonic() + 0.5
        if stop_at is not None and time.monotonic() >= stop_at:
            proc.terminate()
            stop_at = float("inf")
        time.sleep(0.05)
    return last


WORKER, SIGNER = "rte-worker-1", "msecgw-signer"


def wait_polling(proc, timeout=120):
    """Until the worker of proc polls: its thread exists from EAL start but runs (and uses CPU) only
    once the gateway has made its state (a TESLA chain takes a while) and launched it."""
    task = find_thread(proc.pid, WORKER, proc, timeout=timeout)
    end = time.monotonic() + timeout
    while schedstat(task)[0] < 20_000_000:
        if proc.poll() is not None or time.monotonic() > end:
            raise RuntimeError(f"msecgw {proc.pid}: the worker does not run")
        time.sleep(0.02)


def clear_pcap(work, size):
    pcap = os.path.join(work, f"clear_{size}.pcap")
    if not os.path.exists(pcap):
        write_pcap(pcap, [frame(i, size) for i in range(128)])
    return pcap


def run(a, work, mode, size, n):
    """Tagging side alone: endless pcap in, net_null out. Rate = sealed packets / CPU seconds of
    the worker plus the signing thread (if any)."""
    cfg = config(work, mode, mode, out=True, mtu=a.mtu)
    pcap = clear_pcap(work, size)
    stats = os.path.join(work, "s.json")
    prefix = f"sd_srcauth_gw_bench_{os.getpid()}_{n}"
    cmd = [a.msecgw, "--no-huge", "-m", "1024", "--no-pci", "-l", a.lcores, "--file-prefix", prefix,
           "--vdev", f"net_pcap0,rx_pcap={pcap},infinite_rx=1", "--vdev", "net_null0,no-rx=1",
           "--", "--config", cfg, "--duration", str(a.seconds), "--stats-json", stats]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cpu = cpu_until_exit(p, (WORKER, SIGNER))
    out = p.stdout.read()
    shutil.rmtree("/var/run/dpdk/" + prefix, ignore_errors=True)
    if p.returncode != 0:
        raise RuntimeError(f"{mode} {size} B: msecgw exit {p.returncode}\n{out[-3000:]}")
    st = json.load(open(stats))
    cpu_s = cpu[WORKER] + cpu[SIGNER]
    return {"mpps": st["sealed"] / max(1e-9, cpu_s) / 1e6, "sealed": st["sealed"], "worker_cpu_s": cpu[WORKER],
            "signer_cpu_s": cpu[SIGNER], "wall_mpps": st["sealed"] / st["seconds"] / 1e6,
            "drops": {k: v for k, v in st["drops"].items() if v}, "cmd": " ".join(cmd)}


class Pair:
    """Tagging gateway A -> veth -> verifying gateway B in a private namespace. A's clear input is the
    endless pcap (`pcap`) or the veth sdA0 (fed from sdtx); B's clear output is net_null or the
    veth sdB0 (read on sdrx). Worker of A on the first CPU, of B on the last; main lcores on the first."""

    def __init__(self, a, work, tag):
        self.a, self.work, self.tag = a, work, tag
        self.ns = Netns.create(f"sd_{tag}")
        # distinct ifindex ranges per gateway: distinct af_packet fanout groups (see traffic_paced.Netns.veth)
        mtu = max(1500, a.mtu)
        self.ns.veth("sdA0", "sdtx", index=0x5100)
        self.ns.veth("sdA1", "sdB1", mtu=mtu, index=0x5101, peer_index=0x6101)
        self.ns.veth("sdB0", "sdrx", index=0x6100)
        cpus = sorted(os.sched_getaffinity(0))
        self.cpu_a, self.cpu_b = cpus[0], cpus[-1]

    def close(self):
        self.ns.delete()

    def start(self, name, cfg, vdevs, cpu, seconds):
        prefix = f"sd_srcauth_{name}_{os.getpid()}"
        stats = os.path.join(self.work, f"{name}.json")
        if os.path.exists(stats):
            os.unlink(stats)
        cmd = [self.a.msecgw, "--no-huge", "-m", "512", "--no-pci", "--lcores", f"0@{self.cpu_a},1@{cpu}",
               "--file-prefix", prefix, "--log-level", "lib.*:warning"]
        for v in vdevs:
            cmd += ["--vdev", v]
        cmd += ["--", "--config", cfg, "--duration", str(seconds), "--stats-json", stats]
        log = open(os.path.join(self.work, f"{name}.log"), "w")
        p = subprocess.Popen(self.ns.cmd(cmd), stdout=log, stderr=subprocess.STDOUT)
        p.sd = (prefix, stats, log, " ".join(cmd))
        return p

    def finish(self, p, what):
        prefix, stats, log, _ = p.sd
        p.wait(timeout=120)
        log.close()
        shutil.rmtree("/var/run/dpdk/" + prefix, ignore_errors=True)
        if p.returncode != 0 or not os.path.exists(stats):
            with open(log.name, errors="replace") as f:
                raise RuntimeError(f"{what}: msecgw exit {p.returncode}\n{f.read()[-3000:]}")
        with open(stats) as f:
            return json.load(f)

    def gateways(self, mode, size, seconds, live_input):
        """B (verifying), then once B's worker runs A (tagging; for `seconds`, or until stopped);
        returns when A's worker runs. B runs until stopped (SIGTERM: it drains and exits)."""
        a_in = "net_af_packet0,iface=sdA0,framecnt=4096" if live_input else \
            f"net_pcap0,rx_pcap={clear_pcap(self.work, size)},infinite_rx=1"
        b_out = "net_af_packet0,iface=sdB0,framecnt=4096" if live_input else "net_null0,no-rx=1"
        b = self.start("b", config(self.work, f"b_{mode}", mode, out=False, mtu=self.a.mtu),
                       [b_out, "net_af_packet1,iface=sdB1,framecnt=512"], self.cpu_b, 3600)
        wait_polling(b)
        a = self.start("a", config(self.work, f"a_{mode}", mode, out=True, mtu=self.a.mtu),
                       [a_in, "net_af_packet1,iface=sdA1,framecnt=4096"], self.cpu_a, seconds)
        wait_polling(a)
        return a, b

    def verify(self, mode, size, seconds):
        """B's verified packets per CPU second of busy polls."""
        a, b = self.gateways(mode, size, seconds, live_input=False)
        cpu = cpu_until_exit(b, (WORKER,), stop_when=lambda: a.poll() is not None)
        sa, sb = self.finish(a, f"A {mode} {size}"), self.finish(b, f"B {mode} {size}")
        lc = sb["lcores"][0]
        share = lc["busy_cycles"] / max(1, lc["busy_cycles"] + lc["idle_cycles"])
        cpu_s = cpu[WORKER]
        done = sb["opened"] if mode == "esp" else sb["srcauth_released"]
        # every data packet B opened, verified or not (source-auth drops included): an upper bound
        opened = sb["opened"]
        return {"mpps": done / max(1e-9, cpu_s * share) / 1e6, "verified": done,
                "mpps_opened": opened / max(1e-9, cpu_s * share) / 1e6, "busy_share": share, "cpu_s": cpu_s,
                "a_sealed": sa["sealed"], "b_rx": sb["rx_packets"],
                "drops_b": {k: v for k, v in sb["drops"].items() if v}, "cmd_b": b.sd[3]}

    def latency(self, mode, size, seconds, rate):
        a, b = self.gateways(mode, size, 3600, live_input=True)
        time.sleep(0.3)
        r = subprocess.run(self.ns.cmd(["/usr/bin/python3", os.path.abspath(__file__), "--probe", "--size", str(size),
                                        "--rate", str(rate), "--seconds", str(seconds)]),
                           capture_output=True, text=True, timeout=seconds + 60)
        a.terminate()
        self.finish(a, f"A {mode} {size}")
        b.terminate()
        sb = self.finish(b, f"B {mode} {size}")
        if r.returncode != 0:
            raise RuntimeError(f"probe: {r.stderr[-2000:]}")
        res = json.loads(r.stdout)
        res["drops_b"] = {k: v for k, v in sb["drops"].items() if v}
        return res


def probe(a):
    """Inside the namespace: paced frames with (sequence, CLOCK_REALTIME ns) into sdtx, received on
    sdrx with the kernel's timestamp; prints percentiles of the one-way latency as JSON."""
    rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    rx.bind(("sdrx", 0))
    rx.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    rx.settimeout(0.2)
    tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    tx.bind(("sdtx", 0))
    magic = b"SDLAT"
    sent, got = {}, []
    stop = threading.Event()

    def receive():
        while not stop.is_set():
            try:
                data, anc, _, _ = rx.recvmsg(2048, 64)
            except socket.timeout:
                continue
            off = 14 + 28
            if data[off:off + 5] != magic:
                continue
            seq, = struct.unpack_from("!Q", data, off + 5)
            t = next((struct.unpack("ll", d[:16]) for lvl, typ, d in anc
                      if lvl == socket.SOL_SOCKET and typ == SCM_TIMESTAMPNS), None)
            if t is not None:
                got.append((seq, t[0] * 1_000_000_000 + t[1]))

    th = threading.Thread(target=receive)
    th.start()
    pad = bytes(max(0, a.size - 14 - 28 - 13))
    n = int(a.rate * a.seconds)
    t0 = time.monotonic()
    for i in range(n):
        due = t0 + i / a.rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        ts = time.time_ns()
        try:
            tx.send(frame(i, a.size, magic + struct.pack("!Q", i) + pad))
            sent[i] = ts
        except OSError:
            pass
    time.sleep(1.5)
    stop.set()
    th.join()
    lat = sorted((t - sent[s]) / 1e3 for s, t in got if s in sent)

    def pct(q):
        return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")

    print(json.dumps({"sent": len(sent), "received": len(lat), "p50_us": pct(0.50), "p99_us": pct(0.99)}))
    return 0


def plot(results, path):
    """Cost per mode: ratio to ESP-only (tagging, verifying) at each size, and the added latency."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    modes = [m for m in MODES if m != "esp" and any(r["mode"] == m for r in results)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    bars = [(part, size) for part in ("send", "verify") for size in sorted({r["size"] for r in results})]
    width = 0.8 / max(1, len(bars))
    for k, (part, size) in enumerate(bars):
        vals = [next((r["ratio_to_esp"] for r in results if r["part"] == part and r["size"] == size and r["mode"] == m),
                     float("nan")) for m in modes]
        ax.bar([i + k * width for i in range(len(modes))], vals, width, label=f"{part} {size} B")
    for target, m in ((0.75, "tesla"), (0.50, "manifest")):
        if m in modes:
            i = modes.index(m)
            ax.hlines(target, i - 0.1, i + 0.9, colors="k", linestyles="dashed")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(modes))], modes, rotation=20, fontsize=8)
    ax.set_ylabel("Mpps per core / ESP-only (same run)")
    ax.set_ylim(0, 1.05)
    ax.set_title("Throughput kept (dashed: issue targets at 1420 B)")
    ax.legend(fontsize=8)
    ax = axes[1]
    lat = [r for r in results if r["part"] == "latency"]
    sizes = sorted({r["size"] for r in lat})
    for k, size in enumerate(sizes):
        for j, q in enumerate(("p50", "p99")):
            vals = [next((r[f"added_{q}_us"] / 1e3 for r in lat if r["size"] == size and r["mode"] == m), float("nan"))
                    for m in modes]
            ax.bar([i + (2 * k + j) * 0.2 for i in range(len(modes))], vals, 0.2, label=f"{q} {size} B")
    ax.set_xticks([i + 0.3 for i in range(len(modes))], modes, rotation=20, fontsize=8)
    ax.set_ylabel("latency added vs ESP-only (ms)")
    ax.set_title("Latency added A -> B")
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=100)


def describe(r):
    """One line of the report."""
    head = f"{r['part']:8} {r['mode']:18} {r['size']:5} "
    drops = r.get("drops") or r.get("drops_b") or ""
    if r["part"] == "send":
        return (head + f"{r['mpps']:8.3f} Mpps/core ratio {r['ratio_to_esp']:5.2f}  cpu worker {r['worker_cpu_s']:.2f}s "
                f"signer {r['signer_cpu_s']:.2f}s {drops}")
    if r["part"] == "verify":
        return (head + f"{r['mpps']:8.3f} Mpps/core ratio {r['ratio_to_esp']:5.2f}  (all opened: {r['mpps_opened']:.3f}) "
                f"verified {r['verified']} "
                f"busy {r['busy_share']:.2f} cpu {r['cpu_s']:.2f}s {drops}")
    return (head + f"p50 {r['p50_us']:9.1f} us p99 {r['p99_us']:9.1f} us  added p50 {r['added_p50_us']:9.1f} "
            f"p99 {r['added_p99_us']:9.1f}  received {r['received']}/{r['sent']} {drops}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--msecgw")
    p.add_argument("--seconds", type=float, default=4)
    p.add_argument("--sizes", default="64,1420")
    p.add_argument("--lcores", default="0,1")
    p.add_argument("--parts", default="send,verify,latency")
    p.add_argument("--modes", default=",".join(MODES), help="esp first (the reference)")
    p.add_argument("--mtu", type=int, default=1500,
                   help="protected ports' MTU: at 1500, 1420 B packets with a TESLA or sign tag are fragmented")
    p.add_argument("--latency-rate", type=float, default=2000, help="probe frames per second")
    p.add_argument("--tesla-delay", type=int, default=2, help="TESLA disclosure delay d (1 ms intervals)")
    p.add_argument("--out", default="perf/results/srcauth_gw.json")
    p.add_argument("--plot", help="PNG of the cost per mode (from --out's results)")
    p.add_argument("--plot-only", action="store_true", help="only redraw --plot from --out")
    p.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, default=64, help=argparse.SUPPRESS)
    p.add_argument("--rate", type=float, default=1000, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.probe:
        return probe(a)
    if a.plot_only:
        with open(a.out) as f:
            plot(json.load(f), a.plot)
        return 0
    parts = a.parts.split(",")
    MODES["tesla"] = tuple(m.format(d=a.tesla_delay) for m in MODES["tesla"])
    work = tempfile.mkdtemp(prefix="sd_srcauth_gw_bench_")
    results = []
    pair = Pair(a, work, str(os.getpid())) if "verify" in parts or "latency" in parts else None
    try:
        counter = iter(range(1, 1 << 30))
        measure = {"send": lambda mode, size: run(a, work, mode, size, next(counter)),
                   "verify": lambda mode, size: pair.verify(mode, size, a.seconds),
                   "latency": lambda mode, size: pair.latency(mode, size, a.seconds, a.latency_rate)}
        for size in (int(s) for s in a.sizes.split(",")):
            for part in (p for p in ("send", "verify", "latency") if p in parts):
                base = None
                for mode in a.modes.split(","):
                    if part != "send" and mode in SEND_ONLY:
                        continue
                    r = measure[part](mode, size)
                    base = r if mode == "esp" else base
                    r.update({"part": part, "mode": mode, "size": size})
                    if part == "latency":
                        r.update({"added_p50_us": r["p50_us"] - base["p50_us"],
                                  "added_p99_us": r["p99_us"] - base["p99_us"]})
                    else:
                        r["ratio_to_esp"] = r["mpps"] / base["mpps"]
                    results.append(r)
                    print(describe(r), flush=True)
    finally:
        if pair:
            pair.close()
        shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)
    if a.plot:
        plot(results, a.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
