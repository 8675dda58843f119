"""The PAT API (SPEC §5) and the scope catalog.

Authenticated by an access token of a session or by a PAT; reads need
``tokens:read`` or ``tokens:manage``, changes ``tokens:manage`` plus the owner's
password in the body (``"password"``) or a sign-in younger than ten minutes.

Bulk remove is ``POST /v1/tokens/remove`` with ``{"ids": [...]}`` (a DELETE
with a body is dropped by some proxies); it answers which ids were removed and
which were not found (another user's ids are "not found").

Bodies and the list's query are parsed at the edge into the models of
``chalicelib.api_models`` (imported in the routes, not here: SPEC §9); services
get the validated members, never the request.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, TypeVar

from chalice import Blueprint, Response

from chalicelib.container import container
from chalicelib.http import (
    api_endpoint,
    header,
    json_response,
    parse_body,
    parse_query,
    source_ip,
)
from chalicelib.routes import ANY, caller_of, where_of

if TYPE_CHECKING:
    from chalicelib.api_models import Confirmed
    from chalicelib.services.principals import Principal

B = TypeVar("B", bound="Confirmed")

bp = Blueprint(__name__)
NO_CONTENT: dict[str, str | list[str]] = {"Cache-Control": "no-store"}


def caller(*, write: bool) -> Principal:
    from chalicelib.services import pats

    return caller_of(bp.current_request, partial(pats.require_scope, write=write))


def confirmed(principal: Principal, model: type[B], *, optional: bool = False) -> B:
    """The body as ``model``, once the change is confirmed (SPEC §5): the owner's
    password in it, or a recent sign-in."""
    body = parse_body(bp.current_request, model, optional=optional)
    container().confirmation.require_of(principal, password=body.password, otp=body.otp,
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
    from chalicelib.api_models import PatCreate
    from chalicelib.services import pats

    principal, c = caller(write=True), container()
    body = confirmed(principal, PatCreate)
    issued = c.pats.generate(principal.user, body, _origin(principal))
    return json_response(pats.issued_view(issued, c.clock.now()), status=201)


@bp.route("/v1/tokens", methods=["GET"], content_types=ANY)
@api_endpoint
def list_tokens() -> Response:
    from chalicelib.api_models import PatFilters
    from chalicelib.services import pats

    principal, c = caller(write=False), container()
    # A PAT in the ``session`` parameter is the credential, not a filter.
    query = parse_query(bp.current_request, PatFilters,
                        credential="session" if c.settings.pat_query_param else None)
    filters = pats.parse_filters(query.given())
    now = c.clock.now()
    return json_response({"tokens": [pats.view(p, now) for p in c.pats.find(principal.user, filters)]})


@bp.route("/v1/tokens/remove", methods=["POST"], content_types=ANY)
@api_endpoint
def remove_many() -> Response:
    from chalicelib.api_models import PatRemoveMany

    principal, c = caller(write=True), container()
    body = confirmed(principal, PatRemoveMany)
    removed, missing = c.pats.remove_many(principal.user, body, where_of(bp.current_request))
    return json_response({"removed": removed, "not_found": missing})


@bp.route("/v1/tokens/{pat_id}", methods=["GET"], content_types=ANY)
@api_endpoint
def get_token(pat_id: str) -> Response:
    from chalicelib.services import pats

    principal, c = caller(write=False), container()
    return json_response(pats.view(c.pats.get(principal.user, pat_id), c.clock.now()))


@bp.route("/v1/tokens/{pat_id}", methods=["PATCH"], content_types=ANY)
@api_endpoint
def edit_token(pat_id: str) -> Response:
    from chalicelib.api_models import PatEdit
    from chalicelib.services import pats

    principal, c = caller(write=True), container()
    body = confirmed(principal, PatEdit)
    edited = c.pats.edit(principal.user, pat_id, body)
    return json_response(pats.view(edited, c.clock.now()))


@bp.route("/v1/tokens/{pat_id}", methods=["DELETE"], content_types=ANY)
@api_endpoint
def remove_token(pat_id: str) -> Response:
    from chalicelib.api_models import PatConfirm

    principal, c = caller(write=True), container()
    confirmed(principal, PatConfirm, optional=True)
    c.pats.remove(principal.user, pat_id, where_of(bp.current_request))
    return Response(body="", status_code=204, headers=NO_CONTENT)


@bp.route("/v1/tokens/{pat_id}/regenerate", methods=["POST"], content_types=ANY)
@api_endpoint
def regenerate_token(pat_id: str) -> Response:
    from chalicelib.api_models import PatConfirm
    from chalicelib.services import pats

    principal, c = caller(write=True), container()
    confirmed(principal, PatConfirm, optional=True)
    issued = c.pats.regenerate(principal.user, pat_id, where_of(bp.current_request))
    return json_response(pats.issued_view(issued, c.clock.now()))


@bp.route("/v1/tokens/{pat_id}/copy", methods=["POST"], content_types=ANY)
@api_endpoint
def copy_token(pat_id: str) -> Response:
    from chalicelib.api_models import PatCopy
    from chalicelib.services import pats

    principal, c = caller(write=True), container()
    body = confirmed(principal, PatCopy, optional=True)
    issued = c.pats.copy(principal.user, pat_id, body, _origin(principal))
    return json_response(pats.issued_view(issued, c.clock.now()), status=201)
