"""The tokens page of the account console, ``/account/tokens`` (SPEC §5, §11): thin
routes over ``web.tokens_page``. The old ``/tokens`` URLs answer 308 to the new ones
(a bookmark and a form posted from an old page both arrive)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from chalice import Blueprint, Response

from chalicelib.container import Container, container
from chalicelib.routes import ANY
from chalicelib.routes.page_visit import moved, serve
from chalicelib.web.page import page_endpoint

if TYPE_CHECKING:
    from chalicelib.web.tokens_page import TokensPage

bp = Blueprint(__name__)
PAGE = "/account/tokens"
BACK = (PAGE, "Back to your tokens")


def _page(c: Container) -> TokensPage:
    from chalicelib.web.tokens_page import TokensPage  # on the first page request

    return TokensPage(c.pats, c.confirmation, c.clock, c.settings)


@bp.route("/account/tokens", methods=["GET"], content_types=ANY)
@page_endpoint
def dashboard() -> Response:
    c = container()
    return serve(bp.current_request, c, _page(c).show, link=BACK)


@bp.route("/account/tokens/generate", methods=["POST"], content_types=ANY)
@page_endpoint
def generate() -> Response:
    c = container()
    return serve(bp.current_request, c, _page(c).generate, form=True, link=BACK)


@bp.route("/account/tokens/remove", methods=["POST"], content_types=ANY)
@page_endpoint
def remove() -> Response:
    c = container()
    return serve(bp.current_request, c, _page(c).remove, form=True, link=BACK)


@bp.route("/account/tokens/{pat_id}/regenerate", methods=["POST"], content_types=ANY)
@page_endpoint
def regenerate(pat_id: str) -> Response:
    c = container()
    return serve(bp.current_request, c, lambda v: _page(c).regenerate(v, pat_id), form=True,
                 link=BACK)


@bp.route("/account/tokens/{pat_id}/copy", methods=["POST"], content_types=ANY)
@page_endpoint
def copy(pat_id: str) -> Response:
    c = container()
    return serve(bp.current_request, c, lambda v: _page(c).copy(v, pat_id), form=True, link=BACK)


@bp.route("/account/tokens/{pat_id}/edit", methods=["GET"], content_types=ANY)
@page_endpoint
def edit_form(pat_id: str) -> Response:
    c = container()
    return serve(bp.current_request, c, lambda v: _page(c).edit_form(v, pat_id), link=BACK)


@bp.route("/account/tokens/{pat_id}/edit", methods=["POST"], content_types=ANY)
@page_endpoint
def edit(pat_id: str) -> Response:
    c = container()
    return serve(bp.current_request, c, lambda v: _page(c).edit(v, pat_id), form=True, link=BACK)


# -- the old URLs -------------------------------------------------------------------------

@bp.route("/tokens", methods=["GET"], content_types=ANY)
@page_endpoint
def old_dashboard() -> Response:
    return moved(bp.current_request, container(), PAGE)


@bp.route("/tokens/{action}", methods=["POST"], content_types=ANY)
@page_endpoint
def old_form(action: str) -> Response:
    """generate, remove; signin and signout went to the console's."""
    new = {"signin": "/account/signin", "signout": "/account/signout"}.get(action,
                                                                          f"{PAGE}/{quote(action, safe='')}")
    return moved(bp.current_request, container(), new)


@bp.route("/tokens/{pat_id}/{action}", methods=["GET", "POST"], content_types=ANY)
@page_endpoint
def old_token_form(pat_id: str, action: str) -> Response:
    return moved(bp.current_request, container(), f"{PAGE}/{quote(pat_id, safe='')}/{quote(action, safe='')}")
