"""Client Credentials grant (RFC 6749 §4.4): a confidential service client gets
an access token for itself, and a role key gets a role token (SPEC §6).

Nothing is read besides the client (cached per instance, or in the token
endpoint's one BatchGetItem; for a role key, its role and owner in one
BatchGetItem) and nothing is written (SPEC §9), except a role key's
``last_used_at`` at most every ten minutes: the token is a JWT verified offline,
and no refresh token comes with it (RFC 6749 §4.4.3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.grants import TokenContext, parse_scope, requested_audience, scope_for_client
from chalicelib.models import Client
from chalicelib.services.authn import client_auth_failed

if TYPE_CHECKING:
    from chalicelib.services.role_credentials import RoleKeyClient

GRANT_TYPE = "client_credentials"
ANONYMOUS = False


def prefetch(ctx: TokenContext, params: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    return {}


def handle(ctx: TokenContext, client: Client, params: dict[str, str],
           items: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    # 1. validate the request (RFC 6749 §4.4.2): "The client credentials grant
    # type MUST only be used by confidential clients", which authenticate (§3.2.1).
    if client.public:
        raise client_auth_failed("The client credentials grant requires client authentication")
    # Here, not at import: only a role key's request needs the role machinery; an
    # ordinary client's grant must not pay for it (cold start, SPEC §9).
    from chalicelib.services.role_credentials import RoleKeyClient

    if isinstance(client, RoleKeyClient) and client.active is not None:
        return _role_token(ctx, client, params)
    # RFC 6749 §3.3: requested ∩ registered, anything else invalid_scope; none
    # requested: every scope registered for the client.
    scopes = scope_for_client(client, parse_scope(params.get("scope")))
    _, aud = requested_audience(ctx, client, params)    # RFC 8707 §2
    # 2. create the response (RFC 6749 §4.4.3)
    return ctx.deps.token_issuer.client_response(issuer=ctx.issuer, client=client,
                                                 scope=" ".join(scopes), aud=aud)


def _role_token(ctx: TokenContext, client: RoleKeyClient, params: dict[str, str]) -> dict[str, Any]:
    """SPEC §6: a 1 h role token whose permissions are the role's policies ∩ its
    owner's current rights, narrowed to a requested scope (its actions)."""
    from chalicelib.services.role_credentials import granted_permissions, scopes_of

    active = client.active
    assert active is not None
    permissions = granted_permissions(active.permissions, parse_scope(params.get("scope")))
    return ctx.deps.token_issuer.role_response(
        issuer=ctx.issuer, role_name=active.role.name, owner_id=active.owner.id,
        client_id=client.client_id, permissions=permissions,
        scope=" ".join(scopes_of(permissions)))
