"""The console's own pages (SPEC §11): profile, password, sessions, security log.

Every page is signed in (``console.signed_in``), every POST checks the CSRF
token (``console.change``); the decisions are the services' (``PasswordChange``,
``Sessions``, ``SecurityLog``), the pages only show their outcomes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from chalice.app import Response

from chalicelib.clock import Clock
from chalicelib.errors import BadRequest, Forbidden, TesseraError, TooManyRequests
from chalicelib.models import User
from chalicelib.services.account import valid_session_id
from chalicelib.services.notices import OPTIONAL, wants
from chalicelib.services.passwords import MIN_LENGTH, PasswordChange, end_other_sessions
from chalicelib.services.security_log import KINDS, SecurityLog, Where
from chalicelib.services.sessions import Sessions
from chalicelib.services.web_signin import WEB_CLIENT_ID, WebSession
from chalicelib.web import console
from chalicelib.web.browser import Visit
from chalicelib.web.page import Layout

PROFILE, PASSWORD, SESSIONS, LOG = ("/account", "/account/password", "/account/sessions",
                                    "/account/security-log")
LOG_PAGE = 25

# The security log's kinds (SPEC §11) in words.
KIND_WORDS = {
    "signin": "Signed in", "signin_failed": "Sign-in failed", "lockout": "Sign-in locked",
    "session_ended": "Session ended", "password_changed": "Password changed",
    "password_reset": "Password reset", "mfa_added": "Second factor added",
    "mfa_removed": "Second factor removed", "recovery_code_used": "Recovery code used",
    "pat_created": "Token created", "pat_revoked": "Token revoked",
    "pat_used_new_ip": "Token used from a new address", "role_key_created": "Role key created",
    "role_key_revoked": "Role key revoked", "trust_policy_changed": "Trust policy changed",
    "consent_given": "App connected", "consent_withdrawn": "App disconnected",
    "email_changed": "Email changed",
}


def when(epoch: int | None, never: str = "never") -> str:
    if not epoch:
        return never
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def where(visit: Visit) -> Where:
    return Where(visit.request.source_ip, visit.request.user_agent[:256])


def detail_words(detail: dict[str, Any]) -> str:
    return ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(detail.items()))


def notice_boxes(user: User) -> list[dict[str, Any]]:
    """The optional notices (``services.notices.OPTIONAL``) as the profile's checkboxes."""
    return [{"name": kind, "words": words, "checked": wants(user, kind)}
            for kind, words in OPTIONAL.items()]


def profile_page(visit: Visit, web: WebSession, *, error: str = "", notice: str = "",
                 status: int = 200, new_email: str = "") -> Response:
    """The profile: who is signed in, the form that changes the address
    (``web.profile_changes``) and the notices' settings."""
    u = web.user
    name = " ".join(p for p in (u.firstname, u.lastname) if p)
    return console.page(visit, "profile", Layout("Profile"), "account_profile.html", status,
                        username=u.username, name=name, email=u.email,
                        email_verified=u.email_verified, since=when(u.created_at, "unknown"),
                        error=error, notice=notice, new_email=new_email,
                        second_factor=u.second_factors.enrolled,
                        totp=bool(u.second_factors.totp_sealed),
                        notices=notice_boxes(u))


@dataclass(frozen=True)
class AccountPages:
    sessions: Sessions
    passwords: PasswordChange
    security_log: SecurityLog
    clock: Clock

    # -- profile -----------------------------------------------------------------------

    def profile(self, visit: Visit) -> Response:
        return console.signed_in(visit, PROFILE, lambda web: profile_page(visit, web))

    # -- password ----------------------------------------------------------------------

    def password_form(self, visit: Visit) -> Response:
        return console.signed_in(visit, PASSWORD, lambda web: self._password_page(visit))

    def change_password(self, visit: Visit) -> Response:
        def run(web: WebSession) -> Response:
            form = visit.request.form
            end_others = form.one("end_others") == "yes"
            try:
                done = self.passwords.change(web.user, current=form.one("current_password"),
                                             new=form.one("new_password"),
                                             again=form.one("confirm_password"),
                                             where=where(visit), keep_session=web.session.id,
                                             end_others=end_others)
            except (BadRequest, Forbidden, TooManyRequests) as err:
                return self._password_page(visit, error=err.description, status=err.status,
                                           end_others=end_others)
            notice = "Your password is changed."
            if end_others:
                notice += f" {done.ended_sessions} other session(s) ended."
            return self._password_page(visit, notice=notice)
        return console.change(visit, PASSWORD, run)

    def _password_page(self, visit: Visit, *, error: str = "", notice: str = "",
                       status: int = 200, end_others: bool = True) -> Response:
        return console.page(visit, "password", Layout("Password"), "account_password.html",
                            status, error=error, notice=notice, min_length=MIN_LENGTH,
                            end_others=end_others)

    # -- sessions ----------------------------------------------------------------------

    def sessions_list(self, visit: Visit) -> Response:
        return console.signed_in(visit, SESSIONS, lambda web: self._sessions_page(visit, web))

    def end_session(self, visit: Visit) -> Response:
        def run(web: WebSession) -> Response:
            session_id = visit.request.form.one("session_id")
            if session_id == web.session.id:
                visit.sign_out()
                return visit.redirect(console.HOME)
            # Another user's session is indistinguishable from no session (as /v1/sessions).
            if not valid_session_id(session_id) or not self.sessions.end_owned(
                    session_id, web.user.id, reason="ended_by_user"):
                return self._sessions_page(visit, web, status=404,
                                           error="No such session (it may have ended already).")
            return self._sessions_page(visit, web, notice="The session has ended.")
        return console.change(visit, SESSIONS, run)

    def end_other_sessions(self, visit: Visit) -> Response:
        def run(web: WebSession) -> Response:
            ended = end_other_sessions(self.sessions, web.user, web.session.id, "ended_by_user")
            return self._sessions_page(visit, web, notice=f"{ended} other session(s) ended.")
        return console.change(visit, SESSIONS, run)

    def _sessions_page(self, visit: Visit, web: WebSession, *, error: str = "",
                       notice: str = "", status: int = 200) -> Response:
        rows = []
        found = self.sessions.list_for_user(web.user.id)
        for s in sorted(found, key=lambda s: (s.id != web.session.id, -s.last_used_at)):
            device = s.device or {}
            rows.append({"id": s.id, "current": s.id == web.session.id,
                         "app": "This site (browser)" if s.client_id == WEB_CLIENT_ID
                         else s.client_id,
                         "device": device.get("user_agent") or "unknown",
                         "ip": device.get("ip") or "unknown",
                         "created": when(s.created_at), "last_used": when(s.last_used_at)})
        return console.page(visit, "sessions", Layout("Sessions", wide=True),
                            "account_sessions.html", status, error=error, notice=notice,
                            rows=rows)

    # -- security log ------------------------------------------------------------------

    def log(self, visit: Visit) -> Response:
        def show(web: WebSession) -> Response:
            query = visit.request.query
            kind = query.get("kind") or None
            cursor = query.get("cursor") or None
            kinds = [{"value": k, "words": KIND_WORDS.get(k, k), "selected": k == kind}
                     for k in KINDS]
            try:
                events, next_cursor = self.security_log.page(web.user.id, kind=kind,
                                                              cursor=cursor, limit=LOG_PAGE)
            except TesseraError as err:
                return console.page(visit, "security-log", Layout("Security log", wide=True),
                                    "account_security_log.html", err.status, error=err.description,
                                    rows=[], kinds=kinds, next_href="", first_href="")
            rows = [{"time": when(e.time), "kind": KIND_WORDS.get(e.kind, e.kind), "code": e.kind,
                     "ip": e.ip or "—", "user_agent": e.user_agent or "—",
                     "detail": detail_words(dict(e.detail))} for e in events]
            filters = {"kind": kind} if kind else {}
            next_href = (visit.path(LOG) + "?" + urlencode({**filters, "cursor": next_cursor})
                         if next_cursor else "")
            first_href = (visit.path(LOG) + ("?" + urlencode(filters) if filters else "")
                          if cursor else "")
            return console.page(visit, "security-log", Layout("Security log", wide=True),
                                "account_security_log.html", error="", rows=rows, kinds=kinds,
                                next_href=next_href, first_href=first_href)
        return console.signed_in(visit, LOG, show)
