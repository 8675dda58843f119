"""The connected apps page of the account console, ``/account/apps`` (SPEC §2, §7,
§11): the apps a person allowed, and Withdraw (``/consents`` redirects here).

Withdrawing ends that app's sessions of the person at once. Same sign-in, CSRF
and layout as every page; no JavaScript. The HTML is ``templates/consents.html``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from chalice.app import Response

from chalicelib.errors import NotFound
from chalicelib.models import Client
from chalicelib.services.authorization import Authorization
from chalicelib.services.security_log import Where
from chalicelib.web import console
from chalicelib.web.browser import Visit
from chalicelib.web.page import Layout

TITLE = "Connected apps"
PAGE = "/account/apps"


def _when(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class ConsentsPage:
    authorization: Authorization
    clients: Callable[[str], Client | None]

    def show(self, visit: Visit) -> Response:
        if visit.web is None:
            return console.signin_page(visit, PAGE)
        return self.listing(visit)

    def withdraw(self, visit: Visit) -> Response:
        if visit.web is None:
            return visit.redirect(PAGE)
        visit.check_csrf()
        client_id = visit.request.form.one("client_id")
        try:
            r = visit.request
            ended = self.authorization.withdraw(visit.web.user, client_id,
                                                Where(r.source_ip, r.user_agent[:256]))
        except NotFound:
            return self.listing(visit, error="That app is not connected (any more).", status=404)
        client = self.clients(client_id)
        name = client.name if client and client.name else client_id
        return self.listing(visit, notice=f"{name} is no longer connected; "
                                          f"{ended} of its session(s) ended.")

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
        return console.page(visit, "apps", Layout(TITLE), "consents.html", status, title=TITLE, apps=apps,
                          error=error, notice=notice)
