#!/usr/bin/python3
"""IKE_SA_INIT key derivation of lib/gkm checked against an independent computation with
Python's cryptography (RFC 7296 §2.13/2.14, RFC 5903, RFC 8031, RFC 5282, RFC 5649).
Usage: kdf_crosscheck.py PATH_TO_gkm_kdf_vector. Output is TAP."""

import hashlib
import hmac
import subprocess
import sys

from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding
from cryptography.hazmat.primitives import serialization

NI = bytes(range(0x10, 0x30))
NR = bytes(range(0x40, 0x60))
SPI_I = "8a1b2c3d4e5f6071"
SPI_R = "1f2e3d4c5b6a7988"
PRIV = {
    19: ("c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433",
         "c6ef9c5d78ae012a011164acb397ce2088685d8f06bf9be0b283ab46476bee53"),
    31: ("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
         "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"),
}


def prf(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


def prf_plus(key, seed, length):
    out, t, n = b"", b"", 1
    while len(out) < length:
        t = prf(key, t + seed + bytes([n]))
        out += t
        n += 1
    return out[:length]


def ecdh(group, priv_i, priv_r):
    if group == 19:
        ki = ec.derive_private_key(int(priv_i, 16), ec.SECP256R1())
        kr = ec.derive_private_key(int(priv_r, 16), ec.SECP256R1())
        enc = lambda k: k.public_key().public_bytes(serialization.Encoding.X962,
                                                    serialization.PublicFormat.UncompressedPoint)[1:]
        return enc(ki), enc(kr), ki.exchange(ec.ECDH(), kr.public_key())
    ki = x25519.X25519PrivateKey.from_private_bytes(bytes.fromhex(priv_i))
    kr = x25519.X25519PrivateKey.from_private_bytes(bytes.fromhex(priv_r))
    raw = lambda k: k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw(ki), raw(kr), ki.exchange(kr.public_key())


def expected(group, key_bytes):
    ke_i, ke_r, gir = ecdh(group, *PRIV[group])
    skeyseed = prf(NI + NR, gir)
    encr = key_bytes + 4
    stream = prf_plus(skeyseed, NI + NR + bytes.fromhex(SPI_I) + bytes.fromhex(SPI_R), 32 + 2 * encr + 64)
    keys = {"ke_i": ke_i, "ke_r": ke_r, "g_ir": gir, "sk_d": stream[:32],
            "sk_ei": stream[32:32 + encr], "sk_er": stream[32 + encr:32 + 2 * encr],
            "sk_pi": stream[32 + 2 * encr:64 + 2 * encr], "sk_pr": stream[64 + 2 * encr:]}
    return keys


def run(tool, group, key_bytes):
    out = subprocess.run([tool, str(group), *PRIV[group], NI.hex(), NR.hex(), SPI_I, SPI_R, str(key_bytes)],
                         check=True, capture_output=True, text=True).stdout
    return {name: bytes.fromhex(value) for name, value in (line.split() for line in out.splitlines())}


def main():
    tool = sys.argv[1]
    cases = [(19, 16), (19, 32), (31, 16), (31, 32)]
    checks = []
    for group, key_bytes in cases:
        got = run(tool, group, key_bytes)
        want = expected(group, key_bytes)
        for name, value in want.items():
            checks.append((f"group {group} AES-{key_bytes * 8}: {name}", got[name] == value))
        key, salt = want["sk_ei"][:-4], want["sk_ei"][-4:]
        plain = AESGCM(key).decrypt(salt + bytes.fromhex("0001020304050607"), got["sealed"],
                                    bytes.fromhex("a0a1a2a3a4a5a6a7a8a9"))
        checks.append((f"group {group} AES-{key_bytes * 8}: SK seal opens", plain == b"inner payloads"))
        unwrapped = aes_key_unwrap_with_padding(want["sk_d"], got["wrapped"])
        checks.append((f"group {group} AES-{key_bytes * 8}: RFC 5649 wrap opens", unwrapped == want["sk_pi"][:20]))
    print(f"1..{len(checks)}")
    for i, (name, ok) in enumerate(checks, 1):
        print(f"{'ok' if ok else 'not ok'} {i} - {name}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
