"""[C] "each region has its own key server" with the real binaries: a boundary gateway registers
with the key servers of both its regions and re-encrypts between their group keys while both key
servers rekey every two seconds.

Testbed (one private network namespace, key management over its loopback):

    sender ─ ac-tx ═ ac ─[edge A: member of leaf-a]─ ap ═ bl ─[boundary: member of leaf-a AND trunk]─ bt ═ bp ─[edge B: member of trunk]─ clear out (net_pcap)
                                     capture on bl ──┘                                capture on bp ──┘
    key server leaf-a (msecgw --gcks-only, 127.0.0.1:18851): group leaf (id 11), members edge-a, bnd
    key server trunk  (msecgw --gcks-only, 127.0.0.1:18852): group trunk (id 12), members bnd, edge-b

The boundary has one `member` entry per region, with the same identity but another PSK at each key
server, so a registration sent to the wrong key server would be refused. Checked: every datagram
reaches edge B's clear side once, byte for byte, with no drop anywhere; leaf A's segment carries
only TEKs issued by leaf-a's key server and the trunk only TEKs of the trunk's (several of each:
both rekeyed under traffic, independently); no (SPI, IV) twice; the boundary's `show group` names
each group's region and key server, the CLI adds a static SA and policy to the trunk region, and a
reload that moves a group to another region is refused.
"""
import os
import signal
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gwharness import read_pcap, write_pcap  # noqa: E402
from key_management_test import CLI_BIN, KeyTestbed, clear_frame  # noqa: E402
from livegw import live  # noqa: E402

PORT = {"leaf-a": 18851, "trunk": 18852}
PSK = {("leaf-a", "edge-a"): "0x" + bytes(range(10, 42)).hex(), ("leaf-a", "bnd"): "0x" + bytes(range(50, 82)).hex(),
       ("trunk", "bnd"): "0x" + bytes(range(90, 122)).hex(), ("trunk", "edge-b"): "0x" + bytes(range(130, 162)).hex()}
GROUP = {"leaf-a": ("leaf", 11), "trunk": ("trunk", 12)}
N, RATE = 3000, 500.0  # 6 s of traffic: about three rekeys in each region
DELAYS = "activation_delay_ms: 400, deactivation_delay_ms: 800"
DST = "239.1.0.0/16"


def key_server_text(region, state):
    name, gid = GROUP[region]
    ids = [i for (r, i) in PSK if r == region]
    senders = [i for i in ids if i != "edge-b"]
    return (f"groups:\n  - {{name: {name}, id: {gid}, dst: {DST}, members: [{', '.join(ids)}], "
            f"senders: [{', '.join(senders)}], tek_lifetime_seconds: 30, rekey_period_seconds: 2}}\n"
            f"key_server:\n  listen: 127.0.0.1:{PORT[region]}\n  identity: gcks-{region}\n"
            f"  state_path: {state}\n  storage_key_file: @KEY@\n  peers:\n"
            + "".join(f"    - {{identity: {i}, psk: \"{PSK[(region, i)]}\"}}\n" for i in ids))


def member_entry(region, identity, with_region):
    where = f"region: {region}, " if with_region else ""
    return (f"  - {{{where}identity: {identity}, psk: \"{PSK[(region, identity)]}\", "
            f"key_server: 127.0.0.1:{PORT[region]}, key_server_identity: gcks-{region}, {DELAYS}}}\n")


def edge_text(state, region, identity, direction):
    name, gid = GROUP[region]
    return (f"state_dir: {state}\nidle_sleep_us: 100\n"
            "ports:\n  - {port: 0, side: clear}\n  - {port: 1, side: protected}\n"
            f"groups:\n  - {{name: {name}, id: {gid}, dst: {DST}}}\n"
            "member:\n" + member_entry(region, identity, False) +
            f"policies:\n  - {{dir: {direction}, dst: {DST}, action: protect, group: {name}}}\n")


def boundary_text(state):
    return (f"state_dir: {state}\nidle_sleep_us: 100\nregions: [leaf-a, trunk]\n"
            "ports:\n  - {port: 0, side: protected, region: leaf-a}\n  - {port: 1, side: protected, region: trunk}\n"
            f"groups:\n  - {{name: leaf, id: 11, dst: {DST}, region: leaf-a}}\n"
            f"  - {{name: trunk, id: 12, dst: {DST}, region: trunk}}\n"
            "member:\n" + member_entry("leaf-a", "bnd", True) + member_entry("trunk", "bnd", True) +
            f"policies:\n  - {{dir: in, region: leaf-a, dst: {DST}, action: protect, group: leaf}}\n"
            f"  - {{dir: out, region: trunk, dst: {DST}, action: protect, group: trunk}}\n")


class RegionKeyServersTest(KeyTestbed):
    TAG = "rgks"

    def groups_of(self, name):
        if not os.path.exists(self.path(f"{name}.sock")) or "CLI on unix socket" not in self.log(name):
            return None
        shown = self.cli_json(name, "show", "group")
        return {g["group"]: g for g in shown["groups"]} if shown else None

    def issued_spis(self, region):
        with sqlite3.connect(self.path(f"gcks-{region}.db")) as db:
            return {row[0] for row in db.execute("SELECT spi FROM tek_spis")}

    def test_boundary_keyed_by_two_regions_key_servers_rekeying_under_traffic(self):
        self.links([("ac", "ac-tx", 0x4100), ("ap", "bl", 0x4101, 0x4200), ("bt", "bp", 0x4201, 0x4300)])
        key_servers = []
        for region in PORT:
            text = key_server_text(region, self.path(f"gcks-{region}.db")).replace("@KEY@", self.storage_key())
            key_servers.append(self.start_key_server(f"gcks-{region}", text))
        empty = self.path("empty.pcap")
        write_pcap(empty, [])
        b_out = self.path("b_clear_out.pcap")
        a = self.start_gateway("a", [live(0, "ac"), live(1, "ap")],
                               edge_text(self.path("state-a"), "leaf-a", "edge-a", "out"), self.cpu1)
        bnd = self.start_gateway("bnd", [live(0, "bl"), live(1, "bt")], boundary_text(self.path("state-bnd")), self.cpu1)
        b = self.start_gateway("b", [f"net_pcap0,rx_pcap={empty},tx_pcap={b_out}", live(1, "bp")],
                               edge_text(self.path("state-b"), "trunk", "edge-b", "in"), self.cpu0)
        self.wait_for(lambda: self.ready("a", True), "edge A registered with leaf-a's key server")
        self.wait_for(lambda: self.ready("b", False), "edge B registered with the trunk's key server")

        def boundary_ready():
            g = self.groups_of("bnd")
            return (g is not None and len(g) == 2 and all(x["member_state"] == "registered" for x in g.values())
                    and g["trunk"]["sealing_spi"] != "")
        self.wait_for(boundary_ready, "the boundary registered with both key servers")
        shown = self.groups_of("bnd")
        self.assertEqual((shown["leaf"]["region"], shown["trunk"]["region"]), ("leaf-a", "trunk"))
        self.assertEqual(shown["leaf"]["member_key_server"], f"127.0.0.1:{PORT['leaf-a']}")
        self.assertEqual(shown["trunk"]["member_key_server"], f"127.0.0.1:{PORT['trunk']}")
        self.assertIsNone(shown["leaf"]["sender_id"], "the boundary only opens leaf-a's group")
        self.assertIsNotNone(shown["trunk"]["sender_id"], "and seals under the trunk's")

        # The CLI adds a static SA and its policy to the trunk region, beside the key server's.
        key = "0x" + bytes(range(200, 220)).hex()
        for words in (["add", "sa", "name=t-static", "dir=in", "spi=0x7e000001", "aead=aes-128-gcm", f"key={key}",
                       "region=trunk"],
                      ["add", "policy", "dir=in", "dst=239.2.0.0/16", "action=protect", "sa=t-static", "region=trunk"]):
            r = subprocess.run([CLI_BIN, "--socket", self.path("bnd.sock"), *words], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        sas = {sa["name"]: sa for sa in self.cli_json("bnd", "show", "sa")}
        self.assertEqual((sas["t-static"]["region"], sas["t-static"]["state"]), ("trunk", "active"))
        self.assertEqual({sa["region"] for name, sa in sas.items() if name.startswith("leaf.")}, {"leaf-a"})
        self.assertEqual({sa["region"] for name, sa in sas.items() if name.startswith("trunk.")}, {"trunk"})
        self.assertEqual([p["region"] for p in self.cli_json("bnd", "show", "policy") if p["sa"] == "t-static"], ["trunk"])

        # A group registered with its region's key server at start: a reload moving it is refused.
        text = boundary_text(self.path("state-bnd"))
        moved = text.replace("id: 11, dst: 239.1.0.0/16, region: leaf-a}", "id: 11, dst: 239.1.0.0/16, region: trunk}")
        moved = moved.replace("{dir: in, region: leaf-a,", "{dir: in, region: trunk,")
        self.assertEqual(text.count("leaf-a") - moved.count("leaf-a"), 2, "group leaf and its policy moved to the trunk")
        with open(self.path("bnd.yaml"), "w") as f:
            f.write(moved)
        bnd.send_signal(signal.SIGHUP)
        self.wait_for(lambda: "reload refused" in self.log("bnd"), "the boundary refuses the reload")
        self.assertIn("group 'leaf' changes region only with a restart", self.log("bnd"))

        caps = [self.start_capture(iface) for iface in ("bl", "bp")]
        frames = {1: [clear_frame(1, i, 60 + (i * 53) % 1300) for i in range(N)]}
        senders = self.start_senders(frames, {1: "ac-tx"})
        self.finish_senders(senders)
        bnd_groups = self.groups_of("bnd")
        time.sleep(1.0)  # the last frames drain through the gateways
        self.stop([c for c, _ in caps])
        self.stop([a, bnd, b])
        self.stop(key_servers)
        stats = {n: self.stats(n) for n in ("a", "bnd", "b")}

        # Every datagram crossed both regions, byte for byte, and nobody dropped anything.
        self.assert_delivered(read_pcap(b_out), frames, stats["b"], f"boundary drops {stats['bnd']['drops']}")
        for n in ("a", "bnd", "b"):
            self.assertEqual(stats[n]["drops_total"], 0, f"{n}: {({k: v for k, v in stats[n]['drops'].items() if v})}")
        self.assertEqual(stats["bnd"]["opened"], N)
        self.assertEqual(stats["bnd"]["sealed"], N)
        self.assertEqual(stats["b"]["opened"], N)

        # Each segment carries its own region's keys, and both regions rekeyed under traffic.
        issued = {r: self.issued_spis(r) for r in PORT}
        self.assertFalse(issued["leaf-a"] & issued["trunk"])
        for (_, capture), region in zip(caps, ("leaf-a", "trunk")):
            wire = self.esp_on_wire(capture)
            self.assertEqual(len(wire), N, f"every frame captured once on the {region} segment")
            spis = {spi for spi, _ in wire}
            self.assertLessEqual(spis, issued[region], f"{region} segment: SPIs {sorted(map(hex, spis))} not all "
                                                       f"issued by its key server {sorted(map(hex, issued[region]))}")
            self.assertGreaterEqual(len(spis), 2, f"{region}: rekeyed under traffic: {sorted(map(hex, spis))}")
            self.assertEqual(len(set(wire)), len(wire), f"{region}: an (SPI, IV) pair repeated")
        self.assertGreaterEqual(bnd_groups["leaf"]["rekeys_accepted"], 2, bnd_groups["leaf"])
        self.assertGreaterEqual(bnd_groups["trunk"]["rekeys_accepted"], 2, bnd_groups["trunk"])
        self.assertEqual(bnd_groups["leaf"]["rekeys_rejected"] + bnd_groups["trunk"]["rekeys_rejected"], 0)


if __name__ == "__main__":
    unittest.main()
