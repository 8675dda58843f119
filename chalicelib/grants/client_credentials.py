"""Client Credentials grant (RFC 6749 §4.4): a confidential service client gets
an access token for itself.

Nothing is read besides the client (cached per instance, or in the token
endpoint's one BatchGetItem) and nothing is written (SPEC §9): the token is a
JWT verified offline, and no refresh token comes with it (RFC 6749 §4.4.3).
"""

from __future__ import annotations

from typing import Any

from chalicelib.grants import TokenContext, parse_scope, requested_audience, scope_for_client
from chalicelib.models import Client
from chalicelib.services.authn import client_auth_failed

GRANT_TYPE = "client_credentials"


def prefetch(ctx: TokenContext, params: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    return {}


def handle(ctx: TokenContext, client: Client, params: dict[str, str],
           items: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    # 1. validate the request (RFC 6749 §4.4.2): "The client credentials grant
    # type MUST only be used by confidential clients", which authenticate (§3.2.1).
    if client.public:
        raise client_auth_failed("The client credentials grant requires client authentication")
    # RFC 6749 §3.3: requested ∩ registered, anything else invalid_scope; none
    # requested: every scope registered for the client.
    scopes = scope_for_client(client, parse_scope(params.get("scope")))
    _, aud = requested_audience(ctx, client, params)    # RFC 8707 §2
    # 2. create the response (RFC 6749 §4.4.3)
    return ctx.deps.token_issuer.client_response(issuer=ctx.issuer, client=client,
                                                 scope=" ".join(scopes), aud=aud)
