#!/usr/bin/python3
"""ESP data-plane rate of msecgw (outbound seal, inbound open, boundary re-encryption) per worker
core, as a ratio to this machine's limit L = 1 / (1/raw + 1/io), everything measured in the same
run (issue [B], acceptance 5). Boundary (`--dirs bnd`, issue [C] acceptance 4): open under one
region's SA and seal under another's in one pass, against L2 = 1 / (1/raw decrypt + 1/raw encrypt
+ 1/io). Driven by perf/esp_bench.sh (which sets up hugepages); see perf/README.md.

  raw  dpdk-test-crypto-perf, AES-128-GCM AEAD, throughput test, one worker lcore, on a crypto
       vdev (crypto_aesni_gcm and crypto_aesni_mb are both measured; the faster one, per direction
       and size, defines L), buffer = the ESP-encrypted length = frame - 12 B (IPv4: the inner IP
       packet + 2 trailer bytes), encrypt for outbound, decrypt for inbound.
  io   dpdk-testpmd io forwarding on the same vdevs as the gateway (same pcap -> net_null).
  gw   msecgw, one worker lcore, PROTECT policy (outbound) or an inbound SA with replay_window: 0.

Every program gets `-l 0,1 --no-pci --vdev net_pcap0,rx_pcap=F.pcap,infinite_rx=1 --vdev
net_null0,no-rx=1` (crypto-perf: the crypto vdev instead of the ports); lcore 1 is the one worker.
Outbound F holds clear multicast frames of the nominal size; inbound F holds the ESP frames msecgw
makes of them (generated at start by msecgw itself, net_pcap tx_pcap), so an inbound "64 B" row
is 118 B ESP frames carrying the 64 B clear frames.

Rates are per second of CPU time the worker thread actually got. The machine is shared (2 vCPUs,
other jobs pinned to the same CPUs): a busy-polling worker may get half its CPU or less, which
wall-clock rates would charge to whichever program was unlucky. So the worker thread's run time is
read from /proc/<pid>/task/<tid>/schedstat (field 1: ns on CPU) at the same instants as the packet
counters, and rate = packets / CPU seconds. The wall-clock rates and the CPU share are kept beside
them in the JSON. For crypto-perf (whose own figure is wall-clock) the share is run / (run + wait)
of its worker over its busy life, and rate = its MOps / share.

Per repeat and (direction, size) the three measurements run back to back, in the order raw, io, gw
on even repeats and gw, io, raw on odd ones. Each repeat gives L and a pair ratio gw / L; the
table gives medians. A profile (perf record on the worker thread) of msecgw at 64 B in both
directions follows unless --no-profile.
"""
import argparse
import datetime
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bypass_bench import TESTPMD_IO_ARGS, Telemetry, machine, make_pcap, median, run_sampled  # noqa: E402 (shared helpers)

# The embedded default's published demo key (key || salt): never for real traffic.
KEY = "0x000102030405060708090a0b0c0d0e0fdeadbeef"
SPI = "0x00001001"
ESP_FRAME_EXTRA = 14 + 20 + 8 + 8 + 16  # Ethernet + outer IPv4 + SPI/seq + IV + ICV around the encrypted part

OUT_CONFIG = """# esp benchmark, outbound: port 0 clear (net_pcap), port 1 protected (net_null)
state_dir: {state}
ports:
  - {{port: 0, side: clear}}
  - {{port: 1, side: protected, mtu: 1500}}
sas:
  - {{name: bench-out, dir: out, spi: {spi}, aead: aes-128-gcm, key: "{key}"}}
policies:
  - {{dir: out, dst: 239.1.0.0/16, action: protect, sa: bench-out}}
"""

IN_CONFIG = """# esp benchmark, inbound: port 0 protected (net_pcap of ESP), port 1 clear (net_null)
state_dir: {state}
ports:
  - {{port: 0, side: protected, mtu: 1500}}
  - {{port: 1, side: clear}}
sas:
  # replay_window 0: the pcap replays the same sequence numbers forever
  - {{name: bench-in, dir: in, spi: {spi}, aead: aes-128-gcm, key: "{key}", replay_window: 0}}
policies:
  - {{dir: in, dst: 239.1.0.0/16, action: protect, sa: bench-in}}
"""

BND_CONFIG = """# esp benchmark, boundary: port 0 protected in region leaf (net_pcap of ESP), port 1 protected
# in region trunk (net_null): open under bench-in, seal again under bench-trunk in one pass
state_dir: {state}
regions: [leaf, trunk]
ports:
  - {{port: 0, side: protected, mtu: 1500, region: leaf}}
  - {{port: 1, side: protected, mtu: 1500, region: trunk}}
sas:
  - {{name: bench-in, dir: in, spi: {spi}, aead: aes-128-gcm, key: "{key}", replay_window: 0, region: leaf}}
  - {{name: bench-trunk, dir: out, spi: 0x00007001, aead: aes-128-gcm, key: "{trunk_key}", region: trunk}}
policies:
  - {{dir: in, region: leaf, dst: 239.1.0.0/16, action: protect, sa: bench-in}}
  - {{dir: out, region: trunk, dst: 239.1.0.0/16, action: protect, sa: bench-trunk}}
"""
TRUNK_KEY = "0x202122232425262728292a2b2c2d2e2f30313233"

DIRS = {"out": "outbound (clear -> ESP, seal)", "in": "inbound (ESP -> clear, open)",
        "bnd": "boundary (ESP -> ESP, open + seal)"}
# The crypto each direction does per packet: raw crypto-perf runs per operation.
RAW_OPS = {"out": ("encrypt",), "in": ("decrypt",), "bnd": ("decrypt", "encrypt")}


def esp_cipher_len(size):
    """What GCM really encrypts for a clear IPv4 frame of `size` B: inner + pad + 2, 4-aligned."""
    inner = size - 14
    return (inner + 2 + 3) // 4 * 4


def git_state():
    """HEAD of the source tree and the code directories (lib/*, app/*) that differ from it."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def git(*args):
        return subprocess.run(["git", "-C", root] + list(args), capture_output=True, text=True).stdout.split()

    try:
        head = git("rev-parse", "--short", "HEAD")
        files = git("diff", "--name-only", "HEAD", "--", "lib", "app") + \
            git("ls-files", "-o", "--exclude-standard", "--", "lib", "app")
    except OSError:
        return "?"
    dirs = sorted({"/".join(f.split("/")[:2]) for f in files})
    return (head[0] if head else "?") + (" + local changes in " + ", ".join(dirs) if dirs else "")


# ------------------------------------------------------------------------------ worker accounting

def find_worker(pid, lcore, proc=None, timeout=30.0):
    """/proc path of the thread DPDK runs lcore `lcore` on (named rte-worker-N)."""
    return find_thread(pid, "rte-worker-%d" % lcore, proc, timeout)


def find_thread(pid, name, proc=None, timeout=30.0):
    """/proc path of the thread of process `pid` named `name`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for d in glob.glob("/proc/%d/task/*" % pid):
            try:
                with open(d + "/comm") as f:
                    if f.read().strip() == name:
                        return d
            except OSError:
                pass
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.01)
    raise RuntimeError("no thread %s in process %d" % (name, pid))


def schedstat(task):
    """(ns on CPU, ns waiting on a run queue) of a thread."""
    with open(task + "/schedstat") as f:
        run, wait, _ = f.read().split()
    return int(run), int(wait)


# ------------------------------------------------------------------------------ runs

class Bench:
    def __init__(self, a):
        self.a = a
        self.work = tempfile.mkdtemp(prefix="msecgw_esp_")
        self.n = 0
        self.commands = {}
        lc = [int(x) for x in a.lcores.split(",")]
        self.main_lcore, self.worker_lcore = lc[0], lc[1]

    def prefix(self):
        self.n += 1
        return "msecgw_eb_%d_%d" % (os.getpid(), self.n)

    def prio(self, cmd):
        """cmd, run at --nice N (if given) in a session of its own with that nice for its autogroup:
        with autogroup scheduling plain nice only ranks threads within one session, and every
        other engineer's session gets an equal share of the CPU. exec keeps the pid."""
        n = getattr(self.a, "nice", 0)
        if not n:
            return cmd
        return ["setsid", "sh", "-c", 'echo %d > /proc/self/autogroup && exec nice -n %d "$@"' % (n, n), "sh"] + cmd

    def eal(self, prefix, vdevs):
        args = ["-l", self.a.lcores, "--no-pci", "--file-prefix", prefix] + self.a.mem.split()
        for v in vdevs:
            args += ["--vdev", v]
        return args

    def port_vdevs(self, pcap, tx_pcap=None, infinite=True):
        rx = "net_pcap0,rx_pcap=%s" % pcap + (",infinite_rx=1" if infinite else "")
        return [rx, ("net_pcap1,tx_pcap=%s" % tx_pcap) if tx_pcap else "net_null0,no-rx=1"]

    def cleanup_prefix(self, prefix):
        shutil.rmtree("/var/run/dpdk/" + prefix, ignore_errors=True)
        for f in glob.glob("/dev/hugepages/%smap_*" % prefix):
            try:
                os.unlink(f)
            except OSError:
                pass

    def config(self, d):
        path = os.path.join(self.work, "%s.yaml" % d)
        if not os.path.exists(path):
            text = {"out": OUT_CONFIG, "in": IN_CONFIG, "bnd": BND_CONFIG}[d].format(
                state=os.path.join(self.work, "state_" + d), spi=SPI, key=KEY, trunk_key=TRUNK_KEY)
            with open(path, "w") as f:
                f.write(text)
        return path

    # -------------------------------------------------------------- traffic

    def make_esp_pcap(self, size, clear_pcap):
        """Runs msecgw outbound once over the 128 clear frames and keeps what it transmits."""
        out = os.path.join(self.work, "esp_%d.pcap" % size)
        prefix = self.prefix()
        cmd = [self.a.msecgw] + self.eal(prefix, self.port_vdevs(clear_pcap, tx_pcap=out, infinite=False))
        cmd += ["--", "--config", self.config("out"), "--duration", "1"]
        r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        self.cleanup_prefix(prefix)
        if r.returncode != 0:
            raise RuntimeError("ESP pcap generation failed:\n" + (r.stdout + r.stderr)[-3000:])
        from scapy.all import rdpcap  # noqa: E402
        frames = rdpcap(out)
        lens = {len(bytes(f)) for f in frames}
        if len(frames) != 128 or lens != {ESP_FRAME_EXTRA + esp_cipher_len(size)}:
            raise RuntimeError("ESP pcap for %d B: %d frames of %s B" % (size, len(frames), sorted(lens)))
        return out, lens.pop()

    # -------------------------------------------------------------- one forwarding run

    def run_fwd(self, kind, d, size, pcap):
        """testpmd io or msecgw on pcap -> net_null; rate of port 1 per worker CPU second."""
        prefix = self.prefix()
        eal = self.eal(prefix, self.port_vdevs(pcap))
        log = os.path.join(self.work, "%s_%s_%d_%d.log" % (kind, d, size, self.n))
        stats = None
        if kind == "io":
            cmd = [self.a.testpmd] + eal + ["--"] + TESTPMD_IO_ARGS
        else:
            stats = os.path.join(self.work, "stats_%s_%d_%d.json" % (d, size, self.n))
            duration = self.a.warmup + self.a.window + 3
            cmd = [self.a.msecgw] + eal + ["--", "--config", self.config(d), "--duration", "%g" % duration,
                                          "--stats-json", stats]
        cmd = self.prio(cmd)
        self.commands.setdefault("%s_%s" % (kind, d), " ".join(cmd))
        rec = {"kind": kind, "dir": d, "size": size}

        def sample(tel, proc):
            return self.measure(tel, proc, find_worker(proc.pid, self.worker_lcore, proc))

        got, _ = run_sampled(cmd, prefix, log, sample, kind == "io", self.cleanup_prefix)
        rec.update(got)
        if stats:
            st = json.load(open(stats))
            rec["gw_stats"] = {k: st.get(k) for k in ("seconds", "rx_packets", "tx_packets", "sealed", "opened",
                                                      "drops_total")}
            rec["gw_stats"]["drops"] = {k: v for k, v in st["drops"].items() if v}
            if st["drops_total"]:
                print("    WARNING: msecgw dropped %d packets: %s" % (st["drops_total"], rec["gw_stats"]["drops"]))
        return rec

    # The counter rates are made of: packets port 1 transmitted (esp_flood_bench.py counts the
    # packets port 0 received instead: invalid ESP is dropped, nothing goes out).
    counted = (1, "opackets")

    def measure(self, tel, proc, task):
        """Waits for the counted packets to move, skips the warm-up, then samples (packets, worker
        CPU time) once a second over the window."""
        deadline = time.monotonic() + 30
        while True:
            t, c = tel.counter(*self.counted)
            if c:
                break
            if proc.poll() is not None or t > deadline:
                raise RuntimeError("forwarding never started (port %d %s stayed 0)" % self.counted)
            time.sleep(0.02)
        time.sleep(self.a.warmup)

        def sample():
            t, c = tel.counter(*self.counted)
            run, wait = schedstat(task)
            return t, c, run, wait

        s = [sample()]
        for k in range(1, int(self.a.window) + 1):
            time.sleep(max(0.0, s[0][0] + k - time.monotonic()))
            s.append(sample())
        (t0, c0, r0, _), (t1, c1, r1, _) = s[0], s[-1]
        if r1 <= r0:
            raise RuntimeError("the worker got no CPU time in the %d s window (machine overloaded): the machine is too busy to measure" % self.a.window)
        return {
            "pps_cpu": (c1 - c0) / ((r1 - r0) / 1e9),
            "pps_wall": (c1 - c0) / (t1 - t0),
            "cpu_share": (r1 - r0) / 1e9 / (t1 - t0),
            "per_second_pps_cpu": [(b[1] - a[1]) / max(1e-9, (b[2] - a[2]) / 1e9) for a, b in zip(s, s[1:])],
            "per_second_pps_wall": [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(s, s[1:])],
            "per_second_cpu_share": [(b[2] - a[2]) / 1e9 / (b[0] - a[0]) for a, b in zip(s, s[1:])],
        }

    # -------------------------------------------------------------- one crypto-perf run

    def run_raw(self, dev, d, size, op, attempts=3):
        """run_raw_once, again when a run gave no figure: a short run (0.5 s at 64 B) can end before
        its worker thread's schedstat was read once on a busy box."""
        for left in range(attempts - 1, -1, -1):
            try:
                return self.run_raw_once(dev, d, size, op)
            except RuntimeError as e:
                if left == 0:
                    raise
                print("  (raw %s %s %d B: %s; again)" % (dev, op, size, str(e).splitlines()[0]), flush=True)

    def run_raw_once(self, dev, d, size, op):
        """dpdk-test-crypto-perf AES-128-GCM `op` (encrypt/decrypt) on one worker lcore at the
        ESP-encrypted length."""
        length = size - 12  # issue [B]: frame - 12 B for IPv4
        ops = max(1_000_000, int(self.a.crypto_ops_scale * 1e9 / (length + 250)))
        prefix = self.prefix()
        cmd = [self.a.cryptoperf] + self.eal(prefix, ["%s0" % dev]) + [
            "--", "--ptest", "throughput", "--devtype", dev, "--optype", "aead", "--aead-algo", "aes-gcm",
            "--aead-op", op, "--aead-key-sz", "16", "--aead-iv-sz", "12",
            "--aead-aad-sz", "8", "--digest-sz", "16", "--buffer-sz", str(length), "--burst-sz", "32",
            "--total-ops", str(ops), "--csv-friendly"]
        cmd = self.prio(cmd)
        self.commands.setdefault("raw_%s_%s" % (dev, op), " ".join(cmd))
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                text=True)
        last = {}

        def poll():  # the worker's schedstat until the process ends (its thread is gone by then)
            task = None
            while proc.poll() is None:
                try:
                    task = task or find_worker(proc.pid, self.worker_lcore, proc, timeout=0.05)
                    last["v"] = schedstat(task)
                except (RuntimeError, OSError, ValueError):
                    pass
                time.sleep(0.005)

        th = threading.Thread(target=poll)
        th.start()
        try:
            out, _ = proc.communicate(timeout=120)
        finally:
            th.join()
            self.cleanup_prefix(prefix)
        rows = [l.split(",") for l in out.splitlines() if re.match(r"^%d,%d," % (self.worker_lcore, length), l)]
        if proc.returncode != 0 or not rows or "v" not in last:
            why = "no CPU time read" if proc.returncode == 0 and rows else "failed"
            raise RuntimeError("crypto-perf %s %s (rc %s):\n%s" % (dev, why, proc.returncode, out[-3000:]))
        r = rows[-1]
        run, wait = last["v"]
        share = run / (run + wait)
        wall = float(r[7]) * 1e6
        return {"kind": "raw", "dev": dev, "op": op, "dir": d, "size": size, "length": length, "ops": int(r[4]),
                "ops_wall": wall, "ops_cpu": wall / share, "cpu_share": share,
                "cycles_per_op_reported": float(r[9]), "failed_enq": int(r[5]), "failed_deq": int(r[6])}

    # -------------------------------------------------------------- profile

    def profile(self, d, size, pcap):
        """perf record (timer-based sampling) on msecgw's worker thread; returns the flat profile."""
        perf = shutil.which("perf")
        if not perf:
            return {"error": "perf not installed (apt-get install linux-perf)"}
        prefix = self.prefix()
        data = os.path.join(self.work, "perf_%s_%d.data" % (d, size))
        cmd = [self.a.msecgw] + self.eal(prefix, self.port_vdevs(pcap)) + [
            "--", "--config", self.config(d), "--duration", "%g" % (self.a.profile_seconds + 4)]
        cmd = self.prio(cmd)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        try:
            tel = Telemetry("/var/run/dpdk/%s/dpdk_telemetry.v2" % prefix, proc, 60)
            try:
                task = find_worker(proc.pid, self.worker_lcore, proc)
                while not tel.opackets(1)[1]:
                    time.sleep(0.02)
            finally:
                tel.close()
            time.sleep(1)
            tid = os.path.basename(task)
            rec = subprocess.run([perf, "record", "-t", tid, "-F", str(self.a.profile_freq), "-o", data, "--",
                                  "sleep", str(self.a.profile_seconds)], capture_output=True, text=True)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            self.cleanup_prefix(prefix)
        if rec.returncode != 0 or not os.path.exists(data):
            return {"error": "perf record failed: " + rec.stderr[-500:]}
        rep = subprocess.run([perf, "report", "-i", data, "--no-children", "--sort", "dso,sym", "--stdio", "-q",
                              "-g", "none", "--percent-limit", "0"], capture_output=True, text=True)
        syms = []
        for line in rep.stdout.splitlines():
            m = re.match(r"^\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*?)\s*$", line)
            if m:
                syms.append((float(m.group(1)), m.group(2), m.group(4)))
        samples = re.search(r"\((\d+) samples\)", rec.stderr)
        cats = {}
        for pct, dso, sym in syms:
            c = category(dso, sym)
            cats[c] = cats.get(c, 0.0) + pct
        return {"dir": d, "size": size, "samples": int(samples.group(1)) if samples else None,
                "event": "cpu-clock (timer) at %d Hz on the worker thread" % self.a.profile_freq,
                "categories": sorted(cats.items(), key=lambda kv: -kv[1]),
                "top": [{"pct": p, "dso": o, "sym": s, "category": category(o, s)} for p, o, s in syms[:40]]}


# Buckets for the flat profile, first match wins. Inlined code counts where it was inlined:
# outb_process holds the ESP encapsulation (esp_encap, IV counters), inb_process the SAD/replay
# pre-check, the post-open checks and the policy decision.
CATEGORIES = [
    ("crypto: AES-GCM kernels (ipsec-mb)", lambda o, s: "IPSec_MB" in o and ("gcm" in s or "aes" in s)),
    ("crypto: job API + lib/crypto glue", lambda o, s: "IPSec_MB" in o or "crypto::" in s
     or s.startswith("CRYPTO_memcmp") or s.startswith("OPENSSL_cleanse") or "libcrypto" in o),
    ("rx: net_pcap PMD (mbuf alloc + copy)", lambda o, s: "net_pcap" in o or "libpcap" in o),
    ("tx: net_null PMD (mbuf free)", lambda o, s: "net_null" in o),
    ("mempool/mbuf (+ TLS lookups of the lcore id)", lambda o, s: "mempool" in o or "librte_mbuf" in o
     or "rte_pktmbuf" in s or s.startswith("__tls_get_addr")),
    ("IPv4 header checksum (parse verify, outer header)", lambda o, s: "ipv4_header_checksum" in s
     or "checksum_fold" in s),
    ("parse", lambda o, s: "packet::" in s or "stage_parse" in s or "reparse" in s),
    ("classify (flow cache + ACL)", lambda o, s: "policy::" in s or "acl" in o or "rte_acl" in s),
    ("SAD lookup", lambda o, s: "sa::" in s),
    ("replay window", lambda o, s: "replay::" in s),
    ("ESP framing + per-packet decisions", lambda o, s: "esp::" in s or "outb_process" in s or "inb_process" in s
     or "compact" in s or "esp_" in s or "stage_seal" in s),
    ("reassembly/fragment stages (idle here)", lambda o, s: "reasm" in s or "reassemble" in s or "fragment" in s),
    ("loop, tx call, stats", lambda o, s: "poll_once" in s or "worker_main" in s or "stage_tx" in s
     or "process_burst" in s or "dataplane::" in s),
    ("libc memcpy/memmove/memcmp", lambda o, s: "libc" in o and ("mem" in s)),
    ("kernel (timer interrupts)", lambda o, s: o.startswith("[kernel")),
]


def category(dso, sym):
    for name, pred in CATEGORIES:
        if pred(dso, sym):
            return name
    return "other"


# ------------------------------------------------------------------------------ report

def summarise(runs, sizes, dirs, devs, esp_len, hz):
    summary = []
    for d in dirs:
        for s in sizes:
            sel = [r for r in runs if r["dir"] == d and r["size"] == s]
            # per crypto operation, the faster device (median) defines the limit
            raw_by_dev, best = {}, {}
            for op in RAW_OPS[d]:
                by_dev = {dev: median([r["ops_cpu"] for r in sel if r["kind"] == "raw" and r["dev"] == dev
                                       and r["op"] == op]) for dev in devs}
                raw_by_dev[op] = by_dev
                best[op] = max(by_dev, key=lambda k: by_dev[k])
            reps = sorted({r["repeat"] for r in sel})
            pairs = []
            for rep in reps:
                one = {r["kind"] + ("_%s_%s" % (r["dev"], r["op"]) if r["kind"] == "raw" else ""): r for r in sel
                       if r["repeat"] == rep}
                raws = [one["raw_%s_%s" % (best[op], op)] for op in RAW_OPS[d]]
                io, gw = one["io"], one["gw"]
                lim = 1.0 / (sum(1.0 / r["ops_cpu"] for r in raws) + 1.0 / io["pps_cpu"])
                lim_wall = 1.0 / (sum(1.0 / r["ops_wall"] for r in raws) + 1.0 / io["pps_wall"])
                # raw: the crypto alone at the limit's rate, 1 / sum(1/raw_op)
                raw = 1.0 / sum(1.0 / r["ops_cpu"] for r in raws)
                pairs.append({"repeat": rep, "raw": raw, "raw_by_op": {r["op"]: r["ops_cpu"] for r in raws},
                              "io": io["pps_cpu"], "gw": gw["pps_cpu"],
                              "L": lim, "ratio": gw["pps_cpu"] / lim, "ratio_wall": gw["pps_wall"] / lim_wall,
                              "gw_share": gw["cpu_share"], "io_share": io["cpu_share"],
                              "raw_share": min(r["cpu_share"] for r in raws)})
                gw["pair_ratio"] = gw["pps_cpu"] / lim
            raw_m = median([p["raw"] for p in pairs])
            io_m = median([p["io"] for p in pairs])
            gw_m = median([p["gw"] for p in pairs])
            lim_m = 1.0 / (1.0 / raw_m + 1.0 / io_m)
            frame = s if d == "out" else esp_len[s]
            best_dev = "+".join(sorted(set(best.values())))
            ratios = [p["ratio"] for p in pairs]
            # pairs in which every worker had >= 95 % of its CPU: the least disturbed repeats
            quiet = [p["ratio"] for p in pairs if min(p["gw_share"], p["io_share"], p["raw_share"]) >= 0.95]
            summary.append({
                "dir": d, "size": s, "frame_bytes": frame, "esp_encrypted_len": s - 12,
                "crypto_dev": best_dev, "crypto_dev_by_op": best,
                "limit": "L2 = 1/(1/raw decrypt + 1/raw encrypt + 1/io)" if d == "bnd" else "L = 1/(1/raw + 1/io)",
                "raw_mops_by_dev": {op: {k: v / 1e6 for k, v in by.items()} for op, by in raw_by_dev.items()},
                "raw_mops": raw_m / 1e6, "io_mpps": io_m / 1e6, "L_mpps": lim_m / 1e6,
                "msecgw_mpps": gw_m / 1e6, "msecgw_gbps": gw_m * frame * 8 / 1e9,
                "clear_gbps": gw_m * s * 8 / 1e9,
                "ratio": median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
                "ratio_of_medians": gw_m / lim_m,
                "ratio_quiet": median(quiet) if quiet else None, "quiet_pairs": len(quiet),
                "ratio_wall_clock": median([p["ratio_wall"] for p in pairs]),
                "cycles_per_pkt": {"msecgw": hz / gw_m, "L": hz / lim_m, "raw": hz / raw_m, "io": hz / io_m},
                "cpu_share": {"msecgw": median([p["gw_share"] for p in pairs]),
                              "io": median([p["io_share"] for p in pairs]),
                              "raw": median([p["raw_share"] for p in pairs])},
                "pairs": pairs,
            })
    return summary


def plot(summary, sizes, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.2), dpi=100)
    w = 0.2
    colors = {"out": "#1f77b4", "in": "#2ca02c"}
    ax = axes[0]
    for j, d in enumerate(("out", "in")):
        rows = [r for r in summary if r["dir"] == d]
        if not rows:
            continue
        xs = [i + (j - 0.5) * 2 * w for i in range(len(rows))]
        ax.bar([x - w / 2 for x in xs], [r["L_mpps"] for r in rows], w, color="#bbbbbb",
               label="L (limit)" if j == 0 else None)
        ax.bar([x + w / 2 for x in xs], [r["msecgw_mpps"] for r in rows], w, color=colors[d],
               label="msecgw " + d)
    ax.set_xticks(range(len(sizes)))
    ax.set_xticklabels(["%d B" % s for s in sizes])
    ax.set_ylabel("Mpps per worker core")
    ax.legend(fontsize=7, frameon=False)
    ax.set_title("ESP rate vs this machine's limit L", fontsize=9)
    ax = axes[1]
    for j, d in enumerate(("out", "in")):
        rows = [r for r in summary if r["dir"] == d]
        if not rows:
            continue
        xs = [i + (j - 0.5) * w * 1.1 for i in range(len(rows))]
        ax.bar(xs, [r["ratio"] for r in rows], w, color=colors[d], label=d)
        for x, r in zip(xs, rows):
            ax.text(x, r["ratio"], "%.2f" % r["ratio"], ha="center", va="bottom", fontsize=7)
    ax.axhline(0.9, color="#d62728", ls="--", lw=1)
    ax.text(len(sizes) - 0.5, 0.91, "target 0.90", color="#d62728", fontsize=7, ha="right", va="bottom")
    ax.set_xticks(range(len(sizes)))
    ax.set_xticklabels(["%d B" % s for s in sizes])
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("msecgw / L")
    ax.legend(fontsize=7, frameon=False, loc="upper left")
    ax.set_title("Ratio to L (median of same-run pairs)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--msecgw", required=True)
    p.add_argument("--testpmd", default=shutil.which("dpdk-testpmd") or "dpdk-testpmd")
    p.add_argument("--cryptoperf", default=shutil.which("dpdk-test-crypto-perf") or "dpdk-test-crypto-perf")
    p.add_argument("--sizes", default="64,512,1420", help="clear frame sizes in bytes, without FCS")
    p.add_argument("--dirs", default="out,in", help="out, in, bnd (boundary re-encryption, against L2)")
    p.add_argument("--devices", default="crypto_aesni_gcm,crypto_aesni_mb", help="crypto vdevs for raw")
    p.add_argument("--repeats", type=int, default=4, help="repeats (even: balanced order)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds skipped after forwarding starts")
    p.add_argument("--window", type=int, default=4, help="measured seconds per forwarding run")
    p.add_argument("--crypto-ops-scale", type=float, default=2.4,
                   help="crypto-perf total ops = scale * 1e9 / (length + 250)")
    p.add_argument("--lcores", default="0,1", help="EAL -l: main lcore, then the one worker")
    p.add_argument("--mem", default="--no-huge -m 1024", help="EAL memory arguments")
    p.add_argument("--mem-note", default="", help="how memory was set up, for the report")
    p.add_argument("--no-profile", action="store_true", help="skip the perf record profile")
    p.add_argument("--profile-size", type=int, default=64)
    p.add_argument("--profile-seconds", type=int, default=4)
    p.add_argument("--profile-freq", type=int, default=2999)
    p.add_argument("--nice", type=int, default=0,
                   help="run every measured program at this nice in an autogroup of its own (e.g. -15 on a "
                        "box busy with other sessions' compiles; see Bench.prio)")
    p.add_argument("--out", default="perf/results/esp.json")
    p.add_argument("--plot", default="", help="write a PNG chart here (needs python3-matplotlib)")
    a = p.parse_args()

    main_cpu = int(a.lcores.split(",")[0])
    try:  # keep this script (and its polling) off the worker's CPU
        os.sched_setaffinity(0, {main_cpu})
    except OSError:
        pass
    b = Bench(a)
    sizes = [int(s) for s in a.sizes.split(",")]
    dirs = [d for d in a.dirs.split(",") if d]
    devs = [d for d in a.devices.split(",") if d]
    for s in sizes:
        if esp_cipher_len(s) != s - 12:
            print("note: %d B frames are padded: GCM encrypts %d B, crypto-perf is given frame - 12 = %d B"
                  % (s, esp_cipher_len(s), s - 12))
    mach = machine()
    t_start = time.monotonic()
    load_start = os.getloadavg()
    print("esp_bench: %s, %s CPUs, %s, memory: %s" % (mach["cpu"], mach["cpus"], " ".join(mach["simd"]),
                                                     a.mem_note or a.mem))
    print("  source %s, msecgw %s" % (git_state(), a.msecgw))
    pcaps = {"out": {}, "in": {}}
    pcaps["bnd"] = pcaps["in"]  # boundary: the same leaf ESP as inbound, sealed again for the trunk
    esp_len = {}
    for s in sorted(set(sizes) | ({a.profile_size} if not a.no_profile else set())):
        pcaps["out"][s] = os.path.join(b.work, "mcast_%d.pcap" % s)
        make_pcap(pcaps["out"][s], s)
        pcaps["in"][s], esp_len[s] = b.make_esp_pcap(s, pcaps["out"][s])
    print("  traffic: 128 IPv4 multicast UDP frames per size (16 senders, 32 groups); inbound: the ESP frames "
          "msecgw made of them (%s B)" % ", ".join(str(esp_len[s]) for s in sizes), flush=True)
    print("  %d repeat(s), warm-up %.0f s, window %d s; raw on %s; work dir %s"
          % (a.repeats, a.warmup, a.window, " and ".join(devs), b.work), flush=True)
    runs = []
    for rep in range(a.repeats):
        for d in dirs:
            for s in sizes:
                order = ["raw", "io", "gw"] if rep % 2 == 0 else ["gw", "io", "raw"]
                line = []
                for kind in order:
                    if kind == "raw":
                        for dev in (devs if rep % 2 == 0 else devs[::-1]):
                            for op in RAW_OPS[d]:
                                r = b.run_raw(dev, d, s, op)
                                r["repeat"] = rep
                                runs.append(r)
                                line.append("raw %s %s %.2f (share %.2f)" % (
                                    dev.replace("crypto_", ""), op[:3], r["ops_cpu"] / 1e6, r["cpu_share"]))
                    else:
                        r = b.run_fwd(kind, d, s, pcaps[d][s])
                        r["repeat"] = rep
                        runs.append(r)
                        line.append("%s %.2f (share %.2f)" % (kind, r["pps_cpu"] / 1e6, r["cpu_share"]))
                print("  rep %d %-3s %5d B  %s  [M/s per CPU s]" % (rep, d, s, ", ".join(line)), flush=True)
    hz = mach["clock_hz"]
    summary = summarise(runs, sizes, dirs, devs, esp_len, hz)
    print()
    print("dir frame (on wire)  raw crypto       io     L     | msecgw         | ratio to L           | cyc/pkt")
    print("    clear  in     Mops  (dev)         Mpps   Mpps  | Mpps   Gbit/s  | med  [min-max] wall  | gw   L")
    for r in summary:
        print("%-3s %5d B %5d B  %6.2f (%-9s) %6.2f %6.2f | %6.2f %6.2f  | %.2f [%.2f-%.2f] %.2f  | %4.0f %4.0f"
              % (r["dir"], r["size"], r["frame_bytes"], r["raw_mops"], r["crypto_dev"].replace("crypto_", ""),
                 r["io_mpps"], r["L_mpps"], r["msecgw_mpps"], r["msecgw_gbps"], r["ratio"], r["ratio_min"],
                 r["ratio_max"], r["ratio_wall_clock"], r["cycles_per_pkt"]["msecgw"], r["cycles_per_pkt"]["L"]))
    print("(rates per second of worker CPU time, median of %d repeats; ratio = median of same-repeat msecgw / L;"
          % a.repeats)
    print(" wall = the same on wall-clock rates; Gbit/s of the frames msecgw receives; cycles at the %.0f MHz TSC)"
          % (hz / 1e6))
    print("quiet repeats (every worker >= 95 %% of its CPU): %s" % ", ".join(
        "%s %d B %.2f (%d)" % (r["dir"], r["size"], r["ratio_quiet"], r["quiet_pairs"]) for r in summary
        if r["quiet_pairs"]))
    profiles = []
    if not a.no_profile:
        for d in dirs:
            pr = b.profile(d, a.profile_size, pcaps[d][a.profile_size])
            profiles.append(pr)
            if "error" in pr:
                print("profile %s: %s" % (d, pr["error"]))
                continue
            print("\nprofile %s %d B (%s samples, %s):" % (d, a.profile_size, pr["samples"], pr["event"]))
            for name, pct in pr["categories"]:
                print("  %5.1f %%  %s" % (pct, name))
            print("  top symbols:")
            for x in pr["top"][:12]:
                print("  %5.1f %%  %-24s %s" % (x["pct"], x["dso"][:24], x["sym"][:90]))
    load_end = os.getloadavg()
    total = time.monotonic() - t_start
    print("\nload average %.2f at start, %.2f at end; total time %.0f s" % (load_start[0], load_end[0], total))
    result = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "source": git_state(),
        "machine": mach,
        "memory": a.mem_note or a.mem,
        "method": {
            "L": "1 / (1/raw + 1/io); bnd: L2 = 1 / (1/raw decrypt + 1/raw encrypt + 1/io)",
            "raw": "dpdk-test-crypto-perf throughput, aead aes-gcm 128, iv 12, aad 8, digest 16, burst 32, "
                   "buffer = frame - 12 B; per device; the device with the higher median defines L",
            "io": "dpdk-testpmd --forward-mode=io on the same vdevs and pcap as msecgw",
            "rate": "packets (ops) per second of CPU time of the worker thread (schedstat), telemetry "
                    "/ethdev/stats,1 sampled each second over the window after the warm-up",
            "ratio": "median over repeats of msecgw / L of the same repeat",
            "warmup_s": a.warmup, "window_s": a.window, "repeats": a.repeats, "nice": a.nice,
            "order": "per repeat, direction and size: raw, io, msecgw on even repeats; msecgw, io, raw on odd",
            "gbps": "msecgw Mpps x bytes of the frames it receives (clear frames outbound, ESP frames inbound), "
                    "no FCS/preamble; clear_gbps uses the clear frame size in both directions",
        },
        "esp_frame_bytes": esp_len,
        "load_average": {"start": load_start, "end": load_end},
        "total_seconds": total,
        "commands": b.commands,
        "summary": summary,
        "profiles": profiles,
        "runs": runs,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
    print("wrote %s" % a.out)
    if a.plot:
        try:
            plot(summary, sizes, a.plot)
            print("wrote %s" % a.plot)
        except ImportError:
            print("no matplotlib for /usr/bin/python3 (apt-get install python3-matplotlib): plot skipped")
    shutil.rmtree(b.work, ignore_errors=True)


if __name__ == "__main__":
    main()
