"""Issue [D] acceptance 1-3 with the real binary: a sender-side gateway A tags a group's traffic
(tesla, manifest, sign), a verifying gateway B receives it live together with >= 10^4 forgeries
made by a member that holds the group key (scapy-free ESP built here with the SA key: the real
sender's source address with a wrong or absent tag). B forwards every genuine packet byte for
byte and no forgery; every forgery is counted under a srcauth drop reason.

Testbed (one private network namespace):

    paced clear frames ─ ac-tx ═ ac ─[gateway A: tags, seals]─ ap ═ ap-br ─┐
    forger (traffic_paced.py) ─────────────────────────── fx ═ fx-br ───────┤ br0
    B's clear out (net_pcap) ─[gateway B: opens, verifies]─ bp ═ bp-br ─────┘
                                          dumpcap on fx (what A sent, for the replays)

TESLA: A's data frames replayed after their keys were disclosed are dropped as unsafe (the
clock-offset bound exceeded); with every other disclosure lost (srcauth_relay.py between A and B
instead of the bridge) every genuine packet still passes. Manifest: A's manifests replayed are
rejected; packets of lost manifests time out and are counted, or with best_effort are released.
"""
import hashlib
import json
import os
import shutil
import struct
import subprocess
import unittest

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gwharness import MSECGW_BIN, read_pcap, write_pcap
from livegw import LiveTestbed, live

HERE = os.path.dirname(os.path.abspath(__file__))
SENDER = os.path.join(HERE, "traffic_paced.py")
RELAY = os.path.join(HERE, "srcauth_relay.py")
CLI_BIN = os.environ.get("MSECGW_CLI_BIN", os.path.join(os.path.dirname(MSECGW_BIN), "..", "msecgw-cli", "msecgw-cli"))
DUMPCAP = shutil.which("dumpcap") or "/usr/bin/dumpcap"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
PY = "/usr/bin/python3"

GENUINE, FORGED = 2000, 10000
SPI = 0x5a01
KEY = bytes(range(0x40, 0x54))  # 16-byte AES key + 4-byte salt
SRC, GROUP = bytes([10, 1, 0, 1]), bytes([239, 1, 1, 1])
FRAME_LEN = 200

MODES = {
    "tesla": ("interval_ms: 50, disclosure_delay: 2, clock_offset_bound_ms: 20, chain_length: 20000",
              "interval_ms: 50, disclosure_delay: 2, clock_offset_bound_ms: 20, chain_length: 20000, hold_packets: 4096"),
    "manifest": ("manifest_packets: 64, manifest_max_age_ms: 20",
                 "manifest_packets: 64, manifest_max_age_ms: 20, hold_packets: 4096"),
    "sign": ("", ""),
}
# What a forgery with a wrong tag may be dropped as, by mode (the tag is checked as far as it goes).
WRONG_TAG = {"tesla": {"srcauth_unsafe", "srcauth_forged", "srcauth_bad_interval", "srcauth_not_bootstrapped"},
             "manifest": {"srcauth_timeout", "srcauth_forged"},
             "sign": {"srcauth_bad_signature"}}


def ipv4(src, dst, proto, payload, ttl=16):
    total = 20 + len(payload)
    h = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, ttl, proto, 0, src, dst))
    c = sum(struct.unpack("!10H", bytes(h)))
    c = (c & 0xFFFF) + (c >> 16)
    c = (c & 0xFFFF) + (c >> 16)
    h[10:12] = struct.pack("!H", ~c & 0xFFFF)
    return bytes(h) + payload


ETH = bytes.fromhex("01005e010101") + bytes.fromhex("020000000101") + b"\x08\x00"


def clear_frame(i):
    body = b"MSSA" + i.to_bytes(4, "big")
    body += bytes((i + j) & 0xFF for j in range(FRAME_LEN - 14 - 28 - len(body)))
    udp = struct.pack("!HHHH", 4000, 5000, 8 + len(body), 0) + body
    return ETH + ipv4(SRC, GROUP, 17, udp)


def esp_frame(payload, next_header, seq, iv):
    """Tunnel-mode group ESP of `payload` under the group SA, as any member can make it."""
    pad = (4 - (len(payload) + 2) % 4) % 4
    plain = payload + bytes(range(1, pad + 1)) + bytes([pad, next_header])
    hdr = struct.pack("!II", SPI, seq)
    ivb = iv.to_bytes(8, "big")
    ct = AESGCM(KEY[:16]).encrypt(KEY[16:] + ivb, plain, hdr)
    return ETH + ipv4(SRC, GROUP, 50, hdr + ivb + ct)


def forgery(mode, k, sender_id):
    """Forgery k: the real sender's source and group; even k without a tag, odd k with a wrong one."""
    inner = clear_frame(100000 + k)[14:]
    seq, iv = 0x10000 + k, 0x7000000000 + k
    if k % 2 == 0:
        return esp_frame(inner, 4, seq, iv)
    common = lambda typ, length: bytes([0x10 | typ, 4]) + struct.pack("!HIQ", length, sender_id, 0x100000 + k)
    if mode == "tesla":
        tag = common(1, 36) + struct.pack("!I", 1) + hashlib.sha256(inner).digest()[:16]
        return esp_frame(tag + inner, 253, seq, iv)
    if mode == "manifest":
        return esp_frame(common(2, 16) + inner, 253, seq, iv)
    hdr = common(3, 20) + bytes([1, 0, 0, 0])
    return esp_frame(hdr + inner + hashlib.sha512(inner).digest(), 253, seq, iv)


def srcauth_type(frame):
    """The source-authentication message type inside one of A's ESP frames (None: not one)."""
    if len(frame) < 14 + 20 + 16 + 16 + 16 or frame[23] != 50:
        return None
    esp = frame[34:]
    spi, seq = struct.unpack("!II", esp[:8])
    if spi != SPI or seq >= 0x10000:  # the forger's own frames have seq >= 0x10000
        return None
    try:
        plain = AESGCM(KEY[:16]).decrypt(KEY[16:] + esp[8:16], esp[16:], esp[:8])
    except InvalidTag:
        return None
    return plain[0] & 0x0F if plain[-1] == 253 else None


class SourceAuthTest(LiveTestbed):

    TAG = "srcauth"

    def setUp(self):
        super().setUp()
        self.links((("ac", "ac-tx", 0x1100), ("ap", "ap-br", 0x1101), ("ar", "ar-x", 0x1102),
                    ("fx", "fx-br", 0x2200), ("bp", "bp-br", 0x3300), ("bq", "bq-x", 0x3301)),
                   ("ap-br", "fx-br", "bp-br"))
        key, pub = self.path("sender.pem"), self.path("sender.pub.pem")
        subprocess.run([OPENSSL, "genpkey", "-algorithm", "ed25519", "-out", key], check=True, capture_output=True)
        subprocess.run([OPENSSL, "pkey", "-in", key, "-pubout", "-out", pub], check=True, capture_output=True)
        der = subprocess.run([OPENSSL, "pkey", "-pubin", "-in", pub, "-outform", "DER"], check=True,
                             capture_output=True).stdout
        self.sender_id = int.from_bytes(hashlib.sha256(der).digest()[:3], "big") << 8  # worker 0

    def config(self, mode, side, b_extra=""):
        send, verify = MODES[mode]
        extra = send if side == "a" else verify + b_extra
        extra = (", " + extra) if extra else ""
        if side == "a":
            sa = (f"  - {{name: g-out, dir: out, spi: {SPI:#x}, aead: aes-128-gcm, key: \"0x{KEY.hex()}\",\n"
                  f"     source_auth: {{mode: {mode}, signing_key: {self.path('sender.pem')}{extra}}}}}\n")
            pol = "  - {dir: out, dst: 239.1.0.0/16, action: protect, sa: g-out}\n"
        else:
            sa = (f"  - {{name: g-in, dir: in, spi: {SPI:#x}, aead: aes-128-gcm, key: \"0x{KEY.hex()}\", "
                  f"dst: 239.1.0.0/16, replay_window: 0,\n"
                  f"     source_auth: {{mode: {mode}, trust: [{{sender: 10.1.0.0/24, public_key: "
                  f"{self.path('sender.pub.pem')}}}]{extra}}}}}\n")
            pol = "  - {dir: in, dst: 239.1.0.0/16, action: protect, sa: g-in}\n"
        return (f"state_dir: {self.path('state-' + side)}\nports:\n  - {{port: 0, side: clear}}\n"
                f"  - {{port: 1, side: protected}}\nsas:\n{sa}policies:\n{pol}")

    def stats(self, name):
        """`show stats` of a gateway, or None while it does not answer (yet)."""
        try:
            r = subprocess.run([CLI_BIN, "--socket", self.path(f"{name}.sock"), "--json", "show", "stats"],
                               capture_output=True, text=True, timeout=20)
        except subprocess.TimeoutExpired:
            return None
        return json.loads(r.stdout) if r.returncode == 0 else None

    def send(self, iface, frames, rate, name):
        pcap = self.path(f"{name}.pcap")
        write_pcap(pcap, frames)
        return subprocess.Popen(self.ns.cmd([PY, SENDER, "--iface", iface, "--pcap", pcap, "--rate", str(rate),
                                             "--every", "1000000"]),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def srcauth_drops(self, st):
        return {k: v for k, v in st["drops"].items() if k.startswith("srcauth_") and v}

    def start_pair(self, mode, a_prot, b_prot, b_extra=""):
        """B (verifying) first, then A (tagging): A's first bootstrap must find B listening."""
        empty, b_out = self.path("empty.pcap"), self.path("b_clear_out.pcap")
        write_pcap(empty, [])
        self.start_gateway("b", [f"net_pcap0,rx_pcap={empty},tx_pcap={b_out}", live(1, b_prot)],
                           self.config(mode, "b", b_extra), self.cpu0)
        self.wait_for(lambda: os.path.exists(self.path("b.sock")) and self.stats("b") is not None, "b up")
        self.start_gateway("a", [live(0, "ac"), live(1, a_prot)], self.config(mode, "a"), self.cpu1)
        self.wait_for(lambda: os.path.exists(self.path("a.sock")) and self.stats("a") is not None, "a up")

    def start_relay(self, drop_type, every):
        """A's protected link to B through srcauth_relay.py, which loses some control messages."""
        self.relay_report = self.path("relay.json")
        p = subprocess.Popen(self.ns.cmd([PY, RELAY, "--in", "ar-x", "--out", "bq-x", "--key", KEY.hex(),
                                          "--spi", hex(SPI), "--drop-type", str(drop_type), "--every", str(every),
                                          "--report", self.relay_report]),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        self.assertEqual(p.stdout.readline().strip(), "ready", "relay started")
        return p

    def stop_relay(self, p):
        p.terminate()
        p.wait(timeout=10)
        with open(self.relay_report) as f:
            return json.load(f)

    def run_mode(self, mode):
        self.start_pair(mode, "ap", "bp")
        capture = self.path("wire.pcap")
        cap = subprocess.Popen(self.ns.cmd([DUMPCAP, "-q", "-P", "-i", "fx", "-w", capture]),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.procs.append(cap)
        self.wait_for(lambda: os.path.exists(capture) and os.path.getsize(capture) > 0, "dumpcap started")

        genuine = [clear_frame(i) for i in range(GENUINE)]
        forged = [forgery(mode, k, self.sender_id) for k in range(FORGED)]
        senders = [self.send("ac-tx", genuine, 4000 if mode != "sign" else 2000, "genuine"),
                   # sign: B verifies each forgery's signature (~13 k/s per core, docs/performance.md)
                   self.send("fx", forged, {"tesla": 20000, "manifest": 10000, "sign": 4000}[mode], "forged")]
        for p in senders:
            _, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err)

        def settled():
            st = self.stats("b")
            forged = sum(v for k, v in self.srcauth_drops(st).items() if k != "srcauth_stale_control") if st else 0
            return st is not None and st["tx_packets"] >= GENUINE and forged >= FORGED
        self.wait_for(settled, "B forwarded the genuine packets and dropped the forgeries", on_fail=lambda: self.stats("b"))
        st = self.stats("b")
        drops = self.srcauth_drops(st)
        self.assertEqual(st["tx_packets"], GENUINE, f"forwarded: {st}")
        self.assertEqual(drops.get("srcauth_missing"), FORGED // 2, f"untagged forgeries: {drops}")
        wrong = sum(v for k, v in drops.items() if k in WRONG_TAG[mode])
        self.assertEqual(wrong, FORGED // 2, f"wrong-tag forgeries: {drops}")
        # Besides forgeries, only genuine control messages that brought nothing new (a periodic
        # bootstrap, a disclosure of a key data packets already gave) are dropped, as stale.
        self.assertTrue(set(drops) - {"srcauth_missing", "srcauth_stale_control"} <= WRONG_TAG[mode], f"drop reasons {drops}")
        return st, capture

    def replay_captured(self, capture, pick, name):
        frames = [f for f in read_pcap(capture) if pick(f)]
        self.assertTrue(frames, f"no {name} frames captured")
        p = self.send("fx", frames, 2000, name)
        _, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)
        return len(frames)

    def finish(self, genuine=GENUINE, forwarded=None):
        """Stops everything; B's clear output is the genuine frames byte for byte (all of them, or
        `forwarded` distinct ones of them) and nothing else."""
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
            p.wait(timeout=30)
        for n in self.names:  # every packet accounted for at exit, source-auth messages included
            with open(self.path(f"{n}.json")) as f:
                st = json.load(f)
            self.assertEqual(st["srcauth_held"], 0, f"{n}: nothing held after exit")
            self.assertEqual(st["tx_packets"] + st["drops_total"],
                             st["rx_packets"] + st["srcauth_control_sent"] - st["srcauth_control_used"], f"{n}: {st}")
        got = [f for f in read_pcap(self.path("b_clear_out.pcap"))]
        want = [clear_frame(i) for i in range(genuine)]
        if forwarded is None:
            self.assertEqual(sorted(got), sorted(want), "B forwards every genuine packet byte for byte, and nothing else")
        else:
            self.assertEqual(len(got), forwarded, "frames B forwarded")
            self.assertEqual(len(set(got)), len(got), "no frame forwarded twice")
            self.assertTrue(set(got) <= set(want), "B forwards genuine frames only, byte for byte")

    def send_genuine(self, n, rate):
        p = self.send("ac-tx", [clear_frame(i) for i in range(n)], rate, "genuine")
        _, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)

    def test_tesla_lost_disclosures(self):
        """Every other disclosure lost (data packets carry no key): later ones carry the chain."""
        relay = self.start_relay(drop_type=5, every=2)
        self.start_pair("tesla", "ar", "bq", ", hold_timeout_ms: 2000")  # a loaded machine may lag
        n = 1000
        self.send_genuine(n, 2000)
        self.wait_for(lambda: (self.stats("b") or {}).get("tx_packets") == n, "every genuine packet released",
                      on_fail=lambda: self.stats("b"))
        st = self.stats("b")
        drops = {k: v for k, v in self.srcauth_drops(st).items() if k != "srcauth_stale_control"}
        self.assertEqual(drops, {}, "no genuine packet dropped")
        self.assertEqual(st["srcauth_held"], 0, "nothing left held")
        lost = self.stop_relay(relay)["dropped"]
        self.assertGreaterEqual(len(lost), 2, "the relay lost disclosures")
        self.finish(n)

    def test_tesla_chain_end_packets_dropped_unsealed(self):
        """Past the end of its key chain a sender cannot tag: its packets are dropped as
        srcauth_tag_failed before sealing (none counted as sealed, none sent)."""
        text = self.config("tesla", "a").replace("chain_length: 20000", "chain_length: 3") \
            .replace("interval_ms: 50", "interval_ms: 1").replace("disclosure_delay: 2", "disclosure_delay: 1")
        self.assertIn("chain_length: 3", text)
        self.start_gateway("a", [live(0, "ac"), live(1, "ap")], text, self.cpu1)
        self.wait_for(lambda: os.path.exists(self.path("a.sock")) and self.stats("a") is not None, "a up")
        n = 200
        self.send_genuine(n, 2000)  # the 3-interval chain (3 ms) ended long ago
        self.wait_for(lambda: (self.stats("a") or {"drops": {}})["drops"].get("srcauth_tag_failed") == n,
                      "every packet dropped as untagged", on_fail=lambda: self.stats("a"))
        st = self.stats("a")
        self.assertEqual(st["sealed"], 0, "untagged packets are not sealed")
        self.assertEqual(st["ports"][1]["tx_packets"], st["srcauth_control_sent"], "only control messages sent")

    def lost_manifests(self, best_effort):
        relay = self.start_relay(drop_type=6, every=3)
        # a loaded machine may lag (signing thread, relay): held packets wait up to 2 s for their manifest
        self.start_pair("manifest", "ar", "bq", ", hold_timeout_ms: 2000" + (", best_effort: true" if best_effort else ""))
        n = 1000
        self.send_genuine(n, 2000)

        def settled():
            st = self.stats("b")
            return st is not None and st["tx_packets"] + st["drops"]["srcauth_timeout"] == n and st["srcauth_held"] == 0
        self.wait_for(settled, "every genuine packet released or timed out", on_fail=lambda: self.stats("b"))
        st = self.stats("b")
        lost = self.stop_relay(relay)["dropped"]
        uncovered = sum(m["digests"] for m in lost)
        self.assertGreater(uncovered, 0, "the relay lost manifests")
        drops = {k: v for k, v in self.srcauth_drops(st).items() if k != "srcauth_stale_control"}
        if best_effort:
            self.assertEqual(drops, {}, "best effort: packets of lost manifests released at the timeout")
            self.finish(n)
        else:
            self.assertEqual(drops, {"srcauth_timeout": uncovered}, "packets of lost manifests time out, counted")
            self.finish(n, forwarded=n - uncovered)

    def test_manifest_lost_dropped_after_timeout(self):
        self.lost_manifests(best_effort=False)

    def test_manifest_lost_best_effort_released(self):
        self.lost_manifests(best_effort=True)

    def test_tesla(self):
        st, capture = self.run_mode("tesla")
        # A's data frames again, long after their keys were disclosed: beyond the clock-offset bound.
        before = st["drops"]["srcauth_unsafe"]
        n = self.replay_captured(capture, lambda f: srcauth_type(f) == 1, "tesla data")
        self.wait_for(lambda: (self.stats("b") or {"drops": {}})["drops"].get("srcauth_unsafe") == before + n,
                      "replayed frames dropped as unsafe", on_fail=lambda: self.stats("b"))
        self.finish()

    def test_manifest(self):
        st, capture = self.run_mode("manifest")
        before = st["drops"]["srcauth_replayed_manifest"]
        n = self.replay_captured(capture, lambda f: srcauth_type(f) == 6, "manifest")
        self.wait_for(lambda: (self.stats("b") or {"drops": {}})["drops"].get("srcauth_replayed_manifest") == before + n,
                      "replayed manifests rejected", on_fail=lambda: self.stats("b"))
        self.finish()

    def test_sign(self):
        self.run_mode("sign")
        self.finish()


if __name__ == "__main__":
    unittest.main()
