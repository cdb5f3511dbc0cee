#!/usr/bin/python3
"""The shipped example configuration and systemd unit (packaging/) fit the binary.

- packaging/msecgw.yaml loads: msecgw gets past the configuration (which is checked before the
  EAL starts and exits 2 on any error) and stops only at the EAL step this test makes fail on
  purpose (one lcore: "no worker lcore", exit 1).
- Every msecgw option the unit's ExecStart passes (after `--`) is one msecgw accepts.
"""
import os
import re
import subprocess

from gwharness import MSECGW_BIN, GatewayTestCase, unique_prefix

SRC = os.environ.get("MSECGW_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))


class PackagingTest(GatewayTestCase):

    def test_example_config_loads(self):
        with open(os.path.join(SRC, "packaging", "msecgw.yaml")) as f:
            text = f.read().replace("/var/lib/msecgw", self.path("state"))
        cfg = self.write_config(text)
        prefix = unique_prefix("pkg")
        self._prefixes.append(prefix)
        p = self.run_binary(["--no-huge", "-m", "256", "--no-pci", "-l", "0", "--file-prefix", prefix,
                             "--", "--config", cfg])
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("no worker lcore", p.stderr)

    def test_unit_options_are_known(self):
        with open(os.path.join(SRC, "packaging", "msecgw.service")) as f:
            exec_start = re.search(r"^ExecStart=(.*)$", f.read(), re.M)[1].split()
        self.assertEqual(exec_start[0], "/usr/bin/msecgw")
        ours = exec_start[exec_start.index("--") + 1:]
        opts = [a for a in ours if a.startswith("--")]
        self.assertEqual(opts, ["--config", "--cli-socket"])
        usage = subprocess.run([MSECGW_BIN, "--", "--help"], capture_output=True, text=True).stdout
        for o in opts:
            self.assertIn(o, usage)
        with open(os.path.join(SRC, "packaging", "msecgw.default")) as f:
            args = re.search(r'^MSECGW_ARGS="(.*)"$', f.read(), re.M)[1].split()
        for o in (a for a in args if a.startswith("--")):
            self.assertIn(o, usage)
