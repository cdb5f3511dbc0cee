"""ESP interop of the real msecgw binary with independent implementations (issue [B], points 2, 3).

Peers: scapy 2.5 (`scapy.layers.ipsec.SecurityAssociation`, AES-GCM per RFC 4106), python-cryptography
(AESGCM: the whole plaintext with its RFC 4303 trailer) and tshark 4.0 (its ESP dissector reading
the `--keylog` file the gateway writes as its `esp_sa` table).

One gateway run per test class (in setUpClass; each costs ~3.5 s); the test methods check that run
from different angles, so each can fail on its own:

- OutboundInteropTest: scapy-made IPv4/IPv6 multicast from 20 senders per family, several groups,
  tagged and untagged, inner IP packets from the bare IP header (IPv4 20 bytes; IPv6 41; 40 in the
  regression tests) to 1500 bytes, two SAs
  (aes-128-gcm, aes-256-gcm) through the gateway; every ESP frame opened by scapy and by
  python-cryptography (byte-for-byte inner, trailer), outer header (RFC 5374 address preservation,
  DSCP/ECN, TTL/hop limit, DF only), L2 header kept, sequence numbers per (SPI, source), (SPI, IV)
  uniqueness and IV layout, and tshark decrypting every frame with the keylog copied verbatim.
- OutboundFragmentTest (MTU 1500) and OutboundFragment576Test: an ESP packet over the protected MTU
  leaves as outer fragments (fragmented after encryption), each within the MTU, L2 header kept, DF
  clear; scapy's defragment()/defragment6() rebuild it and it opens to the original; tshark
  reassembles and decrypts it with the keylog; a clear packet over the MTU is mtu_exceeded.
- InboundInteropTest: scapy encrypts group ESP (several senders on one SA, SAs told apart only by
  dst, only by src, SAD longest match, IPv6, VLAN, RFC 6040 ECN) -> the clear output is the L2 header
  plus the inner packet, byte for byte, in order; tshark opens the input with the run's keylog.
- InboundNegativeTest: every byte of one ESP packet flipped (two masks), truncations, unknown SPI,
  outer != inner, replay, too old, zero, forged packets that must not move the window, bad trailers
  (authentic), inner policy mismatch, clear on protected, ECN, inner parse errors, MTU: each row says
  its fate; output and every drop counter are computed from the table.
- InboundReassemblyTest: scapy's fragment()/fragment6() of scapy-made ESP, in any order, reassembled
  before decryption byte for byte; overlap, malformed, tampered, replayed, incomplete: each counted.
- Regressions of bugs these tests found (fixed): the keylog let tshark tell apart SAs sharing an
  SPI only once it carried their selectors; a 40-byte IPv6 packet (Payload Length 0) was dropped as
  ip_bad_length; RFC 6040 outer ECT(1) over inner ECT(0) was not propagated.

Run: meson test -C build integ_esp_interop -v
"""
import ipaddress
import os
import shutil
import struct
import subprocess
import unittest
import zlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from scapy.layers.inet import IP, UDP, IPOption_Router_Alert
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop
from scapy.layers.ipsec import ESP, SecurityAssociation, _ESPPlain
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from gwharness import GatewayTestCase, sa_key_hex

PASS = "pass"
HOST_MAC = "02:00:00:00:00:01"
TSHARK = shutil.which("tshark") or "/usr/bin/tshark"
WORKERS = 1  # the harness runs EAL with -l 0,1: one worker lcore, so one IV lane (lane 0)


def keymat(nbytes, seed):
    """RFC 4106 keying material (key || 4-byte salt) as bytes: 20 for aes-128-gcm, 36 for aes-256-gcm."""
    return bytes.fromhex(sa_key_hex(nbytes, seed)[2:])


def cfg_key(km):
    return "0x" + km.hex()


# ---- frames ------------------------------------------------------------------------------------

def mac_for(dst):
    a = ipaddress.ip_address(dst)
    p = a.packed
    if a.version == 4:
        return bytes([0x01, 0x00, 0x5E, p[1] & 0x7F, p[2], p[3]])
    return bytes([0x33, 0x33]) + p[12:16]


def l2(dst, vlan=None, family=None, pcp=0):
    """Ethernet header (with an 802.1Q tag when vlan is set) towards the group `dst`."""
    family = family or ipaddress.ip_address(dst).version
    ethertype = 0x0800 if family == 4 else 0x86DD
    head = mac_for(dst) + bytes.fromhex(HOST_MAC.replace(":", ""))
    if vlan is None:
        return head + struct.pack(">H", ethertype)
    return head + struct.pack(">HHH", 0x8100, (pcp << 13) | vlan, ethertype)


def l3_off(frame):
    return 18 if frame[12:14] == b"\x81\x00" else 14


def ip_len(ip):
    return struct.unpack(">H", ip[2:4])[0] if ip[0] >> 4 == 4 else 40 + struct.unpack(">H", ip[4:6])[0]


def ip_of(frame):
    """The IP packet of a frame, without Ethernet padding."""
    l3 = l3_off(frame)
    return frame[l3:l3 + ip_len(frame[l3:])]


def payload(n, tag=0):
    return bytes((i * 7 + 3 + tag * 13) & 0xFF for i in range(n))


def ip4(src, dst, size, tag=0, tos=0, ttl=16, flags=0, frag=0, options=None, dport=5000, proto=None):
    """An IPv4 packet of exactly `size` bytes: UDP when it fits (and proto is not forced), else a
    bare IP header with protocol 253 (RFC 3692 experimentation) and `size - IHL*4` payload bytes."""
    ip = IP(src=src, dst=dst, tos=tos, ttl=ttl, flags=flags, frag=frag, id=0x1000 + tag,
            options=options or [])
    hdr = len(ip)
    if proto is None and size >= hdr + 8 and frag == 0:
        pkt = ip / UDP(sport=4000 + tag % 1000, dport=dport) / Raw(payload(size - hdr - 8, tag))
    else:
        ip.proto = 253 if proto is None else proto
        pkt = ip / Raw(payload(size - hdr, tag))
    b = bytes(pkt)
    assert len(b) == size, (size, len(b))
    return b


def ip6(src, dst, size, tag=0, tc=0, fl=0, hlim=16, ext=None, dport=5000):
    """An IPv6 packet of exactly `size` bytes: UDP when it fits, else next header 59 (40 bytes) or
    253 with raw payload."""
    ip = IPv6(src=src, dst=dst, tc=tc, fl=fl, hlim=hlim)
    if ext is not None:
        ip = ip / ext
    hdr = len(ip)
    if size >= hdr + 8:
        pkt = ip / UDP(sport=4000 + tag % 1000, dport=dport) / Raw(payload(size - hdr - 8, tag))
    else:
        ip.nh = 59 if size == 40 else 253
        pkt = ip / Raw(payload(size - hdr, tag))
    b = bytes(pkt)
    assert len(b) == size, (size, len(b))
    return b


def ipv4_checksum(hdr):
    s = sum(struct.unpack(f">{len(hdr) // 2}H", hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def with_ip_len(frame, new_ip):
    """`frame` with its IP packet replaced by `new_ip`, whose length field (and IPv4 header
    checksum) is fixed to its real length."""
    l3 = l3_off(frame)
    ip = bytearray(new_ip)
    if ip[0] >> 4 == 4:
        ihl = (ip[0] & 0x0F) * 4
        ip[2:4] = struct.pack(">H", len(ip))
        ip[10:12] = b"\x00\x00"
        ip[10:12] = struct.pack(">H", ipv4_checksum(bytes(ip[:ihl])))
    else:
        ip[4:6] = struct.pack(">H", len(ip) - 40)
    return frame[:l3] + bytes(ip)


def set_inner_ecn(inner, ecn):
    """The inner packet with its ECN field set (IPv4 checksum recomputed)."""
    ip = bytearray(inner)
    if ip[0] >> 4 == 4:
        ip[1] = (ip[1] & 0xFC) | ecn
        ip[10:12] = b"\x00\x00"
        ip[10:12] = struct.pack(">H", ipv4_checksum(bytes(ip[:(ip[0] & 0x0F) * 4])))
    else:
        ip[1] = (ip[1] & 0xCF) | (ecn << 4)
    return bytes(ip)


# ---- ESP with the independent implementations --------------------------------------------------

def gcm_open(esp, km):
    """python-cryptography: the RFC 4106 plaintext (inner || padding || pad len || next header) of
    an ESP packet (SPI || seq || IV || ciphertext || ICV); raises InvalidTag."""
    return AESGCM(km[:-4]).decrypt(km[-4:] + esp[8:16], esp[16:], esp[:8])


def scapy_open(frame, spi, km):
    """scapy: SecurityAssociation(...).decrypt(pkt[IP]) of a tunnel-mode ESP frame -> inner bytes."""
    pkt = Ether(frame)
    outer = pkt[IP] if IP in pkt else pkt[IPv6]
    th = IP() if outer.version == 4 else IPv6()
    sa = SecurityAssociation(ESP, spi=spi, crypt_algo="AES-GCM", crypt_key=km, tunnel_header=th)
    return bytes(sa.decrypt(outer))


def default_iv(spi, src, seq):
    return struct.pack(">II", zlib.crc32(f"{spi}/{src}".encode()), seq)


def scapy_seal(spi, km, inner, seq, outer_src=None, outer_dst=None, family=None, tos=0, iv=None):
    """scapy: tunnel-mode group ESP of `inner` (bytes) -> outer IP packet bytes.
    The outer addresses default to the inner ones (RFC 5374 address preservation)."""
    pkt = IP(inner) if inner[0] >> 4 == 4 else IPv6(inner)
    family = family or inner[0] >> 4
    src, dst = outer_src or pkt.src, outer_dst or pkt.dst
    if family == 4:
        th = IP(src=src, dst=dst, tos=tos, ttl=64)
    else:
        th = IPv6(src=src, dst=dst, tc=tos, hlim=64)
    sa = SecurityAssociation(ESP, spi=spi, seq_num=seq, crypt_algo="AES-GCM", crypt_key=km, tunnel_header=th)
    out = bytes(sa.encrypt(pkt, iv=iv or default_iv(spi, src, seq)))
    # the builder checks itself: scapy must have sealed exactly `inner` (bytes, not a re-rendering)
    oh = 20 if family == 4 else 40
    plain = gcm_open(out[oh:], km)
    assert plain[:len(inner)] == inner and plain[-1] == (4 if inner[0] >> 4 == 4 else 41), "scapy altered the inner packet"
    return out


def scapy_seal_raw(spi, km, src, dst, seq, data, padding, nh, padlen=None):
    """scapy's AES-GCM over an arbitrary ESP plaintext (data || padding || pad len || nh): authentic
    packets with bad trailers. IPv4 outer src -> dst."""
    th = IP(src=src, dst=dst, ttl=64)
    sa = SecurityAssociation(ESP, spi=spi, crypt_algo="AES-GCM", crypt_key=km, tunnel_header=th)
    iv = default_iv(spi, src, seq)
    plain = _ESPPlain(spi=spi, seq=seq, iv=iv, data=data, padding=padding,
                      padlen=len(padding) if padlen is None else padlen, nh=nh)
    esp = sa.crypt_algo.encrypt(sa, plain, sa.crypt_key)
    return bytes(IP(src=src, dst=dst, ttl=64, proto=50) / esp)


# ---- one gateway run per test class ------------------------------------------------------------

def make_runner(keylog):
    """A GatewayTestCase used as a holder of one run (its temp dir lives until tearDownClass).
    Defined in a function so the test loader does not collect it."""

    class Runner(GatewayTestCase):
        def runTest(self):
            pass

        def run_binary(self, args, timeout=60):
            if keylog:
                args = args + ["--keylog", self.path("keylog")]
            return super().run_binary(args, timeout)

    return Runner()


class OneRun(GatewayTestCase):
    """Base: setUpClass runs the gateway once (cls.start), the tests read cls.gwrun."""

    KEYLOG = False

    @classmethod
    def setUpClass(cls):
        cls.gw = make_runner(cls.KEYLOG)
        cls.gw.setUp()
        try:
            cls.gwrun = cls.start(cls.gw)
        except BaseException:
            cls.gw.tearDown()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.gw.tearDown()

    def check_accounting(self, rx_port, n_in, n_out, drops, sealed=0, opened=0, bypassed=0):
        """Drop counters exact (others 0), rx = tx + drops, per-port counters, the other port silent."""
        s = self.gwrun.stats
        self.assertDrops(s, drops)
        self.assertEqual(s["rx_packets"], n_in, "rx_packets")
        self.assertEqual(s["tx_packets"], n_out, "tx_packets")
        self.assertEqual((s["sealed"], s["opened"], s["bypassed"]), (sealed, opened, bypassed),
                         "(sealed, opened, bypassed)")
        made = (s["fragments_out"] - s["fragmented"]) - (s["fragments_in"] - s["reassembled"])
        self.assertEqual(s["tx_packets"] + s["drops_total"], s["rx_packets"] + made, "every packet accounted for")
        ports = {p["port"]: p for p in s["ports"]}
        tx_port = 1 - rx_port
        self.assertEqual((ports[rx_port]["rx_packets"], ports[rx_port]["tx_packets"]), (n_in, 0))
        self.assertEqual((ports[tx_port]["rx_packets"], ports[tx_port]["tx_packets"]), (0, n_out))
        self.assertIn("every packet accounted for: yes", self.gwrun.stdout)


def fates_to_drops(fates):
    drops = {}
    for f in fates:
        if f != PASS and f not in OUT_SA_BY_NAME:
            drops[f] = drops.get(f, 0) + 1
    return drops


# ==== outbound: clear -> ESP, opened by scapy, python-cryptography and tshark =====================

KEY_G128 = keymat(20, 0x11)
KEY_G256 = keymat(36, 0x77)
OUT_SAS = [("g128", 0x00001001, "aes-128-gcm", KEY_G128), ("g256", 0x00002002, "aes-256-gcm", KEY_G256)]
OUT_SA_BY_NAME = {name: (spi, km) for name, spi, _, km in OUT_SAS}

OUT_CONFIG = """\
state_dir: @STATE@
ports: [{port: 0, side: clear}, {port: 1, side: protected, mtu: @MTU@}]
sas:
  - {name: g128, dir: out, spi: 0x00001001, aead: aes-128-gcm, key: "@K128@"}
  - {name: g256, dir: out, spi: 0x00002002, aead: aes-256-gcm, key: "@K256@"}
policies:
  - {dir: out, dst: 239.9.0.0/16, action: bypass}
  - {dir: out, dst: 239.1.0.0/16, action: protect, sa: g128}
  - {dir: out, dst: 239.2.0.0/16, action: protect, sa: g256}
  - {dir: out, dst: "ff3e::1:0/112", action: protect, sa: g128}
  - {dir: out, dst: "ff3e::2:0/112", action: protect, sa: g256}
  - {dir: out, dst: "ff3e::9:0/112", action: bypass}
"""


def out_config(mtu):
    return (OUT_CONFIG.replace("@MTU@", str(mtu)).replace("@K128@", cfg_key(KEY_G128))
            .replace("@K256@", cfg_key(KEY_G256)))


V4_SENDERS = [f"10.1.0.{i}" for i in range(1, 21)]
V6_SENDERS = [f"fd00:1::{i:x}" for i in range(1, 21)]
V4_GROUPS = [("239.1.0.1", "g128"), ("239.1.0.2", "g128"), ("239.2.0.1", "g256"), ("239.2.0.2", "g256")]
V6_GROUPS = [("ff3e::1:1", "g128"), ("ff3e::1:2", "g128"), ("ff3e::2:1", "g256"), ("ff3e::2:2", "g256")]
# inner IP sizes: the IP header alone (IPv4 20; IPv6 41, since the gateway's parser drops a 40-byte
# IPv6 packet: see Ipv6HeaderOnlyTest), every padding length, tiny UDP (0 and 18 payload bytes: the
# 60-byte minimum frame), up to 1500; 1446/1426 fill a 1500-byte ESP packet exactly
V4_SIZES = [20, 21, 22, 23, 28, 29, 30, 31, 46, 64, 100, 255, 256, 512, 1000, 1400, 1446, 1447, 1472, 1499, 1500]
V6_SIZES = [41, 42, 43, 48, 49, 50, 51, 62, 100, 512, 1280, 1426, 1427, 1452, 1499, 1500]


def outbound_table():
    """(name, frame, fate): fate = the SA name it leaves sealed with, PASS or a drop label."""
    rows = []
    k = 0
    for family, sizes, senders, groups, make in ((4, V4_SIZES, V4_SENDERS, V4_GROUPS, ip4),
                                                 (6, V6_SIZES, V6_SENDERS, V6_GROUPS, ip6)):
        for size in sizes:
            for variant in range(4):  # both SAs, each tagged and untagged
                src = senders[k % len(senders)]
                group, sa = groups[variant]
                vlan = 100 + k % 7 if variant % 2 else None
                inner = make(src, group, size, tag=k)
                rows.append((f"v{family} {size}B {src}->{group} vlan {vlan}", l2(group, vlan, pcp=k % 8) + inner, sa))
                k += 1
    s4, s6 = "10.1.0.7", "fd00:1::7"
    specials = [
        ("v4 IP header only + 26B Ethernet padding (60B frame)", l2("239.1.0.1") + ip4(s4, "239.1.0.1", 20, tag=1) + bytes(26), "g128"),
        ("v4 28B UDP + 18B Ethernet padding", l2("239.2.0.1") + ip4(s4, "239.2.0.1", 28, tag=2) + bytes(18), "g256"),
        ("vlan v4 28B UDP + 18B padding (64B frame)", l2("239.1.0.2", 5) + ip4(s4, "239.1.0.2", 28, tag=3) + bytes(18), "g128"),
        ("v6 41B + 5B Ethernet padding", l2("ff3e::2:1") + ip6(s6, "ff3e::2:1", 41, tag=4) + bytes(5), "g256"),
        ("v4 DSCP EF + ECT(0)", l2("239.1.0.1") + ip4(s4, "239.1.0.1", 200, tag=5, tos=0xB8 | 2), "g128"),
        ("v4 DSCP AF41 + CE", l2("239.2.0.2") + ip4(s4, "239.2.0.2", 201, tag=6, tos=0x88 | 3), "g256"),
        ("v4 DF", l2("239.1.0.1") + ip4(s4, "239.1.0.1", 300, tag=7, flags="DF"), "g128"),
        ("v4 first fragment (MF): outer carries no MF", l2("239.1.0.1") + ip4(s4, "239.1.0.1", 308, tag=8, flags="MF"), "g128"),
        ("v4 later fragment (offset 37)", l2("239.2.0.1") + ip4(s4, "239.2.0.1", 120, tag=9, frag=37, proto=17), "g256"),
        ("v4 router alert option (IHL 6)", l2("239.1.0.2") + ip4(s4, "239.1.0.2", 150, tag=10, options=[IPOption_Router_Alert()]), "g128"),
        ("v4 TTL 1", l2("239.2.0.2") + ip4(s4, "239.2.0.2", 90, tag=11, ttl=1), "g256"),
        ("v4 TTL 255 DF vlan", l2("239.2.0.2", 4094) + ip4(s4, "239.2.0.2", 91, tag=12, ttl=255, flags="DF"), "g256"),
        ("v6 TC 0xb9 flow label 0x12345", l2("ff3e::1:1") + ip6(s6, "ff3e::1:1", 200, tag=13, tc=0xB9, fl=0x12345), "g128"),
        ("v6 hop limit 1", l2("ff3e::2:2") + ip6(s6, "ff3e::2:2", 201, tag=14, hlim=1), "g256"),
        ("v6 hop limit 255 vlan", l2("ff3e::1:2", 3) + ip6(s6, "ff3e::1:2", 202, tag=15, hlim=255), "g128"),
        ("v6 hop-by-hop header", l2("ff3e::1:1") + ip6(s6, "ff3e::1:1", 160, tag=16, ext=IPv6ExtHdrHopByHop()), "g128"),
        # controls: a bypassed group and one without a rule
        ("v4 bypass 239.9.0.1", l2("239.9.0.1") + ip4(s4, "239.9.0.1", 100, tag=17), PASS),
        ("v6 bypass ff3e::9:1", l2("ff3e::9:1") + ip6(s6, "ff3e::9:1", 100, tag=18), PASS),
        ("v4 no rule 239.77.0.1", l2("239.77.0.1") + ip4(s4, "239.77.0.1", 100, tag=19), "policy_no_match"),
    ]
    return rows + specials


OUTBOUND = outbound_table()


def check_sealed(tc, got, frame, spi, km, what, fragmented=False):
    """Every property of one ESP frame made from the clear `frame`; returns (seq, iv, outer src).
    `fragmented`: `got` was reassembled from outer fragments, which the gateway sends with DF clear."""
    l3 = l3_off(frame)
    inner = ip_of(frame)
    v4 = inner[0] >> 4 == 4
    oh = 20 if v4 else 40
    pad = (-(len(inner) + 2)) % 4
    tc.assertEqual(got[:l3], frame[:l3], f"{what}: L2 header (and VLAN tag) kept")
    tc.assertEqual(len(got), l3 + oh + 8 + 8 + len(inner) + pad + 2 + 16,
                   f"{what}: frame = L2 + outer + ESP hdr + IV + inner + minimal pad + 2 + ICV, no Ethernet padding")
    outer = got[l3:l3 + oh]
    if v4:
        tc.assertEqual(outer[0], 0x45, f"{what}: outer version/IHL")
        tc.assertEqual(outer[1], inner[1], f"{what}: outer DSCP/ECN copied")
        tc.assertEqual(struct.unpack(">H", outer[2:4])[0], len(got) - l3, f"{what}: outer total length")
        inner_df = 0 if fragmented else struct.unpack(">H", inner[6:8])[0] & 0x4000
        tc.assertEqual(struct.unpack(">H", outer[6:8])[0], inner_df, f"{what}: outer flags = inner DF only, offset 0")
        tc.assertEqual(outer[8], inner[8], f"{what}: outer TTL copied")
        tc.assertEqual(outer[9], 50, f"{what}: outer protocol ESP")
        tc.assertEqual(ipv4_checksum(outer), 0, f"{what}: outer header checksum")
        tc.assertEqual(outer[12:20], inner[12:20], f"{what}: outer src/dst = inner (RFC 5374)")
        src = str(ipaddress.ip_address(outer[12:16]))
    else:
        tc.assertEqual(outer[:4], inner[:4], f"{what}: outer version/traffic class/flow label copied")
        tc.assertEqual(struct.unpack(">H", outer[4:6])[0], len(got) - l3 - 40, f"{what}: outer payload length")
        tc.assertEqual(outer[6], 50, f"{what}: outer next header ESP")
        tc.assertEqual(outer[7], inner[7], f"{what}: outer hop limit copied")
        tc.assertEqual(outer[8:40], inner[8:40], f"{what}: outer src/dst = inner (RFC 5374)")
        src = str(ipaddress.ip_address(outer[8:24]))
    esp = got[l3 + oh:]
    got_spi, seq = struct.unpack(">II", esp[:8])
    tc.assertEqual(got_spi, spi, f"{what}: SPI")
    try:
        opened = scapy_open(got, spi, km)
    except Exception as e:  # IPSecIntegrityError and friends
        tc.fail(f"{what}: scapy cannot open it: {e!r}\n{got.hex()}")
    tc.assertEqual(opened, inner, f"{what}: scapy's inner packet")
    try:
        plain = gcm_open(esp, km)
    except InvalidTag:
        tc.fail(f"{what}: python-cryptography AES-GCM: bad ICV")
    trailer = bytes(range(1, pad + 1)) + bytes([pad, 4 if v4 else 41])
    tc.assertEqual(plain, inner + trailer, f"{what}: plaintext = inner || 1,2,.. padding || pad length || next header")
    return seq, esp[8:16], src


TSHARK_FIELDS = ["frame.number", "esp.spi", "esp.sequence", "esp.icv_good", "esp.icv_bad", "esp.pad_len",
                 "esp.protocol", "esp.contained_data", "udp.payload"]


def tshark_esp(tc, workdir, keylog, pcap):
    """Runs tshark 4.0 on `pcap` with ESP decryption and ICV checking on. Its esp_sa UAT table is
    `keylog` copied verbatim to <XDG_CONFIG_HOME>/wireshark/esp_sa (None: an empty profile).
    Returns one {field: text} per frame; fails the test on a tshark error (a rejected table)."""
    if not os.access(TSHARK, os.X_OK):
        tc.skipTest("tshark not installed")
    conf = os.path.join(workdir, "xdg_keylog" if keylog else "xdg_empty")
    os.makedirs(os.path.join(conf, "wireshark"), exist_ok=True)
    if keylog:
        shutil.copyfile(keylog, os.path.join(conf, "wireshark", "esp_sa"))
    home = os.path.join(workdir, "tshark_home")
    os.makedirs(home, exist_ok=True)
    env = dict(os.environ, XDG_CONFIG_HOME=conf, HOME=home)
    cmd = [TSHARK, "-n", "-r", pcap, "-o", "esp.enable_encryption_decode:TRUE",
           "-o", "esp.enable_authentication_check:TRUE", "-T", "fields", "-E", "separator=|"]
    for f in TSHARK_FIELDS:
        cmd += ["-e", f]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    tc.assertEqual(p.returncode, 0, p.stderr)
    tc.assertNotIn("rror", p.stderr, f"tshark rejected the keylog as its esp_sa table: {p.stderr}")
    return [dict(zip(TSHARK_FIELDS, line.split("|"))) for line in p.stdout.splitlines()]


def udp_payload(inner):
    """The UDP payload of an unfragmented inner packet, else None."""
    pkt = IP(inner) if inner[0] >> 4 == 4 else IPv6(inner)
    if UDP not in pkt or (inner[0] >> 4 == 4 and (pkt.frag or pkt.flags.MF)):
        return None
    return bytes(pkt[UDP].payload)


class OutboundInteropTest(OneRun):
    """Clear multicast -> the gateway -> ESP opened by scapy, python-cryptography and tshark."""

    KEYLOG = True

    @classmethod
    def start(cls, gw):
        return gw.run_gateway(out_config(1600), clear_rx=[f for _, f, _ in OUTBOUND])

    def sealed_pairs(self):
        """(row, output frame) of every forwarded row, in order (asserts the count first)."""
        kept = [r for r in OUTBOUND if r[2] == PASS or r[2] in OUT_SA_BY_NAME]
        out = self.gwrun.prot_out
        self.assertEqual(len(out), len(kept), "forwarded frame count")
        return list(zip(kept, out))

    def test_table_shape(self):
        """The table itself: 20 senders per family, both SAs tagged and untagged, 20..1500 bytes."""
        frames = [f for _, f, _ in OUTBOUND]
        self.assertEqual(len(frames), len(set(frames)), "distinct frames pin the order")
        sealed = [(ip_of(f), f, fate) for _, f, fate in OUTBOUND if fate in OUT_SA_BY_NAME]
        for fam in (4, 6):
            ips = [ip for ip, _, _ in sealed if ip[0] >> 4 == fam]
            srcs = {ip[12:16] if fam == 4 else ip[8:24] for ip in ips}
            self.assertGreaterEqual(len(srcs), 20, f"IPv{fam} senders")
            self.assertEqual((min(map(len, ips)), max(map(len, ips))), (20 if fam == 4 else 41, 1500))
        combos = {(fate, l3_off(f) == 18) for _, f, fate in sealed}
        self.assertEqual(combos, {(sa, tagged) for sa in OUT_SA_BY_NAME for tagged in (False, True)})

    def test_accounting(self):
        n_sealed = sum(1 for r in OUTBOUND if r[2] in OUT_SA_BY_NAME)
        n_pass = sum(1 for r in OUTBOUND if r[2] == PASS)
        self.check_accounting(0, len(OUTBOUND), n_sealed + n_pass, fates_to_drops(r[2] for r in OUTBOUND),
                              sealed=n_sealed, bypassed=n_pass)

    def test_every_frame_opens_byte_for_byte(self):
        """scapy and python-cryptography open every ESP frame to the original inner packet; the
        outer header preserves the addresses and copies DSCP/ECN, TTL/hop limit, DF."""
        for (name, frame, fate), got in self.sealed_pairs():
            with self.subTest(row=name):
                if fate == PASS:
                    self.assertEqual(got, frame, f"{name}: bypassed unchanged")
                else:
                    spi, km = OUT_SA_BY_NAME[fate]
                    check_sealed(self, got, frame, spi, km, name)

    def test_sequence_numbers_and_ivs(self):
        """Per (SPI, source) sequence numbers strictly increase from >= 1; no (SPI, IV) twice; the IV
        is [Sender-ID 0][lane < workers][counter] with counter = seq - 1 (lib/esp framing)."""
        last = {}
        ivs = {}
        for (name, frame, fate), got in self.sealed_pairs():
            if fate == PASS:
                continue
            l3 = l3_off(got)
            v4 = got[l3] >> 4 == 4
            src = got[l3 + 12:l3 + 16] if v4 else got[l3 + 8:l3 + 24]
            esp = got[l3 + (20 if v4 else 40):]
            spi, seq = struct.unpack(">II", esp[:8])
            iv = struct.unpack(">Q", esp[8:16])[0]
            self.assertGreaterEqual(seq, 1, f"{name}: seq 0 is never sent")
            key = (spi, src)
            if key in last:
                self.assertGreater(seq, last[key], f"{name}: seq must increase per (SPI, source)")
            last[key] = seq
            self.assertNotIn((spi, iv), ivs, f"{name}: IV {iv:#x} reused under SPI {spi:#x} (also {ivs.get((spi, iv))})")
            ivs[(spi, iv)] = name
            self.assertLess(iv >> 58, WORKERS, f"{name}: lane field of the IV")
            self.assertEqual(iv & ((1 << 58) - 1), seq - 1, f"{name}: IV counter = seq - 1")
        self.assertEqual(len(ivs), sum(1 for r in OUTBOUND if r[2] in OUT_SA_BY_NAME))

    def expected_keylog(self):
        lines = []
        for _, spi, _, km in OUT_SAS:
            for fam in ("IPv4", "IPv6"):
                lines.append(f'"{fam}","*","*","0x{spi:08x}","AES-GCM with 16 octet ICV [RFC4106]",'
                             f'"0x{km.hex()}","NULL",""')
        return "".join(line + "\n" for line in lines)

    def test_keylog_is_wireshark_esp_sa(self):
        """--keylog writes one Wireshark 4.0 esp_sa UAT line per SA and family (protocol, src, dst,
        SPI, encryption algorithm, key||salt, authentication algorithm, authentication key), mode 0600."""
        path = self.gw.path("keylog")
        with open(path) as f:
            self.assertEqual(f.read(), self.expected_keylog())
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600, "the keylog holds keys")

    def test_tshark_decrypts_every_frame_with_the_keylog(self):
        """The keylog, copied verbatim as <XDG_CONFIG_HOME>/wireshark/esp_sa, lets tshark 4.0 decrypt
        and authenticate every ESP frame; its inner packet and UDP payload are the original ones.
        Without the file tshark decrypts nothing (so the file is what did it)."""
        pcap = self.gw.path("prot_out.pcap")
        rows = tshark_esp(self, self.gw.tmp, self.gw.path("keylog"), pcap)
        pairs = self.sealed_pairs()
        self.assertEqual(len(rows), len(pairs), "tshark frame count")
        decrypted = 0
        for ((name, frame, fate), got), row in zip(pairs, rows):
            with self.subTest(row=name):
                inner = ip_of(frame)
                if fate == PASS:
                    self.assertEqual(row["esp.spi"], "", f"{name}: clear frame")
                    continue
                spi, _ = OUT_SA_BY_NAME[fate]
                self.assertEqual(int(row["esp.spi"], 0), spi, f"{name}: SPI")
                self.assertEqual((row["esp.icv_good"], row["esp.icv_bad"]), ("1", "0"), f"{name}: ICV verified by tshark")
                self.assertEqual(row["esp.contained_data"], inner.hex(), f"{name}: tshark's decrypted inner packet")
                self.assertEqual(int(row["esp.protocol"], 0), 4 if inner[0] >> 4 == 4 else 41, f"{name}: next header")
                self.assertEqual(int(row["esp.pad_len"], 0), (-(len(inner) + 2)) % 4, f"{name}: pad length")
                udp = udp_payload(inner)
                if udp is not None:
                    self.assertEqual(row["udp.payload"], udp.hex(), f"{name}: UDP payload")
                decrypted += 1
        self.assertEqual(decrypted, sum(1 for r in OUTBOUND if r[2] in OUT_SA_BY_NAME))
        control = tshark_esp(self, self.gw.tmp, None, pcap)
        self.assertEqual([r["esp.contained_data"] for r in control], [""] * len(control),
                         "tshark decrypted without the keylog: the test does not prove the keylog works")


# ==== outbound: ESP packets over the protected MTU are fragmented after encryption ==============

def frag_rows(mtu):
    """(name, frame, fate, fragments): the fragments each forwarded frame leaves as at `mtu`."""
    def n_frags(frame, fate):
        if fate not in OUT_SA_BY_NAME:
            return 1
        inner = ip_of(frame)
        hdr = 20 if inner[0] >> 4 == 4 else 40
        esp_ip = hdr + 8 + 8 + len(inner) + (-(len(inner) + 2)) % 4 + 2 + 16
        if esp_ip <= mtu:
            return 1
        chunk = (mtu - hdr - (0 if hdr == 20 else 8)) & ~7
        return -(-(esp_ip - hdr) // chunk)
    rows = [
        ("v4 inner 100", l2("239.1.0.1") + ip4("10.1.0.1", "239.1.0.1", 100), "g128"),
        ("v4 inner 1446 -> ESP 1500", l2("239.1.0.1") + ip4("10.1.0.1", "239.1.0.1", 1446, tag=1), "g128"),
        ("v4 inner 1447 -> ESP 1504", l2("239.1.0.1") + ip4("10.1.0.1", "239.1.0.1", 1447, tag=2), "g128"),
        ("v4 inner 1500 DF", l2("239.2.0.1") + ip4("10.1.0.2", "239.2.0.1", 1500, tag=3, flags=2), "g256"),
        ("vlan v4 inner 1446", l2("239.2.0.1", 7) + ip4("10.1.0.2", "239.2.0.1", 1446, tag=4), "g256"),
        ("vlan v4 inner 1447", l2("239.2.0.1", 7) + ip4("10.1.0.2", "239.2.0.1", 1447, tag=5), "g256"),
        ("v6 inner 1426 -> ESP 1500", l2("ff3e::2:1") + ip6("fd00:1::1", "ff3e::2:1", 1426, tag=6), "g256"),
        ("v6 inner 1427", l2("ff3e::2:1") + ip6("fd00:1::1", "ff3e::2:1", 1427, tag=7), "g256"),
        ("v6 inner 1500", l2("ff3e::1:1") + ip6("fd00:1::1", "ff3e::1:1", 1500, tag=8), "g128"),
        ("vlan v6 inner 1500", l2("ff3e::1:1", 9) + ip6("fd00:1::2", "ff3e::1:1", 1500, tag=11), "g128"),
        ("v4 bypass 1500 fits", l2("239.9.0.1") + ip4("10.1.0.1", "239.9.0.1", 1500, tag=9), PASS),
        ("v4 bypass 1501 does not", l2("239.9.0.1") + ip4("10.1.0.1", "239.9.0.1", 1501, tag=12), "mtu_exceeded"),
        ("v4 inner 101 after them", l2("239.1.0.1") + ip4("10.1.0.1", "239.1.0.1", 101, tag=10), "g128"),
    ]
    if mtu < 1500:  # bypass traffic is never fragmented: a clear 1500 no longer fits either
        rows = [(n, f, "mtu_exceeded" if fate == PASS and len(ip_of(f)) > mtu else fate) for n, f, fate in rows]
    return [(n, f, fate, n_frags(f, fate)) for n, f, fate in rows]


def is_fragment(frame):
    ip = ip_of(frame)
    if ip[0] >> 4 == 4:
        return struct.unpack(">H", ip[6:8])[0] & 0x3FFF != 0
    return ip[6] == 44


class OutboundFragmentTest(OneRun):
    """Protected MTU 1500: an ESP packet that exceeds it leaves as outer fragments (IPv4: DF clear,
    one identification; IPv6: a fragment header), each within the MTU and carrying the L2 header;
    scapy's defragment()/defragment6() rebuilds an ESP packet that opens to the original, and tshark
    reassembles and decrypts it with the keylog. Clear (bypass) packets are never fragmented."""

    MTU = 1500
    KEYLOG = True

    @classmethod
    def rows(cls):
        return frag_rows(cls.MTU)

    @classmethod
    def start(cls, gw):
        return gw.run_gateway(out_config(cls.MTU), clear_rx=[f for _, f, _, _ in cls.rows()])

    def groups(self):
        """The protected output cut into each forwarded row's frames."""
        out, i, groups = self.gwrun.prot_out, 0, []
        for name, frame, fate, n in self.rows():
            if fate == PASS or fate in OUT_SA_BY_NAME:
                groups.append((name, frame, fate, out[i:i + n]))
                i += n
        self.assertEqual(i, len(out), "protected output frames")
        return groups

    def test_fragments_fit_and_reassemble_to_the_sealed_packet(self):
        from scapy.layers.inet import defragment
        from scapy.layers.inet6 import defragment6
        multi = 0
        for name, frame, fate, frags in self.groups():
            with self.subTest(row=name):
                l3 = l3_off(frame)
                for f in frags:
                    self.assertLessEqual(len(ip_of(f)), self.MTU, f"{name}: fragment above the MTU")
                    self.assertEqual(f[:l3], frame[:l3], f"{name}: L2 header (and VLAN tag) on every fragment")
                if fate == PASS:
                    self.assertEqual(frags, [frame])
                    continue
                if len(frags) == 1:
                    self.assertFalse(is_fragment(frags[0]), f"{name}: fits, so not fragmented")
                    check_sealed(self, frags[0], frame, *OUT_SA_BY_NAME[fate], name)
                    continue
                multi += 1
                self.assertTrue(all(is_fragment(f) for f in frags), f"{name}: every piece is a fragment")
                v4 = frame[l3] >> 4 == 4
                if v4:
                    ids = {ip_of(f)[4:6] for f in frags}
                    self.assertEqual(len(ids), 1, f"{name}: one identification")
                    self.assertTrue(all(ip_of(f)[6] & 0x40 == 0 for f in frags), f"{name}: DF clear on fragments")
                    self.assertTrue(all(ipv4_checksum(ip_of(f)[:20]) == 0 for f in frags), f"{name}: checksums")
                    whole = defragment([Ether(f) for f in frags])
                else:
                    whole = [defragment6([Ether(f) for f in frags])]
                self.assertEqual(len(whole), 1, f"{name}: scapy reassembles one packet")
                check_sealed(self, bytes(whole[0]), frame, *OUT_SA_BY_NAME[fate], name, fragmented=True)
        self.assertGreaterEqual(multi, 5, "rows that needed fragments")

    def test_tshark_reassembles_and_decrypts(self):
        rows = tshark_esp(self, self.gw.tmp, self.gw.path("keylog"), self.gw.path("prot_out.pcap"))
        good = [r for r in rows if r["esp.icv_good"] == "1"]
        sealed = [g for g in self.groups() if g[2] in OUT_SA_BY_NAME]
        self.assertEqual(len(good), len(sealed), "ESP packets tshark reassembled and authenticated")
        self.assertEqual([r["esp.contained_data"] for r in good], [ip_of(f).hex() for _, f, _, _ in sealed])

    def test_accounting(self):
        rows = self.rows()
        n_sealed = sum(1 for r in rows if r[2] in OUT_SA_BY_NAME)
        n_pass = sum(1 for r in rows if r[2] == PASS)
        split = [r for r in rows if r[3] > 1]
        s = self.gwrun.stats
        self.assertEqual((s["fragmented"], s["fragments_out"]), (len(split), sum(r[3] for r in split)))
        self.check_accounting(0, len(rows), sum(r[3] for r in rows if r[2] == PASS or r[2] in OUT_SA_BY_NAME),
                              fates_to_drops(r[2] for r in rows), sealed=n_sealed, bypassed=n_pass)
        self.assertIn(f"fragmented {len(split)} ESP packets", self.gwrun.stdout)


class OutboundFragment576Test(OutboundFragmentTest):
    """The same at the smallest MTU the configuration accepts: three fragments per large packet."""

    MTU = 576

    def test_three_fragments_for_a_full_packet(self):
        self.assertEqual({n: k for n, _, _, k in self.rows()}["v6 inner 1500"], 3)
        self.assertEqual({n: k for n, _, _, k in self.rows()}["v4 inner 1500 DF"], 3)


# ==== inbound: scapy-made group ESP -> the gateway -> clear ======================================

K_ANY = keymat(20, 0x21)
K_D1, K_D2 = keymat(20, 0x31), keymat(36, 0x32)
K_S1, K_S2 = keymat(36, 0x41), keymat(20, 0x42)
K_L0, K_L1, K_L2 = keymat(20, 0x51), keymat(20, 0x52), keymat(36, 0x53)
K_V6, K_V6S = keymat(36, 0x61), keymat(20, 0x62)

IN_CONFIG = """\
state_dir: @STATE@
ports: [{port: 0, side: clear}, {port: 1, side: protected, mtu: 1600}]
sas:
  - {name: any3, dir: in, spi: 0x3001, aead: aes-128-gcm, key: "@K_ANY@"}
  - {name: d1, dir: in, spi: 0x4001, dst: 239.4.1.0/24, aead: aes-128-gcm, key: "@K_D1@"}
  - {name: d2, dir: in, spi: 0x4001, dst: 239.4.2.0/24, aead: aes-256-gcm, key: "@K_D2@"}
  - {name: s1, dir: in, spi: 0x5001, src: 10.5.1.0/24, aead: aes-256-gcm, key: "@K_S1@"}
  - {name: s2, dir: in, spi: 0x5001, src: 10.5.2.0/24, aead: aes-128-gcm, key: "@K_S2@"}
  - {name: l0, dir: in, spi: 0x7001, aead: aes-128-gcm, key: "@K_L0@"}
  - {name: l1, dir: in, spi: 0x7001, dst: 239.7.0.0/16, aead: aes-128-gcm, key: "@K_L1@"}
  - {name: l2, dir: in, spi: 0x7001, dst: 239.7.0.0/16, src: 10.7.1.0/24, aead: aes-256-gcm, key: "@K_L2@"}
  - {name: v6, dir: in, spi: 0x6001, dst: "ff3e::6:0/112", aead: aes-256-gcm, key: "@K_V6@"}
  - {name: v6s, dir: in, spi: 0x6001, dst: "ff3e::6:0/112", src: "fd00:6:1::/48", aead: aes-128-gcm, key: "@K_V6S@"}
policies:
  - {dir: in, dst: 239.3.0.0/16, action: protect, sa: any3}
  - {dir: in, dst: "ff3e::3:0/112", action: protect, sa: any3}
  - {dir: in, dst: 239.4.1.0/24, action: protect, sa: d1}
  - {dir: in, dst: 239.4.2.0/24, action: protect, sa: d2}
  - {dir: in, src: 10.5.1.0/24, dst: 239.5.0.0/16, action: protect, sa: s1}
  - {dir: in, src: 10.5.2.0/24, dst: 239.5.0.0/16, action: protect, sa: s2}
  - {dir: in, src: 10.7.1.0/24, dst: 239.7.0.0/16, action: protect, sa: l2}
  - {dir: in, dst: 239.7.0.0/16, action: protect, sa: l1}
  - {dir: in, dst: 239.8.0.0/16, action: protect, sa: l0}
  - {dir: in, src: "fd00:6:1::/48", dst: "ff3e::6:0/112", action: protect, sa: v6s}
  - {dir: in, dst: "ff3e::6:0/112", action: protect, sa: v6}
"""
IN_KEYS = {"@K_ANY@": K_ANY, "@K_D1@": K_D1, "@K_D2@": K_D2, "@K_S1@": K_S1, "@K_S2@": K_S2,
           "@K_L0@": K_L0, "@K_L1@": K_L1, "@K_L2@": K_L2, "@K_V6@": K_V6, "@K_V6S@": K_V6S}


def fill(template, keys):
    for mark, km in keys.items():
        template = template.replace(mark, cfg_key(km))
    return template


class Senders:
    """One scapy SA per (gateway SA, sender): its own sequence numbers (1, 2, ...) and IVs."""

    def __init__(self):
        self.next = {}

    def seal(self, spi, km, inner, vlan=None, pcp=0, tos=0, trailing=b""):
        """(frame, expected clear frame): scapy ESP in a frame to the inner group, and the frame
        the gateway must send: the same L2 header + the inner packet."""
        pkt = IP(inner) if inner[0] >> 4 == 4 else IPv6(inner)
        key = (spi, km, pkt.src)
        seq = self.next.get(key, 1)
        self.next[key] = seq + 1
        esp = scapy_seal(spi, km, inner, seq, tos=tos)
        head = l2(pkt.dst, vlan, pcp=pcp)
        return head + esp + trailing, head + inner


def inbound_interop_table():
    """(name, frame, expected clear frame)."""
    s = Senders()
    rows = []
    sizes4 = [20, 28, 46, 100, 333, 1000, 1400, 1500, 21, 29, 31, 64, 22, 23]
    k = 0
    for rnd in range(3):  # 20 senders on one SA (SPI only), interleaved, tagged and untagged
        for i in range(1, 21):
            src, grp = f"10.3.0.{i}", f"239.3.0.{1 + i % 2}"
            size = sizes4[k % len(sizes4)]
            vlan = 10 + i if i % 3 == 0 else None
            rows.append((f"any3 {src} #{rnd + 1} {size}B vlan {vlan}",
                         *s.seal(0x3001, K_ANY, ip4(src, grp, size, tag=k), vlan=vlan, pcp=i % 8)))
            k += 1
    for rnd in range(2):  # the same SA carries IPv6 too (SPI-only SA)
        for i, size in enumerate([42, 48, 62, 1500, 333], 1):
            src = f"fd00:3::{i:x}"
            rows.append((f"any3 v6 {src} #{rnd + 1} {size - rnd}B",
                         *s.seal(0x3001, K_ANY, ip6(src, "ff3e::3:1", size - rnd, tag=k), vlan=None if i % 2 else 7)))
            k += 1
    for rnd in range(2):  # SAs told apart only by the group (dst); same sender, same SPI, same seq
        for grp, km in (("239.4.1.1", K_D1), ("239.4.2.1", K_D2)):
            rows.append((f"dst-selected {grp} #{rnd + 1}", *s.seal(0x4001, km, ip4("10.4.0.1", grp, 120 + rnd, tag=k))))
            k += 1
    for rnd in range(2):  # SAs told apart only by the sender (src)
        for src, km in (("10.5.1.1", K_S1), ("10.5.2.1", K_S2), ("10.5.1.2", K_S1)):
            rows.append((f"src-selected {src} #{rnd + 1}",
                         *s.seal(0x5001, km, ip4(src, "239.5.0.1", 90 + rnd, tag=k), vlan=5 if rnd else None)))
            k += 1
    # SAD longest match: SPI+dst+src beats SPI+dst beats SPI
    for src, grp, km, what in (("10.7.1.1", "239.7.0.1", K_L2, "SPI+dst+src"), ("10.7.2.1", "239.7.0.1", K_L1, "SPI+dst"),
                               ("10.8.0.1", "239.8.0.1", K_L0, "SPI only"), ("10.7.1.9", "239.7.0.2", K_L2, "SPI+dst+src")):
        rows.append((f"longest match {what} {src}->{grp}", *s.seal(0x7001, km, ip4(src, grp, 77, tag=k), vlan=9)))
        k += 1
    for src, km in (("fd00:6:1::1", K_V6S), ("fd00:6:2::1", K_V6), ("fd00:6:1::2", K_V6S)):
        rows.append((f"v6 SPI+dst(+src) {src}", *s.seal(0x6001, km, ip6(src, "ff3e::6:1", 100, tag=k), vlan=100)))
        k += 1
    # Ethernet padding after the ESP packet is not part of it
    rows.append(("any3 ESP + 6B trailing Ethernet padding",
                 *s.seal(0x3001, K_ANY, ip4("10.3.0.40", "239.3.0.1", 20, tag=k), trailing=bytes(6))))
    # RFC 6040 decapsulation: outer CE is copied into an ECT inner packet; other outer values are not
    inner = ip4("10.3.0.41", "239.3.0.1", 60, tag=k + 1, tos=0x28 | 2)
    frame, _ = s.seal(0x3001, K_ANY, inner, tos=3)
    rows.append(("ECN: outer CE, inner ECT(0) -> inner CE", frame, l2("239.3.0.1") + set_inner_ecn(inner, 3)))
    inner = ip4("10.3.0.41", "239.3.0.1", 61, tag=k + 2, tos=0x28)
    rows.append(("ECN: outer ECT(0), inner Not-ECT -> unchanged", *s.seal(0x3001, K_ANY, inner, tos=2)))
    inner = ip6("fd00:3::9", "ff3e::3:1", 70, tag=k + 3, tc=0x01)
    frame, _ = s.seal(0x3001, K_ANY, inner, tos=3)
    rows.append(("ECN v6: outer CE, inner ECT(1) -> inner CE", frame, l2("ff3e::3:1") + set_inner_ecn(inner, 3)))
    return rows


INBOUND = inbound_interop_table()


IN_SA_KEYS = {0x3001: [K_ANY], 0x4001: [K_D1, K_D2], 0x5001: [K_S1, K_S2], 0x7001: [K_L0, K_L1, K_L2],
              0x6001: [K_V6, K_V6S]}


def sent_inner(frame):
    """(SPI, the inner packet as sealed) of an inbound ESP frame: python-cryptography tries the
    keys of the SAs with its SPI."""
    ip = ip_of(frame)
    esp = ip[20 if ip[0] >> 4 == 4 else 40:]
    spi = struct.unpack(">I", esp[:4])[0]
    for km in IN_SA_KEYS[spi]:
        try:
            plain = gcm_open(esp, km)
        except InvalidTag:
            continue
        return spi, plain[:len(plain) - 2 - plain[-2]]
    raise AssertionError(f"no key of SPI {spi:#x} opens {frame.hex()}")


class InboundInteropTest(OneRun):
    """scapy-made group ESP in on port 1 -> the L2 header + inner packet out on port 0."""

    KEYLOG = True

    @classmethod
    def start(cls, gw):
        return gw.run_gateway(fill(IN_CONFIG, IN_KEYS), prot_rx=[f for _, f, _ in INBOUND])

    def test_table_shape(self):
        frames = [f for _, f, _ in INBOUND]
        self.assertEqual(len(frames), len(set(frames)), "distinct frames")
        inners = [ip_of(w) for _, _, w in INBOUND]
        self.assertEqual(min(len(i) for i in inners if i[0] >> 4 == 4), 20)
        self.assertEqual(max(map(len, inners)), 1500)
        self.assertGreaterEqual(len({i[12:16] for i in inners if i[0] >> 4 == 4 and i[16:18] == bytes([239, 3])}), 20)

    def test_clear_output_byte_for_byte_in_order(self):
        self.assertFrames(self.gwrun.clear_out, [w for _, _, w in INBOUND], "port 0 (clear) output")

    def test_accounting(self):
        self.check_accounting(1, len(INBOUND), len(INBOUND), {}, opened=len(INBOUND))

    def tshark_check(self, only_spi):
        """tshark with the inbound run's keylog decrypts the scapy-made input (frames of `only_spi`,
        or all when None) to the inner packets scapy sealed."""
        rows = tshark_esp(self, self.gw.tmp, self.gw.path("keylog"), self.gw.path("prot_in.pcap"))
        self.assertEqual(len(rows), len(INBOUND), "tshark frame count")
        checked = 0
        for (name, frame, _), row in zip(INBOUND, rows):
            spi, inner = sent_inner(frame)
            if only_spi is not None and spi != only_spi:
                continue
            with self.subTest(row=name):
                self.assertEqual(int(row["esp.spi"], 0), spi, f"{name}: SPI")
                self.assertEqual((row["esp.icv_good"], row["esp.contained_data"]), ("1", inner.hex()),
                                 f"{name}: tshark's ICV check and inner packet")
            checked += 1
        self.assertGreater(checked, 60)

    def test_tshark_opens_the_input_with_the_keylog(self):
        """SA any3 has an SPI of its own: tshark decrypts all its input with the gateway's keylog."""
        self.tshark_check(0x3001)

    def test_tshark_tells_apart_sas_sharing_an_spi(self):
        """SAs that share an SPI and differ only by dst/src selectors (RFC 5374 §5: d1/d2, s1/s2,
        l0/l1/l2, v6/v6s): tshark takes the first esp_sa line that matches, so the keylog carries
        each SA's selectors (octet/group-wise with '*'), most specific line first."""
        self.tshark_check(None)


# ==== inbound negatives: every drop under its own reason =========================================

K_N1, K_N2, K_N6 = keymat(20, 0x81), keymat(36, 0x82), keymat(36, 0x86)
N1, N2, N6 = 0x0000A001, 0x0000B001, 0x0000C001
NEG_SPIS = {N1, N2, N6}
WINDOW = 1024

NEG_CONFIG = """\
state_dir: @STATE@
ports: [{port: 0, side: clear, mtu: 1400}, {port: 1, side: protected, mtu: 1600}]
sas:
  - {name: n1, dir: in, spi: 0x0000a001, dst: 239.10.0.0/16, aead: aes-128-gcm, key: "@K_N1@", replay_window: 1024}
  - {name: n2, dir: in, spi: 0x0000b001, src: 10.11.0.0/16, aead: aes-256-gcm, key: "@K_N2@"}
  - {name: n6, dir: in, spi: 0x0000c001, aead: aes-256-gcm, key: "@K_N6@"}
policies:
  - {dir: in, dst: 239.10.9.0/24, action: bypass}
  - {dir: in, dst: 239.10.8.0/24, action: protect, sa: n2}
  - {dir: in, dst: 239.10.0.0/16, proto: udp, dport: "5000-5099", action: protect, sa: n1}
  - {dir: in, src: 10.11.0.0/16, dst: 239.11.0.0/16, action: protect, sa: n2}
  - {dir: in, dst: 239.12.0.0/16, action: protect, sa: n6}
  - {dir: in, dst: "ff3e::c:0/112", action: protect, sa: n6}
"""
NEG_KEYS = {"@K_N1@": K_N1, "@K_N2@": K_N2, "@K_N6@": K_N6}


def esp_frame(spi, km, inner, seq, vlan=None, **kw):
    """Ethernet frame of scapy ESP; the L2 header follows the outer family and group."""
    esp = scapy_seal(spi, km, inner, seq, **kw)
    dst = str(ipaddress.ip_address(esp[16:20] if esp[0] >> 4 == 4 else esp[24:40]))
    return l2(dst, vlan, family=esp[0] >> 4) + esp


def clear_out(frame):
    """What the gateway sends for an accepted ESP frame: its L2 header + the inner packet."""
    l3 = l3_off(frame)
    outer = frame[l3:]
    v4 = outer[0] >> 4 == 4
    spi = struct.unpack(">I", outer[20 if v4 else 40:][:4])[0]
    km = {N1: K_N1, N2: K_N2, N6: K_N6}[spi]
    inner = ip_of(l2("239.0.0.1") + gcm_open(ip_of(frame)[20 if v4 else 40:], km))
    return frame[:l3] + inner


def flip_fate(frame, offset, esp_off, seen, top):
    """The fate of `frame` (an authentic n1 packet) with byte `offset` changed, given the (SA,
    source) window state: accepted seqs `seen`, right edge `top`."""
    spi, seq = struct.unpack(">II", frame[esp_off:esp_off + 8])
    if offset < esp_off + 4:
        assert spi not in NEG_SPIS, f"flipped SPI {spi:#x} names a configured SA: pick another SPI"
        return "esp_no_sa"
    if seq == 0 or top - seq >= WINDOW and seq <= top:
        return "replay_too_old"
    if seq in seen:
        return "replay"
    return "auth_failed"  # seq (AAD), IV (nonce), ciphertext and ICV are all authenticated


def negative_table():
    """(name, frame, fate, expected output or None). Each scenario has its own sender, so each
    (SA, source) replay window is easy to follow."""
    rows = []

    def add(name, frame, fate, out=None):
        if fate == PASS and out is None:
            out = clear_out(frame)
        rows.append((name, frame, fate, out))

    g = "239.10.0.1"
    # 1. every byte of one ESP packet, from the ESP header on, flipped with 0xff and with 0x01. The
    # intact packet comes after its forgeries: a forgery that keeps an already accepted seq is
    # counted as `replay` by the pre-check only when the original was accepted in an earlier rx
    # burst (in the same burst it is `auth_failed`), and the test must not depend on bursts.
    base_inner = ip4("10.10.0.1", g, 32, tag=1)
    base = esp_frame(N1, K_N1, base_inner, 1)
    esp_off = 14 + 20
    for mask in (0xFF, 0x01):
        for off in range(esp_off, len(base)):
            bad = base[:off] + bytes([base[off] ^ mask]) + base[off + 1:]
            add(f"flip byte {off - esp_off} of ESP ^{mask:#04x}", bad, flip_fate(bad, off, esp_off, set(), 0))
    add("flip: the intact packet (seq 1): no forgery moved the window", base, PASS)
    add("flip: seq 2", esp_frame(N1, K_N1, ip4("10.10.0.1", g, 33, tag=2), 2), PASS)
    add("flip: the intact packet again", base, "replay")

    # 2. truncated: cut from the end with the IP length fixed (ESP sizes 36.. are decrypted), or not
    q = esp_frame(N1, K_N1, ip4("10.10.0.3", g, 32, tag=3), 1)
    q_ip = ip_of(q)
    for cut in range(1, len(q_ip) - 20 + 1):
        esp_len = len(q_ip) - 20 - cut
        fate = "esp_malformed" if esp_len < 36 or (esp_len - 32) % 4 else "auth_failed"
        add(f"truncated: ESP {esp_len}B (IP length fixed)", with_ip_len(q, q_ip[:len(q_ip) - cut]), fate)
    for cut in (1, 4, 16):
        add(f"truncated frame, IP length not fixed (-{cut})", q[:-cut], "ip_bad_length")
    add("truncated: the intact packet afterwards", q, PASS)

    # 3. no SA: unknown SPI; known SPI but dst / src outside its selectors
    add("unknown SPI 0xdead", esp_frame(0xDEAD, K_N1, ip4("10.10.0.4", g, 40, tag=4), 1), "esp_no_sa")
    add("unknown SPI v6", esp_frame(0xDEAD, K_N6, ip6("fd00:c::4", "ff3e::c:1", 60, tag=4), 1), "esp_no_sa")
    add("n1 SPI to 239.11.0.1 (dst outside)", esp_frame(N1, K_N1, ip4("10.10.0.4", "239.11.0.1", 40, tag=5), 1), "esp_no_sa")
    add("n2 SPI from 10.12.0.1 (src outside)", esp_frame(N2, K_N2, ip4("10.12.0.1", "239.11.0.1", 40, tag=6), 1), "esp_no_sa")
    add("n2 SPI from 10.11.0.1 (control)", esp_frame(N2, K_N2, ip4("10.11.0.1", "239.11.0.1", 40, tag=7), 1), PASS)

    # 4. RFC 5374 3.1: outer addresses must equal the inner ones (authentic packets)
    inner = ip4("10.10.0.5", g, 44, tag=8)
    add("outer src != inner src", esp_frame(N1, K_N1, inner, 1, outer_src="10.10.0.6"), "outer_inner_mismatch")
    add("outer dst != inner dst", esp_frame(N1, K_N1, inner, 2, outer_dst="239.10.0.2"), "outer_inner_mismatch")
    add("outer IPv4, inner IPv6", esp_frame(N6, K_N6, ip6("fd00:c::5", "ff3e::c:1", 60, tag=9), 1,
                                            outer_src="10.12.0.5", outer_dst="239.12.0.1", family=4), "outer_inner_mismatch")
    add("outer IPv6, inner IPv4", esp_frame(N6, K_N6, ip4("10.12.0.5", "239.12.0.1", 60, tag=10), 1,
                                            outer_src="fd00:c::5", outer_dst="ff3e::c:1", family=6), "outer_inner_mismatch")
    add("mismatches did not take seq 1 from 10.10.0.5", esp_frame(N1, K_N1, inner, 1), PASS)

    # 5. replay window per (SA, source): duplicates, too old (window 1024), zero
    r = esp_frame(N1, K_N1, ip4("10.10.0.7", g, 50, tag=11), 1)
    add("replay: first", r, PASS)
    add("replay: same packet again", r, "replay")
    add("replay: same seq from another source is fine", esp_frame(N1, K_N1, ip4("10.10.0.17", g, 50, tag=11), 1), PASS)

    def old(seq, fate, tag):
        add(f"window: seq {seq}", esp_frame(N1, K_N1, ip4("10.10.0.8", g, 52, tag=tag), seq), fate)
    old(2000, PASS, 12)
    old(977, PASS, 13)               # 2000 - 977 = 1023: the window's left edge
    old(976, "replay_too_old", 14)   # 2000 - 976 = 1024: left of it
    old(1, "replay_too_old", 15)
    old(1999, PASS, 16)
    old(1999, "replay", 17)          # another packet with an accepted seq
    old(2000, "replay", 18)
    old(0, "replay_too_old", 19)     # seq 0 is never valid
    add("seq 0 on a fresh window", esp_frame(N1, K_N1, ip4("10.10.0.18", g, 52, tag=20), 0), "replay_too_old")
    # a forged packet with a high seq passes the pre-check but must not move the window
    forged = bytearray(esp_frame(N1, K_N1, ip4("10.10.0.9", g, 54, tag=21), 5000))
    forged[-1] ^= 0x80
    add("forged seq 5000 (bad ICV)", bytes(forged), "auth_failed")
    add("then seq 1 from the same source", esp_frame(N1, K_N1, ip4("10.10.0.9", g, 54, tag=22), 1), PASS)

    # 6. authentic packets with a bad trailer (RFC 4303 2.4-2.6), built with scapy's GCM directly
    src = "10.10.0.10"
    good = ip4(src, g, 30, tag=23)  # 30 + 2 = 32: no padding needed

    def trailer(name, seq, data, padding, nh, padlen=None):
        ip = scapy_seal_raw(N1, K_N1, src, g, seq, data, padding, nh, padlen)
        add(f"bad trailer: {name}", l2(g) + ip, "esp_bad_trailer")
    trailer("pad bytes 1,3", 1, good, b"\x01\x03\x01\x02", 4)
    trailer("pad bytes 0,0", 2, good, b"\x00\x00\x00\x00", 4)
    trailer("next header 41 for an IPv4 packet", 3, good, b"", 41)
    trailer("next header 59", 4, good, b"", 59)
    trailer("pad length 200 > payload", 5, good, b"", 4, padlen=200)
    trailer("inner total length != decrypted length", 6, good + b"\x00\x00\x00\x00", b"", 4)
    trailer("payload shorter than an IP header", 7, b"\x45\x00", b"", 4)
    add("bad trailers did not take seqs 1..7", esp_frame(N1, K_N1, good, 1), PASS)
    add("valid packet padded with 1,2,3,4 (4 bytes: allowed)", l2(g) + scapy_seal_raw(N1, K_N1, src, g, 2, good, b"\x01\x02\x03\x04", 4),
        PASS, l2(g) + good)

    # 7. the inner packet must match a dir: in PROTECT policy naming the packet's SA
    src = "10.10.0.11"
    add("inner to a bypassed group", esp_frame(N1, K_N1, ip4(src, "239.10.9.1", 60, tag=24), 3000), "inner_policy_mismatch")
    add("inner whose policy names SA n2", esp_frame(N1, K_N1, ip4(src, "239.10.8.1", 60, tag=25), 3001), "inner_policy_mismatch")
    add("inner matching no policy (dport 6000)", esp_frame(N1, K_N1, ip4(src, g, 60, tag=26, dport=6000), 3002), "inner_policy_mismatch")
    add("mismatches did not move the window: seq 1", esp_frame(N1, K_N1, ip4(src, g, 60, tag=27), 1), PASS)

    # 8. clear traffic where the policy wants ESP; a bypassed group as control
    add("clear UDP on a protected group", l2(g) + ip4("10.10.0.12", g, 80, tag=28), "clear_on_protected")
    add("clear v6 on a protected group", l2("ff3e::c:1") + ip6("fd00:c::12", "ff3e::c:1", 80, tag=29), "clear_on_protected")
    add("clear to a bypassed group", l2("239.10.9.1") + ip4("10.10.0.12", "239.10.9.1", 80, tag=30), PASS,
        l2("239.10.9.1") + ip4("10.10.0.12", "239.10.9.1", 80, tag=30))

    # 9. RFC 6040: outer CE on a Not-ECT inner packet is dropped
    src = "10.10.0.13"
    add("ECN: outer CE, inner Not-ECT", esp_frame(N1, K_N1, ip4(src, g, 70, tag=31), 1, tos=3), "ecn_drop")
    add("ECN: outer CE, inner ECT(1) (control)", esp_frame(N1, K_N1, ip4(src, g, 70, tag=32, tos=1), 2, tos=3), PASS,
        l2(g) + set_inner_ecn(ip4(src, g, 70, tag=32, tos=1), 3))

    # 10. the decrypted packet is parsed like any other
    src = "10.10.0.14"
    bad_csum = bytearray(ip4(src, g, 60, tag=33))
    bad_csum[10] ^= 0xFF
    add("inner IPv4 bad header checksum", esp_frame(N1, K_N1, bytes(bad_csum), 1), "ip_bad_checksum")
    add("inner UDP header cut (IP 24B)", esp_frame(N1, K_N1, ip4(src, g, 24, tag=34, proto=17), 2), "l4_truncated")

    # 11. an ESP fragment whose rest never comes (held, dropped when it expires: here at exit), an
    # ESP header cut off, and the clear MTU
    mf = bytearray(esp_frame(N1, K_N1, ip4("10.10.0.15", g, 100, tag=35), 1))
    mf[14 + 6] |= 0x20
    add("ESP first fragment (MF), never completed", with_ip_len(bytes(mf), ip_of(bytes(mf))), "frag_timeout")
    add("ESP with IP header only", with_ip_len(l2(g), IP(src="10.10.0.15", dst=g, proto=50).build()), "esp_malformed")
    add("inner 1400 (clear MTU 1400)", esp_frame(N1, K_N1, ip4("10.10.0.15", g, 1400, tag=36), 2), PASS)
    add("inner 1401", esp_frame(N1, K_N1, ip4("10.10.0.15", g, 1401, tag=37), 3), "mtu_exceeded")

    # 12. IPv6 replay on the SPI-only SA
    v6r = esp_frame(N6, K_N6, ip6("fd00:c::1", "ff3e::c:1", 90, tag=38), 1, vlan=12)
    add("v6 first", v6r, PASS)
    add("v6 replayed", v6r, "replay")
    return rows


NEGATIVE = negative_table()


class InboundNegativeTest(OneRun):
    """Each bad packet is dropped under its own reason; the good ones between them pass."""

    @classmethod
    def start(cls, gw):
        return gw.run_gateway(fill(NEG_CONFIG, NEG_KEYS), prot_rx=[f for _, f, _, _ in NEGATIVE])

    def test_every_esp_byte_flipped_is_dropped(self):
        """The table itself: 2 flips per byte of the ESP packet, none of them PASS, and the reasons
        are esp_no_sa (SPI), replay_too_old (seq -> 0) and auth_failed (all else)."""
        flips = [(n, fate) for n, _, fate, _ in NEGATIVE if n.startswith("flip byte")]
        esp_len = len(ip_of(NEGATIVE[0][1])) - 20
        self.assertEqual(esp_len, 68)
        self.assertEqual(len(flips), 2 * esp_len)
        counts = {}
        for _, fate in flips:
            counts[fate] = counts.get(fate, 0) + 1
        self.assertEqual(counts, {"esp_no_sa": 8, "replay_too_old": 1, "auth_failed": 2 * esp_len - 9})

    def test_every_inbound_reason_present(self):
        fates = {fate for _, _, fate, _ in NEGATIVE}
        want = {"esp_malformed", "esp_no_sa", "replay", "replay_too_old", "auth_failed", "esp_bad_trailer",
                "outer_inner_mismatch", "ecn_drop", "inner_policy_mismatch", "clear_on_protected"}
        self.assertFalse(want - fates, f"no row for {want - fates}")

    def test_only_the_valid_packets_come_out_in_order(self):
        want = [out for _, _, fate, out in NEGATIVE if fate == PASS]
        self.assertFrames(self.gwrun.clear_out, want, "port 0 (clear) output")

    def test_each_drop_under_its_reason(self):
        drops = {}
        for _, _, fate, _ in NEGATIVE:
            if fate != PASS:
                drops[fate] = drops.get(fate, 0) + 1
        n_pass = sum(1 for r in NEGATIVE if r[2] == PASS)
        n_clear = sum(1 for n, _, fate, _ in NEGATIVE if fate == PASS and n.startswith("clear"))
        self.check_accounting(1, len(NEGATIVE), n_pass, drops, opened=n_pass - n_clear, bypassed=n_clear)


# ==== inbound: outer fragments reassembled before decryption =====================================

def frag4(frame, size):
    """scapy's fragment(): the IPv4 ESP frame cut into fragments of `size` payload bytes. The
    identification is the outer IP's (scapy_seal numbers them: set per datagram by esp4 below)."""
    from scapy.layers.inet import fragment
    return [bytes(f) for f in fragment(Ether(frame), size)]


def with_ip_id(frame, ident):
    """The IPv4 frame with identification `ident` (header checksum fixed)."""
    l3 = l3_off(frame)
    ip = bytearray(ip_of(frame))
    ip[4:6] = struct.pack(">H", ident)
    return with_ip_len(frame[:l3] + bytes(ip), bytes(ip))


def frag6(frame, size, ident):
    """scapy's fragment6(): the IPv6 ESP frame with a fragment header, cut to `size`-byte fragments."""
    from scapy.layers.inet6 import IPv6ExtHdrFragment, fragment6
    e = Ether(frame)
    esp = bytes(e[IPv6].payload)
    e[IPv6].remove_payload()
    e[IPv6].nh = 44
    del e[IPv6].plen
    return [bytes(f) for f in fragment6(e / IPv6ExtHdrFragment(nh=50, id=ident) / Raw(esp), size)]


def refragment(frag, offset, data, more):
    """An IPv4 fragment frame like `frag` with other data, offset and MF (header checksum fixed)."""
    l3 = l3_off(frag)
    ip = bytearray(ip_of(frag)[:20]) + data
    ip[6:8] = struct.pack(">H", (0x2000 if more else 0) | offset // 8)
    return with_ip_len(frag[:l3] + bytes(ip), bytes(ip))


def reassembly_table():
    """(name, fragments sent in this order, fate, expected clear output or None)."""
    g, rows = "239.10.0.1", []

    def esp4(src, size, seq, tag, vlan=None):  # each datagram its own outer identification
        return with_ip_id(esp_frame(N1, K_N1, ip4(src, g, size, tag=tag), seq, vlan=vlan), 0x7000 + tag)

    a = esp4("10.20.0.1", 1300, 1, 1)
    rows.append(("v4 in order", frag4(a, 552), PASS, clear_out(a)))
    b = esp4("10.20.0.1", 1200, 2, 2, vlan=30)
    rows.append(("v4 vlan, reversed", frag4(b, 400)[::-1], PASS, clear_out(b)))
    c = esp4("10.20.0.1", 1000, 3, 3)
    fc = frag4(c, 504)
    rows.append(("v4 shuffled, with a duplicate (dropped alone)", [fc[1], fc[0], fc[1], fc[2]], PASS, clear_out(c)))
    v6 = esp_frame(N6, K_N6, ip6("fd00:20::1", "ff3e::c:1", 1300, tag=4), 1)
    rows.append(("v6 in order", frag6(v6, 600, 0x01020304), PASS, clear_out(v6)))
    v6b = esp_frame(N6, K_N6, ip6("fd00:20::1", "ff3e::c:1", 900, tag=5), 2, vlan=31)
    rows.append(("v6 vlan, reversed", frag6(v6b, 500, 0x01020305)[::-1], PASS, clear_out(v6b)))
    # two datagrams interleaved: same source and group, their own identifications
    d, e = esp4("10.20.0.2", 800, 1, 6), esp4("10.20.0.2", 700, 2, 7)
    fd, fe = frag4(d, 400), frag4(e, 400)
    rows.append(("v4 interleaved, first", [fd[0], fe[0]] + fd[1:], PASS, clear_out(d)))
    rows.append(("v4 interleaved, second", fe[1:], PASS, clear_out(e)))
    # overlap: the second fragment starts 8 bytes inside the first one: both go
    o = esp4("10.20.0.3", 900, 1, 8)
    fo = frag4(o, 504)
    ip_o = ip_of(o)
    rows.append(("v4 overlapping fragments", [fo[0], refragment(fo[1], 496, ip_o[20 + 496:], False)], "frag_overlap",
                 None))
    # reassembled, then authenticated: one flipped ciphertext byte in a later fragment
    t = esp4("10.20.0.4", 900, 1, 9)
    ft = [bytearray(f) for f in frag4(t, 504)]
    ft[1][-40] ^= 0x01
    rows.append(("v4 tampered fragment", [bytes(f) for f in ft], "auth_failed", None))
    # the same datagram twice: the second one is a replay (after reassembly)
    r = esp4("10.20.0.5", 900, 1, 10)
    rows.append(("v4 datagram", frag4(r, 504), PASS, clear_out(r)))
    rows.append(("v4 datagram replayed", frag4(r, 504), "replay", None))
    # a non-last fragment whose data is not a multiple of 8 bytes
    m = esp4("10.20.0.6", 900, 1, 11)
    fm = frag4(m, 504)
    rows.append(("v4 fragment of 500 bytes with MF", [refragment(fm[0], 0, ip_of(m)[20:520], True)], "frag_malformed",
                 None))
    # a middle fragment never arrives: the others are held until they expire (here: at exit)
    h = esp4("10.20.0.7", 1300, 1, 12)
    fh = frag4(h, 400)
    rows.append(("v4 middle fragment missing", [fh[0], fh[2], fh[3]], "frag_timeout", None))
    return rows


REASSEMBLY = reassembly_table()


class InboundReassemblyTest(OneRun):
    """scapy's fragment()/fragment6() cut scapy-made group ESP into outer fragments, sent in order,
    reversed, shuffled, interleaved, duplicated; the gateway reassembles before decrypting and emits
    the inner packets byte for byte. Overlaps, malformed fragments, tampering, replays and a missing
    fragment are dropped under their own reasons, every fragment counted."""

    @classmethod
    def start(cls, gw):
        return gw.run_gateway(fill(NEG_CONFIG, NEG_KEYS), prot_rx=[f for _, fs, _, _ in REASSEMBLY for f in fs])

    def test_clear_output_byte_for_byte(self):
        self.assertFrames(self.gwrun.clear_out, [out for _, _, fate, out in REASSEMBLY if fate == PASS],
                          "port 0 (clear) output")

    def test_every_fragment_counted(self):
        def frags_dropped(name, fs, fate):
            if fate in ("frag_overlap", "frag_malformed", "frag_timeout"):
                return {fate: len(fs)}
            return {fate: 1} if fate != PASS else {}
        drops = {"frag_overlap": 1}  # the duplicate
        for name, fs, fate, _ in REASSEMBLY:
            for k, v in frags_dropped(name, fs, fate).items():
                drops[k] = drops.get(k, 0) + v
        datagrams = [fs for _, fs, fate, _ in REASSEMBLY if fate in (PASS, "auth_failed", "replay")]
        n_pass = sum(1 for r in REASSEMBLY if r[2] == PASS)
        s = self.gwrun.stats
        self.assertEqual(s["reassembled"], len(datagrams), "datagrams reassembled")
        self.assertEqual(s["fragments_in"], sum(len(fs) for fs in datagrams) - 1, "fragments in them (not the duplicate)")
        self.check_accounting(1, sum(len(fs) for _, fs, _, _ in REASSEMBLY), n_pass, drops, opened=n_pass)


# ==== regressions of fixed bugs, one run ========================================================================

class KnownBugsTest(OneRun):
    """Regression tests of gateway bugs found by these tests (all fixed)."""

    @classmethod
    def start(cls, gw):
        cfg = out_config(1600).replace(
            "policies:\n", "policies:\n  - {dir: in, dst: \"ff3e::3:0/112\", action: protect, sa: any3}\n"
                           "  - {dir: in, dst: 239.3.0.0/16, action: protect, sa: any3}\n")
        cfg = cfg.replace("sas:\n", f"sas:\n  - {{name: any3, dir: in, spi: 0x3001, aead: aes-128-gcm, key: \"{cfg_key(K_ANY)}\"}}\n")
        s = Senders()
        cls.out_v6_40 = l2("ff3e::1:1") + ip6("fd00:1::1", "ff3e::1:1", 40)
        cls.in_v6_40, cls.want_v6_40 = s.seal(0x3001, K_ANY, ip6("fd00:3::1", "ff3e::3:1", 40))
        inner = ip4("10.3.0.99", "239.3.0.99", 60, tos=2)  # ECT(0)
        cls.in_ecn, _ = s.seal(0x3001, K_ANY, inner, tos=1)  # outer ECT(1)
        cls.want_ecn = l2("239.3.0.99") + set_inner_ecn(inner, 1)
        return gw.run_gateway(cfg, clear_rx=[cls.out_v6_40], prot_rx=[cls.in_v6_40, cls.in_ecn])

    def out_frame_to(self, frames, group):
        dst = ipaddress.ip_address(group).packed
        for f in frames:
            ip = ip_of(f)
            if (ip[16:20] if ip[0] >> 4 == 4 else ip[24:40]) == dst:
                return f
        self.fail(f"nothing to {group} came out; drops: { {k: v for k, v in self.gwrun.stats['drops'].items() if v} }")

    def test_ipv6_without_payload_passes_both_ways(self):
        """Bug: lib/packet/packet.cc parse_ipv6 drops `payload == 0` as ip_bad_length, so a valid
        40-byte IPv6 packet (Next Header 59, Payload Length 0; RFC 8200 3 -- a zero length means a
        jumbogram only with a Hop-by-Hop Jumbo Payload option, RFC 2675) is neither sealed outbound
        nor delivered after decryption inbound (both counted ip_bad_length)."""
        got = self.out_frame_to(self.gwrun.prot_out, "ff3e::1:1")
        check_sealed(self, got, self.out_v6_40, 0x1001, KEY_G128, "outbound v6 40B")
        self.assertEqual(self.out_frame_to(self.gwrun.clear_out, "ff3e::3:1"), self.want_v6_40, "inbound v6 40B")

    def test_rfc6040_outer_ect1_on_inner_ect0(self):
        """Bug: lib/esp/esp.cc ecn_decapsulate only propagates CE. RFC 6040 4.2 (Figure 4): inner
        ECT(0) under outer ECT(1) leaves as ECT(1); the gateway leaves ECT(0)."""
        self.assertEqual(self.out_frame_to(self.gwrun.clear_out, "239.3.0.99"), self.want_ecn)


if __name__ == "__main__":
    unittest.main()
