"""Shared helpers for tests with several live gateways (net_af_packet on veths) in one private
network namespace: the namespace and its veths/bridge, gateway processes with a CLI socket each,
waiting for a condition while checking that nothing died, and failing with the gateways' logs.
Used by source_auth_test.py (key_management_test.py has its own KeyTestbed, with more options).
"""
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from gwharness import MSECGW_BIN
from traffic_paced import IP as IP_CMD, Netns


def live(n, iface):
    """A port on a veth (net_af_packet, one queue pair, a 4096-frame ring)."""
    return f"net_af_packet{n},iface={iface},framecnt=4096"


class LiveGatewaysTestCase(unittest.TestCase):
    """Subclasses set TAG (names of the namespace, temp dir and EAL prefixes) and GATEWAYS (names)."""

    TAG = "live"
    GATEWAYS = ()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix=f"msecgw-{self.TAG}-")
        self.procs = []
        self.ns = Netns.create(self.TAG)
        cpus = sorted(os.sched_getaffinity(0))
        self.cpu0, self.cpu1 = cpus[0], cpus[-1]

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.ns.delete()
        for name in self.GATEWAYS:
            shutil.rmtree(os.path.join("/var/run/dpdk", self.prefix(name)), ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def bridge(self, veths, bridged):
        """veth pairs (a, b, index): a for a gateway or a sender, b on br0 when listed in `bridged`.
        Indexes in per-gateway 0x1000 ranges keep af_packet fanout groups distinct (traffic_paced.py)."""
        self.ns.run([IP_CMD, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"])
        self.ns.run([IP_CMD, "link", "set", "br0", "up"])
        for a, b, index in veths:
            self.ns.veth(a, b, index=index)
        for port in bridged:
            self.ns.run([IP_CMD, "link", "set", port, "master", "br0"])

    def path(self, name):
        return os.path.join(self.tmp, name)

    def prefix(self, name):
        return f"msecgw-{self.TAG}-{name}-{os.getpid()}"

    def log(self, name):
        with open(self.path(f"{name}.log"), errors="replace") as f:
            return f.read()

    def fail_with_logs(self, what):
        logs = "".join(f"\n--- {n}\n{self.log(n)[-3000:]}" for n in self.GATEWAYS if os.path.exists(self.path(f"{n}.log")))
        raise AssertionError(what + logs)

    def start_gateway(self, name, vdevs, text, worker_cpu):
        """The real binary in the namespace, main lcore on cpu0, its one worker on `worker_cpu`;
        --stats-json NAME.json, --cli-socket NAME.sock, output in NAME.log."""
        cfg = self.path(f"{name}.yaml")
        with open(cfg, "w") as f:
            f.write(text)
        args = [MSECGW_BIN, "--no-huge", "-m", "512", "--no-pci", "--lcores", f"0@{self.cpu0},1@{worker_cpu}",
                "--file-prefix", self.prefix(name), "--log-level", "lib.*:warning"]
        for v in vdevs:
            args += ["--vdev", v]
        args += ["--", "--config", cfg, "--stats-json", self.path(f"{name}.json"),
                 "--cli-socket", self.path(f"{name}.sock")]
        with open(self.path(f"{name}.log"), "w") as log:
            p = subprocess.Popen(self.ns.cmd(args), stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def wait_for(self, pred, what, timeout=40, on_fail=None):
        """Polls pred() until true; fails with the logs on timeout or when a process died."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return
            for p in self.procs:
                if p.poll() is not None and p.returncode != 0:
                    self.fail_with_logs(f"a process exited ({p.returncode}) while waiting for {what}")
            time.sleep(0.05)
        self.fail_with_logs(f"timed out waiting for {what}" + (f": {on_fail()}" if on_fail else ""))
