"""Passkeys of the caller (SPEC §11): ``POST /v1/mfa/passkeys/options``, ``POST
/v1/mfa/passkeys``, ``DELETE /v1/mfa/passkeys/{passkey_id}``.

Every call needs ``sessions:manage`` and is a change: the owner's password in the
body (``"password"``) or a recent sign-in (``services.confirmation``). The rest of
``/v1/mfa`` (status, TOTP, recovery codes) is another module's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Response

from chalicelib.container import container
from chalicelib.http import api_endpoint, issuer_of, json_response, parse_body, source_ip
from chalicelib.routes import ANY, caller_of

if TYPE_CHECKING:
    from chalicelib.api_models import Confirmed
    from chalicelib.services.principals import Principal
    from chalicelib.services.security_log import Where

bp = Blueprint(__name__)


def caller(body: Confirmed) -> Principal:
    from chalicelib.services import account

    principal = caller_of(bp.current_request, account.require_sessions_scope)
    container().confirmation.require_of(principal, password=body.password,
                                        source=source_ip(bp.current_request))
    return principal


def where() -> Where:
    from chalicelib.http import header
    from chalicelib.services.security_log import Where

    request = bp.current_request
    return Where(source_ip(request), (header(request, "user-agent") or "")[:256])


@bp.route("/v1/mfa/passkeys/options", methods=["POST"], content_types=ANY)
@api_endpoint
def passkey_options() -> Response:
    from chalicelib.api_models import PasskeyOptionsAsk

    body = parse_body(bp.current_request, PasskeyOptionsAsk, optional=True)
    principal, c = caller(body), container()
    options = c.webauthn.registration_options(principal.user, issuer_of(bp.current_request,
                                                                        c.settings))
    return Response(body=options, status_code=200,
                    headers={"Content-Type": "application/json", "Cache-Control": "no-store"})


@bp.route("/v1/mfa/passkeys", methods=["POST"], content_types=ANY)
@api_endpoint
def add_passkey() -> Response:
    from chalicelib.api_models import PasskeyAdd
    from chalicelib.services.passkeys import passkey_view

    body = parse_body(bp.current_request, PasskeyAdd)
    principal, c = caller(body), container()
    first = not principal.user.second_factors.enrolled
    passkey = c.webauthn.register(principal.user, issuer_of(bp.current_request, c.settings),
                                  body.name, body.credential.model_dump(exclude_none=True),
                                  where(), also=lambda added: signed_in_with(principal,
                                                                             added.amr))
    view = passkey_view(passkey)
    if first:
        view["recovery_codes"] = c.factors.first_recovery_codes(principal.user, where())
    return json_response(view, status=201)


@bp.route("/v1/mfa/passkeys/{passkey_id}", methods=["DELETE"], content_types=ANY)
@api_endpoint
def remove_passkey(passkey_id: str) -> Response:
    from chalicelib.api_models import PasskeyRemove

    body = parse_body(bp.current_request, PasskeyRemove, optional=True)
    principal = caller(body)
    container().webauthn.remove(principal.user, passkey_id, where())
    return Response(body="", status_code=204, headers={"Cache-Control": "no-store"})


def signed_in_with(principal: Principal, method: str) -> list[dict[str, Any]]:
    """The caller's own sign-in gains the factor it just enrolled (SPEC §11): only a
    session's access token of the person (not a PAT, nor an app acting for them)."""
    from chalicelib.services.confirmation import signed_in_at

    session = principal.session
    if signed_in_at(principal) is None or session is None:
        return []
    amr = list(dict.fromkeys([*session.amr, method, "mfa"]))
    return [container().sessions_repo.op_add_methods(session.id, amr)]
