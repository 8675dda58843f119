"""Token Exchange (RFC 8693) of a CI job's OIDC ID token for a role token (SPEC §6).

``subject_token`` is the job's JWT, ``subject_token_type`` names it an ID token
(or a JWT), ``audience`` names the role as ``urn:tessera:role:<name>``. No client
authentication is needed (the job token is the credential); a client that does
identify itself must authenticate as usual and be allowed this grant, and its id
becomes the role token's ``client_id`` (otherwise ``urn:tessera:role:<name>``).

The role and its owner are read in the token endpoint's one BatchGetItem with
the client; the replay guard is the one write (SPEC §9).

Delegation (SPEC §6): ``subject_token_type`` ``…:access_token`` is a person's
access token, presented by an authenticated confidential client registered with
``delegate`` (``services.delegation``). The token's session and user and the
person's consent are read with the client in the same BatchGetItem; nothing is
written. ``audience`` and ``resource`` (RFC 8707) may name registered resources.
"""

from __future__ import annotations

from typing import Any

from chalicelib.errors import InvalidRequest, InvalidTarget, UnauthorizedClient
from chalicelib.grants import TokenContext, parse_scope, requested_audience, required
from chalicelib.models import Client
from chalicelib.services.authn import client_auth_failed

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
# The job token is the credential: a client may stay anonymous.
ANONYMOUS = True

# RFC 8693 §3: the token types a job token may be presented as.
SUBJECT_TOKEN_TYPES = frozenset({"urn:ietf:params:oauth:token-type:id_token",
                                 "urn:ietf:params:oauth:token-type:jwt"})
ISSUED_TOKEN_TYPES = frozenset({"urn:ietf:params:oauth:token-type:access_token"})
# SPEC §6 delegation: a person's access token.
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


def _is_delegation(params: dict[str, str]) -> bool:
    return params.get("subject_token_type") == ACCESS_TOKEN_TYPE


def _check_delegation_request(params: dict[str, str]) -> None:
    """Validate a delegation request (RFC 8693 §2.1): the exchanging client is the
    actor, so no actor_token; only an access token may be asked for."""
    required(params, "subject_token")
    if "actor_token" in params or "actor_token_type" in params:
        raise InvalidRequest("actor_token is not supported: the authenticated client is the actor")
    requested = params.get("requested_token_type")
    if requested is not None and requested not in ISSUED_TOKEN_TYPES:
        raise InvalidRequest("unsupported requested_token_type")


def _role_name(params: dict[str, str]) -> str:
    """Validate the request (RFC 8693 §2.1) and name the role it asks for."""
    # Here, not at import: federation brings the role machinery, which a delegation
    # exchange must not pay for (cold start, SPEC §9).
    from chalicelib.services.federation import role_name_of

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
    if _is_delegation(params):
        if ctx.client_id is None:
            # RFC 8693 §2.1 leaves client authentication to the server; delegation
            # is for a confidential client, which is the actor (SPEC §6).
            raise client_auth_failed("Delegation requires client authentication")
        _check_delegation_request(params)
        # Verified offline; a token that fails is refused in handle, after the
        # client is authenticated, with nothing read for it.
        delegation = ctx.deps.delegation
        claims = delegation.subject_claims(params["subject_token"], ctx.issuer)
        return delegation.reads(claims, ctx.client_id)
    return ctx.deps.federation.reads(_role_name(params))


def handle(ctx: TokenContext, client: Client | None, params: dict[str, str],
           items: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    if _is_delegation(params):
        return _delegate(ctx, client, params, items)
    # 1. validate the request (RFC 8693 §2.1)
    name = _role_name(params)
    scope = parse_scope(params.get("scope"))
    # 2. verify the job token, guard against its replay, answer (RFC 8693 §2.2.1)
    return ctx.deps.federation.exchange(
        role_name=name, subject_token=params["subject_token"], items=items, issuer=ctx.issuer,
        client_id=client.client_id if client is not None else None, scope=scope,
        source_ip=ctx.source_ip)


def _delegate(ctx: TokenContext, client: Client | None, params: dict[str, str],
              items: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    # 1. validate the request: a confidential client allowed to delegate (SPEC §6)
    if client is None or client.public:
        raise client_auth_failed("Delegation requires client authentication")
    if not client.delegate:
        raise UnauthorizedClient("This client may not act for a person (delegate)")
    _check_delegation_request(params)
    scope = parse_scope(params.get("scope"))
    # RFC 8693 §2.1 ``audience`` and RFC 8707 ``resource``: registered resources,
    # both becoming the token's ``aud``.
    named = " ".join(v for v in (params.get("resource"), params.get("audience")) if v)
    _, aud = requested_audience(ctx, client, {"resource": named} if named else {})
    # 2. verify the person's token and consent, answer (RFC 8693 §2.2.1)
    return ctx.deps.delegation.exchange(
        client=client, subject_token=params["subject_token"], items=items, issuer=ctx.issuer,
        scope=scope, aud=aud, source_ip=ctx.source_ip)
