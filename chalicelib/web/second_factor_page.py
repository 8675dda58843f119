"""The second step of every browser sign-in (SPEC §11): after the password, a
person with a second factor enters a code from their authenticator app or a
recovery code (or uses a passkey); a person who must enrol one first is sent to
set it up. Every page that needs a sign-in shows this step when the visit's
sign-in is pending (``Visit.pending``) and comes back to ``next`` after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from chalice.app import Response

from chalicelib.errors import BadRequest, ConditionFailed, Forbidden, TooManyRequests
from chalicelib.services import mfa_policy
from chalicelib.services.second_factors import SecondFactors
from chalicelib.services.security_log import SecurityLog, Where
from chalicelib.web.browser import Visit
from chalicelib.web.page import Layout

STEP = "/signin/second-factor"
CANCEL = "/signin/cancel"
ENROL = "/account/security"
MAX_NEXT = 4096


def safe_next(raw: str, default: str = "/account") -> str:
    """``next`` as a path of this site (it is put after the service's prefix): never
    another host, scheme or protocol-relative URL, so the step is no open redirect."""
    parts = urlsplit(raw)
    if (not raw.startswith("/") or raw.startswith("//") or "\\" in raw or parts.scheme
            or parts.netloc or len(raw) > MAX_NEXT or not raw.isprintable()):
        return default
    return raw


def prompt(visit: Visit, next_path: str, *, error: str = "", status: int = 200) -> Response:
    """The step a pending sign-in needs: its second factor, or enrolling one."""
    pending = visit.pending
    assert pending is not None
    if pending.needs == mfa_policy.ENROL:
        return visit.redirect(ENROL + "?" + urlencode({"next": safe_next(next_path)}))
    factors = pending.user.second_factors
    layout = Layout("Two-factor authentication", passkeys=bool(factors.passkeys))
    return visit.page(layout, "second_factor.html", status, error=error,
                      next=safe_next(next_path), username=pending.user.username,
                      totp=bool(factors.totp_sealed), passkeys=bool(factors.passkeys),
                      action=visit.path(STEP), cancel=visit.path(CANCEL))


@dataclass(frozen=True)
class SecondFactorPage:
    """``POST /signin/second-factor`` and ``POST /signin/cancel``."""

    second_factors: SecondFactors
    security_log: SecurityLog

    def submit(self, visit: Visit) -> Response:
        visit.check_csrf()
        form = visit.request.form
        next_path = safe_next(form.one("next"))
        if visit.pending is None:
            # Already through (another tab), or signed out: go on, the page decides.
            return visit.redirect(next_path)
        pending = visit.pending
        code = form.one("code")
        if not code or len(code) > 64:
            return prompt(visit, next_path, error="Enter the 6-digit code or a recovery code.",
                          status=400)
        where = Where(visit.request.source_ip, visit.request.user_agent[:256])
        try:
            verified = self.second_factors.verify(pending.user, code, where)
            # The sign-in is done: its entry in the log rides in the same transaction.
            signed_in = self.security_log.op(pending.user.id, "signin", where, {
                "method": "password+" + verified.factor, "session_id": pending.session.id})
            visit.complete(verified.method, [*verified.ops, signed_in])
            verified.committed(pending.user)
        except Forbidden as refused:
            return prompt(visit, next_path, error=refused.description, status=403)
        except TooManyRequests as refused:
            return prompt(visit, next_path, error=refused.description, status=429)
        except ConditionFailed:
            # Spent by a concurrent request (a replay), or the sign-in ended meanwhile.
            return prompt(visit, next_path, error="That code was already used. Wait for the "
                                                  "next one and try again.", status=403)
        return visit.redirect(next_path)

    @staticmethod
    def cancel(visit: Visit) -> Response:
        visit.check_csrf()
        next_path = safe_next(visit.request.form.one("next"))
        if visit.pending is None and visit.web is None:
            raise BadRequest("Nobody is signing in")
        visit.sign_out()
        return visit.redirect(next_path)
