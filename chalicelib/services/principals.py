"""Who presents a bearer credential to Tessera's own API.

An access token (JWT) is verified offline, then its session and user are read
in one round trip: a token whose session has ended is refused even before it
expires. Other credential kinds (PATs, role keys) plug in as resolvers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from chalicelib.errors import Unauthorized
from chalicelib.models import Session, User
from chalicelib.services.signing import InvalidJWT
from chalicelib.services.tokens import ACCESS_TOKEN_TYP
from chalicelib.storage.identities import user_from_item
from chalicelib.storage.sessions import session_from_item

if TYPE_CHECKING:
    from chalicelib.container import Container


@dataclass
class Principal:
    kind: str                       # "access_token" | "pat" | ...
    user: User
    scopes: frozenset[str]
    client_id: str = ""
    session: Session | None = None
    issued_at: int = 0
    expires_at: int | None = None
    token_id: str = ""              # jti, PAT id, ...
    details: dict[str, Any] = field(default_factory=dict)


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


Resolver = Callable[["Container", str, str], "Principal | None"]


class Principals:
    # Resolvers for opaque credential kinds: (container, token, issuer) -> Principal.
    resolvers: ClassVar[list[Resolver]] = []

    def __init__(self, c: Container) -> None:
        self.c = c

    def verify_access_token(self, token: str, issuer: str) -> dict[str, Any]:
        """RFC 9068 §4 validation: typ at+jwt, signature, iss, aud, exp."""
        try:
            return self.c.keyring.verify(token, issuer=issuer, typ=ACCESS_TOKEN_TYP,
                                         audience=self.c.issuer.audience(issuer),
                                         required=("sub", "client_id", "jti"))
        except InvalidJWT as exc:
            raise Unauthorized(detail=str(exc)) from exc

    def from_access_token(self, token: str, issuer: str) -> Principal:
        claims = self.verify_access_token(token, issuer)
        sid, sub = claims.get("sid"), str(claims["sub"])
        if not isinstance(sid, str):
            raise Unauthorized(detail="access token without session")
        found = self.c.batch_get({"sessions": [self.c.sessions_repo.key(sid)],
                                  "users": [self.c.users.key(sub)]})
        now = self.c.clock.now()
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
            principal = resolve(self.c, token, issuer)
            if principal is not None:
                return principal
        raise Unauthorized(detail="unrecognised credential")
