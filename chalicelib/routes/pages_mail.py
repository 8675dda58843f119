"""The pages of the mailed links (SPEC §11): thin routes over ``web.mail_pages`` (and
``web.profile_changes`` for the email-change link)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint, Response

from chalicelib.container import Container, container
from chalicelib.routes import ANY
from chalicelib.routes.page_visit import serve
from chalicelib.web.page import page_endpoint

if TYPE_CHECKING:
    from chalicelib.web.mail_pages import InvitationPage, PasswordResetPage
    from chalicelib.web.profile_changes import ProfileChanges

bp = Blueprint(__name__)
BACK = ("/account", "Go to your account")


def _invitation(c: Container) -> InvitationPage:
    from chalicelib.web.mail_pages import InvitationPage  # on the first page request

    return InvitationPage(c.invitations)


def _reset(c: Container) -> PasswordResetPage:
    from chalicelib.web.mail_pages import PasswordResetPage  # on the first page request

    return PasswordResetPage(c.password_reset)


def _email_change(c: Container) -> ProfileChanges:
    from chalicelib.web.profile_changes import ProfileChanges  # on the first page request

    return ProfileChanges(c.email_changes, c.notices)


@bp.route("/invitation", methods=["GET"], content_types=ANY)
@page_endpoint
def invitation() -> Response:
    c = container()
    return serve(bp.current_request, c, lambda v: _invitation(c).show(v), link=BACK)


@bp.route("/invitation", methods=["POST"], content_types=ANY)
@page_endpoint
def accept_invitation() -> Response:
    c = container()
    return serve(bp.current_request, c, _invitation(c).accept, form=True, link=BACK)


@bp.route("/password-reset", methods=["GET"], content_types=ANY)
@page_endpoint
def password_reset() -> Response:
    c = container()
    return serve(bp.current_request, c, lambda v: _reset(c).ask(v), link=BACK)


@bp.route("/password-reset", methods=["POST"], content_types=ANY)
@page_endpoint
def request_password_reset() -> Response:
    c = container()
    return serve(bp.current_request, c, _reset(c).request, form=True, link=BACK)


@bp.route("/password-reset/confirm", methods=["GET"], content_types=ANY)
@page_endpoint
def choose_password() -> Response:
    c = container()
    return serve(bp.current_request, c, lambda v: _reset(c).choose(v), link=BACK)


@bp.route("/password-reset/confirm", methods=["POST"], content_types=ANY)
@page_endpoint
def complete_password_reset() -> Response:
    c = container()
    return serve(bp.current_request, c, _reset(c).complete, form=True, link=BACK)


@bp.route("/email-change/confirm", methods=["GET"], content_types=ANY)
@page_endpoint
def email_change() -> Response:
    c = container()
    return serve(bp.current_request, c, lambda v: _email_change(c).confirm_page(v), link=BACK)


@bp.route("/email-change/confirm", methods=["POST"], content_types=ANY)
@page_endpoint
def confirm_email_change() -> Response:
    c = container()
    return serve(bp.current_request, c, _email_change(c).confirm, form=True, link=BACK)
