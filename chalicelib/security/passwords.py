"""Slow password hashing with scrypt from the standard library (SPEC §4).

Format: ``scrypt$<log2 n>$<r>$<p>$<salt b64>$<hash b64>`` so parameters can be
raised later and old hashes still verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# OWASP's scrypt minimum is N=2^17, r=8, p=1 (~128 MiB). Lambda's memory is
# paid for per MiB, so the default is 2^15 (32 MiB, ~50 ms on one core), which
# still costs an attacker far more than a fast hash. TESSERA_SCRYPT_LOG_N raises it.
DEFAULT_LOG_N = 15
_R = 8
_P = 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, log_n: int = DEFAULT_LOG_N) -> str:
    salt = secrets.token_bytes(16)
    derived = _derive(password, salt, log_n, _R, _P)
    return f"scrypt${log_n}${_R}${_P}${_b64(salt)}${_b64(derived)}"


def _derive(password: str, salt: bytes, log_n: int, r: int, p: int) -> bytes:
    n = 1 << log_n
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=n * r * 128 * 2, dklen=32)


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time check of ``password`` against an encoded hash."""
    try:
        scheme, log_n, r, p, salt, expected = encoded.split("$")
        if scheme != "scrypt":
            return False
        derived = _derive(password, base64.b64decode(salt), int(log_n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(derived, base64.b64decode(expected))


# Verified against for unknown users, so that "no such user" costs as much time
# as "wrong password" (SPEC §8: identical answers). The password behind it was
# random and thrown away; it is a constant so that importing costs nothing.
DUMMY_HASH = "scrypt$15$8$1$E22StSrM98HwKm8TgCbbig==$1Th3gwr1+fVS1oBpgTUZRcblnF3hZMSjXq6V+LRpd3Y="
