#!/usr/bin/python3
"""tbdecrypt KEYFILE < encrypted > plain: the encrypted stream format of docs/encryption.md,
read by an implementation independent of ours (Python's `cryptography`), for the tests:
it proves the format is what the document says. Key files only (32 bytes, raw or hex).
Exit 1 on any failure, having written only authenticated chunks."""
import hashlib, hmac, struct, sys
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

def fail(msg):
    sys.stderr.write("tbdecrypt: %s\n" % msg)
    sys.exit(1)

raw = open(sys.argv[1], "rb").read()
kek = raw if len(raw) == 32 else bytes.fromhex(raw.decode().strip())
kid = hmac.new(kek, b"themis-backup key id v1", hashlib.sha256).digest()[:8]
inp, out = sys.stdin.buffer, sys.stdout.buffer
fixed = inp.read(24)
if len(fixed) != 24 or fixed[:8] != b"TBCRYPT\x01" or fixed[8] != 1:
    fail("not a TBCRYPT 1 stream")
cs = 1 << fixed[9]
base = fixed[12:24]
dek = None
for i in range(inp.read(1)[0]):
    kind = inp.read(1)
    head = kind + inp.read(8 + (20 if kind[0] == 2 else 0))
    nonce, wrapped = inp.read(12), inp.read(48)
    if kind[0] == 1 and head[1:9] == kid:
        dek = AESGCM(kek).decrypt(nonce, wrapped, fixed + head)
if dek is None:
    fail("no slot for this key")
i, buf = 0, inp.read(cs + 16 + 1)
while True:
    final = len(buf) < cs + 17
    chunk = buf if final else buf[:cs + 16]
    ctr = struct.pack("<Q", i)
    nonce = base[:4] + bytes(a ^ b for a, b in zip(base[4:], ctr))
    try:
        plain = AESGCM(dek).decrypt(nonce, chunk, fixed + ctr + bytes([final]))
    except InvalidTag:
        fail("chunk %d does not authenticate" % i)
    out.write(plain)
    if final:
        break
    buf = buf[cs + 16:] + inp.read(cs + 16)
    i += 1
