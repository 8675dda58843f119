"""RP-initiated logout (OIDC RP-Initiated Logout 1.0 §2, §3).

The ``id_token_hint`` must be an ID token this service signed (signature, ``iss``,
``typ``), expired ones included (§2: "the OP SHOULD accept ID Tokens ... when
the RP's session has expired"); its ``aud`` names the app, its ``sid`` the
session to end. ``post_logout_redirect_uri`` must be registered by that app,
exactly (§3); otherwise the browser stays here.

A browser's sign-in ends without asking only when the hint is of that sign-in:
its ``sid`` names a live app session of the same user opened from this
browser's sign-in (§2: the OP "MUST ask the End-User ... if an id_token_hint was
not provided or if the supplied ID Token does not belong to the current OP
session with the RP and/or currently logged in End-User").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.audit import log
from chalicelib.errors import BadRequest
from chalicelib.models import Client, possible_client_id
from chalicelib.services.authorization import with_query
from chalicelib.services.security_log import NOWHERE, Where

if TYPE_CHECKING:
    from chalicelib.services.sessions import Sessions

MAX_HINT = 8192


@dataclass(frozen=True)
class LogoutRequest:
    client: Client | None
    redirect_uri: str          # "" when the browser stays here
    state: str | None
    subject: str | None        # the hint's ``sub`` (None: no hint)
    session_id: str | None     # the hint's ``sid``

    def response(self) -> str:
        return with_query(self.redirect_uri, {"state": self.state} if self.state else {})


class RpLogout:
    def __init__(self, jwks_json: Callable[[], str], clients: Callable[[str], Client | None],
                 sessions: Callable[[], Sessions]) -> None:
        self.jwks_json = jwks_json
        self.clients = clients
        self._sessions = sessions

    def hint_claims(self, hint: str, issuer: str) -> dict[str, Any]:
        """The claims of one of our ID tokens, verified but for its expiry."""
        import jwt

        refused = BadRequest("The sign-out request carries an ID token this service did not "
                             "issue.", detail="bad id_token_hint")
        if len(hint) > MAX_HINT:
            raise refused
        try:
            header = jwt.get_unverified_header(hint)
            keys = {k.get("kid"): k for k in json.loads(self.jwks_json()).get("keys", [])}
            jwk = keys.get(header.get("kid"))
            if jwk is None or str(header.get("typ", "")).upper() != "JWT":
                raise refused
            claims: dict[str, Any] = jwt.decode(
                hint, jwt.PyJWK(jwk).key, algorithms=[jwk["alg"]], issuer=issuer,
                options={"require": ["iss", "sub", "aud"], "verify_aud": False,
                         "verify_exp": False, "verify_iat": False, "verify_nbf": False})
        except (jwt.PyJWTError, ValueError, KeyError) as exc:
            raise refused from exc
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("aud"), str):
            raise refused
        return claims

    def parse(self, params: Mapping[str, str], issuer: str) -> LogoutRequest:
        hint = params.get("id_token_hint") or ""
        claims = self.hint_claims(hint, issuer) if hint else {}
        client_id = params.get("client_id") or ""
        if claims and client_id and claims["aud"] != client_id:
            raise BadRequest("client_id does not match the ID token's audience.")
        client_id = client_id or str(claims.get("aud") or "")
        client = self.clients(client_id) if client_id and possible_client_id(client_id) else None
        if client_id and client is None:
            raise BadRequest("The application that sent you here is not known to this service.")
        wanted = params.get("post_logout_redirect_uri") or ""
        if wanted and (client is None or wanted not in client.post_logout_redirect_uris):
            # §3: never redirect to a URI the app has not registered.
            raise BadRequest("The application asked to send you to an address it has not "
                             "registered, so you stay here.", detail="post_logout_redirect_uri")
        sid = claims.get("sid")
        return LogoutRequest(client=client, redirect_uri=wanted, state=params.get("state"),
                             subject=claims.get("sub") if claims else None,
                             session_id=sid if isinstance(sid, str) else None)

    def of_this_sign_in(self, request: LogoutRequest, web_session_id: str, user_id: str) -> bool:
        """Whether the hint belongs to the browser sign-in ``web_session_id`` of
        ``user_id``: the app session it names is alive, that user's, and was opened
        from that sign-in (the code grant records it as ``browser_session``)."""
        if request.subject != user_id or not request.session_id:
            return False
        session = self._sessions().live(request.session_id)
        return (session is not None and session.user_id == user_id
                and session.device.get("browser_session") == web_session_id)

    def end(self, request: LogoutRequest, where: Where = NOWHERE) -> None:
        """End the session the hint names, if it is still its subject's."""
        if request.subject is None or not request.session_id:
            return
        ended = self._sessions().end_owned(
            request.session_id, request.subject, reason="rp_initiated_logout", where=where,
            client_id=request.client.client_id if request.client else "")
        log.info(json.dumps({"event": "rp_logout", "user_id": request.subject,
                             "client_id": request.client.client_id if request.client else None,
                             "sid": request.session_id, "session_ended": ended}))
