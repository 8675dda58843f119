"""The changes of the console's profile page (SPEC §11): the email address
(``POST /account/email``, then the mailed link's page ``/email-change/confirm``,
which needs no sign-in) and the notices' settings (``POST /account/notices``).
Decisions are the services' (``services.email_change``, ``services.notices``);
these only render.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from chalice.app import Response

from chalicelib.errors import NotFound, TesseraError
from chalicelib.services.email_change import EmailChanges
from chalicelib.services.notices import OPTIONAL, Notices
from chalicelib.services.web_signin import WebSession
from chalicelib.web import console
from chalicelib.web.account_pages import PROFILE, profile_page, where
from chalicelib.web.browser import Visit

CONFIRM = "/email-change/confirm"


def _token(visit: Visit) -> str:
    return (visit.request.query.get("token") or visit.request.form.one("token"))[:200]


@dataclass(frozen=True)
class ProfileChanges:
    email_changes: EmailChanges
    notices: Notices

    def change_email(self, visit: Visit) -> Response:
        def run(web: WebSession) -> Response:
            form = visit.request.form
            new_email = form.one("new_email")[:320]
            try:
                self.email_changes.request(web.user, new_email, password=form.one("password"),
                                           otp=form.one("otp"), where=where(visit),
                                           issuer=visit.request.issuer)
            except TesseraError as err:
                return profile_page(visit, web, error=err.description, status=err.status,
                                    new_email=new_email)
            return profile_page(visit, web, notice=(
                "We mailed a link to the new address: your address changes when you follow it "
                "(within 24 hours). Your current address was told of the change."))
        return console.change(visit, PROFILE, run)

    def set_notices(self, visit: Visit) -> Response:
        def run(web: WebSession) -> Response:
            form = visit.request.form
            off = [kind for kind in OPTIONAL if form.one(kind) != "yes"]
            user = self.notices.set_off(web.user, off)
            return profile_page(visit, replace(web, user=user),
                                notice="Your notice settings are saved.")
        return console.change(visit, PROFILE, run)

    def confirm_page(self, visit: Visit, *, error: str = "", status: int = 200) -> Response:
        token = _token(visit)
        try:
            link, user = self.email_changes.open(token)
        except NotFound as err:
            return visit.message("Link not valid", err.description, 404,
                                 link=(PROFILE, "Go to your account"))
        return visit.page("Confirm your new address", "email_change_confirm.html", status,
                          error=error, token=token, username=user.username,
                          new_email=link.email)

    def confirm(self, visit: Visit) -> Response:
        visit.check_csrf()
        try:
            user = self.email_changes.confirm(_token(visit), where(visit))
        except NotFound as err:
            return visit.message("Link not valid", err.description, 404,
                                 link=(PROFILE, "Go to your account"))
        except TesseraError as err:
            return self.confirm_page(visit, error=err.description, status=err.status)
        return visit.message("Address changed", f"{user.email} is now the address of "
                             f"{user.username}.", 200, link=(PROFILE, "Go to your account"))
