"""SAs added, replaced and removed under continuous traffic lose nothing (DESIGN.md §2 invariant 3;
issue [B]: "SAs ... through RCU, make-before-break: a test swaps SAs under continuous traffic and
loses nothing").

Live traffic: the gateway runs in a private network namespace (traffic_paced.Netns). One port is
`net_af_packet iface=gw0,qpairs=2` (2 rx queues fed by the kernel's flow-hash fanout, one per worker),
and a paced sender (traffic_paced.py, AF_PACKET on the veth peer tx0) replays a generated pcap into
it at a fixed rate, every frame numbered in its payload. The other port is net_pcap writing one
tx pcap per queue; the gateway ends with SIGTERM (it drains and closes the pcaps). While the frames
flow, the config file is replaced and the gateway gets SIGHUP (main.cc: re-read and apply
through RCU); the test waits for "configuration reloaded" in the gateway's log.

Outbound (clear -> protected): SA A (SPI 0x1001) -> SIGHUP adding SA B (SPI 0x2002) and pointing the
protect policy at it, A still present -> SIGHUP removing A. Every output frame is decrypted with
scapy's SecurityAssociation using the key of its SPI: every input frame comes out exactly once,
byte for byte, nothing is dropped, both SPIs appear, and per source every A frame precedes every
B frame.

Inbound (protected -> clear): scapy-made ESP (tunnel mode, RFC 5374 address preservation), SA A
only -> SIGHUP adding SA B beside A -> senders switch to B one by one, so A and B frames alternate
on the wire -> SIGHUP removing A once no A frame is left. Make-before-break means all of them are
opened. The live run is shared by two cases: the accounting of the run itself, and that no frame
of either SA is lost while both are installed (InboundOverlapTest: the same without timing).
"""
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from scapy.layers.inet import IP, UDP
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from gwharness import MSECGW_BIN, GatewayTestCase, read_pcap, unique_prefix, write_pcap
from traffic_paced import Netns

HERE = os.path.dirname(os.path.abspath(__file__))
SENDER = os.path.join(HERE, "traffic_paced.py")
SPI_A, SPI_B = 0x00001001, 0x00002002
KEY_A = bytes((0x11 + 5 * i) & 0xFF for i in range(20))  # AES-128 key (16) + salt (4)
KEY_B = bytes((0x83 + 9 * i) & 0xFF for i in range(20))
KEYS = {SPI_A: KEY_A, SPI_B: KEY_B}
SOURCES = [f"10.1.0.{i}" for i in range(1, 9)]
GROUPS = ["239.1.1.1", "239.2.2.2"]
MAGIC = b"MSWP"
N_OUT, RATE_OUT = 6000, 2000.0   # 3 s of outbound traffic
N_IN, RATE_IN = 3000, 1000.0     # 3 s of inbound traffic (scapy encrypts ~700 frames/s)

SA_TEXT = """\
  - name: {name}
    dir: {dir}
    spi: {spi:#010x}
    aead: aes-128-gcm
    key: "0x{key}"
"""


def config(direction, sas, policy_sas):
    """Config text: SAs [(name, spi)], and for 239/8 in `direction` one protect policy per name in
    policy_sas (a name or a list). Receivers overlapping two SAs of a group list a policy for each
    with identical selectors (twins): a decrypted packet's first match may be a twin of its SA's policy."""
    text = "state_dir: @STATE@\nports:\n  - {port: 0, side: clear}\n  - {port: 1, side: protected}\nsas:\n"
    for name, spi in sas:
        text += SA_TEXT.format(name=name, dir=direction, spi=spi, key=KEYS[spi].hex())
    text += "policies:\n"
    for policy_sa in [policy_sas] if isinstance(policy_sas, str) else policy_sas:
        text += f"  - {{dir: {direction}, dst: 239.0.0.0/8, action: protect, sa: {policy_sa}}}\n"
    return text


def mac_for(group):
    g = [int(x) for x in group.split(".")]
    return "01:00:5e:%02x:%02x:%02x" % (g[1] & 0x7F, g[2], g[3])


def flow_of(i):
    """Source k sends frames i = k mod 8, all to one group from one port: one flow per source, so
    the kernel's flow-hash fanout keeps each source on one queue (one worker), like dispatch on
    the source address (DESIGN.md invariant 2)."""
    k = i % len(SOURCES)
    return k, SOURCES[k], GROUPS[k % len(GROUPS)]


def clear_frame(i, size):
    """Multicast UDP frame number i (index in the payload), `size` bytes, no Ethernet padding."""
    k, src, group = flow_of(i)
    head = Ether(src="02:00:00:00:00:01", dst=mac_for(group)) / IP(src=src, dst=group, ttl=16) / UDP(sport=4000 + k, dport=5000)
    body = MAGIC + i.to_bytes(4, "big")
    body += bytes((i + k) & 0xFF for k in range(size - len(head) - len(body)))
    f = bytes(head / Raw(body))
    assert len(f) == size
    return f


def index_of(ip_packet):
    """The frame number carried by an inner IPv4/UDP packet (bytes), or None."""
    ihl = (ip_packet[0] & 0x0F) * 4
    p = ip_packet[ihl + 8:ihl + 16]
    return int.from_bytes(p[4:8], "big") if p[:4] == MAGIC else None


def tunnel_sa(spi, src="0.0.0.0", dst="0.0.0.0", seq=1):
    """scapy ESP tunnel-mode SA (AES-GCM, 16-byte ICV; key = key || salt as RFC 4106)."""
    return SecurityAssociation(ESP, spi=spi, crypt_algo="AES-GCM", crypt_key=KEYS[spi], seq_num=seq,
                               tunnel_header=IP(src=src, dst=dst))


def lcores_arg():
    cpus = sorted(os.sched_getaffinity(0))
    return f"0@{cpus[0]},1@{cpus[-1]},2@{cpus[-1]}"


class LiveRun:
    """One gateway in a private netns, a paced sender, SIGHUP reloads; no unittest dependency so a
    class fixture can use it. Harness problems raise AssertionError with the gateway log."""

    def __init__(self, tmp, tag):
        self.tmp, self.tag = tmp, tag
        self.gw = self.sender = None
        self.prefix = unique_prefix(tag)
        self.ns = Netns.create(f"{tag}{next(_ns_counter)}")
        self.ns.veth("gw0", "tx0")
        self.progress = 0
        self.sender_lines = []
        self.cfg = os.path.join(tmp, "c.yaml")
        self.log_path = os.path.join(tmp, "gw.log")
        self.keylog = os.path.join(tmp, "keylog")
        self.stats_json = os.path.join(tmp, "s.json")

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write_config(self, text):
        tmp = self.cfg + ".new"
        with open(tmp, "w") as f:
            f.write(text.replace("@STATE@", self.path("state")))
        os.replace(tmp, self.cfg)  # the gateway never reads half a file

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def fail(self, what):
        raise AssertionError(f"{what}\n--- gateway log\n{self.log()}\n--- sender\n" + "\n".join(self.sender_lines[-5:]))

    def start_gateway(self, vdevs, config_text):
        self.write_config(config_text)
        args = [MSECGW_BIN, "--no-huge", "-m", "1024", "--no-pci", "--lcores", lcores_arg(),
                "--file-prefix", self.prefix]
        for v in vdevs:
            args += ["--vdev", v]
        args += ["--", "--config", self.cfg, "--keylog", self.keylog, "--stats-json", self.stats_json]
        with open(self.log_path, "w") as log:
            self.gw = subprocess.Popen(self.ns.cmd(args), stdout=log, stderr=subprocess.STDOUT)
        # The keylog is written after the ports started and the SAs were applied, before launch.
        end = time.monotonic() + 30
        while not os.path.exists(self.keylog):
            if self.gw.poll() is not None:
                self.fail(f"gateway exited {self.gw.returncode} at start")
            if time.monotonic() > end:
                self.fail("gateway not ready after 30 s")
            time.sleep(0.02)
        time.sleep(0.2)  # workers launched

    def start_sender(self, frames, rate, gates=()):
        pcap = self.path("send.pcap")
        write_pcap(pcap, frames)
        cpu = sorted(os.sched_getaffinity(0))[0]  # the control lcore's CPU, not the workers'
        args = [sys.executable, SENDER, "--iface", "tx0", "--pcap", pcap, "--rate", str(rate), "--every", "10",
                "--cpu", str(cpu)]
        for k, p in gates:
            args += ["--gate", f"{k}:{p}"]
        self.sender = subprocess.Popen(self.ns.cmd(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        def read():
            for line in self.sender.stdout:
                line = line.strip()
                self.sender_lines.append(line)
                if line.startswith("progress "):
                    self.progress = int(line.split()[1])
        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()

    def wait_progress(self, k, timeout=30):
        end = time.monotonic() + timeout
        while self.progress < k:
            if self.sender.poll() is not None and self.progress < k:
                self.reader.join(1)
                if self.progress >= k:
                    break
                self.fail(f"sender ended at {self.progress} before frame {k}")
            if time.monotonic() > end:
                self.fail(f"sender at {self.progress} after {timeout} s, waiting for {k}")
            time.sleep(0.002)

    def reload(self, config_text, count):
        """Installs a new config, SIGHUP, waits for the count-th "configuration reloaded".
        Returns the sender's progress (frames sent) at the signal and at the confirmation."""
        self.write_config(config_text)
        at_signal = self.progress
        self.gw.send_signal(signal.SIGHUP)
        end = time.monotonic() + 10
        while True:
            text = self.log()
            if "reload refused" in text:
                self.fail("reload refused")
            if text.count("configuration reloaded from") >= count:
                return at_signal, self.progress
            if self.gw.poll() is not None or time.monotonic() > end:
                self.fail(f"reload {count} not confirmed")
            time.sleep(0.002)

    def finish(self):
        """Waits for the sender, lets the gateway drain, SIGTERM; returns the stats."""
        try:
            rc = self.sender.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.fail("sender did not finish")
        self.reader.join(5)
        if rc != 0 or not self.sender_lines[-1].startswith("done "):
            self.fail(f"sender failed ({rc})")
        time.sleep(0.5)
        self.gw.send_signal(signal.SIGTERM)
        try:
            self.gw.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.fail("gateway did not stop on SIGTERM")
        if self.gw.returncode != 0:
            self.fail(f"gateway exit {self.gw.returncode}")
        with open(self.stats_json) as f:
            return json.load(f)

    def close(self):
        for p in (self.sender, self.gw):  # only our own processes, by handle
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        self.ns.delete()
        shutil.rmtree(os.path.join("/var/run/dpdk", self.prefix), ignore_errors=True)


_ns_counter = iter(range(1, 1 << 30))


def af_packet(n):
    """The live port: AF_PACKET on gw0, 2 queue pairs (kernel flow-hash fanout), 4096-frame rings."""
    return f"net_af_packet{n},iface=gw0,qpairs=2,framecnt=4096"


class OutboundSwapTest(GatewayTestCase):

    def setUp(self):
        super().setUp()
        self.live = LiveRun(self.tmp, "swapout")

    def tearDown(self):
        self.live.close()
        super().tearDown()

    def test_outbound_sa_replaced_under_traffic(self):
        live = self.live
        frames = [clear_frame(i, 60 + (i * 37) % 341) for i in range(N_OUT)]
        e = self.path("empty.pcap")
        write_pcap(e, [])
        outs = [self.path(f"p1q{q}.pcap") for q in (0, 1)]
        live.start_gateway([af_packet(0),
                            f"net_pcap1,rx_pcap={e},rx_pcap={e},tx_pcap={outs[0]},tx_pcap={outs[1]}"],
                           config("out", [("grp-out-a", SPI_A)], "grp-out-a"))
        live.start_sender(frames, RATE_OUT)
        live.wait_progress(N_OUT // 3)
        r1 = live.reload(config("out", [("grp-out-a", SPI_A), ("grp-out-b", SPI_B)], "grp-out-b"), 1)
        live.wait_progress(2 * N_OUT // 3)
        r2 = live.reload(config("out", [("grp-out-b", SPI_B)], "grp-out-b"), 2)
        self.assertLess(r2[1], N_OUT, "the second reload must land while traffic still flows")
        stats = live.finish()
        with open(live.keylog) as f:  # rewritten by every reload: the SAs running at the end
            keylog = f.read()
        self.assertIn(f"{SPI_B:#010x}", keylog)
        self.assertNotIn(f"{SPI_A:#010x}", keylog, "SA A is retired by the second reload")

        # Decrypt everything.
        sas = {spi: tunnel_sa(spi) for spi in KEYS}
        seen = collections.defaultdict(list)  # index -> [spi]
        by_source = collections.defaultdict(list)  # (queue, source) -> [(index, spi)] in output order
        queues_of = collections.defaultdict(set)  # source -> queues it came out of
        ivs = collections.defaultdict(set)
        for q, path in enumerate(outs):
            for n, f in enumerate(read_pcap(path)):
                where = f"queue {q} frame {n}"
                self.assertEqual(f[12:14], b"\x08\x00", where)
                self.assertEqual(f[14 + 9], 50, f"{where}: not ESP")
                spi = int.from_bytes(f[34:38], "big")
                self.assertIn(spi, sas, f"{where}: unknown SPI {spi:#x}")
                iv = f[42:50]
                self.assertNotIn(iv, ivs[spi], f"{where}: IV {iv.hex()} repeated under SPI {spi:#x}")
                ivs[spi].add(iv)
                inner = bytes(sas[spi].decrypt(IP(f[14:])))
                i = index_of(inner)
                self.assertIsNotNone(i, f"{where}: decrypted packet carries no frame number")
                self.assertEqual(f[:14] + inner, frames[i], f"{where}: frame {i} differs after decryption")
                self.assertEqual(f[14 + 12:14 + 20], inner[12:20], f"{where}: outer addresses != inner")
                seen[i].append(spi)
                by_source[(q, inner[12:16])].append((i, spi))
                queues_of[inner[12:16]].add(q)
        drops = {k: v for k, v in stats["drops"].items() if v}
        dup = sorted(i for i, s in seen.items() if len(s) > 1)
        if dup:
            self.fail(f"{len(dup)} frames came out more than once, first {dup[:10]}")
        missing = sorted(set(range(N_OUT)) - set(seen))
        if missing:
            self.fail(f"{len(missing)} of {N_OUT} frames lost, first {missing[:10]}; drops {drops}")
        self.assertEqual(stats["drops_total"], 0, drops)
        ports = {p["port"]: p for p in stats["ports"]}
        self.assertEqual(ports[0]["driver"], "net_af_packet")
        self.assertEqual(ports[0]["rx_packets"], N_OUT)
        self.assertEqual(stats["sealed"], N_OUT)
        self.assertEqual(len(stats["lcores"]), 2)
        self.assertTrue(all(lc["rx_packets"] > 0 for lc in stats["lcores"]), f"both workers carry traffic: {stats['lcores']}")
        old = sorted(i for i, s in seen.items() if s == [SPI_A])
        new = sorted(i for i, s in seen.items() if s == [SPI_B])
        self.assertTrue(old and new, f"both SPIs must appear: {len(old)} under A, {len(new)} under B")
        for src, qs in queues_of.items():
            self.assertEqual(len(qs), 1, f"source {src.hex()} came out of queues {qs}: one flow, one worker")
        for (q, src), seq in by_source.items():
            idx = [i for i, _ in seq]
            if idx != sorted(idx):
                bad = next(n for n in range(1, len(idx)) if idx[n] < idx[n - 1])
                self.fail(f"source {src.hex()}: frame {idx[bad]} came out after frame {idx[bad - 1]}")
            last_a = max((i for i, s in seq if s == SPI_A), default=-1)
            first_b = min((i for i, s in seq if s == SPI_B), default=N_OUT)
            self.assertLess(last_a, first_b, f"source {src.hex()}: SA A used after SA B")
        switch = new[0]
        # The switch happened around the first reload (frames still queued in the af_packet ring
        # when it landed may already take B).
        self.assertTrue(r1[0] - 200 <= switch <= r1[1] + 200,
                        f"first B frame {switch}, reload 1 between frames {r1[0]} and {r1[1]}")
        print(f"# outbound: {N_OUT} frames at {RATE_OUT:.0f}/s, {len(old)} under SPI {SPI_A:#x} then "
              f"{len(new)} under SPI {SPI_B:#x}; reload 1 at frames {r1}, reload 2 at {r2}; 0 lost, 0 dropped")


def inbound_plan():
    """(clear frames, ESP frames, spi of each, index of the first B frame, index of the last A frame).
    Frames [0, N/3) use A; from N/3 on, source k switches to B at its own point before 2N/3, so A
    and B frames alternate on the wire; from 2N/3 on everything uses B."""
    a, b = N_IN // 3, 2 * N_IN // 3
    switch = {s: a + (k + 1) * (b - a) // (len(SOURCES) + 1) for k, s in enumerate(SOURCES)}
    sas = {}
    clear, esp, spis = [], [], []
    for i in range(N_IN):
        f = clear_frame(i, 60 + (i * 53) % 401)
        _, src, dst = flow_of(i)
        spi = SPI_B if i >= switch[src] else SPI_A
        key = (spi, src)  # one sequence number space per (SPI, source), as the replay windows are
        if key not in sas:
            sas[key] = tunnel_sa(spi, src, dst)
        sealed = bytes(sas[key].encrypt(IP(f[14:])))
        clear.append(f)
        esp.append(f[:14] + sealed)
        spis.append(spi)
    first_b = spis.index(SPI_B)
    last_a = max(i for i, s in enumerate(spis) if s == SPI_A)
    return clear, esp, spis, first_b, last_a


class InboundSwapTest(unittest.TestCase):
    """One live inbound swap, checked by two cases (class fixture)."""

    @classmethod
    def setUpClass(cls):
        if not os.access(MSECGW_BIN, os.X_OK):
            raise AssertionError(f"msecgw binary not found at {MSECGW_BIN} (run scripts/build.sh)")
        cls.tmp = tempfile.mkdtemp(prefix="msecgw_it_")
        cls.live = live = LiveRun(cls.tmp, "swapin")
        try:
            cls.clear, esp, cls.spis, first_b, last_a = inbound_plan()
            e = live.path("empty.pcap")
            write_pcap(e, [])
            cls.outs = [live.path(f"p0q{q}.pcap") for q in (0, 1)]
            live.start_gateway([f"net_pcap0,rx_pcap={e},rx_pcap={e},tx_pcap={cls.outs[0]},tx_pcap={cls.outs[1]}",
                                af_packet(1)],
                               config("in", [("grp-in-a", SPI_A)], "grp-in-a"))
            gate = live.path("gate-b")
            # No B frame leaves the sender before SA B is installed (normally no wait at all).
            live.start_sender(esp, RATE_IN, gates=[(first_b, gate)])
            live.wait_progress(first_b // 2)
            cls.r1 = live.reload(config("in", [("grp-in-a", SPI_A), ("grp-in-b", SPI_B)], ["grp-in-b", "grp-in-a"]), 1)
            open(gate, "w").close()
            # Retire A a quarter second after its last frame was sent (it was processed by then).
            live.wait_progress(last_a + 1 + int(RATE_IN / 4))
            cls.r2 = live.reload(config("in", [("grp-in-b", SPI_B)], "grp-in-b"), 2)
            cls.stats = live.finish()
            with open(live.keylog) as f:
                cls.keylog = f.read()
            cls.got = [f for p in cls.outs for f in read_pcap(p)]
            cls.first_b, cls.last_a = first_b, last_a
        except BaseException:
            live.close()
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.live.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_run_is_sound(self):
        """The live run itself: B came only after SA B was installed, A was retired only after its
        last frame, the second reload landed under traffic, and every received frame is accounted
        for (forwarded frames are exact copies of sent ones)."""
        gate_waits = [l for l in self.live.sender_lines if l.startswith("gate ")]
        self.assertEqual(len(gate_waits), 1, self.live.sender_lines[-3:])
        self.assertLess(self.r1[1], self.first_b + 1, "SA B installed before the first B frame")
        self.assertGreater(self.r2[0], self.last_a, "SA A retired after its last frame")
        self.assertLess(self.r2[1], N_IN, "the second reload must land while traffic still flows")
        self.assertIn(f"{SPI_B:#010x}", self.keylog)
        self.assertNotIn(f"{SPI_A:#010x}", self.keylog, "SA A is retired by the second reload")
        s = self.stats
        ports = {p["port"]: p for p in s["ports"]}
        self.assertEqual(ports[1]["driver"], "net_af_packet")
        self.assertEqual(ports[1]["rx_packets"], N_IN, "every frame sent reached the gateway")
        self.assertEqual(s["tx_packets"] + s["drops_total"], s["rx_packets"], "every packet accounted for")
        self.assertEqual(len(self.got), s["tx_packets"])
        self.assertEqual(len(s["lcores"]), 2)
        want = {f: i for i, f in enumerate(self.clear)}
        for f in self.got:
            self.assertIn(f, want, f"output frame is not one of the sent clear frames: {f.hex()}")
        self.assertEqual(len(set(self.got)), len(self.got), "a frame came out twice")
        a = sum(1 for x in self.spis if x == SPI_A)
        lost = N_IN - len(self.got)
        print(f"# inbound: {N_IN} frames at {RATE_IN:.0f}/s ({a} under SPI {SPI_A:#x}, {N_IN - a} under "
              f"{SPI_B:#x}, alternating in frames {self.first_b}..{self.last_a}); reload 1 at frames "
              f"{self.r1}, reload 2 at {self.r2}; {gate_waits[0]}; {lost} lost, drops "
              f"{ {k: v for k, v in s['drops'].items() if v} }")

    def test_nothing_lost_while_both_sas_installed(self):
        """Regression: while old and new SA overlap, each named by a twin policy of the group (same
        selectors), the frames of both are opened: make-before-break on the receiving side."""
        got = set(self.got)
        lost = [i for i, f in enumerate(self.clear) if f not in got]
        lost_spis = collections.Counter(self.spis[i] for i in lost)
        if lost:
            self.fail(f"{len(lost)} of {N_IN} frames lost (frames {lost[0]}..{lost[-1]}; by SPI "
                      f"{ {hex(k): v for k, v in lost_spis.items()} }), drops "
                      f"{ {k: v for k, v in self.stats['drops'].items() if v} }")
        self.assertEqual(self.stats["drops_total"], 0)


IN_OVERLAP = """\
state_dir: @STATE@
ports:
  - {port: 0, side: clear}
  - {port: 1, side: protected}
sas:
  - {name: grp-in-a, dir: in, spi: 0x00001001, aead: aes-128-gcm, key: "0x@KA@"}
  - {name: grp-in-b, dir: in, spi: 0x00002002, aead: aes-128-gcm, key: "0x@KB@"}
policies:
  - {dir: in, dst: 239.0.0.0/8, action: protect, sa: grp-in-b}
  - {dir: in, dst: 239.0.0.0/8, action: protect, sa: grp-in-a}
"""


class InboundOverlapTest(GatewayTestCase):

    def test_old_and_new_inbound_sa_both_accepted(self):
        """Deterministic (no reload, no timing): with the old and the new inbound SA of a group both
        installed, each named by a policy for the group -- the make-before-break overlap -- ESP
        under either SPI is opened, although first match always finds grp-in-b's policy."""
        clear = [clear_frame(i, 100) for i in range(16)]
        esp = []
        for i, f in enumerate(clear):
            spi = SPI_A if i % 2 == 0 else SPI_B
            _, src, dst = flow_of(i)
            sa = tunnel_sa(spi, src, dst, seq=i + 1)
            esp.append(f[:14] + bytes(sa.encrypt(IP(f[14:]))))
        cfg = IN_OVERLAP.replace("@KA@", KEY_A.hex()).replace("@KB@", KEY_B.hex())
        run = self.run_gateway(cfg, prot_rx=esp, duration=1)
        self.assertEqual(run.stats["drops_total"], 0, {k: v for k, v in run.stats["drops"].items() if v})
        self.assertFrames(run.clear_out, clear, "port 0 output")


if __name__ == "__main__":
    unittest.main()
