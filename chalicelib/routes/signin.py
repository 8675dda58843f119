"""The second step of a browser sign-in (SPEC §11): thin routes over
``web.second_factor_page``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint, Response

from chalicelib.container import Container, container
from chalicelib.routes import ANY
from chalicelib.routes.page_visit import serve
from chalicelib.web.page import page_endpoint

if TYPE_CHECKING:
    from chalicelib.web.second_factor_page import SecondFactorPage

bp = Blueprint(__name__)
BACK = ("/account", "Back to your account")


def _page(c: Container) -> SecondFactorPage:
    from chalicelib.web.second_factor_page import SecondFactorPage  # on the first page request

    return SecondFactorPage(c.factors, c.security_log)


@bp.route("/signin/second-factor", methods=["POST"], content_types=ANY)
@page_endpoint
def second_factor() -> Response:
    c = container()
    return serve(bp.current_request, c, _page(c).submit, form=True, link=BACK)


@bp.route("/signin/cancel", methods=["POST"], content_types=ANY)
@page_endpoint
def cancel() -> Response:
    c = container()
    return serve(bp.current_request, c, _page(c).cancel, form=True, link=BACK)
