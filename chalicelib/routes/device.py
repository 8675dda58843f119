"""The device authorization endpoint (RFC 8628 §3.1) and its verification page (§3.3)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint, Response

from chalicelib.container import Container, container
from chalicelib.errors import UnauthorizedClient
from chalicelib.http import header, issuer_of, json_response, oauth_endpoint, source_ip
from chalicelib.routes import ANY
from chalicelib.routes.oauth import client_request
from chalicelib.routes.page_visit import serve
from chalicelib.web.page import page_endpoint

if TYPE_CHECKING:
    from chalicelib.web.device_page import DevicePage

bp = Blueprint(__name__)


@bp.route("/oauth/device_authorization", methods=["POST"], content_types=ANY)
@oauth_endpoint
def device_authorization() -> Response:
    from chalicelib import grants
    from chalicelib.grants.device_code import GRANT_TYPE
    from chalicelib.services.device_flow import display_user_code

    request, c = bp.current_request, container()
    params, client = client_request(request, c)
    if not client.allows_grant(GRANT_TYPE):
        raise UnauthorizedClient("This client may not use the device authorization grant")
    scopes = grants.scope_for_client(client, grants.parse_scope(params.get("scope")))
    started = c.device_flow.start(client_id=client.client_id, scope=" ".join(scopes),
                                  source_ip=source_ip(request),
                                  user_agent=(header(request, "user-agent") or "")[:256])
    issuer, user_code = issuer_of(request, c.settings), display_user_code(started.request.user_code)
    # RFC 8628 §3.2: the device authorization response.
    return json_response({
        "device_code": started.device_code,
        "user_code": user_code,
        "verification_uri": f"{issuer}/device",
        "verification_uri_complete": f"{issuer}/device?user_code={user_code}",
        "expires_in": c.settings.device_code_seconds,
        "interval": started.request.interval,
    })


def _page(c: Container) -> DevicePage:
    from chalicelib.web.device_page import DevicePage  # on the first page request

    return DevicePage(c.device_flow, c.client_directory)


@bp.route("/device", methods=["GET"], content_types=ANY)
@page_endpoint
def device_get() -> Response:
    c = container()
    return serve(bp.current_request, c, _page(c).show)


@bp.route("/device", methods=["POST"], content_types=ANY)
@page_endpoint
def device_post() -> Response:
    c = container()
    return serve(bp.current_request, c, _page(c).submit, form=True)
