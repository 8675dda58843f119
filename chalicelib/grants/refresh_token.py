"""Refresh Token grant (RFC 6749 §6) with rotation (RFC 9700 §4.14.2).

One conditional write, no read: the session item is updated only if the
presented token is its current one; the reply carries the session back.
"""

from __future__ import annotations

from typing import Any

from chalicelib.grants import TokenContext, parse_scope, required, scope_for_client
from chalicelib.models import Client
from chalicelib.services.audiences import audience_of, parse_resources

GRANT_TYPE = "refresh_token"
ANONYMOUS = False


def prefetch(ctx: TokenContext, params: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    required(params, "refresh_token")
    return {}


def handle(ctx: TokenContext, client: Client, params: dict[str, str],
           items: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    # 1. validate the request (RFC 6749 §6)
    token = required(params, "refresh_token")
    requested = parse_scope(params.get("scope"))
    if requested is not None:
        scope_for_client(client, requested)
    # RFC 8707 §2.2: a refresh keeps the login's resources or narrows to some of
    # them; the rotation's own condition refuses any other (no registry read).
    resources = parse_resources(params.get("resource"))
    # 2. rotate, then answer
    # RFC 6749 §6: no scope beyond the session's grant, on every path (a rotation,
    # a grace-window retry); the session's grant follows its user's rights.
    rotation = ctx.deps.sessions.rotate(token, client.client_id, requested or (),
                                        resources=resources)
    session = rotation.session
    # OIDC Core §12.2: where the session's scope has ``openid`` the answer has an
    # ID token too, built from the session alone (no profile claims: those are at
    # userinfo), so the grant stays at one write and no read.
    return ctx.deps.token_issuer.session_response(
        issuer=ctx.issuer, user=None, client=client, session=session,
        refresh_token=rotation.refresh_token, scope=rotation.scope,
        aud=audience_of(client, resources or session.resources))
