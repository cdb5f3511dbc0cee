"""Bad configurations and command lines make the real msecgw binary exit 2 with exactly one line
`msecgw: <file>:<line>: <key path>: <reason>` on stderr, before the EAL starts.

Each config below marks the line the error must name with a trailing `# <-- error` comment, so the
expected 1-based line number is computed from the text, not hard-coded.
"""
import os
import re
import socket
import unittest

from gwharness import GatewayTestCase, sa_key_hex, unique_prefix

MARK = "# <-- error"

KEY16 = sa_key_hex(20)  # aes-128-gcm: 16-byte key + 4-byte salt
KEY32 = sa_key_hex(36)  # aes-256-gcm

PORTS = """\
ports:
  - {port: 0, side: clear}
  - {port: 1, side: protected, mtu: 1500}
"""

SAS = f"""\
sas:
  - name: g1-out
    dir: out
    spi: 0x1001
    aead: aes-128-gcm
    key: "{KEY16}"
  - name: g1-in
    dir: in
    spi: 0x1001
    aead: aes-256-gcm
    key: "{KEY32}"
"""


def marked_line(text):
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if MARK in line]
    assert len(lines) == 1, "a config case must mark exactly one line"
    return lines[0]


class ConfigErrorTest(GatewayTestCase):

    def run_msecgw(self, app_args):
        """Runs msecgw with EAL arguments that would leave a trace (its runtime dir) if EAL started."""
        self.eal_prefix = unique_prefix("cfg")
        self._prefixes.append(self.eal_prefix)
        return self.run_binary(["--no-pci", "--file-prefix", self.eal_prefix, "--"] + app_args)

    def assertOneLineError(self, proc):
        """Exit 2, nothing on stdout, and stderr is exactly one `msecgw: ` line; EAL never ran."""
        self.assertEqual(proc.returncode, 2, f"exit code; stderr: {proc.stderr!r}")
        self.assertEqual(proc.stdout, "")
        lines = proc.stderr.splitlines()
        self.assertEqual(len(lines), 1, f"stderr must be one line: {proc.stderr!r}")
        self.assertTrue(lines[0].startswith("msecgw: "), lines[0])
        self.assertFalse(os.path.exists(os.path.join("/var/run/dpdk", self.eal_prefix)), "EAL was started")
        return lines[0]

    def assertConfigError(self, text, key_path, word):
        """Loads `text` as the config; the error names the file, the marked line and `key_path`,
        and its reason contains `word`. Returns the stderr line."""
        cfg = self.write_config(text)
        line = self.assertOneLineError(self.run_msecgw(["--config", cfg]))
        prefix = f"msecgw: {cfg}:{marked_line(text)}: {key_path}: "
        self.assertTrue(line.startswith(prefix), f"\n got  {line!r}\n want {prefix!r}...")
        self.assertIn(word, line[len(prefix):])
        self.assertFalse(os.path.exists(self.path("state")), "state_dir created for a bad config")
        return line

    def test_valid_config_reaches_eal(self):
        """Control case: the same base config, valid, passes the loader (it fails later, in EAL,
        for lack of ports), so the error cases below fail for the reason they claim."""
        text = f"state_dir: @STATE@\n{PORTS}{SAS}policies:\n  - {{dir: out, dst: 239.0.0.0/8, action: bypass}}\n"
        proc = self.run_msecgw(["--config", self.write_config(text)])
        self.assertNotEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("EAL", proc.stderr)
        self.assertIn("does not exist", proc.stderr)

    def test_unknown_top_level_key(self):
        text = f"state_dir: @STATE@\n{PORTS}polices:  {MARK}\n  - {{dir: out, action: bypass}}\n"
        line = self.assertConfigError(text, "polices", "unknown key")
        self.assertIn("policies", line)  # lists the keys it knows

    def test_unknown_nested_key(self):
        cases = {
            "policies[0].acton": f"{PORTS}{SAS}policies:\n  - dir: out\n    dst: 239.0.0.0/8\n"
                                 f"    acton: bypass  {MARK}\n",
            "policies[1].sa2": f"{PORTS}{SAS}policies:\n  - {{dir: out, action: bypass}}\n"
                               f"  - dir: out\n    action: protect\n    sa: g1-out\n    sa2: g1-out  {MARK}\n",
            "ports[1].mut": f"ports:\n  - {{port: 0, side: clear}}\n  - {{port: 1, side: protected,\n"
                            f"     mut: 1400}}  {MARK}\n",
            "sas[1].replay": f"{PORTS}{SAS}    replay: 64  {MARK}\n",
        }
        for path, text in cases.items():
            with self.subTest(path):
                self.assertConfigError(text, path, "unknown key")

    def test_wrong_type(self):
        cases = [
            ("ports[1].mtu", "integer", "ports:\n  - port: 0\n    side: clear\n  - port: 1\n"
                                        f"    side: protected\n    mtu: jumbo  {MARK}\n"),
            ("ports", "list", f"ports: {{port: 0, side: clear}}  {MARK}\n"),
            ("policies[0].dst", "scalar", f"{PORTS}policies:\n  - dir: out\n"
                                          f"    dst: [239.1.0.0/16, 239.2.0.0/16]  {MARK}\n    action: bypass\n"),
            ("state_dir", "scalar", f"state_dir: {{a: 1}}  {MARK}\n{PORTS}"),
            ("policies[0].action", "one of", f"{PORTS}policies:\n  - dir: out\n    action: allow  {MARK}\n"),
        ]
        for path, word, text in cases:
            with self.subTest(path):
                self.assertConfigError(text, path, word)

    def test_bad_prefix(self):
        cases = [
            ("policies[0].dst", "prefix length", f"  - dir: out\n    dst: 239.1.0.0/33  {MARK}\n"),
            ("policies[0].src", "not an address", f"  - dir: out\n    src: 10.0.0.300  {MARK}\n"),
            ("policies[0].dst", "prefix length", f"  - dir: out\n    dst: ff00::/129  {MARK}\n"),
            ("policies[0].dst", "prefix length", f"  - dir: out\n    dst: 239.1.0.0/  {MARK}\n"),
        ]
        for path, word, pol in cases:
            with self.subTest(pol.strip()):
                self.assertConfigError(f"{PORTS}policies:\n{pol}    action: bypass\n", path, word)

    def test_prefix_host_bits(self):
        for pol in (f"  - dir: out\n    dst: 239.1.0.1/16  {MARK}\n    action: bypass\n",
                    f"  - dir: in\n    src: 10.1.2.3/8  {MARK}\n    action: bypass\n",
                    f"  - dir: out\n    dst: ff3e::1/16  {MARK}\n    action: bypass\n"):
            with self.subTest(pol.strip()):
                path = "policies[0].src" if "src" in pol else "policies[0].dst"
                self.assertConfigError(f"{PORTS}policies:\n{pol}", path, "host bits")
        sa = f"  - name: x\n    dir: in\n    spi: 0x2001\n    aead: aes-128-gcm\n    key: \"{KEY16}\"\n" \
             f"    dst: 239.1.0.1/16  {MARK}\n"
        self.assertConfigError(f"{PORTS}sas:\n{sa}", "sas[0].dst", "host bits")

    def test_policy_names_missing_sa(self):
        text = f"{PORTS}{SAS}policies:\n  - {{dir: out, dst: 239.0.0.0/8, action: bypass}}\n" \
               f"  - dir: out\n    dst: 239.1.0.0/16\n    action: protect\n    sa: g9-out  {MARK}\n"
        line = self.assertConfigError(text, "policies[1].sa", "no SA")
        self.assertIn("g9-out", line)

    def test_sa_of_wrong_direction(self):
        text = f"{PORTS}{SAS}policies:\n  - dir: out\n    dst: 239.1.0.0/16\n    action: protect\n" \
               f"    sa: g1-in  {MARK}\n"
        line = self.assertConfigError(text, "policies[0].sa", "dir: in")
        self.assertIn("dir: out", line)
        text = f"{PORTS}{SAS}policies:\n  - {{dir: in, action: protect, sa: g1-out}}  {MARK}\n"
        self.assertConfigError(text, "policies[0].sa", "dir: out")

    def test_duplicate_port(self):
        text = "ports:\n  - {port: 0, side: clear}\n  - {port: 1, side: protected}\n" \
               f"  - {{port: 2, side: clear}}\n  - port: 1  {MARK}\n    side: protected\n"
        self.assertConfigError(text, "ports[3].port", "twice")

    def test_duplicate_sa_name(self):
        text = PORTS + SAS + f"  - name: g1-out  {MARK}\n    dir: out\n    spi: 0x1002\n" \
                             f"    aead: aes-128-gcm\n    key: \"{KEY16}\"\n"
        line = self.assertConfigError(text, "sas[2].name", "twice")
        self.assertIn("g1-out", line)

    def test_bad_key_length_never_echoes_the_key(self):
        """Wrong length, odd digits or a non-hex digit: the error names sas[0].key but no key byte."""
        cases = [
            ("aes-128-gcm", sa_key_hex(19, seed=0x31), "bytes"),     # one byte short
            ("aes-128-gcm", sa_key_hex(36, seed=0x32), "bytes"),     # a 256-bit key for 128
            ("aes-256-gcm", sa_key_hex(20, seed=0x33), "bytes"),     # a 128-bit key for 256
            ("aes-256-gcm", sa_key_hex(36, seed=0x34)[:-1], "hex"),  # odd number of digits
            ("aes-128-gcm", sa_key_hex(20, seed=0x35)[:-2] + "zz", "hex"),
            ("aes-128-gcm", sa_key_hex(20, seed=0x36)[2:], "hex"),   # no 0x
        ]
        for aead, key, word in cases:
            with self.subTest(aead=aead, key_len=len(key)):
                text = f"{PORTS}sas:\n  - name: k\n    dir: out\n    spi: 0x1001\n    aead: {aead}\n" \
                       f"    key: \"{key}\"  {MARK}\n"
                line = self.assertConfigError(text, "sas[0].key", word)
                digits = key[2:] if key.startswith("0x") else key
                for i in range(0, len(digits) - 7):  # no 4-byte run of the key, in any case
                    self.assertNotIn(digits[i:i + 8].lower(), line.lower())

    def test_yaml_syntax_error(self):
        cases = [
            f"state_dir: @STATE@\n{PORTS} policies:  {MARK}\n  - {{dir: out, action: bypass}}\n",
            f"ports:\n\t- {{port: 0, side: clear}}  {MARK}\n",
            f"{PORTS}policies:\n  - {{dir: out, action: bypass}}\n  -: : [  {MARK}\n",
        ]
        for text in cases:
            with self.subTest(text.splitlines()[marked_line(text) - 1]):
                self.assertConfigError(text, "(yaml)", "")

    def test_missing_file(self):
        """A missing file, or a directory, names the path (line 0: there is no line to name)."""
        os.mkdir(self.path("dir.yaml"))
        for cfg in (self.path("does-not-exist.yaml"), self.path("dir.yaml")):
            with self.subTest(cfg):
                line = self.assertOneLineError(self.run_msecgw(["--config", cfg]))
                self.assertRegex(line, rf"^msecgw: {re.escape(cfg)}:0: \(file\): .*cannot read")

    def test_unknown_command_line_option(self):
        cfg = self.write_config(f"{PORTS}")
        cases = [
            (["--config", cfg, "--bogus", "1"], "unknown option '--bogus'"),
            (["--bogus"], "unknown option '--bogus'"),
            (["--config"], "--config needs a value"),
            (["--config", cfg, "--duration", "soon"], "--duration"),
            (["--config", cfg, "--duration", "-1"], "--duration"),
        ]
        for args, text in cases:
            with self.subTest(args):
                line = self.assertOneLineError(self.run_msecgw(args))
                self.assertIn(text, line)

    def test_bad_metrics_address(self):
        """--metrics ADDR:PORT: no port, a port out of range, a bad or IPv6 address, an address
        in use: one line naming --metrics, before the EAL starts."""
        cfg = self.write_config(f"{PORTS}")
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        in_use = f"127.0.0.1:{busy.getsockname()[1]}"
        cases = [
            ("127.0.0.1", "no port"),
            ("127.0.0.1:", "no port"),
            ("127.0.0.1:0", "port out of range"),
            ("127.0.0.1:65536", "port out of range"),
            ("127.0.0.1:http", "port is not a number"),
            ("gateway.example:9464", "not an IPv4 address"),
            ("[::1]:9464", "IPv6"),
            (in_use, "Address already in use"),
        ]
        try:
            for value, text in cases:
                with self.subTest(value):
                    line = self.assertOneLineError(self.run_msecgw(["--config", cfg, "--metrics", value]))
                    self.assertIn("--metrics", line)
                    self.assertIn(text, line)
        finally:
            busy.close()

    def test_missing_required_key(self):
        text = f"{PORTS}{SAS}policies:\n  - {{dir: out, dst: 239.0.0.0/8, action: protect}}  {MARK}\n"
        self.assertConfigError(text, "policies[0]", "missing key 'sa'")
        text = f"ports:\n  - {{port: 0, side: clear}}\n  - {{side: protected}}  {MARK}\n"
        self.assertConfigError(text, "ports[1]", "missing key 'port'")

    def test_ports_need_a_protocol(self):
        text = f"{PORTS}policies:\n  - dir: out\n    dport: 5000  {MARK}\n    action: bypass\n"
        self.assertConfigError(text, "policies[0].dport", "proto")

    def test_duplicate_yaml_key(self):
        """A key given twice in one mapping is an error naming the second one (yaml-cpp itself
        accepts it and would silently keep the first value: a second `policies:` list would be
        ignored)."""
        text = f"{PORTS}policies:\n  - dir: out\n    dst: 239.0.0.0/8\n    action: discard\n" \
               f"    action: bypass  {MARK}\n"
        self.assertConfigError(text, "policies[0].action", "twice")
        text = f"{PORTS}policies:\n  - {{dir: out, dst: 239.0.0.0/8, action: discard}}\n" \
               f"policies:  {MARK}\n  - {{dir: out, dst: 239.0.0.0/8, action: bypass}}\n"
        self.assertConfigError(text, "policies", "twice")
        text = f"ports:\n  - {{port: 0, side: clear, side: protected}}  {MARK}\n  - {{port: 1, side: protected}}\n"
        self.assertConfigError(text, "ports[0].side", "twice")

    def test_source_auth_errors(self):
        """[D] source_auth blocks of SAs and groups: every mistake names its key and line."""
        pem = self.path("k.pem")
        with open(pem, "w") as f:
            f.write("not read by the loader\n")
        out_sa = lambda block: (f"{PORTS}sas:\n  - name: o\n    dir: out\n    spi: 0x1001\n    aead: aes-128-gcm\n"
                                f"    key: \"{KEY16}\"\n    source_auth: {block}\n")
        in_sa = lambda block: (f"{PORTS}sas:\n  - name: i\n    dir: in\n    spi: 0x1001\n    aead: aes-128-gcm\n"
                               f"    key: \"{KEY16}\"\n    source_auth: {block}\n")
        cases = [
            (out_sa(f"{{signing_key: {pem}}}  {MARK}"), "sas[0].source_auth", "missing key 'mode'"),
            (out_sa(f"\n      mode: hmac  {MARK}\n      signing_key: {pem}"), "sas[0].source_auth.mode", "expected one of"),
            (out_sa(f"\n      mode: manifest\n      interval_ms: 10  {MARK}\n      signing_key: {pem}"),
             "sas[0].source_auth.interval_ms", "only mode tesla"),
            (out_sa(f"{{mode: tesla}}  {MARK}"), "sas[0].source_auth", "missing key 'signing_key'"),
            (out_sa(f"\n      mode: sign\n      signing_key: {pem}\n      trust: []  {MARK}"),
             "sas[0].source_auth.trust", "not trust"),
            (out_sa(f"\n      mode: sign\n      signing_key: /nonexistent/k.pem  {MARK}"),
             "sas[0].source_auth.signing_key", "cannot read"),
            (out_sa(f"\n      mode: tesla\n      disclosure_delay: 9  {MARK}\n      chain_length: 10\n      signing_key: {pem}"),
             "sas[0].source_auth.disclosure_delay", "below chain_length"),
            (in_sa(f"{{mode: sign}}  {MARK}"), "sas[0].source_auth", "missing key 'trust'"),
            (in_sa(f"\n      mode: sign\n      trust:\n        - {{sender: 10.0.0.0/33, public_key: {pem}}}  {MARK}"),
             "sas[0].source_auth.trust[0].sender", "10.0.0.0/33"),
            (in_sa(f"\n      mode: manifest\n      hold_packets: 0  {MARK}\n      trust: [{{sender: any, public_key: {pem}}}]"),
             "sas[0].source_auth.hold_packets", "expected 1.."),
            (f"{PORTS}groups:\n  - name: g\n    id: 1\n    dst: 239.1.0.0/16\n    source_auth:\n"
             f"      mode: tesla\n      signing_kee: {pem}  {MARK}\n", "groups[0].source_auth.signing_kee", "unknown key"),
        ]
        for text, path, word in cases:
            with self.subTest(path):
                self.assertConfigError(text, path, word)


if __name__ == "__main__":
    unittest.main()
