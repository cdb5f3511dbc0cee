#!/usr/bin/python3
"""DPDK telemetry under /msecgw/ and packet capture with dpdk-dumpcap (issue [F] acceptance 3).

- TelemetryTest: a finite net_pcap run with --cli-socket; /usr/bin/dpdk-telemetry.py -f PREFIX
  answers every /msecgw/ command; the numbers equal the traffic table and `msecgw-cli --json`
  (the telemetry snapshot is refreshed by the control loop, so the test waits until it shows
  every frame); an unknown SA answers null; no key byte in any answer.
- DumpcapTest: the gateway on hugepages (a secondary process needs shared memory), net_pcap
  replaying bypassed multicast forever into port 0 and net_null sinking port 1; dpdk-dumpcap
  (secondary) captures 20 packets on each port, and tshark reads the pcapng: every packet is the
  UDP multicast the gateway received (port 0) or forwarded (port 1). Skipped, with the reason,
  only when 2 MB hugepages cannot be had (not root, no hugetlbfs, too few free pages).
"""
import glob
import json
import os
import shutil
import subprocess
import time

import cli_test as clit  # the CLI harness (a module, so its test classes are not collected here)
from gwharness import DROP_LABELS, write_pcap

TELEMETRY = "/usr/bin/dpdk-telemetry.py"
DUMPCAP = shutil.which("dpdk-dumpcap") or "/usr/bin/dpdk-dumpcap"
TSHARK = shutil.which("tshark") or "/usr/bin/tshark"
PY = "/usr/bin/python3"


def telemetry(prefix, *cmds):
    """{command: answer} from dpdk-telemetry.py (one JSON object per line on its stdout)."""
    p = subprocess.run([PY, TELEMETRY, "-f", prefix], input="".join(c + "\n" for c in cmds),
                       capture_output=True, text=True, timeout=60)
    out = []
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    assert len(out) == len(cmds), f"dpdk-telemetry.py: {p.stdout}\n{p.stderr}"
    return out, p.stdout


class TelemetryTest(clit.CliCase):

    def test_msecgw_commands(self):
        write_pcap(self.path("in.pcap"), clit.CLEAR_RX)
        write_pcap(self.path("empty.pcap"), [])
        self.start(f"net_pcap0,rx_pcap={self.path('in.pcap')},tx_pcap={self.path('clear_out.pcap')}",
                   f"net_pcap1,rx_pcap={self.path('empty.pcap')},tx_pcap={self.path('prot_out.pcap')}")
        prefix = self._prefixes[-1]
        deadline = time.monotonic() + 60
        while True:
            (stats,), _ = telemetry(prefix, "/msecgw/stats")
            st = stats["/msecgw/stats"]
            if st["rx_packets"] == clit.N and st["tx_packets"] + st["drops_total"] == clit.N:
                break
            self.assertLess(time.monotonic(), deadline, f"telemetry never showed every frame: {st}")
            time.sleep(0.2)
        cli = self.js("show", "stats")
        for k in st:
            self.assertEqual(st[k], cli[k], k)
        self.assertEqual((st["sealed"], st["bypassed"]), (clit.SEALED, clit.BYPASSED))

        answers, raw = telemetry(prefix, "/msecgw/info", "/msecgw/drops", "/msecgw/sa", "/msecgw/sa,a",
                                 "/msecgw/sa,a-in", "/msecgw/sa,nosuch", "/msecgw/lcore", "/msecgw/lcore,1",
                                 "/msecgw/port", "/msecgw/port,0", "/msecgw/port,1", "/help,/msecgw/sa")
        info, drops, sas, sa_a, sa_in, nosuch, lcores, lcore1, ports, port0, port1, help_sa = \
            [list(a.values())[0] for a in answers]
        self.assertEqual((info["version"], info["running"], info["workers"], info["sas"], info["policies"]),
                         ("0.1.0", 1, 1, 2, 4))
        self.assertTrue(info["dpdk"].startswith("DPDK "))
        self.assertEqual(sorted(drops), sorted(DROP_LABELS))
        self.assertEqual({k: v for k, v in drops.items() if v},
                         {"policy_discard": clit.DISCARDED, "policy_no_match": clit.UNMATCHED})
        self.assertEqual(sas, ["a", "a-in"])
        self.assertEqual(sa_a, {"name": "a", "dir": "out", "spi": "0x00007001", "aead": "aes-128-gcm", "dst": "any",
                                "src": "any", "replay_window": 1024, "packets": clit.SEALED,
                                "bytes": clit.SEALED * 128, "state": "active"})
        self.assertEqual((sa_in["dir"], sa_in["dst"], sa_in["aead"], sa_in["packets"]),
                         ("in", "239.6.0.0/16", "aes-256-gcm", 0))
        self.assertIsNone(nosuch)
        self.assertEqual(lcores, [1])
        self.assertEqual((lcore1["rx_packets"], lcore1["sealed"], lcore1["bypassed"], lcore1["drops_total"]),
                         (clit.N, clit.SEALED, clit.BYPASSED, clit.DISCARDED + clit.UNMATCHED))
        self.assertEqual(ports, [0, 1])
        self.assertEqual((port0["side"], port0["driver"], port0["rx_packets"], port0["tx_packets"]),
                         ("clear", "net_pcap", clit.N, 0))
        self.assertEqual((port1["side"], port1["rx_packets"], port1["tx_packets"]),
                         ("protected", 0, clit.SEALED + clit.BYPASSED))
        self.assertIn("no keys", help_sa["/msecgw/sa"])
        self.outputs.append(raw.encode())
        self.quit_and_wait()
        self.assert_no_keys()


def hugepages():
    """None when 2 MB hugepages are usable (reserving and mounting them as root, like
    perf/dpdk_memory.sh), else why not."""
    if os.geteuid() != 0:
        return "not root: cannot reserve hugepages"
    try:
        with open("/proc/sys/vm/nr_hugepages") as f:
            if int(f.read()) < 512:
                with open("/proc/sys/vm/nr_hugepages", "w") as w:
                    w.write("512")
    except OSError as e:
        return f"cannot reserve hugepages: {e}"
    with open("/proc/mounts") as f:
        mounted = any(l.split()[1:3] == ["/dev/hugepages", "hugetlbfs"] for l in f)
    if not mounted:
        os.makedirs("/dev/hugepages", exist_ok=True)
        if subprocess.run(["mount", "-t", "hugetlbfs", "none", "/dev/hugepages"], capture_output=True).returncode:
            return "cannot mount hugetlbfs on /dev/hugepages"
    meminfo = dict(l.split(":", 1) for l in open("/proc/meminfo"))
    free, size = int(meminfo["HugePages_Free"].split()[0]), meminfo["Hugepagesize"].split()[0]
    if size != "2048" or free < 256:
        return f"only {free} free hugepages of {size} kB (need 256 of 2048 kB)"
    return None


class DumpcapTest(clit.CliCase):

    def tearDown(self):
        super().tearDown()
        for p in self._prefixes:  # the hugepage files of our own runs (no --huge-unlink: shared)
            for f in glob.glob(f"/dev/hugepages/{p}map_*"):
                os.unlink(f)

    def test_capture_on_running_gateway(self):
        why = hugepages()
        if why:
            self.skipTest(f"dpdk-dumpcap needs hugepages shared with the gateway: {why}")
        frames = [clit.udp(f"10.1.{i % 4}.1", "239.1.1.1", 50 + i) for i in range(32)]
        write_pcap(self.path("in.pcap"), frames)
        # hugepages, not --no-huge: a secondary process maps the gateway's memory
        self.start(f"net_pcap0,rx_pcap={self.path('in.pcap')},infinite_rx=1", "net_null0,no-rx=1", memory=("-m", "256"))
        prefix = self._prefixes[-1]
        self.wait_for("forwarding", lambda s: s["bypassed"] > 1000, "show", "stats")
        for port, what in ((0, "received"), (1, "forwarded")):
            out = self.path(f"cap{port}.pcapng")
            p = subprocess.run([DUMPCAP, f"--file-prefix={prefix}", "-i", str(port), "-c", "20", "-w", out, "-q"],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, f"dpdk-dumpcap -i {port}: {p.stdout}\n{p.stderr}")
            t = subprocess.run([TSHARK, "-r", out, "-T", "fields", "-e", "ip.src", "-e", "ip.dst", "-e", "udp.dstport"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(t.returncode, 0, t.stderr)
            rows = [l.split("\t") for l in t.stdout.splitlines()]
            self.assertGreaterEqual(len(rows), 20, f"port {port}: {t.stdout}")
            for src, dst, dport in rows:
                self.assertEqual((dst, dport), ("239.1.1.1", "5000"), f"port {port} {what}")
                self.assertTrue(src.startswith("10.1."), src)
        final = self.quit_and_wait()
        self.assertEqual(final["drops_total"], 0)
        self.assertEqual(final["tx_packets"], final["rx_packets"])
