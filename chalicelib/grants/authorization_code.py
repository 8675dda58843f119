"""Authorization Code grant, the token request (RFC 6749 §4.1.3, RFC 7636 §4.5).

SPEC §9: one conditional write and one write. The write spends the code
(``Authorization.redeem``: single use, unexpired, this client, the request's
redirect URI, the PKCE verifier's challenge); the transaction then creates the
session, records it on its user (still at the version the approval saw) and
checks that the person's consent to this client still covers the scope. The
code carries what the ID token needs, so no read of the user.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from chalicelib.grants import TokenContext, required
from chalicelib.models import Client

GRANT_TYPE = "authorization_code"
ANONYMOUS = False
REFUSAL = "The authorization is no longer valid: the account changed or the consent was withdrawn"


def prefetch(ctx: TokenContext, params: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    required(params, "code")
    return {}


def handle(ctx: TokenContext, client: Client, params: dict[str, str],
           items: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    sessions, authorization = ctx.deps.sessions, ctx.deps.authorization
    # The session's id is drawn first: the code records it, so a second use of the
    # code can end it (RFC 6749 §4.1.2) and an SDK retry recognises its own write.
    draft = sessions.new_session(user_id="", client_id=client.client_id, scope="",
                                 device={"ip": ctx.source_ip, "user_agent": ctx.user_agent})
    # 1. validate the request: the code, its client, redirect URI and verifier
    code = authorization.redeem(client, params, draft.id)
    # 2. create the response: the session, as the password grant makes one;
    # auth_time (OIDC Core §2) is when the person signed in to the browser.
    session = dataclasses.replace(
        draft, user_id=code.user_id, scope=code.scope, auth_time=code.auth_time, amr=code.amr,
        device={**draft.device, "browser_session": code.web_session_id})
    refresh_token = sessions.mint_refresh_token(session)
    user = code.user()
    sessions.open(session, refresh_token, user,
                  [authorization.consents.op_check_covers(user.id, client.client_id,
                                                          code.scope.split())],
                  refusal=REFUSAL)
    return ctx.deps.token_issuer.session_response(
        issuer=ctx.issuer, user=user, client=client, session=session,
        refresh_token=refresh_token, scope=session.scope, nonce=code.nonce or None)
