#!/usr/bin/python3
"""[D] source authentication in the gateway: outbound (tagging + sealing) Mpps of msecgw per worker
core for each mode, at 64 and 1420 B, as a ratio to ESP-only msecgw measured in the same run.

Drives the real binary like perf/esp_bench.py: port 0 = net_pcap of 128 clear frames replayed
forever (infinite_rx), port 1 = net_null; rate = sealed packets / run seconds of the one worker
(it busy-polls: one core). The verifying side is not measured here (see docs/performance.md).

    perf/srcauth_gw_bench.py --msecgw build/app/msecgw/msecgw [--seconds 4] [--sizes 64,1420]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from gwharness import write_pcap  # noqa: E402

MODES = {"esp": "", "tesla": "mode: tesla, interval_ms: 100", "manifest": "mode: manifest, manifest_packets: 64",
         "sign": "mode: sign"}


def frame(i, size):
    eth = bytes.fromhex("01005e010101020000000101") + b"\x08\x00"
    payload = bytes((i + j) & 0xFF for j in range(size - 14 - 28))
    total = 28 + len(payload)
    ip = bytearray(bytes([0x45, 0]) + total.to_bytes(2, "big") + b"\0\0\x40\0" + bytes([16, 17]) + b"\0\0" +
                   bytes([10, 1, 0, 1 + i % 4]) + bytes([239, 1, 1, 1]))
    c = sum(int.from_bytes(ip[j:j + 2], "big") for j in range(0, 20, 2))
    c = (c & 0xFFFF) + (c >> 16)
    c = (c & 0xFFFF) + (c >> 16)
    ip[10:12] = (~c & 0xFFFF).to_bytes(2, "big")
    udp = (4000).to_bytes(2, "big") + (5000).to_bytes(2, "big") + (8 + len(payload)).to_bytes(2, "big") + b"\0\0"
    return eth + bytes(ip) + udp + payload


def run(a, work, mode, size, n):
    key = os.path.join(work, "k.pem")
    if not os.path.exists(key):
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", key], check=True, capture_output=True)
    auth = f", source_auth: {{{MODES[mode]}, signing_key: {key}}}" if MODES[mode] else ""
    cfg = os.path.join(work, f"{mode}.yaml")
    with open(cfg, "w") as f:
        f.write(f"state_dir: {work}/state\nports:\n  - {{port: 0, side: clear}}\n  - {{port: 1, side: protected}}\n"
                f"sas:\n  - {{name: o, dir: out, spi: 0x1001, aead: aes-128-gcm, key: \"0x{'11' * 20}\"{auth}}}\n"
                "policies:\n  - {dir: out, dst: 239.1.0.0/16, action: protect, sa: o}\n")
    pcap = os.path.join(work, f"clear_{size}.pcap")
    if not os.path.exists(pcap):
        write_pcap(pcap, [frame(i, size) for i in range(128)])
    stats = os.path.join(work, "s.json")
    prefix = f"srcauth_gw_bench_{os.getpid()}_{n}"
    cmd = [a.msecgw, "--no-huge", "-m", "1024", "--no-pci", "-l", a.lcores, "--file-prefix", prefix,
           "--vdev", f"net_pcap0,rx_pcap={pcap},infinite_rx=1", "--vdev", "net_null0,no-rx=1",
           "--", "--config", cfg, "--duration", str(a.seconds), "--stats-json", stats]
    r = subprocess.run(cmd, capture_output=True, text=True)
    shutil.rmtree("/var/run/dpdk/" + prefix, ignore_errors=True)
    if r.returncode != 0:
        raise RuntimeError(f"{mode} {size} B: msecgw exit {r.returncode}\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    st = json.load(open(stats))
    return st["sealed"] / st["seconds"] / 1e6, {k: v for k, v in st["drops"].items() if v}, " ".join(cmd)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--msecgw", required=True)
    p.add_argument("--seconds", type=int, default=4)
    p.add_argument("--sizes", default="64,1420")
    p.add_argument("--lcores", default="0,1")
    p.add_argument("--out", default="perf/results/srcauth_gw.json")
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="srcauth_gw_bench_")
    results, n = [], 0
    print(f"{'mode':9} {'size':>5} {'Mpps':>8} {'ratio':>6}  drops")
    for size in (int(s) for s in a.sizes.split(",")):
        base = None
        for mode in MODES:
            n += 1
            mpps, drops, cmd = run(a, work, mode, size, n)
            base = mpps if mode == "esp" else base
            ratio = mpps / base if base else float("nan")
            results.append({"mode": mode, "size": size, "mpps": mpps, "ratio_to_esp": ratio, "drops": drops, "cmd": cmd})
            print(f"{mode:9} {size:5} {mpps:8.3f} {ratio:6.2f}  {drops or ''}", flush=True)
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
