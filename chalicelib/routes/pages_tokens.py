"""The ``/tokens`` dashboard (SPEC §5): server-rendered HTML forms.

Everything works without JavaScript; ``/tokens/assets/tokens.js`` only adds a
Copy button and "select all". Every POST carries a CSRF token; changes need the
password unless the browser signed in less than ten minutes ago.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Mapping
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse

from chalice import Blueprint, Response

from chalicelib.container import Container, container
from chalicelib.errors import BadRequest, InvalidGrant, NotFound, TesseraError, UnsupportedMediaType
from chalicelib.http import FORM, Headers, body_bytes, header, issuer_of, media_type, source_ip
from chalicelib.services import pats
from chalicelib.services.web_signin import SESSION_COOKIE, WebSession, check_csrf, new_csrf
from chalicelib.storage.pats import Pat
from chalicelib.web.page import cookies_must_be_secure, parse_cookies, set_cookie

bp = Blueprint(__name__)
ANY = ["*/*"]
ASSETS = Path(__file__).resolve().parent.parent / "web"
ASSET_TYPES = {"tokens.js": "text/javascript; charset=utf-8", "tokens.css": "text/css; charset=utf-8"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
PAGE_HEADERS = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
                "Pragma": "no-cache", "Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}



# --------------------------------------------------------------------------
# request and response plumbing
# --------------------------------------------------------------------------

def _base() -> str:
    """Path prefix of the service (``/dev`` behind an API Gateway stage)."""
    c = container()
    return urlparse(issuer_of(bp.current_request, c.settings)).path.rstrip("/")


# Double-submit CSRF cookie of the sign-in form (before there is a session).
CSRF_COOKIE = "tessera_signin_csrf"


def _cookies() -> dict[str, str]:
    return parse_cookies(bp.current_request)


def _cookie(name: str, value: str, max_age: int) -> str:
    secure = cookies_must_be_secure(issuer_of(bp.current_request, container().settings))
    return set_cookie(name, value, secure=secure, max_age=max_age)


def _form() -> dict[str, list[str]]:
    request = bp.current_request
    if media_type(request) != FORM:
        raise UnsupportedMediaType(f"Content-Type must be {FORM}")
    try:
        text = body_bytes(request).decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("The form is not valid UTF-8") from exc
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        if "\x00" in value:
            raise BadRequest("Form fields must not contain NUL characters")
        out.setdefault(name, []).append(value)
    return out


def _one(form: Mapping[str, list[str]], name: str) -> str:
    values = form.get(name) or [""]
    if len(values) > 1:
        raise BadRequest(f"Form field '{name}' is repeated")
    return values[0]


def _page(body: str, *, status: int = 200, cookies: Iterable[str] = (),
          title: str = "Personal access tokens") -> Response:
    base = _base()
    html = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{escape(title)} · Tessera</title>'
            f'<link rel="stylesheet" href="{base}/tokens/assets/tokens.css"></head><body>'
            f'{body}<script src="{base}/tokens/assets/tokens.js"></script></body></html>')
    headers: Headers = dict(PAGE_HEADERS)
    cookie_list = list(cookies)
    if cookie_list:
        headers["Set-Cookie"] = cookie_list
    return Response(body=html, status_code=status, headers=headers)


def _redirect(path: str, cookies: Iterable[str] = ()) -> Response:
    headers: Headers = {"Location": _base() + path, "Cache-Control": "no-store"}
    cookie_list = list(cookies)
    if cookie_list:
        headers["Set-Cookie"] = cookie_list
    return Response(body="", status_code=303, headers=headers)


def page_endpoint(fn: Callable[..., Response]) -> Callable[..., Response]:
    """Errors nobody handled closer become a small HTML page, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return fn(*args, **kwargs)
        except TesseraError as err:
            body = (f'<main><h1>{escape(err.title)}</h1><p class="error">{escape(err.description)}</p>'
                    f'<p><a href="{_base()}/tokens">Back to your tokens</a></p></main>')
            return _page(body, status=err.status, title=err.title)

    return wrapper


def _web() -> WebSession | None:
    return container().web_signin.current(_cookies().get(SESSION_COOKIE))


def _signed_in_post() -> tuple[WebSession, dict[str, list[str]]] | None:
    """The signed-in user and the form of a POST whose CSRF token checks out."""
    web = _web()
    if web is None:
        return None
    form = _form()
    check_csrf(web.csrf, _one(form, "csrf"))
    return web, form


def _confirm(c: Container, web: WebSession, form: Mapping[str, list[str]]) -> None:
    c.confirmation.require(web.user, password=_one(form, "password") or None,
                           signed_in_at=web.session.created_at,
                           source=source_ip(bp.current_request))


def _origin() -> dict[str, str]:
    request = bp.current_request
    return {"client_id": "web", "ip": source_ip(request),
            "user_agent": header(request, "user-agent") or ""}


def _settings_body(form: Mapping[str, list[str]]) -> dict[str, Any]:
    body: dict[str, Any] = {"description": _one(form, "description"),
                            "expires_at": _one(form, "expires_at") or None}
    api_set = _one(form, "api_set")
    if api_set:
        body["api_set"] = api_set
    else:
        body["scopes"] = form.get("scopes") or []
    return body


# --------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------

def _when(epoch: int | None, never: str = "never") -> str:
    if epoch is None:
        return never
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _header(web: WebSession) -> str:
    base = _base()
    return (f'<header><h1>Personal access tokens</h1><div>Signed in as '
            f'<strong>{escape(web.user.username)}</strong> '
            f'<form method="post" action="{base}/tokens/signout">'
            f'<input type="hidden" name="csrf" value="{web.csrf}">'
            f'<button class="small" type="submit">Sign out</button></form></div></header>')


def _password_field(web: WebSession, c: Container) -> str:
    recent = c.clock.now() - web.session.created_at < c.settings.recent_signin_seconds
    hint = ("You signed in a moment ago, so you may leave it empty for a few minutes."
            if recent else "Required to confirm changes.")
    return ('<label for="password">Your password (to confirm Regenerate, Copy, Remove or Save)</label>'
            '<input type="password" id="password" name="password" autocomplete="current-password">'
            f'<p class="hint">{hint}</p>')


def _scope_fields(c: Container, *, api_set: str | None, scopes: Iterable[str]) -> str:
    chosen = set(scopes)
    options = ['<option value="">Custom scopes (below)</option>']
    for name, members in sorted(c.settings.api_sets.items()):
        selected = " selected" if name == api_set else ""
        options.append(f'<option value="{escape(name)}"{selected}>{escape(name)}: '
                       f'{escape(", ".join(members))}</option>')
    boxes = "".join(
        f'<label class="inline"><input type="checkbox" name="scopes" value="{escape(s)}"'
        f'{" checked" if s in chosen and not api_set else ""}> {escape(s)}</label>'
        for s in c.settings.scopes)
    return (f'<label for="api_set">API set</label><select id="api_set" name="api_set">'
            f'{"".join(options)}</select>'
            f'<fieldset id="custom-scopes"><legend>Custom scopes</legend>{boxes}</fieldset>')


def _expiry_field(c: Container, value: str | None) -> str:
    s, now = c.settings, c.clock.now()
    first = (pats.today(now) + dt.timedelta(days=1)).isoformat()
    last = ""
    hint = "Empty: the token never expires." if s.pat_allow_no_expiry else "Required."
    if s.pat_max_lifetime_days > 0:
        last = (pats.today(now) + dt.timedelta(days=s.pat_max_lifetime_days)).isoformat()
        hint += f" At most {s.pat_max_lifetime_days} days ahead."
    required = "" if s.pat_allow_no_expiry else " required"
    max_attr = f' max="{last}"' if last else ""
    return (f'<label for="expires_at">Expires on</label>'
            f'<input type="date" id="expires_at" name="expires_at" value="{escape(value or "")}" '
            f'min="{first}"{max_attr}{required}>'
            f'<p class="hint">The token stops working at 00:00 UTC on that day. {hint}</p>')


def _row(p: Pat, now: int, base: str) -> str:
    state = p.state(now)
    scopes = escape(p.api_set) + " (API set)" if p.api_set else escape(" ".join(p.scopes))
    pid = escape(p.id)
    return (f'<tr><td><input type="checkbox" name="ids" value="{pid}" '
            f'aria-label="Select {escape(p.description)}"></td>'
            f'<td data-label="Description">{escape(p.description)}</td>'
            f'<td data-label="Token"><code>{escape(PAT_HINT + p.last_four)}</code></td>'
            f'<td data-label="Scopes">{scopes}</td>'
            f'<td data-label="Created">{_when(p.created_at)}</td>'
            f'<td data-label="Expires" class="nowrap">{escape(p.expires_on or "never")}</td>'
            f'<td data-label="Last used">{_when(p.last_used_at)}</td>'
            f'<td data-label="State"><span class="state state-{state}">{state}</span></td>'
            f'<td class="actions"><a class="button small" href="{base}/tokens/{pid}/edit">Edit</a> '
            f'<button class="small" type="submit" formaction="{base}/tokens/{pid}/regenerate">'
            f'Regenerate</button> '
            f'<button class="small" type="submit" formaction="{base}/tokens/{pid}/copy">Copy</button>'
            f'</td></tr>')


PAT_HINT = "tsp_…"


def _dashboard(c: Container, web: WebSession, *, error: str = "", notice: str = "",
               state: str = "", form: Mapping[str, list[str]] | None = None,
               status: int = 200) -> Response:
    base, now = _base(), c.clock.now()
    filters = {"state": state} if state in pats.STATES else {}
    rows = "".join(_row(p, now, base) for p in c.pats.find(web.user, filters))
    if not rows:
        rows = '<tr><td colspan="9">No tokens here yet.</td></tr>'
    form = form or {}
    description = escape(_one(form, "description")) if form else ""
    expiry = _one(form, "expires_at") if form else pats.default_expiry(now, c.settings)
    links = " ".join(
        f'<a href="{base}/tokens{"?" + urlencode({"state": s}) if s else ""}">'
        f'{escape(s or "all")}</a>' for s in ("", *pats.STATES))
    messages = (f'<p class="error" role="alert">{escape(error)}</p>' if error else "") + \
        (f'<p class="notice" role="status">{escape(notice)}</p>' if notice else "")
    body = (
        f'{_header(web)}<main>{messages}'
        f'<h2>Generate a new token</h2>'
        f'<form method="post" action="{base}/tokens/generate" id="generate-form">'
        f'<input type="hidden" name="csrf" value="{web.csrf}"><div class="grid"><div>'
        f'<label for="description">Description</label>'
        f'<input type="text" id="description" name="description" maxlength="{pats.MAX_DESCRIPTION}"'
        f' value="{description}" required placeholder="What is this token for?">'
        f'{_expiry_field(c, expiry)}</div><div>'
        f'{_scope_fields(c, api_set=_one(form, "api_set") or None, scopes=form.get("scopes") or [])}'
        f'</div></div>'
        f'<label for="gen-password">Your password</label>'
        f'<input type="password" id="gen-password" name="password" autocomplete="current-password">'
        f'<p class="hint">Needed unless you signed in less than '
        f'{c.settings.recent_signin_seconds // 60} minutes ago.</p>'
        f'<button class="primary" type="submit">Generate token</button></form>'
        f'<h2>Your tokens</h2>'
        f'<form method="post" action="{base}/tokens/remove" id="manage-form">'
        f'<input type="hidden" name="csrf" value="{web.csrf}">'
        f'<div class="toolbar"><span class="filters">Show: {links}</span>'
        f'<a class="button small" href="{base}/tokens{"?state=" + state if filters else ""}">'
        f'Refresh</a></div>'
        f'<table><thead><tr><th><input type="checkbox" id="select-all" hidden '
        f'aria-label="Select all"></th><th>Description</th><th>Token</th><th>Scopes</th>'
        f'<th>Created</th><th>Expires</th><th>Last used</th><th>State</th><th>Actions</th></tr>'
        f'</thead><tbody>{rows}</tbody></table>'
        f'{_password_field(web, c)}'
        f'<div class="toolbar"><button class="danger" type="submit">Remove selected</button></div>'
        f'</form></main>')
    return _page(body, status=status)


def _secret_page(c: Container, web: WebSession, issued: pats.Issued, what: str) -> Response:
    base = _base()
    body = (f'{_header(web)}<main><section class="secret" aria-live="polite">'
            f'<h2>{escape(what)}: {escape(issued.pat.description)}</h2>'
            f'<p><strong>Copy your token now. You will not see it again.</strong></p>'
            f'<div class="secret-row"><input type="text" id="secret-token" readonly '
            f'value="{escape(issued.token)}" aria-label="Your new token">'
            f'<button type="button" id="copy-button" hidden>Copy</button></div>'
            f'<p class="hint">Expires: {escape(issued.pat.expires_on or "never")} · Scopes: '
            f'{escape(" ".join(issued.pat.scopes))}</p></section>'
            f'<p><a class="button" href="{base}/tokens">Back to your tokens</a></p></main>')
    return _page(body, status=201 if what != "Regenerated" else 200, title="New token")


def _signin_page(*, error: str = "", status: int = 200, csrf: str | None = None) -> Response:
    token = csrf or _cookies().get(CSRF_COOKIE) or new_csrf()
    base = _base()
    messages = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    body = (f'<main class="signin"><h1>Sign in to manage your tokens</h1>{messages}'
            f'<form method="post" action="{base}/tokens/signin">'
            f'<input type="hidden" name="csrf" value="{escape(token)}">'
            f'<label for="username">Username</label>'
            f'<input type="text" id="username" name="username" autocomplete="username" required>'
            f'<label for="password">Password</label>'
            f'<input type="password" id="password" name="password" autocomplete="current-password"'
            f' required><p><button class="primary" type="submit">Sign in</button></p></form></main>')
    return _page(body, status=status, cookies=[_cookie(CSRF_COOKIE, token, 3600)], title="Sign in")


# --------------------------------------------------------------------------
# routes
# --------------------------------------------------------------------------

@bp.route("/tokens/assets/{name}", methods=["GET"], content_types=ANY)
@page_endpoint
def asset(name: str) -> Response:
    if name not in ASSET_TYPES:
        raise NotFound("No such file")
    text = (ASSETS / name).read_text(encoding="utf-8")
    return Response(body=text, status_code=200, headers={
        "Content-Type": ASSET_TYPES[name], "Cache-Control": "public, max-age=300",
        "X-Content-Type-Options": "nosniff"})


@bp.route("/tokens", methods=["GET"], content_types=ANY)
@page_endpoint
def dashboard() -> Response:
    web = _web()
    if web is None:
        return _signin_page()
    params: Mapping[str, str] = bp.current_request.query_params or {}
    state = str(params.get("state", ""))
    return _dashboard(container(), web, state=state)


@bp.route("/tokens/signin", methods=["POST"], content_types=ANY)
@page_endpoint
def signin() -> Response:
    form = _form()
    check_csrf(_cookies().get(CSRF_COOKIE), _one(form, "csrf"))
    c, request = container(), bp.current_request
    try:
        web = c.web_signin.sign_in(_one(form, "username"), _one(form, "password"),
                                   source_ip(request), header(request, "user-agent") or "")
    except InvalidGrant as err:
        # Bad credentials, however they are bad, get one answer (SPEC §8).
        return _signin_page(error=err.description, status=403, csrf=_one(form, "csrf"))
    except TesseraError as err:
        return _signin_page(error=err.description, status=err.status, csrf=_one(form, "csrf"))
    return _redirect("/tokens", [_cookie(SESSION_COOKIE, web.cookie, c.settings.session_max_seconds),
                                 _cookie(CSRF_COOKIE, "", 0)])


@bp.route("/tokens/signout", methods=["POST"], content_types=ANY)
@page_endpoint
def signout() -> Response:
    signed = _signed_in_post()
    if signed is not None:
        container().web_signin.sign_out(signed[0])
    return _redirect("/tokens", [_cookie(SESSION_COOKIE, "", 0)])


def _action(run: Callable[[Container, WebSession, dict[str, list[str]]], Response],
            pat_id: str | None = None) -> Response:
    """A dashboard change: signed in, CSRF checked, confirmed; errors re-render the page."""
    signed = _signed_in_post()
    if signed is None:
        return _redirect("/tokens")
    web, form = signed
    c = container()
    try:
        _confirm(c, web, form)
        return run(c, web, form)
    except TesseraError as err:
        keep = form if pat_id is None else None
        return _dashboard(c, web, error=err.description, form=keep, status=err.status)


@bp.route("/tokens/generate", methods=["POST"], content_types=ANY)
@page_endpoint
def generate() -> Response:
    def run(c: Container, web: WebSession, form: dict[str, list[str]]) -> Response:
        issued = c.pats.generate(web.user, _settings_body(form), _origin())
        return _secret_page(c, web, issued, "New token")
    return _action(run)


@bp.route("/tokens/remove", methods=["POST"], content_types=ANY)
@page_endpoint
def remove() -> Response:
    def run(c: Container, web: WebSession, form: dict[str, list[str]]) -> Response:
        ids = form.get("ids") or []
        if not ids:
            raise BadRequest("Select the tokens to remove first")
        removed, _ = c.pats.remove_many(web.user, ids)
        return _dashboard(c, web, notice=f"Removed {len(removed)} token(s).")
    return _action(run, pat_id="-")


@bp.route("/tokens/{pat_id}/regenerate", methods=["POST"], content_types=ANY)
@page_endpoint
def regenerate(pat_id: str) -> Response:
    def run(c: Container, web: WebSession, form: dict[str, list[str]]) -> Response:
        return _secret_page(c, web, c.pats.regenerate(web.user, pat_id), "Regenerated")
    return _action(run, pat_id)


@bp.route("/tokens/{pat_id}/copy", methods=["POST"], content_types=ANY)
@page_endpoint
def copy(pat_id: str) -> Response:
    def run(c: Container, web: WebSession, form: dict[str, list[str]]) -> Response:
        return _secret_page(c, web, c.pats.copy(web.user, pat_id, {}, _origin()), "Copied token")
    return _action(run, pat_id)


def _edit_page(c: Container, web: WebSession, pat: Pat, *, error: str = "",
               status: int = 200) -> Response:
    base = _base()
    messages = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    body = (f'{_header(web)}<main>{messages}<h2>Edit token</h2>'
            f'<form method="post" action="{base}/tokens/{escape(pat.id)}/edit">'
            f'<input type="hidden" name="csrf" value="{web.csrf}">'
            f'<label for="description">Description</label>'
            f'<input type="text" id="description" name="description" required '
            f'maxlength="{pats.MAX_DESCRIPTION}" value="{escape(pat.description)}">'
            f'{_expiry_field(c, pat.expires_on)}'
            f'{_scope_fields(c, api_set=pat.api_set, scopes=pat.scopes)}'
            f'{_password_field(web, c)}'
            f'<div class="toolbar"><button class="primary" type="submit">Save</button>'
            f'<a class="button" href="{base}/tokens">Cancel</a></div></form></main>')
    return _page(body, status=status, title="Edit token")


@bp.route("/tokens/{pat_id}/edit", methods=["GET"], content_types=ANY)
@page_endpoint
def edit_form(pat_id: str) -> Response:
    web = _web()
    if web is None:
        return _redirect("/tokens")
    c = container()
    return _edit_page(c, web, c.pats.get(web.user, pat_id))


@bp.route("/tokens/{pat_id}/edit", methods=["POST"], content_types=ANY)
@page_endpoint
def edit(pat_id: str) -> Response:
    signed = _signed_in_post()
    if signed is None:
        return _redirect("/tokens")
    web, form = signed
    c = container()
    pat = c.pats.get(web.user, pat_id)
    try:
        _confirm(c, web, form)
        c.pats.edit(web.user, pat_id, _settings_body(form))
    except TesseraError as err:
        return _edit_page(c, web, pat, error=err.description, status=err.status)
    return _redirect("/tokens")
