#!/usr/bin/python3
"""RFC 6054 Sender-IDs on manual outbound SAs (`sender_id`, `sender_id_bits`; DESIGN.md invariant 1).

The same key runs twice with two Sender-IDs of one width, then with the first one again, on one
state_dir. Every IV on the wire is [Sender-ID][lane][counter]: its top bits are the configured
Sender-ID, the lane is the worker (one here: 0), seq = counter + 1. The runs' IV sets are disjoint:
two Sender-IDs differ in the top bits, and a Sender-ID that comes back continues its own counters
(its own IV store file). The same key under another Sender-ID width (or none) is refused, because
IVs of two widths can coincide. A Sender-ID that does not fit its width, or one on an inbound SA,
exits 2 with the one-line config error.
"""
import glob
import os
import unittest

from scapy.all import IP, UDP, Ether, Raw

from gwharness import GatewayTestCase, EspOf, sa_key_hex, unique_prefix

SPI = 0x6001
KEY = sa_key_hex(20, seed=0x61)
BITS = 8
LANE_BITS = 6
COUNTER_BITS = 64 - BITS - LANE_BITS
ESP_OFF = 14 + 20  # Ethernet + outer IPv4 without options
FRAMES = 200

CONFIG = """\
state_dir: @STATE@
ports: [{port: 0, side: clear}, {port: 1, side: protected}]
sas:
  - name: s-out
    dir: out
    spi: 0x6001
    aead: aes-128-gcm
    key: "@KEY@"
@SENDER@
policies:
  - {dir: out, dst: 239.6.0.0/16, action: protect, sa: s-out}
"""


def config(sender_lines):
    return CONFIG.replace("@KEY@", KEY).replace("@SENDER@", sender_lines)


def with_sender_id(sender_id, bits=BITS):
    return config(f"    sender_id_bits: {bits}\n    sender_id: {sender_id:#x}")


def frame(i):
    return bytes(Ether(src="02:00:00:00:00:06", dst="01:00:5e:06:00:01") /
                 IP(src="10.6.0.1", dst="239.6.0.1") / UDP(sport=6000, dport=6001) / Raw(i.to_bytes(4, "big") * 4))


def line_of(text, key):
    """1-based line an error about `key` names: the key's own line, or the SA's first line for `sas[0]`."""
    want = "- name:" if key == "sas[0]" else key.rsplit(".", 1)[-1] + ":"
    return next(n for n, ln in enumerate(text.splitlines(), 1) if ln.strip().startswith(want))


def esp_fields(f):
    """(spi, seq, iv) of an Ethernet/IPv4/ESP frame."""
    assert f[12:14] == b"\x08\x00" and f[14] == 0x45 and f[23] == 50, f"not Ethernet/IPv4/ESP: {f[:34].hex()}"
    esp = f[ESP_OFF:]
    return int.from_bytes(esp[0:4], "big"), int.from_bytes(esp[4:8], "big"), int.from_bytes(esp[8:16], "big")


class SenderIdTest(GatewayTestCase):

    def ivs_of_run(self, sender_id):
        """Runs the gateway with `sender_id`; checks the layout of every IV; returns the IV set."""
        frames = [frame(i) for i in range(FRAMES)]
        run = self.run_gateway(with_sender_id(sender_id), clear_rx=frames, duration=2)
        self.assertEqual(run.stats["sealed"], FRAMES, run.describe())
        self.assertFrames(run.prot_out, [EspOf(f, SPI) for f in frames], "port 1 output")
        ivs = []
        for i, f in enumerate(run.prot_out):
            spi, seq, iv = esp_fields(f)
            self.assertEqual(spi, SPI)
            self.assertEqual(iv >> (64 - BITS), sender_id, f"frame {i}: IV {iv:#018x} top bits")
            self.assertEqual((iv >> COUNTER_BITS) & ((1 << LANE_BITS) - 1), 0, f"frame {i}: IV {iv:#018x} lane")
            ctr = iv & ((1 << COUNTER_BITS) - 1)
            self.assertLess(ctr, 1 << 32, f"frame {i}: IV {iv:#018x} counter")
            self.assertEqual(seq, ctr + 1, f"frame {i}: seq {seq} for IV {iv:#018x}")
            ivs.append(iv)
        self.assertEqual(len(set(ivs)), len(ivs), "an IV repeats within one run")
        return set(ivs)

    def stores(self):
        return sorted(os.path.basename(p) for p in glob.glob(os.path.join(self.path("state"), "iv-*.store")))

    def run_refused(self, config_text):
        """Runs the gateway on net_pcap expecting it to refuse to start; returns (exit code, stderr)."""
        cfg = self.write_config(config_text)
        in_pcap, out_pcap = self.path("in.pcap"), self.path("refused_out.pcap")
        prefix = unique_prefix("sid")
        self._prefixes.append(prefix)
        proc = self.run_binary(["--no-huge", "-m", "1024", "--no-pci", "-l", "0,1", "--file-prefix", prefix,
                                "--vdev", f"net_pcap0,rx_pcap={in_pcap},tx_pcap={self.path('c_out.pcap')}",
                                "--vdev", f"net_pcap1,rx_pcap={in_pcap},tx_pcap={out_pcap}",
                                "--", "--config", cfg, "--duration", "1"])
        return proc.returncode, proc.stderr

    def test_two_sender_ids_one_key_disjoint_ivs(self):
        a = self.ivs_of_run(0x2A)
        b = self.ivs_of_run(0x2B)
        self.assertFalse(a & b, "two Sender-IDs of one key produced the same IV")
        # Each Sender-ID keeps its own counters, next to each other in state_dir.
        stores = self.stores()
        self.assertEqual(len(stores), 2, stores)
        self.assertTrue(stores[0].endswith("-sid8-42.store") and stores[1].endswith("-sid8-43.store"), stores)
        self.assertEqual(stores[0][:-len("-sid8-42.store")], stores[1][:-len("-sid8-43.store")],
                         "one key fingerprint for both")
        # The first Sender-ID again continues after its own counters.
        a2 = self.ivs_of_run(0x2A)
        self.assertFalse(a2 & (a | b), "a Sender-ID that came back reused an IV")
        self.assertGreater(min(a2), max(a), "counters of a Sender-ID go on after a restart")

    def test_same_key_under_another_width_is_refused(self):
        self.ivs_of_run(0x2A)
        before = self.stores()
        for what, text in (("12-bit Sender-ID", with_sender_id(0x2A, bits=12)),
                           ("no Sender-ID", config("")),
                           ("sender_id_bits 0", config("    sender_id_bits: 0"))):
            with self.subTest(what):
                rc, err = self.run_refused(text)
                self.assertNotEqual(rc, 0, f"{what}: the gateway started:\n{err}")
                self.assertIn("Sender-ID width 8", err, err)
                self.assertIn(os.path.join(self.path("state"), before[0]), err, "the message names the store")
                self.assertNotIn(KEY[2:10], err, "key material in the message")
                self.assertEqual(self.stores(), before, f"{what}: a store was written")
        # The Sender-ID of the width in use still works afterwards.
        self.ivs_of_run(0x01)

    def test_bad_sender_id_is_a_one_line_config_error(self):
        cases = (
            ("does not fit", with_sender_id(0x100), "sas[0].sender_id",
             "expected 0..255 to fit in sender_id_bits 8, got 0x100"),
            ("width too large", with_sender_id(1, bits=17), "sas[0].sender_id_bits", "expected 0..16, got 17"),
            ("no width", config("    sender_id: 5"), "sas[0]", "missing key 'sender_id_bits'"),
            ("inbound SA", config("    sender_id_bits: 8").replace("dir: out", "dir: in", 1)
             .replace("dst: 239.6.0.0/16, action: protect, sa: s-out", "action: bypass"),
             "sas[0].sender_id_bits", "only outbound SAs (dir: out) have a Sender-ID"),
        )
        for what, text, key, reason in cases:
            with self.subTest(what):
                cfg = self.write_config(text)
                prefix = unique_prefix("sidcfg")
                self._prefixes.append(prefix)
                proc = self.run_binary(["--no-pci", "--file-prefix", prefix, "--", "--config", cfg])
                self.assertEqual(proc.returncode, 2, f"{what}: {proc.stderr!r}")
                self.assertEqual(proc.stdout, "")
                lines = proc.stderr.splitlines()
                self.assertEqual(len(lines), 1, f"{what}: stderr must be one line: {proc.stderr!r}")
                self.assertTrue(lines[0].startswith(f"msecgw: {cfg}:{line_of(text, key)}: {key}: "), lines[0])
                self.assertIn(reason, lines[0])
                self.assertFalse(os.path.exists(os.path.join("/var/run/dpdk", prefix)), "EAL was started")
                self.assertFalse(os.path.exists(self.path("state")), "state_dir was created")


if __name__ == "__main__":
    unittest.main()
