"""Token Exchange (RFC 8693) of a CI job's OIDC ID token for a role token (SPEC §6).

``subject_token`` is the job's JWT, ``subject_token_type`` names it an ID token
(or a JWT), ``audience`` names the role as ``urn:tessera:role:<name>``. No client
authentication is needed (the job token is the credential); a client that does
identify itself must authenticate as usual and be allowed this grant, and its id
becomes the role token's ``client_id`` (otherwise ``urn:tessera:role:<name>``).

The role and its owner are read in the token endpoint's one BatchGetItem with
the client; the replay guard is the one write (SPEC §9). Delegation
(``subject_token_type`` ``…:access_token``) is not served yet.
"""

from __future__ import annotations

from typing import Any

from chalicelib.errors import InvalidRequest, InvalidTarget
from chalicelib.grants import TokenContext, parse_scope, required
from chalicelib.models import Client
from chalicelib.services.federation import role_name_of

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
# The job token is the credential: a client may stay anonymous.
ANONYMOUS = True

# RFC 8693 §3: the token types a job token may be presented as.
SUBJECT_TOKEN_TYPES = frozenset({"urn:ietf:params:oauth:token-type:id_token",
                                 "urn:ietf:params:oauth:token-type:jwt"})
ISSUED_TOKEN_TYPES = frozenset({"urn:ietf:params:oauth:token-type:access_token"})


def _role_name(params: dict[str, str]) -> str:
    """Validate the request (RFC 8693 §2.1) and name the role it asks for."""
    subject_token_type = required(params, "subject_token_type")
    required(params, "subject_token")
    if subject_token_type not in SUBJECT_TOKEN_TYPES:
        raise InvalidRequest("unsupported subject_token_type")
    if "actor_token" in params or "actor_token_type" in params:
        raise InvalidRequest("actor_token is not supported")
    requested = params.get("requested_token_type")
    if requested is not None and requested not in ISSUED_TOKEN_TYPES:
        raise InvalidRequest("unsupported requested_token_type")
    if "resource" in params:
        # RFC 8693 §2.2.2; the role's token is for Tessera's own audience only.
        raise InvalidTarget("resource is not supported here: name the role in audience")
    audience = required(params, "audience")
    name = role_name_of(audience)
    if name is None:
        raise InvalidTarget("audience must be urn:tessera:role:<role name>")
    return name


def prefetch(ctx: TokenContext, params: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    return ctx.deps.federation.reads(_role_name(params))


def handle(ctx: TokenContext, client: Client | None, params: dict[str, str],
           items: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    # 1. validate the request (RFC 8693 §2.1)
    name = _role_name(params)
    scope = parse_scope(params.get("scope"))
    # 2. verify the job token, guard against its replay, answer (RFC 8693 §2.2.1)
    return ctx.deps.federation.exchange(
        role_name=name, subject_token=params["subject_token"], items=items, issuer=ctx.issuer,
        client_id=client.client_id if client is not None else None, scope=scope,
        source_ip=ctx.source_ip)
