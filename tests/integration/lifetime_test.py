#!/usr/bin/python3
"""SA lifetimes (RFC 4301 §4.4.2.1): a hard packet lifetime is exact, because the gateway hands
out no more IV counters than the lifetime allows; the packets past it are dropped as sa_expired.
A soft lifetime only warns. Inbound hard limits stop the SA too."""
import unittest

from scapy.all import IP, UDP, Ether, Raw

from gwharness import EspOf, GatewayTestCase, sa_key_hex

SPI = 0x5001

CONFIG = """\
state_dir: @STATE@
ports: [{port: 0, side: clear}, {port: 1, side: protected}]
sas:
  - {name: l-out, dir: out, spi: 0x5001, aead: aes-128-gcm, key: "@KEY@",
     lifetime: {soft_packets: 50, hard_packets: 100}}
policies:
  - {dir: out, dst: 239.5.0.0/16, action: protect, sa: l-out}
"""


def frame(i):
    return bytes(Ether(src="02:00:00:00:00:05", dst="01:00:5e:05:00:01") /
                 IP(src="10.5.0.1", dst="239.5.0.1") / UDP(sport=5000, dport=5001) / Raw(i.to_bytes(4, "big") * 8))


class LifetimeTest(GatewayTestCase):

    def test_hard_packet_lifetime_is_exact(self):
        frames = [frame(i) for i in range(300)]
        run = self.run_gateway(CONFIG.replace("@KEY@", sa_key_hex()), clear_rx=frames, duration=2)
        s = run.stats
        self.assertEqual(s["sealed"], 100, "exactly hard_packets sealed")
        self.assertEqual(s["drops"]["sa_expired"], 200)
        self.assertEqual(s["drops_total"], 200)
        self.assertFrames(run.prot_out, [EspOf(f, SPI) for f in frames[:100]], "port 1 output")


if __name__ == "__main__":
    unittest.main()
