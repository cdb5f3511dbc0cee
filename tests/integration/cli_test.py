#!/usr/bin/python3
"""The operator CLI over --cli-socket, driven with msecgw-cli (issue [F] acceptance 1).

- ShowAndEditTest: a finite run on net_pcap (sealed, bypassed, discarded and unmatched frames);
  once every frame is accounted for, every command runs over the socket through msecgw-cli and
  its table and --json output are checked against the traffic table: show
  port|sa|policy|group|stats|drops|lcore|log, help, clear stats (the CLI's counters restart from
  zero; --stats-json keeps the run totals), set log, add/del sa and policy (inbound and outbound),
  rekey group (no key server: exit 1), usage and command errors (exit 2 and 1), a missing socket
  (exit 2), quit (msecgw drains and exits 0, the socket file is removed).
- UnderTrafficTest: net_pcap replays its frames forever (infinite_rx) into the clear port, port 1
  is net_null (no-rx: it only sinks). While the frames flow, SA b and a protect policy for it are added in front of SA a's
  (make-before-break), then a's policy and a itself are deleted: packets sealed under both SAs,
  and at the end (quit) not one dropped: tx == rx == sealed in --stats-json.
Every CLI answer, stdout and stderr of the gateway are checked for every key's bytes (hex in
both cases, raw): none. The socket is mode 0600.
"""
import hashlib
import json
import os
import re
import stat
import subprocess
import time

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from gwharness import DROP_LABELS, MSECGW_BIN, GatewayTestCase, unique_prefix, write_pcap

CLI_BIN = os.environ.get("MSECGW_CLI_BIN", os.path.join(os.path.dirname(MSECGW_BIN), "..", "msecgw-cli", "msecgw-cli"))


def key(n, size=20):
    """Random-looking RFC 4106 keying material (key || salt)."""
    return hashlib.sha512(f"msecgw cli test key {n}".encode()).digest()[:size]


K_A, K_IN, K_B, K_IN2 = key(1), key(2, 36), key(3), key(4)
ALL_KEYS = [K_A, K_IN, K_B, K_IN2]

CONFIG = f"""\
state_dir: @STATE@
ports: [{{port: 0, side: clear}}, {{port: 1, side: protected}}]
sas:
  - {{name: a, dir: out, spi: 0x7001, aead: aes-128-gcm, key: "0x{K_A.hex()}"}}
  - {{name: a-in, dir: in, spi: 0x7001, dst: 239.6.0.0/16, aead: aes-256-gcm, key: "0x{K_IN.hex()}"}}
policies:
  - {{dir: out, dst: 239.6.0.0/16, action: protect, sa: a}}
  - {{dir: out, dst: 239.7.0.0/16, action: discard}}
  - {{dir: out, dst: 224.0.0.0/4, action: bypass}}
  - {{dir: in, dst: 239.6.0.0/16, action: protect, sa: a-in}}
"""


def udp(src, dst, size=100):
    return bytes(Ether(src="02:00:00:00:00:09", dst="01:00:5e:00:00:01") / IP(src=src, dst=dst) /
                 UDP(sport=4000, dport=5000) / Raw(bytes(size)))


SEALED, BYPASSED, DISCARDED, UNMATCHED = 10, 5, 3, 2
CLEAR_RX = ([udp(f"10.6.0.{i % 4 + 1}", "239.6.0.1") for i in range(SEALED)] +
            [udp("10.1.0.1", "239.1.1.1")] * BYPASSED + [udp("10.7.0.1", "239.7.0.1")] * DISCARDED +
            [udp("10.0.0.1", "10.0.0.2")] * UNMATCHED)
N = len(CLEAR_RX)


def key_forms(k):
    return [k, k.hex().encode(), k.hex().upper().encode()]


class CliCase(GatewayTestCase):
    """Starts msecgw with --cli-socket and runs msecgw-cli against it; collects all output."""

    def setUp(self):
        super().setUp()
        if not os.access(CLI_BIN, os.X_OK):
            self.fail(f"msecgw-cli not found at {CLI_BIN}")
        self.sock = self.path("cli.sock")
        self.outputs = []  # every byte the CLI printed
        self.proc = None

    def tearDown(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        super().tearDown()

    def start(self, port0, port1, memory=("--no-huge", "-m", "1024"), config=CONFIG, extra=()):
        cfg = self.write_config(config)
        prefix = unique_prefix(self.id().rsplit(".", 1)[-1][:20])
        self._prefixes.append(prefix)
        args = [*memory, "--no-pci", "-l", "0,1", "--file-prefix", prefix,
                "--vdev", port0, "--vdev", port1, "--", "--config", cfg, "--cli-socket", self.sock,
                "--stats-json", self.path("s.json"), *extra]
        self.out, self.err = open(self.path("stdout"), "wb"), open(self.path("stderr"), "wb")
        self.proc = subprocess.Popen([MSECGW_BIN] + args, stdout=self.out, stderr=self.err)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.assertIsNone(self.proc.poll(), f"msecgw exited early:\n{self.gateway_log()}")
            if os.path.exists(self.sock) and self.cli("show", "stats", check=None).returncode == 0:
                return
            time.sleep(0.1)
        self.fail(f"CLI socket did not answer in 60 s:\n{self.gateway_log()}")

    def gateway_log(self):
        self.out.flush()
        self.err.flush()
        with open(self.path("stdout"), "rb") as f, open(self.path("stderr"), "rb") as g:
            return (f.read() + g.read()).decode(errors="replace")

    def cli(self, *words, json_out=False, check=0, socket=None):
        """Runs msecgw-cli; `check` = the expected exit code (None: any)."""
        args = [CLI_BIN, "--socket", socket or self.sock] + (["--json"] if json_out else []) + list(words)
        p = subprocess.run(args, capture_output=True, timeout=60)
        self.outputs += [p.stdout, p.stderr]
        if check is not None:
            self.assertEqual(p.returncode, check, f"{' '.join(words)}: exit {p.returncode}\n"
                                                  f"stdout {p.stdout!r}\nstderr {p.stderr!r}\n"
                                                  f"gateway {self.proc.poll() if self.proc else None}:\n"
                                                  f"{self.gateway_log()[-3000:] if self.proc else ''}")
        return p

    def text(self, *words):
        return self.cli(*words).stdout.decode()

    def js(self, *words):
        return json.loads(self.cli(*words, json_out=True).stdout)

    def wait_for(self, what, pred, *words):
        """Polls `msecgw-cli --json WORDS` until pred(answer); returns the answer."""
        deadline = time.monotonic() + 60
        last = None
        while time.monotonic() < deadline:
            last = self.js(*words)
            if pred(last):
                return last
            time.sleep(0.1)
        self.fail(f"{what}: not reached in 60 s; last answer {last}")

    def table(self, text):
        """Rows of an aligned table as lists of cells; the header's columns start where every
        row's do (alignment)."""
        lines = text.rstrip("\n").split("\n")
        header = lines[0].split()
        ends = [m.end() for m in re.finditer(r"\S+", lines[0])]
        rows = []
        for line in lines[1:]:
            cells = line.split(None, len(header) - 1)  # the last column may hold spaces
            self.assertEqual(len(cells), len(header), f"row {line!r} under {lines[0]!r}")
            # numeric columns are right-aligned, header included: the cell ends where its header ends
            for col, cell in enumerate(cells[:-1]):
                if cell.isdigit():
                    start = ends[col - 1] if col else 0
                    self.assertEqual(line.index(cell, start) + len(cell), ends[col],
                                     f"column {header[col]} misaligned in {line!r}")
            rows.append(cells)
        return header, rows

    def quit_and_wait(self):
        self.assertIn("quitting", self.text("quit"))
        rc = self.proc.wait(timeout=60)
        self.assertEqual(rc, 0, self.gateway_log())
        self.assertFalse(os.path.exists(self.sock), "socket file removed at exit")
        with open(self.path("s.json")) as f:
            return json.load(f)

    def assert_no_keys(self):
        blobs = self.outputs + [self.gateway_log().encode()]
        for k in ALL_KEYS:
            for form in key_forms(k):
                for b in blobs:
                    self.assertNotIn(form, b, "key material in CLI or gateway output")


class ShowAndEditTest(CliCase):

    def test_every_command(self):
        empty = self.path("empty.pcap")
        write_pcap(self.path("in.pcap"), CLEAR_RX)
        write_pcap(empty, [])
        self.start(f"net_pcap0,rx_pcap={self.path('in.pcap')},tx_pcap={self.path('clear_out.pcap')}",
                   f"net_pcap1,rx_pcap={empty},tx_pcap={self.path('prot_out.pcap')}")
        self.assertEqual(stat.S_IMODE(os.stat(self.sock).st_mode), 0o600, "socket mode")
        st = self.wait_for("all frames accounted for", lambda s: s["rx_packets"] == N and
                           s["tx_packets"] + s["drops_total"] == N, "show", "stats")

        # show stats: JSON has --stats-json's shape, the table the same numbers
        self.assertEqual((st["sealed"], st["bypassed"], st["tx_packets"]), (SEALED, BYPASSED, SEALED + BYPASSED))
        self.assertEqual(sorted(st["drops"]), sorted(DROP_LABELS))
        self.assertEqual({k: v for k, v in st["drops"].items() if v},
                         {"policy_discard": DISCARDED, "policy_no_match": UNMATCHED})
        lines = dict(l.strip().split(":", 1) for l in self.text("show", "stats").splitlines()[1:])
        self.assertEqual({k: lines[k].strip() for k in ("since", "rx_packets", "sealed", "bypassed", "drops_total")},
                         {"since": "start", "rx_packets": str(N), "sealed": str(SEALED), "bypassed": str(BYPASSED),
                          "drops_total": str(DISCARDED + UNMATCHED)})

        # show port
        ports = {p["port"]: p for p in self.js("show", "port")}
        self.assertEqual((ports[0]["side"], ports[0]["rx_packets"], ports[0]["tx_packets"]), ("clear", N, 0))
        self.assertEqual((ports[1]["side"], ports[1]["rx_packets"], ports[1]["tx_packets"]),
                         ("protected", 0, SEALED + BYPASSED))
        header, rows = self.table(self.text("show", "port"))
        self.assertEqual(header[:6], ["port", "side", "driver", "mtu", "rx_packets", "rx_bytes"])
        self.assertEqual([(r[0], r[1], r[2], r[4], r[6]) for r in rows],
                         [("0", "clear", "net_pcap", str(N), "0"),
                          ("1", "protected", "net_pcap", "0", str(SEALED + BYPASSED))])

        # show lcore
        lc = self.js("show", "lcore")
        self.assertEqual([(l["lcore"], l["rx_packets"], l["sealed"], l["bypassed"], l["drops_total"]) for l in lc],
                         [(1, N, SEALED, BYPASSED, DISCARDED + UNMATCHED)])
        header, rows = self.table(self.text("show", "lcore"))
        self.assertEqual((header[0], rows[0][0], rows[0][1]), ("lcore", "1", str(N)))

        # show drops
        d = self.js("show", "drops")
        self.assertEqual(d["drops_total"], DISCARDED + UNMATCHED)
        self.assertEqual(sorted(d["drops"]), sorted(DROP_LABELS))
        text = self.text("show", "drops")
        header, rows = self.table(text.split("drops_total")[0])
        self.assertEqual(sorted((r[0], r[1]) for r in rows),
                         [("policy_discard", str(DISCARDED)), ("policy_no_match", str(UNMATCHED))])

        # show sa: no key field, counters per SA
        sas = {s["name"]: s for s in self.js("show", "sa")}
        self.assertEqual(set(sas), {"a", "a-in"})
        self.assertEqual(sas["a"], {"name": "a", "dir": "out", "spi": "0x00007001", "aead": "aes-128-gcm",
                                    "dst": "any", "src": "any", "sender_id": 0, "sender_id_bits": 0,
                                    "replay_window": 1024, "region": "", "packets": SEALED, "bytes": SEALED * 128,
                                    "state": "active"})
        self.assertEqual((sas["a-in"]["dir"], sas["a-in"]["dst"], sas["a-in"]["aead"], sas["a-in"]["packets"]),
                         ("in", "239.6.0.0/16", "aes-256-gcm", 0))
        header, rows = self.table(self.text("show", "sa"))
        self.assertEqual(header, ["name", "dir", "spi", "aead", "dst", "src", "sender_id", "replay", "packets",
                                  "bytes", "state"])
        self.assertEqual(rows[0], ["a", "out", "0x00007001", "aes-128-gcm", "any", "any", "-", "-", str(SEALED),
                                   str(SEALED * 128), "active"])

        # show policy / group
        pol = self.js("show", "policy")
        self.assertEqual([(p["index"], p["dir"], p["dst"], p["action"], p["sa"]) for p in pol],
                         [(0, "out", "239.6.0.0/16", "protect", "a"), (1, "out", "239.7.0.0/16", "discard", None),
                          (2, "out", "224.0.0.0/4", "bypass", None), (3, "in", "239.6.0.0/16", "protect", "a-in")])
        header, rows = self.table(self.text("show", "policy"))
        self.assertEqual([r[0] for r in rows], ["0", "1", "2", "3"])
        groups = self.js("show", "group")
        self.assertEqual(groups["groups"], [], "no key-managed group in this configuration")
        self.assertEqual([(g["group"], g["dir"], g["sa"], g["spi"], g["keys"]) for g in groups["policies"]],
                         [("239.6.0.0/16", "out", "a", "0x00007001", "manual"),
                          ("239.6.0.0/16", "in", "a-in", "0x00007001", "manual")])
        self.table(self.text("show", "group"))

        # help, show log, set log
        help_text = self.text("help")
        for cmd in ("show stats", "clear stats", "set log", "add sa", "del sa", "add policy", "del policy",
                    "rekey group", "quit"):
            self.assertIn(cmd, help_text)
        logs = {l["type"]: l["level"] for l in self.js("show", "log")}
        self.assertIn("lib.eal", logs)
        self.assertIn("msecgw.cli", logs)
        self.cli("set", "log", "msecgw.cli", "debug")
        self.assertEqual({l["type"]: l["level"] for l in self.js("show", "log")}["msecgw.cli"], "debug")
        self.cli("set", "log", "msecgw.*", "info")
        self.assertIn("no such log type", self.cli("set", "log", "nosuch", "info", check=1).stderr.decode())
        self.assertIn("unknown level", self.cli("set", "log", "lib.eal", "loud", check=2).stderr.decode())

        # rekey: no key server yet
        r = self.cli("rekey", "group", "239.6.0.0/16", check=1)
        self.assertIn("no key server for group 239.6.0.0/16", r.stderr.decode())

        # add and delete an inbound SA and its policy
        self.cli("add", "sa", "name=b-in", "dir=in", "spi=0x7002", "aead=aes-128-gcm", f"key=0x{K_IN2.hex()}",
                 "src=10.6.0.0/16", "replay_window=64")
        self.cli("add", "policy", "at=3", "dir=in", "dst=239.6.0.0/16", "action=protect", "sa=b-in")
        sas = {s["name"]: s for s in self.js("show", "sa")}
        self.assertEqual((sas["b-in"]["src"], sas["b-in"]["replay_window"], sas["b-in"]["state"]),
                         ("10.6.0.0/16", 64, "active"))
        self.assertEqual([(p["index"], p["sa"]) for p in self.js("show", "policy")][3:], [(3, "b-in"), (4, "a-in")])
        r = self.cli("del", "sa", "b-in", check=1)
        self.assertIn("policy 3 still names it", r.stderr.decode())
        self.cli("del", "policy", "3")
        self.cli("del", "sa", "b-in")
        self.assertEqual({s["name"] for s in self.js("show", "sa")}, {"a", "a-in"})
        self.assertEqual(len(self.js("show", "policy")), 4)

        # errors name the command and field; keys are never echoed
        for words, code, msg in [
            (("bogus",), 2, "unknown command 'bogus'"),
            (("show", "bogus"), 2, "show bogus: unknown object"),
            (("clear", "everything"), 2, "clear stats"),
            (("del", "sa", "nosuch"), 1, "no SA named 'nosuch'"),
            (("del", "policy", "9"), 1, "no policy 9"),
            (("del", "policy", "x"), 2, "expected a policy number"),
            (("add", "sa", "name=a", "dir=out", "spi=0x7003", "aead=aes-128-gcm", f"key=0x{K_B.hex()}"), 1,
             "an SA named 'a' exists"),
            (("add", "sa", "name=c", "dir=out", "spi=0x7003", "aead=aes-128-gcm", f"key=0x{K_B.hex()[:-2]}"), 2,
             "add sa: key: expected 20 bytes"),
            (("add", "sa", "name=c", "dir=out", "spi=0x7003", "aead=aes-128-gcm"), 2, "add sa: missing key 'key'"),
            (("add", "sa", "name=c", "colour=red"), 2, "add sa: unknown key 'colour'"),
            (("add", "policy", "dir=out", "dst=239.8.0.0/16", "action=protect", "sa=nosuch"), 1,
             "add policy: sa: no SA named 'nosuch'"),
            (("add", "policy", "dir=out", "dst=239.8.0.0/33", "action=bypass"), 2, "add policy: dst:"),
            (("add", "policy", "dir=in", "dst=239.8.0.0/16", "action=protect", "sa=a"), 1,
             "add policy: sa: SA 'a' is dir: out"),
        ]:
            r = self.cli(*words, check=code)
            self.assertIn(msg, r.stderr.decode(), words)
            self.assertEqual(r.stdout, b"", words)
        r = self.cli("show", "stats", check=2, socket=self.path("nosuch.sock"))
        self.assertIn("cannot connect", r.stderr.decode())
        self.assertEqual(subprocess.run([CLI_BIN], capture_output=True).returncode, 2, "no command: usage")

        # clear stats: the CLI's view restarts at zero, run totals do not
        self.assertIn("cleared", self.text("clear", "stats"))
        st = self.js("show", "stats")
        self.assertEqual((st["rx_packets"], st["tx_packets"], st["drops_total"], st["sealed"]), (0, 0, 0, 0))
        self.assertIn("since:         clear stats", self.text("show", "stats"))
        self.assertEqual({s["name"]: s["packets"] for s in self.js("show", "sa")}, {"a": 0, "a-in": 0})
        self.assertEqual([p["rx_packets"] for p in self.js("show", "port")], [0, 0])
        self.assertEqual([l["rx_packets"] for l in self.js("show", "lcore")], [0])
        self.assertIn("no drops", self.text("show", "drops"))

        final = self.quit_and_wait()
        self.assertEqual((final["rx_packets"], final["sealed"], final["drops_total"]),
                         (N, SEALED, DISCARDED + UNMATCHED), "--stats-json keeps run totals")
        self.assert_no_keys()


class UnderTrafficTest(CliCase):

    def test_add_and_remove_sa_under_traffic(self):
        frames = [udp(f"10.6.{i % 8}.1", f"239.6.0.{i % 3 + 1}", 60 + i) for i in range(64)]
        write_pcap(self.path("in.pcap"), frames)
        self.start(f"net_pcap0,rx_pcap={self.path('in.pcap')},infinite_rx=1", "net_null0,no-rx=1")
        self.wait_for("sealing under a", lambda s: s["sealed"] > 1000, "show", "stats")
        # make-before-break: b and its policy in front of a's, then a's policy and a go
        self.cli("add", "sa", "name=b", "dir=out", "spi=0x7002", "aead=aes-128-gcm", f"key=0x{K_B.hex()}")
        self.cli("add", "policy", "at=0", "dir=out", "dst=239.6.0.0/16", "action=protect", "sa=b")
        self.wait_for("sealing under b", lambda sas: any(s["name"] == "b" and s["packets"] > 1000 for s in sas),
                      "show", "sa")
        self.assertEqual([(p["index"], p["sa"]) for p in self.js("show", "policy")][:2], [(0, "b"), (1, "a")])
        self.cli("del", "policy", "1")
        self.cli("del", "sa", "a")
        before = {s["name"]: s["packets"] for s in self.js("show", "sa")}
        self.assertEqual(set(before), {"b", "a-in"})
        self.wait_for("b keeps sealing", lambda sas: any(s["name"] == "b" and s["packets"] > before["b"] + 1000
                                                         for s in sas), "show", "sa")
        live = self.js("show", "stats")
        self.assertEqual(live["drops_total"], 0, f"drops under traffic: {live['drops']}")
        final = self.quit_and_wait()
        self.assertGreater(final["rx_packets"], 3000)
        self.assertEqual(final["drops_total"], 0, f"drops: { {k: v for k, v in final['drops'].items() if v} }")
        self.assertEqual((final["tx_packets"], final["sealed"]), (final["rx_packets"], final["rx_packets"]),
                         "every received frame sealed and sent: 0 lost")
        self.assert_no_keys()
