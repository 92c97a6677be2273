"""Known-answer vector for a vault slot, computed with libsodium (PyNaCl) and Python's hmac,
independently of Keyward's Rust code. Prints the Rust constants used by
`vault::header::tests::a_slot_sealed_elsewhere_opens` (crates/keyward-core/src/vault/header.rs).

    python3 -m venv /tmp/kat && /tmp/kat/bin/pip install pynacl && /tmp/kat/bin/python slot_kat.py

The slot format: key = HKDF-SHA256(salt, passphrase key || device secret || factor material,
info = "keyward/v1/slot/<kind>"); ciphertext = XChaCha20-Poly1305(key, nonce, payload JSON,
aad = "keyward/v1|<vault id>|<slot id>|<kind>").
"""

import hashlib
import hmac

import nacl.bindings as sodium


def hkdf_sha256(salt: bytes, ikm: bytes, info: bytes, length: int = 32) -> bytes:
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()  # RFC 5869, extract
    out, block = b"", b""
    for i in range(1, -(-length // 32) + 1):  # expand
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
    return out[:length]


vault_id = "0123456789abcdef0123456789abcdef"
slot_id = "a1b2c3d4e5f6"
kind = "recovery"
pass_key = bytes(range(32))
device = bytes(range(32, 64))
material = b"recovery-material"
salt = bytes(range(64, 96))
nonce = bytes(range(96, 120))
payload = b'{"identity":"AGE-SECRET-KEY-1KATKATKATKATKATKATKATKATKATKATKATKATKATKATKATKATKATKAT"}'

key = hkdf_sha256(salt, pass_key + device + material, f"keyward/v1/slot/{kind}".encode())
aad = f"keyward/v1|{vault_id}|{slot_id}|{kind}".encode()
ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(payload, aad, nonce, key)
print(f'const KAT_KEY: &str = "{key.hex()}";')
print(f'const KAT_CIPHERTEXT: &str = "{ct.hex()}";')
