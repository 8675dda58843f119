"""The one sign-in and CSRF helper of every page: a ``Visit`` is one request of one
browser, parsed at the edge into typed values (``PageRequest``), with who is
signed in, the CSRF token of its forms and the cookies to set.

One sign-in cookie (``tessera_web``) for every page; one CSRF scheme for every
POST: the token is HMAC(browser secret, session id), where the browser secret
lives in its own HttpOnly cookie (``tessera_csrf``) and the session id is that
of the sign-in, or ``anon`` before it. A cross-site page can read neither
cookie, so it cannot compute the token; and a token taken before a sign-in
stops working after it (the session id changed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from chalice.app import Response

from chalicelib.errors import BadRequest, Forbidden, TesseraError
from chalicelib.models import Session, User
from chalicelib.services.security_log import Where
from chalicelib.services.web_signin import (
    ANONYMOUS,
    SESSION_COOKIE,
    WebSession,
    csrf_ok,
    csrf_token,
    new_browser_secret,
)
from chalicelib.web.page import (
    Account,
    Layout,
    error_message,
    page_response,
    redirect,
)

BROWSER_COOKIE = "tessera_csrf"
SIGNOUT_PATH = "/account/signout"


class SignIn(Protocol):
    """What a page needs of the sign-in service (``services.web_signin.WebSignIn``)."""

    def current(self, cookie: str | None) -> WebSession | None: ...

    def sign_in(self, username: str, password: str, source_ip: str,
                user_agent: str) -> WebSession: ...

    def complete(self, web: WebSession, method: str,
                 ops: list[dict[str, Any]]) -> WebSession: ...

    def upgrade(self, web: WebSession, method: str,
                user: User | None = None) -> tuple[list[dict[str, Any]], WebSession]: ...

    def sign_in_with_passkey(self, user: User, method: str, ops: list[dict[str, Any]],
                             source_ip: str, user_agent: str,
                             also: Callable[[User, Session], list[dict[str, Any]]] | None = None,
                             ) -> WebSession: ...

    def sign_out(self, web: WebSession, where: Where = ...) -> None: ...


class Confirms(Protocol):
    """The confirmation rule of lasting changes (``services.confirmation``)."""

    def require(self, user: User, *, password: object, signed_in_at: int | None,
                source: str, mfa: bool = False, otp: object = None,
                user_agent: str = "") -> None: ...


@dataclass(frozen=True)
class Form:
    """An ``application/x-www-form-urlencoded`` body: each name with all its values."""

    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def one(self, name: str, default: str = "") -> str:
        """The field's value (``default`` when absent or empty); repeated is a 400."""
        values = self.fields.get(name, ())
        if len(values) > 1:
            raise BadRequest(f"Form field '{name}' is repeated")
        return values[0] if values and values[0] else default

    def all(self, name: str) -> list[str]:
        return list(self.fields.get(name, ()))

    def __bool__(self) -> bool:
        return bool(self.fields)


@dataclass(frozen=True)
class PageRequest:
    """What a page needs of an HTTP request, parsed once by the route."""

    issuer: str                       # the service's URL; its path prefixes every link
    cookies: Mapping[str, str]
    source_ip: str
    user_agent: str
    query: Mapping[str, str] = field(default_factory=dict)
    form: Form = field(default_factory=Form)

    @property
    def base(self) -> str:
        """Path prefix of the service (``/dev`` behind an API Gateway stage, else empty)."""
        return urlsplit(self.issuer).path.rstrip("/")

    @property
    def secure(self) -> bool:
        return cookies_must_be_secure(self.issuer)


def cookies_must_be_secure(issuer: str) -> bool:
    """``Secure`` everywhere except plain HTTP on a loopback address (local runs)."""
    parts = urlsplit(issuer)
    return not (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"))


def parse_cookies(header: str | None) -> dict[str, str]:
    """Cookie header pairs; the first of a repeated name wins (RFC 6265 §5.4 order)."""
    out: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in out:
            out[name] = value.strip().strip('"')
    return out


def set_cookie(name: str, value: str, *, secure: bool, max_age: int | None = None) -> str:
    """RFC 6265 §4.1: HttpOnly (no script reads it), SameSite=Lax (no cross-site POST sends it)."""
    attrs = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        attrs.append(f"Max-Age={max_age}")
    if secure:
        attrs.append("Secure")
    return "; ".join(attrs)


@dataclass
class Visit:
    """One request of one browser: who is signed in, its CSRF secret, cookies to set."""

    request: PageRequest
    signin: SignIn
    cookie_seconds: int               # lifetime of the sign-in cookie (the session's cap)
    browser_secret: str
    web: WebSession | None            # a finished sign-in: what pages act for
    cookies: list[str] = field(default_factory=list)
    # A sign-in that still needs its second factor, or to enrol one (SPEC §11):
    # pages show the second step (``web.second_factor_page``) instead of theirs.
    pending: WebSession | None = None

    @classmethod
    def open(cls, request: PageRequest, signin: SignIn, cookie_seconds: int) -> Visit:
        secret = request.cookies.get(BROWSER_COOKIE, "")
        web = signin.current(request.cookies.get(SESSION_COOKIE))
        visit = cls(request, signin, cookie_seconds, secret, None)
        visit._signed_in(web)
        if len(secret) != 22 or not secret.isalnum():
            visit.browser_secret = new_browser_secret()
            visit.cookies.append(set_cookie(BROWSER_COOKIE, visit.browser_secret,
                                            secure=request.secure))
        return visit

    # -- CSRF ------------------------------------------------------------------

    @property
    def session_id(self) -> str:
        signed = self.web or self.pending
        return signed.session.id if signed else ANONYMOUS

    def csrf(self) -> str:
        return csrf_token(self.browser_secret, self.session_id)

    def check_csrf(self) -> None:
        """Every POST: the form's token must be this browser's for this sign-in."""
        if not csrf_ok(self.browser_secret, self.session_id, self.request.form.one("csrf")):
            raise Forbidden("This form has expired or did not come from this site. "
                            "Go back, reload the page and try again.",
                            detail="csrf token mismatch")

    # -- sign-in -----------------------------------------------------------------

    def sign_in(self, username: str, password: str) -> WebSession:
        """Open a web session (throttled, one answer for every bad credential) and set its cookie."""
        r = self.request
        web = self.signin.sign_in(username, password, r.source_ip, r.user_agent[:256])
        self._signed_in(web)
        self._set_session_cookie(web)
        return web

    def complete(self, method: str, ops: list[dict[str, Any]]) -> WebSession:
        """The second step of the pending sign-in: ``ops`` spend the factor; the
        session records it and takes a new cookie (``WebSignIn.complete``)."""
        assert self.pending is not None
        web = self.signin.complete(self.pending, method, ops)
        self._signed_in(web)
        self._set_session_cookie(web)
        return web

    def sign_in_with_passkey(self, user: User, method: str, ops: list[dict[str, Any]],
                             also: Callable[[User, Session], list[dict[str, Any]]] | None = None,
                             ) -> WebSession:
        """A sign-in whose first factor is a passkey (``WebSignIn.sign_in_with_passkey``):
        ``ops`` spend the assertion; the new session's cookie is set."""
        r = self.request
        web = self.signin.sign_in_with_passkey(user, method, ops, r.source_ip,
                                               r.user_agent[:256], also)
        self._signed_in(web)
        self._set_session_cookie(web)
        return web

    def upgrade(self, method: str) -> tuple[list[dict[str, Any]], WebSession]:
        """The writes that record a factor enrolled during this sign-in on it
        (``WebSignIn.upgrade``), and the sign-in to ``adopt`` once they commit: a
        finished sign-in, or one that may only enrol (``mfa_policy.ENROL``)."""
        signed = self.web or self.pending
        assert signed is not None
        return self.signin.upgrade(signed, method)

    def adopt(self, web: WebSession) -> None:
        """Act for ``web`` from now on, and set its cookie."""
        self._signed_in(web)
        self._set_session_cookie(web)

    def _signed_in(self, web: WebSession | None) -> None:
        self.web = web if web is not None and web.ready else None
        self.pending = web if web is not None and not web.ready else None

    def _set_session_cookie(self, web: WebSession) -> None:
        self.cookies.append(set_cookie(SESSION_COOKIE, web.cookie, secure=self.request.secure,
                                       max_age=self.cookie_seconds))

    def sign_out(self) -> None:
        r = self.request
        for signed in (self.web, self.pending):
            if signed is not None:
                self.signin.sign_out(signed, Where(r.source_ip, r.user_agent[:256]))
        self.web = self.pending = None
        self.cookies.append(set_cookie(SESSION_COOKIE, "", secure=self.request.secure, max_age=0))

    def confirm_change(self, confirmation: Confirms, web: WebSession) -> None:
        """A lasting change of ``web``'s user (SPEC §5, §11): the form's ``password``
        (and ``otp``), or ``web``'s sign-in if recent enough (``services.confirmation``)."""
        form, r = self.request.form, self.request
        confirmation.require(web.user, password=form.one("password") or None,
                             signed_in_at=web.session.auth_time, mfa=web.session.mfa,
                             otp=form.one("otp") or None, source=r.source_ip,
                             user_agent=r.user_agent[:256])

    # -- answers -----------------------------------------------------------------

    def path(self, path: str) -> str:
        """A link or form action: the service's path prefix, then ``path``."""
        return self.request.base + path

    def account(self) -> Account | None:
        if self.web is None:
            return None
        return Account(self.web.user.username, self.path(SIGNOUT_PATH), self.csrf())

    def page(self, layout: Layout | str, template: str, status: int = 200,
             headers: dict[str, str] | None = None, /, **context: Any) -> Response:
        """``template`` with ``context``, plus what every form needs: the CSRF token
        (``csrf``) and ``path`` (links and actions under the service's prefix)."""
        return page_response(layout, template, status, account=self.account(),
                             cookies=self.cookies, headers=headers, csrf=self.csrf(),
                             path=self.path, **context)

    def message(self, title: str, text: str, status: int,
                link: tuple[str, str] | None = None) -> Response:
        """A page that only says something; ``link`` is (path, words) of a way on."""
        way_on = (self.path(link[0]), link[1]) if link else None
        return self.page(title, "message.html", status, text=text, link=way_on)

    def error_page(self, err: TesseraError, where: str,
                   link: tuple[str, str] | None = None) -> Response:
        title, text, status, headers = error_message(err, where)
        way_on = (self.path(link[0]), link[1]) if link else None
        return self.page(title, "message.html", status, headers, text=text, link=way_on)

    def redirect(self, path: str) -> Response:
        return redirect(self.path(path), self.cookies)
