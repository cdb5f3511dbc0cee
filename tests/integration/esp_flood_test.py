"""Issue [I], data plane under flood: a burst of invalid ESP at full rate does not disturb a valid
flow on another SA, and every invalid packet is counted under its drop reason.

Two inbound SAs A (SPI 0x1001) and B (0x2002) with replay windows. The gateway's protected port
reads one pcap as fast as the worker polls (net_pcap: full rate, nothing lost before the worker):
every valid ESP frame of A (made by msecgw itself, outbound), and after each of them a burst of
invalid ESP: B's frames with a flipped ICV byte (auth_failed), frames under SPIs no SA has
(esp_no_sa), and B's frames cut short inside the IV (esp_malformed); at the end B's genuine frames,
the same sequence numbers as the forged ones. Checks: every frame of A comes out exactly once, in
order, byte for byte; so do B's genuine frames (a failed ICV never moves the replay window); the
drop counters hold exactly the invalid packets, each under its reason, and nothing else.
perf/esp_flood_bench.py measures what invalid ESP costs per packet against valid ESP.
"""
import unittest

from gwharness import GatewayTestCase
from key_management_test import clear_frame
from sa_swap_test import SPI_A, SPI_B, config

N_VALID = 400       # frames of A
BURST = 8           # invalid frames of each kind after every frame of A
N_B = 64            # frames of B (forged copies cycle through them)


def tampered_icv(frame):
    return frame[:-1] + bytes([frame[-1] ^ 0x01])


def other_spi(frame, k):
    esp = 14 + (frame[14] & 0x0F) * 4
    return frame[:esp] + (0x7000_0000 + k).to_bytes(4, "big") + frame[esp + 4:]


def truncated(frame):
    """SPI, sequence number and half the IV; the IPv4 total length and checksum still right."""
    ihl = (frame[14] & 0x0F) * 4
    f = bytearray(frame[:14 + ihl + 8 + 4])
    f[16:18] = (len(f) - 14).to_bytes(2, "big")
    f[24:26] = b"\0\0"
    s = sum(int.from_bytes(f[14 + j:16 + j], "big") for j in range(0, ihl, 2))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    f[24:26] = (~s & 0xFFFF).to_bytes(2, "big")
    return bytes(f)


class EspFloodTest(GatewayTestCase):

    def seal(self, name, spi, frames):
        run = self.run_gateway(config("out", [(name, spi)], name), clear_rx=frames)
        self.assertEqual(len(run.prot_out), len(frames), run.describe())
        return run.prot_out

    def test_invalid_esp_flood_on_one_sa_leaves_another_sa_untouched(self):
        clear_a = [clear_frame(1, i, 60 + (i * 37) % 1000) for i in range(N_VALID)]
        clear_b = [clear_frame(2, i, 60 + (i * 53) % 1000) for i in range(N_B)]
        esp_a = self.seal("a", SPI_A, clear_a)
        esp_b = self.seal("b", SPI_B, clear_b)
        wire, invalid = [], {"auth_failed": 0, "esp_no_sa": 0, "esp_malformed": 0}
        for i, f in enumerate(esp_a):
            wire.append(f)
            for k in range(BURST):
                b = esp_b[(i * BURST + k) % N_B]
                wire += [tampered_icv(b), other_spi(b, i * BURST + k), truncated(b)]
            for reason in invalid:
                invalid[reason] += BURST
        wire += esp_b

        run = self.run_gateway(config("in", [("a", SPI_A), ("b", SPI_B)], ["a", "b"]), prot_rx=wire, duration=4)
        self.assertFrames(run.clear_out, clear_a + clear_b, "A's flow, then B's genuine frames")
        self.assertDrops(run.stats, invalid)
        self.assertEqual(run.stats["opened"], N_VALID + N_B)


if __name__ == "__main__":
    unittest.main()
