"""The pages of the mailed links (SPEC §11): ``/invitation`` (an invited person
chooses a username and a password), ``/password-reset`` (ask for a link: the same
answer whatever the address) and ``/password-reset/confirm`` (set a new password,
with the second factor where one is enrolled). Decisions are the services'
(``services.invitations``, ``services.password_reset``); these only render.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalice.app import Response

from chalicelib.errors import NotFound, TesseraError
from chalicelib.services.invitations import Invitations
from chalicelib.services.password_reset import PasswordReset
from chalicelib.services.security_log import Where
from chalicelib.web.browser import Visit

RESET_SENT = ("If an account uses this address, a link to set a new password is on its way. "
              "It works once, for 30 minutes. Nothing arrived? Check the spam folder, or ask "
              "again in a few minutes.")


def _token(visit: Visit) -> str:
    return (visit.request.query.get("token") or visit.request.form.one("token"))[:200]


@dataclass(frozen=True)
class InvitationPage:
    invitations: Invitations

    def show(self, visit: Visit, *, error: str = "", status: int = 200,
             username: str = "") -> Response:
        token = _token(visit)
        try:
            link = self.invitations.open(token)
        except NotFound as err:
            return visit.message("Invitation not valid", err.description, 404)
        return visit.page("Create your account", "invitation.html", status, error=error,
                          token=token, email=link.email, username=username)

    def accept(self, visit: Visit) -> Response:
        visit.check_csrf()
        form = visit.request.form
        username, password = form.one("username"), form.one("password")
        if password != form.one("password_again"):
            return self.show(visit, error="The two passwords differ. Type the same password "
                                          "twice.", status=400, username=username)
        try:
            self.invitations.accept(_token(visit), username, password)
            visit.sign_in(username, password)
        except NotFound as err:
            return visit.message("Invitation not valid", err.description, 404)
        except TesseraError as err:
            return self.show(visit, error=err.description, status=err.status, username=username)
        # The account exists; the next step offered is a second factor.
        return visit.redirect("/account/security?welcome=1")


@dataclass(frozen=True)
class PasswordResetPage:
    reset: PasswordReset

    def ask(self, visit: Visit, *, notice: str = "", error: str = "",
            status: int = 200) -> Response:
        return visit.page("Reset your password", "password_reset.html", status, notice=notice,
                          error=error)

    def request(self, visit: Visit) -> Response:
        visit.check_csrf()
        email = visit.request.form.one("email")[:320]
        if email:
            self.reset.request(email, source=visit.request.source_ip,
                               issuer=visit.request.issuer)
        # The same page whatever the address (SPEC §11: nothing says whether it is known).
        return self.ask(visit, notice=RESET_SENT, status=202 if email else 400,
                        error="" if email else "Enter your email address.")

    def choose(self, visit: Visit, *, error: str = "", status: int = 200) -> Response:
        token = _token(visit)
        try:
            _, user = self.reset.open(token)
        except NotFound as err:
            return visit.message("Link not valid", err.description, 404,
                                 link=("/password-reset", "Ask for a new link"))
        factors = user.second_factors
        return visit.page("Choose a new password", "password_reset_confirm.html", status,
                          error=error, token=token, username=user.username,
                          second_factor=factors.enrolled, totp=bool(factors.totp_sealed))

    def complete(self, visit: Visit) -> Response:
        visit.check_csrf()
        form = visit.request.form
        password = form.one("password")
        if password != form.one("password_again"):
            return self.choose(visit, error="The two passwords differ. Type the same password "
                                            "twice.", status=400)
        where = Where(visit.request.source_ip, visit.request.user_agent[:256])
        try:
            self.reset.complete(_token(visit), password, form.one("code"), where,
                                issuer=visit.request.issuer)
        except NotFound as err:
            return visit.message("Link not valid", err.description, 404,
                                 link=("/password-reset", "Ask for a new link"))
        except TesseraError as err:
            return self.choose(visit, error=err.description, status=err.status)
        visit.sign_out()
        return visit.message("Password changed", "Your password is changed, and every session "
                             "of your account has ended: sign in again with the new password. "
                             "Your personal access tokens and role keys still work.", 200,
                             link=("/account", "Sign in"))
