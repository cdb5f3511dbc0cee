#!/usr/bin/python3
"""Kernel UDP multicast hosts of the testbed (scripts/testbed.sh): a paced sender and a receiver
that joins a group through the kernel (IGMP for IPv4, MLD for IPv6) on one interface.

  mcast.py send --group 239.1.1.1 --port 5001 --iface eth0 --count 1000 --rate 200
  mcast.py recv --group 239.1.1.1 --port 5001 --iface eth0 --out FILE --seconds 10

Datagram i carries datagram(group, i): a 12-byte header (magic, index) then a filler whose length
and bytes depend on i, so a receiver's capture can be checked byte for byte. The receiver writes
every datagram it got as a line of hex to --out (after --seconds, or at SIGTERM).
"""
import argparse
import ipaddress
import signal
import socket
import struct
import sys
import time

MAGIC = b"MSGW"


def datagram(group, i):
    """The UDP payload of datagram i to `group`: 16..1200 bytes."""
    tag = ipaddress.ip_address(group).packed[-1]
    n = 16 + (i * 37) % 1185
    return MAGIC + struct.pack(">II", tag, i) + bytes((i + k * 7 + tag) & 0xFF for k in range(n - 12))


def family_of(group):
    return socket.AF_INET if ipaddress.ip_address(group).version == 4 else socket.AF_INET6


def iface_addr4(iface):
    """The IPv4 address of `iface` (for IP_MULTICAST_IF / IP_ADD_MEMBERSHIP)."""
    import fcntl
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        req = struct.pack("256s", iface.encode()[:15])
        return socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, req)[20:24])  # SIOCGIFADDR
    finally:
        s.close()


def send(a):
    fam = family_of(a.group)
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, a.ttl)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(iface_addr4(a.iface)))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    else:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, a.ttl)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, socket.if_nametoindex(a.iface))
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
    start = time.monotonic()
    for i in range(a.count):
        due = start + i / a.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        s.sendto(datagram(a.group, i), (a.group, a.port))
    return 0


def recv(a):
    fam = family_of(a.group)
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    if fam == socket.AF_INET:
        s.bind((a.group, a.port))
        mreq = socket.inet_aton(a.group) + socket.inet_aton(iface_addr4(a.iface))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    else:
        s.bind((a.group, a.port, 0, 0))
        mreq = socket.inet_pton(socket.AF_INET6, a.group) + struct.pack("@I", socket.if_nametoindex(a.iface))
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    got = []
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    end = time.monotonic() + a.seconds
    s.settimeout(0.2)
    if a.ready:
        open(a.ready, "w").close()  # joined: the sender may start
    while not stop and time.monotonic() < end:
        try:
            data = s.recv(65535)
        except socket.timeout:
            continue
        except InterruptedError:
            continue
        got.append(data)
    with open(a.out, "w") as f:
        for d in got:
            f.write(d.hex() + "\n")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["send", "recv"])
    p.add_argument("--group", required=True)
    p.add_argument("--port", type=int, default=5001)
    p.add_argument("--iface", default="eth0")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--rate", type=float, default=200.0, help="datagrams per second")
    p.add_argument("--ttl", type=int, default=8, help="IPv4 TTL / IPv6 hop limit")
    p.add_argument("--out", help="recv: file of received datagrams (hex lines)")
    p.add_argument("--seconds", type=float, default=10.0, help="recv: how long to listen")
    p.add_argument("--ready", help="recv: file created once the group is joined")
    a = p.parse_args()
    return send(a) if a.mode == "send" else recv(a)


if __name__ == "__main__":
    sys.exit(main())
