"""The pages of the authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2) and of
RP-initiated logout (OIDC RP-Initiated Logout 1.0 §2, §3).

``/oauth/authorize`` answers a validated request with a redirect to the app (a
code, or an error) or a page: sign in (the same sign-in, cookie and lockout as
every page), then consent (the app by name, each scope in words, Approve or
Deny). A remembered consent that covers the request skips the consent page if
the client remembers consent (``Client.remembers_consent``, RFC 6749 §10.2).
Every form posts the authorization request's parameters back as hidden fields,
with the page's CSRF token and the ``action`` (signin, approve, deny); a POST
without ``action`` is an authorization request sent by POST (OIDC Core §3.1.2.1).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from chalice.app import Response

from chalicelib.audit import log
from chalicelib.clock import Clock
from chalicelib.errors import BadRequest, InvalidGrant, OAuthError, TooManyRequests
from chalicelib.services.authorization import (
    ACTIONS,
    Authorization,
    AuthorizationRequest,
    Next,
    Redirected,
    origin,
)
from chalicelib.services.logout import LogoutRequest, RpLogout
from chalicelib.services.security_log import Where
from chalicelib.web import second_factor_page
from chalicelib.web.browser import Visit
from chalicelib.web.page import Layout, redirect

AUTHORIZE = "/oauth/authorize"
LOGOUT = "/oauth/logout"
PAGE_FIELDS = frozenset({"csrf", "action", "username", "password"})
# Satisfied once the consent page shows: its form does not carry them on, so an
# Approve is never sent back to sign in (prompt=login, max_age=0) again.
SATISFIED = frozenset({"prompt", "max_age", "login_hint"})


def after_signin(params: Mapping[str, str]) -> dict[str, str]:
    """The request to come back to after a sign-in's second step: what asked for a new
    sign-in (``prompt=login``, ``max_age``) is satisfied by it, so it is not asked
    again (``prompt=consent`` and every other parameter stay)."""
    kept = {k: v for k, v in params.items() if k not in PAGE_FIELDS and k != "max_age"}
    prompts = [p for p in kept.get("prompt", "").split() if p != "login"]
    if prompts:
        kept["prompt"] = " ".join(prompts)
    else:
        kept.pop("prompt", None)
    return kept


def hidden_fields(params: dict[str, str] | Mapping[str, str],
                  drop: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """The request's parameters a page's form carries on, as (name, value) pairs."""
    return [(k, v) for k, v in sorted(params.items()) if k not in drop and k not in PAGE_FIELDS]


@dataclass(frozen=True)
class AuthorizePage:
    """``GET`` and ``POST /oauth/authorize``, given the authorization service and a clock."""

    authorization: Authorization
    clock: Clock

    def get(self, visit: Visit) -> Response:
        return self._serve(visit, dict(visit.request.query), "")

    def post(self, visit: Visit) -> Response:
        form = visit.request.form
        params = {name: form.one(name) for name in form.fields if name not in PAGE_FIELDS}
        action = form.one("action")
        if action not in ACTIONS:
            raise BadRequest("Unknown action")
        return self._serve(visit, params, action)

    def _serve(self, visit: Visit, params: dict[str, str], action: str) -> Response:
        try:
            request = self.authorization.parse(params)
        except Redirected as refused:
            return self._refused(visit, refused.request, refused.error)
        if action:
            visit.check_csrf()
        if action == "signin":
            failed = self._sign_in(visit, request)
            if failed is not None:
                return failed
        web = visit.web
        outcome = self.authorization.decide(request, action, web.user if web else None,
                                            web.session if web else None, visit.request.issuer)
        if outcome.next is Next.SIGN_IN:
            return self.signin_page(visit, request)
        if outcome.next is Next.ENROL:
            return visit.redirect(second_factor_page.ENROL + "?" + urlencode(
                {"next": AUTHORIZE + "?" + urlencode(after_signin(request.params)),
                 "why": "app"}))
        if outcome.next is Next.CONSENT:
            return self.consent_page(visit, request, outcome.granted)
        if outcome.next is Next.REDIRECT:
            return redirect(outcome.location, visit.cookies)
        assert outcome.error is not None
        return self._refused(visit, request, outcome.error)

    def _sign_in(self, visit: Visit, request: AuthorizationRequest) -> Response | None:
        """The sign-in the page posted; its page again (with why) if it failed."""
        form = visit.request.form
        if visit.web is not None:
            # prompt=login or max_age: the new sign-in replaces the older one, which ends.
            visit.sign_out()
        try:
            visit.sign_in(form.one("username"), form.one("password"))
        except InvalidGrant as failed:
            # Bad credentials, however they are bad, get one answer (SPEC §8).
            return self.signin_page(visit, request, error=failed.description, status=403)
        except TooManyRequests as failed:
            return self.signin_page(visit, request, error=failed.description, status=429)
        return None

    @staticmethod
    def _refused(visit: Visit, request: AuthorizationRequest, error: OAuthError) -> Response:
        log.info(json.dumps({"event": "authorization_refused",
                             "client_id": request.client.client_id,
                             "error": error.error, "detail": error.detail}))
        return redirect(request.error_response(visit.request.issuer, error), visit.cookies)

    # -- views -------------------------------------------------------------------------

    @staticmethod
    def _layout(title: str, request: AuthorizationRequest) -> Layout:
        return Layout(title, form_origins=(origin(request.redirect_uri),))

    def signin_page(self, visit: Visit, request: AuthorizationRequest, *, error: str = "",
                    status: int = 200) -> Response:
        if visit.pending is not None:
            return second_factor_page.prompt(visit, AUTHORIZE + "?" + urlencode(
                after_signin(request.params)))
        hint = request.login_hint if visit.web is None else visit.web.user.username
        layout = replace(self._layout("Sign in", request), passkeys=True)
        return visit.page(layout, "authorize_signin.html", status,
                          passkey_next=AUTHORIZE + "?" + urlencode(after_signin(request.params)),
                          app=request.client.name or request.client.client_id, error=error,
                          hint=hint, fields=hidden_fields(request.params),
                          returns_to=origin(request.redirect_uri))

    def consent_page(self, visit: Visit, request: AuthorizationRequest,
                     granted: tuple[str, ...]) -> Response:
        return visit.page(self._layout("Allow access", request), "authorize_consent.html",
                          app=request.client.name or request.client.client_id, scopes=granted,
                          fields=hidden_fields(request.params, SATISFIED),
                          returns_to=origin(request.redirect_uri))


@dataclass(frozen=True)
class LogoutPage:
    """``GET`` and ``POST /oauth/logout`` (OIDC RP-Initiated Logout 1.0)."""

    logout: RpLogout

    def get(self, visit: Visit) -> Response:
        return self._serve(visit, dict(visit.request.query), confirmed=False)

    def post(self, visit: Visit) -> Response:
        form = visit.request.form
        params = {name: form.one(name) for name in form.fields if name not in PAGE_FIELDS}
        confirmed = form.one("action") == "signout"
        if confirmed:
            visit.check_csrf()
        return self._serve(visit, params, confirmed=confirmed)

    def _serve(self, visit: Visit, params: dict[str, str], *, confirmed: bool) -> Response:
        request = self.logout.parse(params, visit.request.issuer)
        web = visit.web
        # §2: a hint of this browser's sign-in vouches for the request; without one,
        # or with one of another sign-in (another browser, user, or an ended
        # session), the person confirms: a cross-site GET must not sign anyone out.
        if web is not None and not confirmed and not self.logout.of_this_sign_in(
                request, web.session.id, web.user.id):
            return self.confirm_page(visit, request, params)
        if web is not None:
            visit.sign_out()
        self.logout.end(request, Where(visit.request.source_ip, visit.request.user_agent[:256]))
        if request.redirect_uri:
            return redirect(request.response(), visit.cookies)
        return visit.page("Signed out", "signed_out.html")

    @staticmethod
    def confirm_page(visit: Visit, request: LogoutRequest, params: dict[str, str]) -> Response:
        layout = Layout("Sign out", form_origins=(origin(request.redirect_uri),)
                        if request.redirect_uri else ())
        app = (request.client.name or request.client.client_id) if request.client else ""
        return visit.page(layout, "logout_confirm.html", app=app,
                          who=visit.web.user.username if visit.web else "",
                          fields=hidden_fields(params))
