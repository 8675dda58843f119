"""What every web page shares: the layout, the security headers, cookies and errors.

Pages never answer with JSON: an error is an HTML page with the right status.
No JavaScript anywhere; the Content-Security-Policy forbids scripts outright and
allows only this response's own ``<style>`` element (by nonce).
"""

from __future__ import annotations

import functools
import html
import secrets
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from chalice.app import Request, Response

from chalicelib.errors import StorageUnavailable, TesseraError
from chalicelib.http import RETRY_AFTER_SECONDS, _log_error, header

F = TypeVar("F", bound=Callable[..., Any])

STYLE = """
*{box-sizing:border-box}
html{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
font-size:100%;line-height:1.5;color:#1b1f24;background:#f3f4f6}
body{margin:0;padding:1rem}
main{max-width:34rem;margin:2rem auto;background:#fff;border:1px solid #d0d7de;border-radius:.5rem;
padding:1.5rem 1.5rem 2rem}
h1{font-size:1.5rem;line-height:1.25;margin:0 0 1rem}
p{margin:0 0 1rem}
label{display:block;font-weight:600;margin:1rem 0 .25rem}
input{display:block;width:100%;font:inherit;font-size:1rem;padding:.6rem .75rem;border:1px solid #8c959f;
border-radius:.375rem;background:#fff;color:inherit}
input.code,.code{font-family:ui-monospace,"SFMono-Regular","DejaVu Sans Mono",Menlo,Consolas,monospace;
letter-spacing:.12em;font-size:1.5rem;text-transform:uppercase}
.code{font-weight:700;white-space:nowrap}
fieldset{border:1px solid #d0d7de;border-radius:.375rem;margin:1.25rem 0 0;padding:.25rem 1rem 1rem}
legend{font-weight:600;padding:0 .25rem}
.hint{color:#57606a;font-size:.9rem;margin:.25rem 0 0}
.actions{display:flex;flex-wrap:wrap;gap:.75rem;margin-top:1.5rem}
button{font:inherit;font-weight:600;font-size:1rem;padding:.65rem 1.5rem;border-radius:.375rem;
border:1px solid #1f6feb;background:#1f6feb;color:#fff;cursor:pointer;min-width:8rem}
button.secondary{background:#fff;color:#b42318;border-color:#b42318}
:focus-visible{outline:3px solid #fb8f44;outline-offset:2px}
.error{border-left:4px solid #b42318;background:#fff1f0;padding:.75rem 1rem;margin:0 0 1rem}
.notice{border-left:4px solid #1f6feb;background:#eef4ff;padding:.75rem 1rem;margin:0 0 1rem}
.ok{border-left:4px solid #1a7f37;background:#effaf1;padding:.75rem 1rem;margin:0 0 1rem}
dl{margin:1rem 0;display:grid;grid-template-columns:minmax(7rem,auto) 1fr;gap:.5rem 1rem}
dt{font-weight:600;color:#57606a}
dd{margin:0;overflow-wrap:anywhere}
ul{margin:0;padding-left:1.25rem}
.who{color:#57606a;font-size:.9rem;margin-top:1.5rem}
@media (max-width:30rem){main{margin:0;padding:1.25rem 1rem 1.5rem}
dl{grid-template-columns:1fr;gap:.125rem}dd{margin-bottom:.5rem}}
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def document(title: str, main: str, nonce: str) -> str:
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)} · Tessera</title>"
        f"<style nonce=\"{nonce}\">{STYLE}</style></head>"
        f"<body><main>{main}</main></body></html>\n"
    )


def security_headers(nonce: str) -> dict[str, str]:
    return {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'nonce-{nonce}'; img-src 'none'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
    }


def page_response(title: str, main: str, status: int = 200, *, cookies: Iterable[str] = (),
                  headers: dict[str, str] | None = None) -> Response:
    nonce = secrets.token_urlsafe(16)
    out: dict[str, str | list[str]] = {**security_headers(nonce), **(headers or {})}
    set_cookies = list(cookies)
    if set_cookies:
        out["Set-Cookie"] = set_cookies
    return Response(body=document(title, main, nonce), status_code=status, headers=out)


def message_page(title: str, text: str, status: int, *, headers: dict[str, str] | None = None,
                 cookies: Iterable[str] = ()) -> Response:
    box = "error" if status >= 400 else "ok"
    main = f"<h1>{esc(title)}</h1><p class=\"{box}\" role=\"status\">{esc(text)}</p>"
    return page_response(title, main, status, headers=headers, cookies=cookies)


def render_page_error(err: TesseraError, path: str = "") -> Response:
    _log_error(err, path)
    if isinstance(err, StorageUnavailable):
        return message_page("Try again shortly", "The service is temporarily unavailable.", 503,
                            headers={"Retry-After": RETRY_AFTER_SECONDS})
    return message_page(err.title, err.description, err.status, headers=err.headers)


def page_endpoint(fn: F) -> F:
    """Route decorator: errors as HTML pages, never JSON."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TesseraError as err:
            return render_page_error(err, fn.__name__)

    return wrapper  # type: ignore[return-value]


# --------------------------------------------------------------------------
# cookies
# --------------------------------------------------------------------------

def parse_cookies(request: Request) -> dict[str, str]:
    """Cookie header pairs; the first of a repeated name wins (RFC 6265 §5.4 order)."""
    out: dict[str, str] = {}
    for part in (header(request, "cookie") or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in out:
            out[name] = value.strip().strip('"')
    return out


def cookies_must_be_secure(issuer: str) -> bool:
    """``Secure`` everywhere except plain HTTP on a loopback address (local runs)."""
    parts = urlsplit(issuer)
    return not (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"))


def set_cookie(name: str, value: str, *, secure: bool, max_age: int | None = None) -> str:
    attrs = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        attrs.append(f"Max-Age={max_age}")
    if secure:
        attrs.append("Secure")
    return "; ".join(attrs)
