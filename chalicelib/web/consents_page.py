"""The ``/consents`` page (SPEC §2, §7): the apps a person allowed, and Withdraw.

Withdrawing ends that app's sessions of the person at once. Same sign-in, CSRF
and layout as every page; no JavaScript.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from chalice.app import Response

from chalicelib.errors import InvalidGrant, NotFound
from chalicelib.models import Client
from chalicelib.services.authorization import Authorization
from chalicelib.web.browser import Visit
from chalicelib.web.page import Layout, esc
from chalicelib.web.scope_words import scope_items

TITLE = "Connected apps"
PAGE = "/consents"


def _when(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class ConsentsPage:
    authorization: Authorization
    clients: Callable[[str], Client | None]

    def show(self, visit: Visit) -> Response:
        if visit.web is None:
            return self.signin_page(visit)
        return self.listing(visit)

    def signin(self, visit: Visit) -> Response:
        visit.check_csrf()
        form = visit.request.form
        try:
            visit.sign_in(form.one("username"), form.one("password"))
        except InvalidGrant as failed:
            # Bad credentials, however they are bad, get one answer (SPEC §8).
            return self.signin_page(visit, error=failed.description, status=403)
        return visit.redirect(PAGE)

    def withdraw(self, visit: Visit) -> Response:
        if visit.web is None:
            return visit.redirect(PAGE)
        visit.check_csrf()
        client_id = visit.request.form.one("client_id")
        try:
            ended = self.authorization.withdraw(visit.web.user, client_id)
        except NotFound:
            return self.listing(visit, error="That app is not connected (any more).", status=404)
        client = self.clients(client_id)
        name = client.name if client and client.name else client_id
        return self.listing(visit, notice=f"{name} is no longer connected; "
                                          f"{ended} of its session(s) ended.")

    def signin_page(self, visit: Visit, *, error: str = "", status: int = 200) -> Response:
        alert = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
        main = (f"<h1>Sign in to see your connected apps</h1>{alert}"
                f'<form method="post" action="{esc(visit.path(PAGE + "/signin"))}">'
                f"{visit.hidden_csrf()}"
                '<label for="username">Username</label>'
                '<input type="text" id="username" name="username" autocomplete="username" '
                'autocapitalize="none" spellcheck="false" required>'
                '<label for="password">Password</label>'
                '<input type="password" id="password" name="password" '
                'autocomplete="current-password" required>'
                '<div class="actions"><button type="submit">Sign in</button></div></form>')
        return visit.page("Sign in", main, status)

    def listing(self, visit: Visit, *, error: str = "", notice: str = "",
                status: int = 200) -> Response:
        assert visit.web is not None
        consents = self.authorization.consents_of(visit.web.user.id)
        parts = [f"<h1>{TITLE}</h1>"]
        if error:
            parts.append(f'<p class="error" role="alert">{esc(error)}</p>')
        if notice:
            parts.append(f'<p class="ok" role="status">{esc(notice)}</p>')
        if not consents:
            parts.append("<p>No app has access to your account.</p>")
        for consent in consents:
            client = self.clients(consent.client_id)
            name = client.name if client and client.name else consent.client_id
            parts.append(
                f"<section><h2>{esc(name)}</h2>"
                f"<p class=\"hint\">Allowed {esc(_when(consent.created_at))}"
                + (f", last changed {esc(_when(consent.updated_at))}"
                   if consent.updated_at != consent.created_at else "") + "</p>"
                f"<ul>{scope_items(consent.scopes)}</ul>"
                f'<form method="post" action="{esc(visit.path(PAGE + "/withdraw"))}">'
                f"{visit.hidden_csrf()}"
                f'<input type="hidden" name="client_id" value="{esc(consent.client_id)}">'
                f'<button type="submit" class="secondary">Withdraw access of {esc(name)}</button>'
                "</form></section>")
        return visit.page(Layout(TITLE), "".join(parts), status)
