"""Passkeys in the browser (SPEC §11): thin routes over ``web.passkey_page``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chalice import Blueprint, Response

from chalicelib.container import container
from chalicelib.routes import ANY
from chalicelib.routes.page_visit import serve
from chalicelib.web.page import page_endpoint

if TYPE_CHECKING:
    from chalicelib.web.browser import Visit
    from chalicelib.web.passkey_page import PasskeyPages

bp = Blueprint(__name__)
SIGNIN_BACK = ("/account", "Back to sign in")
MANAGE_BACK = ("/account/security", "Back to your security settings")


def _serve(handle: Callable[[PasskeyPages], Callable[[Visit], Response]],
           link: tuple[str, str]) -> Response:
    from chalicelib.web.passkey_page import PasskeyPages  # on the first page request

    c = container()
    pages = PasskeyPages(c.webauthn, c.security_log, c.confirmation, c.factors)
    return serve(bp.current_request, c, handle(pages), form=True, link=link)


@bp.route("/signin/passkey/options", methods=["POST"], content_types=ANY)
@page_endpoint
def signin_options() -> Response:
    return _serve(lambda p: p.signin_options, SIGNIN_BACK)


@bp.route("/signin/passkey", methods=["POST"], content_types=ANY)
@page_endpoint
def signin() -> Response:
    return _serve(lambda p: p.signin, SIGNIN_BACK)


@bp.route("/account/passkeys", methods=["GET"], content_types=ANY)
@page_endpoint
def show() -> Response:
    from chalicelib.web.passkey_page import PasskeyPages

    return serve(bp.current_request, container(), PasskeyPages.show, link=MANAGE_BACK)


@bp.route("/account/passkeys/options", methods=["POST"], content_types=ANY)
@page_endpoint
def creation_options() -> Response:
    return _serve(lambda p: p.creation_options, MANAGE_BACK)


@bp.route("/account/passkeys", methods=["POST"], content_types=ANY)
@page_endpoint
def add() -> Response:
    return _serve(lambda p: p.add, MANAGE_BACK)


@bp.route("/account/passkeys/remove", methods=["POST"], content_types=ANY)
@page_endpoint
def remove() -> Response:
    return _serve(lambda p: p.remove, MANAGE_BACK)
