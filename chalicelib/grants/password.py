"""Resource Owner Password Credentials grant (RFC 6749 §4.3).

Only for clients allow-listed for it. One BatchGetItem (user, counters, and the
client unless cached) and one write on success: a transaction that creates the
session, records it on the user (only if the user is still active and
unchanged) and clears the user's failure counter if it had any.
"""

from __future__ import annotations

from typing import Any

from chalicelib.errors import InvalidGrant, InvalidScope
from chalicelib.grants import (
    TokenContext,
    parse_scope,
    requested_audience,
    required,
    scope_for_client,
)
from chalicelib.models import Client
from chalicelib.services import mfa_policy
from chalicelib.services.security_log import Where

GRANT_TYPE = "password"
ANONYMOUS = False
SECOND_FACTOR_REQUIRED = ("A browser sign-in with a second factor is required: use the device "
                          "flow (tessera login) or the authorization code flow")


def prefetch(ctx: TokenContext, params: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    username = required(params, "username")
    required(params, "password")
    return ctx.deps.password_signin.reads(username, ctx.source_ip)


def handle(ctx: TokenContext, client: Client, params: dict[str, str],
           items: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    # 1. validate the request (RFC 6749 §4.3.2)
    username, password = required(params, "username"), required(params, "password")
    scopes = scope_for_client(client, parse_scope(params.get("scope")))
    resources, aud = requested_audience(ctx, client, params)    # RFC 8707 §2
    signin = ctx.deps.password_signin
    where = Where(ctx.source_ip, ctx.user_agent)
    user, user_counter = signin.check(username, password, ctx.source_ip, items,
                                      user_agent=ctx.user_agent)
    if client.require_mfa or mfa_policy.password_alone_refused(user, signin.settings,
                                                               signin.clock.now()):
        # SPEC §11: a password alone opens no session of a person with a second
        # factor (or who must have one): first-party CLIs use the device flow.
        raise InvalidGrant(SECOND_FACTOR_REQUIRED, detail="second factor required")
    granted = tuple(s for s in scopes if user.allows(s))
    if not granted:
        raise InvalidScope("None of the requested scopes is available to this user")
    # 2. create the response: a new session, written once (RFC 6749 §4.3.3); its
    # scope is bounded by the client's and the user's current rights
    sessions = ctx.deps.sessions
    session = sessions.new_session(user_id=user.id, client_id=client.client_id,
                                   scope=" ".join(granted),
                                   device={"ip": ctx.source_ip, "user_agent": ctx.user_agent},
                                   resources=resources)
    refresh_token = sessions.mint_refresh_token(session)
    # The security log's entry rides in the same transaction (SPEC §9: one write).
    sessions.open_after_signin(session, refresh_token, user, user_counter, ctx.deps.throttle,
                               signin.signed_in(user, session, where))
    return ctx.deps.token_issuer.session_response(
        issuer=ctx.issuer, user=user, client=client, session=session,
        refresh_token=refresh_token, scope=session.scope, aud=aud)
