"""Issue [E1] with the real binaries: acceptance 3 (KeyManagedGroupTest), 4 and 5 (KeyServerAloneTest:
an identity outside the group gets no key; `msecgw --gcks-only` killed with SIGKILL under traffic and
rekeys, restarted from SQLite: members keep working, no SPI comes back, no (SPI, IV) repeats).

Acceptance 3: gateways register with the embedded key server, receive TEKs and
Sender-IDs, and carry encrypted multicast between them while the key server rekeys every two
seconds: 0 packets lost, 0 replay drops at the receiver, no (key, nonce) pair repeated across
senders.

Testbed (one private network namespace, key management over its loopback):

    sender 1 ─ a1c-tx ═ a1c ─[gateway A1: key server + member gw-a1, sends]─ a1p ═ a1p-br ─┐
    sender 2 ─ a2c-tx ═ a2c ─[gateway A2: member gw-a2, sends]──────────────── a2p ═ a2p-br ─┤ br0
             B's clear out (net_pcap) ─[gateway B: member gw-b, receives]───── bp  ═ bp-br ──┘
                                                                         capture on bp-br (dumpcap)

Every gateway is the real binary on net_af_packet (see live()); the senders are paced AF_PACKET replays of
numbered frames (traffic_paced.py). A1 and A2 also open each other's traffic (both are members).
"""
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

from gwharness import MSECGW_BIN, read_pcap, unique_prefix, write_pcap
from livegw import LiveTestbed, live

HERE = os.path.dirname(os.path.abspath(__file__))
SENDER = os.path.join(HERE, "traffic_paced.py")
CLI_BIN = os.environ.get("MSECGW_CLI_BIN", os.path.join(os.path.dirname(MSECGW_BIN), "..", "msecgw-cli", "msecgw-cli"))
DUMPCAP = shutil.which("dumpcap") or "/usr/bin/dumpcap"
MAGIC = b"MSKM"
N_PER_SENDER, RATE = 4000, 500.0  # 8 s of traffic from each sender: about four rekeys
GCKS_PORT = 18848
METRICS_PORT = 19464  # inside the test's own network namespace
PSK = {"gw-a1": "0x" + bytes(range(16, 48)).hex(), "gw-a2": "0x" + bytes(range(48, 80)).hex(),
       "gw-b": "0x" + bytes(range(80, 112)).hex(), "gw-x": "0x" + bytes(range(112, 144)).hex()}

GROUP = """groups:
  - {name: video, id: 7, dst: 239.1.0.0/16, members: [gw-a1, gw-a2, gw-b], senders: [gw-a1, gw-a2],  # not gw-x
     tek_lifetime_seconds: 30, rekey_period_seconds: 2}
"""

KEY_SERVER = f"""key_server:
  listen: 127.0.0.1:{GCKS_PORT}
  peers:
""" + "".join(f"    - {{identity: {i}, psk: \"{k}\"}}\n" for i, k in PSK.items())


def member(identity, key_servers=(GCKS_PORT,)):
    """The member section; several key servers (ports on 127.0.0.1) become a list."""
    where = ", ".join(f"127.0.0.1:{p}" for p in key_servers)
    return f"""member:
  identity: {identity}
  psk: "{PSK[identity]}"
  key_server: {where if len(key_servers) == 1 else "[" + where + "]"}
  activation_delay_ms: 400
  deactivation_delay_ms: 800
"""


def config(state, identity, send, key_server=False, key_servers=(GCKS_PORT,)):
    text = f"state_dir: {state}\nports:\n  - {{port: 0, side: clear}}\n  - {{port: 1, side: protected}}\n"
    text += GROUP + (KEY_SERVER if key_server else "") + member(identity, key_servers) + POLICIES
    return text if send else text.replace(POLICIES.splitlines(True)[1], "")


POLICIES = "policies:\n"
POLICIES += "  - {dir: out, dst: 239.1.0.0/16, action: protect, group: video}\n"
POLICIES += "  - {dir: in, dst: 239.1.0.0/16, action: protect, group: video}\n"


def clear_frame(sender, i, size):
    """Frame number i of sender 1 or 2: UDP from 10.<sender>.0.<1..4> to 239.1.<1|2>.1, numbered."""
    k = i % 4
    src = bytes([10, sender, 0, 1 + k])
    group = bytes([239, 1, 1 + k % 2, 1])
    eth = bytes.fromhex("01005e") + bytes([group[1] & 0x7F, group[2], group[3]]) + bytes([2, 0, 0, 0, sender, 1]) + b"\x08\x00"
    body = MAGIC + bytes([sender]) + i.to_bytes(4, "big")
    body += bytes((i + j) & 0xFF for j in range(size - 14 - 28 - len(body)))
    udp = (4000 + k).to_bytes(2, "big") + (5000).to_bytes(2, "big") + (8 + len(body)).to_bytes(2, "big") + b"\0\0"
    total = 20 + len(udp) + len(body)
    ip = bytearray(bytes([0x45, 0]) + total.to_bytes(2, "big") + b"\0\0\x40\0" + bytes([16, 17]) + b"\0\0" + src + group)
    csum = sum(int.from_bytes(ip[j:j + 2], "big") for j in range(0, 20, 2))
    csum = (csum & 0xFFFF) + (csum >> 16)
    csum = (csum & 0xFFFF) + (csum >> 16)
    ip[10:12] = (~csum & 0xFFFF).to_bytes(2, "big")
    return eth + bytes(ip) + udp + body


class KeyTestbed(LiveTestbed):
    """A private network namespace; gateways and key servers are started by each test."""

    TAG = "gkm"
    KEY_SERVER_GROUP = GROUP  # the groups of `msecgw --gcks-only` (start_key_server)

    def ready(self, name, sending):
        g = self.group_of(name)
        return g is not None and g["member_state"] == "registered" and (g["sealing_spi"] != "" or not sending)

    def cli_json(self, name, *words):
        """The CLI's JSON answer, or None while the gateway's control loop does not answer within
        the CLI timeout (a gateway still starting on a busy machine): callers poll."""
        try:
            r = subprocess.run([CLI_BIN, "--socket", self.path(f"{name}.sock"), "--json", *words],
                               capture_output=True, text=True, timeout=10)
        except subprocess.TimeoutExpired:
            return None
        if r.returncode != 0:
            self.fail_with_logs(f"msecgw-cli {name} {' '.join(words)}: exit {r.returncode}: {r.stderr}")
        return json.loads(r.stdout)

    def group_of(self, name):
        # The socket listens before the EAL starts; it answers once the control loop runs (a
        # busy machine can take longer than the CLI's timeout to get there).
        if not os.path.exists(self.path(f"{name}.sock")) or "CLI on unix socket" not in self.log(name):
            return None
        shown = self.cli_json(name, "show", "group")
        groups = shown["groups"] if shown else None
        return groups[0] if groups else None

    def start_senders(self, frames, ifaces, rate=RATE):
        """Paced AF_PACKET senders, frames[s] on ifaces[s], at `rate`; returns their processes."""
        senders = []
        for s, iface in ifaces.items():
            pcap = self.path(f"send{s}.pcap")
            write_pcap(pcap, frames[s])
            p = subprocess.Popen(self.ns.cmd([sys.executable, SENDER, "--iface", iface, "--pcap", pcap, "--rate", str(rate),
                                              "--every", "1000", "--cpu", str(self.cpu0)]),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            self.procs.append(p)
            senders.append(p)
        return senders

    def finish_senders(self, senders):
        for p in senders:
            out, _ = p.communicate(timeout=120)
            if p.returncode != 0 or "done" not in out:
                self.fail_with_logs(f"sender failed ({p.returncode}): {out[-500:]}")

    def start_capture(self, iface):
        capture = self.path(f"wire-{iface}.pcap")
        cap = subprocess.Popen(self.ns.cmd([DUMPCAP, "-q", "-P", "-i", iface, "-w", capture]),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.procs.append(cap)
        self.wait_for(lambda: os.path.exists(capture) and os.path.getsize(capture) > 0, "dumpcap started", 15)
        time.sleep(0.5)
        return cap, capture

    def stop(self, procs):
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)
            if p.returncode != 0:
                self.fail_with_logs(f"exit {p.returncode}: {p.args}")

    def stats(self, name):
        with open(self.path(f"{name}.json")) as f:
            return json.load(f)

    def scrape(self, port):
        code = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/metrics', timeout=10).read().decode(), end='')"
        r = subprocess.run(self.ns.cmd([sys.executable, "-c", code]), capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    @staticmethod
    def samples(scrape):
        """A Prometheus text scrape as {'name{labels}': value}."""
        return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in scrape.splitlines()
                if line and not line.startswith("#")}

    def start_key_server(self, log_name, text=None, extra=()):
        """msecgw --gcks-only with configuration `text` (written to LOG_NAME.yaml), output in
        LOG_NAME.log; returns once it listens. Without `text`: KEY_SERVER_GROUP with its state in
        SQLite (gcks.db, the same file across restarts) under the test's storage key."""
        if text is None:
            text = (self.KEY_SERVER_GROUP + KEY_SERVER +
                    f"  state_path: {self.path('gcks.db')}\n  storage_key_file: {self.storage_key()}\n")
        cfg = self.path(f"{log_name}.yaml")
        with open(cfg, "w") as f:
            f.write(text)
        self.names.append(log_name)
        with open(self.path(f"{log_name}.log"), "w") as log:
            p = subprocess.Popen(self.ns.cmd([MSECGW_BIN, "--gcks-only", "--config", cfg, *extra]), stdout=log,
                                 stderr=subprocess.STDOUT)
        self.procs.append(p)
        self.wait_for(lambda: "listening on" in self.log(log_name), f"{log_name} listening", 15)
        return p

    def storage_key(self):
        """A storage key file (mode 0600) shared by the test's key servers."""
        key = self.path("storage.key")
        if not os.path.exists(key):
            with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
                f.write(os.urandom(32).hex())
        return key

    def assert_delivered(self, got, frames, stats_b, why):
        """Every frame of every sender in `got` exactly once, byte for byte; nothing else."""
        sent = {f: (s, i) for s in frames for i, f in enumerate(frames[s])}
        seen = collections.Counter()
        for n, f in enumerate(got):
            if f not in sent:
                self.fail_with_logs(f"output frame {n} was never sent ({len(f)} bytes)")
            seen[sent[f]] += 1
        dup = [k for k, c in seen.items() if c > 1]
        missing = [k for k in sent.values() if k not in seen]
        drops_b = {k: v for k, v in stats_b["drops"].items() if v}
        self.assertEqual(dup, [], "frames delivered twice")
        self.assertEqual(len(missing), 0, f"{len(missing)} of {len(sent)} frames lost, first {sorted(missing)[:8]}; "
                                          f"receiver drops {drops_b}; {why}")

    def esp_on_wire(self, capture):
        """(SPI, IV as int) of every IPv4 ESP frame of the capture (classic pcap: dumpcap -P)."""
        out = []
        for f in read_pcap(capture):
            if f[12:14] == b"\x08\x00" and f[23] == 50:
                ihl = (f[14] & 0x0F) * 4
                esp = f[14 + ihl:]
                out.append((int.from_bytes(esp[0:4], "big"), int.from_bytes(esp[8:16], "big")))
        return out


class KeyManagedGroupTest(KeyTestbed):

    def test_two_senders_one_receiver_rekeyed_every_two_seconds(self):
        self.links([("a1c", "a1c-tx", 0x1100), ("a1p", "a1p-br", 0x1101), ("a2c", "a2c-tx", 0x2200),
                    ("a2p", "a2p-br", 0x2201), ("bp", "bp-br", 0x3300)], bridged=("a1p-br", "a2p-br", "bp-br"))
        empty = self.path("empty.pcap")
        write_pcap(empty, [])
        b_out = self.path("b_clear_out.pcap")
        a1 = self.start_gateway("a1", [live(0, "a1c"), live(1, "a1p")],
                                config(self.path("state-a1"), "gw-a1", True, key_server=True), self.cpu1,
                                extra=["--metrics", f"127.0.0.1:{METRICS_PORT}"])
        a2 = self.start_gateway("a2", [live(0, "a2c"), live(1, "a2p")],
                                config(self.path("state-a2"), "gw-a2", True), self.cpu1)
        b = self.start_gateway("b", [f"net_pcap0,rx_pcap={empty},tx_pcap={b_out}", live(1, "bp")],
                               config(self.path("state-b"), "gw-b", False), self.cpu0)

        def ready(name, sending):
            g = self.group_of(name)
            return g is not None and g["member_state"] == "registered" and (g["sealing_spi"] != "" or not sending)
        for name, sending in (("a1", True), ("a2", True), ("b", False)):
            self.wait_for(lambda: ready(name, sending), f"{name} registered")
        # The CLI shows the group's SAs and refuses to delete one the key server owns.
        in_sas = [sa["name"] for sa in self.cli_json("b", "show", "sa") if sa["dir"] == "in"]
        self.assertEqual(len(in_sas), 1, in_sas)
        self.assertTrue(in_sas[0].startswith("video.0x") and in_sas[0].endswith(".in"), in_sas)
        r = subprocess.run([CLI_BIN, "--socket", self.path("b.sock"), "del", "sa", in_sas[0]], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("from the key server", r.stderr)
        sid = {n: self.group_of(n)["sender_id"] for n in ("a1", "a2")}
        self.assertIsNone(self.group_of("b")["sender_id"], "a receiver asks for no Sender-ID")
        self.assertNotEqual(sid["a1"], sid["a2"], "senders get distinct Sender-IDs")

        cap, capture = self.start_capture("bp-br")
        frames = {1: [clear_frame(1, i, 60 + (i * 53) % 900) for i in range(N_PER_SENDER)],
                  2: [clear_frame(2, i, 60 + (i * 31) % 1300) for i in range(N_PER_SENDER)]}
        senders = self.start_senders(frames, {1: "a1c-tx", 2: "a2c-tx"})
        first_spi = self.group_of("a1")["server_tek_spi"]
        self.finish_senders(senders)
        last_spi = self.group_of("a1")["server_tek_spi"]
        a1_group = self.group_of("a1")
        b_group = self.group_of("b")
        scrape = self.scrape(METRICS_PORT)
        time.sleep(1.0)  # the last frames drain through the gateways
        self.stop([cap])
        self.stop([a1, a2, b])
        stats = {n: self.stats(n) for n in ("a1", "a2", "b")}

        # 1. Every frame of both senders reached B's clear side exactly once, byte for byte.
        self.assert_delivered(read_pcap(b_out), frames, stats["b"], f"A1 drops {stats['a1']['drops']}")
        drops_b = {k: v for k, v in stats["b"]["drops"].items() if v}
        # 2. No drop at the receiver: no replay drop, no unknown SPI, no auth failure.
        self.assertEqual(stats["b"]["drops_total"], 0, drops_b)
        self.assertEqual(stats["b"]["opened"], 2 * N_PER_SENDER)
        for n in ("a1", "a2"):
            self.assertEqual(stats[n]["sealed"], N_PER_SENDER, f"{n} sealed every frame of its sender")
            self.assertEqual(stats[n]["drops"].get("no_group_key", 0), 0)

        # 3. The key server rekeyed under traffic; B accepted the rekeys.
        self.assertNotEqual(first_spi, last_spi, "the key server rekeyed during the run")
        self.assertGreaterEqual(b_group["rekeys_accepted"], 3, b_group)
        self.assertEqual(b_group["rekeys_rejected"], 0, b_group)
        self.assertTrue(a1_group["key_server"])

        # 4. On the wire: ESP under several TEKs, two Sender-IDs in the IVs, no (SPI, IV) twice.
        wire = self.esp_on_wire(capture)
        self.assertEqual(len(wire), 2 * N_PER_SENDER, "every protected frame was captured once")
        spis = {spi for spi, _ in wire}
        self.assertGreaterEqual(len(spis), 3, f"TEKs seen on the wire: {sorted(map(hex, spis))}")
        self.assertEqual(len(set(wire)), len(wire), "an (SPI, IV) pair repeated: a (key, nonce) reuse")
        senders_in_iv = {iv >> 48 for _, iv in wire}
        self.assertEqual(senders_in_iv, {sid["a1"], sid["a2"]}, "IVs carry the two Sender-IDs (16 bits)")

        # 5. A real scrape of A1 (key server and member): promtool accepts it, the key-management
        # counters agree with what happened.
        promtool = shutil.which("promtool") or "/usr/bin/promtool"
        r = subprocess.run([promtool, "check", "metrics"], input=scrape, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        m = self.samples(scrape)
        self.assertEqual(m["msecgw_gkm_server_registrations_total"], 3, "a1, a2 and b registered once each")
        self.assertEqual(m['msecgw_gkm_server_group_members{group="video"}'], 3)
        self.assertGreaterEqual(m["msecgw_gkm_server_periodic_rekeys_total"], 3)
        self.assertEqual(m['msecgw_gkm_member_registered{group="video"}'], 1)
        self.assertEqual(m['msecgw_gkm_member_rekeys_total{group="video",result="forged"}'], 0)
        accepted = m['msecgw_gkm_member_rekeys_total{group="video",result="accepted"}']
        self.assertGreaterEqual(accepted, a1_group["rekeys_accepted"], "the scrape came after show group")
        self.assertGreaterEqual(accepted, 3)
        self.assertEqual(m['msecgw_gkm_server_refusals_total{reason="authorization_failed"}'], 0)


class KeyServerAloneTest(KeyTestbed):
    """msecgw --gcks-only with its state in SQLite: kill -9 under traffic and rekeys, restart, and
    the members keep working (acceptance 5); an identity outside the group gets no key (acceptance 4)."""

    def test_kill_9_of_the_key_server_under_traffic(self):
        self.links([("ac", "ac-tx", 0x1100), ("ap", "bp", 0x1101, 0x3300)])
        empty = self.path("empty.pcap")
        write_pcap(empty, [])
        b_out = self.path("b_clear_out.pcap")
        gcks = self.start_key_server("gcks1")
        a = self.start_gateway("a", [live(0, "ac"), live(1, "ap")], config(self.path("state-a"), "gw-a1", True), self.cpu1)
        b = self.start_gateway("b", [f"net_pcap0,rx_pcap={empty},tx_pcap={b_out}", live(1, "bp")],
                               config(self.path("state-b"), "gw-b", False), self.cpu0)
        for name, sending in (("a", True), ("b", False)):
            self.wait_for(lambda: self.ready(name, sending), f"{name} registered")
        sender_id = self.group_of("a")["sender_id"]
        cap, capture = self.start_capture("bp")
        frames = {1: [clear_frame(1, i, 60 + (i * 53) % 1200) for i in range(N_PER_SENDER)]}
        senders = self.start_senders(frames, {1: "ac-tx"})
        time.sleep(3.0)
        gcks.kill()  # SIGKILL: no chance to write anything more
        gcks.wait()
        self.procs.remove(gcks)
        before = self.group_of("b")["rekeys_accepted"]
        time.sleep(1.0)
        self.start_key_server("gcks2")
        # The restarted key server rekeys the members it had (addresses from SQLite), continuing
        # the Message IDs: they accept it.
        self.wait_for(lambda: self.group_of("b")["rekeys_accepted"] > before, "a rekey from the restarted key server")
        self.finish_senders(senders)
        after = self.group_of("b")
        a_after = self.group_of("a")
        time.sleep(1.0)
        self.stop([cap])
        self.stop([a, b])
        stats_b = self.stats("b")

        self.assert_delivered(read_pcap(b_out), frames, stats_b, "across a kill -9 of the key server")
        self.assertEqual(stats_b["drops_total"], 0, {k: v for k, v in stats_b["drops"].items() if v})
        self.assertEqual(after["rekeys_rejected"], 0, "rekeys of the restarted key server verify and are in order")
        self.assertEqual(a_after["sender_id"], sender_id, "the sender kept its Sender-ID (no re-registration needed)")
        wire = self.esp_on_wire(capture)
        self.assertEqual(len(wire), N_PER_SENDER)
        self.assertEqual(len(set(wire)), len(wire), "an (SPI, IV) pair repeated")
        # TEKs follow each other: an SPI that came back after another took over would be a reuse.
        order = [spi for n, (spi, _) in enumerate(wire) if n == 0 or wire[n - 1][0] != spi]
        self.assertEqual(len(order), len(set(order)), f"an SPI came back: {[hex(x) for x in order]}")
        self.assertGreaterEqual(len(order), 3, f"rekeys before and after the restart: {[hex(x) for x in order]}")

    def test_an_identity_outside_the_group_gets_no_key(self):
        self.start_key_server("gcks")
        e = self.path("empty.pcap")
        write_pcap(e, [])
        clear = self.path("x_in.pcap")
        write_pcap(clear, [clear_frame(1, i, 200) for i in range(20)])
        x = self.start_gateway("x", [f"net_pcap0,rx_pcap={clear},tx_pcap={self.path('x0.pcap')}",
                                     f"net_pcap1,rx_pcap={e},tx_pcap={self.path('x1.pcap')}"],
                               config(self.path("state-x"), "gw-x", True), self.cpu1)
        self.wait_for(lambda: (self.group_of("x") or {}).get("member_state") == "rejected", "x rejected")
        g = self.group_of("x")
        self.assertEqual((g["sealing_spi"], g["opening_spis"], g["sender_id"]), ("", "", None), "no key, no Sender-ID")
        self.stop([x])
        stats = self.stats("x")
        self.assertEqual(stats["drops"]["no_group_key"], 20, "its group traffic is dropped, never sent in clear")
        self.assertEqual(stats["tx_packets"], 0)
        self.assertIn("registration rejected", self.log("x"))
        self.assertEqual(read_pcap(self.path("x1.pcap")), [])


if __name__ == "__main__":
    unittest.main()
