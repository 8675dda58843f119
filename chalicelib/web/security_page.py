"""``/account/security`` (SPEC §11): the second factors of the signed-in person.

An authenticator app (TOTP) is set up in two steps: a secret shown once, as a QR
code (``segno``, inline SVG) and as text, then a code of it that confirms it; the
first second factor also shows ten recovery codes, once. Recovery codes can be
replaced; passkeys are listed and added here too (``_passkeys_manage.html``).
Changes need a recent sign-in (with the second factor, where one is enrolled) or
the password (and a code), as every lasting change does (``services.confirmation``).

A sign-in that must enrol a second factor before anything else (the stage requires
one and the grace period is over, or the app being signed in to does) may use this
page and nothing else; after enrolling it goes on to ``next``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from chalice.app import Response

from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import ConditionFailed, TesseraError
from chalicelib.services import mfa_policy
from chalicelib.services.confirmation import Confirmation
from chalicelib.services.second_factors import Enrolment, SecondFactors
from chalicelib.services.security_log import Where
from chalicelib.services.web_signin import WebSession
from chalicelib.web import console
from chalicelib.web.browser import Visit
from chalicelib.web.page import Layout
from chalicelib.web.passkey_page import passkey_rows
from chalicelib.web.second_factor_page import safe_next

PAGE = "/account/security"
TITLE = "Security"


def qr_svg(uri: str) -> str:
    """The ``otpauth://`` URI as a QR code, inline SVG (no image request, CSP img-src 'none')."""
    import segno  # on first use: only this page draws QR codes

    return str(segno.make(uri, error="m").svg_inline(scale=4, title="QR code of the secret"))


def when(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if epoch else ""


@dataclass(frozen=True)
class SecurityPage:
    second_factors: SecondFactors
    confirmation: Confirmation
    clock: Clock
    settings: Settings

    # -- who may use the page ---------------------------------------------------------

    @staticmethod
    def _signed(visit: Visit) -> WebSession | None:
        """A finished sign-in, or one whose only way on is to enrol a second factor."""
        if visit.web is not None:
            return visit.web
        if visit.pending is not None and visit.pending.needs == mfa_policy.ENROL:
            return visit.pending
        return None

    def _away(self, visit: Visit) -> Response:
        """Not signed in: the console's sign-in (or second step), then back here."""
        return console.signin_page(visit, PAGE)

    def _where(self, visit: Visit) -> Where:
        return Where(visit.request.source_ip, visit.request.user_agent[:256])

    def _host(self, visit: Visit) -> str:
        return urlsplit(visit.request.issuer).hostname or ""

    # -- pages ----------------------------------------------------------------------------

    def show(self, visit: Visit, *, error: str = "", notice: str = "", status: int = 200,
             enrolment: Enrolment | None = None, codes: list[str] | None = None) -> Response:
        web = self._signed(visit)
        if web is None:
            return self._away(visit)
        user, now = web.user, self.clock.now()
        factors = user.second_factors
        next_path = visit.request.query.get("next") or visit.request.form.one("next")
        grace = mfa_policy.grace_ends(user, self.settings, now)
        return console.page(visit, "security", Layout(TITLE, wide=True, passkeys=True),
                            "account_security.html", status,
                            passkey_rows=passkey_rows(factors.passkeys), passkey_next=PAGE,
                          title=TITLE, error=error, notice=notice, user=user,
                          totp=bool(factors.totp_sealed), totp_since=when(factors.totp_created_at),
                          enrolled=factors.enrolled, recovery_left=len(factors.recovery),
                          must_enrol=web.needs == mfa_policy.ENROL,
                          app_requires=visit.request.query.get("why") == "app",
                          grace_ends=when(grace) if grace is not None and grace > now else "",
                          next=safe_next(next_path, "") if next_path else "",
                          enrolment=enrolment,
                          qr=qr_svg(enrolment.otpauth_uri) if enrolment else "",
                          codes=codes or [],
                          recent=now - web.session.auth_time < self.settings.recent_signin_seconds
                          and (web.session.mfa or not factors.enrolled))

    def begin_totp(self, visit: Visit) -> Response:
        def run(web: WebSession) -> Response:
            return self.show(visit, enrolment=self.second_factors.begin_totp(web.user,
                                                                             self._host(visit)))
        return self._confirmed(visit, run)

    def confirm_totp(self, visit: Visit) -> Response:
        web = self._signed(visit)
        if web is None:
            return self._away(visit)
        visit.check_csrf()
        code = visit.request.form.one("code").strip().replace(" ", "")
        # Enrolling proves the person holds the factor: the sign-in gains it (SPEC §11).
        writes, upgraded = visit.upgrade("otp")
        try:
            codes = self.second_factors.confirm_totp(web.user, code, self._where(visit),
                                                     also=writes)
        except ConditionFailed:
            return self.show(visit, error="Start setting up the authenticator app again.",
                             status=409)
        except TesseraError as err:
            return self.show(visit, error=err.description, status=err.status,
                             enrolment=self.second_factors.pending_totp(web.user,
                                                                        self._host(visit)))
        visit.adopt(upgraded)
        return self._done(visit, "Your authenticator app is set up.", codes)

    def remove_totp(self, visit: Visit) -> Response:
        def run(web: WebSession) -> Response:
            self.second_factors.remove_totp(web.user, self._where(visit))
            return visit.redirect(PAGE)
        return self._confirmed(visit, run)

    def regenerate(self, visit: Visit) -> Response:
        def run(web: WebSession) -> Response:
            codes = self.second_factors.regenerate_recovery(web.user, self._where(visit))
            return self._done(visit, "New recovery codes: the old ones no longer work.", codes)
        return self._confirmed(visit, run)

    def _confirmed(self, visit: Visit, run: Callable[[WebSession], Response]) -> Response:
        """A change of second factors: signed in (or only enrolling), the CSRF token, the
        confirmation of lasting changes, then ``run``; a refusal shows the page again."""
        web = self._signed(visit)
        if web is None:
            return self._away(visit)
        visit.check_csrf()
        try:
            visit.confirm_change(self.confirmation, web)
            return run(web)
        except TesseraError as err:
            return self.show(visit, error=err.description, status=err.status)

    def _done(self, visit: Visit, notice: str, codes: list[str]) -> Response:
        next_path = safe_next(visit.request.form.one("next"), "")
        return console.page(visit, "security", Layout("Recovery codes" if codes else TITLE),
                            "account_codes.html", notice=notice, codes=codes,
                            next=next_path or PAGE)
