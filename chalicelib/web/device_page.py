"""The device verification page (RFC 8628 §3.3), server-rendered, no JavaScript.

One form walks the person through: enter (or confirm a prefilled) user code and,
if not signed in, a username and password; then see which client asks, for which
scopes, from where the device started; then Approve or Deny; then a result page.
Every POST carries a CSRF token; wrong codes are capped per source and per code
(``DeviceFlow.lookup``). The HTML is ``templates/device_*.html``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlencode

from chalice.app import Response

from chalicelib.errors import BadRequest, ConditionFailed, InvalidGrant
from chalicelib.grants import MAX_PARAM
from chalicelib.models import Client
from chalicelib.services.authn import ClientDirectory
from chalicelib.services.device_flow import DeviceFlow, display_user_code, normalise_user_code
from chalicelib.storage.devices import DeviceRequest
from chalicelib.web import second_factor_page
from chalicelib.web.browser import Visit

PAGE = "/device"
BAD_CODE = "That code is not valid or has expired. Check the code shown on your device."
MALFORMED_CODE = "A code has 8 letters, like WDJB-MJHT. Check the code shown on your device."


@dataclass(frozen=True)
class DevicePage:
    """``GET /device`` and ``POST /device``, given the flow and the clients."""

    flow: DeviceFlow
    clients: ClientDirectory

    def show(self, visit: Visit) -> Response:
        raw = visit.request.query.get("user_code", "")[:MAX_PARAM]
        prefilled = normalise_user_code(raw) if raw else None
        if visit.pending is not None:
            return second_factor_page.prompt(visit, after_signin(raw))
        return entry(visit, display_user_code(prefilled) if prefilled else raw, confirm=bool(raw))

    def submit(self, visit: Visit) -> Response:
        form = visit.request.form
        if any(len(v) > MAX_PARAM for values in form.fields.values() for v in values):
            raise BadRequest("A field is too long")
        visit.check_csrf()
        action = form.one("action", "continue")
        if action not in ("continue", "approve", "deny"):
            raise BadRequest("Unknown action")
        typed = form.one("user_code")
        if visit.pending is not None:
            return second_factor_page.prompt(visit, after_signin(typed))
        if visit.web is None:
            username, password = form.one("username"), form.one("password")
            if action != "continue" or not username or not password:
                return entry(visit, typed, error="Sign in with your username and password.",
                             status=401)
            try:
                visit.sign_in(username, password)
            except InvalidGrant as failed:
                return entry(visit, typed, error=failed.description, status=401)
            if visit.pending is not None:
                return second_factor_page.prompt(visit, after_signin(typed))
        code = normalise_user_code(typed)
        if code is None:
            return entry(visit, typed, error=MALFORMED_CODE, status=400)
        web = visit.web
        assert web is not None   # signed in above
        found = self.flow.lookup(code, source_ip=visit.request.source_ip, user_id=web.user.id)
        if found is None:
            return entry(visit, typed, error=BAD_CODE, status=400)
        if not self.flow.is_pending(found):
            return visit.message("Code already used",
                                 "This code has already been approved or denied. Start again on "
                                 "your device to get a new code.", 409)
        client = self.clients.get(found.client_id)
        if client is not None and client.require_mfa and not web.session.mfa:
            # SPEC §11: this app needs a sign-in with a second factor; the person has none.
            return visit.redirect(second_factor_page.ENROL + "?" + urlencode(
                {"next": after_signin(typed), "why": "app"}))
        if action == "continue":
            return confirm(visit, found, client)
        return self.decide(visit, found, client, approve=action == "approve")

    def decide(self, visit: Visit, found: DeviceRequest, client: Client | None, *,
               approve: bool) -> Response:
        assert visit.web is not None
        user, name = visit.web.user, client_name(client, found)
        try:
            if approve:
                granted = " ".join(s for s in found.scope.split() if user.allows(s))
                if found.scope and not granted:
                    return visit.message("Cannot approve", "Your account does not hold any of "
                                         "the permissions this application asks for.", 403)
                self.flow.approve(found, user, granted, auth_time=visit.web.session.auth_time,
                                  amr=visit.web.session.amr)
            else:
                self.flow.deny(found, user)
        except ConditionFailed:
            return visit.message("Code already used", "This request was already decided or has "
                                 "expired. Start again on your device.", 409)
        template = "device_approved.html" if approve else "device_denied.html"
        return visit.page("Device approved" if approve else "Request denied", template, name=name)


# --------------------------------------------------------------------------
# views
# --------------------------------------------------------------------------

def after_signin(typed: str) -> str:
    """This page again, with the code the person typed, after a sign-in's second step."""
    return PAGE + ("?" + urlencode({"user_code": typed}) if typed else "")


def client_name(client: Client | None, found: DeviceRequest) -> str:
    return (client.name if client and client.name else found.client_id)


def entry(visit: Visit, typed: str, *, confirm: bool = False, error: str = "",
          status: int = 200) -> Response:
    return visit.page("Connect a device", "device_entry.html", status, typed=typed,
                      confirm=confirm, error=error, signed_in=visit.web is not None)


def confirm(visit: Visit, found: DeviceRequest, client: Client | None) -> Response:
    assert visit.web is not None
    device = found.device
    return visit.page("Approve device", "device_confirm.html", name=client_name(client, found),
                      code=display_user_code(found.user_code), user_code=found.user_code,
                      scopes=found.scope.split(),
                      ip=device.get("ip", "unknown"), user_agent=device.get("user_agent") or "unknown",
                      started=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(found.created_at)))
