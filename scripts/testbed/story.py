#!/usr/bin/python3
"""Prints what each segment of the testbed carried (scripts/demo.sh, part 1): the captures of one
run, segment by segment, and the receivers' datagrams against what the sender sent.

usage: story.py WORKDIR COUNT GROUP   (WORKDIR holds <segment>.pcap and <host>.rx files)
"""
import ipaddress
import os
import struct
import sys

from scapy.utils import RawPcapReader

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mcast import datagram  # noqa: E402

SEGMENTS = [("leaf-a-clear", "leaf A, clear (sender -> edge A)"),
            ("leaf-a", "leaf A, protected (edge A -> boundary 1)"),
            ("trunk", "trunk (boundary 1 -> boundary 2, also seen by hC)"),
            ("leaf-b", "leaf B, protected (boundary 2 -> edge B)"),
            ("leaf-b-clear", "leaf B, clear (edge B -> receivers)")]


def describe(frames, group):
    """'N clear UDP' / 'N ESP SPI 0x.. outer S -> G' of the IPv4 frames to `group`."""
    g = ipaddress.ip_address(group).packed
    kinds = {}
    for f in frames:
        if f[12:14] != b"\x08\x00" or f[30:34] != g:
            continue
        ip = f[14:]
        src = str(ipaddress.ip_address(ip[12:16]))
        if ip[9] == 50:
            hl = (ip[0] & 15) * 4
            k = "ESP SPI %#010x, outer %s -> %s" % (struct.unpack(">I", ip[hl:hl + 4])[0], src, group)
        elif ip[9] == 17:
            k = "clear UDP %s -> %s" % (src, group)
        else:
            k = "proto %d" % ip[9]
        kinds[k] = kinds.get(k, 0) + 1
    return ", ".join("%d x %s" % (n, k) for k, n in sorted(kinds.items())) or "nothing"


def main():
    work, count, group = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    for seg, what in SEGMENTS:
        frames = [bytes(d) for d, _ in RawPcapReader(os.path.join(work, seg + ".pcap"))]
        print("  %-52s %s" % (what, describe(frames, group)))
    want = [datagram(group, i) for i in range(count)]
    ok = True
    for host in ("hB1", "hB2", "hC"):
        with open(os.path.join(work, host + ".rx")) as f:
            got = [bytes.fromhex(l) for l in f.read().split()]
        if host == "hC":
            print("  %-52s %d datagrams it can read" % ("hC (on the trunk, no key)", len(got)))
            ok = ok and not got
        else:
            same = got == want
            print("  %-52s %d of %d datagrams, byte for byte: %s" % ("receiver " + host, len(got), count,
                                                                   "yes" if same else "NO"))
            ok = ok and same
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
