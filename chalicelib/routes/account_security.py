"""``/account/security`` (SPEC §11): thin routes over ``web.security_page``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint, Response

from chalicelib.container import Container, container
from chalicelib.routes import ANY
from chalicelib.routes.page_visit import serve
from chalicelib.web.page import page_endpoint

if TYPE_CHECKING:
    from chalicelib.web.security_page import SecurityPage

bp = Blueprint(__name__)
BACK = ("/account/security", "Back to your security settings")


def _page(c: Container) -> SecurityPage:
    from chalicelib.web.security_page import SecurityPage  # on the first page request

    return SecurityPage(c.factors, c.confirmation, c.clock, c.settings)


@bp.route("/account/security", methods=["GET"], content_types=ANY)
@page_endpoint
def show() -> Response:
    c = container()
    return serve(bp.current_request, c, _page(c).show, link=BACK)


@bp.route("/account/security/totp", methods=["POST"], content_types=ANY)
@page_endpoint
def begin_totp() -> Response:
    c = container()
    return serve(bp.current_request, c, _page(c).begin_totp, form=True, link=BACK)


@bp.route("/account/security/totp/confirm", methods=["POST"], content_types=ANY)
@page_endpoint
def confirm_totp() -> Response:
    c = container()
    return serve(bp.current_request, c, _page(c).confirm_totp, form=True, link=BACK)


@bp.route("/account/security/totp/remove", methods=["POST"], content_types=ANY)
@page_endpoint
def remove_totp() -> Response:
    c = container()
    return serve(bp.current_request, c, _page(c).remove_totp, form=True, link=BACK)


@bp.route("/account/security/recovery-codes", methods=["POST"], content_types=ANY)
@page_endpoint
def regenerate() -> Response:
    c = container()
    return serve(bp.current_request, c, _page(c).regenerate, form=True, link=BACK)
