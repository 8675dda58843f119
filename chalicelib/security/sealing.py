"""Secrets stored so that a copy of the table alone does not reveal them (SPEC §4,
§11): AES-GCM (``cryptography``) under a key derived with HKDF (RFC 5869) from a
sealing key of the key set, per purpose, with the owner's id as associated data,
so a sealed value moved to another user's item, or to another purpose, does not
open. A sealed value names its key: ``<key id>.<base64url(nonce | ciphertext)>``.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Mapping

NONCE_LEN = 12


class Sealer:
    """``keys``: called on first need, returns key id -> 32 bytes (the first sealing
    key seals; any opens what it sealed)."""

    def __init__(self, keys: Callable[[], Mapping[str, bytes]], purpose: str) -> None:
        self._keys = keys
        self.purpose = purpose.encode("ascii")

    def _aead(self, key: bytes):  # type: ignore[no-untyped-def]
        # Imported here: only the pages and calls that handle second factors seal.
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                       info=b"tessera seal v1 " + self.purpose).derive(key)
        return AESGCM(derived)

    def seal(self, plaintext: str, owner: str) -> str:
        keys = self._keys()
        key_id = sorted(keys)[-1]
        nonce = os.urandom(NONCE_LEN)
        sealed = self._aead(keys[key_id]).encrypt(nonce, plaintext.encode("utf-8"),
                                                  owner.encode("utf-8"))
        return key_id + "." + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str, owner: str) -> str | None:
        """The plaintext, or None when the value does not open (another owner, a
        changed value, an unknown key)."""
        from cryptography.exceptions import InvalidTag

        key_id, _, body = sealed.partition(".")
        key = self._keys().get(key_id)
        if key is None:
            return None
        try:
            raw = base64.urlsafe_b64decode(body.encode("ascii"))
            plain = self._aead(key).decrypt(raw[:NONCE_LEN], raw[NONCE_LEN:],
                                            owner.encode("utf-8"))
            return plain.decode("utf-8")
        except (InvalidTag, ValueError, binascii.Error, UnicodeError):
            return None
