"""[C] Key regions on the testbed (scripts/testbed.sh, docs/regions.md): four live gateways in
their own network namespaces (edge A, boundary 1, boundary 2, edge B), a kernel multicast sender
in leaf A, two receivers in leaf B that join through the kernel (IGMP/MLD), and an unauthorised
host on the trunk.

One scenario, run once (setUpClass), checked by the test cases:
  1. both receivers get every datagram of an IPv4 and an IPv6 group byte for byte; captures on
     leaf A's protected segment, the trunk and leaf B's protected segment show only ESP, each
     under its region's SPI, outer addresses = the inner (S,G); the trunk host reads nothing;
  2. leaf A's SA is replaced (new SPI, new key) while traffic runs: gateway 1 takes the new SA
     beside the old one, edge A switches, gateway 1 drops the old one; the trunk's SA (SPI, key,
     counters) is untouched and the receivers lose nothing;
  3. an ESP frame captured on leaf A, re-injected on the trunk, is dropped: esp_wrong_region on
     boundary 1 (it knows leaf A's SA, but not on its trunk port), esp_no_sa on boundary 2.
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gwharness import MSECGW_BIN  # noqa: E402

SRC = os.environ.get("MSECGW_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
CLI = os.environ.get("MSECGW_CLI_BIN", os.path.join(os.path.dirname(MSECGW_BIN), "..", "msecgw-cli", "msecgw-cli"))
TESTBED = os.path.join(SRC, "scripts", "testbed.sh")
MCAST = os.path.join(SRC, "scripts", "testbed", "mcast.py")
sys.path.insert(0, os.path.join(SRC, "scripts", "testbed"))
from mcast import datagram  # noqa: E402

PREFIX = f"rg{os.getpid()}"  # unique: parallel runs in other trees must not clash
PY = "/usr/bin/python3"
GROUPS = [("239.1.1.1", 5001, 4), ("ff1e::1:1", 5002, 6)]
SENDER = {4: "10.1.0.1", 6: "fd00:a::1"}
N = 900          # datagrams per group
RATE = 150.0     # per second and group: 6 s of traffic
SPI_A, SPI_A2, SPI_T, SPI_B = 0x0A000001, 0x0A000002, 0x7F000001, 0x0B000001
KEY_A2 = "0x" + "c3" * 16 + "0c0c0c0c"


def ns(name):
    return ["ip", "netns", "exec", f"{PREFIX}-{name}"]


def read_frames(path):
    from scapy.utils import RawPcapReader
    return [bytes(d) for d, _ in RawPcapReader(path)]


def esp_of(frame):
    """(family, outer src, outer dst, SPI, inner-proto) of an ESP frame, or None for anything else."""
    et = frame[12:14]
    ip = frame[14:]
    if et == b"\x08\x00" and ip[9] == 50:
        hl = (ip[0] & 15) * 4
        return 4, ip[12:16], ip[16:20], struct.unpack(">I", ip[hl:hl + 4])[0]
    if et == b"\x86\xdd" and ip[6] == 50:
        return 6, ip[8:24], ip[24:40], struct.unpack(">I", ip[40:44])[0]
    return None


def is_group_traffic(frame):
    """An IPv4/IPv6 packet to one of the test's groups (clear or ESP)."""
    import ipaddress
    et, ip = frame[12:14], frame[14:]
    if et == b"\x08\x00":
        return ip[16:20] == ipaddress.ip_address(GROUPS[0][0]).packed
    if et == b"\x86\xdd":
        return ip[24:40] == ipaddress.ip_address(GROUPS[1][0]).packed
    return False


class RegionsTestbed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if shutil.which("dumpcap") is None:
            raise unittest.SkipTest("dumpcap (wireshark) not installed")
        cls.tmp = tempfile.mkdtemp(prefix="msecgw-regions-")
        cls.dir = os.path.join(cls.tmp, "tb")
        cls.env = dict(os.environ, TESTBED_PREFIX=PREFIX, TESTBED_DIR=cls.dir, MSECGW_BIN=MSECGW_BIN,
                       MSECGW_CLI_BIN=CLI)
        cls.procs = []
        cls.bed("down")  # a leftover of an interrupted run
        up = cls.bed("up")
        if up.returncode != 0:
            cls.bed("down")
            raise AssertionError(f"testbed up failed:\n{up.stdout}\n{up.stderr}")
        try:
            cls.run_scenario()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for p in cls.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        cls.procs = []
        cls.bed("down")
        if os.environ.get("MSECGW_KEEP_TESTBED") is None:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def bed(cls, what):
        return subprocess.run(["bash", TESTBED, what], env=getattr(cls, "env", os.environ), capture_output=True,
                              text=True, timeout=120)

    @classmethod
    def path(cls, name):
        return os.path.join(cls.tmp, name)

    @classmethod
    def spawn(cls, argv, log):
        p = subprocess.Popen(argv, stdout=open(cls.path(log), "w"), stderr=subprocess.STDOUT)
        cls.procs.append(p)
        return p

    @classmethod
    def cli(cls, gw, *words):
        out = subprocess.run([CLI, "--socket", os.path.join(cls.dir, f"{gw}.sock"), "--json", *words],
                             capture_output=True, timeout=30)
        if out.returncode != 0:
            raise AssertionError(f"msecgw-cli {gw} {words}: {out.stderr.decode()}")
        return json.loads(out.stdout)

    @classmethod
    def drops(cls, gw):
        return cls.cli(gw, "show", "drops")["drops"]

    @classmethod
    def wait(cls, pred, what, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return
            time.sleep(0.05)
        logs = "".join(f"\n--- {g}\n" + open(os.path.join(cls.dir, f"{g}.log")).read()[-2000:]
                       for g in ("gw-a", "gw-1", "gw-2", "gw-b"))
        raise AssertionError(f"timed out waiting for {what}{logs}")

    @classmethod
    def reload(cls, gw, text, count):
        """Writes gw's configuration, SIGHUP, waits for its count-th reload."""
        cfg = os.path.join(cls.dir, f"{gw}.yaml")
        with open(cfg, "w") as f:
            f.write(text.replace("@STATE@", os.path.join(cls.dir, f"state-{gw}")))
        with open(os.path.join(cls.dir, f"{gw}.pid")) as f:
            os.kill(int(f.read()), signal.SIGHUP)
        log = os.path.join(cls.dir, f"{gw}.log")
        cls.wait(lambda: open(log).read().count("configuration reloaded from") >= count
                 or "reload refused" in open(log).read(), f"{gw} reload {count}")
        if "reload refused" in open(log).read():
            raise AssertionError(f"{gw}: reload refused:\n{open(log).read()[-2000:]}")

    @classmethod
    def keylog(cls, gw):
        with open(os.path.join(cls.dir, f"{gw}.keylog")) as f:
            return f.read().splitlines()

    @classmethod
    def run_scenario(cls):
        with open(os.path.join(SRC, "scripts", "testbed", "gw-1.yaml")) as f:
            gw1 = f.read()
        with open(os.path.join(SRC, "scripts", "testbed", "gw-a.yaml")) as f:
            gwa = f.read()
        # captures: leaf A protected (at boundary 1), the trunk (the unauthorised host's view),
        # leaf B protected (at edge B)
        cls.caps = {"leaf-a": ("gw-1", "p0"), "trunk": ("hC", "eth0"), "leaf-b": ("gw-b", "b1")}
        for seg, (where, iface) in cls.caps.items():
            cls.spawn(ns(where) + ["dumpcap", "-q", "-P", "-i", iface, "-w", cls.path(f"{seg}.pcap")], f"{seg}.cap.log")
        cls.receivers = {}
        for host in ("hB1", "hB2", "hC"):
            for group, port, fam in GROUPS:
                key = (host, fam)
                out, ready = cls.path(f"{host}-{fam}.rx"), cls.path(f"{host}-{fam}.ready")
                cls.receivers[key] = (cls.spawn(ns(host) + [PY, MCAST, "recv", "--group", group, "--port", str(port),
                                                            "--out", out, "--ready", ready, "--seconds", "60"],
                                                f"{host}-{fam}.log"), out)
        cls.wait(lambda: all(os.path.exists(cls.path(f"{h}-{f}.ready")) for h, f in cls.receivers), "receivers joined")
        cls.wait(lambda: all(os.path.exists(cls.path(f"{s}.pcap")) for s in cls.caps), "captures started")
        time.sleep(1.0)  # IGMP/MLD reports out, dumpcap capturing
        cls.keylog_t_before = [l for l in cls.keylog("gw-1") if "0x7f000001" in l]
        cls.sa_t_before = {s["name"]: s for s in cls.cli("gw-1", "show", "sa")}["t-out"]
        senders = [cls.spawn(ns("hA") + [PY, MCAST, "send", "--group", g, "--port", str(p), "--count", str(N),
                                         "--rate", str(RATE)], f"send-{fam}.log") for g, p, fam in GROUPS]
        # 2. leaf A rekey while traffic runs: make before break
        time.sleep(1.5)
        a2_in = (f'  - {{name: a-in2, dir: in, spi: {SPI_A2:#010x}, aead: aes-128-gcm, key: "{KEY_A2}", '
                 'region: leaf-a}\n')
        both = gw1.replace("sas:\n", "sas:\n" + a2_in)
        both = both.replace("policies:\n", "policies:\n"
                            "  - {dir: in, region: leaf-a, dst: 239.0.0.0/8, action: protect, sa: a-in2}\n"
                            "  - {dir: in, region: leaf-a, dst: 'ff1e::/16', action: protect, sa: a-in2}\n")
        cls.reload("gw-1", both, 1)
        cls.sa_t_mid = {s["name"]: s for s in cls.cli("gw-1", "show", "sa")}["t-out"]
        new_a = gwa.replace("spi: 0x0a000001", f"spi: {SPI_A2:#010x}").replace(
            'key: "0xa1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a10a0a0a0a"', f'key: "{KEY_A2}"')
        assert new_a != gwa
        cls.reload("gw-a", new_a, 1)
        time.sleep(1.0)
        only_new = gw1.replace("spi: 0x0a000001", f"spi: {SPI_A2:#010x}").replace(
            'key: "0xa1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a10a0a0a0a"', f'key: "{KEY_A2}"')
        cls.reload("gw-1", only_new, 2)
        for s in senders:
            s.wait(timeout=60)
        cls.senders_rc = [s.returncode for s in senders]
        time.sleep(1.5)  # the last datagrams through four gateways
        cls.keylog_t_after = [l for l in cls.keylog("gw-1") if "0x7f000001" in l]
        cls.sa_t_after = {s["name"]: s for s in cls.cli("gw-1", "show", "sa")}["t-out"]
        for p in cls.procs:
            if p.poll() is None and "dumpcap" in p.args:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=30)
        # 3. a leaf-A frame (under the SA now in use) re-injected on the trunk
        cls.drops_before = {g: cls.drops(g) for g in ("gw-1", "gw-2")}
        leaf_a = read_frames(cls.path("leaf-a.pcap"))
        cls.replayed = next(f for f in reversed(leaf_a) if esp_of(f) and esp_of(f)[3] == SPI_A2)
        with open(cls.path("replayed.bin"), "wb") as f:
            f.write(cls.replayed)
        inject = ("import sys; from scapy.all import sendp, Raw; "
                  "sendp(Raw(open(sys.argv[1], 'rb').read()), iface='eth0', verbose=False)")
        subprocess.run(ns("hC") + [PY, "-c", inject, cls.path("replayed.bin")], check=True, timeout=60)
        cls.wait(lambda: cls.drops("gw-1")["esp_wrong_region"] > cls.drops_before["gw-1"]["esp_wrong_region"]
                 and cls.drops("gw-2")["esp_no_sa"] > cls.drops_before["gw-2"]["esp_no_sa"],
                 "the re-injected frame's drops")
        time.sleep(0.5)
        cls.drops_after = {g: cls.drops(g) for g in ("gw-1", "gw-2")}
        for key, (p, _out) in cls.receivers.items():
            p.send_signal(signal.SIGTERM)
        for key, (p, _out) in cls.receivers.items():
            p.wait(timeout=30)
        cls.got = {}
        for key, (_p, out) in cls.receivers.items():
            with open(out) as f:
                cls.got[key] = [bytes.fromhex(l) for l in f.read().split()]

    # ---- 1. byte for byte at the receivers, ESP per region on every segment

    def test_1_receivers_get_every_datagram_byte_for_byte(self):
        self.assertEqual(self.senders_rc, [0, 0])
        for host in ("hB1", "hB2"):
            for group, _port, fam in GROUPS:
                want = [datagram(group, i) for i in range(N)]
                got = self.got[(host, fam)]
                self.assertEqual(len(got), N, f"{host} IPv{fam}: {len(got)} of {N} datagrams")
                self.assertEqual(got, want, f"{host} IPv{fam}: datagrams differ from what leaf A sent")

    def test_1_segments_carry_only_their_regions_esp(self):
        import ipaddress
        want_spis = {"leaf-a": {SPI_A, SPI_A2}, "trunk": {SPI_T}, "leaf-b": {SPI_B}}
        for seg in self.caps:
            frames = [f for f in read_frames(self.path(f"{seg}.pcap")) if is_group_traffic(f)]
            self.assertGreaterEqual(len(frames), 2 * N, f"{seg}: captured {len(frames)} group frames")
            spis = set()
            for f in frames:
                e = esp_of(f)
                self.assertIsNotNone(e, f"{seg}: a clear group frame: {f[:64].hex()}")
                fam, src, dst, spi = e
                self.assertEqual(src, ipaddress.ip_address(SENDER[fam]).packed, f"{seg}: outer source = S")
                self.assertEqual(dst, ipaddress.ip_address(GROUPS[0 if fam == 4 else 1][0]).packed,
                                 f"{seg}: outer destination = G")
                spis.add(spi)
            self.assertEqual(spis, want_spis[seg], f"{seg}: SPIs seen")

    def test_1_trunk_host_reads_nothing(self):
        for fam in (4, 6):
            self.assertEqual(self.got[("hC", fam)], [], f"the trunk host's IPv{fam} socket")

    # ---- 2. leaf A rekey leaves the trunk alone

    def test_2_leaf_rekey_leaves_trunk_sa_untouched(self):
        self.assertTrue(self.keylog_t_before)
        self.assertEqual(self.keylog_t_after, self.keylog_t_before, "the trunk SA's SPI and key at gateway 1")
        for k in ("spi", "aead", "dst", "src"):
            self.assertEqual(self.sa_t_after[k], self.sa_t_before[k], k)
        # the same SA object: its packet counter went on through both reloads, never reset
        self.assertLessEqual(self.sa_t_before["packets"], self.sa_t_mid["packets"])
        self.assertLess(self.sa_t_mid["packets"], self.sa_t_after["packets"])
        self.assertGreaterEqual(self.sa_t_after["packets"], 2 * N)
        for seg, spis in (("leaf-a", (SPI_A, SPI_A2)),):
            seen = [esp_of(f)[3] for f in read_frames(self.path(f"{seg}.pcap")) if is_group_traffic(f)]
            self.assertIn(SPI_A, seen)
            self.assertIn(SPI_A2, seen, "the new leaf-A SA carried traffic")

    # ---- 3. wrong region

    def test_3_leaf_a_frame_on_the_trunk_is_dropped_and_counted(self):
        b, a = self.drops_before, self.drops_after
        self.assertEqual(a["gw-1"]["esp_wrong_region"] - b["gw-1"]["esp_wrong_region"], 1, "boundary 1")
        self.assertEqual(a["gw-2"]["esp_no_sa"] - b["gw-2"]["esp_no_sa"], 1, "boundary 2")
        for host in ("hB1", "hB2"):
            self.assertEqual(len(self.got[(host, 4)]) + len(self.got[(host, 6)]), 2 * N, f"{host}: nothing extra")


if __name__ == "__main__":
    unittest.main()
