"""Who presents a bearer credential to Tessera's own API.

An access token (JWT) is verified offline, then its session and user are read
in one round trip: a token whose session has ended is refused even before it
expires. A client credentials token names no user: the endpoints of a user refuse
it with a 403. A role token (``sub`` = ``role:<name>``) is handed, once verified,
to the role-token resolver; other credential kinds (PATs, role keys) plug in as
resolvers of the opaque token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import Forbidden, Unauthorized
from chalicelib.models import Session, User
from chalicelib.services.signing import InvalidJWT, KeyRing
from chalicelib.services.tokens import ACCESS_TOKEN_TYP, audience
from chalicelib.storage.identities import UsersRepo, user_from_item
from chalicelib.storage.sessions import SessionsRepo, session_from_item
from chalicelib.storage.tables import BatchGet


@dataclass(frozen=True)
class RoleIdentity:
    """The role a role principal acts as (SPEC §6)."""

    name: str
    owner_id: str
    permissions: tuple[str, ...]    # in force now: policies ∩ the owner's current rights


@dataclass
class Principal:
    kind: str                       # "access_token" | "pat" | "role_key" | "role_token"
    # A role principal's user is the role itself (id ``role:<name>``, no rights), never
    # its owner: nothing done as a role can reach the owner's tokens or sessions.
    user: User
    scopes: frozenset[str]
    client_id: str = ""
    session: Session | None = None
    issued_at: int = 0
    expires_at: int | None = None
    token_id: str = ""              # jti, PAT id, ...
    details: dict[str, Any] = field(default_factory=dict)
    role: RoleIdentity | None = None

    def profile(self) -> dict[str, object]:
        """SPEC §2 ``/v1/me``: the user's profile; for a role principal also
        ``role`` and ``owner_id``."""
        out = self.user.profile()
        if self.role is not None:
            out.update(role=self.role.name, owner_id=self.role.owner_id)
        return out


NO_USER = "This endpoint needs a user's token; a client credentials token names no user"
NO_END_USER = "This token names no end-user: it is a client credentials or role token"
ROLE_SUBJECT_PREFIX = "role:"


def is_role_token(claims: dict[str, Any]) -> bool:
    """A role token (SPEC §6): ``sub`` is ``role:<name>`` and ``role`` names it."""
    role = claims.get("role")
    return isinstance(role, str) and claims.get("sub") == ROLE_SUBJECT_PREFIX + role


def is_client_token(claims: dict[str, Any]) -> bool:
    """A token a client got for itself (RFC 6749 §4.4): RFC 9068 §2.2 gives it the
    client's id as ``sub``; it belongs to no session, so it has no ``sid``. A role
    token is not one, whatever its ``client_id``."""
    return ("sid" not in claims and claims.get("sub") == claims.get("client_id")
            and not is_role_token(claims))


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


# An opaque credential kind (PATs, role keys): (token, issuer) -> its Principal,
# None when the token is not of its kind, Unauthorized when it is but is dead.
Resolver = Callable[[str, str], "Principal | None"]
# Role tokens: verified claims -> the role's Principal, Unauthorized when the role,
# its key or its owner is gone.
RoleTokenResolver = Callable[[dict[str, Any]], "Principal"]


class Principals:
    def __init__(self, keyring: KeyRing, clock: Clock, settings: Settings, *,
                 sessions: SessionsRepo, users: UsersRepo, batch_get: BatchGet,
                 resolvers: Sequence[Resolver] = (),
                 role_tokens: RoleTokenResolver | None = None) -> None:
        self.keyring = keyring
        self.clock = clock
        self.settings = settings
        self.sessions = sessions
        self.users = users
        self.batch_get = batch_get
        self.resolvers = tuple(resolvers)
        self.role_tokens = role_tokens

    def verify_access_token(self, token: str, issuer: str) -> dict[str, Any]:
        """RFC 9068 §4 validation: typ at+jwt, signature, iss, aud, exp."""
        try:
            return self.keyring.verify(token, issuer=issuer, typ=ACCESS_TOKEN_TYP,
                                       audience=audience(self.settings, issuer),
                                       required=("sub", "client_id", "jti"))
        except InvalidJWT as exc:
            raise Unauthorized(detail=str(exc)) from exc

    def from_access_token(self, token: str, issuer: str) -> Principal:
        return self.from_claims(self.verify_access_token(token, issuer))

    def from_end_user_token(self, token: str, issuer: str) -> Principal:
        """The end-user behind an access token (OIDC UserInfo): a client credentials
        or role token names none and is refused (403) before any read."""
        claims = self.verify_access_token(token, issuer)
        if is_role_token(claims) or is_client_token(claims):
            raise Forbidden(NO_END_USER, detail="client credentials or role token")
        return self.from_claims(claims)

    def from_claims(self, claims: dict[str, Any]) -> Principal:
        """The principal behind verified access-token claims (``verify_access_token``)."""
        if is_role_token(claims):
            if self.role_tokens is None:
                raise Unauthorized(detail="role tokens are not accepted here")
            return self.role_tokens(claims)
        if is_client_token(claims):
            raise Forbidden(NO_USER, detail="client credentials token")
        sid, sub = claims.get("sid"), str(claims["sub"])
        if not isinstance(sid, str):
            raise Unauthorized(detail="access token without session")
        # One round trip for both (SPEC §9): a session that ended refuses its tokens.
        found = self.batch_get({"sessions": [self.sessions.key(sid)], "users": [self.users.key(sub)]})
        now = self.clock.now()
        if not found["sessions"] or not found["users"]:
            raise Unauthorized(detail="session or user gone")
        session = session_from_item(found["sessions"][0])
        user = user_from_item(found["users"][0])
        if not session.alive(now) or session.user_id != sub or not user.active:
            raise Unauthorized(detail="session ended or user disabled")
        return Principal(kind="access_token", user=user,
                         scopes=frozenset(str(claims.get("scope", "")).split()),
                         client_id=str(claims["client_id"]), session=session,
                         issued_at=int(claims["iat"]), expires_at=int(claims["exp"]),
                         token_id=str(claims["jti"]))

    def authenticate(self, token: str, issuer: str) -> Principal:
        if looks_like_jwt(token):
            return self.from_access_token(token, issuer)
        for resolve in self.resolvers:
            principal = resolve(token, issuer)
            if principal is not None:
                return principal
        raise Unauthorized(detail="unrecognised credential")
