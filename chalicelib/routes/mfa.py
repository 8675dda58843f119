"""Second factors of the caller's account (SPEC §11): TOTP (RFC 6238) and recovery
codes. Passkeys are ``routes/mfa_passkeys.py``.

Every call needs ``sessions:manage``; a change also needs a recent sign-in (with
its second factor where one is enrolled) or the password (and a code) in the body,
as other lasting changes do (``services.confirmation``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from chalice import Blueprint, Response

from chalicelib.container import container
from chalicelib.http import api_endpoint, header, issuer_of, json_response, parse_body, source_ip
from chalicelib.routes import ANY, caller_of

if TYPE_CHECKING:
    from chalicelib.services.principals import Principal
    from chalicelib.services.security_log import Where

bp = Blueprint(__name__)
NO_CONTENT: dict[str, str | list[str]] = {"Cache-Control": "no-store"}


def caller() -> Principal:
    from chalicelib.services import account

    principal = caller_of(bp.current_request)
    account.require_sessions_scope(principal)
    return principal


def where() -> Where:
    from chalicelib.services.security_log import Where

    request = bp.current_request
    return Where(source_ip(request), (header(request, "user-agent") or "")[:256])


def confirmed(principal: Principal) -> None:
    from chalicelib.api_models import MfaChange

    body = parse_body(bp.current_request, MfaChange, optional=True)
    container().confirmation.require_of(principal, password=body.password, otp=body.otp,
                                        source=source_ip(bp.current_request))


@bp.route("/v1/mfa", methods=["GET"], content_types=ANY)
@api_endpoint
def status() -> Response:
    return json_response(container().factors.status(caller().user))


@bp.route("/v1/mfa/totp", methods=["POST"], content_types=ANY)
@api_endpoint
def begin_totp() -> Response:
    principal, c = caller(), container()
    confirmed(principal)
    host = urlsplit(issuer_of(bp.current_request, c.settings)).hostname or ""
    shown = c.factors.begin_totp(principal.user, host)
    return json_response({"secret": shown.secret, "otpauth_uri": shown.otpauth_uri}, status=201)


@bp.route("/v1/mfa/totp/confirm", methods=["POST"], content_types=ANY)
@api_endpoint
def confirm_totp() -> Response:
    from chalicelib.api_models import TotpConfirm

    principal, c = caller(), container()
    body = parse_body(bp.current_request, TotpConfirm)
    from chalicelib.routes.mfa_passkeys import signed_in_with

    codes = c.factors.confirm_totp(principal.user, body.code, where(),
                                          also=signed_in_with(principal, "otp"))
    if codes:
        # The first second factor: its recovery codes, shown this once.
        return json_response({"recovery_codes": codes})
    return Response(body="", status_code=204, headers=NO_CONTENT)


@bp.route("/v1/mfa/totp", methods=["DELETE"], content_types=ANY)
@api_endpoint
def remove_totp() -> Response:
    principal, c = caller(), container()
    confirmed(principal)
    c.factors.remove_totp(principal.user, where())
    return Response(body="", status_code=204, headers=NO_CONTENT)


@bp.route("/v1/mfa/recovery-codes", methods=["POST"], content_types=ANY)
@api_endpoint
def regenerate_recovery_codes() -> Response:
    principal, c = caller(), container()
    confirmed(principal)
    codes = c.factors.regenerate_recovery(principal.user, where())
    return json_response({"recovery_codes": codes}, status=201)
