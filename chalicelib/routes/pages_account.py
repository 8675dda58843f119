"""The account console, ``/account`` (SPEC §11): thin routes over ``web.console``,
``web.account_pages`` and ``web.roles_page``. Its tokens page is in
``pages_tokens``, its connected apps page in ``authorize``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chalice import Blueprint, Response

from chalicelib.container import Container, container
from chalicelib.routes import ANY
from chalicelib.routes.page_visit import serve
from chalicelib.web.page import page_endpoint

if TYPE_CHECKING:
    from chalicelib.web.account_pages import AccountPages
    from chalicelib.web.browser import Visit
    from chalicelib.web.profile_changes import ProfileChanges
    from chalicelib.web.roles_page import RolesPage

bp = Blueprint(__name__)
BACK = ("/account", "Back to your account")


def _account(c: Container) -> AccountPages:
    from chalicelib.web.account_pages import AccountPages  # on the first page request

    return AccountPages(c.sessions, c.password_change, c.security_log, c.clock)


def _profile(c: Container) -> ProfileChanges:
    from chalicelib.web.profile_changes import ProfileChanges

    return ProfileChanges(c.email_changes, c.notices)


def _roles(c: Container) -> RolesPage:
    from chalicelib.web.roles_page import RolesPage

    return RolesPage(c.roles, c.confirmation, c.clock, c.settings)


def _get(handle: Callable[[Container], Callable[[Visit], Response]]) -> Response:
    c = container()
    return serve(bp.current_request, c, handle(c), link=BACK)


def _post(handle: Callable[[Container], Callable[[Visit], Response]]) -> Response:
    c = container()
    return serve(bp.current_request, c, handle(c), form=True, link=BACK)


# -- signing in and out, profile, password ------------------------------------------------

@bp.route("/account", methods=["GET"], content_types=ANY)
@page_endpoint
def profile() -> Response:
    return _get(lambda c: _account(c).profile)


@bp.route("/account/email", methods=["POST"], content_types=ANY)
@page_endpoint
def change_email() -> Response:
    return _post(lambda c: _profile(c).change_email)


@bp.route("/account/notices", methods=["POST"], content_types=ANY)
@page_endpoint
def set_notices() -> Response:
    return _post(lambda c: _profile(c).set_notices)


@bp.route("/account/signin", methods=["POST"], content_types=ANY)
@page_endpoint
def signin() -> Response:
    from chalicelib.web import console

    return _post(lambda c: console.signin)


@bp.route("/account/signout", methods=["POST"], content_types=ANY)
@page_endpoint
def signout() -> Response:
    from chalicelib.web import console

    return _post(lambda c: console.signout)


@bp.route("/account/password", methods=["GET"], content_types=ANY)
@page_endpoint
def password_form() -> Response:
    return _get(lambda c: _account(c).password_form)


@bp.route("/account/password", methods=["POST"], content_types=ANY)
@page_endpoint
def change_password() -> Response:
    return _post(lambda c: _account(c).change_password)


# -- sessions, security log ---------------------------------------------------------------

@bp.route("/account/sessions", methods=["GET"], content_types=ANY)
@page_endpoint
def sessions() -> Response:
    return _get(lambda c: _account(c).sessions_list)


@bp.route("/account/sessions/end", methods=["POST"], content_types=ANY)
@page_endpoint
def end_session() -> Response:
    return _post(lambda c: _account(c).end_session)


@bp.route("/account/sessions/end-others", methods=["POST"], content_types=ANY)
@page_endpoint
def end_other_sessions() -> Response:
    return _post(lambda c: _account(c).end_other_sessions)


@bp.route("/account/security-log", methods=["GET"], content_types=ANY)
@page_endpoint
def security_log() -> Response:
    return _get(lambda c: _account(c).log)


# -- roles and keys -----------------------------------------------------------------------

@bp.route("/account/roles", methods=["GET"], content_types=ANY)
@page_endpoint
def roles() -> Response:
    return _get(lambda c: _roles(c).listing)


@bp.route("/account/roles", methods=["POST"], content_types=ANY)
@page_endpoint
def create_role() -> Response:
    return _post(lambda c: _roles(c).create)


@bp.route("/account/roles/{name}", methods=["GET"], content_types=ANY)
@page_endpoint
def role(name: str) -> Response:
    return _get(lambda c: lambda v: _roles(c).show(v, name))


@bp.route("/account/roles/{name}/delete", methods=["POST"], content_types=ANY)
@page_endpoint
def delete_role(name: str) -> Response:
    return _post(lambda c: lambda v: _roles(c).delete(v, name))


@bp.route("/account/roles/{name}/policies", methods=["POST"], content_types=ANY)
@page_endpoint
def add_policy(name: str) -> Response:
    return _post(lambda c: lambda v: _roles(c).add_policy(v, name))


@bp.route("/account/roles/{name}/policies/{policy_id}/remove", methods=["POST"],
          content_types=ANY)
@page_endpoint
def remove_policy(name: str, policy_id: str) -> Response:
    return _post(lambda c: lambda v: _roles(c).remove_policy(v, name, policy_id))


@bp.route("/account/roles/{name}/keys", methods=["POST"], content_types=ANY)
@page_endpoint
def create_key(name: str) -> Response:
    return _post(lambda c: lambda v: _roles(c).create_key(v, name))


@bp.route("/account/roles/{name}/keys/{key_id}/revoke", methods=["POST"], content_types=ANY)
@page_endpoint
def revoke_key(name: str, key_id: str) -> Response:
    return _post(lambda c: lambda v: _roles(c).revoke_key(v, name, key_id))


@bp.route("/account/roles/{name}/trust", methods=["POST"], content_types=ANY)
@page_endpoint
def add_trust(name: str) -> Response:
    return _post(lambda c: lambda v: _roles(c).add_trust(v, name))


@bp.route("/account/roles/{name}/trust/{trust_id}/remove", methods=["POST"], content_types=ANY)
@page_endpoint
def remove_trust(name: str, trust_id: str) -> Response:
    return _post(lambda c: lambda v: _roles(c).remove_trust(v, name, trust_id))
