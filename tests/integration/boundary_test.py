"""Boundary re-encryption on net_pcap vdevs (docs/regions.md): one gateway with two protected
ports in two key regions. ESP from leaf A (port 0, SA 0xa1) leaves on the trunk (port 1) sealed
under the trunk's SA 0x71, inner packet byte for byte, outer addresses = inner (S,G) (RFC 5374),
sequence numbers from 1. ESP under leaf A's SA arriving on the trunk port is dropped as
esp_wrong_region; an SPI no region knows as esp_no_sa. The keys, SAs and ESP building are
python-cryptography, independent of the gateway's ipsec-mb.
"""
import ipaddress
import os
import struct
import sys
import unittest

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gwharness import GatewayTestCase  # noqa: E402

KM_A = bytes(range(0x00, 0x14))      # leaf A: key || salt
KM_T = bytes(range(0x20, 0x34))      # trunk
SPI_A, SPI_T = 0xA100, 0x7100
SENDER4, GROUP4 = "10.1.0.1", "239.1.1.1"
SENDER6, GROUP6 = "fd00:a::1", "ff3e::1:1"


def hexkey(km):
    return "0x" + km.hex()


CONFIG = f"""state_dir: @STATE@
regions: [leaf-a, trunk]
ports:
  - {{port: 0, side: protected, region: leaf-a}}
  - {{port: 1, side: protected, region: trunk}}
sas:
  - {{name: a-in, dir: in, spi: {SPI_A:#x}, aead: aes-128-gcm, key: "{hexkey(KM_A)}", region: leaf-a}}
  - {{name: t-out, dir: out, spi: {SPI_T:#x}, aead: aes-128-gcm, key: "{hexkey(KM_T)}", region: trunk}}
policies:
  - {{dir: in, region: leaf-a, dst: 239.0.0.0/8, action: protect, sa: a-in}}
  - {{dir: in, region: leaf-a, dst: 'ff3e::/16', action: protect, sa: a-in}}
  - {{dir: out, region: trunk, dst: 239.0.0.0/8, action: protect, sa: t-out}}
  - {{dir: out, region: trunk, dst: 'ff3e::/16', action: protect, sa: t-out}}
"""


def mac_for(group):
    p = ipaddress.ip_address(group).packed
    return (b"\x01\x00\x5e" + bytes([p[1] & 0x7F, p[2], p[3]])) if len(p) == 4 else b"\x33\x33" + p[12:]


def inner(family, size, tag):
    """A UDP datagram to the group, `size` bytes of IP packet."""
    if family == 4:
        head = IP(src=SENDER4, dst=GROUP4, ttl=8, id=tag) / UDP(sport=4000, dport=5000)
        hdr = 28
    else:
        head = IPv6(src=SENDER6, dst=GROUP6, hlim=8) / UDP(sport=4000, dport=5000)
        hdr = 48
    return bytes(head / bytes((tag + i) & 0xFF for i in range(size - hdr)))


def seal(spi, km, pkt, seq):
    """Tunnel-mode group ESP (RFC 4303/4106/5374) of IP packet `pkt` -> Ethernet frame."""
    family = pkt[0] >> 4
    nh = 4 if family == 4 else 41
    padlen = (-(len(pkt) + 2)) % 4
    plain = pkt + bytes(range(1, padlen + 1)) + bytes([padlen, nh])
    iv = struct.pack(">Q", 0x1000 + seq)
    head = struct.pack(">II", spi, seq)
    esp = head + iv + AESGCM(km[:-4]).encrypt(km[-4:] + iv, plain, head)
    if family == 4:
        outer = bytes(IP(src=SENDER4, dst=GROUP4, ttl=64, proto=50) / esp)
        eth = Ether(dst=mac_for(GROUP4), src="02:00:00:0a:00:01", type=0x0800)
    else:
        outer = bytes(IPv6(src=SENDER6, dst=GROUP6, hlim=64, nh=50) / esp)
        eth = Ether(dst=mac_for(GROUP6), src="02:00:00:0a:00:01", type=0x86DD)
    return bytes(eth) + outer


def open_esp(tc, frame, spi, km):
    """Checks `frame` is group ESP under `spi` with outer addresses = inner; returns (seq, inner)."""
    ethertype = frame[12:14]
    ip = frame[14:]
    if ethertype == b"\x08\x00":
        tc.assertEqual(ip[9], 50, "IPv4 protocol ESP")
        outer_src, outer_dst, esp = ip[12:16], ip[16:20], ip[20:struct.unpack(">H", ip[2:4])[0]]
    else:
        tc.assertEqual(ip[6], 50, "IPv6 next header ESP")
        outer_src, outer_dst, esp = ip[8:24], ip[24:40], ip[40:40 + struct.unpack(">H", ip[4:6])[0]]
    got_spi, seq = struct.unpack(">II", esp[:8])
    tc.assertEqual(got_spi, spi, "SPI")
    plain = AESGCM(km[:-4]).decrypt(km[-4:] + esp[8:16], esp[16:], esp[:8])
    padlen = plain[-2]
    pkt = plain[:-2 - padlen]
    if pkt[0] >> 4 == 4:
        tc.assertEqual((outer_src, outer_dst), (pkt[12:16], pkt[16:20]), "RFC 5374: outer = inner (S,G)")
    else:
        tc.assertEqual((outer_src, outer_dst), (pkt[8:24], pkt[24:40]), "RFC 5374: outer = inner (S,G)")
    return seq, pkt


class BoundaryReencryptTest(GatewayTestCase):
    def test_leaf_to_trunk_and_wrong_region(self):
        sizes = [64, 200, 1000, 1420]
        sent = []
        frames = []
        for k in range(24):
            family = 4 if k % 2 == 0 else 6
            pkt = inner(family, max(sizes[k % len(sizes)], 64 if family == 4 else 72), k)
            sent.append(pkt)
            frames.append(seal(SPI_A, KM_A, pkt, k + 1))
        wrong = [seal(SPI_A, KM_A, inner(4, 100, 99), 1000),  # leaf A's SA on the trunk
                 seal(0xDEAD, KM_A, inner(6, 100, 98), 1)]    # nobody's SPI
        run = self.run_gateway(CONFIG, clear_rx=frames, prot_rx=wrong, duration=2)
        self.assertEqual(run.clear_out, [], "nothing goes back into leaf A")
        self.assertEqual(len(run.prot_out), len(sent), "every leaf-A datagram leaves on the trunk")
        seqs = []
        for frame, want, src in zip(run.prot_out, sent, frames):
            self.assertEqual(frame[:14], src[:14], "Ethernet header kept (multicast MAC of the group)")
            seq, got = open_esp(self, frame, SPI_T, KM_T)
            self.assertEqual(got, want, "inner packet byte for byte")
            seqs.append(seq)
        self.assertEqual(seqs, list(range(1, len(sent) + 1)),
                         "the trunk SA's own sequence numbers (one counter per SA and lcore)")
        st = self.read_stats()
        self.assertEqual(st["drops"]["esp_wrong_region"], 1, st["drops"])
        self.assertEqual(st["drops"]["esp_no_sa"], 1, st["drops"])
        self.assertEqual(st["drops_total"], 2, st["drops"])


if __name__ == "__main__":
    unittest.main()
