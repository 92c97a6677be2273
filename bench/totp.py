"""RFC 6238 codes, as an authenticator app computes them (for the benchmark drivers)."""

import base64
import hashlib
import hmac
import struct


def totp(secret_b32, t):
    """The 6-digit code for base32 `secret_b32` at Unix time `t`."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", t // 30), hashlib.sha1).digest()
    o = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[o : o + 4])[0] & 0x7FFFFFFF) % 1000000)
