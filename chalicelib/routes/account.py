"""The caller's own account: whoami, token info, logout, sessions (SPEC §2).

Scope rule: ``/v1/me`` and ``/v1/token-info`` take any valid credential;
``POST /v1/logout`` takes the access token of a session, whatever its scopes
(it ends only the session it belongs to); listing and ending sessions, and
reading the security log (``/v1/events``), need ``sessions:manage``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint, Response

from chalicelib.container import container
from chalicelib.errors import BadRequest, NotFound
from chalicelib.http import api_endpoint, json_response, parse_query
from chalicelib.routes import ANY, caller_of, where_of
from chalicelib.routes.cors import cors, preflight

if TYPE_CHECKING:
    from chalicelib.services.principals import Principal

# Route modules import their services inside the handler (SPEC §9): ``import app``
# registers every route, and a first request loads only what it runs.

bp = Blueprint(__name__)


def caller() -> Principal:
    return caller_of(bp.current_request)


@bp.route("/v1/me", methods=["GET"], content_types=ANY)
@cors(bp)
@api_endpoint
def me() -> Response:
    return json_response(caller().profile())


@bp.route("/v1/token-info", methods=["GET"], content_types=ANY)
@cors(bp)
@api_endpoint
def token_info() -> Response:
    from chalicelib.services import account

    return json_response(account.token_info(caller(), container().clock.now()))


# A browser app reads who signed in (SPEC §2 "Browser apps").
preflight(bp, "/v1/me", "GET")
preflight(bp, "/v1/token-info", "GET")


@bp.route("/v1/logout", methods=["POST"], content_types=ANY)
@api_endpoint
def logout() -> Response:
    principal = caller()
    if principal.session is None:
        raise BadRequest("This credential has no session to end")
    if principal.act is not None:
        # A delegated token keeps the person's session, possibly another app's
        # sign-in: the delegate may not end it (SPEC §6).
        raise BadRequest("A delegated token has no session of its own to end")
    # One transaction: the end and its security-log entry (the one write of a logout).
    container().sessions.end_owned(principal.session.id, principal.user.id, reason="logout",
                                   where=where_of(bp.current_request),
                                   client_id=principal.session.client_id)
    return Response(body="", status_code=204, headers={"Cache-Control": "no-store"})


@bp.route("/v1/sessions", methods=["GET"], content_types=ANY)
@api_endpoint
def list_sessions() -> Response:
    from chalicelib.services import account

    principal = caller()
    account.require_sessions_scope(principal)
    sessions = container().sessions.list_for_user(principal.user.id)
    current = principal.session.id if principal.session else None
    return json_response({"sessions": [account.session_view(s, current) for s in sessions]})


@bp.route("/v1/events", methods=["GET"], content_types=ANY)
@api_endpoint
def list_events() -> Response:
    """The caller's security log, newest first (SPEC §11)."""
    from chalicelib.api_models import EventFilters
    from chalicelib.services import account

    principal, c = caller(), container()
    account.require_sessions_scope(principal)
    query = parse_query(bp.current_request, EventFilters,
                        credential="session" if c.settings.pat_query_param else None)
    return json_response(c.security_log.listing(principal.user.id, kind=query.kind,
                                                cursor=query.cursor, limit=query.limit))


@bp.route("/v1/sessions/{session_id}", methods=["DELETE"], content_types=ANY)
@api_endpoint
def end_session(session_id: str) -> Response:
    from chalicelib.services import account

    principal = caller()
    account.require_sessions_scope(principal)
    # Another user's session is indistinguishable from no session.
    if not account.valid_session_id(session_id) or not container().sessions.end_owned(
            session_id, principal.user.id, reason="ended_by_user",
            where=where_of(bp.current_request)):
        raise NotFound("No such session")
    return Response(body="", status_code=204, headers={"Cache-Control": "no-store"})
