"""Issue [E1] acceptance 3: gateways register with the embedded key server, receive TEKs and
Sender-IDs, and carry encrypted multicast between them while the key server rekeys every two
seconds: 0 packets lost, 0 replay drops at the receiver, no (key, nonce) pair repeated across
senders.

Testbed (one private network namespace, key management over its loopback):

    sender 1 ─ a1c-tx ═ a1c ─[gateway A1: key server + member gw-a1, sends]─ a1p ═ a1p-br ─┐
    sender 2 ─ a2c-tx ═ a2c ─[gateway A2: member gw-a2, sends]──────────────── a2p ═ a2p-br ─┤ br0
             B's clear out (net_pcap) ─[gateway B: member gw-b, receives]───── bp  ═ bp-br ──┘
                                                                         capture on bp-br (dumpcap)

Every gateway is the real binary on net_af_packet (see live()); the senders are paced AF_PACKET replays of
numbered frames (traffic_paced.py). A1 and A2 also open each other's traffic (both are members).
"""
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

from gwharness import MSECGW_BIN, read_pcap, write_pcap
from livegw import LiveGatewaysTestCase, live

HERE = os.path.dirname(os.path.abspath(__file__))
SENDER = os.path.join(HERE, "traffic_paced.py")
CLI_BIN = os.environ.get("MSECGW_CLI_BIN", os.path.join(os.path.dirname(MSECGW_BIN), "..", "msecgw-cli", "msecgw-cli"))
DUMPCAP = shutil.which("dumpcap") or "/usr/bin/dumpcap"
MAGIC = b"MSKM"
N_PER_SENDER, RATE = 4000, 500.0  # 8 s of traffic from each sender: about four rekeys
GCKS_PORT = 18848
PSK = {"gw-a1": "0x" + bytes(range(16, 48)).hex(), "gw-a2": "0x" + bytes(range(48, 80)).hex(),
       "gw-b": "0x" + bytes(range(80, 112)).hex()}

GROUP = """groups:
  - {name: video, id: 7, dst: 239.1.0.0/16, members: [gw-a1, gw-a2, gw-b], senders: [gw-a1, gw-a2],
     tek_lifetime_seconds: 30, rekey_period_seconds: 2}
"""

KEY_SERVER = f"""key_server:
  listen: 127.0.0.1:{GCKS_PORT}
  peers:
""" + "".join(f"    - {{identity: {i}, psk: \"{k}\"}}\n" for i, k in PSK.items())


def member(identity):
    return f"""member:
  identity: {identity}
  psk: "{PSK[identity]}"
  key_server: 127.0.0.1:{GCKS_PORT}
  activation_delay_ms: 400
  deactivation_delay_ms: 800
"""


def config(state, identity, send, key_server=False):
    text = f"state_dir: {state}\nports:\n  - {{port: 0, side: clear}}\n  - {{port: 1, side: protected}}\n"
    text += GROUP + (KEY_SERVER if key_server else "") + member(identity) + "policies:\n"
    if send:
        text += "  - {dir: out, dst: 239.1.0.0/16, action: protect, group: video}\n"
    text += "  - {dir: in, dst: 239.1.0.0/16, action: protect, group: video}\n"
    return text


def clear_frame(sender, i, size):
    """Frame number i of sender 1 or 2: UDP from 10.<sender>.0.<1..4> to 239.1.<1|2>.1, numbered."""
    k = i % 4
    src = bytes([10, sender, 0, 1 + k])
    group = bytes([239, 1, 1 + k % 2, 1])
    eth = bytes.fromhex("01005e") + bytes([group[1] & 0x7F, group[2], group[3]]) + bytes([2, 0, 0, 0, sender, 1]) + b"\x08\x00"
    body = MAGIC + bytes([sender]) + i.to_bytes(4, "big")
    body += bytes((i + j) & 0xFF for j in range(size - 14 - 28 - len(body)))
    udp = (4000 + k).to_bytes(2, "big") + (5000).to_bytes(2, "big") + (8 + len(body)).to_bytes(2, "big") + b"\0\0"
    total = 20 + len(udp) + len(body)
    ip = bytearray(bytes([0x45, 0]) + total.to_bytes(2, "big") + b"\0\0\x40\0" + bytes([16, 17]) + b"\0\0" + src + group)
    csum = sum(int.from_bytes(ip[j:j + 2], "big") for j in range(0, 20, 2))
    csum = (csum & 0xFFFF) + (csum >> 16)
    csum = (csum & 0xFFFF) + (csum >> 16)
    ip[10:12] = (~csum & 0xFFFF).to_bytes(2, "big")
    return eth + bytes(ip) + udp + body


class KeyManagedGroupTest(LiveGatewaysTestCase):

    TAG = "gkm"
    GATEWAYS = ("a1", "a2", "b")

    def setUp(self):
        super().setUp()
        self.bridge((("a1c", "a1c-tx", 0x1100), ("a1p", "a1p-br", 0x1101), ("a2c", "a2c-tx", 0x2200),
                     ("a2p", "a2p-br", 0x2201), ("bp", "bp-br", 0x3300)), ("a1p-br", "a2p-br", "bp-br"))

    def cli_json(self, name, *words):
        r = subprocess.run([CLI_BIN, "--socket", self.path(f"{name}.sock"), "--json", *words],
                           capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            self.fail_with_logs(f"msecgw-cli {name} {' '.join(words)}: exit {r.returncode}: {r.stderr}")
        return json.loads(r.stdout)

    def group_of(self, name):
        if not os.path.exists(self.path(f"{name}.sock")):
            return None
        groups = self.cli_json(name, "show", "group")["groups"]
        return groups[0] if groups else None

    def test_two_senders_one_receiver_rekeyed_every_two_seconds(self):
        empty = self.path("empty.pcap")
        write_pcap(empty, [])
        b_out = self.path("b_clear_out.pcap")
        a1 = self.start_gateway("a1", [live(0, "a1c"), live(1, "a1p")],
                                config(self.path("state-a1"), "gw-a1", True, key_server=True), self.cpu1)
        a2 = self.start_gateway("a2", [live(0, "a2c"), live(1, "a2p")],
                                config(self.path("state-a2"), "gw-a2", True), self.cpu1)
        b = self.start_gateway("b", [f"net_pcap0,rx_pcap={empty},tx_pcap={b_out}", live(1, "bp")],
                               config(self.path("state-b"), "gw-b", False), self.cpu0)

        def ready(name, sending):
            g = self.group_of(name)
            return g is not None and g["member_state"] == "registered" and (g["sealing_spi"] != "" or not sending)
        for name, sending in (("a1", True), ("a2", True), ("b", False)):
            self.wait_for(lambda: ready(name, sending), f"{name} registered")
        sid = {n: self.group_of(n)["sender_id"] for n in ("a1", "a2")}
        self.assertIsNone(self.group_of("b")["sender_id"], "a receiver asks for no Sender-ID")
        self.assertNotEqual(sid["a1"], sid["a2"], "senders get distinct Sender-IDs")

        capture = self.path("wire.pcap")
        cap = subprocess.Popen(self.ns.cmd([DUMPCAP, "-q", "-P", "-i", "bp-br", "-w", capture]),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.procs.append(cap)
        self.wait_for(lambda: os.path.exists(capture) and os.path.getsize(capture) > 0, "dumpcap started", 15)
        time.sleep(0.5)

        frames = {1: [clear_frame(1, i, 60 + (i * 53) % 900) for i in range(N_PER_SENDER)],
                  2: [clear_frame(2, i, 60 + (i * 31) % 1300) for i in range(N_PER_SENDER)]}
        senders = []
        for s, iface in ((1, "a1c-tx"), (2, "a2c-tx")):
            pcap = self.path(f"send{s}.pcap")
            write_pcap(pcap, frames[s])
            p = subprocess.Popen(self.ns.cmd([sys.executable, SENDER, "--iface", iface, "--pcap", pcap, "--rate", str(RATE),
                                              "--every", "1000", "--cpu", str(self.cpu0)]),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            self.procs.append(p)
            senders.append(p)
        first_spi = self.group_of("a1")["server_tek_spi"]
        for p in senders:
            out, _ = p.communicate(timeout=120)
            if p.returncode != 0 or "done" not in out:
                self.fail_with_logs(f"sender failed ({p.returncode}): {out[-500:]}")
        last_spi = self.group_of("a1")["server_tek_spi"]
        a1_group = self.group_of("a1")
        b_group = self.group_of("b")
        time.sleep(1.0)  # the last frames drain through the gateways
        cap.send_signal(signal.SIGTERM)
        cap.wait(timeout=15)
        for p in (a1, a2, b):
            p.send_signal(signal.SIGTERM)
        for p in (a1, a2, b):
            p.wait(timeout=30)
            if p.returncode != 0:
                self.fail_with_logs(f"gateway exit {p.returncode}")
        stats = {}
        for n in ("a1", "a2", "b"):
            with open(self.path(f"{n}.json")) as f:
                stats[n] = json.load(f)

        # 1. Every frame of both senders reached B's clear side exactly once, byte for byte.
        got = read_pcap(b_out)
        sent = {f: (s, i) for s in (1, 2) for i, f in enumerate(frames[s])}
        seen = collections.Counter()
        for n, f in enumerate(got):
            if f not in sent:
                self.fail_with_logs(f"B output frame {n} was never sent ({len(f)} bytes)")
            seen[sent[f]] += 1
        dup = [k for k, c in seen.items() if c > 1]
        missing = [k for k in sent.values() if k not in seen]
        drops_b = {k: v for k, v in stats["b"]["drops"].items() if v}
        self.assertEqual(dup, [], "frames delivered twice")
        self.assertEqual(len(missing), 0, f"{len(missing)} of {len(sent)} frames lost, first {sorted(missing)[:8]}; "
                                          f"B drops {drops_b}; A1 drops {stats['a1']['drops']}")
        # 2. No drop at the receiver: no replay drop, no unknown SPI, no auth failure.
        self.assertEqual(stats["b"]["drops_total"], 0, drops_b)
        self.assertEqual(stats["b"]["opened"], 2 * N_PER_SENDER)
        for n in ("a1", "a2"):
            self.assertEqual(stats[n]["sealed"], N_PER_SENDER, f"{n} sealed every frame of its sender")
            self.assertEqual(stats[n]["drops"].get("no_group_key", 0), 0)

        # 3. The key server rekeyed under traffic; B accepted the rekeys.
        self.assertNotEqual(first_spi, last_spi, "the key server rekeyed during the run")
        self.assertGreaterEqual(b_group["rekeys_accepted"], 3, b_group)
        self.assertEqual(b_group["rekeys_rejected"], 0, b_group)
        self.assertTrue(a1_group["key_server"])

        # 4. On the wire: ESP under several TEKs, two Sender-IDs in the IVs, no (SPI, IV) twice.
        wire = self.esp_on_wire(capture)
        self.assertEqual(len(wire), 2 * N_PER_SENDER, "every protected frame was captured once")
        spis = {spi for spi, _ in wire}
        self.assertGreaterEqual(len(spis), 3, f"TEKs seen on the wire: {sorted(map(hex, spis))}")
        self.assertEqual(len(set(wire)), len(wire), "an (SPI, IV) pair repeated: a (key, nonce) reuse")
        senders_in_iv = {iv >> 48 for _, iv in wire}
        self.assertEqual(senders_in_iv, {sid["a1"], sid["a2"]}, "IVs carry the two Sender-IDs (16 bits)")

    def esp_on_wire(self, capture):
        """(SPI, IV as int) of every IPv4 ESP frame of the capture (classic pcap: dumpcap -P)."""
        out = []
        for f in read_pcap(capture):
            if f[12:14] == b"\x08\x00" and f[23] == 50:
                ihl = (f[14] & 0x0F) * 4
                esp = f[14 + ihl:]
                out.append((int.from_bytes(esp[0:4], "big"), int.from_bytes(esp[8:16], "big")))
        return out


if __name__ == "__main__":
    unittest.main()
