#!/usr/bin/python3
"""A lossy link for the source-authentication tests, run inside the test's network namespace:
copies every frame arriving on --in to --out, except every --every-th source-authentication
control message of type --drop-type (decrypted with the group SA to recognise it), counting from
the first. On SIGTERM writes {"forwarded": N, "dropped": [{"type", "seq", "digests"}...]} to --report.

    srcauth_relay.py --in ap-r --out bp-r --key HEX --spi N --drop-type 6 --every 3 --report F
"""
import argparse
import json
import signal
import socket
import struct
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ETH_P_ALL = 0x0003


def srcauth_message(frame, aead, salt, spi):
    """(type, seq, digests) of the control message in an IPv4 group ESP frame, or None."""
    if len(frame) < 14 + 20 + 16 + 16 + 16 or frame[12:14] != b"\x08\x00" or frame[23] != 50:
        return None
    esp = frame[34:]
    if struct.unpack("!I", esp[:4])[0] != spi:
        return None
    try:
        plain = aead.decrypt(salt + esp[8:16], esp[16:], esp[:8])
    except InvalidTag:
        return None
    if plain[-1] != 253 or plain[1] != 59:
        return None
    typ, seq = plain[0] & 0x0F, struct.unpack("!Q", plain[8:16])[0]
    return typ, seq, (struct.unpack("!H", plain[24:26])[0] if typ == 6 else 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--in", dest="iface_in", required=True)
    ap.add_argument("--out", dest="iface_out", required=True)
    ap.add_argument("--key", required=True, help="group SA keying material: 16-byte key + 4-byte salt, hex")
    ap.add_argument("--spi", type=lambda v: int(v, 0), required=True)
    ap.add_argument("--drop-type", type=int, required=True)
    ap.add_argument("--every", type=int, required=True)
    ap.add_argument("--report", required=True)
    a = ap.parse_args()
    key = bytes.fromhex(a.key)
    aead, salt = AESGCM(key[:16]), key[16:]
    rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    rx.bind((a.iface_in, 0))
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)  # bursts while this process waits for a CPU
    tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    tx.bind((a.iface_out, 0))
    state = {"forwarded": 0, "dropped": []}
    seen = 0

    def stop(*_):
        with open(a.report, "w") as f:
            json.dump(state, f)
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    while True:
        frame, addr = rx.recvfrom(65535)
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        msg = srcauth_message(frame, aead, salt, a.spi)
        if msg is not None and msg[0] == a.drop_type:
            seen += 1
            if (seen - 1) % a.every == 0:
                state["dropped"].append({"type": msg[0], "seq": msg[1], "digests": msg[2]})
                continue
        tx.send(frame)
        state["forwarded"] += 1


if __name__ == "__main__":
    main()
