"""Delegation by token exchange (SPEC §6, RFC 8693): an app acts for a person.

A confidential client registered with ``delegate`` presents a person's access
token (``subject_token_type`` ``urn:ietf:params:oauth:token-type:access_token``)
and gets a token whose ``sub`` is the person and whose ``act`` names the client
(RFC 8693 §4.1; an ``act`` already there is nested under the new one). Its scope
is the client's scopes ∩ the presented token's ∩ what the person consented to
for that client; it keeps the person's ``sid``, so ending that session ends it on
Tessera's endpoints, and withdrawing the consent ends it there too
(``Principals.from_items`` checks the consent of a delegated token).

The presented token must be meant for Tessera's own API or for the exchanging
client (a resource it answers for): RFC 8693 §2.1 leaves to the server which
subject tokens it accepts, and this keeps an exchange from turning a token meant
for another resource server into one for Tessera's API (SPEC §6).

The presented token is verified offline; its session, its user and the consent
are read with the client in the token endpoint's one BatchGetItem; nothing is
written (SPEC §9). No refresh token: the app exchanges a fresh token again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.audit import event
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import InvalidGrant, InvalidScope, Unauthorized
from chalicelib.models import Client
from chalicelib.services.principals import Principals, is_client_token, is_role_token
from chalicelib.services.tokens import TokenIssuer
from chalicelib.storage.consents import ConsentsRepo, consent_from_item
from chalicelib.storage.tables import Item, Key

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
NOT_A_PERSONS_TOKEN = "The subject token is not a valid access token of a person"
NO_CONSENT = "The person has not consented to this client"
OTHER_AUDIENCE = "The subject token's audience is neither Tessera's API nor this client"


class Delegation:
    def __init__(self, principals: Principals, issuer: TokenIssuer, clock: Clock,
                 settings: Settings) -> None:
        self.principals = principals
        self.issuer = issuer
        self.clock = clock
        self.settings = settings

    def subject_claims(self, token: str, issuer: str) -> dict[str, Any] | None:
        """The verified claims of a person's access token issued by Tessera (its
        audience is checked in ``exchange``, against the authenticated client),
        None for anything else: an invalid or expired JWT, a client's own token, a
        role token."""
        try:
            claims = self.principals.verify_access_token(token, issuer, any_audience=True)
        except Unauthorized:
            return None
        if is_role_token(claims) or is_client_token(claims) or not isinstance(claims.get("sid"), str):
            return None
        return claims

    def accepts_audience(self, claims: Mapping[str, Any], client: Client, issuer: str) -> bool:
        """RFC 8693 §2.1 leaves the acceptable subject tokens to the server: one
        whose ``aud`` names Tessera's own API, the exchanging client's id, or a
        resource the exchanging client answers for (RFC 8707); never a token
        meant only for another resource server, which the exchange would widen."""
        aud = claims.get("aud")
        named = [aud] if isinstance(aud, str) else [a for a in aud or () if isinstance(a, str)]
        own = {self.issuer.audience(issuer), client.client_id, *client.resources}
        return any(a in own for a in named)

    def reads(self, claims: dict[str, Any] | None, client_id: str) -> dict[str, list[Key]]:
        """The presented token's session and user, and the person's consent to the
        exchanging client (and to the token's own client when it is itself
        delegated), for the token endpoint's one BatchGetItem."""
        if claims is None:
            return {}
        reads = self.principals.reads(claims)
        keys = [*reads.get("consents", []), ConsentsRepo.key(str(claims["sub"]), client_id)]
        # BatchGetItem refuses a key named twice (a delegate exchanging its own token).
        reads["consents"] = list({(k["user_id"], k["client_id"]): k for k in keys}.values())
        return reads

    def exchange(self, *, client: Client, subject_token: str, items: Mapping[str, list[Item]],
                 issuer: str, scope: tuple[str, ...] | None, aud: str | list[str] | None,
                 source_ip: str) -> dict[str, Any]:
        """RFC 8693 §2.2.1: the delegated token, or invalid_grant / invalid_scope."""
        audit: dict[str, Any] = {"client_id": client.client_id, "source": source_ip}
        claims = self.subject_claims(subject_token, issuer)
        if claims is None:
            self._refused(audit, "not a person's valid access token")
            raise InvalidGrant(NOT_A_PERSONS_TOKEN)
        audit.update(user_id=claims["sub"], sid=claims["sid"],
                     subject_client_id=claims["client_id"])
        if not self.accepts_audience(claims, client, issuer):
            self._refused(audit, "subject token for another audience")
            raise InvalidGrant(OTHER_AUDIENCE)
        try:
            person = self.principals.from_items(claims, dict(items))
        except Unauthorized as exc:
            self._refused(audit, f"subject token dead: {exc.detail}")
            raise InvalidGrant(NOT_A_PERSONS_TOKEN, detail=exc.detail) from exc
        consents = [consent_from_item(i) for i in items.get("consents") or []
                    if i.get("user_id") == person.user.id and i.get("client_id") == client.client_id]
        if not consents:
            self._refused(audit, "no consent")
            raise InvalidGrant(NO_CONSENT)
        # SPEC §6: the client's scopes ∩ the presented token's ∩ the person's consent.
        allowed = [s for s in client.scopes
                   if s in person.scopes and s in consents[0].scopes]
        if scope is not None:
            beyond = [s for s in scope if s not in allowed]
            if beyond:
                self._refused(audit, f"scope beyond the delegation: {' '.join(beyond)}")
                raise InvalidScope(f"Scope beyond what may be delegated: {' '.join(beyond)}")
            granted = list(scope)
        else:
            granted = allowed
        if not granted:
            self._refused(audit, "no scope in common")
            raise InvalidScope("The client, the token and the consent have no scope in common")
        now = self.clock.now()
        # Never past the presented token's own expiry.
        lifetime = min(self.settings.access_token_seconds, int(claims["exp"]) - now)
        if lifetime < 1:
            self._refused(audit, "subject token expires now")
            raise InvalidGrant(NOT_A_PERSONS_TOKEN, detail="expires now")
        act: dict[str, Any] = {"sub": client.client_id}
        if isinstance(claims.get("act"), dict):
            act["act"] = claims["act"]      # RFC 8693 §4.1: prior actors nested
        assert person.session is not None
        text = " ".join(granted)
        access_token = self.issuer.access_token(
            issuer=issuer, subject=person.user.id, client_id=client.client_id, scope=text,
            session_id=person.session.id, auth_time=person.session.auth_time,
            lifetime=lifetime, extra={"act": act}, aud=aud,
            alg=client.access_token_signed_response_alg)
        event("delegation_exchange", outcome="issued", **audit, scope=text, aud=aud,
              expires_in=lifetime)
        # RFC 8693 §2.2.1; no refresh token.
        return {"access_token": access_token, "issued_token_type": ACCESS_TOKEN_TYPE,
                "token_type": "Bearer", "expires_in": lifetime, "scope": text}

    @staticmethod
    def _refused(audit: dict[str, Any], reason: str) -> None:
        event("delegation_exchange", outcome="refused", **audit, reason=reason)
