#!/usr/bin/python3
"""Writes crypt-v1-*.hex: the encrypted stream format of docs/encryption.md, made by this
independent implementation (Python's `cryptography` and hashlib, not our C code), so the
unit test checks our writer and reader against the document. Run once; the output is
checked in. Deterministic: every key, nonce and salt is fixed."""
import hashlib, hmac, struct, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

def key_id(kek):
    return hmac.new(kek, b"themis-backup key id v1", hashlib.sha256).digest()[:8]

def stream(plain, slots_spec, dek, base_nonce, wrap_nonce, chunk_log2):
    fixed = b"TBCRYPT" + bytes([1, 1, chunk_log2, 0, 0]) + base_nonce
    assert len(fixed) == 24
    slots = b""
    for i, (kind, kek, extra) in enumerate(slots_spec):
        head = bytes([kind]) + key_id(kek) + extra
        nonce = wrap_nonce[:11] + bytes([wrap_nonce[11] ^ i])
        sealed = AESGCM(kek).encrypt(nonce, dek, fixed + head)
        slots += head + nonce + sealed          # sealed = wrapped key || tag
    out = fixed + bytes([len(slots_spec)]) + slots
    cs = 1 << chunk_log2
    chunks = [plain[i:i + cs] for i in range(0, len(plain), cs)] or [b""]
    for i, c in enumerate(chunks):
        ctr = struct.pack("<Q", i)
        nonce = base_nonce[:4] + bytes(a ^ b for a, b in zip(base_nonce[4:], ctr))
        final = 1 if i == len(chunks) - 1 else 0
        out += AESGCM(dek).encrypt(nonce, c, fixed + ctr + bytes([final]))
    return out

kek = bytes(range(32))                          # key file: 000102...1f
dek = bytes(range(0x20, 0x40))
base_nonce = bytes.fromhex("a0a1a2a3a4a5a6a7a8a9aaab")
wrap_nonce = bytes.fromhex("b0b1b2b3b4b5b6b7b8b9babb")
plain = bytes((i * 7 + (i >> 8)) & 0xff for i in range(2500))

salt = bytes.fromhex("c0c1c2c3c4c5c6c7c8c9cacbcccdcecf")
pkek = hashlib.scrypt(b"correct horse battery staple", salt=salt, n=1 << 15, r=8, p=1, maxmem=64 << 20, dklen=32)

vectors = {
    "key": stream(plain, [(1, kek, b"")], dek, base_nonce, wrap_nonce, 10),
    "exact": stream(plain[:2048], [(1, kek, b"")], dek, base_nonce, wrap_nonce, 10),
    "empty": stream(b"", [(1, kek, b"")], dek, base_nonce, wrap_nonce, 10),
    "pass": stream(plain, [(1, kek, b""), (2, pkek, bytes([15, 8, 1, 0]) + salt)], dek, base_nonce, wrap_nonce, 10),
}
for name, data in vectors.items():
    with open(f"crypt-v1-{name}.hex", "w") as f:
        for i in range(0, len(data), 32):
            f.write(data[i:i + 32].hex() + "\n")
