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
from typing import TYPE_CHECKING, Any

from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import Forbidden, Unauthorized
from chalicelib.models import Session, User
from chalicelib.services.signing import InvalidJWT, KeyRing
from chalicelib.services.tokens import ACCESS_TOKEN_TYP, audience
from chalicelib.storage import public_keys
from chalicelib.storage.consents import ConsentsRepo, consent_from_item
from chalicelib.storage.identities import UsersRepo, user_from_item
from chalicelib.storage.sessions import SessionsRepo, session_from_item
from chalicelib.storage.tables import BatchGet, Key

if TYPE_CHECKING:
    from chalicelib.storage.pats import Pat


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
    # RFC 8693 §4.1: who acts for the user (a delegated token), as the token says it.
    act: dict[str, Any] | None = None
    # The PAT a PAT principal presented, as read (its seen source addresses).
    pat: Pat | None = None

    def announced_expiry(self) -> int | None:
        """SPEC §11: when the credential of a request expires, for its answer's
        ``Tessera-Token-Expiration``: a PAT's or a role key's expiry (role keys have
        none today); None for JWTs, whose ``exp`` the client already holds."""
        return self.expires_at if self.kind in ("pat", "role_key") else None

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


def is_delegated(claims: dict[str, Any]) -> bool:
    """A person's token that a client got by delegation (SPEC §6): it names its
    actor (RFC 8693 §4.1 ``act``) and keeps the person's session."""
    return isinstance(claims.get("act"), dict) and "sid" in claims and not is_role_token(claims)


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

    def verify_access_token(self, token: str, issuer: str, *,
                            any_audience: bool = False) -> dict[str, Any]:
        """RFC 9068 §4 validation: typ at+jwt, signature, iss, aud, exp.

        Tessera's own API accepts only tokens whose ``aud`` names it (RFC 9068
        §4: the resource server "MUST validate that the aud claim contains a
        resource indicator value corresponding to an identifier the resource
        server expects for itself"); a token audience-restricted to another
        resource (RFC 8707) is refused. ``any_audience``: introspection and
        revocation, which answer for every token Tessera issued.
        """
        try:
            return self.keyring.verify(token, issuer=issuer, typ=ACCESS_TOKEN_TYP,
                                       audience=None if any_audience
                                       else audience(self.settings, issuer),
                                       required=("sub", "aud", "client_id", "jti"))
        except InvalidJWT as exc:
            raise Unauthorized(detail=str(exc)) from exc

    def from_access_token(self, token: str, issuer: str) -> Principal:
        if self.keyring.public_keys_wanted():
            return self._first_access_token(token, issuer)
        return self.from_claims(self.verify_access_token(token, issuer))

    def _first_access_token(self, token: str, issuer: str) -> Principal:
        """A person's token on an instance that has no signing keys yet (SPEC §9,
        one read): the published public keys are read in the same BatchGetItem as
        the session and user the token names, then the token is verified, and only
        then are those items used. Any other token takes the usual path."""
        import jwt

        try:
            named = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            named = {}
        if (not isinstance(named.get("sid"), str) or not isinstance(named.get("sub"), str)
                or is_role_token(named) or is_client_token(named)):
            return self.from_claims(self.verify_access_token(token, issuer))
        found = self.batch_get({**self.reads(named), public_keys.TABLE: [public_keys.ITEM_KEY]})
        items = found.get(public_keys.TABLE) or []
        self.keyring.accept_published(public_keys.published_from_item(items[0] if items else None))
        claims = self.verify_access_token(token, issuer)
        return self.from_items(claims, found)

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
        if not isinstance(claims.get("sid"), str):
            raise Unauthorized(detail="access token without session")
        # One round trip for all (SPEC §9): a session that ended refuses its tokens.
        return self.from_items(claims, self.batch_get(self.reads(claims)))

    def reads(self, claims: dict[str, Any]) -> dict[str, list[Key]]:
        """What stands behind a person's access token, for one BatchGetItem: its
        session and user and, for a delegated token, the person's consent to the
        client that holds it."""
        sid, sub = str(claims.get("sid")), str(claims["sub"])
        reads = {"sessions": [self.sessions.key(sid)], "users": [self.users.key(sub)]}
        if is_delegated(claims):
            reads["consents"] = [ConsentsRepo.key(sub, str(claims["client_id"]))]
        return reads

    def from_items(self, claims: dict[str, Any], found: dict[str, list[Any]]) -> Principal:
        """The person behind verified claims, given the items ``reads`` named (other
        items of the same batch are ignored)."""
        sid, sub = claims.get("sid"), str(claims["sub"])
        sessions = [i for i in found.get("sessions") or [] if i.get("id") == sid]
        users = [i for i in found.get("users") or [] if i.get("id") == sub]
        now = self.clock.now()
        if not sessions or not users:
            raise Unauthorized(detail="session or user gone")
        session = session_from_item(sessions[0])
        user = user_from_item(users[0])
        if not session.alive(now) or session.user_id != sub or not user.active:
            raise Unauthorized(detail="session ended or user disabled")
        scopes = frozenset(str(claims.get("scope", "")).split())
        act = claims.get("act") if is_delegated(claims) else None
        if act is not None:
            # A delegated token keeps the person's session, which may belong to
            # another app: withdrawing the consent to the delegate (SPEC §2
            # /v1/consents) ends its tokens here even while that session lives.
            consents = [consent_from_item(i) for i in found.get("consents") or []
                        if i.get("user_id") == sub and i.get("client_id") == claims["client_id"]]
            if not consents or not consents[0].covers(scopes):
                raise Unauthorized(detail="consent to the delegate withdrawn")
        return Principal(kind="access_token", user=user, scopes=scopes,
                         client_id=str(claims["client_id"]), session=session,
                         issued_at=int(claims["iat"]), expires_at=int(claims["exp"]),
                         token_id=str(claims["jti"]), act=act)

    def authenticate(self, token: str, issuer: str) -> Principal:
        if looks_like_jwt(token):
            return self.from_access_token(token, issuer)
        for resolve in self.resolvers:
            principal = resolve(token, issuer)
            if principal is not None:
                return principal
        raise Unauthorized(detail="unrecognised credential")
