"""Revocation (RFC 7009) and introspection (RFC 7662) across token kinds.

Access tokens (JWT, role tokens among them) and refresh tokens are handled here;
other opaque kinds (PATs, role keys) plug in as ``OpaqueKind`` values given to
``OAuthTokens``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.clock import Clock
from chalicelib.errors import Unauthorized, UnauthorizedClient, UnsupportedTokenType
from chalicelib.models import Client
from chalicelib.security.opaque import REFRESH, digest
from chalicelib.services.principals import (
    Principal,
    Principals,
    is_client_token,
    is_delegated,
    is_role_token,
    looks_like_jwt,
)
from chalicelib.storage.identities import UsersRepo
from chalicelib.storage.sessions import SessionsRepo, session_from_item

if TYPE_CHECKING:
    from chalicelib.services.sessions import Sessions

# RFC 7009 §2.1: the server "verifies whether the token was issued to the client making the
# revocation request"; RFC 6749 §5.2 unauthorized_client names why it refuses.
NOT_YOURS = "The client is not authorized to revoke the presented token"
DELEGATED_TOKEN_NOT_REVOCABLE = ("A delegated token is not revoked by itself: it keeps the "
                                 "person's session, which it does not own; it expires within "
                                 "minutes, and withdrawing the consent ends it at once")
ROLE_TOKEN_NOT_REVOCABLE = ("A role token is not revoked by itself: revoke the role key it came "
                            "from, or delete the role")


@dataclass(frozen=True)
class OpaqueKind:
    """How one opaque token kind is recognised, revoked and introspected."""

    matches: Callable[[str], bool]
    revoke: Callable[[Client, str], None]
    introspect: Callable[[str], dict[str, Any] | None]


def lazy_kind(matches: Callable[[str], bool], build: Callable[[], OpaqueKind]) -> OpaqueKind:
    """An opaque kind whose service is built on the first token of its kind, so that
    introspecting other kinds does not load it (cold start, SPEC §9)."""
    return OpaqueKind(matches=matches, revoke=lambda client, token: build().revoke(client, token),
                      introspect=lambda token: build().introspect(token))


class OAuthTokens:
    """``sessions`` is called on first need: introspecting an access token or a PAT
    must not load the refresh-token machinery (cold start, SPEC §9)."""

    def __init__(self, principals: Principals, sessions: Callable[[], Sessions], clock: Clock, *,
                 sessions_repo: SessionsRepo, users: UsersRepo,
                 kinds: Sequence[OpaqueKind] = ()) -> None:
        self.principals = principals
        self._sessions = sessions
        self.clock = clock
        self.sessions_repo = sessions_repo
        self.users = users
        self.kinds = tuple(kinds)

    def revoke(self, client: Client, token: str, issuer: str) -> None:
        if looks_like_jwt(token):
            self._revoke_access_token(client, token, issuer)
        elif REFRESH.matches(token):
            self._revoke_refresh_token(client, token)
        else:
            for kind in self.kinds:
                if kind.matches(token):
                    kind.revoke(client, token)
                    return

    def _revoke_access_token(self, client: Client, token: str, issuer: str) -> None:
        """Revoking an access token ends the session it belongs to."""
        try:
            claims = self.principals.verify_access_token(token, issuer, any_audience=True)
        except Unauthorized:
            return  # invalid or expired: nothing to revoke (RFC 7009 §2.2)
        if claims.get("client_id") != client.client_id:
            raise UnauthorizedClient(NOT_YOURS)
        if is_role_token(claims):
            # RFC 7009 §2.2.1: no state stands behind one role token to revoke; its
            # key's revocation (or the role's deletion) ends it on Tessera's endpoints.
            raise UnsupportedTokenType(ROLE_TOKEN_NOT_REVOCABLE)
        if is_delegated(claims):
            # RFC 7009 §2.2.1: its session may be another app's sign-in, which the
            # delegate must not end.
            raise UnsupportedTokenType(DELEGATED_TOKEN_NOT_REVOCABLE)
        if isinstance(claims.get("sid"), str):
            self._sessions().end(claims["sid"], reason="access_token_revoked")

    def _revoke_refresh_token(self, client: Client, token: str) -> None:
        session_id = REFRESH.parse(token)
        assert session_id is not None
        kept = self.sessions_repo.delete_if_current(session_id, digest(token), client.client_id)
        if kept and kept.get("rt_hash") == digest(token):
            # The token is current but was issued to another client.
            raise UnauthorizedClient(NOT_YOURS)

    def introspect(self, token: str, issuer: str) -> dict[str, Any]:
        """RFC 7662 §2.2: ``{"active": false}`` and nothing else for any bad token.

        An active answer names the issuer and the RFC 6749 §7.1 ``token_type``
        (every Tessera token is a bearer token); which kind of Tessera token it is
        goes in ``tessera_token_kind``.
        """
        inactive = {"active": False}
        found: dict[str, Any] | None = None
        if looks_like_jwt(token):
            try:
                # A resource server introspects tokens meant for it (RFC 8707), not
                # only for Tessera's own API: any audience Tessera issued for.
                claims = self.principals.verify_access_token(token, issuer, any_audience=True)
                if is_client_token(claims):
                    found = _describe_client_token(claims)
                else:
                    principal = self.principals.from_claims(claims)
                    found = (describe_role(principal) if principal.role is not None
                             else _describe_access_token(principal))
            except Unauthorized:
                return inactive
            if "aud" in claims:
                found["aud"] = claims["aud"]    # RFC 7662 §2.2
        elif REFRESH.matches(token):
            found = self._introspect_refresh_token(token)
        else:
            kind = next((k for k in self.kinds if k.matches(token)), None)
            found = kind.introspect(token) if kind else None
        if not found:
            return inactive
        return {**found, "token_type": "Bearer", "iss": issuer}

    def _introspect_refresh_token(self, token: str) -> dict[str, Any] | None:
        session_id = REFRESH.parse(token)
        assert session_id is not None
        item = self.sessions_repo.get_item(session_id)
        if not item or not self._sessions().refresh_token_is_current(item, token):
            return None
        session = session_from_item(item)
        if not session.alive(self.clock.now()):
            return None
        # A disabled user's refresh token is inactive even before their sessions end.
        if not self.users.is_active(session.user_id):
            return None
        return {"active": True, "scope": session.scope, "client_id": session.client_id,
                "sub": session.user_id, "exp": min(session.idle_deadline, session.expires_at),
                "iat": int(item.get("rt_rotated_at") or session.created_at),
                "sid": session.id, "auth_time": session.auth_time,
                "tessera_token_kind": "refresh_token"}


def _describe_access_token(p: Principal) -> dict[str, Any]:
    assert p.session is not None
    return {"active": True, "scope": " ".join(sorted(p.scopes)), "client_id": p.client_id,
            "username": p.user.username, "exp": p.expires_at, "iat": p.issued_at,
            "sub": p.user.id, "jti": p.token_id, "sid": p.session.id,
            "auth_time": p.session.auth_time, "tessera_token_kind": "access_token",
            # RFC 8693 §4.1 / §2.2.1 of RFC 7662: who acts for the person (delegation).
            **({"act": p.act} if p.act is not None else {})}


def describe_role(p: Principal) -> dict[str, Any]:
    """A role key or role token (SPEC §6): the role, its owner, and the permissions
    and scope in force now (policies ∩ the owner's current rights)."""
    assert p.role is not None
    out: dict[str, Any] = {"active": True, "sub": p.user.id, "role": p.role.name,
                           "owner": p.role.owner_id, "permissions": list(p.role.permissions),
                           "client_id": p.client_id, "iat": p.issued_at,
                           "tessera_token_kind": p.kind}
    if p.scopes:
        out["scope"] = " ".join(sorted(p.scopes))
    if p.expires_at is not None:
        out.update(exp=p.expires_at, jti=p.token_id)
    return out


def _describe_client_token(claims: dict[str, Any]) -> dict[str, Any]:
    """A client credentials token (RFC 6749 §4.4): verified offline, no session
    behind it, so active until it expires (RFC 7662 §2.2)."""
    return {"active": True, "scope": str(claims.get("scope", "")),
            "client_id": str(claims["client_id"]), "sub": str(claims["sub"]),
            "exp": int(claims["exp"]), "iat": int(claims["iat"]), "jti": str(claims["jti"]),
            "tessera_token_kind": "client_access_token"}


def userinfo_claims(p: Principal) -> dict[str, Any]:
    """OIDC Core §5.3.2: ``sub`` always, other claims as the scopes allow."""
    claims: dict[str, Any] = {"sub": p.user.id}
    if "email" in p.scopes:
        claims["email"] = p.user.email
    if "profile" in p.scopes:
        claims.update(given_name=p.user.firstname, family_name=p.user.lastname,
                      name=f"{p.user.firstname} {p.user.lastname}".strip(),
                      preferred_username=p.user.username)
    return claims
