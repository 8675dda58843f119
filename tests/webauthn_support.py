"""A software authenticator for in-process tests (W3C WebAuthn L2 §6): one EC P-256
key (ES256), attestation "none" (§8.7), assertions signed over authenticator data
and the client data hash (§6.3.3), with the flags and counter a test asks for.
It plays the browser's part too (the client data, §5.8.1)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftAuthenticator:
    origin: str                         # where the "browser" runs, e.g. https://tessera.test
    rp_id: str = ""
    backup_eligible: bool = False
    counter: bool = True                # False: always reports 0 (no counter)
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    credential_id: bytes = field(default_factory=lambda: os.urandom(16))
    sign_count: int = 0
    user_handle: bytes = b""

    def __post_init__(self) -> None:
        if not self.rp_id:
            self.rp_id = self.origin.split("://", 1)[1].split(":")[0].split("/")[0]

    def cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})

    def _auth_data(self, flags: int, count: int, attested: bytes = b"") -> bytes:
        if self.backup_eligible:
            flags |= BE
        return (hashlib.sha256(self.rp_id.encode()).digest() + bytes([flags])
                + struct.pack(">I", count) + attested)

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge,
                           "origin": origin or self.origin, "crossOrigin": False}).encode()

    def create(self, options: dict[str, Any] | str, *, uv: bool = True,
               origin: str | None = None) -> dict[str, Any]:
        """``navigator.credentials.create()`` answering creation options (JSON)."""
        opts = json.loads(options) if isinstance(options, str) else options
        self.user_handle = unb64url(opts["user"]["id"])
        attested = (bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id
                    + self.cose_key())
        auth_data = self._auth_data(UP | AT | (UV if uv else 0), self.sign_count, attested)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", opts["challenge"], origin)
        return {"id": b64url(self.credential_id), "rawId": b64url(self.credential_id),
                "type": "public-key", "clientExtensionResults": {},
                "response": {"clientDataJSON": b64url(client_data),
                             "attestationObject": b64url(attestation),
                             "transports": ["internal"]}}

    def get(self, options: dict[str, Any] | str, *, uv: bool = True, origin: str | None = None,
            count: int | None = None) -> dict[str, Any]:
        """``navigator.credentials.get()`` answering request options (JSON)."""
        opts = json.loads(options) if isinstance(options, str) else options
        if count is None and self.counter:
            self.sign_count += 1
        used = count if count is not None else (self.sign_count if self.counter else 0)
        auth_data = self._auth_data(UP | (UV if uv else 0), used)
        client_data = self._client_data("webauthn.get", opts["challenge"], origin)
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(),
                                  ec.ECDSA(hashes.SHA256()))
        return {"id": b64url(self.credential_id), "rawId": b64url(self.credential_id),
                "type": "public-key", "clientExtensionResults": {},
                "response": {"clientDataJSON": b64url(client_data),
                             "authenticatorData": b64url(auth_data),
                             "signature": b64url(signature),
                             "userHandle": b64url(self.user_handle)}}
