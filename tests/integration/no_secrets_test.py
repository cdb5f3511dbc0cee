#!/usr/bin/python3
"""No key material in any operator output of a full run (issue [F] acceptance 4; DESIGN.md invariant 5).

One gateway run on net_pcap with every output on: --cli-socket, --metrics, --keylog, --stats-json
and every log type at debug level (EAL --log-level). Traffic seals under the outbound SA and opens
ESP (scapy) under the inbound one. While it runs: every CLI command in table and --json form, an
SA added (with a new key) and deleted again over the CLI, a failing `add sa` with a key of the
wrong length, a SIGHUP reload, every /msecgw/ telemetry command, a Prometheus scrape; then `quit`.
Every byte the run printed or served (CLI answers, stdout, stderr, telemetry, metrics,
--stats-json) is searched for every key: each 8-byte run of the keying material, raw and as hex in
lower and upper case. None may appear. The --keylog file must hold each configured key (so the
search would find one that leaked).
"""
import os
import signal
import time

import cli_test as clit
import esp_interop_test as esp
import metrics_test as mt
import telemetry_test as tt
from gwharness import write_pcap

K_OUT, K_IN, K_NEW, K_SHORT = clit.key(11), clit.key(12, 36), clit.key(13), clit.key(14, 19)
SECRETS = [K_OUT, K_IN, K_NEW, K_SHORT]
CONFIG = f"""\
state_dir: @STATE@
ports: [{{port: 0, side: clear}}, {{port: 1, side: protected}}]
sas:
  - {{name: s-out, dir: out, spi: 0x8001, aead: aes-128-gcm, key: "0x{K_OUT.hex()}"}}
  - {{name: s-in, dir: in, spi: 0x8002, aead: aes-256-gcm, key: "0x{K_IN.hex()}"}}
policies:
  - {{dir: out, dst: 239.8.0.0/16, action: protect, sa: s-out}}
  - {{dir: in, dst: 239.8.0.0/16, action: protect, sa: s-in}}
"""
CLEAR_RX = [clit.udp(f"10.8.0.{i % 4 + 1}", "239.8.0.1", 80 + i) for i in range(20)]
PROT_RX = [esp.esp_frame(0x8002, K_IN, esp.ip4("10.8.1.1", "239.8.1.1", 100, tag=i), seq=i + 1) for i in range(10)]


def leaks(blob, k):
    """The first 8-byte run of key `k` found in `blob` (raw or hex, any case), or None."""
    low = blob.lower()
    for i in range(len(k) - 7):
        run = k[i:i + 8]
        if run in blob or run.hex().encode() in low:
            return run.hex()
    return None


class NoSecretsTest(clit.CliCase):

    def test_no_key_in_any_output(self):
        write_pcap(self.path("in.pcap"), CLEAR_RX)
        write_pcap(self.path("prot.pcap"), PROT_RX)
        self.port = mt.free_port()
        self.start(f"net_pcap0,rx_pcap={self.path('in.pcap')},tx_pcap={self.path('clear_out.pcap')}",
                   f"net_pcap1,rx_pcap={self.path('prot.pcap')},tx_pcap={self.path('prot_out.pcap')}",
                   memory=("--no-huge", "-m", "1024", "--log-level=*:debug"), config=CONFIG,
                   extra=["--metrics", f"127.0.0.1:{self.port}", "--keylog", self.path("keylog")])
        n = len(CLEAR_RX) + len(PROT_RX)
        st = self.wait_for("every frame accounted for", lambda s: s["rx_packets"] == n and
                           s["tx_packets"] + s["drops_total"] == n, "show", "stats")
        self.assertEqual((st["sealed"], st["opened"], st["drops_total"]), (len(CLEAR_RX), len(PROT_RX), 0))

        for obj in ("stats", "port", "lcore", "drops", "sa", "policy", "group", "log"):
            self.cli("show", obj)
            self.cli("show", obj, json_out=True)
        self.cli("help")
        self.cli("add", "sa", "name=s-new", "dir=out", "spi=0x8003", "aead=aes-128-gcm", f"key=0x{K_NEW.hex()}")
        self.cli("show", "sa")
        self.cli("show", "sa", json_out=True)
        self.cli("del", "sa", "s-new")
        self.cli("add", "sa", "name=s-bad", "dir=out", "spi=0x8004", "aead=aes-128-gcm", f"key=0x{K_SHORT.hex()}",
                 check=2)
        self.cli("add", "sa", "name=s-bad", "dir=out", "spi=0x8004", "aead=aes-128-gcm", f"key={K_SHORT.hex()}",
                 check=2)
        self.cli(f"key=0x{K_SHORT.hex()}", check=2)
        self.cli("rekey", "group", "239.8.0.0/16", check=1)
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while "configuration reloaded" not in self.gateway_log():
            self.assertLess(time.monotonic(), deadline, "SIGHUP reload not logged")
            time.sleep(0.1)
        prefix = self._prefixes[-1]
        cmds = ["/msecgw/info", "/msecgw/stats", "/msecgw/drops", "/msecgw/sa", "/msecgw/sa,s-out",
                "/msecgw/sa,s-in", "/msecgw/lcore", "/msecgw/lcore,1", "/msecgw/port,0", "/msecgw/port,1"]
        _, raw = tt.telemetry(prefix, *cmds)
        self.outputs.append(raw.encode())
        scrape = mt.http_get(f"http://127.0.0.1:{self.port}/metrics")
        self.assertIn("msecgw_sa_packets_total", scrape)
        self.outputs.append(scrape.encode())
        self.quit_and_wait()
        with open(self.path("s.json"), "rb") as f:
            self.outputs.append(f.read())
        log = self.gateway_log().encode()
        self.assertIn(b"msecgw: command: show stats", log)  # msecgw.cli at debug level
        self.assertIn(b"CLI on unix socket", log)

        blobs = {f"CLI answer {i}": b for i, b in enumerate(self.outputs)}
        blobs["gateway stdout+stderr"] = log
        for k in SECRETS:
            for name, blob in blobs.items():
                run = leaks(blob, k)
                self.assertIsNone(run, f"key bytes {run} in {name}: " +
                                  "".join(l for l in blob.decode(errors="replace").splitlines(True)
                                          if run and run in l.lower())[:2000])
        with open(self.path("keylog"), "rb") as f:
            keylog = f.read()
        for k in (K_OUT, K_IN):
            self.assertIsNotNone(leaks(keylog, k), "positive control: --keylog holds the configured keys")
