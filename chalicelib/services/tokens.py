"""Minting JWTs: RFC 9068 access tokens and OIDC Core §2 ID tokens.

Each client's tokens are signed with the algorithm it registered
(``id_token_signed_response_alg``, ``access_token_signed_response_alg``), else
RS256 for ID tokens (OIDC Registration §2) and the stage's ``signing_alg`` for
access tokens; an access token's ``aud`` is what
``services.audiences`` resolved for the request (RFC 8707), else Tessera's own API.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.models import Client, Session, User
from chalicelib.security.opaque import random_b62
from chalicelib.services.mfa_policy import acr_of
from chalicelib.services.signing import KeyRing

ACCESS_TOKEN_TYP = "at+jwt"   # RFC 9068 §2.1


def at_hash(access_token: str) -> str:
    """OIDC Core §3.1.3.6: base64url of the left half of the hash of the access
    token's ASCII octets, with the hash of the ID token's ``alg``: SHA-256 for
    both ES256 and RS256."""
    half = hashlib.sha256(access_token.encode("ascii")).digest()[:16]
    return base64.urlsafe_b64encode(half).rstrip(b"=").decode("ascii")


def audience(settings: Settings, issuer: str) -> str:
    """RFC 9068 §2.2 ``aud`` of access tokens: the configured resource, else the issuer."""
    return settings.audience or issuer


class TokenIssuer:
    def __init__(self, keyring: KeyRing, clock: Clock, settings: Settings) -> None:
        self.keyring = keyring
        self.clock = clock
        self.settings = settings

    def audience(self, issuer: str) -> str:
        return audience(self.settings, issuer)

    def access_token(self, *, issuer: str, subject: str, client_id: str, scope: str,
                     session_id: str | None, auth_time: int | None,
                     lifetime: int | None = None, extra: dict[str, Any] | None = None,
                     aud: str | list[str] | None = None, alg: str = "") -> str:
        """RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti, plus scope and sid.

        ``aud``: the resolved audience (None: Tessera's own API); ``alg``: the
        client's registered algorithm ("" = the stage's)."""
        now = self.clock.now()
        claims: dict[str, Any] = {
            "iss": issuer, "sub": subject, "aud": aud or self.audience(issuer),
            "exp": now + (lifetime or self.settings.access_token_seconds), "iat": now,
            "jti": random_b62(22), "client_id": client_id, "scope": scope,
        }
        if session_id:
            claims["sid"] = session_id
        if auth_time is not None:
            claims["auth_time"] = auth_time
        claims.update(extra or {})
        return self.keyring.sign(claims, typ=ACCESS_TOKEN_TYP, alg=alg or None)

    def id_token(self, *, issuer: str, user: User | None, client: Client, session: Session,
                 scope: set[str], nonce: str | None = None,
                 access_token: str | None = None) -> str:
        """OIDC Core §2: audience is the client; profile claims follow the scopes.
        §3.1.3.6: ``nonce`` as the authorization request sent it, ``at_hash`` of the
        access token issued with it.

        Without ``user`` (a refresh, §12.2): the claims the session holds, the same
        ``iss``, ``sub``, ``aud``, ``azp``, ``auth_time`` and ``sid`` as at the
        sign-in and a new ``iat``; no profile claims (they are at userinfo) and no
        ``nonce``, so the grant stays one write and no read."""
        now = self.clock.now()
        claims: dict[str, Any] = {
            "iss": issuer, "sub": session.user_id, "aud": client.client_id, "azp": client.client_id,
            "exp": now + self.settings.access_token_seconds, "iat": now,
            "auth_time": session.auth_time, "sid": session.id,
            # RFC 8176 methods and the level they reach (SPEC §11).
            "amr": list(session.amr), "acr": acr_of(session.amr),
        }
        if nonce:
            claims["nonce"] = nonce
        if access_token:
            claims["at_hash"] = at_hash(access_token)
        if user is not None:
            if "email" in scope:
                claims["email"] = user.email
            if "profile" in scope:
                claims.update(given_name=user.firstname, family_name=user.lastname,
                              preferred_username=user.username)
        # OIDC Core §15.1 / Registration §2: the client's registered algorithm, else RS256.
        return self.keyring.sign(claims, typ="JWT", alg=client.id_token_alg)

    def session_response(self, *, issuer: str, user: User | None, client: Client, session: Session,
                         refresh_token: str, scope: str,
                         aud: str | list[str] | None = None,
                         nonce: str | None = None) -> dict[str, Any]:
        """The RFC 6749 §5.1 token response of a session (login or refresh)."""
        now = self.clock.now()
        scopes = set(scope.split())
        # ``aud``: what the request's resources resolved to (None: Tessera's own API).
        access_token = self.access_token(issuer=issuer, subject=session.user_id,
                                         client_id=client.client_id, scope=scope,
                                         session_id=session.id, auth_time=session.auth_time,
                                         aud=aud, alg=client.access_token_signed_response_alg)
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.settings.access_token_seconds,
            "refresh_token": refresh_token,
            "refresh_expires_in": max(0, min(session.idle_deadline, session.expires_at) - now),
            "scope": scope,
        }
        # OIDC Core §12.2: a refresh of a session that asked for ``openid`` answers
        # an ID token too (``user`` None: the session's claims, see ``id_token``).
        if "openid" in scopes:
            body["id_token"] = self.id_token(issuer=issuer, user=user, client=client,
                                             session=session, scope=scopes, nonce=nonce,
                                             access_token=access_token)
        return body

    def role_response(self, *, issuer: str, role_name: str, owner_id: str, client_id: str,
                      permissions: tuple[str, ...], scope: str,
                      act: dict[str, str] | None = None) -> dict[str, Any]:
        """The token response of a role (SPEC §6): a 1 h RFC 9068 JWT whose ``sub``
        is ``role:<name>``, naming the role, its owner and its effective
        permissions; ``act`` (RFC 8693 §4.1) records who acts as the role. No
        refresh token: a role key or a job token is presented again instead."""
        lifetime = self.settings.role_token_seconds
        extra: dict[str, Any] = {"role": role_name, "owner": owner_id,
                                 "permissions": list(permissions)}
        if act:
            extra["act"] = dict(act)
        body: dict[str, Any] = {
            "access_token": self.access_token(issuer=issuer, subject=f"role:{role_name}",
                                              client_id=client_id, scope=scope,
                                              session_id=None, auth_time=None,
                                              lifetime=lifetime, extra=extra),
            "token_type": "Bearer",
            "expires_in": lifetime,
        }
        if scope:
            body["scope"] = scope
        return body

    def client_response(self, *, issuer: str, client: Client, scope: str,
                        aud: str | list[str] | None = None) -> dict[str, Any]:
        """The RFC 6749 §4.4.3 token response of a client acting for itself.

        RFC 9068 §2.2: with no resource owner, ``sub`` is the client's own id; no
        session, so no ``sid``; and "A refresh token SHOULD NOT be included".
        """
        lifetime = self.settings.client_token_seconds
        body: dict[str, Any] = {
            "access_token": self.access_token(issuer=issuer, subject=client.client_id,
                                              client_id=client.client_id, scope=scope,
                                              session_id=None, auth_time=None,
                                              lifetime=lifetime, aud=aud,
                                              alg=client.access_token_signed_response_alg),
            "token_type": "Bearer",
            "expires_in": lifetime,
        }
        if scope:
            body["scope"] = scope
        return body
