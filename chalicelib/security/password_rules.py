"""What a new password must be (NIST SP 800-63B §5.1.1.2, as the issue asks): at
least 8 characters, at most 256; not the username or the email address; and not
in a list of passwords known from breaches, checked locally against a Bloom
filter shipped with the code (``data/breached.bloom``, built by
``python -m tessera_admin.breached`` from the 30,000 most common breached
passwords of the pinned ``zxcvbn`` package): the password is never sent anywhere.
"""

from __future__ import annotations

import functools
from pathlib import Path

from chalicelib.security.bloom import BloomFilter

MIN_LENGTH = 8
MAX_LENGTH = 256
BREACHED = Path(__file__).resolve().parent / "data" / "breached.bloom"
RULE = (f"A password has {MIN_LENGTH} to {MAX_LENGTH} characters, is not your username or "
        "email address, and is not one of the passwords known from data breaches.")


@functools.cache
def breached_list() -> BloomFilter:
    return BloomFilter.from_bytes(BREACHED.read_bytes())


def problem(password: str, *, username: str = "", email: str = "") -> str | None:
    """What is wrong with ``password`` as a new password, in words; None if nothing."""
    if len(password) < MIN_LENGTH:
        return f"The password must have at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"The password must have at most {MAX_LENGTH} characters."
    lowered = password.lower()
    if lowered in {username.lower(), email.lower(), email.lower().partition("@")[0]} - {""}:
        return "The password must not be your username or email address."
    if lowered in breached_list():
        return ("This password appears in data breaches; attackers try it first. "
                "Choose another.")
    return None
