"""The one layout of every web page (SPEC §7), its security headers and its errors.

Every page is the same document: a bar naming the product and who is signed in
(with a Sign out button), then ``<main>`` (narrow for a form, wide for a table).
The one stylesheet (``static/site.css``) is inlined in a ``<style>`` element
that carries this response's nonce; the optional script (``static/site.js``)
likewise, and only on pages that ask for it. The Content-Security-Policy allows
nothing else: no other style, no other script, no framing (also
``X-Frame-Options: DENY``), forms posting only to this origin.

Pages never answer with JSON: an error is an HTML page with the right status.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from chalice.app import Response

from chalicelib.errors import StorageUnavailable, TesseraError
from chalicelib.http import RETRY_AFTER_SECONDS, Headers, _log_error

F = TypeVar("F", bound=Callable[..., Any])

STATIC = Path(__file__).resolve().parent / "static"


@functools.cache
def _static(name: str) -> str:
    """A file of ``static/``, read on first use (never at import) and kept."""
    return (STATIC / name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Account:
    """Who the bar names as signed in, and what its Sign out form posts."""

    username: str
    signout_action: str
    csrf: str


@dataclass(frozen=True)
class Layout:
    """How a page is framed: narrow (a form) or wide (a table); script or not."""

    title: str
    wide: bool = False
    script: bool = False
    # Origins a form of the page may end up at besides this one: CSP form-action
    # also governs the redirect that answers a POST (the authorization response
    # to an app's redirect URI, RP-initiated logout's return).
    form_origins: tuple[str, ...] = ()
    # The passkey script (``static/passkeys.js``, with the script): it fetches
    # WebAuthn options from this origin (CSP ``connect-src 'self'``).
    passkeys: bool = False

    @property
    def scripted(self) -> bool:
        return self.script or self.passkeys


def document(layout: Layout, template: str, nonce: str, account: Account | None = None, /,
             **context: Any) -> str:
    """A page's HTML: ``template`` (which extends ``base.html``) with its values."""
    from chalicelib.web.render import render, trusted

    js = trusted(_static("site.js") + (_static("passkeys.js") if layout.passkeys else "")) \
        if layout.scripted else ""
    return render(template, layout=layout, nonce=nonce, account=account,
                  css=trusted(_static("site.css")), js=js, **context)


def security_headers(nonce: str, *, script: bool = False,
                     form_origins: tuple[str, ...] = (), connect: bool = False) -> dict[str, str]:
    """The headers of every page: a nonce-only CSP (no script at all unless the page has one)."""
    scripts = f"script-src 'nonce-{nonce}'; " if script else ""
    if connect:
        scripts += "connect-src 'self'; "
    forms = " ".join(("'self'", *form_origins))
    return {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": (
            f"default-src 'none'; {scripts}style-src 'nonce-{nonce}'; img-src 'none'; "
            f"form-action {forms}; frame-ancestors 'none'; base-uri 'none'"),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
    }


def page_response(layout: Layout | str, template: str, status: int = 200, /, *,
                  account: Account | None = None, cookies: Iterable[str] = (),
                  headers: dict[str, str] | None = None, **context: Any) -> Response:
    """``template`` rendered in the layout, with the security headers of every page."""
    layout = Layout(layout) if isinstance(layout, str) else layout
    nonce = secrets.token_urlsafe(16)
    out: Headers = {**security_headers(nonce, script=layout.scripted,
                                       form_origins=layout.form_origins,
                                       connect=layout.passkeys), **(headers or {})}
    set_cookies = list(cookies)
    if set_cookies:
        out["Set-Cookie"] = set_cookies
    body = document(layout, template, nonce, account, status=status, **context)
    return Response(body=body, status_code=status, headers=out)


def message_page(title: str, text: str, status: int, *, headers: dict[str, str] | None = None,
                 cookies: Iterable[str] = ()) -> Response:
    """A page that only says something (errors outside any visit: 405s, bad requests)."""
    return page_response(title, "message.html", status, headers=headers, cookies=cookies,
                         text=text, link=None)


def error_message(err: TesseraError, path: str = "") -> tuple[str, str, int, dict[str, str]]:
    """Title, text, status and headers of the page an error becomes (logged here, once)."""
    _log_error(err, path)
    if isinstance(err, StorageUnavailable):
        return ("Try again shortly", "The service is temporarily unavailable.", 503,
                {"Retry-After": RETRY_AFTER_SECONDS})
    return err.title, err.description, err.status, dict(err.headers or {})


def render_page_error(err: TesseraError, path: str = "") -> Response:
    title, text, status, headers = error_message(err, path)
    return message_page(title, text, status, headers=headers)


def page_endpoint(fn: F) -> F:
    """Route decorator: errors as HTML pages, never JSON."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TesseraError as err:
            return render_page_error(err, fn.__name__)

    return wrapper  # type: ignore[return-value]


def redirect(location: str, cookies: Iterable[str] = ()) -> Response:
    """RFC 9110 §15.4.4: 303 See Other, so the browser follows a POST with a GET."""
    out: Headers = {"Location": location, "Cache-Control": "no-store"}
    set_cookies = list(cookies)
    if set_cookies:
        out["Set-Cookie"] = set_cookies
    return Response(body="", status_code=303, headers=out)
