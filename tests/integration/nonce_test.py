"""No (key, nonce) reuse across kill -9 (DESIGN.md §2 invariant 1; issue [B] acceptance 4).

Two worker lcores seal one outbound SA (the clear port has two rx queues, each replaying its own
pcap forever, so both lanes are busy at ~1 Mpps each). The gateway is killed with SIGKILL in
mid-traffic and restarted on the same state_dir, several times; a last run ends normally. Every
ESP frame of every run is read back and checked:

  * every (SPI, IV) is unique across all runs;
  * IV = [sender id = 0][6-bit lane][58-bit counter], the lane is the worker (= tx queue) that
    sent it, seq = counter + 1, and counters strictly increase within a run and lane;
  * each run's counters of a lane start at or after the high-water mark persisted in the IV store
    when the previous run was killed, and beyond every counter the previous run sent;
  * no counter on the wire is at or beyond the high-water mark found in the store after the kill
    (blocks are persisted before use).

Output capture: net_pcap tx_pcap, one file per tx queue. The pcap PMD flushes its dumper after
every tx burst, so a SIGKILLed run leaves every transmitted burst in the file; only the record
being written when the process died can be cut short, and the reader drops such a tail record.

A corrupt IV store (one byte flipped anywhere) must stop the gateway from starting: non-zero exit,
a message naming the file, and the file left as it was (never a silent reset).
"""
import json
import glob
import os
import signal
import subprocess
import time
import unittest
import zlib

import numpy as np
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from gwharness import MSECGW_BIN, GatewayTestCase, unique_prefix, write_pcap

SPI = 0x00001001
SA_NAME = "g1-out"
KEY = "0x" + "".join(f"{(0x31 + 11 * i) & 0xff:02x}" for i in range(20))  # AES-128 key + salt
LANE_SHIFT = 58          # 64 - 6 lane bits (manual SA: no sender-id bits)
CTR_MASK = (1 << LANE_SHIFT) - 1
BLOCK = 1 << 20          # counters per reserved IV block (sa_manager default), for the report only
ESP_OFF = 14 + 20        # Ethernet + outer IPv4 (no options): where SPI starts
FRAME_LEN = 60           # every input frame; so every ESP frame has the same length
ESP_FRAME_LEN = FRAME_LEN + 20 + 8 + 8 + 2 + 16  # outer IPv4, SPI/seq, IV, pad 0 + pad len/next, ICV
# Frames per lane before each SIGKILL (the kill lands when both queue files hold that many; about
# 0.1-1.5 s of traffic here). Varied; two go past the first 2^20-counter block, so refills
# (reserve + fsync under traffic) get killed in flight too. Bounded so the test stays short.
KILL_AFTER_FRAMES = [500_000, 1_300_000, 150_000, 1_500_000, 900_000]
KILL_AFTER_MAX_SECONDS = 4
KILL_CYCLES = len(KILL_AFTER_FRAMES)

CONFIG = """\
state_dir: @STATE@
ports:
  - {port: 0, side: clear}
  - {port: 1, side: protected}
sas:
  - name: @NAME@
    dir: out
    spi: 0x00001001
    aead: aes-128-gcm
    key: "@KEY@"
policies:
  - {dir: out, dst: 239.0.0.0/8, action: protect, sa: @NAME@}
"""


def udp_frame(src, dst="239.1.1.1"):
    g = [int(x) for x in dst.split(".")]
    mac = "01:00:5e:%02x:%02x:%02x" % (g[1] & 0x7F, g[2], g[3])
    f = Ether(src="02:00:00:00:00:01", dst=mac) / IP(src=src, dst=dst, ttl=16) / UDP(sport=4000, dport=5000)
    f = f / Raw(bytes(FRAME_LEN - 42))
    b = bytes(f)
    assert len(b) == FRAME_LEN
    return b


def lcores_arg():
    """Main lcore on one CPU, two worker lcores sharing another (EAL --lcores)."""
    cpus = sorted(os.sched_getaffinity(0))
    c0, c1 = cpus[0], cpus[-1]
    return f"0@{c0},1@{c1},2@{c1}"


def read_esp(path):
    """(spi, seq, iv) uint arrays of every complete record of a pcap of equal-length frames.

    Tolerates a partial last record (a SIGKILLed writer). Fails on anything else unexpected."""
    raw = np.fromfile(path, dtype=np.uint8)
    if len(raw) < 24:
        raise AssertionError(f"{path}: no pcap header ({len(raw)} bytes)")
    magic = int.from_bytes(bytes(raw[:4]), "little")
    if magic not in (0xA1B2C3D4, 0xA1B23C4D):
        raise AssertionError(f"{path}: not a little-endian pcap (magic {magic:#x})")
    if int.from_bytes(bytes(raw[20:24]), "little") != 1:
        raise AssertionError(f"{path}: linktype is not Ethernet")
    body = raw[24:]
    empty = np.zeros(0, dtype=np.uint64)
    if len(body) < 16:
        return empty.astype(np.uint32), empty.astype(np.uint32), empty
    caplen = int.from_bytes(bytes(body[8:12]), "little")
    rec = 16 + caplen
    n = len(body) // rec
    rows = body[: n * rec].reshape(n, rec)
    incl = rows[:, 8:12].copy().view("<u4").ravel()
    orig = rows[:, 12:16].copy().view("<u4").ravel()
    if not ((incl == caplen).all() and (orig == caplen).all()):
        bad = int(np.argmax((incl != caplen) | (orig != caplen)))
        raise AssertionError(f"{path}: record {bad} is not {caplen} bytes long like record 0 "
                             "(frames of one length expected)")
    f = rows[:, 16:]
    if not ((f[:, 12] == 0x08) & (f[:, 13] == 0x00) & (f[:, 14] == 0x45) & (f[:, 23] == 50)).all():
        raise AssertionError(f"{path}: a frame is not Ethernet/IPv4(no options)/ESP")
    spi = f[:, ESP_OFF:ESP_OFF + 4].copy().view(">u4").ravel().astype(np.uint32)
    seq = f[:, ESP_OFF + 4:ESP_OFF + 8].copy().view(">u4").ravel().astype(np.uint32)
    iv = f[:, ESP_OFF + 8:ESP_OFF + 16].copy().view(">u8").ravel().astype(np.uint64)
    return spi, seq, iv


def read_store(path):
    """High-water marks (list, index = lane) of a v1 IV store file, its CRC checked."""
    with open(path, "rb") as f:
        text = f.read()
    lines = text.split(b"\n")
    assert lines[-1] == b"" and lines[0] == b"msecgw-iv-store v1", f"{path}: unexpected content {text[:80]!r}"
    body = b"\n".join(lines[:-2]) + b"\n"
    assert lines[-2] == b"crc32 %08x" % zlib.crc32(body), f"{path}: CRC line does not match"
    hw = []
    for ln in lines[3:-2]:
        word, k, v = ln.split(b" ")
        assert word == b"lcore" and int(k) == len(hw), f"{path}: bad line {ln!r}"
        hw.append(int(v))
    return hw


class NonceTest(GatewayTestCase):

    def setUp(self):
        super().setUp()
        self.procs = []

    def tearDown(self):
        for p in self.procs:  # only our own gateways, by pid
            if p.poll() is None:
                p.kill()
                p.wait()
        super().tearDown()

    def store_path(self, name=SA_NAME):
        """The SA's IV store: named after a fingerprint of its key, so one store in state_dir."""
        stores = glob.glob(os.path.join(self.path("state"), "iv-key-*.store"))
        self.assertEqual(len(stores), 1, f"IV stores in state_dir: {stores}")
        return stores[0]

    def config(self, name=SA_NAME):
        return self.write_config(CONFIG.replace("@NAME@", name).replace("@KEY@", KEY), name=f"{name}.yaml")

    def two_lane_inputs(self):
        """One pcap per clear rx queue: 64 sources each, so both workers have traffic."""
        for q in (0, 1):
            write_pcap(self.path(f"in{q}.pcap"), [udp_frame(f"10.1.{q}.{i + 1}") for i in range(64)])
        write_pcap(self.path("empty.pcap"), [])

    def start(self, cfg, tag, extra=(), infinite=True):
        """Starts a 2-worker gateway in the background; returns (Popen, [tx pcap per queue])."""
        prefix = unique_prefix(tag)
        self._prefixes.append(prefix)
        outs = [self.path(f"{tag}_p1q{q}.pcap") for q in (0, 1)]
        e = self.path("empty.pcap")
        clear = (f"net_pcap0,rx_pcap={self.path('in0.pcap')},rx_pcap={self.path('in1.pcap')},"
                 f"tx_pcap={self.path(tag + '_p0q0.pcap')},tx_pcap={self.path(tag + '_p0q1.pcap')}")
        if infinite:
            clear += ",infinite_rx=1"
        prot = f"net_pcap1,rx_pcap={e},rx_pcap={e},tx_pcap={outs[0]},tx_pcap={outs[1]}"
        args = [MSECGW_BIN, "--no-huge", "-m", "1024", "--no-pci", "--lcores", lcores_arg(),
                "--file-prefix", prefix, "--vdev", clear, "--vdev", prot, "--", "--config", cfg, *extra]
        log = open(self.path(f"{tag}.log"), "w")
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(p)
        return p, outs

    def log(self, tag):
        with open(self.path(f"{tag}.log")) as f:
            return f.read()

    def wait_for_traffic(self, p, outs, tag, timeout=30):
        """Until every tx queue file holds packets (both lanes are sealing)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if p.poll() is not None:
                self.fail(f"{tag}: gateway exited {p.returncode} before traffic:\n{self.log(tag)}")
            if all(os.path.exists(o) and os.path.getsize(o) > 24 + 4096 for o in outs):
                return
            time.sleep(0.02)
        self.fail(f"{tag}: no ESP output on both queues after {timeout} s:\n{self.log(tag)}")

    def lanes_of(self, outs, tag):
        """{lane: counter array} of one run, checking IV layout, lane = queue, seq = ctr + 1."""
        lanes = {}
        for q, path in enumerate(outs):
            spi, seq, iv = read_esp(path)
            os.unlink(path)  # hundreds of MB per run
            self.assertGreater(len(iv), 0, f"{tag}: queue {q} sent nothing")
            self.assertTrue((spi == SPI).all(), f"{tag}: queue {q}: SPI other than {SPI:#x}")
            lane = iv >> np.uint64(LANE_SHIFT)
            self.assertTrue((lane == q).all(), f"{tag}: queue {q} (worker {q}) sent IVs of lanes {np.unique(lane)}")
            ctr = iv & np.uint64(CTR_MASK)
            self.assertTrue((seq == ((ctr + np.uint64(1)) & np.uint64(0xFFFFFFFF)).astype(np.uint32)).all(),
                            f"{tag}: queue {q}: seq != counter + 1")
            d = np.diff(ctr.astype(np.int64))
            if len(d) and not (d > 0).all():
                i = int(np.argmax(d <= 0))
                self.fail(f"{tag}: lane {q}: counter {int(ctr[i + 1])} after {int(ctr[i])} (record {i + 1})")
            lanes[q] = ctr
        return lanes

    def check_run(self, tag, lanes, hw_before, hw_after, prev_max):
        for q, ctr in lanes.items():
            first, last = int(ctr[0]), int(ctr[-1])
            self.assertGreaterEqual(first, hw_before[q],
                                    f"{tag}: lane {q} starts at {first}, below the persisted high-water "
                                    f"{hw_before[q]} of the previous run")
            self.assertGreater(first, prev_max.get(q, -1),
                               f"{tag}: lane {q} starts at {first}, not beyond the previous run's last {prev_max.get(q)}")
            self.assertLess(last, hw_after[q],
                            f"{tag}: lane {q} sent counter {last}, but only [0, {hw_after[q]}) was persisted")

    def test_sigkill_restarts_never_reuse_an_iv(self):
        """5 x (start, 0.15-1.5 M frames per lane on 2 lanes, SIGKILL), then a clean run: every
        (SPI, IV) unique, every restart beyond the persisted high-water of the run before."""
        self.two_lane_inputs()
        cfg = self.config()
        hw = [0, 0]
        prev_max = {}
        all_ivs = []
        figures = []
        for c in range(KILL_CYCLES + 1):
            tag = f"run{c}"
            last = c == KILL_CYCLES
            stats_json = self.path("s.json")
            extra = ["--duration", "0.8", "--stats-json", stats_json] if last else []
            p, outs = self.start(cfg, tag, extra)
            if last:
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self.fail(f"{tag}: clean run did not exit:\n{self.log(tag)}")
                self.assertEqual(p.returncode, 0, f"{tag}: exit {p.returncode}\n{self.log(tag)}")
            else:
                self.wait_for_traffic(p, outs, tag)
                want = 24 + KILL_AFTER_FRAMES[c] * (16 + ESP_FRAME_LEN)
                end = time.monotonic() + KILL_AFTER_MAX_SECONDS
                while min(os.path.getsize(o) for o in outs) < want and time.monotonic() < end:
                    time.sleep(0.002)
                self.assertIsNone(p.poll(), f"{tag}: gateway died by itself:\n{self.log(tag)}")
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=30)
                self.assertEqual(p.returncode, -signal.SIGKILL)
            hw_after = read_store(self.store_path())
            lanes = self.lanes_of(outs, tag)
            self.assertEqual(sorted(lanes), [0, 1])
            self.check_run(tag, lanes, hw, hw_after, prev_max)
            figures.append((tag, {q: (int(v[0]), int(v[-1]), len(v)) for q, v in lanes.items()}, hw_after[:2]))
            if last:
                with open(stats_json) as f:
                    stats = json.load(f)
                self.assertEqual(len(stats["lcores"]), 2, f"two workers expected: {stats['lcores']}")
                self.assertTrue(all(lc["rx_packets"] > 0 for lc in stats["lcores"]), stats["lcores"])
                self.assertEqual(stats["drops_total"], 0, stats["drops"])
                sent = sum(len(v) for v in lanes.values())
                ports = {pt["port"]: pt for pt in stats["ports"]}
                self.assertEqual(ports[1]["tx_packets"], sent, "clean run: every sealed frame captured")
                self.assertEqual(stats["sealed"], sent)
            for q, v in lanes.items():
                prev_max[q] = int(v[-1])
                all_ivs.append((np.uint64(q) << np.uint64(LANE_SHIFT)) | v)  # the IV itself
            hw = hw_after
        ivs = np.concatenate(all_ivs)
        uniq, counts = np.unique(ivs, return_counts=True)
        dup = uniq[counts > 1]
        self.assertEqual(len(dup), 0, f"{len(dup)} (SPI {SPI:#x}, IV) pairs repeat, e.g. IV {int(dup[0]) if len(dup) else 0:#018x}")
        crossed = sum(1 for _, lf, _ in figures for a, b, _ in lf.values() if b >= a + BLOCK)
        print(f"# nonce: {len(figures)} runs ({KILL_CYCLES} SIGKILLed), {len(ivs)} ESP frames, "
              f"{len(uniq)} unique (SPI, IV); {crossed} (run, lane)s went past their first IV block")
        for tag, lanes_fig, hwa in figures:
            print(f"#   {tag}: " + ", ".join(f"lane {q}: ctr {a}..{b} ({n} frames)" for q, (a, b, n) in lanes_fig.items())
                  + f"; store high-water after: {hwa}")

    def prepare_store(self):
        """A real IV store, written by a clean 2-worker run over a few frames."""
        self.two_lane_inputs()
        cfg = self.config()
        p, _ = self.start(cfg, "seed", ["--duration", "0.5"], infinite=False)
        p.wait(timeout=60)
        self.assertEqual(p.returncode, 0, self.log("seed"))
        return cfg

    def test_corrupt_iv_store_refuses_to_start(self):
        """One flipped byte anywhere in the store: exit != 0 naming the file, file untouched."""
        cfg = self.prepare_store()
        store = self.store_path()
        with open(store, "rb") as f:
            good = f.read()
        hw0 = read_store(store)
        self.assertGreater(hw0[0], 0)
        lane0 = good.index(b"\nlcore 0 ") + len(b"\nlcore 0 ")
        crc = good.rindex(b"crc32 ") + len(b"crc32 ")
        cases = {
            "lane 0 high-water digit (lowered)": (lane0, lambda b: b - 1 if b > 0x30 else b + 1),
            "magic": (2, lambda b: b ^ 0x20),
            "limit line": (good.index(b"limit ") + 7, lambda b: b ^ 0x01),
            "crc digit": (crc + 3, lambda b: 0x30 + (b - 0x30 + 1) % 10 if b <= 0x39 else 0x30),
            "newline of the sa line": (good.index(b"\nlimit"), lambda b: 0x20),
        }
        for n, (what, (off, flip)) in enumerate(cases.items()):
            with self.subTest(corruption=what):
                bad = bytearray(good)
                bad[off] = flip(bad[off])
                self.assertNotEqual(bytes(bad), good)
                with open(store, "wb") as f:
                    f.write(bad)
                tag = f"corrupt{n}"
                p, outs = self.start(cfg, tag, ["--duration", "2"])
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self.fail(f"{what}: gateway kept running on a corrupt store")
                log = self.log(tag)
                self.assertNotEqual(p.returncode, 0, f"{what}: gateway started on a corrupt IV store:\n{log}")
                self.assertIn(store, log, f"{what}: the message does not name the store file:\n{log}")
                with open(store, "rb") as f:
                    self.assertEqual(f.read(), bytes(bad), f"{what}: the corrupt store was rewritten (reset?)")
                for o in outs:
                    if os.path.exists(o):
                        self.assertEqual(len(read_esp(o)[2]), 0, f"{what}: ESP sent from a corrupt store")
        # Control: the intact file is accepted and its counters continue.
        with open(store, "wb") as f:
            f.write(good)
        p, outs = self.start(cfg, "intact", ["--duration", "0.5"], infinite=False)
        p.wait(timeout=60)
        self.assertEqual(p.returncode, 0, self.log("intact"))
        for q, o in enumerate(outs):
            _, _, iv = read_esp(o)
            self.assertTrue(len(iv) > 0 and int(iv[0] & np.uint64(CTR_MASK)) >= hw0[q],
                            f"intact store: lane {q} restarts below {hw0[q]}")

    def test_renamed_sa_keeps_its_counters(self):
        """Regression: the IV counters belong to the key. The same SPI and key under a new SA name
        continues the old name's counters instead of repeating its IVs."""
        self.two_lane_inputs()
        ivs = []
        for n, name in enumerate([SA_NAME, SA_NAME + "-renamed"]):
            p, outs = self.start(self.config(name), f"name{n}", ["--duration", "0.5"], infinite=False)
            p.wait(timeout=60)
            self.assertEqual(p.returncode, 0, self.log(f"name{n}"))
            ivs.append(np.concatenate([read_esp(o)[2] for o in outs]))
        reused = np.intersect1d(ivs[0], ivs[1])
        self.assertEqual(len(reused), 0, f"same SPI {SPI:#x} and key after a rename: {len(reused)} IVs reused, "
                                         f"e.g. {int(reused[0]) if len(reused) else 0:#018x}")


if __name__ == "__main__":
    unittest.main()
