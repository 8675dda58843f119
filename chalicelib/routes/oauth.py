"""The OAuth endpoints: token (RFC 6749 §3.2), revocation (RFC 7009),
introspection (RFC 7662) and UserInfo (OIDC Core §5.3).

The token endpoint is a pipeline of small named steps, as in node-oidc-provider:
no-cache, parse, identify the client, pick the grant, read what the grant
needs with the client in one round trip, authenticate the client, check the
grant is allowed, handle. A grant whose presented token is the credential (the
token exchange of a CI job token) may name no client; one that names itself is
authenticated all the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Response

from chalicelib.container import Container, container
from chalicelib.errors import (
    Forbidden,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    Unauthorized,
    UnauthorizedClient,
    UnsupportedGrantType,
    bearer_challenge,
)
from chalicelib.http import (
    FORM,
    authenticated,
    basic_credentials,
    header,
    issuer_of,
    json_response,
    media_type,
    oauth_endpoint,
    parse_form,
    source_ip,
    token_challenges,
)
from chalicelib.routes import ANY
from chalicelib.routes.cors import cors, preflight

if TYPE_CHECKING:
    from chalicelib.grants import GrantDeps
    from chalicelib.models import Client
    from chalicelib.services.authn import ClientCredentials

# The grants and services are imported by the handlers that run them (SPEC §9):
# ``import app`` registers every route; a first request loads what it runs.

bp = Blueprint(__name__)


# RFC 8707 §2: "multiple resource parameters MAY be used".
REPEATABLE = frozenset({"resource"})


def _form(request: Any) -> dict[str, str]:
    from chalicelib.grants import MAX_PARAM

    params = parse_form(request, repeatable=REPEATABLE)
    for name, value in params.items():
        # A client id of any length is a failed client authentication (ClientCredentials).
        if len(value) > MAX_PARAM and name != "client_id":
            raise InvalidRequest(f"Parameter '{name}' is too long")
    return params


def _credentials(request: Any, params: dict[str, str]) -> ClientCredentials:
    from chalicelib.services.authn import ClientCredentials, client_auth_failed

    try:
        basic = basic_credentials(request)
    except ValueError as exc:
        raise client_auth_failed("Malformed Basic credentials") from exc
    return ClientCredentials.from_request(basic, params)


def _anonymous(request: Any, params: dict[str, str]) -> bool:
    """The request names no client: no Basic credentials, no client_id, no client_secret."""
    scheme = (header(request, "authorization") or "").strip().partition(" ")[0]
    return scheme.lower() != "basic" and "client_id" not in params and "client_secret" not in params


def _client(c: Container, creds: ClientCredentials,
            prefetched: dict[str, list[dict[str, Any]]] | None = None) -> Client:
    """The client named by ``creds``, authenticated (read in ``prefetched`` if there).

    A role key (``client_id=tka_…``) is its own client: its role and owner are read
    in one BatchGetItem, and the clients table is not consulted."""
    if creds.role_key:
        return c.role_credentials.authenticate_client(creds.client_id, creds.secret)
    directory = c.client_directory
    if prefetched is not None and "clients" in prefetched:
        items = prefetched["clients"]
        client = directory.remember(creds.client_id, items[0] if items else None)
    else:
        client = directory.get(creds.client_id)
    return directory.authenticate(creds, client)


def grant_deps(c: Container) -> GrantDeps:
    """What a grant may use, from the composition root; each built on first use."""
    from chalicelib.grants import GrantDeps

    return GrantDeps(sessions=lambda: c.sessions, token_issuer=lambda: c.issuer,
                     password_signin=lambda: c.password_signin,
                     device_flow=lambda: c.device_flow, users=lambda: c.users,
                     throttle=lambda: c.throttle, federation=lambda: c.federation,
                     audiences=lambda: c.audiences, authorization=lambda: c.authorization,
                     delegation=lambda: c.delegation)


def client_request(request: Any, c: Container) -> tuple[dict[str, str], Client]:
    """The shared first steps of the OAuth endpoints: parse the form, authenticate the client."""
    params = _form(request)
    return params, _client(c, _credentials(request, params))


@bp.route("/oauth/token", methods=["POST"], content_types=ANY)
@cors(bp)
@oauth_endpoint
def token() -> Response:
    from chalicelib import grants
    from chalicelib.grants import TokenContext

    request, c = bp.current_request, container()
    params = _form(request)
    grant_type = params.get("grant_type")
    grant = grants.lookup(grant_type or "")
    # A grant whose token is itself the credential may name no client (RFC 8693).
    anonymous = grant is not None and grant.ANONYMOUS and _anonymous(request, params)
    creds = None if anonymous else _credentials(request, params)
    if not grant_type:
        raise InvalidRequest("Missing required parameter 'grant_type'")
    if grant is None:
        raise UnsupportedGrantType(f"Unsupported grant_type '{grant_type}'")
    ctx = TokenContext(deps=grant_deps(c), issuer=issuer_of(request, c.settings),
                       source_ip=source_ip(request),
                       user_agent=(header(request, "user-agent") or "")[:256],
                       client_id=None if creds is None else creds.client_id)
    reads = grant.prefetch(ctx, params)
    client: Client | None
    if creds is None:
        # No client at all (an ANONYMOUS grant): the grant's own reads only.
        items = c.batch_get(reads) if reads else {}
        client = None
    elif creds.role_key:
        # SPEC §9: a role key is authenticated by its one read (role and owner), and
        # may use client_credentials only, which reads nothing more.
        client = _client(c, creds)
        _check_origin(request, client)
        _check_grant_allowed(client, grant_type)
        items = c.batch_get(reads) if reads else {}
    else:
        if not c.client_directory.cached(creds.client_id)[0]:
            reads = {**reads, "clients": [c.clients.key(creds.client_id)]}
        items = c.batch_get(reads) if reads else {}
        client = _client(c, creds, items)
        _check_origin(request, client)
        _check_grant_allowed(client, grant_type)
    return json_response(grant.handle(ctx, client, params, items))


def _check_origin(request: Any, client: Client) -> None:
    """A browser sends ``Origin`` with a cross-origin request (Fetch Standard
    §3.1): a browser app may use only a client that registered its origin, so a
    page elsewhere cannot spend a code or refresh token of the app's client."""
    origin = header(request, "origin")
    if origin is not None and origin not in client.web_origins:
        raise InvalidRequest(f"Origin {origin[:100]!r} is not a registered web origin of "
                             "this client")


def _check_grant_allowed(client: Client, grant_type: str) -> None:
    if not client.allows_grant(grant_type):
        raise UnauthorizedClient(f"This client may not use the {grant_type} grant")


@bp.route("/oauth/revoke", methods=["POST"], content_types=ANY)
@cors(bp)
@oauth_endpoint
def revoke() -> Response:
    request, c = bp.current_request, container()
    params, client = client_request(request, c)
    token_value = params.get("token")
    if not token_value:
        raise InvalidRequest("Missing required parameter 'token'")
    c.oauth_tokens.revoke(client, token_value, issuer_of(request, c.settings))
    # RFC 7009 §2.2: 200 whether or not the token was known.
    return json_response({})


# Preflights of what a browser app calls; introspection is server to server:
# no CORS (RFC 7662 §4: only protected resources, authenticated, may ask).
preflight(bp, "/oauth/token", "POST")
preflight(bp, "/oauth/revoke", "POST")
preflight(bp, "/oauth/userinfo", "GET, POST")


@bp.route("/oauth/introspect", methods=["POST"], content_types=ANY)
@oauth_endpoint
def introspect() -> Response:
    from chalicelib.services.authn import client_auth_failed

    request, c = bp.current_request, container()
    params, client = client_request(request, c)
    if client.public:
        raise client_auth_failed("Introspection requires client authentication")
    if not client.introspect:
        raise UnauthorizedClient("This client may not introspect tokens")
    token_value = params.get("token")
    if not token_value:
        raise InvalidRequest("Missing required parameter 'token'")
    return json_response(c.oauth_tokens.introspect(token_value, issuer_of(request, c.settings)))


@bp.route("/oauth/userinfo", methods=["GET", "POST"], content_types=ANY)
@cors(bp)
@oauth_endpoint
def userinfo() -> Response:
    request, c = bp.current_request, container()
    issuer = issuer_of(request, c.settings)
    body_token = _body_access_token(request)
    try:
        if body_token is not None:
            principal = c.principals.from_end_user_token(body_token, issuer)
        else:
            principal = authenticated(request,
                                      lambda t: c.principals.from_end_user_token(t, issuer),
                                      query_param=False)
    except Unauthorized as exc:
        # RFC 6750 §3.1: the challenge names the error only when a token came, and
        # then says what the body says.
        challenges = exc.challenges if body_token is None else token_challenges(presented=True)
        raise InvalidToken("The access token is not valid", challenges=challenges) from exc
    except Forbidden as exc:
        # OIDC Core §5.3: UserInfo returns claims about an end-user; a client
        # credentials token (RFC 6749 §4.4) or a role token (SPEC §6) has none, so
        # it is not valid here.
        raise InvalidToken(exc.description,
                           challenges=(bearer_challenge("invalid_token"),)) from exc
    if "openid" not in principal.scopes:
        raise InsufficientScope("The access token lacks the openid scope",
                                challenges=(bearer_challenge("insufficient_scope", "openid"),))
    from chalicelib.services import oauth_tokens

    return json_response(oauth_tokens.userinfo_claims(principal))


def _body_access_token(request: Any) -> str | None:
    """The access token of a form-encoded POST body (OIDC Core §5.3.1, RFC 6750 §2.2), or None.

    RFC 6750 §2.3 allows the URI query too; UserInfo refuses it there ("SHOULD NOT
    be used": it ends up in logs and histories), and §2: one method per request.
    """
    if "access_token" in (request.query_params or {}):
        raise InvalidRequest("Send the access token in the Authorization header or a form-encoded "
                             "POST body, not in the query string",
                             challenges=(bearer_challenge("invalid_request"),))
    if request.method != "POST" or media_type(request) != FORM:
        return None
    token = parse_form(request).get("access_token")
    if token is not None and header(request, "authorization"):
        raise InvalidRequest("Present the access token once: in the Authorization header or the "
                             "request body, not both",
                             challenges=(bearer_challenge("invalid_request"),))
    return token
