#!/usr/bin/python3
"""Prometheus metrics of the real msecgw binary (issue [F] acceptance 2, and 4 for metrics).

One gateway run on net_pcap vdevs with --metrics on a free loopback port: sealed, fragmented,
bypassed, discarded and unmatched frames on the clear port; ESP (scapy), a replay, an unknown SPI
and bypassed frames on the protected port. The pcaps end early and the gateway keeps running
(the --duration bound is long; the test ends it with SIGTERM), so its counters stand still while:
- the test scrapes /metrics over HTTP (urllib) until every packet is accounted for;
- `promtool check metrics` checks that scrape (exit 0);
- a real `prometheus` server on 127.0.0.1 scrapes the gateway every second, and its query API
  (/api/v1/query) must return the same values;
then, after SIGTERM, every scraped counter must equal the run's --stats-json, and no byte of any
SA key (hex or raw) may appear in the scrape, stdout, stderr or --stats-json: only in --keylog.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

import esp_interop_test as esp  # a module, so that its test classes are not collected here
from gwharness import DROP_LABELS, MSECGW_BIN

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
SRC = os.environ.get("MSECGW_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))


def key(n, size):
    """Random-looking RFC 4106 keying material (key || salt): no accidental matches in output."""
    return hashlib.sha512(f"msecgw metrics test key {n}".encode()).digest()[:size]


K_OUT, K_IN = key(1, 20), key(2, 36)  # aes-128-gcm, aes-256-gcm
SPI_OUT, SPI_IN = 0x6001, 0x6002
CONFIG = f"""\
state_dir: @STATE@
ports: [{{port: 0, side: clear}}, {{port: 1, side: protected, mtu: 576}}]
sas:
  - {{name: m-out, dir: out, spi: {SPI_OUT:#x}, aead: aes-128-gcm, key: "0x{K_OUT.hex()}"}}
  - {{name: m-in, dir: in, spi: {SPI_IN:#x}, aead: aes-256-gcm, key: "0x{K_IN.hex()}"}}
policies:
  - {{dir: out, dst: 239.6.0.0/16, action: protect, sa: m-out}}
  - {{dir: out, dst: 239.7.0.0/16, action: discard}}
  - {{dir: out, dst: 224.0.0.0/4, action: bypass}}
  - {{dir: in, dst: 239.6.0.0/16, action: protect, sa: m-in}}
  - {{dir: in, dst: 224.0.0.0/4, action: bypass}}
"""


def udp(src, dst, size):
    """Ethernet / IPv4 / UDP with `size` payload bytes (the gateway does not look at MACs)."""
    return bytes(Ether(src="02:00:00:00:00:09", dst="01:00:5e:00:00:01") / IP(src=src, dst=dst) /
                 UDP(sport=4000, dport=5000) / Raw(bytes(size)))


SEALED, FRAGMENTED, BYPASS_OUT, DISCARDED, UNICAST = 40, 2, 30, 5, 3
OPENED, BYPASS_IN = 20, 5
CLEAR_RX = ([udp("10.6.0.1", "239.6.0.1", 100)] * SEALED + [udp("10.6.0.2", "239.6.0.2", 1000)] * FRAGMENTED +
            [udp("10.1.0.1", "239.1.1.1", 200)] * BYPASS_OUT + [udp("10.7.0.1", "239.7.0.1", 60)] * DISCARDED +
            [udp("10.0.0.1", "10.0.0.2", 18)] * UNICAST)
ESP_IN = [esp.esp_frame(SPI_IN, K_IN, esp.ip4("10.6.1.1", "239.6.1.1", 120, tag=i), seq=i + 1) for i in range(OPENED)]
PROT_RX = (ESP_IN + [ESP_IN[0]] +  # a replay
           [esp.esp_frame(0x6666, K_IN, esp.ip4("10.6.1.2", "239.6.1.1", 120), seq=1)] * 3 +  # no such SA
           [udp("10.2.0.1", "239.2.2.2", 300)] * BYPASS_IN)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def prom_query(api, expr):
    """The JSON answer of Prometheus's instant query API (also for a 400: a rejected query)."""
    try:
        return json.loads(http_get(api + urllib.parse.quote(expr)))
    except urllib.error.HTTPError as e:
        return json.loads(e.read().decode())


_SERIES = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_scrape(text):
    """Prometheus text format -> {(name, frozenset(labels.items())): value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SERIES.match(line)
        assert m, f"not a sample line: {line!r}"
        out[(m[1], frozenset(_LABEL.findall(m[2] or "")))] = float(m[3])
    return out


class Scrape:
    """One parsed scrape with label-matching lookups."""

    def __init__(self, text):
        self.text = text
        self.series = parse_scrape(text)

    def sum(self, name, **labels):
        return sum(v for (n, l), v in self.series.items() if n == name and set(labels.items()) <= l)

    def value(self, name, **labels):
        hits = [v for (n, l), v in self.series.items() if n == name and set(labels.items()) == l]
        assert len(hits) == 1, f"{name}{labels}: {len(hits)} series"
        return hits[0]


def dashboard_exprs():
    """The PromQL of every panel of docs/grafana/msecgw.json, Grafana's variables filled in."""
    with open(os.path.join(SRC, "docs", "grafana", "msecgw.json")) as f:
        dash = json.load(f)
    return [t["expr"].replace("$__rate_interval", "5s").replace("$instance", ".*")
            for p in dash["panels"] for t in p["targets"]]


def drained(s):
    """Every frame received and accounted for (tx + drops = rx + extra fragments)."""
    rx = s.sum("msecgw_rx_packets_total")
    extra = s.sum("msecgw_fragments_out_total") - s.sum("msecgw_fragmented_packets_total")
    return rx == len(CLEAR_RX) + len(PROT_RX) and \
        s.sum("msecgw_tx_packets_total") + s.sum("msecgw_drops_total") == rx + extra


class MetricsTest(esp.OneRun):
    """setUpClass runs the gateway once (start) and collects everything; the tests check it."""

    @classmethod
    def start(cls, gw):
        cls.port = free_port()
        args = gw.gateway_args(CONFIG, CLEAR_RX, PROT_RX, duration=120)
        args += ["--metrics", f"127.0.0.1:{cls.port}", "--keylog", gw.path("keylog")]
        with open(gw.path("stdout"), "wb") as out, open(gw.path("stderr"), "wb") as err:
            proc = subprocess.Popen([MSECGW_BIN] + args, stdout=out, stderr=err)
        try:
            cls.scrape = cls.wait_drained(proc)
            cls.threads = cls.thread_cpus(proc.pid)
            cls.promtool = subprocess.run([PROMTOOL, "check", "metrics"], input=cls.scrape.text,
                                          capture_output=True, text=True, timeout=60)
            cls.prom = cls.query_prometheus(gw) if os.access(PROMETHEUS, os.X_OK) else None
        finally:
            proc.send_signal(signal.SIGTERM)
            cls.returncode = proc.wait(timeout=60)
        with open(gw.path("stdout"), "rb") as f:
            cls.stdout = f.read()
        with open(gw.path("stderr"), "rb") as f:
            cls.stderr = f.read()
        assert cls.returncode == 0, f"msecgw exit {cls.returncode}\n{cls.stdout!r}\n{cls.stderr!r}"
        cls.stats = gw.read_stats()
        with open(gw.path("s.json"), "rb") as f:
            cls.stats_raw = f.read()
        with open(gw.path("keylog"), "rb") as f:
            cls.keylog = f.read()

    @classmethod
    def wait_drained(cls, proc):
        url = f"http://127.0.0.1:{cls.port}/metrics"
        deadline = time.monotonic() + 60
        last = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"msecgw exited {proc.returncode} before it was scraped"
            try:
                last = Scrape(http_get(url))
                if drained(last):
                    return last
            except OSError:
                pass  # not listening yet
            time.sleep(0.2)
        raise AssertionError(f"not drained after 60 s; last scrape:\n{last.text if last else None}")

    @staticmethod
    def thread_cpus(pid):
        """{thread name: allowed CPU list} of the gateway's threads."""
        out = {}
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                cpus = re.search(r"Cpus_allowed_list:\s*(\S+)", f.read())[1]
            out.setdefault(name, set()).add(cpus)
        return out

    @classmethod
    def query_prometheus(cls, gw):
        """Starts prometheus scraping the gateway every second; returns {query: result vector}
        once every query below has an answer for the current scrape."""
        web = free_port()
        with open(gw.path("prometheus.yml"), "w") as f:
            f.write("global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
                    "scrape_configs:\n"
                    f"  - job_name: msecgw\n    static_configs: [{{targets: ['127.0.0.1:{cls.port}']}}]\n")
        log = open(gw.path("prometheus.log"), "wb")
        prom = subprocess.Popen([PROMETHEUS, f"--config.file={gw.path('prometheus.yml')}",
                                 f"--storage.tsdb.path={gw.path('tsdb')}", f"--web.listen-address=127.0.0.1:{web}"],
                                stdout=log, stderr=subprocess.STDOUT)
        queries = {
            "up": 'up{job="msecgw"}',
            "msecgw_up": "msecgw_up",
            "rx": "sum(msecgw_rx_packets_total)",
            "rx_clear": 'msecgw_rx_packets_total{port="0",side="clear"}',
            "tx_prot_bytes": 'msecgw_tx_bytes_total{port="1"}',
            "drops": "sum by (reason) (msecgw_drops_total)",
            "sealed": "sum(msecgw_sealed_packets_total)",
            "opened": "sum(msecgw_opened_packets_total)",
            "sa_in": 'msecgw_sa_packets_total{sa="m-in",dir="in"}',
            "build": "msecgw_build_info",
        }
        api = f"http://127.0.0.1:{web}/api/v1/query?query="
        answers = {}
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(answers) < len(queries):
                for name, q in queries.items():
                    try:
                        r = prom_query(api, q)
                    except OSError:
                        break  # not ready yet
                    if r["status"] == "success" and r["data"]["result"]:
                        answers[name] = r["data"]["result"]
                time.sleep(0.5)
            if len(answers) == len(queries):
                for expr in dashboard_exprs():  # while the server runs: each must evaluate
                    r = prom_query(api, expr)
                    answers[f"dashboard: {expr}"] = r["status"] + " " + r.get("error", "")
        finally:
            prom.terminate()
            prom.wait(timeout=30)
            log.close()
        if not all(name in answers for name in queries):
            with open(gw.path("prometheus.log")) as f:
                raise AssertionError(f"prometheus answered only {sorted(answers)}\n{f.read()[-3000:]}")
        return answers

    # ---- the tests

    def test_scrape_equals_stats_json(self):
        """Every counter of the scrape taken after the traffic equals the run's --stats-json."""
        s, j = self.scrape, self.stats
        for p in j["ports"]:
            lbl = {"port": str(p["port"]), "side": p["side"]}
            for metric, field in [("rx_packets", "rx_packets"), ("rx_bytes", "rx_bytes"), ("tx_packets", "tx_packets"),
                                  ("tx_bytes", "tx_bytes"), ("nic_imissed", "nic_imissed"),
                                  ("nic_ierrors", "nic_ierrors"), ("nic_oerrors", "nic_oerrors"),
                                  ("nic_rx_nombuf", "nic_rx_nombuf")]:
                self.assertEqual(s.value(f"msecgw_{metric}_total", **lbl), p[field], f"{metric} {lbl}")
            self.assertEqual(s.value("msecgw_port_info", driver="net_pcap", **lbl), 1)
        for metric, field in [("bypassed_packets", "bypassed"), ("sealed_packets", "sealed"),
                              ("opened_packets", "opened"), ("fragmented_packets", "fragmented"),
                              ("fragments_out", "fragments_out"), ("reassembled_packets", "reassembled"),
                              ("fragments_in", "fragments_in"), ("drops", "drops_total")]:
            self.assertEqual(s.sum(f"msecgw_{metric}_total"), j[field], metric)
        for reason in DROP_LABELS:
            self.assertEqual(s.sum("msecgw_drops_total", reason=reason), j["drops"][reason], reason)
        for lc in j["lcores"]:
            lcore = str(lc["lcore"])
            self.assertEqual(s.sum("msecgw_drops_total", lcore=lcore), lc["drops_total"])
            self.assertEqual(s.value("msecgw_lcore_rx_packets_total", lcore=lcore), lc["rx_packets"])
            self.assertEqual(s.value("msecgw_bypassed_packets_total", lcore=lcore), lc["bypassed"])
            self.assertEqual(s.value("msecgw_lcore_polls_total", lcore=lcore, state="busy"), lc["busy_polls"])
            idle = s.value("msecgw_lcore_polls_total", lcore=lcore, state="idle")
            self.assertTrue(0 < idle <= lc["idle_polls"], "idle polls go on after the traffic")

    def test_scrape_values_from_the_traffic(self):
        """The counters say what the pcaps contained; every drop reason is present on every lcore."""
        s = self.scrape
        self.assertEqual(s.value("msecgw_rx_packets_total", port="0", side="clear"), len(CLEAR_RX))
        self.assertEqual(s.value("msecgw_rx_bytes_total", port="0", side="clear"), sum(map(len, CLEAR_RX)))
        self.assertEqual(s.value("msecgw_rx_packets_total", port="1", side="protected"), len(PROT_RX))
        self.assertEqual(s.sum("msecgw_sealed_packets_total"), SEALED + FRAGMENTED)
        self.assertEqual(s.sum("msecgw_fragmented_packets_total"), FRAGMENTED)
        self.assertGreaterEqual(s.sum("msecgw_fragments_out_total"), 2 * FRAGMENTED)
        self.assertEqual(s.sum("msecgw_opened_packets_total"), OPENED)
        self.assertEqual(s.sum("msecgw_bypassed_packets_total"), BYPASS_OUT + BYPASS_IN)
        want = {"policy_discard": DISCARDED, "policy_no_match": UNICAST, "replay": 1, "esp_no_sa": 3}
        for reason in DROP_LABELS:
            self.assertEqual(s.sum("msecgw_drops_total", reason=reason), want.get(reason, 0), reason)
        lcores = {dict(l)["lcore"] for (n, l) in s.series if n == "msecgw_lcore_rx_packets_total"}
        self.assertEqual(lcores, {str(lc["lcore"]) for lc in self.stats["lcores"]})
        for lcore in lcores:
            got = {dict(l)["reason"] for (n, l) in s.series if n == "msecgw_drops_total" and dict(l)["lcore"] == lcore}
            self.assertEqual(got, set(DROP_LABELS), f"lcore {lcore}: every reason, zeros included")
        self.assertEqual(s.value("msecgw_sa_packets_total", sa="m-out", spi=f"0x{SPI_OUT:08x}", dir="out"),
                         SEALED + FRAGMENTED)
        # inbound: packets that passed every check under the SA (what its lifetime counts); the
        # replay is not among them, whether the pre-check or the post-decryption check caught it
        sa_in = s.value("msecgw_sa_packets_total", sa="m-in", spi=f"0x{SPI_IN:08x}", dir="in")
        self.assertEqual(sa_in, OPENED)
        self.assertEqual(s.value("msecgw_sa_bytes_total", sa="m-in", spi=f"0x{SPI_IN:08x}", dir="in"), 120 * sa_in)
        self.assertEqual(s.value("msecgw_up"), 1)
        build = [dict(l) for (n, l) in s.series if n == "msecgw_build_info"]
        self.assertEqual(len(build), 1)
        self.assertRegex(build[0]["version"], r"^\d+\.\d+\.\d+")
        self.assertIn("22.11", build[0]["dpdk"])
        self.assertLess(abs(s.value("msecgw_start_time_seconds") - time.time()), 600)

    def test_names_types_and_help(self):
        """msecgw_ names; counters (and only counters) end in _total; every family has HELP and TYPE."""
        types = dict(re.findall(r"^# TYPE (msecgw_\w+) (\w+)$", self.scrape.text, re.M))
        helps = set(re.findall(r"^# HELP (msecgw_\w+) ", self.scrape.text, re.M))
        self.assertGreaterEqual(len(types), 20)
        self.assertEqual(set(types), helps)
        for name, t in types.items():
            self.assertEqual(name.endswith("_total"), t == "counter", name)
        for name, _labels in self.scrape.series:
            self.assertTrue(name.startswith(("msecgw_", "exposer_")), name)

    def test_promtool_check_metrics(self):
        self.assertEqual(self.promtool.returncode, 0, self.promtool.stdout + self.promtool.stderr)

    def test_http_threads_stay_off_the_workers(self):
        """The exporter's threads run on the control lcore's CPU (0), never a worker's (1)."""
        civet = {n: c for n, c in self.threads.items() if n.startswith("civetweb")}
        self.assertTrue(civet, f"no civetweb thread among {sorted(self.threads)}")
        for name, cpus in civet.items():
            self.assertEqual(cpus, {"0"}, name)

    def test_prometheus_server_scrapes_the_gateway(self):
        if self.prom is None:
            self.skipTest(f"{PROMETHEUS} not installed (Debian package prometheus)")
        a, s = self.prom, self.scrape

        def one(name):
            self.assertEqual(len(a[name]), 1, a[name])
            return float(a[name][0]["value"][1])

        self.assertEqual(one("up"), 1)
        self.assertEqual(one("msecgw_up"), 1)
        self.assertEqual(one("rx"), len(CLEAR_RX) + len(PROT_RX))
        self.assertEqual(one("rx_clear"), s.value("msecgw_rx_packets_total", port="0", side="clear"))
        self.assertEqual(one("tx_prot_bytes"), s.value("msecgw_tx_bytes_total", port="1", side="protected"))
        self.assertEqual(one("sealed"), SEALED + FRAGMENTED)
        self.assertEqual(one("opened"), OPENED)
        self.assertEqual(one("sa_in"), s.value("msecgw_sa_packets_total", sa="m-in", spi=f"0x{SPI_IN:08x}", dir="in"))
        drops = {r["metric"]["reason"]: float(r["value"][1]) for r in a["drops"]}
        self.assertEqual(drops, {reason: s.sum("msecgw_drops_total", reason=reason) for reason in DROP_LABELS})
        self.assertEqual(a["build"][0]["metric"]["job"], "msecgw")
        self.assertIn("version", a["build"][0]["metric"])
        dash = {k: v for k, v in a.items() if k.startswith("dashboard: ")}
        self.assertGreaterEqual(len(dash), 10)
        self.assertEqual({k for k, v in dash.items() if v != "success "}, set(), "Grafana panels prometheus rejects")

    def test_no_key_material_in_any_output(self):
        """Neither the hex nor the raw bytes of any key (any 8-byte run of it) appear in the scrape,
        stdout, stderr or --stats-json; the keylog, asked for, has them (the search works)."""
        outputs = {"scrape": self.scrape.text.encode(), "stdout": self.stdout, "stderr": self.stderr,
                   "stats-json": self.stats_raw}
        for km in (K_OUT, K_IN):
            runs = [km[i:i + 8] for i in range(len(km) - 7)]
            for where, data in outputs.items():
                low = data.lower()
                for run in runs:
                    self.assertNotIn(run, data, f"raw key bytes in {where}")
                    self.assertNotIn(run.hex().encode(), low, f"key hex in {where}")
            self.assertIn(km[:-4].hex().encode(), self.keylog.lower(), "the keylog carries the key")


if __name__ == "__main__":
    unittest.main()
