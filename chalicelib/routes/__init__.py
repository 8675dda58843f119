"""Thin blueprints, one per area. ``endpoints()`` feeds discovery; ``ANY`` and
``caller_of`` are what every area's routes share."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chalicelib.container import container
from chalicelib.http import authenticated, header, issuer_of, note_token_expiration, source_ip

if TYPE_CHECKING:
    from chalice.app import Request

    from chalicelib.services.principals import Principal
    from chalicelib.services.security_log import Where

# A route's ``content_types``: a handler takes any body and checks it itself (a JSON
# body, a form, or none), so the answer is ours (415, 422), never Chalice's.
ANY = ["*/*"]

# Discovery metadata name -> path, for the endpoints that exist.
_ENDPOINTS: dict[str, str] = {
    "authorization_endpoint": "/oauth/authorize",
    "end_session_endpoint": "/oauth/logout",
    "revocation_endpoint": "/oauth/revoke",
    "introspection_endpoint": "/oauth/introspect",
    "userinfo_endpoint": "/oauth/userinfo",
    "device_authorization_endpoint": "/oauth/device_authorization",
}


def endpoints() -> dict[str, str]:
    return dict(_ENDPOINTS)


def where_of(request: Request) -> Where:
    """Where a request came from, for the security log (SPEC §11)."""
    from chalicelib.services.security_log import Where

    return Where(source_ip(request), (header(request, "user-agent") or "")[:256])


def caller_of(request: Request,
              require: Callable[[Principal], None] | None = None) -> Principal:
    """Who calls the JSON API: the principal of the presented token (a bearer token,
    or a PAT in the ``session`` query parameter where the stage allows it), then
    ``require`` (the area's scope rule), if given. A 401 carries its challenges."""
    c = container()
    issuer = issuer_of(request, c.settings)
    principal = authenticated(request, lambda token: c.principals.authenticate(token, issuer),
                              query_param=c.settings.pat_query_param)
    note_token_expiration(principal.announced_expiry())
    if principal.pat is not None:
        # A PAT used from an address it has not been used from (SPEC §11): one
        # transaction then, nothing otherwise.
        c.pat_credentials.used_from(principal, where_of(request))
    if require is not None:
        require(principal)
    return principal
