"""The ``/tokens`` dashboard (SPEC §5): personal access tokens managed in HTML forms.

Everything works without JavaScript; the layout's optional script only adds a
Copy button, "select all" and greys out custom scopes when an API set is chosen.
Every POST carries the CSRF token (``browser.Visit``); a change needs the
password unless the browser signed in less than ``recent_signin_seconds`` ago.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

from chalice.app import Response

from chalicelib.api_models import PatCopy, PatCreate, PatEdit, PatRemoveMany
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import BadRequest, InvalidGrant, TesseraError
from chalicelib.http import validated
from chalicelib.models import User
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
from chalicelib.web.browser import Form, Visit
from chalicelib.web.page import Layout, esc

TITLE = "Personal access tokens"
DASHBOARD = Layout(TITLE, wide=True, script=True)
PAT_HINT = "tsp_…"


class Confirms(Protocol):
    """SPEC §5: a change needs the password, or a recent sign-in (``services.confirmation``)."""

    def require(self, user: User, *, password: object, signed_in_at: int | None,
                source: str) -> None: ...


@dataclass(frozen=True)
class TokensPage:
    """Every ``/tokens`` page, given the PAT service, the confirmation rule, a clock and settings."""

    pats: Pats
    confirmation: Confirms
    clock: Clock
    settings: Settings

    # -- signing in and out ------------------------------------------------------

    def show(self, visit: Visit) -> Response:
        if visit.web is None:
            return self.signin_page(visit)
        state = visit.request.query.get("state", "")
        return self.dashboard(visit, visit.web, state=state)

    def signin(self, visit: Visit) -> Response:
        visit.check_csrf()
        form = visit.request.form
        try:
            visit.sign_in(form.one("username"), form.one("password"))
        except InvalidGrant as err:
            # Bad credentials, however they are bad, get one answer (SPEC §8).
            return self.signin_page(visit, error=err.description, status=403)
        except TesseraError as err:
            return self.signin_page(visit, error=err.description, status=err.status)
        return visit.redirect("/tokens")

    def signout(self, visit: Visit) -> Response:
        if visit.web is not None:
            visit.check_csrf()
        visit.sign_out()
        return visit.redirect("/tokens")

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
            return visit.redirect("/tokens")
        return self.edit_page(visit, visit.web, self.pats.get(visit.web.user, pat_id))

    def edit(self, visit: Visit, pat_id: str) -> Response:
        web = visit.web
        if web is None:
            return visit.redirect("/tokens")
        visit.check_csrf()
        pat = self.pats.get(web.user, pat_id)
        try:
            self._confirm(visit, web)
            self.pats.edit(web.user, pat_id,
                           validated(PatEdit, settings_body(visit.request.form), "body"))
        except TesseraError as err:
            return self.edit_page(visit, web, pat, error=err.description, status=err.status)
        return visit.redirect("/tokens")

    def _confirm(self, visit: Visit, web: WebSession) -> None:
        self.confirmation.require(web.user, password=visit.request.form.one("password") or None,
                                  signed_in_at=web.session.auth_time,
                                  source=visit.request.source_ip)

    def _change(self, visit: Visit, run: Callable[[WebSession, Form], Response], *,
                keep_form: bool = False) -> Response:
        """A dashboard change: signed in, CSRF checked, confirmed; errors re-render the page."""
        web = visit.web
        if web is None:
            return visit.redirect("/tokens")
        visit.check_csrf()
        try:
            self._confirm(visit, web)
            return run(web, visit.request.form)
        except TesseraError as err:
            return self.dashboard(visit, web, error=err.description, status=err.status,
                                  form=visit.request.form if keep_form else None)

    # -- pages -----------------------------------------------------------------------

    def signin_page(self, visit: Visit, *, error: str = "", status: int = 200) -> Response:
        main = (f'<h1>Sign in to manage your tokens</h1>{_messages(error)}'
                f'<form method="post" action="{visit.path("/tokens/signin")}">'
                f'{visit.hidden_csrf()}'
                '<label for="username">Username</label>'
                '<input type="text" id="username" name="username" autocomplete="username" '
                'autocapitalize="none" spellcheck="false" required>'
                '<label for="password">Password</label>'
                '<input type="password" id="password" name="password" '
                'autocomplete="current-password" required>'
                '<div class="actions"><button type="submit">Sign in</button></div></form>')
        return visit.page("Sign in", main, status)

    def dashboard(self, visit: Visit, web: WebSession, *, error: str = "", notice: str = "",
                  state: str = "", form: Form | None = None, status: int = 200) -> Response:
        now, s = self.clock.now(), self.settings
        filters = {"state": state} if state in STATES else {}
        rows = "".join(_row(p, now, visit) for p in self.pats.find(web.user, filters))
        if not rows:
            rows = '<tr><td colspan="9">No tokens here yet.</td></tr>'
        form = form or Form()
        expiry = form.one("expires_at") if form else default_expiry(now, s)
        current = ' aria-current="page"'
        links = " ".join(
            f'<a href="{visit.path("/tokens")}{"?" + urlencode({"state": f}) if f else ""}"'
            f'{current if f == filters.get("state", "") else ""}>{esc(f or "all")}</a>'
            for f in ("", *STATES))
        refresh = visit.path("/tokens") + ("?" + urlencode(filters) if filters else "")
        main = (
            f'<h1>{TITLE}</h1>{_messages(error, notice)}'
            '<h2>Generate a new token</h2>'
            f'<form method="post" action="{visit.path("/tokens/generate")}" id="generate-form">'
            f'{visit.hidden_csrf()}<div class="grid"><div>'
            '<label for="description">Description</label>'
            f'<input type="text" id="description" name="description" '
            f'maxlength="{MAX_DESCRIPTION}" value="{esc(form.one("description"))}" required '
            'placeholder="What is this token for?">'
            f'{self._expiry_field(expiry)}</div><div>'
            f'{self._scope_fields(api_set=form.one("api_set") or None, scopes=form.all("scopes"))}'
            '</div></div>'
            '<label for="gen-password">Your password</label>'
            '<input type="password" id="gen-password" name="password" '
            'autocomplete="current-password">'
            f'<p class="hint">Needed unless you signed in less than '
            f'{s.recent_signin_seconds // 60} minutes ago.</p>'
            '<div class="actions"><button class="primary" type="submit">Generate token</button>'
            '</div></form>'
            '<h2>Your tokens</h2>'
            f'<form method="post" action="{visit.path("/tokens/remove")}" id="manage-form">'
            f'{visit.hidden_csrf()}'
            f'<div class="toolbar"><span class="filters">Show: {links}</span>'
            f'<a class="button small" href="{esc(refresh)}">Refresh</a></div>'
            '<table><thead><tr><th><input type="checkbox" id="select-all" hidden '
            'aria-label="Select all"></th><th>Description</th><th>Token</th><th>Scopes</th>'
            '<th>Created</th><th>Expires</th><th>Last used</th><th>State</th><th>Actions</th></tr>'
            f'</thead><tbody>{rows}</tbody></table>'
            f'{self._password_field(web)}'
            '<div class="actions"><button class="danger" type="submit">Remove selected</button>'
            '</div></form>')
        return visit.page(DASHBOARD, main, status)

    def secret_page(self, visit: Visit, issued: Issued, what: str) -> Response:
        main = (f'<section class="secret" aria-live="polite">'
                f'<h1>{esc(what)}: {esc(issued.pat.description)}</h1>'
                '<p><strong>Copy your token now. You will not see it again.</strong></p>'
                '<div class="secret-row"><input type="text" id="secret-token" readonly '
                f'value="{esc(issued.token)}" aria-label="Your new token">'
                '<button type="button" id="copy-button" hidden>Copy</button></div>'
                f'<p class="hint">Expires: {esc(issued.pat.expires_on or "never")} · Scopes: '
                f'{esc(" ".join(issued.pat.scopes))}</p></section>'
                f'<p><a class="button secondary" href="{visit.path("/tokens")}">'
                'Back to your tokens</a></p>')
        return visit.page(Layout("New token", wide=True, script=True), main,
                          201 if what != "Regenerated" else 200)

    def edit_page(self, visit: Visit, web: WebSession, pat: Pat, *, error: str = "",
                  status: int = 200) -> Response:
        main = (f'<h1>Edit token</h1>{_messages(error)}'
                f'<form method="post" action="{visit.path("/tokens/" + esc(pat.id) + "/edit")}">'
                f'{visit.hidden_csrf()}'
                '<label for="description">Description</label>'
                '<input type="text" id="description" name="description" required '
                f'maxlength="{MAX_DESCRIPTION}" value="{esc(pat.description)}">'
                f'{self._expiry_field(pat.expires_on)}'
                f'{self._scope_fields(api_set=pat.api_set, scopes=pat.scopes)}'
                f'{self._password_field(web)}'
                '<div class="actions"><button class="primary" type="submit">Save</button>'
                f'<a class="button secondary" href="{visit.path("/tokens")}">Cancel</a></div>'
                '</form>')
        return visit.page(Layout("Edit token", script=True), main, status)

    # -- fields --------------------------------------------------------------------

    def _password_field(self, web: WebSession) -> str:
        recent = self.clock.now() - web.session.auth_time < self.settings.recent_signin_seconds
        hint = ("You signed in a moment ago, so you may leave it empty for a few minutes."
                if recent else "Required to confirm changes.")
        return ('<label for="password">Your password (to confirm Regenerate, Copy, Remove or '
                'Save)</label><input type="password" id="password" name="password" '
                f'autocomplete="current-password"><p class="hint">{hint}</p>')

    def _scope_fields(self, *, api_set: str | None, scopes: Iterable[str]) -> str:
        chosen = set(scopes)
        options = ['<option value="">Custom scopes (below)</option>']
        for name, members in sorted(self.settings.api_sets.items()):
            selected = " selected" if name == api_set else ""
            options.append(f'<option value="{esc(name)}"{selected}>{esc(name)}: '
                           f'{esc(", ".join(members))}</option>')
        boxes = "".join(
            f'<label class="inline"><input type="checkbox" name="scopes" value="{esc(s)}"'
            f'{" checked" if s in chosen and not api_set else ""}> {esc(s)}</label>'
            for s in self.settings.scopes)
        return (f'<label for="api_set">API set</label><select id="api_set" name="api_set">'
                f'{"".join(options)}</select>'
                f'<fieldset id="custom-scopes"><legend>Custom scopes</legend>{boxes}</fieldset>')

    def _expiry_field(self, value: str | None) -> str:
        s, now = self.settings, self.clock.now()
        first = (today(now) + dt.timedelta(days=1)).isoformat()
        hint = "Empty: the token never expires." if s.pat_allow_no_expiry else "Required."
        max_attr = ""
        if s.pat_max_lifetime_days > 0:
            last = (today(now) + dt.timedelta(days=s.pat_max_lifetime_days)).isoformat()
            max_attr = f' max="{last}"'
            hint += f" At most {s.pat_max_lifetime_days} days ahead."
        required = "" if s.pat_allow_no_expiry else " required"
        return ('<label for="expires_at">Expires on</label>'
                f'<input type="date" id="expires_at" name="expires_at" value="{esc(value or "")}" '
                f'min="{first}"{max_attr}{required}>'
                f'<p class="hint">The token stops working at 00:00 UTC on that day. {hint}</p>')


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


def _messages(error: str = "", notice: str = "") -> str:
    return ((f'<p class="error" role="alert">{esc(error)}</p>' if error else "")
            + (f'<p class="notice" role="status">{esc(notice)}</p>' if notice else ""))


def _when(epoch: int | None, never: str = "never") -> str:
    if epoch is None:
        return never
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _row(p: Pat, now: int, visit: Visit) -> str:
    state = p.state(now)
    scopes = esc(p.api_set) + " (API set)" if p.api_set else esc(" ".join(p.scopes))
    pid = esc(p.id)
    base = visit.path(f"/tokens/{pid}")
    return (f'<tr><td><input type="checkbox" name="ids" value="{pid}" '
            f'aria-label="Select {esc(p.description)}"></td>'
            f'<td data-label="Description">{esc(p.description)}</td>'
            f'<td data-label="Token"><code>{esc(PAT_HINT + p.last_four)}</code></td>'
            f'<td data-label="Scopes">{scopes}</td>'
            f'<td data-label="Created">{_when(p.created_at)}</td>'
            f'<td data-label="Expires" class="nowrap">{esc(p.expires_on or "never")}</td>'
            f'<td data-label="Last used">{_when(p.last_used_at)}</td>'
            f'<td data-label="State"><span class="state state-{state}">{state}</span></td>'
            f'<td class="row-actions"><a class="button small" href="{base}/edit">Edit</a>'
            f'<button class="small" type="submit" formaction="{base}/regenerate">'
            'Regenerate</button>'
            f'<button class="small" type="submit" formaction="{base}/copy">Copy</button>'
            '</td></tr>')
