"""Issue [H] with the real binaries: three `msecgw --gcks-only` key servers on a real 3-member etcd
cluster serve one group to two live gateways that carry paced multicast traffic while the key
servers rekey every two seconds.

    sender ─ ehac-tx ═ ehac ─[gateway A: member gw-a1, sends]─ ehap ═ ehbp ─[gateway B: member gw-b]─ clear out (pcap)
    ks0, ks1, ks2: msecgw --gcks-only on 127.0.0.1:18848..18850, state in etcd e0, e1, e2 (127.0.0.1:23301..23303)

Everything runs in one private network namespace (key management and etcd on its loopback). One
run, in order, with the traffic flowing throughout:
  1. kill -9 of the leading key server: a standby leads within leader_ttl_seconds + a margin (the
     measured time is printed), and rekeys go on;
  2. SIGSTOP of the new leader past its lease (a partition from etcd), the third one takes over,
     SIGCONT: the woken ex-leader stands by and issues nothing more (fencing by its lost lease);
  3. two of the three etcd members killed (no quorum): no key server leads, each backs off
     (bounded, exponential; log names the endpoints; metrics), the gateways keep forwarding with
     the keys they hold; the members restarted: a key server leads again by itself and rekeys.
Then: B got every frame exactly once (0 loss, 0 receiver drops), no re-registration and no burst
of rekeys (member and key server metrics), and the key servers' logs of issued values (every TEK
SPI, Sender-ID and Message ID each one took) show no value twice over the whole run.
"""
import collections
import os
import re
import signal
import subprocess
import time
import unittest

from gwharness import read_pcap, write_pcap
from key_management_test import GROUP, KEY_SERVER, GCKS_PORT, KeyTestbed, clear_frame, config
from livegw import live

ETCD = "/usr/bin/etcd"
ETCDCTL = "/usr/bin/etcdctl"
ETCD_CLIENT, ETCD_PEER = 23301, 23311  # inside the test's namespace
KS_PORTS = (GCKS_PORT, GCKS_PORT + 1, GCKS_PORT + 2)
KS_METRICS = (19465, 19466, 19467)
B_METRICS = 19470
TTL = 2             # leader_ttl_seconds
TAKEOVER_MARGIN = 2.0  # seconds past the TTL: one election step (TTL/4), a tick, the test's polling
N, RATE = 9000, 250.0  # 36 s of traffic
ISSUED = re.compile(r"key server: issued (TEK SPI|Sender-ID|Message ID) (\S+) group (\d+) at ([0-9.]+)")


class KeyServerGroupTest(KeyTestbed):
    TAG = "eh"

    # -- etcd, three members on the namespace's loopback --------------------------------------
    def etcd_url(self, i):
        return f"http://127.0.0.1:{ETCD_CLIENT + i}"

    def start_etcd(self, i):
        cluster = ",".join(f"e{j}=http://127.0.0.1:{ETCD_PEER + j}" for j in range(3))
        args = [ETCD, "--name", f"e{i}", "--data-dir", self.path(f"etcd-e{i}"),
                "--listen-client-urls", self.etcd_url(i), "--advertise-client-urls", self.etcd_url(i),
                "--listen-peer-urls", f"http://127.0.0.1:{ETCD_PEER + i}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{ETCD_PEER + i}",
                "--initial-cluster", cluster, "--initial-cluster-state", "new",
                "--heartbeat-interval", "50", "--election-timeout", "500"]
        with open(self.path(f"etcd-e{i}.log"), "a") as log:
            p = subprocess.Popen(self.ns.cmd(args), stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def etcdctl(self, *words, endpoints=None):
        eps = endpoints or ",".join(self.etcd_url(i) for i in range(3))
        return subprocess.run(self.ns.cmd([ETCDCTL, "--endpoints", eps, "--dial-timeout", "1s",
                                           "--command-timeout", "2s", *words]),
                              capture_output=True, text=True, env=dict(os.environ, ETCDCTL_API="3"))

    def etcd_writable(self):
        return self.etcdctl("put", "/eh/ready", "1").returncode == 0

    def kill(self, p):
        p.kill()
        p.wait()
        self.procs.remove(p)

    # -- key servers ------------------------------------------------------------------------
    def ks_config(self, i):
        endpoints = ", ".join(self.etcd_url(j) for j in range(3))
        return (GROUP + KEY_SERVER.replace(f"127.0.0.1:{GCKS_PORT}", f"127.0.0.1:{KS_PORTS[i]}") +
                f"  storage_key_file: {self.storage_key()}\n  etcd_endpoints: [{endpoints}]\n"
                f"  etcd_prefix: /msecgw/eh\n  candidate_id: ks{i}\n  leader_ttl_seconds: {TTL}\n")

    def leads(self, i):
        """ks i logged that it took the lead (at start, or after a take-over) more often than
        it logged standing by since."""
        log = self.log(f"ks{i}")
        took = log.count("leading the key servers on etcd") + log.count("), leading")
        return took > log.count("key server: standing by")

    def takeovers(self, i):
        return self.log(f"ks{i}").count("leading the key servers on etcd")

    def ks_metrics(self, i):
        return self.samples(self.scrape(KS_METRICS[i]))

    def wait_rekey(self, what, timeout=15):
        before = self.group_of("b")["rekeys_accepted"]
        self.wait_for(lambda: self.group_of("b")["rekeys_accepted"] > before, what, timeout)

    def take_over(self, gone, candidates, what):
        """Seconds until one of `candidates` leads after ks `gone` was stopped now; its index."""
        t0 = time.monotonic()
        before = {i: self.takeovers(i) for i in candidates}
        self.wait_for(lambda: any(self.takeovers(i) > before[i] for i in candidates), what, TTL + 15)
        took = time.monotonic() - t0
        new = next(i for i in candidates if self.takeovers(i) > before[i])
        print(f"# {what}: ks{new} leads {took * 1000:.0f} ms after ks{gone} stopped (leader_ttl_seconds {TTL})",
              flush=True)
        return took, new

    def issued(self, i):
        """(kind, value, monotonic time) of every value ks i logged as issued."""
        out = []
        for kind, value, _group, at in ISSUED.findall(self.log(f"ks{i}")):
            if kind == "TEK SPI":
                out.append((kind, int(value, 16), float(at)))
            else:
                first, last = (int(x) for x in value.split(".."))
                out += [(kind, v, float(at)) for v in range(first, last + 1)]
        return out

    def test_failover_pause_and_quorum_loss_under_traffic(self):
        self.links([("ehac", "ehac-tx", 0x1100), ("ehap", "ehbp", 0x1101, 0x3300)])
        cap, capture = self.start_capture("ehbp")  # from the start: anything else on the link shows
        etcd = [self.start_etcd(i) for i in range(3)]
        self.wait_for(self.etcd_writable, "etcd cluster writable", 30)
        ks = {0: self.start_key_server("ks0", self.ks_config(0), ["--metrics", f"127.0.0.1:{KS_METRICS[0]}"])}
        self.wait_for(lambda: self.leads(0), "ks0 leads", 15)
        for i in (1, 2):
            ks[i] = self.start_key_server(f"ks{i}", self.ks_config(i), ["--metrics", f"127.0.0.1:{KS_METRICS[i]}"])
        self.assertFalse(self.leads(1) or self.leads(2), "one leader")

        empty = self.path("empty.pcap")
        write_pcap(empty, [])
        b_out = self.path("b_clear_out.pcap")
        a = self.start_gateway("a", [live(0, "ehac"), live(1, "ehap")],
                               config(self.path("state-a"), "gw-a1", True, key_servers=KS_PORTS), self.cpu1)
        b = self.start_gateway("b", [f"net_pcap0,rx_pcap={empty},tx_pcap={b_out}", live(1, "ehbp")],
                               config(self.path("state-b"), "gw-b", False, key_servers=KS_PORTS), self.cpu0,
                               extra=["--metrics", f"127.0.0.1:{B_METRICS}"])
        for name, sending in (("a", True), ("b", False)):
            self.wait_for(lambda: self.ready(name, sending), f"{name} registered")
        sender_id = self.group_of("a")["sender_id"]
        frames = {1: [clear_frame(1, i, 60 + (i * 53) % 1200) for i in range(N)]}
        t_traffic = time.monotonic()
        senders = self.start_senders(frames, {1: "ehac-tx"}, rate=RATE)
        self.wait_rekey("a rekey from ks0 under traffic")

        # 1. kill -9 of the leader.
        before_kill = self.ks_metrics(0)
        self.kill(ks.pop(0))
        took_kill, second = self.take_over(0, (1, 2), "take-over after kill -9")
        self.assertLessEqual(took_kill, TTL + TAKEOVER_MARGIN, "a standby leads within the lease and a margin")
        self.wait_rekey(f"a rekey from ks{second}")

        # 2. The new leader paused (cut off from etcd) past its lease, then woken.
        third = 3 - second
        ks[second].send_signal(signal.SIGSTOP)
        took_pause, new = self.take_over(second, (third,), "take-over after SIGSTOP")
        self.assertLessEqual(took_pause, TTL + TAKEOVER_MARGIN)
        self.wait_rekey(f"a rekey from ks{third}")
        t_cont = time.monotonic()
        ks[second].send_signal(signal.SIGCONT)
        self.wait_for(lambda: not self.leads(second), f"ks{second} stands by after waking", 10)
        self.assertEqual(self.ks_metrics(second)["msecgw_gkm_server_leading"], 0)
        self.wait_rekey(f"ks{third} still rekeys")

        # 3. Two of the three etcd members lost: no quorum.
        self.kill(etcd[1])
        self.kill(etcd[2])
        t_lost = time.monotonic()
        self.wait_for(lambda: not self.leads(third), f"ks{third} steps down without quorum", TTL + 10)
        time.sleep(2 * TTL + 2)  # the back-off reaches its bound (2 x leader_ttl_seconds)
        lost = {i: self.ks_metrics(i) for i in (second, third)}
        lost_for = time.monotonic() - t_lost
        b_during = self.group_of("b")
        for i in (second, third):
            m = lost[i]
            self.assertEqual(m["msecgw_gkm_server_leading"], 0)
            # No busy loop: the wait doubles from one election step (TTL/4) up to 2 x TTL.
            self.assertGreaterEqual(m["msecgw_gkm_server_etcd_backoff_seconds"], TTL / 2, f"ks{i} backs off")
            self.assertLessEqual(m["msecgw_gkm_server_etcd_backoff_seconds"], 2 * TTL, "the back-off is bounded")
            self.assertGreater(m["msecgw_gkm_server_etcd_retries_deferred_total"], 0)
            steps = m["msecgw_gkm_server_etcd_consecutive_failures"]
            # at most: the leader's tries within its lease (2/3 TTL every TTL/4), the doublings
            # 1, 2, 4 steps up to the bound, then one every 2 x TTL
            most = 3 + 4 + lost_for / (2 * TTL) + 1
            print(f"# no quorum: ks{i} {int(steps)} failed election steps in {lost_for:.1f} s, back-off now "
                  f"{m['msecgw_gkm_server_etcd_backoff_seconds']} s", flush=True)
            self.assertGreaterEqual(steps, 2, f"ks{i} kept trying")
            self.assertLessEqual(steps, most, f"ks{i}: {steps} failed steps in {lost_for:.1f} s")
            log = self.log(f"ks{i}")
            self.assertIn("etcd does not answer", log)
            self.assertIn(self.etcd_url(1), log, "the error names the endpoints")
        self.assertNotEqual(b_during["opening_spis"], "", "members keep their keys")
        self.assertEqual(b_during["member_state"], "registered", "no Message ID gap, so no re-registration")
        etcd[1] = self.start_etcd(1)
        etcd[2] = self.start_etcd(2)
        t_back = time.monotonic()
        self.wait_for(lambda: self.leads(second) or self.leads(third), "a key server leads again", 4 * TTL + 20)
        print(f"# quorum back: a key server leads {time.monotonic() - t_back:.1f} s after etcd was restarted", flush=True)
        self.assertTrue(any("etcd answers again" in self.log(f"ks{i}") for i in (second, third)))
        self.wait_rekey("rekeys after quorum returned", 20)

        self.finish_senders(senders)
        run_for = time.monotonic() - t_traffic
        b_group, a_group = self.group_of("b"), self.group_of("a")
        member = self.samples(self.scrape(B_METRICS))
        end = {i: self.ks_metrics(i) for i in (second, third)}
        time.sleep(1.0)
        self.stop([cap])
        self.stop([a, b])
        self.stop(list(ks.values()))
        stats_b = self.stats("b")

        # Every frame delivered once, no receiver drop, rekeys all accepted.
        other = [f[:64].hex() for f in read_pcap(capture) if not (f[12:14] == b"\x08\x00" and f[23] == 50)]
        self.assertEqual(other, [], "only ESP on the protected link")
        self.assert_delivered(read_pcap(b_out), frames, stats_b, "across kill -9, SIGSTOP and loss of etcd quorum")
        self.assertEqual(stats_b["drops_total"], 0, {k: v for k, v in stats_b["drops"].items() if v})
        self.assertEqual(b_group["rekeys_rejected"], 0, b_group)
        self.assertEqual(a_group["sender_id"], sender_id, "the sender kept its Sender-ID")

        # No re-registration, no rekey storm: one periodic rekey per period of leadership at most.
        group = '{group="video"}'
        self.assertEqual(member[f"msecgw_gkm_member_registrations_total{group}"], 1, "B registered once")
        self.assertEqual(member[f"msecgw_gkm_member_reregistrations_total{group}"], 0)
        self.assertEqual(member[f"msecgw_gkm_member_rekeys_missed_total{group}"], 0, "Message IDs without a gap")
        rekeys = before_kill["msecgw_gkm_server_periodic_rekeys_total"] + sum(
            m["msecgw_gkm_server_periodic_rekeys_total"] for m in end.values())
        registrations = before_kill["msecgw_gkm_server_registrations_total"] + sum(
            m["msecgw_gkm_server_registrations_total"] for m in end.values())
        print(f"# messages: {int(rekeys)} periodic rekeys over {run_for:.1f} s of traffic (period 2 s), "
              f"{int(registrations)} registrations", flush=True)
        self.assertEqual(registrations, 2, "A and B registered once each, whoever led")
        self.assertLessEqual(rekeys, run_for / 2 + 3, "no burst of rekeys at a take-over")
        self.assertGreaterEqual(end[third]["msecgw_gkm_server_leader_takeovers_total"], 1)

        # The logs of issued values: nothing twice, nothing from the woken ex-leader.
        issued = {i: self.issued(i) for i in range(3)}
        counts = collections.Counter((kind, v) for i in issued for kind, v, _ in issued[i])
        twice = [k for k, c in counts.items() if c > 1]
        self.assertEqual(twice, [], "a value was issued twice")
        kinds = collections.Counter(kind for kind, _ in counts)
        print(f"# issued: {dict(kinds)}, none twice", flush=True)
        self.assertGreaterEqual(kinds["TEK SPI"], 6)
        self.assertGreaterEqual(kinds["Message ID"], 5)
        self.assertEqual(kinds["Sender-ID"], 1)
        # From waking until quorum was lost: after quorum returns either standby may win the election.
        late = [x for x in issued[second] if t_cont <= x[2] < t_lost]
        self.assertEqual(late, [], f"ks{second} issued values after waking")
        for i in range(3):
            self.assertTrue(issued[i], f"ks{i} issued values while it led")
        wire = self.esp_on_wire(capture)
        self.assertEqual(len(wire), N)
        self.assertEqual(len(set(wire)), len(wire), "an (SPI, IV) pair repeated")
        self.assertLessEqual({spi for spi, _ in wire}, {v for (kind, v) in counts if kind == "TEK SPI"},
                             "every SPI on the wire was issued (and logged) by a key server")


if __name__ == "__main__":
    unittest.main()
