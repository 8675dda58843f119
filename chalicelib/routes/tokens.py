"""The PAT API (SPEC §5) and the scope catalog.

Authenticated by an access token of a session or by a PAT; reads need
``tokens:read`` or ``tokens:manage``, changes ``tokens:manage`` plus the owner's
password in the body (``"password"``) or a sign-in younger than ten minutes.

Bulk remove is ``POST /v1/tokens/remove`` with ``{"ids": [...]}`` (a DELETE
with a body is dropped by some proxies); it answers which ids were removed and
which were not found (another user's ids are "not found").
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response

from chalicelib.container import container
from chalicelib.http import (
    api_endpoint,
    authenticated,
    body_bytes,
    header,
    issuer_of,
    json_response,
    parse_json_object,
    query_params,
    source_ip,
)
from chalicelib.services import pats
from chalicelib.services.principals import Principal

bp = Blueprint(__name__)
ANY = ["*/*"]
NO_CONTENT: dict[str, str | list[str]] = {"Cache-Control": "no-store"}


def caller(*, write: bool) -> Principal:
    request, c = bp.current_request, container()
    issuer = issuer_of(request, c.settings)
    principal = authenticated(request, lambda token: c.principals.authenticate(token, issuer),
                              query_param=c.settings.pat_query_param)
    pats.require_scope(principal, write=write)
    return principal


def _body() -> dict[str, Any]:
    """A JSON object body; an empty body is an empty object (DELETE, regenerate)."""
    request = bp.current_request
    if not body_bytes(request):
        return {}
    return parse_json_object(request)


def _confirm(principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    """Checks the re-authentication of a change; returns the body without the password."""
    password = body.pop("password", None)
    signed_in_at = principal.session.auth_time if principal.session is not None else None
    container().confirmation.require(principal.user, password=password,
                                     signed_in_at=signed_in_at,
                                     source=source_ip(bp.current_request))
    return body


def _origin(principal: Principal) -> dict[str, str]:
    request = bp.current_request
    via = principal.client_id or f"{principal.kind}:{principal.token_id}"
    return {"client_id": via, "ip": source_ip(request),
            "user_agent": header(request, "user-agent") or ""}


@bp.route("/v1/scopes", methods=["GET"], content_types=ANY)
@api_endpoint
def scopes() -> Response:
    s = container().settings
    return json_response({"scopes": list(s.scopes),
                          "api_sets": {name: list(v) for name, v in sorted(s.api_sets.items())}})


@bp.route("/v1/tokens", methods=["POST"], content_types=ANY)
@api_endpoint
def generate() -> Response:
    principal, c = caller(write=True), container()
    body = _confirm(principal, parse_json_object(bp.current_request))
    issued = c.pats.generate(principal.user, body, _origin(principal))
    return json_response(pats.issued_view(issued, c.clock.now()), status=201)


@bp.route("/v1/tokens", methods=["GET"], content_types=ANY)
@api_endpoint
def list_tokens() -> Response:
    principal, c = caller(write=False), container()
    filters = pats.parse_filters(query_params(bp.current_request))
    now = c.clock.now()
    return json_response({"tokens": [pats.view(p, now) for p in c.pats.find(principal.user, filters)]})


@bp.route("/v1/tokens/remove", methods=["POST"], content_types=ANY)
@api_endpoint
def remove_many() -> Response:
    principal, c = caller(write=True), container()
    body = _confirm(principal, parse_json_object(bp.current_request))
    pats.only_fields(body, {"ids"})
    removed, missing = c.pats.remove_many(principal.user, body.get("ids"))
    return json_response({"removed": removed, "not_found": missing})


@bp.route("/v1/tokens/{pat_id}", methods=["GET"], content_types=ANY)
@api_endpoint
def get_token(pat_id: str) -> Response:
    principal, c = caller(write=False), container()
    return json_response(pats.view(c.pats.get(principal.user, pat_id), c.clock.now()))


@bp.route("/v1/tokens/{pat_id}", methods=["PATCH"], content_types=ANY)
@api_endpoint
def edit_token(pat_id: str) -> Response:
    principal, c = caller(write=True), container()
    body = _confirm(principal, parse_json_object(bp.current_request))
    return json_response(pats.view(c.pats.edit(principal.user, pat_id, body), c.clock.now()))


@bp.route("/v1/tokens/{pat_id}", methods=["DELETE"], content_types=ANY)
@api_endpoint
def remove_token(pat_id: str) -> Response:
    principal, c = caller(write=True), container()
    body = _confirm(principal, _body())
    pats.only_fields(body, set())
    c.pats.remove(principal.user, pat_id)
    return Response(body="", status_code=204, headers=NO_CONTENT)


@bp.route("/v1/tokens/{pat_id}/regenerate", methods=["POST"], content_types=ANY)
@api_endpoint
def regenerate_token(pat_id: str) -> Response:
    principal, c = caller(write=True), container()
    body = _confirm(principal, _body())
    pats.only_fields(body, set())
    issued = c.pats.regenerate(principal.user, pat_id)
    return json_response(pats.issued_view(issued, c.clock.now()))


@bp.route("/v1/tokens/{pat_id}/copy", methods=["POST"], content_types=ANY)
@api_endpoint
def copy_token(pat_id: str) -> Response:
    principal, c = caller(write=True), container()
    body = _confirm(principal, _body())
    issued = c.pats.copy(principal.user, pat_id, body, _origin(principal))
    return json_response(pats.issued_view(issued, c.clock.now()), status=201)
