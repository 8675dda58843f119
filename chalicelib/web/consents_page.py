"""The ``/consents`` page (SPEC §2, §7): the apps a person allowed, and Withdraw.

Withdrawing ends that app's sessions of the person at once. Same sign-in, CSRF
and layout as every page; no JavaScript. The HTML is ``templates/consents.html``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from chalice.app import Response

from chalicelib.errors import InvalidGrant, NotFound
from chalicelib.models import Client
from chalicelib.services.authorization import Authorization
from chalicelib.web import second_factor_page
from chalicelib.web.browser import Visit
from chalicelib.web.page import Layout

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
        if visit.pending is not None:
            return second_factor_page.prompt(visit, PAGE)
        return visit.page(Layout("Sign in", passkeys=True), "signin.html", status, error=error,
                          heading="Sign in to see your connected apps", action=PAGE + "/signin",
                          passkey_next=PAGE)

    def listing(self, visit: Visit, *, error: str = "", notice: str = "",
                status: int = 200) -> Response:
        assert visit.web is not None
        apps = []
        for consent in self.authorization.consents_of(visit.web.user.id):
            client = self.clients(consent.client_id)
            name = client.name if client and client.name else consent.client_id
            changed = _when(consent.updated_at) if consent.updated_at != consent.created_at else ""
            apps.append({"name": name, "client_id": consent.client_id, "scopes": consent.scopes,
                         "allowed": _when(consent.created_at), "changed": changed})
        return visit.page(Layout(TITLE), "consents.html", status, title=TITLE, apps=apps,
                          error=error, notice=notice)
