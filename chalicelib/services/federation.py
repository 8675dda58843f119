"""CI job tokens by federation (SPEC §6, RFC 8693): a CI job's own OIDC ID token,
verified against its issuer's published keys and a role's trust policies, is
exchanged for a 1 h role token.

Three parts, each built from its collaborators:

* ``IssuerKeys``: per instance, per issuer, the keys of the issuer's JWKS, found
  through its discovery document (OIDC Discovery 1.0 §4). HTTPS only (plain HTTP
  only for a loopback issuer where ``federation_allow_http`` is on), a timeout
  that never runs past the invocation's deadline, a size limit, no redirects.
  Keys are kept ``federation_jwks_cache_seconds``; a failed fetch is remembered
  ``federation_negative_cache_seconds`` (a flood of bad tokens costs the issuer
  one request per period), and a key id it does not know makes it refetch at
  most once per that period (key rotation at the issuer).
* ``JobTokenVerifier``: the signature (PyJWT, an explicit algorithm list), the
  registered claims with 60 s leeway against the service's clock, and the trust
  policies. Only an issuer that a trust policy of the requested role names is
  ever fetched (the token's unverified ``iss`` only selects the policies), so a
  token cannot make the service call a URL of its choosing.
* ``Federation``: the exchange itself, one read (the role and its owner, in the
  token endpoint's BatchGetItem) and one conditional write (the replay guard on
  ``jti``) once the issuer's keys are cached (SPEC §9).

A job token without ``jti`` is refused (``invalid_grant`` "jti required"): the
replay guard needs it, and GitHub Actions and GitLab CI always send one.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from chalicelib import deadline
from chalicelib.audit import log
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import InvalidGrant, InvalidScope, InvalidTarget, StorageUnavailable
from chalicelib.models import User
from chalicelib.security.outbound import LOCALHOST, address_problem, host_problem
from chalicelib.services.role_credentials import (
    effective_permissions,
    granted_permissions,
    scopes_of,
)
from chalicelib.services.tokens import TokenIssuer
from chalicelib.storage.dynamo import Item
from chalicelib.storage.identities import UsersRepo, user_from_item
from chalicelib.storage.replay import ReplayRepo
from chalicelib.storage.roles import Role, RolesRepo, TrustPolicy, owner_id_of, role_from_item

if TYPE_CHECKING:
    from jwt import PyJWT

# SPEC §6: exp, nbf and iat are checked with 60 s leeway.
LEEWAY = 60
# JWS algorithms accepted from an issuer (RFC 7518 §3), with the key type (and
# curve) each needs. GitHub Actions and GitLab CI sign with RS256.
ALGORITHMS: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None), "PS256": ("RSA", None),
    "ES256": ("EC", "P-256"), "ES384": ("EC", "P-384"),
}
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "sub")
MIN_RSA_BITS = 2048
MAX_JTI = 256
MAX_ISSUERS = 100         # issuers kept per instance; past it the cache starts over
DISCOVERY_PATH = "/.well-known/openid-configuration"

ROLE_AUDIENCE_PREFIX = "urn:tessera:role:"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
# One answer for every verification failure: which check failed would tell an
# attacker what to change. The audit line has the precise reason.
NOT_ACCEPTED = "The subject token is not accepted for this role"
LIFETIME = ("The subject token lives too long: exp - iat must be at most {} seconds")
JTI_REQUIRED = "jti required: the subject token must carry a jti claim (replay protection)"

# (url, timeout in seconds, max bytes) -> the body; FetchFailed on any failure.
Fetch = Callable[[str, float, int], bytes]


class FetchFailed(Exception):
    """An issuer document could not be fetched (network, status, size, time)."""


class Refused(Exception):
    """A job token not accepted. ``reason`` is for the audit log; ``public`` is what
    the client is told."""

    def __init__(self, reason: str, public: str = NOT_ACCEPTED) -> None:
        super().__init__(reason)
        self.reason = reason
        self.public = public
        # The token's claims as parsed, unverified, for the refusal's log line (None
        # where it did not parse): the token is not parsed a second time to log them.
        self.claimed: dict[str, Any] | None = None


# --------------------------------------------------------------------------
# fetching issuer documents
# --------------------------------------------------------------------------

def url_problem(url: str, *, allow_http: bool, issuer: bool = False) -> str | None:
    """Why ``url`` may not be fetched from an issuer, or None when it may.

    HTTPS to a public host (``outbound.host_problem``: a DNS name, or a public
    address in its canonical spelling); loopback hosts, and plain HTTP to them,
    only where ``allow_http`` (the local stage). No credentials in the URL; an
    issuer has no query or fragment (OIDC Discovery 1.0 §3 "issuer"). Where a
    name leads is checked when it is resolved (``HttpGet``).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError:
        return "malformed URL"
    if not host:
        return "no host"
    if parts.username is not None or parts.password is not None:
        return "credentials in the URL"
    if parts.fragment or (issuer and parts.query):
        return "a query or fragment"
    if parts.scheme != "https" and not (parts.scheme == "http" and allow_http):
        return "not HTTPS" if not allow_http else "not HTTPS, nor HTTP on a loopback host"
    problem = host_problem(host, allow_loopback=allow_http)
    if problem:
        return problem
    if parts.scheme == "http" and not _loopback_host(host):
        return "not HTTPS, nor HTTP on a loopback host"
    return None


def _loopback_host(host: str) -> bool:
    """A loopback name or address literal (the only hosts plain HTTP may reach)."""
    if host == LOCALHOST or host.endswith("." + LOCALHOST):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# getaddrinfo's signature, injectable (tests resolve names to chosen addresses).
Resolve = Callable[..., list[tuple[Any, Any, Any, Any, Any]]]


def _open(scheme: str, host: str, port: int, sockaddr: tuple[Any, ...], family: int,
          timeout: float) -> http.client.HTTPConnection:
    """A connection to ``sockaddr``, the address that was checked, whatever ``host``
    would resolve to now (no second resolution: DNS rebinding cannot move it).
    The ``Host`` header, TLS SNI and certificate check use the host name."""

    def connect() -> socket.socket:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
        except OSError:
            sock.close()
            raise
        return sock

    if scheme == "https":
        class Pinned(http.client.HTTPSConnection):
            def connect(self) -> None:
                context = ssl.create_default_context()
                self.sock = context.wrap_socket(connect(), server_hostname=host)

        return Pinned(host, port, timeout=timeout)

    class PinnedHttp(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = connect()

    return PinnedHttp(host, port, timeout=timeout)


class HttpGet:
    """GET an issuer document (the ``Fetch`` of production): the URL's rules
    (``url_problem``), then its host resolved once and refused if ANY of its
    addresses is not public (``outbound.address_problem``; loopback only where
    ``allow_loopback``, and plain HTTP only to loopback), then a connection to an
    address so checked. No redirects (a 3xx is a failure), no proxy, at most
    ``max_bytes``, all of it within ``timeout`` seconds."""

    def __init__(self, *, allow_loopback: bool = False,
                 resolve: Resolve = socket.getaddrinfo) -> None:
        self.allow_loopback = allow_loopback
        self.resolve = resolve

    def __call__(self, url: str, timeout: float, max_bytes: int) -> bytes:
        problem = url_problem(url, allow_http=self.allow_loopback)
        if problem:
            raise FetchFailed(f"URL refused: {problem}")
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = self._addresses(host, port, plain_http=parts.scheme == "http")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        started = time.monotonic()
        last: Exception | None = None
        for family, sockaddr in addresses:
            left = timeout - (time.monotonic() - started)
            if left <= 0:
                break
            conn = _open(parts.scheme, host, port, sockaddr, family, left)
            try:
                return self._read(conn, path, started, timeout, max_bytes)
            except FetchFailed:
                raise
            except (OSError, ValueError, http.client.HTTPException) as exc:
                last = exc     # TLS, timeouts, resets: the next checked address, if any
                if not isinstance(exc, (ConnectionRefusedError, socket.timeout)):
                    break
            finally:
                conn.close()
        raise FetchFailed(type(last).__name__ if last else "timed out")

    def _addresses(self, host: str, port: int, *,
                   plain_http: bool) -> list[tuple[int, tuple[Any, ...]]]:
        try:
            found = self.resolve(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise FetchFailed(f"{host} does not resolve") from exc
        addresses: list[tuple[int, tuple[Any, ...]]] = []
        for family, _type, _proto, _name, sockaddr in found:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            address = ipaddress.ip_address(sockaddr[0].split("%")[0])
            problem = address_problem(address, allow_loopback=self.allow_loopback)
            if problem is None and plain_http and not address.is_loopback \
                    and not _maps_loopback(address):
                problem = f"{address} is not loopback (plain HTTP)"
            if problem:
                # Any one is enough: which address a client picks is not ours to say.
                raise FetchFailed(f"{host} resolves to {problem}")
            addresses.append((family, tuple(sockaddr)))
        if not addresses:
            raise FetchFailed(f"{host} has no address")
        return addresses

    @staticmethod
    def _read(conn: http.client.HTTPConnection, path: str, started: float, timeout: float,
              max_bytes: int) -> bytes:
        conn.request("GET", path, headers={"Accept": "application/json",
                                           "User-Agent": "tessera-federation"})
        response = conn.getresponse()
        if response.status != 200:
            raise FetchFailed(f"HTTP {response.status}")
        chunks: list[bytes] = []
        size = 0
        while True:
            if time.monotonic() - started > timeout:
                raise FetchFailed("timed out")
            chunk = response.read(min(16384, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise FetchFailed(f"larger than {max_bytes} bytes")
        return b"".join(chunks)


def _maps_loopback(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped is not None and mapped.is_loopback


def http_get(url: str, timeout: float, max_bytes: int) -> bytes:
    """``HttpGet`` with the production rule: public hosts only."""
    return HttpGet()(url, timeout, max_bytes)


# --------------------------------------------------------------------------
# the keys of issuers, cached per instance
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class IssuerKey:
    """One public key of an issuer's JWKS: the key object, and what it may verify."""

    key: Any              # a ``cryptography`` public key
    kty: str
    crv: str | None
    alg: str | None       # the JWK's ``alg``, if it names one

    def verifies(self, alg: str) -> bool:
        """RFC 7517 §4.4: a key that names its algorithm is used with no other; a
        key that does not is used with algorithms of its type (and curve)."""
        kty, crv = ALGORITHMS[alg]
        return self.alg in (None, alg) and self.kty == kty and (crv is None or self.crv == crv)


@dataclass
class _Keys:
    """An issuer's signing keys by kid, and when they were fetched."""

    by_kid: dict[str | None, IssuerKey]
    fetched_at: int
    checked_at: int       # the last fetch, or refetch for an unknown kid

    def find(self, kid: str | None) -> IssuerKey | None:
        if kid is None:
            # RFC 7515 §4.1.4: no kid is unambiguous only if there is one key.
            return next(iter(self.by_kid.values())) if len(self.by_kid) == 1 else None
        return self.by_kid.get(kid)


def _parse_jwks(document: Any) -> dict[str | None, IssuerKey]:
    """The usable signing keys of a JWK Set (RFC 7517 §5); others are skipped."""
    import jwt

    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise FetchFailed("the JWKS has no keys array")
    found: dict[str | None, IssuerKey] = {}
    for jwk in keys:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        if jwk.get("kty") not in ("RSA", "EC") or jwk.get("alg", "RS256") not in ALGORITHMS:
            continue
        try:
            key = jwt.PyJWK(jwk).key
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue
        if jwk["kty"] == "RSA" and key.key_size < MIN_RSA_BITS:
            continue
        kid, crv, alg = jwk.get("kid"), jwk.get("crv"), jwk.get("alg")
        found[kid if isinstance(kid, str) else None] = IssuerKey(
            key, jwk["kty"], crv if isinstance(crv, str) else None, alg)
    if not found:
        raise FetchFailed("the JWKS holds no usable signing key")
    return found


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        parsed = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FetchFailed(f"{what} is not JSON") from exc
    if not isinstance(parsed, dict):
        raise FetchFailed(f"{what} is not a JSON object")
    return parsed


class IssuerKeys:
    """The signing keys of external OIDC issuers, per instance (see the module doc)."""

    def __init__(self, fetch: Fetch, clock: Clock, settings: Settings) -> None:
        self.fetch = fetch
        self.clock = clock
        self.settings = settings
        self._keys: dict[str, _Keys] = {}
        self._failed: dict[str, tuple[int, str]] = {}    # issuer -> (until, reason)
        self._lock = threading.Lock()

    def key(self, issuer: str, kid: str | None) -> IssuerKey:
        """The issuer's key ``kid``; ``Refused`` when there is none."""
        s, now = self.settings, self.clock.now()
        entry = self._keys.get(issuer)
        if entry is not None and now < entry.fetched_at + s.federation_jwks_cache_seconds:
            found = entry.find(kid)
            if found is not None:
                return found
            if now < entry.checked_at + s.federation_negative_cache_seconds:
                raise Refused(f"unknown kid {kid!r:.80} (refetched less than "
                              f"{s.federation_negative_cache_seconds} s ago)")
            entry.checked_at = now      # one refetch per period, even if it fails
        entry = self._load(issuer, now)
        found = entry.find(kid)
        if found is None:
            raise Refused(f"unknown kid {kid!r:.80}")
        return found

    def remember(self, issuer: str, jwks: Mapping[str, Any]) -> None:
        """Install an issuer's JWK Set as if just fetched (the benchmark's warm cache)."""
        now = self.clock.now()
        self._keys[issuer] = _Keys(_parse_jwks(dict(jwks)), now, now)
        self._failed.pop(issuer, None)

    def _load(self, issuer: str, now: int) -> _Keys:
        with self._lock:
            # Another thread may have fetched while this one waited for the lock.
            entry = self._keys.get(issuer)
            if entry is not None and entry.fetched_at >= now:
                return entry
            failed = self._failed.get(issuer)
            if failed is not None and now < failed[0]:
                raise Refused(f"issuer unavailable (cached failure: {failed[1]})")
            try:
                by_kid = self._fetch_keys(issuer)
            except FetchFailed as exc:
                self._failed[issuer] = (now + self.settings.federation_negative_cache_seconds,
                                        str(exc))
                log.warning(json.dumps({"event": "federation_issuer_unavailable",
                                        "issuer": issuer, "reason": str(exc)}))
                raise Refused(f"issuer unavailable: {exc}") from exc
            if len(self._keys) >= MAX_ISSUERS and issuer not in self._keys:
                self._keys.clear()
            self._failed.pop(issuer, None)
            entry = self._keys[issuer] = _Keys(by_kid, now, now)
            return entry

    def _fetch_keys(self, issuer: str) -> dict[str | None, IssuerKey]:
        allow_http = self.settings.federation_allow_http
        problem = url_problem(issuer, allow_http=allow_http, issuer=True)
        if problem:
            raise FetchFailed(f"issuer URL refused: {problem}")
        # OIDC Discovery 1.0 §4: a terminating "/" of the issuer is removed first.
        discovery = _json_object(self._get(issuer.rstrip("/") + DISCOVERY_PATH), "discovery")
        # §4.3: "The issuer value returned MUST be identical to the Issuer URL".
        if discovery.get("issuer") != issuer:
            raise FetchFailed("discovery names another issuer")
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise FetchFailed("discovery has no jwks_uri")
        problem = url_problem(jwks_uri, allow_http=allow_http)
        if problem:
            raise FetchFailed(f"jwks_uri refused: {problem}")
        return _parse_jwks(_json_object(self._get(jwks_uri), "JWKS"))

    def _get(self, url: str) -> bytes:
        s = self.settings
        timeout_ms = float(s.federation_fetch_timeout_ms)
        left = deadline.remaining_ms()
        if left is not None:
            timeout_ms = min(timeout_ms, left - s.deadline_reserve_ms)
            if timeout_ms <= 0:
                # Not the issuer's fault: answer 503 with Retry-After, remember nothing.
                raise StorageUnavailable(detail=f"no time left to fetch {url}")
        return self.fetch(url, timeout_ms / 1000, s.federation_max_document_bytes)


# --------------------------------------------------------------------------
# verifying a job token against a role's trust policies
# --------------------------------------------------------------------------

def _claim_text(value: Any) -> str | None:
    """A claim's value as the string a trust policy compares: strings as they are,
    numbers and booleans as JSON writes them; anything else never matches."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    return None


def subject_matches(pattern: str, subject: str) -> bool:
    """SPEC §6: exact, or a prefix when the pattern ends with ``*``."""
    if pattern.endswith("*"):
        return subject.startswith(pattern[:-1])
    return subject == pattern


def policy_matches(policy: TrustPolicy, claims: Mapping[str, Any]) -> bool:
    """Issuer exact; the token's ``aud`` (a string or a list) contains the policy's
    audience; the subject matches; every listed claim is equal."""
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    subject = claims.get("sub")
    return (claims.get("iss") == policy.issuer and policy.audience in audiences
            and isinstance(subject, str) and subject_matches(policy.subject, subject)
            and all(_claim_text(claims.get(name)) == value
                    for name, value in policy.claims.items()))


def _numeric(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Refused(f"{name} is not a NumericDate")
    return float(value)


@dataclass(frozen=True)
class JobToken:
    """A verified job token and the trust policy it matched."""

    issuer: str
    subject: str
    jti: str
    expires_at: int
    policy: TrustPolicy
    claims: dict[str, Any]


def job_token_jwt() -> PyJWT:
    """PyJWT as the verifier uses it: the registered claims it requires; exp, iat and nbf
    left to the service's one clock (pyjwt would check them against the wall clock)."""
    import jwt

    return jwt.PyJWT(options={"require": list(REQUIRED_CLAIMS), "verify_exp": False,
                              "verify_iat": False, "verify_nbf": False})


class JobTokenVerifier:
    def __init__(self, keys: IssuerKeys, clock: Clock, max_lifetime: int = 3600,
                 jwt_api: PyJWT | None = None) -> None:
        self.keys = keys
        self.clock = clock
        self.max_lifetime = max_lifetime      # settings.federation_max_token_seconds
        self._jwt = jwt_api                   # job_token_jwt(), made at the first token

    def verify(self, token: str, trust: Iterable[TrustPolicy]) -> JobToken:
        import jwt

        if self._jwt is None:
            self._jwt = job_token_jwt()
        api = self._jwt
        try:
            # The token is parsed once (RFC 7515 §5.2): PyJWT splits it and decodes its
            # header, claims and signature here; the signature is checked below over these
            # same parts, once the unverified iss has picked the trust policies (and so the
            # issuer whose key to use). The required claims wait for the signature, as before.
            parsed = api.decode_complete(token, options={"verify_signature": False, "require": []})
        except jwt.PyJWTError as exc:
            raise Refused(f"malformed token: {exc}") from exc
        try:
            return self._verified(api, token, parsed, trust)
        except Refused as exc:
            exc.claimed = parsed["payload"]
            raise

    def _verified(self, api: PyJWT, token: str, parsed: dict[str, Any],
                  trust: Iterable[TrustPolicy]) -> JobToken:
        import jwt

        header, unverified = parsed["header"], parsed["payload"]
        issuer = unverified.get("iss")
        candidates = sorted((p for p in trust if p.issuer == issuer), key=lambda p: p.id)
        if not isinstance(issuer, str) or not candidates:
            raise Refused("issuer not trusted by the role")
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS:
            raise Refused(f"algorithm {alg!r:.40} not accepted")
        if kid is not None and not isinstance(kid, str):
            raise Refused("kid is not a string")
        jwk = self.keys.key(issuer, kid)
        if not jwk.verifies(alg):
            raise Refused(f"key {kid!r:.80} is not a {alg} key")
        try:
            # What jwt.decode(token, key, algorithms=[alg], ...) does after its parse, in its
            # order: the signature over the signing input (RFC 7515 §5.2 step 8), then the
            # claims (iss, aud, the required ones, sub and jti as strings: RFC 7519 §7.2).
            algorithm = jwt.get_algorithm_by_name(alg)
            signing_input = token.rsplit(".", 1)[0].encode("utf-8")
            if not algorithm.verify(signing_input, algorithm.prepare_key(jwk.key), parsed["signature"]):
                raise jwt.InvalidSignatureError("Signature verification failed")
            claims: dict[str, Any] = unverified
            # PyJWT's own claim checks (pinned in requirements.txt; the federation tests hold
            # the reasons), on the claims parsed above.
            api._validate_claims(claims, api.options, issuer=issuer,
                                 audience=[p.audience for p in candidates])
        except jwt.InvalidAudienceError as exc:
            raise Refused("audience not trusted") from exc
        except jwt.PyJWTError as exc:
            raise Refused(f"signature or claims: {exc}") from exc
        now = self.clock.now()
        expires_at = _numeric(claims, "exp")
        if now >= expires_at + LEEWAY:
            raise Refused("expired")
        issued_at = _numeric(claims, "iat")
        if issued_at > now + LEEWAY:
            raise Refused("issued in the future")
        # A job token is the job's, for minutes: one that lives longer (a leaked
        # token stays a key) is refused whatever its issuer allows.
        if expires_at - issued_at > self.max_lifetime:
            raise Refused(f"lifetime {expires_at - issued_at:.0f} s over {self.max_lifetime} s",
                          public=LIFETIME.format(self.max_lifetime))
        if "nbf" in claims and _numeric(claims, "nbf") > now + LEEWAY:
            raise Refused("not yet valid (nbf)")
        policy = next((p for p in candidates if policy_matches(p, claims)), None)
        if policy is None:
            raise Refused("no trust policy matches the subject, audience and claims")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise Refused("no jti", public=JTI_REQUIRED)
        if len(jti) > MAX_JTI:
            raise Refused("jti too long")
        return JobToken(issuer=issuer, subject=str(claims["sub"]), jti=jti,
                        expires_at=int(expires_at), policy=policy, claims=claims)


# --------------------------------------------------------------------------
# the exchange
# --------------------------------------------------------------------------

def role_name_of(audience: str) -> str | None:
    """The role named by ``urn:tessera:role:<name>``, if well formed."""
    if not audience.startswith(ROLE_AUDIENCE_PREFIX):
        return None
    name = audience[len(ROLE_AUDIENCE_PREFIX):]
    return name if owner_id_of(name) is not None else None


def _short(value: Any) -> str | None:
    """An unverified claim, fit for a log line."""
    return value[:256] if isinstance(value, str) else None


class Federation:
    def __init__(self, verifier: JobTokenVerifier, replay: ReplayRepo, roles: RolesRepo,
                 users: UsersRepo, issuer: TokenIssuer, clock: Clock) -> None:
        self.verifier = verifier
        self.replay = replay
        self.roles = roles
        self.users = users
        self.issuer = issuer
        self.clock = clock

    def reads(self, role_name: str) -> dict[str, list[dict[str, str]]]:
        """The role and its owner, for the token endpoint's one BatchGetItem."""
        key = self.roles.key_for_name(role_name)
        if key is None:
            return {}
        return {"roles": [key], "users": [self.users.key(key["owner"])]}

    def exchange(self, *, role_name: str, subject_token: str,
                 items: Mapping[str, list[Item]], issuer: str, client_id: str | None,
                 scope: tuple[str, ...] | None, source_ip: str) -> dict[str, Any]:
        """RFC 8693 §2.2.1: the role token for a job token the role trusts."""
        audit: dict[str, Any] = {"role": role_name, "client_id": client_id, "source": source_ip}
        role, owner = self._role_and_owner(role_name, items)
        if role is None:
            self._refused(audit, "unknown role", subject_token)
            raise InvalidTarget("Unknown role", detail=f"no role {role_name}")
        try:
            job = self.verifier.verify(subject_token, role.trust.values())
        except Refused as exc:
            self._refused(audit, exc.reason, subject_token, exc.claimed)
            raise InvalidGrant(exc.public, detail=exc.reason) from exc
        audit.update(issuer=job.issuer, subject=job.subject, trust_id=job.policy.id)
        if owner is None or not owner.active:
            self._refused(audit, "the role's owner is disabled or gone")
            raise InvalidGrant(NOT_ACCEPTED, detail="owner inactive")
        # SPEC §6: policies ∩ the owner's current rights, at every issuance; the
        # same rules of scope as a role key's client_credentials.
        permissions = effective_permissions(role, owner)
        try:
            permissions = granted_permissions(permissions, scope)
        except InvalidScope:
            self._refused(audit, f"scope beyond the role: {' '.join(scope or ())}")
            raise
        granted = scopes_of(permissions)
        now = self.clock.now()
        # Last, so that a refused request never uses up the job token.
        if not self.replay.first_use(job.issuer, job.jti, keep_until=job.expires_at + LEEWAY,
                                     now=now):
            self._refused(audit, "replayed jti")
            raise InvalidGrant(NOT_ACCEPTED, detail="replayed jti")
        body = self.issuer.role_response(
            issuer=issuer, role_name=role.name, owner_id=role.owner,
            client_id=client_id or ROLE_AUDIENCE_PREFIX + role.name, permissions=permissions,
            scope=" ".join(granted), act={"sub": job.subject, "iss": job.issuer})
        body["issued_token_type"] = ACCESS_TOKEN_TYPE
        log.info(json.dumps({"event": "federation_exchange", "outcome": "issued", **audit,
                             "permissions": list(permissions)}))
        return body

    @staticmethod
    def _role_and_owner(name: str, items: Mapping[str, list[Item]]) -> tuple[Role | None,
                                                                              User | None]:
        roles = [r for r in items.get("roles") or [] if r.get("name") == name]
        role = role_from_item(roles[0]) if roles else None
        users = [u for u in items.get("users") or [] if role is not None and u["id"] == role.owner]
        return role, user_from_item(users[0]) if users else None

    @staticmethod
    def _refused(audit: dict[str, Any], reason: str, token: str | None = None,
                 claimed: Mapping[str, Any] | None = None) -> None:
        fields = dict(audit)
        if claimed is not None:
            fields.update(_claimed(claimed))
        elif token is not None:
            fields.update(_unverified(token))
        log.info(json.dumps({"event": "federation_exchange", "outcome": "refused",
                             **fields, "reason": reason}))


def _unverified(token: str) -> dict[str, str | None]:
    """Issuer and subject as the token claims them, for the refusal's log line."""
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {"issuer": None, "subject": None}
    return _claimed(claims)


def _claimed(claims: Mapping[str, Any]) -> dict[str, str | None]:
    return {"issuer": _short(claims.get("iss")), "subject": _short(claims.get("sub"))}
