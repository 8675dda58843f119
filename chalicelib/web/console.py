"""The account console (SPEC §11): one signed-in area under ``/account`` with the
same navigation bar on every page (``templates/console.html``).

A page of the console is rendered by ``page`` (the layout's nav with the current
item marked); a visit that is not signed in gets the console's sign-in form
(``signin_page``), which comes back to the page after it, and a sign-in that
awaits its second factor gets that step (``second_factor_page.prompt``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice.app import Response

from chalicelib.errors import InvalidGrant, TesseraError
from chalicelib.services.web_signin import WebSession
from chalicelib.web import second_factor_page
from chalicelib.web.browser import Visit
from chalicelib.web.page import Layout

HOME = "/account"
SIGNIN = "/account/signin"
SIGNOUT = "/account/signout"

# (key, path, words): the navigation bar, in this order on every console page.
NAV = (
    ("profile", "/account", "Profile"),
    ("password", "/account/password", "Password"),
    ("security", "/account/security", "Security"),
    ("sessions", "/account/sessions", "Sessions"),
    ("tokens", "/account/tokens", "Tokens"),
    ("apps", "/account/apps", "Connected apps"),
    ("roles", "/account/roles", "Roles and keys"),
    ("security-log", "/account/security-log", "Security log"),
)


def nav(visit: Visit, current: str) -> list[dict[str, Any]]:
    """The bar's links; ``current`` (a NAV key) is marked ``aria-current="page"``."""
    return [{"href": visit.path(path), "words": words, "current": key == current}
            for key, path, words in NAV]


def page(visit: Visit, current: str, layout: Layout | str, template: str, status: int = 200,
         /, **context: Any) -> Response:
    """A console page: ``template`` extends ``console.html``; ``current`` is its NAV key."""
    return visit.page(layout, template, status, nav=nav(visit, current), **context)


def signin_page(visit: Visit, next_path: str, *, error: str = "", status: int = 200) -> Response:
    """What a visitor who is not signed in sees instead of a console page."""
    if visit.pending is not None:
        return second_factor_page.prompt(visit, next_path)
    next_path = second_factor_page.safe_next(next_path, HOME)
    return visit.page(Layout("Sign in", passkeys=True), "account_signin.html", status,
                      error=error, heading="Sign in to your account", action=SIGNIN,
                      next=next_path)


def signed_in(visit: Visit, here: str,
              show: Callable[[WebSession], Response]) -> Response:
    """``show`` the page for the signed-in person, or the sign-in step it needs."""
    if visit.web is None:
        return signin_page(visit, here)
    return show(visit.web)


def change(visit: Visit, here: str, run: Callable[[WebSession], Response]) -> Response:
    """A POST of a console page: signed in (else back to the page, which asks for
    it), then the CSRF check, then ``run``."""
    if visit.web is None:
        return visit.redirect(here)
    visit.check_csrf()
    return run(visit.web)


def signin(visit: Visit) -> Response:
    """``POST /account/signin``: the password step, then back to ``next``."""
    visit.check_csrf()
    form = visit.request.form
    next_path = second_factor_page.safe_next(
        form.one("next") or visit.request.query.get("next", ""), HOME)
    try:
        visit.sign_in(form.one("username"), form.one("password"))
    except InvalidGrant as err:
        # Bad credentials, however they are bad, get one answer (SPEC §8).
        return signin_page(visit, next_path, error=err.description, status=403)
    except TesseraError as err:
        return signin_page(visit, next_path, error=err.description, status=err.status)
    return visit.redirect(next_path)


def signout(visit: Visit) -> Response:
    """``POST /account/signout`` (the header's button on every page)."""
    if visit.web is not None or visit.pending is not None:
        visit.check_csrf()
    visit.sign_out()
    return visit.redirect(HOME)
