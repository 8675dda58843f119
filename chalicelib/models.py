"""Domain objects shared by services and storage (no AWS, no HTTP)."""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field

from chalicelib.security.cors import web_origins
from chalicelib.security.opaque import ALPHABET
from chalicelib.security.permissions import default_rights

# A client id is 1-128 printable characters without spaces: ``create_client`` registers
# nothing else, and client authentication refuses anything else before a lookup.
MAX_CLIENT_ID = 128


def possible_client_id(client_id: str) -> bool:
    """Whether ``client_id`` could name a client. Anything else (empty, too long for a
    key, unprintable, a lone surrogate) never reaches DynamoDB nor the client cache."""
    return (0 < len(client_id) <= MAX_CLIENT_ID and client_id.isprintable()
            and " " not in client_id)


# A username (after ``normalise_username``): lowercase ASCII letters, digits, "-" and
# "_", starting with a letter or digit. No dot: the dot ends a user's name in their
# namespace (``*@urn:tessera:*:<username>.*``), so with one ``alice`` would hold
# ``alice.x``'s; nor ":", "*" or "@", which the permission language reads. The same
# owner part starts a role name ``<username>.<name>`` (``storage.roles.ROLE_NAME``).
USERNAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
USERNAME_RULE = ("username must be 1-64 lowercase letters, digits, - and _, starting with a "
                 "letter or digit (no dot: it separates a user's namespace)")


def normalise_username(username: str) -> str:
    return username.strip().lower()


def valid_username(username: str) -> bool:
    """Whether a new user may take this (normalised) name; users stored before the
    rule may break it, and those with a dot hold no namespace (``default_rights``)."""
    return USERNAME.fullmatch(username) is not None


# Pure and met again at every request of a warm instance (a role's key, its owner's).
@functools.lru_cache(maxsize=4096)
def derived_id(name: str) -> str:
    """16 base62 characters of the SHA-256 of ``name``: a stable, fixed-length key."""
    n = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:12], "big")
    out = []
    for _ in range(16):
        n, r = divmod(n, 62)
        out.append(ALPHABET[r])
    return "".join(out)


def user_id_for(username: str) -> str:
    """The stable id of a username: 16 base62 characters of its SHA-256.

    Deriving the id lets the password grant read the user by key, in the same
    BatchGetItem as the client (SPEC §9: 1 read), instead of querying an index.
    Usernames are therefore immutable, as login names are on most platforms.
    """
    return derived_id("tessera:user:" + normalise_username(username))


@dataclass(frozen=True)
class Passkey:
    """A WebAuthn credential of a user (a passkey or a security key), SPEC §11."""

    id: str                   # ours: names it in the API and the console
    name: str
    credential_id: str        # base64url, as the authenticator gave it
    public_key: str           # base64url COSE key
    sign_count: int
    created_at: int
    last_used_at: int = 0
    transports: tuple[str, ...] = ()
    # WebAuthn's backup eligibility (BE): a synced passkey, a software-held key
    # (RFC 8176 ``swk``); else a key bound to its device (``hwk``).
    backup_eligible: bool = False

    @property
    def amr(self) -> str:
        return "swk" if self.backup_eligible else "hwk"


@dataclass(frozen=True)
class SecondFactors:
    """What a user enrolled beyond the password (SPEC §11). Recovery codes are a way
    back in, not a factor of their own: with only them, nothing is enrolled."""

    totp_sealed: str = ""             # the confirmed TOTP secret, sealed; "" none
    totp_last_step: int = 0           # the last time step accepted (replays refused)
    totp_created_at: int = 0
    totp_pending: str = ""            # a secret awaiting its confirming code, sealed
    totp_pending_at: int = 0
    passkeys: tuple[Passkey, ...] = ()
    recovery: frozenset[str] = frozenset()    # digests of the unused recovery codes

    @property
    def enrolled(self) -> bool:
        return bool(self.totp_sealed or self.passkeys)

    def passkey(self, passkey_id: str) -> Passkey | None:
        return next((p for p in self.passkeys if p.id == passkey_id), None)


NO_SECOND_FACTOR = SecondFactors()


@dataclass(frozen=True)
class User:
    id: str
    username: str
    email: str = ""
    firstname: str = ""
    lastname: str = ""
    active: bool = True
    password_hash: str = ""
    # Scopes this user may hold; None means every scope of the stage.
    scopes: tuple[str, ...] | None = None
    created_at: int = 0
    # The user's sessions, id -> cap (strongly consistent, unlike the by_user
    # index); None on a user item written before the map existed.
    sessions: dict[str, int] | None = None
    # Bumped by every change that must stop sign-ins already in flight (disable,
    # narrowed scopes, a password reset that ends sessions): a session is created
    # only if the version is still the one the sign-in read.
    version: int = 0
    # Rights (SPEC §6), kept as what was granted on top of the default
    # (``*@urn:tessera:*:<username>.*``) and whether the default was revoked, so
    # that granting and revoking are each one atomic update with no read.
    granted_permissions: tuple[str, ...] = ()
    default_permission_revoked: bool = False
    second_factors: SecondFactors = NO_SECOND_FACTOR
    # The address was shown to belong to the person (an invitation or an email
    # change link was followed from it).
    email_verified: bool = False
    # When a stage that requires a second factor (``require_mfa``) first saw this
    # user sign in without one: the grace period runs from then.
    mfa_asked_at: int = 0
    # The optional notices the owner turned off (``services.notices.OPTIONAL``).
    notices_off: frozenset[str] = frozenset()
    # Digests of the last devices (IP, user-agent family) that signed in
    # (``services.notices``): a sign-in from another is told to the owner.
    seen_devices: tuple[str, ...] = ()

    @property
    def permissions(self) -> tuple[str, ...]:
        """The user's rights: the default unless revoked, and every grant."""
        held = set(self.granted_permissions)
        if not self.default_permission_revoked:
            held.update(default_rights(self.username))
        return tuple(sorted(held))

    def profile(self) -> dict[str, object]:
        """The whoami view (SPEC §2 ``/v1/me``)."""
        return {"id": self.id, "email": self.email, "firstname": self.firstname,
                "lastname": self.lastname, "active": self.active}

    def allows(self, scope: str) -> bool:
        return self.scopes is None or scope in self.scopes


# OIDC Dynamic Client Registration §2: a client that registered no algorithm gets RS256 ID tokens.
DEFAULT_ID_TOKEN_ALG = "RS256"


@dataclass(frozen=True)
class Client:
    client_id: str
    # "sha256$<salt>$<hex>" for confidential clients; None for public ones.
    secret_hash: str | None = None
    name: str = ""
    grant_types: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    introspect: bool = False
    created_at: int = 0
    # OIDC Dynamic Client Registration §2 names: the JWS algorithm of this
    # client's ID tokens ("" means RS256, ``id_token_alg``) and access tokens
    # ("" means the stage's signing_alg).
    id_token_signed_response_alg: str = ""
    access_token_signed_response_alg: str = ""
    # A resource server (RFC 8707): the URIs it answers for; a token request may
    # name any of them as its ``resource``, which becomes the token's ``aud``.
    resources: tuple[str, ...] = ()
    # The ``aud`` of this client's access tokens when a request names no resource
    # (a registered resource URI); "" means Tessera's own API (the issuer).
    default_audience: str = ""
    # The authorization code flow (RFC 6749 §3.1.2): the exact redirect URIs it may
    # use, and where RP-initiated logout may send the browser back to.
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    # May exchange a person's token for one that acts for them (SPEC §6 delegation).
    delegate: bool = False
    # Whether a remembered consent lets an authorization request skip the consent
    # page (and answer prompt=none); None: the default rule of remembers_consent.
    remember_consent: bool | None = None
    # Web origins registered beyond those of the redirect URIs (Keycloak's "web
    # origins"): browser apps there may call the token endpoint (security/cors.py).
    allowed_origins: tuple[str, ...] = ()
    # Every sign-in for this client needs a second factor (SPEC §11): a person
    # without one enrols first; the password grant refuses.
    require_mfa: bool = False

    @property
    def web_origins(self) -> tuple[str, ...]:
        """The origins whose browser apps may use this client (CORS)."""
        return web_origins(self.redirect_uris, self.allowed_origins)

    @property
    def public(self) -> bool:
        return self.secret_hash is None

    @property
    def id_token_alg(self) -> str:
        """OIDC Dynamic Client Registration §2, ``id_token_signed_response_alg``: "The
        default, if omitted, is RS256"; strict clients (requests-oauth2client) insist."""
        return self.id_token_signed_response_alg or DEFAULT_ID_TOKEN_ALG

    @property
    def signing_algs(self) -> frozenset[str]:
        """The key families this client's tokens need beyond the stage default: what it
        registered, and its ID tokens' (``id_token_alg``) if it may ask for them."""
        algs = {self.access_token_signed_response_alg}
        if "openid" in self.scopes:
            algs.add(self.id_token_alg)
        return frozenset(algs - {""})

    def allows_grant(self, grant_type: str) -> bool:
        return grant_type in self.grant_types

    def remembers_consent(self, redirect_uri: str) -> bool:
        """RFC 6749 §10.2: a repeated request is approved without the person only if
        it surely comes from this client. A confidential client authenticates at the
        token endpoint; anyone can send a public client's id, unless its redirect URI
        is a claimed https URI that only the real app receives (RFC 8252 §7.2)."""
        if self.remember_consent is not None:
            return self.remember_consent
        return not self.public or redirect_uri.lower().startswith("https://")


@dataclass
class Session:
    """A login: created by the password grant or an approved device code."""

    id: str
    user_id: str
    client_id: str
    scope: str
    created_at: int          # when the session was created ("originally issued at")
    expires_at: int          # the hard cap; nothing extends it
    idle_deadline: int       # min(last use + idle, cap)
    last_used_at: int
    kind: str = "oauth"      # "oauth" (refresh-token session) or "web" (page sign-in)
    device: dict[str, str] = field(default_factory=dict)
    # OIDC Core §2 auth_time: when the end user last authenticated. A password
    # session: its creation; a device session: the browser sign-in that approved
    # it, which may be hours older than the session. 0 means created_at.
    auth_time: int = 0
    # RFC 8707: the resources the login asked for; a refresh may narrow to some
    # of them (§2.2), never widen. Empty: the client's default audience.
    resources: tuple[str, ...] = ()
    # RFC 8176 authentication methods of the sign-in behind the session ("pwd",
    # "otp", "hwk", "swk", "mfa"); empty on sessions from before they were kept,
    # all password sign-ins ("pwd").
    amr: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.auth_time:
            self.auth_time = self.created_at
        if not self.amr:
            self.amr = ("pwd",)

    @property
    def mfa(self) -> bool:
        """Whether the sign-in behind the session used a second factor."""
        return "mfa" in self.amr

    def alive(self, now: int) -> bool:
        return now < self.idle_deadline and now < self.expires_at
