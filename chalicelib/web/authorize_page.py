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
from dataclasses import dataclass

from chalice.app import Response

from chalicelib.audit import log
from chalicelib.clock import Clock
from chalicelib.errors import (
    AccessDenied,
    BadRequest,
    ConsentRequired,
    InvalidGrant,
    LoginRequired,
    OAuthError,
    TooManyRequests,
)
from chalicelib.services.authorization import (
    Authorization,
    AuthorizationRequest,
    Redirected,
    origin,
)
from chalicelib.services.logout import LogoutRequest, RpLogout
from chalicelib.services.web_signin import WebSession
from chalicelib.web.browser import Visit
from chalicelib.web.page import Layout, esc, redirect
from chalicelib.web.scope_words import scope_items

AUTHORIZE = "/oauth/authorize"
LOGOUT = "/oauth/logout"
PAGE_FIELDS = frozenset({"csrf", "action", "username", "password"})
ACTIONS = ("", "signin", "approve", "deny")
# Satisfied once the consent page shows: its form does not carry them on, so an
# Approve is never sent back to sign in (prompt=login, max_age=0) again.
SATISFIED = frozenset({"prompt", "max_age", "login_hint"})


def hidden_fields(params: dict[str, str], drop: frozenset[str] = frozenset()) -> str:
    return "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">'
                   for k, v in sorted(params.items()) if k not in drop and k not in PAGE_FIELDS)


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
        issuer = visit.request.issuer
        try:
            request = self.authorization.parse(params)
            try:
                return self._decide(visit, request, action)
            except OAuthError as err:
                raise Redirected(request, err) from err
        except Redirected as refused:
            log.info(json.dumps({"event": "authorization_refused",
                                 "client_id": refused.request.client.client_id,
                                 "error": refused.error.error, "detail": refused.error.detail}))
            return redirect(refused.request.error_response(issuer, refused.error), visit.cookies)

    def _decide(self, visit: Visit, request: AuthorizationRequest, action: str) -> Response:
        if action:
            visit.check_csrf()
        if action == "deny":
            raise AccessDenied("The person denied the request")
        fresh = False
        if action == "signin":
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
            fresh = True
        web = visit.web
        if web is None or (not fresh and self._reauthenticate(request, web, action)):
            if "none" in request.prompt:
                raise LoginRequired("Nobody is signed in")
            return self.signin_page(visit, request)
        user, client = web.user, request.client
        granted = tuple(s for s in request.scope if user.allows(s))
        if request.scope and not granted:
            raise AccessDenied("The account holds none of the requested scopes")
        if action == "approve":
            self.authorization.remember_consent(user, client, granted)
        else:
            remembered = self.authorization.remembered_consent(user.id, request)
            if remembered is None or not remembered.covers(granted):
                if "none" in request.prompt:
                    raise ConsentRequired("The person has not consented to this application")
                return self.consent_page(visit, request, granted)
        code = self.authorization.issue_code(request, user, granted, web.session.auth_time,
                                             web.session.id)
        return redirect(request.response(visit.request.issuer, {"code": code}), visit.cookies)

    def _reauthenticate(self, request: AuthorizationRequest, web: WebSession,
                        action: str) -> bool:
        """prompt=login on a fresh request; max_age reached (OIDC Core §3.1.2.1). After
        the sign-in this asks for, the request resumes with ``fresh`` (no loop)."""
        if "login" in request.prompt and not action:
            return True
        return request.sign_in_too_old(web.session.auth_time, self.clock.now())

    # -- views -------------------------------------------------------------------------

    @staticmethod
    def _layout(title: str, request: AuthorizationRequest) -> Layout:
        return Layout(title, form_origins=(origin(request.redirect_uri),))

    def signin_page(self, visit: Visit, request: AuthorizationRequest, *, error: str = "",
                    status: int = 200) -> Response:
        name = request.client.name or request.client.client_id
        alert = f'<p class="error" role="alert" id="form-error">{esc(error)}</p>' if error else ""
        described = ' aria-describedby="form-error"' if error else ""
        hint = request.login_hint if visit.web is None else visit.web.user.username
        main = (
            f"<h1>Sign in to continue to {esc(name)}</h1>{alert}"
            f'<form method="post" action="{esc(visit.path(AUTHORIZE))}">{visit.hidden_csrf()}'
            f"{hidden_fields(dict(request.params))}"
            '<label for="username">Username</label>'
            f'<input type="text" id="username" name="username" value="{esc(hint)}" '
            f'autocomplete="username" autocapitalize="none" spellcheck="false" required{described}'
            f'{"" if hint else " autofocus"}>'
            '<label for="password">Password</label>'
            '<input type="password" id="password" name="password" '
            f'autocomplete="current-password" required{" autofocus" if hint else ""}>'
            '<div class="actions"><button type="submit" name="action" value="signin">Sign in'
            '</button><button type="submit" name="action" value="deny" class="secondary" '
            'formnovalidate>Cancel</button></div></form>'
            f'<p class="hint">You will return to {esc(origin(request.redirect_uri))}.</p>')
        return visit.page(self._layout("Sign in", request), main, status)

    def consent_page(self, visit: Visit, request: AuthorizationRequest,
                     granted: tuple[str, ...]) -> Response:
        name = request.client.name or request.client.client_id
        main = (
            f"<h1>Allow {esc(name)} to access your account?</h1>"
            f"<p>{esc(name)} asks to:</p><ul>{scope_items(granted)}</ul>"
            f'<p class="hint">You will return to {esc(origin(request.redirect_uri))}. You can '
            f'withdraw this at any time on the <a href="{esc(visit.path("/consents"))}">connected '
            "apps</a> page.</p>"
            f'<form method="post" action="{esc(visit.path(AUTHORIZE))}">{visit.hidden_csrf()}'
            f"{hidden_fields(dict(request.params), SATISFIED)}"
            '<div class="actions">'
            '<button type="submit" name="action" value="approve">Approve</button>'
            '<button type="submit" name="action" value="deny" class="secondary">Deny</button>'
            "</div></form>")
        return visit.page(self._layout("Allow access", request), main)


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
        self.logout.end(request)
        if request.redirect_uri:
            return redirect(request.response(), visit.cookies)
        return visit.page("Signed out", '<h1>Signed out</h1><p class="ok" role="status">You are '
                          "signed out.</p><p>You can close this page.</p>")

    @staticmethod
    def confirm_page(visit: Visit, request: LogoutRequest, params: dict[str, str]) -> Response:
        app = f" of {esc(request.client.name or request.client.client_id)}" if request.client else ""
        layout = Layout("Sign out", form_origins=(origin(request.redirect_uri),)
                        if request.redirect_uri else ())
        who = f" as {esc(visit.web.user.username)}" if visit.web else ""
        main = (f"<h1>Sign out{app}?</h1><p>You are signed in to Tessera{who} in this "
                "browser.</p>"
                f'<form method="post" action="{esc(visit.path(LOGOUT))}">{visit.hidden_csrf()}'
                f"{hidden_fields(params)}"
                '<div class="actions"><button type="submit" name="action" value="signout">'
                "Sign out</button></div></form>")
        return visit.page(layout, main)
