"""Issue [I] acceptance 4, IKE under flood: a real key server (`msecgw --gcks-only`, SQLite state)
takes a flood of IKE_SA_INIT from 127.0.0.2-17 (64 source ports, a fresh SPIi each, and every COOKIE
answered, the way a flooder with real addresses would) plus garbage datagrams (perf/ike_flood.cc),
while two real member gateways start and register. Checks:
  * cookies switch on (COOKIE answers), half-open state stays under its caps
    (admission.max_half_open_per_address keeps the flooding addresses from taking the table);
  * both members register during the flood (the flood runs until they did);
  * every garbage datagram is counted (malformed or ignored), nothing crashes;
  * resident memory of the key server stays bounded: VmHWM under RSS_BOUND_KIB.
The flood here is 10^5 requests at 10^4 per second; perf/ike_flood.sh runs 10^5 as fast as loopback takes them.
"""
import os
import re
import signal
import subprocess
import sys

from gwharness import MSECGW_BIN, write_pcap
from key_management_test import GCKS_PORT, KeyTestbed, config

IKE_FLOOD = os.environ.get("MSECGW_IKE_FLOOD_BIN",
                           os.path.join(os.path.dirname(MSECGW_BIN), "..", "..", "perf", "ike_flood"))
FLOOD_REQUESTS = 100_000
FLOOD_RATE = 10_000
RSS_BOUND_KIB = 64 * 1024  # docs/robustness.md "IKE flood"


def vm_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


class IkeFloodTest(KeyTestbed):

    TAG = "crf"

    def test_members_register_under_an_ike_sa_init_flood(self):
        gcks = self.start_key_server("gcks")
        start_hwm = vm_kib(gcks.pid, "VmHWM")
        until = self.path("members-registered")
        flood = subprocess.Popen(self.ns.cmd([IKE_FLOOD, "--target", f"127.0.0.1:{GCKS_PORT}", "--requests",
                                              str(FLOOD_REQUESTS), "--rate", str(FLOOD_RATE), "--sources", "16",
                                              "--ports", "4", "--garbage-every", "10", "--echo-cookies",
                                              "--watch", str(gcks.pid), "--until", until]),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.procs.append(flood)
        empty = self.path("empty.pcap")
        write_pcap(empty, [])
        for n, (name, identity) in enumerate((("m1", "gw-b"), ("m2", "gw-a2"))):
            self.start_gateway(name, [f"net_pcap0,rx_pcap={empty},tx_pcap={self.path(name + '-0.pcap')}",
                                      f"net_pcap1,rx_pcap={empty},tx_pcap={self.path(name + '-1.pcap')}"],
                               config(self.path(f"state-{name}"), identity, False), self.cpu1)
        for name in ("m1", "m2"):
            self.wait_for(lambda: self.ready(name, False), f"{name} registered under the flood", 60)
        self.assertIsNone(flood.poll(), "the flood ran until the members registered")
        with open(until, "w"):
            pass
        out, _ = flood.communicate(timeout=120)
        self.assertEqual(flood.returncode, 0, out)
        hwm = vm_kib(gcks.pid, "VmHWM")
        gcks.send_signal(signal.SIGTERM)
        gcks.wait(timeout=30)
        self.assertEqual(gcks.returncode, 0, self.log("gcks")[-2000:])
        got = dict(kv.split("=") for kv in out.split())
        summary = self.log("gcks")
        c = {k: int(v) for v, k in re.findall(r"(\d+) (registrations|malformed datagrams dropped|ignored|cookies sent|"
                                                r"cookies rejected|IKE_SA_INIT dropped at max_half_open|"
                                                r"at max_half_open_per_address)", summary)}
        print(f"ike flood: {out.strip()}; key server {c}; VmHWM {start_hwm} -> {hwm} KiB", file=sys.stderr)

        self.assertGreaterEqual(int(got["requests"]), FLOOD_REQUESTS)
        self.assertGreater(int(got["cookies"]), 0, "the key server demanded cookies")
        self.assertGreater(c["cookies sent"], 0)
        self.assertEqual(c["registrations"], 2, "both members registered")
        self.assertGreater(c["at max_half_open_per_address"], 0, "the flooding addresses hit their cap")
        self.assertEqual(c["IKE_SA_INIT dropped at max_half_open"], 0, "16 addresses x 64 stay under 4096")
        self.assertGreater(c["malformed datagrams dropped"], 0, "garbage is counted")
        self.assertGreater(c["ignored"], 0, "responses sent to the key server are counted")
        self.assertLess(hwm, RSS_BOUND_KIB, f"key server VmHWM {hwm} KiB")
