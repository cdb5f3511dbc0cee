"""Shared testbed for tests with several live gateways (net_af_packet on veths) in one private
network namespace: veths and a bridge, gateway processes with a CLI socket each, waiting for a
condition while checking that nothing died, failing with the gateways' logs.
Used by key_management_test.py and source_auth_test.py.
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


class LiveTestbed(unittest.TestCase):
    """A private network namespace; subclasses set TAG (names of the namespace, temp dir and EAL
    prefixes); each test starts its gateways."""

    TAG = "live"

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix=f"msecgw-{self.TAG}-")
        self.procs = []
        self.names = []
        self.ns = Netns.create(self.TAG)
        cpus = sorted(os.sched_getaffinity(0))
        self.cpu0, self.cpu1 = cpus[0], cpus[-1]

    def links(self, veths, bridged=()):
        """veth pairs (a, b, index of a[, index of b]) and a bridge br0 over the `bridged` ends."""
        ns = self.ns
        for a, b, index, *peer in veths:
            # per-gateway index ranges: distinct af_packet fanout groups
            ns.veth(a, b, index=index, peer_index=peer[0] if peer else None)
        if bridged:
            ns.run([IP_CMD, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"])
            ns.run([IP_CMD, "link", "set", "br0", "up"])
            for port in bridged:
                ns.run([IP_CMD, "link", "set", port, "master", "br0"])

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.ns.delete()
        for name in self.names:
            shutil.rmtree(os.path.join("/var/run/dpdk", self.prefix(name)), ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def prefix(self, name):
        return f"msecgw-{self.TAG}-{name}-{os.getpid()}"

    def log(self, name):
        with open(self.path(f"{name}.log"), errors="replace") as f:
            return f.read()

    def fail_with_logs(self, what):
        logs = "".join(f"\n--- {n}\n{self.log(n)[-3000:]}" for n in self.names if os.path.exists(self.path(f"{n}.log")))
        raise AssertionError(what + logs)

    def start_gateway(self, name, vdevs, text, worker_cpu, extra=()):
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
                 "--cli-socket", self.path(f"{name}.sock"), *extra]
        self.names.append(name)
        with open(self.path(f"{name}.log"), "w") as log:
            p = subprocess.Popen(self.ns.cmd(args), stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def wait_for(self, pred, what, timeout=40, on_fail=None):
        """Polls pred() until true; fails with the logs when a process exits or on timeout (then
        with on_fail()'s value too, if given)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return
            for p in self.procs:
                if p.poll() is not None:
                    self.fail_with_logs(f"a process exited ({p.returncode}) while waiting for {what}")
            time.sleep(0.05)
        self.fail_with_logs(f"timed out waiting for {what}" + (f": {on_fail()}" if on_fail else ""))
