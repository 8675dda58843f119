"""JWT signing keys: creation on first use, rotation with overlap, JWKS, sign, verify.

RFC 7517 (JWK/JWKS), RFC 7515 (JWS), RFC 9068 (JWT access-token profile).

The key set is read from the key store once per instance and cached
(``key_cache_seconds``); the private key objects, the JWKS document and the
public keys are built once per key set, so the request path does no key parsing
after the first request (SPEC §9). ``cryptography`` and ``jwt`` are imported on
first use only: discovery and JWKS never pay for them.
"""

from __future__ import annotations

import base64
import json
import threading
from typing import Any, Protocol

from chalicelib.audit import log
from chalicelib.clock import Clock
from chalicelib.security.opaque import random_b62

CURRENT, NEXT, RETIRED = "current", "next", "retired"


class KeyStore(Protocol):
    def load(self) -> dict[str, Any] | None: ...
    def create(self, keyset: dict[str, Any]) -> None: ...
    def save(self, keyset: dict[str, Any]) -> None: ...


class InvalidJWT(Exception):
    """The token is not a valid JWT of ours (bad signature, claims, kid, type)."""


def _b64url_uint(n: int, length: int) -> str:
    return base64.urlsafe_b64encode(n.to_bytes(length, "big")).rstrip(b"=").decode("ascii")


def generate_key(alg: str, now: int) -> dict[str, Any]:
    """A new key entry with its private PEM and public JWK."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    curves = {"ES256": (ec.SECP256R1(), "P-256", 32), "ES384": (ec.SECP384R1(), "P-384", 48)}
    if alg not in curves:
        raise ValueError(f"unsupported signing algorithm {alg}")
    curve, crv, size = curves[alg]
    private = ec.generate_private_key(curve)
    numbers = private.public_key().public_numbers()
    kid = f"{now}-{random_b62(8)}"
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
    jwk = {"kty": "EC", "crv": crv, "x": _b64url_uint(numbers.x, size),
           "y": _b64url_uint(numbers.y, size), "use": "sig", "alg": alg, "kid": kid}
    return {"kid": kid, "alg": alg, "status": NEXT, "created_at": now, "retired_at": None,
            "private_pem": pem, "public_jwk": jwk}


class _Loaded:
    """One key set with everything derived from it, built once."""

    def __init__(self, keyset: dict[str, Any], loaded_at: int) -> None:
        self.keyset = keyset
        self.loaded_at = loaded_at
        self.by_kid = {k["kid"]: k for k in keyset["keys"]}
        current = [k for k in keyset["keys"] if k["status"] == CURRENT]
        self.current = current[0] if current else None
        self.jwks_json = json.dumps({"keys": [k["public_jwk"] for k in keyset["keys"]]},
                                    separators=(",", ":"))
        self._objects: dict[str, Any] = {}
        # Re-entrant: public_key() builds the private key under the same lock.
        self._lock = threading.RLock()

    def private_key(self, kid: str) -> Any:
        obj = self._objects.get("priv:" + kid)
        if obj is None:
            from cryptography.hazmat.primitives import serialization

            with self._lock:
                obj = serialization.load_pem_private_key(
                    self.by_kid[kid]["private_pem"].encode("ascii"), password=None)
                self._objects["priv:" + kid] = obj
        return obj

    def public_key(self, kid: str) -> Any:
        obj = self._objects.get("pub:" + kid)
        if obj is None:
            with self._lock:
                obj = self.private_key(kid).public_key()
                self._objects["pub:" + kid] = obj
        return obj


class KeyRing:
    def __init__(self, store: KeyStore, clock: Clock, *, alg: str = "ES256",
                 cache_seconds: int = 3600, retire_seconds: int = 7200) -> None:
        self.store = store
        self.clock = clock
        self.alg = alg
        self.cache_seconds = cache_seconds
        self.retire_seconds = retire_seconds
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()

    # -- loading --------------------------------------------------------------

    def _state(self, *, force: bool = False) -> _Loaded:
        loaded = self._loaded
        now = self.clock.now()
        if loaded is not None and not force and now < loaded.loaded_at + self.cache_seconds:
            return loaded
        with self._lock:
            if self._loaded is not loaded and self._loaded is not None and not force:
                return self._loaded
            keyset = self.store.load()
            if keyset is None:
                keyset = self._create_initial(now)
            self._loaded = _Loaded(keyset, now)
            return self._loaded

    def _create_initial(self, now: int) -> dict[str, Any]:
        """First use: a current key and the next one, so the next is published early."""
        from chalicelib.storage.keystore import KeySetExists

        current = generate_key(self.alg, now)
        current["status"], current["current_since"] = CURRENT, now
        keyset = {"keys": [current, generate_key(self.alg, now)]}
        try:
            self.store.create(keyset)
        except KeySetExists:
            # Another instance won the race; use its keys.
            existing = self.store.load()
            assert existing is not None
            return existing
        log.info(json.dumps({"event": "signing_keys_created", "kid": current["kid"]}))
        return keyset

    # -- publishing -----------------------------------------------------------

    def jwks_json(self) -> str:
        """RFC 7517 §5 JWK Set of current, next and recently retired keys."""
        return self._state().jwks_json

    def current_kid(self) -> str:
        state = self._state()
        assert state.current is not None
        return str(state.current["kid"])

    # -- signing and verifying -------------------------------------------------

    def sign(self, claims: dict[str, Any], *, typ: str = "JWT") -> str:
        import jwt

        state = self._state()
        key = state.current
        assert key is not None
        return jwt.encode(claims, state.private_key(key["kid"]), algorithm=key["alg"],
                          headers={"kid": key["kid"], "typ": typ})

    def verify(self, token: str, *, issuer: str, typ: str | None = None,
               audience: str | None = None, required: tuple[str, ...] = ()) -> dict[str, Any]:
        """Verify signature and registered claims with an explicit algorithm list."""
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidJWT("malformed") from exc
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidJWT("no kid")
        if typ is not None and str(header.get("typ", "")).lower() != typ.lower():
            raise InvalidJWT("wrong typ")
        state = self._state()
        if kid not in state.by_kid and self.clock.now() - state.loaded_at > 60:
            # A key rotated in after we cached the set: re-read, at most once a minute.
            state = self._state(force=True)
        entry = state.by_kid.get(kid)
        if entry is None:
            raise InvalidJWT("unknown kid")
        try:
            claims: dict[str, Any] = jwt.decode(
                token, state.public_key(kid), algorithms=[entry["alg"]], issuer=issuer,
                audience=audience,
                # pyjwt would check exp/iat/nbf against the wall clock; the
                # service's one clock checks them below instead.
                options={"require": ["exp", "iat", "iss", *required],
                         "verify_aud": audience is not None, "verify_exp": False,
                         "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError as exc:
            raise InvalidJWT(str(exc)) from exc
        if not isinstance(claims["exp"], int) or self.clock.now() >= claims["exp"]:
            raise InvalidJWT("expired")
        return claims

    # -- rotation ---------------------------------------------------------------

    def rotate(self) -> dict[str, Any]:
        """Promote next to current, retire current, add a new next, drop old retired.

        A retired key stays published for ``retire_seconds``: longer than the
        cache of any instance still signing with it plus the longest token
        lifetime, so every token it signed still verifies.
        """
        now = self.clock.now()
        state = self._state(force=True)
        keys = []
        for key in state.keyset["keys"]:
            key = dict(key)
            if key["status"] == CURRENT:
                key["status"], key["retired_at"] = RETIRED, now
            elif key["status"] == NEXT:
                # The next key was created a period ago; its age as current starts now.
                key["status"], key["current_since"] = CURRENT, now
            elif key["status"] == RETIRED and now - int(key["retired_at"]) > self.retire_seconds:
                continue
            keys.append(key)
        if not any(k["status"] == CURRENT for k in keys):
            fresh = generate_key(self.alg, now)
            fresh["status"], fresh["current_since"] = CURRENT, now
            keys.append(fresh)
        keys.append(generate_key(self.alg, now))
        keyset = {"keys": keys}
        self.store.save(keyset)
        self._loaded = _Loaded(keyset, now)
        log.info(json.dumps({"event": "signing_keys_rotated", "current": self.current_kid()}))
        return keyset

    def current_age(self) -> int:
        """Seconds since the current key became current (not since it was created:
        a promoted key was created, as the next key, one rotation earlier)."""
        state = self._state()
        assert state.current is not None
        return self.clock.now() - current_since(state.keyset)


def current_since(keyset: dict[str, Any]) -> int:
    """When the current key became current.

    Key sets written before ``current_since`` was recorded: the current key took
    over when the newest retired key was retired, or at creation if none was.
    """
    keys = keyset["keys"]
    current = next(k for k in keys if k["status"] == CURRENT)
    if current.get("current_since") is not None:
        return int(current["current_since"])
    retired = [int(k["retired_at"]) for k in keys
               if k["status"] == RETIRED and k.get("retired_at") is not None]
    return max([int(current["created_at"]), *retired])
