#!/usr/bin/python3
"""Paced live traffic for integration tests that need packets *flowing* while something happens
(SIGHUP reloads, kills): a private network namespace with a veth pair, and a sender that replays
a pcap into it at a fixed rate.

As a library (the test process):
    ns = Netns.create("tag")            # netns with IPv6 off (no ND/MLD chatter), lo up
    ns.veth("gw0", "tx0")               # gw0 for the gateway (net_af_packet iface=gw0), tx0 to send on
    ns.cmd(["msecgw", ...])             # argv prefix: runs inside the namespace (same pid: ip execs it)
    ns.delete()

As a program (run inside the namespace by `ip netns exec`):
    traffic_paced.py --iface tx0 --pcap F --rate PPS [--every K] [--gate INDEX:PATH ...] [--cpu N]
Sends every frame of F on the interface through an AF_PACKET socket, frame i at i/PPS seconds.
Prints `progress K` (K frames sent) every --every frames, then `done N SECONDS`. A gate holds
frame INDEX until PATH exists (`gate INDEX waited SECONDS` is printed); pacing then resumes
from there. Exits 2 when a gate is not opened within --gate-timeout seconds.
"""
import argparse
import os
import shutil
import socket
import struct
import subprocess
import sys
import time


IP = shutil.which("ip") or "/usr/sbin/ip"
SYSCTL = shutil.which("sysctl") or "/usr/sbin/sysctl"


class Netns:
    """A named network namespace owned by the test; delete() removes it and its interfaces."""

    def __init__(self, name):
        self.name = name

    @classmethod
    def create(cls, tag):
        name = f"msecgw_{tag}_{os.getpid()}"
        subprocess.run([IP, "netns", "add", name], check=True, capture_output=True)
        ns = cls(name)
        ns.run([SYSCTL, "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
        ns.run([IP, "link", "set", "lo", "up"])
        return ns

    def cmd(self, argv):
        return [IP, "netns", "exec", self.name, *argv]

    def run(self, argv):
        return subprocess.run(self.cmd(argv), check=True, capture_output=True, text=True)

    def veth(self, a, b, mtu=1500, index=None, peer_index=None):
        """veth pair a <-> b; `index` fixes a's interface index (b gets index + 0x80). DPDK 22.11's
        net_af_packet joins the PACKET_FANOUT group (pid ^ ifindex) & 0xffff, so two gateways in one
        namespace can draw the same group for different interfaces and fail to start: give each
        gateway's interfaces indexes in their own 0x1000 range (pids started together differ less).
        `peer_index` places b elsewhere (when b is another gateway's port)."""
        ia = ["index", str(index)] if index is not None else []
        ib = ["index", str(peer_index if peer_index is not None else index + 0x80)] if index is not None else []
        self.run([IP, "link", "add", a, *ia, "mtu", str(mtu), "type", "veth", "peer", "name", b, *ib, "mtu", str(mtu)])
        for i in (a, b):
            self.run([SYSCTL, "-qw", f"net.ipv6.conf.{i}.disable_ipv6=1"])
            self.run([IP, "link", "set", i, "up"])

    def delete(self):
        subprocess.run([IP, "netns", "del", self.name], capture_output=True)


def read_frames(path):
    """Frames of a little-endian pcap (any link type; no scapy needed)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24 or struct.unpack_from("<I", data)[0] not in (0xA1B2C3D4, 0xA1B23C4D):
        raise SystemExit(f"{path}: not a little-endian pcap")
    frames, off = [], 24
    while off + 16 <= len(data):
        incl = struct.unpack_from("<I", data, off + 8)[0]
        frames.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return frames


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iface", required=True)
    ap.add_argument("--pcap", required=True)
    ap.add_argument("--rate", type=float, required=True, help="frames per second")
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--gate", action="append", default=[], help="INDEX:PATH")
    ap.add_argument("--gate-timeout", type=float, default=20)
    ap.add_argument("--cpu", type=int)
    a = ap.parse_args()
    if a.cpu is not None:
        os.sched_setaffinity(0, {a.cpu})
    gates = {}
    for g in a.gate:
        k, path = g.split(":", 1)
        gates[int(k)] = path
    frames = read_frames(a.pcap)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.iface, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    t0 = time.monotonic()
    start = t0
    for i, frame in enumerate(frames):
        if i in gates:
            w0 = time.monotonic()
            while not os.path.exists(gates[i]):
                if time.monotonic() - w0 > a.gate_timeout:
                    print(f"gate {i} timeout", flush=True)
                    return 2
                time.sleep(0.001)
            waited = time.monotonic() - w0
            t0 += waited
            print(f"gate {i} waited {waited:.4f}", flush=True)
        due = t0 + i / a.rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        while True:
            try:
                s.send(frame)
                break
            except BlockingIOError:  # ENOBUFS/EAGAIN under load: retry, never skip a frame
                time.sleep(0.0005)
            except OSError as e:
                if e.errno != 105:  # ENOBUFS
                    raise
                time.sleep(0.0005)
        if (i + 1) % a.every == 0:
            print(f"progress {i + 1}", flush=True)
    print(f"done {len(frames)} {time.monotonic() - start:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
