"""Device Authorization Grant, the token request (RFC 8628 §3.4, §3.5).

A pending poll is one conditional write and no read (the condition also paces
the polling). Once approved, the code is spent, the session created and recorded on its user in
one transaction: of concurrent polls exactly one gets a token response, and none
after the user was disabled.
"""

from __future__ import annotations

from typing import Any

from chalicelib.errors import ConditionFailed, InvalidGrant
from chalicelib.grants import TokenContext, requested_audience, required
from chalicelib.models import Client
from chalicelib.storage.devices import DevicesRepo

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
ANONYMOUS = False
INACTIVE = "The approving account is no longer active"


def prefetch(ctx: TokenContext, params: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    required(params, "device_code")
    return {}


def handle(ctx: TokenContext, client: Client, params: dict[str, str],
           items: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    # 1. validate the request: pending, slow_down, denied, expired, foreign (RFC 8628 §3.5)
    resources, aud = requested_audience(ctx, client, params)    # RFC 8707 §2
    flow = ctx.deps.device_flow
    request = flow.poll(client.client_id, required(params, "device_code"))
    user = ctx.deps.users.get(request.user_id)
    if user is None or not user.active:
        raise InvalidGrant(INACTIVE, detail="user gone")
    # The approval granted scopes the user held then; mint only what they still hold.
    scope = " ".join(s for s in request.granted_scope.split() if user.allows(s))
    if request.granted_scope and not scope:
        raise InvalidGrant("The approving account no longer holds the approved scopes",
                           detail="user narrowed since approval")
    # 2. create the response: a new session exactly as the password grant makes one,
    # written in the same transaction that spends the code (RFC 8628 §3.5 single use).
    # auth_time (OIDC Core §2) is when the person signed in to approve, not now.
    sessions = ctx.deps.sessions
    session = sessions.new_session(user_id=user.id, client_id=client.client_id, scope=scope,
                                   device={"ip": ctx.source_ip, "user_agent": ctx.user_agent},
                                   auth_time=request.auth_time or None, resources=resources,
                                   amr=request.amr)
    refresh_token = sessions.mint_refresh_token(session)
    try:
        sessions.open(session, refresh_token, user, [flow.consume_op(request, session)],
                      refusal=INACTIVE)
    except ConditionFailed as lost:
        # A retried request whose first try committed finds the code spent by this
        # very session: the tokens are still ours to deliver (single use holds).
        if not DevicesRepo.consumed_by(lost.item, session.id):
            raise InvalidGrant("Invalid device code", detail="device code already used") from lost
    return ctx.deps.token_issuer.session_response(
        issuer=ctx.issuer, user=user, client=client, session=session,
        refresh_token=refresh_token, scope=session.scope, aud=aud)
