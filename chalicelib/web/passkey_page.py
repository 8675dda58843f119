"""Passkeys in the browser (SPEC §11): the page side of ``services.passkeys``.

WebAuthn is a JavaScript API, so ``static/passkeys.js`` runs each ceremony: it
asks for options with ``fetch`` (a form-encoded POST carrying the page's CSRF
token; the answer is the options' JSON), calls ``navigator.credentials``, then
submits a plain form (``credential`` = the response's JSON, ``csrf``, ``next``)
whose answer is a redirect or an HTML page, like every other form. Endpoints:

* ``POST /signin/passkey/options`` → request options: for the visit's pending
  sign-in (a second factor, ``allowCredentials`` its passkeys), else a first
  factor (discoverable: none listed);
* ``POST /signin/passkey`` → the second step of the pending sign-in
  (``Visit.complete``), or a new sign-in with the passkey as its first factor
  (``Visit.sign_in_with_passkey``); then 303 to ``next`` (``safe_next``);
* ``GET /account/passkeys``: the list and the add form (``_passkeys_manage.html``,
  which the console's security page includes too);
* ``POST /account/passkeys/options`` → creation options for the signed-in user;
* ``POST /account/passkeys`` (``name``, ``credential``) and
  ``POST /account/passkeys/remove`` (``id``): add or remove one, each a change
  that needs a recent sign-in (``services.confirmation``); then 303 to ``next``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from chalice.app import Response

from chalicelib.errors import (
    BadRequest,
    ConditionFailed,
    Forbidden,
    InvalidGrant,
    Unprocessable,
)
from chalicelib.models import Passkey, Session, User
from chalicelib.services import mfa_policy
from chalicelib.services.confirmation import Confirmation
from chalicelib.services.passkeys import REFUSED, SPENT, Passkeys
from chalicelib.services.second_factors import SecondFactors
from chalicelib.services.security_log import SecurityLog, Where
from chalicelib.services.web_signin import WebSession
from chalicelib.web import console, second_factor_page
from chalicelib.web.browser import Visit
from chalicelib.web.page import Layout
from chalicelib.web.second_factor_page import safe_next

MAX_CREDENTIAL = 12_000      # characters of a response's JSON (attestation "none" is ~1 KB)
MANAGE = "/account/security"
PAGE = "/account/passkeys"


def _json(text: str) -> Response:
    return Response(body=text, status_code=200,
                    headers={"Content-Type": "application/json", "Cache-Control": "no-store"})


def _credential(visit: Visit) -> dict[str, Any]:
    raw = visit.request.form.one("credential")
    if not raw or len(raw) > MAX_CREDENTIAL:
        raise BadRequest("The passkey's answer is missing or too large")
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise BadRequest("The passkey's answer is not JSON") from exc
    if not isinstance(value, dict):
        raise BadRequest("The passkey's answer is not an object")
    return value


def _where(visit: Visit) -> Where:
    return Where(visit.request.source_ip, visit.request.user_agent[:256])


@dataclass(frozen=True)
class PasskeyPages:
    passkeys: Passkeys
    security_log: SecurityLog
    confirmation: Confirmation
    second_factors: SecondFactors | None = None

    # -- signing in ----------------------------------------------------------------------

    def signin_options(self, visit: Visit) -> Response:
        visit.check_csrf()
        user = visit.pending.user if visit.pending is not None else None
        return _json(self.passkeys.authentication_options(visit.request.issuer, user))

    def signin(self, visit: Visit) -> Response:
        visit.check_csrf()
        next_path = safe_next(visit.request.form.one("next"))
        credential = _credential(visit)
        issuer = visit.request.issuer
        if visit.pending is not None:
            try:
                asserted = self.passkeys.verify(issuer, credential, visit.pending.user)
                visit.complete(asserted.method, asserted.ops)
            except (Forbidden, Unprocessable) as refused:
                return second_factor_page.prompt(visit, next_path, error=refused.description,
                                                 status=403)
            except ConditionFailed:
                return second_factor_page.prompt(visit, next_path, error=SPENT, status=403)
            return visit.redirect(next_path)
        try:
            asserted = self.passkeys.verify(issuer, credential)
            if visit.web is not None:
                visit.sign_out()     # the new sign-in replaces the older one
            where = _where(visit)

            def logged(user: User, session: Session) -> list[dict[str, Any]]:
                return [self.security_log.op(user.id, "signin", where,
                                             {"method": asserted.method})]

            visit.sign_in_with_passkey(asserted.user, asserted.method, asserted.ops, logged)
        except ConditionFailed as lost:
            raise Forbidden(SPENT, detail="passkey sign-in lost its condition") from lost
        except InvalidGrant as refused:
            raise Forbidden(REFUSED, detail="account changed during the sign-in") from refused
        return visit.redirect(next_path)

    # -- the console: listing, adding and removing ------------------------------------------

    @staticmethod
    def show(visit: Visit) -> Response:
        """``GET /account/passkeys``: the passkeys are a part of the console's security
        page (``_passkeys_manage.html``)."""
        return visit.redirect(MANAGE)

    def _confirmed(self, visit: Visit) -> User:
        """A change: a finished sign-in (or one that may only enrol a first factor),
        confirmed as every lasting change is (``services.confirmation``)."""
        visit.check_csrf()
        web = visit.web
        if web is None and visit.pending is not None and visit.pending.needs == mfa_policy.ENROL:
            web = visit.pending
        if web is None:
            raise Forbidden("Sign in first", detail="no finished sign-in")
        visit.confirm_change(self.confirmation, web)
        return web.user

    def creation_options(self, visit: Visit) -> Response:
        user = self._confirmed(visit)
        return _json(self.passkeys.registration_options(user, visit.request.issuer))

    def add(self, visit: Visit) -> Response:
        user = self._confirmed(visit)
        next_path = safe_next(visit.request.form.one("next"), MANAGE)
        upgraded: list[WebSession] = []

        def upgrade(passkey: Passkey) -> list[dict[str, Any]]:
            ops, web = visit.upgrade(passkey.amr)
            upgraded.append(web)
            return ops

        first = not user.second_factors.enrolled
        self.passkeys.register(user, visit.request.issuer, visit.request.form.one("name"),
                               _credential(visit), _where(visit), also=upgrade)
        visit.adopt(upgraded[0])
        if first and self.second_factors is not None:
            # The first second factor comes with its recovery codes, shown once (SPEC §11).
            codes = self.second_factors.first_recovery_codes(user, _where(visit))
            return console.page(visit, "security", Layout("Recovery codes"),
                                "account_codes.html", codes=codes, next=next_path,
                                notice="Your passkey is added.")
        return visit.redirect(next_path)

    def remove(self, visit: Visit) -> Response:
        user = self._confirmed(visit)
        next_path = safe_next(visit.request.form.one("next"), MANAGE)
        passkey_id = visit.request.form.one("id")
        if not passkey_id:
            raise BadRequest("Which passkey? The form names none")
        self.passkeys.remove(user, passkey_id, _where(visit))
        return visit.redirect(next_path)


def passkey_rows(passkeys: Iterable[Passkey]) -> list[dict[str, str]]:
    """The rows of ``_passkeys_manage.html``: each passkey's id, name and times."""
    def when(epoch: int) -> str:
        return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC") \
            if epoch else "never"

    return [{"id": p.id, "name": p.name, "created": when(p.created_at),
             "last_used": when(p.last_used_at)} for p in passkeys]
