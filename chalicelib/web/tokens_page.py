"""The tokens page of the account console, ``/account/tokens`` (SPEC §5, §11):
personal access tokens managed in HTML forms (``/tokens`` redirects here).

Everything works without JavaScript; the layout's optional script only adds a
Copy button, "select all" and greys out custom scopes when an API set is chosen.
Every POST carries the CSRF token (``browser.Visit``); a change needs the
password unless the browser signed in less than ``recent_signin_seconds`` ago.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from chalice.app import Response

from chalicelib.api_models import PatCopy, PatCreate, PatEdit, PatRemoveMany
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import BadRequest, TesseraError
from chalicelib.http import validated
from chalicelib.services.pats import (
    MAX_DESCRIPTION,
    STATES,
    Issued,
    Pats,
    default_expiry,
    today,
)
from chalicelib.services.web_signin import WebSession
from chalicelib.storage.pats import Pat
from chalicelib.web import console
from chalicelib.web.browser import Confirms, Form, Visit
from chalicelib.web.page import Layout

TITLE = "Personal access tokens"
DASHBOARD = Layout(TITLE, wide=True, script=True)
PAT_HINT = "tsp_…"
PAGE = "/account/tokens"


@dataclass(frozen=True)
class TokensPage:
    """Every tokens page, given the PAT service, the confirmation rule, a clock and settings."""

    pats: Pats
    confirmation: Confirms
    clock: Clock
    settings: Settings

    def show(self, visit: Visit) -> Response:
        if visit.web is None:
            return console.signin_page(visit, PAGE)
        state = visit.request.query.get("state", "")
        return self.dashboard(visit, visit.web, state=state)

    # -- changes -------------------------------------------------------------------

    def generate(self, visit: Visit) -> Response:
        def run(web: WebSession, form: Form) -> Response:
            issued = self.pats.generate(web.user, validated(PatCreate, settings_body(form), "body"),
                                       origin(visit))
            return self.secret_page(visit, issued, "New token")
        return self._change(visit, run, keep_form=True)

    def remove(self, visit: Visit) -> Response:
        def run(web: WebSession, form: Form) -> Response:
            ids = form.all("ids")
            if not ids:
                raise BadRequest("Select the tokens to remove first")
            removed, _ = self.pats.remove_many(web.user,
                                               validated(PatRemoveMany, {"ids": ids}, "body"))
            return self.dashboard(visit, web, notice=f"Removed {len(removed)} token(s).")
        return self._change(visit, run)

    def regenerate(self, visit: Visit, pat_id: str) -> Response:
        def run(web: WebSession, form: Form) -> Response:
            return self.secret_page(visit, self.pats.regenerate(web.user, pat_id), "Regenerated")
        return self._change(visit, run)

    def copy(self, visit: Visit, pat_id: str) -> Response:
        def run(web: WebSession, form: Form) -> Response:
            issued = self.pats.copy(web.user, pat_id, PatCopy(), origin(visit))
            return self.secret_page(visit, issued, "Copied token")
        return self._change(visit, run)

    def edit_form(self, visit: Visit, pat_id: str) -> Response:
        if visit.web is None:
            return visit.redirect(PAGE)
        return self.edit_page(visit, visit.web, self.pats.get(visit.web.user, pat_id))

    def edit(self, visit: Visit, pat_id: str) -> Response:
        web = visit.web
        if web is None:
            return visit.redirect(PAGE)
        visit.check_csrf()
        pat = self.pats.get(web.user, pat_id)
        try:
            visit.confirm_change(self.confirmation, web)
            self.pats.edit(web.user, pat_id,
                           validated(PatEdit, settings_body(visit.request.form), "body"))
        except TesseraError as err:
            return self.edit_page(visit, web, pat, error=err.description, status=err.status)
        return visit.redirect(PAGE)

    def _change(self, visit: Visit, run: Callable[[WebSession, Form], Response], *,
                keep_form: bool = False) -> Response:
        """A dashboard change: signed in, CSRF checked, confirmed; errors re-render the page."""
        web = visit.web
        if web is None:
            return visit.redirect(PAGE)
        visit.check_csrf()
        try:
            visit.confirm_change(self.confirmation, web)
            return run(web, visit.request.form)
        except TesseraError as err:
            return self.dashboard(visit, web, error=err.description, status=err.status,
                                  form=visit.request.form if keep_form else None)

    # -- pages -----------------------------------------------------------------------

    def dashboard(self, visit: Visit, web: WebSession, *, error: str = "", notice: str = "",
                  state: str = "", form: Form | None = None, status: int = 200) -> Response:
        now = self.clock.now()
        filters = {"state": state} if state in STATES else {}
        form = form or Form()
        expiry = form.one("expires_at") if form else default_expiry(now, self.settings)
        links = [(f or "all", visit.path(PAGE) + ("?" + urlencode({"state": f}) if f else ""),
                  f == filters.get("state", "")) for f in ("", *STATES)]
        return console.page(visit, "tokens", DASHBOARD, "tokens.html", status, title=TITLE, error=error,
                          notice=notice, links=links,
                          refresh=visit.path(PAGE) + ("?" + urlencode(filters) if filters else ""),
                          rows=[_row(p, now) for p in self.pats.find(web.user, filters)],
                          description=form.one("description"),
                          max_description=MAX_DESCRIPTION, expiry=self._expiry(expiry),
                          scopes=self._scopes(form.one("api_set") or None, form.all("scopes")),
                          recent_minutes=self.settings.recent_signin_seconds // 60,
                          password=self._password(web))

    def secret_page(self, visit: Visit, issued: Issued, what: str) -> Response:
        return console.page(visit, "tokens", Layout("New token", wide=True, script=True),
                            "token_secret.html",
                          201 if what != "Regenerated" else 200, what=what,
                          description=issued.pat.description, token=issued.token,
                          expires=issued.pat.expires_on or "never",
                          scopes=" ".join(issued.pat.scopes))

    def edit_page(self, visit: Visit, web: WebSession, pat: Pat, *, error: str = "",
                  status: int = 200) -> Response:
        return console.page(visit, "tokens", Layout("Edit token", script=True), "token_edit.html",
                            status,
                          error=error, pat_id=pat.id, description=pat.description,
                          max_description=MAX_DESCRIPTION, expiry=self._expiry(pat.expires_on),
                          scopes=self._scopes(pat.api_set, pat.scopes),
                          password=self._password(web))

    # -- fields --------------------------------------------------------------------

    def _password(self, web: WebSession) -> dict[str, Any]:
        """The confirming password field: may be left empty after a recent sign-in."""
        return {"recent": self.clock.now() - web.session.auth_time
                < self.settings.recent_signin_seconds,
                "otp": web.user.second_factors.enrolled}

    def _scopes(self, api_set: str | None, scopes: Iterable[str]) -> dict[str, Any]:
        """The API set select and the custom scope boxes."""
        chosen = set(scopes)
        return {"sets": [(name, ", ".join(members), name == api_set)
                         for name, members in sorted(self.settings.api_sets.items())],
                "boxes": [(s, s in chosen and not api_set) for s in self.settings.scopes]}

    def _expiry(self, value: str | None) -> dict[str, Any]:
        """The expiry date field: its bounds (SPEC §5) and what an empty one means."""
        s, now = self.settings, self.clock.now()
        last = (today(now) + dt.timedelta(days=s.pat_max_lifetime_days)).isoformat()
        return {"value": value or "", "min": (today(now) + dt.timedelta(days=1)).isoformat(),
                "max": last if s.pat_max_lifetime_days > 0 else "",
                "max_days": s.pat_max_lifetime_days, "optional": s.pat_allow_no_expiry}


# --------------------------------------------------------------------------
# what the forms mean, and small views
# --------------------------------------------------------------------------

def settings_body(form: Form) -> dict[str, Any]:
    """A PAT's settings from the page's form (SPEC §5), as the API's body would give
    them: the page validates them into the same command (``api_models.PatCreate``,
    ``PatEdit``) the API does."""
    body: dict[str, Any] = {"description": form.one("description"),
                            "expires_at": form.one("expires_at") or None}
    api_set = form.one("api_set")
    if api_set:
        body["api_set"] = api_set
    else:
        body["scopes"] = form.all("scopes")
    return body


def origin(visit: Visit) -> dict[str, str]:
    """Where a PAT was created from: the web page, this address, this browser."""
    return {"client_id": "web", "ip": visit.request.source_ip,
            "user_agent": visit.request.user_agent}


def _when(epoch: int | None, never: str = "never") -> str:
    if epoch is None:
        return never
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _row(p: Pat, now: int) -> dict[str, Any]:
    """One PAT as a row of the table."""
    return {"id": p.id, "description": p.description, "hint": PAT_HINT + p.last_four,
            "scopes": p.api_set + " (API set)" if p.api_set else " ".join(p.scopes),
            "created": _when(p.created_at), "expires": p.expires_on or "never",
            "last_used": _when(p.last_used_at), "state": p.state(now)}
