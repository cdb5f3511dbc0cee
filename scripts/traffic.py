#!/usr/bin/python3
"""Synthetic multicast traffic for the demo: a pcap of clear frames as a sender LAN would emit.

Several senders stream to IPv4 and IPv6 groups (video-like 1316-byte payloads, market-data-like
small ones), with some traffic the default policy refuses: an admin-scoped group (discard), unicast
(no policy: discarded by default) and a few malformed frames, so every drop reason shown is real.
"""
import argparse
import random

from scapy.all import Dot1Q, Ether, IP, IPv6, Raw, UDP, wrpcap
from scapy.utils import PcapWriter


def mcast_mac_v4(group):
    o = [int(x) for x in group.split(".")]
    return "01:00:5e:%02x:%02x:%02x" % (o[1] & 0x7F, o[2], o[3])


def mcast_mac_v6(group):
    import ipaddress
    tail = ipaddress.IPv6Address(group).packed[-4:]
    return "33:33:" + ":".join("%02x" % b for b in tail)


def frames(count, seed):
    rnd = random.Random(seed)
    senders4 = ["10.1.0.%d" % i for i in range(1, 9)]
    senders6 = ["2001:db8:1::%x" % i for i in range(1, 5)]
    out = []
    for i in range(count):
        kind = rnd.random()
        if kind < 0.55:
            src, grp = rnd.choice(senders4), "239.1.%d.%d" % (rnd.randrange(4), rnd.randrange(1, 8))
            size = rnd.choice([1316, 188 * 7, 64, 200])
            f = Ether(src="02:00:00:00:00:01", dst=mcast_mac_v4(grp)) / IP(src=src, dst=grp, ttl=16)
            f = f / UDP(sport=5000, dport=5004) / Raw(bytes(size))
        elif kind < 0.80:
            src, grp = rnd.choice(senders6), "ff3e::8000:%x" % rnd.randrange(1, 6)
            f = Ether(src="02:00:00:00:00:01", dst=mcast_mac_v6(grp)) / IPv6(src=src, dst=grp, hlim=16)
            f = f / UDP(sport=6000, dport=6004) / Raw(bytes(rnd.choice([100, 1200])))
        elif kind < 0.88:
            grp = "239.1.0.9"
            f = Ether(src="02:00:00:00:00:01", dst=mcast_mac_v4(grp)) / Dot1Q(vlan=100)
            f = f / IP(src=rnd.choice(senders4), dst=grp) / UDP(sport=7000, dport=7004) / Raw(bytes(300))
        elif kind < 0.93:
            grp = "239.255.0.1"  # admin-scoped: the default policy discards it
            f = Ether(dst=mcast_mac_v4(grp)) / IP(src=senders4[0], dst=grp) / UDP() / Raw(bytes(100))
        elif kind < 0.97:
            f = Ether(dst="02:00:00:00:00:99") / IP(src=senders4[1], dst="192.0.2.10") / UDP() / Raw(bytes(80))
        else:
            f = Ether(dst="01:00:5e:01:01:01") / IP(src=senders4[2], dst="239.1.1.1") / UDP() / Raw(bytes(40))
            raw = bytearray(bytes(f))
            raw[14 + 10] ^= 0xFF  # corrupt the header checksum
            f = Ether(bytes(raw))
        out.append(f)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True, help="pcap to write")
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--empty", help="also write an empty pcap here (for an idle rx port)")
    a = ap.parse_args()
    wrpcap(a.out, frames(a.count, a.seed), linktype=1)
    if a.empty:
        w = PcapWriter(a.empty, linktype=1, sync=True)
        w.write_header(None)
        w.close()


if __name__ == "__main__":
    main()
