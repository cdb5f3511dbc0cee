"""Shared helpers for the integration tests: run the real msecgw binary on DPDK net_pcap vdevs.

Environment (set by tests/integration/meson.build): MSECGW_BIN = the built binary,
MSECGW_SRC = the source tree. Each run gets its own temp dir and a unique EAL --file-prefix.
"""
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from scapy.utils import RawPcapReader, RawPcapWriter

_BIN_DEFAULT = os.path.join(os.path.dirname(__file__), "..", "..", "build", "app", "msecgw", "msecgw")
MSECGW_BIN = os.environ.get("MSECGW_BIN", os.path.abspath(_BIN_DEFAULT))

def _drop_labels():
    """Every drop reason label, read from the one table in lib/common/drop_reason.hh."""
    src = os.environ.get("MSECGW_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
    with open(os.path.join(src, "lib", "common", "drop_reason.hh")) as f:
        return re.findall(r'\{drop_reason::\w+, "(\w+)"', f.read())


DROP_LABELS = _drop_labels()

_prefix_counter = itertools.count()


def unique_prefix(tag):
    """A fresh EAL --file-prefix, unique per process and call."""
    return f"msecgw_it_{tag}_{os.getpid()}_{next(_prefix_counter)}"


def write_pcap(path, frames):
    """Writes raw Ethernet frames (bytes, any length, even 0) as a linktype-1 pcap."""
    w = RawPcapWriter(path, linktype=1, sync=True)
    w.write_header(None)  # so a pcap without packets still has its header
    for f in frames:
        w.write(bytes(f))
    w.close()


def read_pcap(path):
    """The frames of a pcap, exactly as written (bytes)."""
    return [bytes(data) for data, _meta in RawPcapReader(path)]


def sa_key_hex(nbytes=20, seed=0x5a):
    """A deterministic, obviously-fake keying material hex string of nbytes bytes."""
    return "0x" + "".join(f"{(seed + 7 * i) & 0xff:02x}" for i in range(nbytes))


class GatewayRun:
    """Result of one gateway run."""

    def __init__(self, proc, stats, clear_out, prot_out):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.stats = stats
        self.clear_out = clear_out  # frames transmitted on port 0 (clear side)
        self.prot_out = prot_out    # frames transmitted on port 1 (protected side)

    def describe(self):
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


class EspOf:
    """Expectation: `frame` leaves sealed as tunnel-mode ESP under `spi` (contents not compared)."""

    def __init__(self, frame, spi):
        self.frame, self.spi = frame, spi

    def matches(self, got):
        l3 = 18 if self.frame[12:14] == b"\x81\x00" else 14
        if got[:l3] != self.frame[:l3]:
            return False
        v4 = self.frame[l3] >> 4 == 4
        addr = slice(l3 + 12, l3 + 20) if v4 else slice(l3 + 8, l3 + 40)
        proto = got[l3 + 9] if v4 else got[l3 + 6]
        hdr = 20 if v4 else 40
        return got[addr] == self.frame[addr] and proto == 50 and int.from_bytes(got[l3 + hdr:l3 + hdr + 4], "big") == self.spi


class GatewayTestCase(unittest.TestCase):
    """A test case with a private temp dir, and a helper running the gateway in it."""

    maxDiff = None

    def setUp(self):
        if not os.access(MSECGW_BIN, os.X_OK):
            self.fail(f"msecgw binary not found at {MSECGW_BIN} (run scripts/build.sh)")
        self.tmp = tempfile.mkdtemp(prefix="msecgw_it_")
        self._prefixes = []

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        for p in self._prefixes:  # EAL runtime dirs of our own runs
            shutil.rmtree(os.path.join("/var/run/dpdk", p), ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write_config(self, text, name="c.yaml"):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text.replace("@STATE@", self.path("state")))
        return p

    def run_binary(self, args, timeout=60):
        return subprocess.run([MSECGW_BIN] + args, capture_output=True, text=True, timeout=timeout)

    def gateway_args(self, config_text, clear_rx=(), prot_rx=(), duration=3):
        """The msecgw command line (without the binary) for port 0 = clear vdev, port 1 =
        protected vdev, frames fed from pcaps written here; --stats-json goes to path("s.json")."""
        cfg = self.write_config(config_text)
        in_pcap, empty_pcap = self.path("in.pcap"), self.path("empty.pcap")
        prot_in = self.path("prot_in.pcap")
        write_pcap(in_pcap, clear_rx)
        write_pcap(empty_pcap, [])
        # The acceptance shape feeds empty.pcap to port 1; a protected-side input gets its own file.
        port1_rx = empty_pcap
        if prot_rx:
            write_pcap(prot_in, prot_rx)
            port1_rx = prot_in
        clear_out, prot_out = self.path("clear_out.pcap"), self.path("prot_out.pcap")
        stats_json = self.path("s.json")
        prefix = unique_prefix(self.id().rsplit(".", 1)[-1][:20])
        self._prefixes.append(prefix)
        args = ["--no-huge", "-m", "1024", "--no-pci", "-l", "0,1", "--file-prefix", prefix,
                "--vdev", f"net_pcap0,rx_pcap={in_pcap},tx_pcap={clear_out}",
                "--vdev", f"net_pcap1,rx_pcap={port1_rx},tx_pcap={prot_out}",
                "--", "--config", cfg, "--duration", str(duration), "--stats-json", stats_json]
        return args

    def read_stats(self):
        """The --stats-json of the last gateway_args() run."""
        with open(self.path("s.json")) as f:
            return json.load(f)

    def run_gateway(self, config_text, clear_rx=(), prot_rx=(), duration=3):
        """Runs msecgw with port 0 = clear vdev, port 1 = protected vdev, frames fed from pcaps.

        Returns a GatewayRun; asserts exit 0 and a readable --stats-json.
        """
        args = self.gateway_args(config_text, clear_rx, prot_rx, duration)
        proc = self.run_binary(args, timeout=duration + 60)
        if proc.returncode != 0 or not os.path.exists(self.path("s.json")):
            self.fail(f"msecgw failed: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return GatewayRun(proc, self.read_stats(), read_pcap(self.path("clear_out.pcap")),
                          read_pcap(self.path("prot_out.pcap")))

    # ---- assertions shared by the traffic tests

    def assertFrames(self, got, want, what):
        """Same frames, byte for byte, in the same order; the message names the first difference.
        A wanted entry EspOf(frame) stands for that frame sealed as group ESP: same L2 header,
        outer addresses equal to the inner ones (RFC 5374), IP protocol 50 and the given SPI."""
        if len(got) == len(want) and all(g == w or (isinstance(w, EspOf) and w.matches(g)) for g, w in zip(got, want)):
            return
        for i, (g, w) in enumerate(zip(got, want)):
            if isinstance(w, EspOf):
                if not w.matches(g):
                    self.fail(f"{what}: frame {i} is not {w.frame.hex()} sealed with SPI {w.spi:#x}: {g.hex()}")
            elif g != w:
                self.fail(f"{what}: frame {i} differs\n got  {g.hex()}\n want {w.hex()}")
        self.fail(f"{what}: got {len(got)} frames, want {len(want)}")

    def assertDrops(self, stats, expected):
        """Every reason's counter equals `expected` (a {label: count}); all others are 0."""
        self.assertEqual(sorted(stats["drops"]), sorted(DROP_LABELS), "drop reason labels")
        want = {label: expected.get(label, 0) for label in DROP_LABELS}
        unknown = set(expected) - set(DROP_LABELS)
        self.assertFalse(unknown, f"test expects unknown drop reasons {unknown}")
        self.assertEqual(stats["drops"], want, "per-reason drop counters")
        self.assertEqual(stats["drops_total"], sum(want.values()), "drops_total")
