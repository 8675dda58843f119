"""Resource Owner Password Credentials grant (RFC 6749 §4.3).

Only for clients allow-listed for it. One BatchGetItem (user, counters, and the
client unless cached) and one write (the session) on success.
"""

from __future__ import annotations

from typing import Any

from chalicelib.errors import InvalidScope
from chalicelib.grants import TokenContext, parse_scope, required, scope_for_client
from chalicelib.models import Client, user_id_for
from chalicelib.storage.identities import user_from_item

GRANT_TYPE = "password"


def prefetch(ctx: TokenContext, params: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    username = required(params, "username")
    required(params, "password")
    signin = ctx.c.password_signin
    return {
        "users": [ctx.c.users.key(user_id_for(username))],
        "throttle": [{"pk": signin.user_counter_key(username)},
                     {"pk": signin.source_counter_key(ctx.source_ip)}],
    }


def handle(ctx: TokenContext, client: Client, params: dict[str, str],
           items: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    # 1. validate the request (RFC 6749 §4.3.2)
    username, password = required(params, "username"), required(params, "password")
    scopes = scope_for_client(client, parse_scope(params.get("scope")))
    signin = ctx.c.password_signin
    counter_items = {i["pk"]: i for i in items.get("throttle", [])}
    counters = signin.counters(username, ctx.source_ip, counter_items)
    found = items.get("users") or []
    user = signin.verify(username, password, ctx.source_ip,
                         user_from_item(found[0]) if found else None, counters)
    granted = tuple(s for s in scopes if user.allows(s))
    if not granted:
        raise InvalidScope("None of the requested scopes is available to this user")
    # 2. create the response: a new session, written once (RFC 6749 §4.3.3)
    sessions = ctx.c.sessions
    session = sessions.new_session(user_id=user.id, client_id=client.client_id,
                                   scope=" ".join(granted),
                                   device={"ip": ctx.source_ip, "user_agent": ctx.user_agent})
    refresh_token = sessions.mint_refresh_token(session)
    user_counter = counters[0]
    if user_counter.failures:
        # The session and the reset of the user's failure counter, atomically.
        ctx.c.transact([sessions.create_op(session, refresh_token),
                        ctx.c.throttle.op_clear(user_counter.key)])
    else:
        sessions.create(session, refresh_token)
    return ctx.c.issuer.session_response(issuer=ctx.issuer, user=user, client=client,
                                         session=session, refresh_token=refresh_token,
                                         scope=session.scope)
