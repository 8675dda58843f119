"""JWT signing keys: creation on first use, rotation with overlap, JWKS, sign, verify.

RFC 7517 (JWK/JWKS), RFC 7515 (JWS), RFC 9068 (JWT access-token profile).

One key set holds a *family* of keys per algorithm: the stage's ``signing_alg``
(ES256 by default) and RS256, which OIDC Core §15.1 requires every OP to
support. Each family has its own current, next and recently retired keys and is
rotated with the same overlap. A stored set written before RS256 existed holds
only ES256 keys: it gains the RS256 family on first need (a client registered
for RS256, the rotation job, the admin command), by a write that holds only if
nobody changed the set since it was read. Generating an RSA key takes about
0.1 s, so nothing that only needs the ES256 family ever generates one.

The key set is read from the key store once per instance and cached
(``key_cache_seconds``); the private key objects, the JWKS document and the
public keys are built once per key set, so the request path does no key parsing
after the first request (SPEC §9). ``cryptography`` and ``jwt`` are imported on
first use only: discovery and JWKS never pay for them.

Verifying and the JWKS need the public keys only. Every change to the key set is
therefore published, public half only, to a second store (``PublicKeyStore``, a
DynamoDB item): an instance that only verifies reads that, and never builds a
Secrets Manager client. The key store stays the source of truth: a key the
publication lacks (it failed, or the stage predates it) is looked up there, at
most once a minute, and published again.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.audit import log
from chalicelib.clock import Clock
from chalicelib.errors import StorageUnavailable
from chalicelib.security.opaque import random_b62

if TYPE_CHECKING:
    from chalicelib.storage.public_keys import PublishedKeys

CURRENT, NEXT, RETIRED = "current", "next", "retired"
# OIDC Core §15.1: RS256 MUST be supported; ES256 is the default (SPEC §4).
RS256 = "RS256"
DEFAULT_ALGORITHMS = ("ES256", RS256)
RSA_BITS = 2048
# A key set missing one of the ring's families (one written before RS256 existed)
# is trusted this long at most, so that a family another instance adds is
# published by every instance within a minute.
INCOMPLETE_CACHE_SECONDS = 60


def supported_algorithms(default: str) -> tuple[str, ...]:
    """The JWS algorithms a stage signs with: its default first, then RS256 and ES256."""
    return tuple(dict.fromkeys((default, *DEFAULT_ALGORITHMS)))


class KeyStore(Protocol):
    def load_versioned(self) -> tuple[dict[str, Any], str] | None: ...
    def create(self, keyset: dict[str, Any]) -> None: ...
    def replace(self, keyset: dict[str, Any], based_on: str) -> str: ...


class PublicKeyStore(Protocol):
    """Where the public half of each key set is published (``storage/public_keys.py``)."""

    def load(self) -> PublishedKeys | None: ...
    def publish(self, keys: list[dict[str, Any]], seq: int, now: int) -> bool: ...


class InvalidJWT(Exception):
    """The token is not a valid JWT of ours (bad signature, claims, kid, type)."""


def _b64url_uint(n: int, length: int) -> str:
    return base64.urlsafe_b64encode(n.to_bytes(length, "big")).rstrip(b"=").decode("ascii")


def generate_key(alg: str, now: int) -> dict[str, Any]:
    """A new key entry with its private PEM and public JWK (RFC 7518 §6.2, §6.3)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    kid = f"{now}-{random_b62(8)}"
    curves = {"ES256": (ec.SECP256R1(), "P-256", 32), "ES384": (ec.SECP384R1(), "P-384", 48)}
    private: Any
    if alg == RS256:
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        rsa_numbers = private.public_key().public_numbers()
        jwk = {"kty": "RSA", "n": _b64url_uint(rsa_numbers.n, RSA_BITS // 8),
               "e": _b64url_uint(rsa_numbers.e, (rsa_numbers.e.bit_length() + 7) // 8),
               "use": "sig", "alg": alg, "kid": kid}
    elif alg in curves:
        curve, crv, size = curves[alg]
        private = ec.generate_private_key(curve)
        numbers = private.public_key().public_numbers()
        jwk = {"kty": "EC", "crv": crv, "x": _b64url_uint(numbers.x, size),
               "y": _b64url_uint(numbers.y, size), "use": "sig", "alg": alg, "kid": kid}
    else:
        raise ValueError(f"unsupported signing algorithm {alg}")
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
    return {"kid": kid, "alg": alg, "status": NEXT, "created_at": now, "retired_at": None,
            "private_pem": pem, "public_jwk": jwk}


def new_family(alg: str, now: int) -> list[dict[str, Any]]:
    """A family's first keys: a current one and the next, so the next is published early."""
    current = generate_key(alg, now)
    current["status"], current["current_since"] = CURRENT, now
    return [current, generate_key(alg, now)]


class _Keys:
    """What verifying reads of a set of keys: each key by its kid, with its ``alg``."""

    by_kid: dict[str, dict[str, Any]]

    def alg_of(self, kid: str) -> str | None:
        entry = self.by_kid.get(kid)
        return str(entry["alg"]) if entry is not None else None


class _Loaded(_Keys):
    """One key set with everything derived from it, built once."""

    def __init__(self, keyset: dict[str, Any], loaded_at: int, version: str) -> None:
        self.keyset = keyset
        self.loaded_at = loaded_at
        self.version = version
        self.by_kid = {k["kid"]: k for k in keyset["keys"]}
        # alg -> its family's current key; a set may lack a family (written before it existed).
        self.current: dict[str, dict[str, Any]] = {}
        for key in keyset["keys"]:
            if key["status"] == CURRENT:
                self.current.setdefault(key["alg"], key)
        self.jwks_json = json.dumps({"keys": [k["public_jwk"] for k in keyset["keys"]]},
                                    separators=(",", ":"))
        self._objects: dict[str, Any] = {}
        # Re-entrant: public_key() builds the private key under the same lock.
        self._lock = threading.RLock()

    @property
    def seq(self) -> int:
        """The key set's change counter (sets written before it existed: 0)."""
        return int(self.keyset.get("seq", 0))

    def families(self) -> set[str]:
        return set(self.current)

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


class _Public(_Keys):
    """The published public keys, with the key objects built from them once."""

    def __init__(self, published: PublishedKeys, loaded_at: int) -> None:
        self.loaded_at = loaded_at
        self.seq = published.seq
        self.by_kid = {str(k["kid"]): k for k in published.keys if "kid" in k and "alg" in k}
        self.jwks_json = json.dumps({"keys": list(published.keys)}, separators=(",", ":"))
        self._objects: dict[str, Any] = {}
        self._lock = threading.Lock()

    def families(self) -> set[str]:
        return {str(k["alg"]) for k in self.by_kid.values()}

    def public_key(self, kid: str) -> Any:
        obj = self._objects.get(kid)
        if obj is None:
            import jwt

            with self._lock:
                # PyJWT builds the key from its JWK (RFC 7517 / RFC 7518 §6).
                obj = self._objects[kid] = jwt.PyJWK(self.by_kid[kid]).key
        return obj


class VerifiedTokens:
    """Tokens verified by this instance, with the kid that signed each and its
    claims, by the token and what it was verified against; at most ``size``,
    the oldest forgotten first. Never a token that failed."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._entries: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> tuple[str, dict[str, Any]] | None:
        return self._entries.get(key)

    def put(self, key: tuple[Any, ...], kid: str, claims: dict[str, Any]) -> None:
        with self._lock:
            if key not in self._entries and len(self._entries) >= self.size:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = (kid, claims)


class KeyRing:
    """``alg``: the stage's default algorithm; ``algorithms``: every family the ring
    keeps (the default's is always among them). ``public``: where each key set's
    public half is published and read back by instances that only verify."""

    def __init__(self, store: KeyStore, clock: Clock, *, alg: str = "ES256",
                 algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS,
                 cache_seconds: int = 3600, retire_seconds: int = 7200,
                 public: PublicKeyStore | None = None) -> None:
        self.store = store
        self.public = public
        self._public: _Public | None = None
        self._public_lock = threading.Lock()
        self._store_asked_at = -INCOMPLETE_CACHE_SECONDS - 1   # see _look_for
        self._verified = VerifiedTokens()
        self.clock = clock
        self.alg = alg
        self.algorithms = tuple(dict.fromkeys((alg, *algorithms)))   # the default first
        self.cache_seconds = cache_seconds
        self.retire_seconds = retire_seconds
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()

    # -- loading --------------------------------------------------------------

    def _fresh(self, loaded: _Loaded | _Public, now: int) -> bool:
        ttl = self.cache_seconds
        families = loaded.families()
        if any(alg not in families for alg in self.algorithms):
            ttl = min(ttl, INCOMPLETE_CACHE_SECONDS)
        return now < loaded.loaded_at + ttl

    def _state(self, *, force: bool = False) -> _Loaded:
        loaded = self._loaded
        now = self.clock.now()
        if loaded is not None and not force and self._fresh(loaded, now):
            return loaded
        with self._lock:
            if self._loaded is not loaded and self._loaded is not None and not force:
                return self._loaded
            stored = self.store.load_versioned()
            if stored is None:
                stored = self._create_initial(now)
            self._loaded = _Loaded(stored[0], now, stored[1])
            return self._loaded

    def _create_initial(self, now: int) -> tuple[dict[str, Any], str]:
        """First use: the default family only (RSA keys are slow to make, and
        only a client registered for RS256 needs them: ``ensure``)."""
        from chalicelib.storage.keystore import KeySetExists

        keyset: dict[str, Any] = {"seq": 1, "keys": new_family(self.alg, now)}
        try:
            self.store.create(keyset)
        except KeySetExists:
            pass   # another instance won the race; use its keys
        else:
            log.info(json.dumps({"event": "signing_keys_created",
                                 "kid": keyset["keys"][0]["kid"]}))
            self._publish(keyset)
        stored = self.store.load_versioned()
        assert stored is not None
        return stored

    def _publish(self, keyset: dict[str, Any]) -> None:
        """Publish a key set's public half. Failing to is logged, not raised: the
        key set is stored, and verifiers that miss a key look it up in the key
        store and publish it again."""
        if self.public is None:
            return
        try:
            self.public.publish([k["public_jwk"] for k in keyset["keys"]],
                                int(keyset.get("seq", 0)), self.clock.now())
        except StorageUnavailable as exc:
            log.warning(json.dumps({"event": "signing_keys_not_published", "detail": exc.detail}))
        self._public = None

    def ensure(self, alg: str) -> None:
        """Make sure the key set holds a family for ``alg``, adding it if needed.

        The write holds only if the set is still the one read (``replace``): of
        instances adding a family at once, one wins and the others use its keys.
        """
        from chalicelib.storage.keystore import KeySetChanged

        if alg not in self.algorithms:
            raise ValueError(f"unsupported signing algorithm {alg}")
        state = self._state()
        for _ in range(3):
            if alg in state.current:
                return
            now = self.clock.now()
            keyset: dict[str, Any] = {**state.keyset, "seq": state.seq + 1,
                                      "keys": [*state.keyset["keys"], *new_family(alg, now)]}
            try:
                version = self.store.replace(keyset, state.version)
            except KeySetChanged:
                state = self._state(force=True)
                continue
            log.info(json.dumps({"event": "signing_keys_created", "alg": alg,
                                 "kid": keyset["keys"][-2]["kid"]}))
            state = self._loaded = _Loaded(keyset, now, version)
            self._publish(keyset)
        if alg not in state.current:
            raise RuntimeError(f"could not add the {alg} signing keys")

    # -- publishing -----------------------------------------------------------

    def jwks_json(self) -> str:
        """RFC 7517 §5 JWK Set of current, next and recently retired keys of every family."""
        return self._verifier().jwks_json

    def public_keys_wanted(self) -> bool:
        """Would verifying read the published keys first? True on an instance that
        has not signed and holds no fresh copy of them: a caller about to read
        DynamoDB anyway may read them in its own round trip (``accept_published``)."""
        if self.public is None or self._loaded is not None:
            return False
        public = self._public
        return public is None or not self._fresh(public, self.clock.now())

    def accept_published(self, published: PublishedKeys | None) -> None:
        """The published keys, read by a caller in its own round trip; nothing
        published: verifying reads the key set (``_verifier``)."""
        if published is not None:
            with self._public_lock:
                self._public = _Public(published, self.clock.now())

    def _verifier(self, *, force: bool = False) -> _Loaded | _Public:
        """What verifying needs: the key set if this instance has read it (it signs:
        its Secrets Manager client is built), else the published public keys, read
        once and cached like the set. Nothing published yet: the key set itself,
        which is then published."""
        if self.public is None or self._loaded is not None:
            return self._state(force=force)
        now = self.clock.now()
        public = self._public
        if public is not None and not force and self._fresh(public, now):
            return public
        with self._public_lock:
            if self._public is not public and self._public is not None and not force:
                return self._public
            published = self.public.load()
            if published is not None:
                self._public = _Public(published, now)
                return self._public
        state = self._state(force=force)
        self._publish(state.keyset)
        return state

    def current_kid(self, alg: str | None = None) -> str:
        return str(self._current(alg or self.alg)[1]["kid"])

    def _current(self, alg: str) -> tuple[_Loaded, dict[str, Any]]:
        """The key set and the current key of ``alg``'s family in it."""
        state = self._state()
        key = state.current.get(alg)
        if key is None:
            # A set from before this family existed: add it now (the one slow request).
            self.ensure(alg)
            state = self._state()
            key = state.current.get(alg)
        assert key is not None
        return state, key

    # -- signing and verifying -------------------------------------------------

    def sign(self, claims: dict[str, Any], *, typ: str = "JWT", alg: str | None = None) -> str:
        """Sign with the current key of ``alg``'s family (default: the stage's)."""
        import jwt

        state, key = self._current(alg or self.alg)
        return jwt.encode(claims, state.private_key(key["kid"]), algorithm=key["alg"],
                          headers={"kid": key["kid"], "typ": typ})

    def verify(self, token: str, *, issuer: str, typ: str | None = None,
               audience: str | None = None, required: tuple[str, ...] = ()) -> dict[str, Any]:
        """Verify signature and registered claims. The algorithm list is the one
        the key named by ``kid`` was made for, never the token header's ``alg``
        (RFC 8725 §3.1), so an RS256 key never verifies an HS256 forgery.

        A client presents one access token many times in its life. A token
        verified once is remembered (``VerifiedTokens``) with what it was checked
        against, and at its next presentation only what can change is checked
        again: that the key that signed it is still published, and its expiry
        against the clock. The signature and the other claims cannot change."""
        checked = (token, issuer, typ, audience, required)
        remembered = self._verified.get(checked)
        if remembered is not None:
            kid, claims = remembered
            if self._verifier().alg_of(kid) is not None:
                if self.clock.now() >= claims["exp"]:
                    raise InvalidJWT("expired")
                return dict(claims)
        claims, kid = self._verify(token, issuer=issuer, typ=typ, audience=audience,
                                   required=required)
        self._verified.put(checked, kid, claims)
        return dict(claims)

    def _verify(self, token: str, *, issuer: str, typ: str | None, audience: str | None,
                required: tuple[str, ...]) -> tuple[dict[str, Any], str]:
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
        view = self._verifier()
        if view.alg_of(kid) is None:
            view = self._look_for(kid, view)
        alg = view.alg_of(kid)
        if alg is None:
            raise InvalidJWT("unknown kid")
        try:
            claims: dict[str, Any] = jwt.decode(
                token, view.public_key(kid), algorithms=[alg], issuer=issuer,
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
        return claims, kid

    def _look_for(self, kid: str, view: _Loaded | _Public) -> _Loaded | _Public:
        """A kid the cached keys lack: a key rotated in since they were read. They
        are re-read, at most once a minute; and if the publication lacks it too (a
        publication that failed), the key store is asked, at most once a minute,
        and what it holds is published again."""
        now = self.clock.now()
        if now - view.loaded_at > 60:
            view = self._verifier(force=True)
        if (view.alg_of(kid) is None and isinstance(view, _Public)
                and now - self._store_asked_at > 60):
            self._store_asked_at = now
            state = self._state(force=True)
            if state.seq > view.seq:
                self._publish(state.keyset)
            view = state
        return view

    # -- rotation ---------------------------------------------------------------

    def rotate(self) -> dict[str, Any]:
        """Rotate every family: promote next to current, retire current, add a new
        next, drop old retired keys; a family the set lacks is added.

        A retired key stays published for ``retire_seconds``: longer than the
        cache of any instance still signing with it plus the longest token
        lifetime, so every token it signed still verifies. The write holds only
        if nobody changed the set since it was read; on a lost race the rotation
        starts again from what the winner wrote.
        """
        from chalicelib.storage.keystore import KeySetChanged

        for _ in range(3):
            state = self._state(force=True)
            keyset = self._rotated(state.keyset, self.clock.now())
            try:
                version = self.store.replace(keyset, state.version)
            except KeySetChanged:
                continue
            self._loaded = _Loaded(keyset, self.clock.now(), version)
            self._publish(keyset)
            log.info(json.dumps({"event": "signing_keys_rotated",
                                 "current": {alg: self.current_kid(alg)
                                             for alg in self.algorithms}}))
            return keyset
        raise RuntimeError("the signing keys changed during three rotations in a row")

    def _rotated(self, old: dict[str, Any], now: int) -> dict[str, Any]:
        keys: list[dict[str, Any]] = []
        for key in old["keys"]:
            key = dict(key)
            if key["status"] == CURRENT:
                key["status"], key["retired_at"] = RETIRED, now
            elif key["status"] == NEXT:
                # The next key was created a period ago; its age as current starts now.
                key["status"], key["current_since"] = CURRENT, now
            elif key["status"] == RETIRED and now - int(key["retired_at"]) > self.retire_seconds:
                continue
            keys.append(key)
        families = dict.fromkeys([*self.algorithms, *(k["alg"] for k in keys)])
        for alg in families:
            if not any(k["status"] == CURRENT and k["alg"] == alg for k in keys):
                if alg not in self.algorithms:
                    continue    # a family the stage no longer keeps: only its retired keys stay
                fresh = generate_key(alg, now)
                fresh["status"], fresh["current_since"] = CURRENT, now
                keys.append(fresh)
            keys.append(generate_key(alg, now))
        # Everything else of the set (the sealing keys) is carried over as it is.
        return {**old, "seq": int(old.get("seq", 0)) + 1, "keys": keys}

    # -- sealing ------------------------------------------------------------------

    def seal_keys(self) -> dict[str, bytes]:
        """The keys that seal stored secrets (TOTP secrets, SPEC §11): id -> 32
        random bytes, kept in the key set beside the signing keys (never published,
        never rotated out: a sealed value names its key). The first need adds one,
        with the same compare-and-swap as ``ensure``."""
        from chalicelib.storage.keystore import KeySetChanged

        state = self._state()
        for _ in range(3):
            stored = state.keyset.get("seal_keys") or []
            if stored:
                return {str(k["id"]): base64.b64decode(k["key"]) for k in stored}
            fresh = {"id": "s1", "key": base64.b64encode(os.urandom(32)).decode("ascii"),
                     "created_at": self.clock.now()}
            keyset = {**state.keyset, "seq": state.seq + 1, "seal_keys": [fresh]}
            try:
                version = self.store.replace(keyset, state.version)
            except KeySetChanged:
                state = self._state(force=True)
                continue
            log.info(json.dumps({"event": "seal_key_created", "id": fresh["id"]}))
            state = self._loaded = _Loaded(keyset, self.clock.now(), version)
        raise RuntimeError("could not add a sealing key")

    def current_age(self) -> int:
        """Seconds since the default family's current key became current (not
        since it was created: a promoted key was created, as the next key, one
        rotation earlier)."""
        return self.clock.now() - current_since(self._state().keyset, self.alg)


def current_since(keyset: dict[str, Any], alg: str | None = None) -> int:
    """When the current key (of ``alg``'s family, if given) became current.

    Key sets written before ``current_since`` was recorded: the current key took
    over when the newest retired key was retired, or at creation if none was.
    """
    keys = [k for k in keyset["keys"] if alg is None or k["alg"] == alg]
    current = next(k for k in keys if k["status"] == CURRENT)
    if current.get("current_since") is not None:
        return int(current["current_since"])
    retired = [int(k["retired_at"]) for k in keys
               if k["status"] == RETIRED and k.get("retired_at") is not None]
    return max([int(current["created_at"]), *retired])
