"""Accounts by mail (SPEC §11): ``POST /v1/invitations`` (scope ``users:invite``) and
``POST /v1/password-reset`` (no credential; 202 whatever the address)."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib.container import container
from chalicelib.errors import Forbidden
from chalicelib.http import api_endpoint, bearer_challenge, issuer_of, json_response, parse_body, source_ip
from chalicelib.routes import ANY, caller_of

bp = Blueprint(__name__)


@bp.route("/v1/invitations", methods=["POST"], content_types=ANY)
@api_endpoint
def invite() -> Response:
    from chalicelib.api_models import InvitationCreate
    from chalicelib.services.invitations import INVITE_SCOPE

    principal, c = caller_of(bp.current_request), container()
    if INVITE_SCOPE not in principal.scopes:
        raise Forbidden(f"This credential lacks the {INVITE_SCOPE} scope",
                        challenges=(bearer_challenge("insufficient_scope", INVITE_SCOPE),))
    body = parse_body(bp.current_request, InvitationCreate)
    made = c.invitations.invite(body.email, scopes=body.scopes, invited_by=principal.user,
                                issuer=issuer_of(bp.current_request, c.settings))
    return json_response(made.view(), status=201)


@bp.route("/v1/password-reset", methods=["POST"], content_types=ANY)
@api_endpoint
def password_reset() -> Response:
    from chalicelib.api_models import PasswordResetRequest

    c = container()
    body = parse_body(bp.current_request, PasswordResetRequest)
    c.password_reset.request(body.email, source=source_ip(bp.current_request),
                             issuer=issuer_of(bp.current_request, c.settings))
    # SPEC §11: the same answer whatever the address.
    return json_response({"status": "If an account uses this address, a link is on its way."},
                         status=202)
