"""Slow password hashing with scrypt from the standard library (SPEC §4).

Format: ``scrypt$<log2 n>$<r>$<p>$<salt b64>$<hash b64>``: every hash carries its
own parameters, so it verifies whatever the work factor is now, and the factor can
be raised later while old hashes still verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import lru_cache

from chalicelib.config import SCRYPT_LOG_N_FLOOR

# OWASP's scrypt minimum is N=2^17, r=8, p=1 (~128 MiB). Lambda's memory is
# paid for per MiB, so the production factor is 2^15 (32 MiB, ~50 ms on one core),
# which still costs an attacker far more than a fast hash. The work factor of new
# hashes is the setting ``scrypt_log_n`` (TESSERA_SCRYPT_LOG_N): a stage may raise
# it; only the tests and the local runner may lower it (config.Settings.from_env).
_R = 8
_P = 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, log_n: int) -> str:
    """A new hash at work factor 2^``log_n`` (the caller passes ``settings.scrypt_log_n``)."""
    salt = secrets.token_bytes(16)
    derived = _derive(password, salt, log_n, _R, _P)
    return f"scrypt${log_n}${_R}${_P}${_b64(salt)}${_b64(derived)}"


def _derive(password: str, salt: bytes, log_n: int, r: int, p: int) -> bytes:
    n = 1 << log_n
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=n * r * 128 * 2, dklen=32)


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time check of ``password`` against an encoded hash, at the hash's own
    parameters (not the current setting)."""
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


@lru_cache(maxsize=4)
def dummy_hash(log_n: int) -> str:
    """A hash at the current work factor for unknown users: ``DUMMY_HASH`` at the
    production factor, else one made once per process (a lowered factor: tests)."""
    if log_n == SCRYPT_LOG_N_FLOOR:
        return DUMMY_HASH
    return hash_password(secrets.token_urlsafe(16), log_n=log_n)
