"""The ``/tokens`` dashboard (SPEC §5): thin routes over ``web.tokens_page``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint, Response

from chalicelib.container import Container, container
from chalicelib.routes import ANY
from chalicelib.routes.page_visit import serve
from chalicelib.web.page import page_endpoint

if TYPE_CHECKING:
    from chalicelib.web.tokens_page import TokensPage

bp = Blueprint(__name__)
BACK = ("/tokens", "Back to your tokens")


def _page(c: Container) -> TokensPage:
    from chalicelib.web.tokens_page import TokensPage  # on the first page request

    return TokensPage(c.pats, c.confirmation, c.clock, c.settings)


@bp.route("/tokens", methods=["GET"], content_types=ANY)
@page_endpoint
def dashboard() -> Response:
    c = container()
    return serve(bp.current_request, c, _page(c).show, link=BACK)


@bp.route("/tokens/signin", methods=["POST"], content_types=ANY)
@page_endpoint
def signin() -> Response:
    c = container()
    return serve(bp.current_request, c, _page(c).signin, form=True, link=BACK)


@bp.route("/tokens/signout", methods=["POST"], content_types=ANY)
@page_endpoint
def signout() -> Response:
    c = container()
    return serve(bp.current_request, c, _page(c).signout, form=True, link=BACK)


@bp.route("/tokens/generate", methods=["POST"], content_types=ANY)
@page_endpoint
def generate() -> Response:
    c = container()
    return serve(bp.current_request, c, _page(c).generate, form=True, link=BACK)


@bp.route("/tokens/remove", methods=["POST"], content_types=ANY)
@page_endpoint
def remove() -> Response:
    c = container()
    return serve(bp.current_request, c, _page(c).remove, form=True, link=BACK)


@bp.route("/tokens/{pat_id}/regenerate", methods=["POST"], content_types=ANY)
@page_endpoint
def regenerate(pat_id: str) -> Response:
    c = container()
    return serve(bp.current_request, c, lambda v: _page(c).regenerate(v, pat_id), form=True,
                 link=BACK)


@bp.route("/tokens/{pat_id}/copy", methods=["POST"], content_types=ANY)
@page_endpoint
def copy(pat_id: str) -> Response:
    c = container()
    return serve(bp.current_request, c, lambda v: _page(c).copy(v, pat_id), form=True, link=BACK)


@bp.route("/tokens/{pat_id}/edit", methods=["GET"], content_types=ANY)
@page_endpoint
def edit_form(pat_id: str) -> Response:
    c = container()
    return serve(bp.current_request, c, lambda v: _page(c).edit_form(v, pat_id), link=BACK)


@bp.route("/tokens/{pat_id}/edit", methods=["POST"], content_types=ANY)
@page_endpoint
def edit(pat_id: str) -> Response:
    c = container()
    return serve(bp.current_request, c, lambda v: _page(c).edit(v, pat_id), form=True, link=BACK)
