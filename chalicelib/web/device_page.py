"""The device verification page (RFC 8628 §3.3), server-rendered, no JavaScript.

One form walks the person through: enter (or confirm a prefilled) user code and,
if not signed in, a username and password; then see which client asks, for which
scopes, from where the device started; then Approve or Deny; then a result page.
Every POST carries a CSRF token; wrong codes are capped per source and per code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalice.app import Response

from chalicelib.errors import BadRequest, ConditionFailed, InvalidGrant, TooManyRequests
from chalicelib.grants import MAX_PARAM
from chalicelib.models import Client
from chalicelib.services.authn import ClientDirectory
from chalicelib.services.device_flow import DeviceFlow, display_user_code, normalise_user_code
from chalicelib.storage.devices import DeviceRequest, DevicesRepo
from chalicelib.web.browser import Visit
from chalicelib.web.page import esc

BatchGet = Callable[[dict[str, list[dict[str, Any]]]], dict[str, list[dict[str, Any]]]]

SCOPE_TEXT = {
    "openid": "Confirm who you are",
    "profile": "See your name and username",
    "email": "See your email address",
    "offline_access": "Stay signed in on the device",
    "tokens:read": "List your personal access tokens",
    "tokens:manage": "Create, change and remove your personal access tokens",
    "roles:manage": "Create and remove your roles, their policies, keys and trusted CI systems",
    "sessions:manage": "See where you are signed in and sign devices out",
    "api:read": "Read data through the platform's APIs",
    "api:write": "Change data through the platform's APIs",
}
BAD_CODE = "That code is not valid or has expired. Check the code shown on your device."
MALFORMED_CODE = "A code has 8 letters, like WDJB-MJHT. Check the code shown on your device."


@dataclass(frozen=True)
class DevicePage:
    """``GET /device`` and ``POST /device``, given the flow and where codes and clients live."""

    flow: DeviceFlow
    clients: ClientDirectory
    devices: DevicesRepo
    batch_get: BatchGet

    def show(self, visit: Visit) -> Response:
        raw = visit.request.query.get("user_code", "")[:MAX_PARAM]
        prefilled = normalise_user_code(raw) if raw else None
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
        if visit.web is None:
            username, password = form.one("username"), form.one("password")
            if action != "continue" or not username or not password:
                return entry(visit, typed, error="Sign in with your username and password.",
                             status=401)
            try:
                visit.sign_in(username, password)
            except InvalidGrant as failed:
                return entry(visit, typed, error=failed.description, status=401)
        code = normalise_user_code(typed)
        if code is None:
            return entry(visit, typed, error=MALFORMED_CODE, status=400)
        found = self.lookup(visit, code)
        if found is None:
            return entry(visit, typed, error=BAD_CODE, status=400)
        if not self.flow.is_pending(found):
            return visit.message("Code already used",
                                 "This code has already been approved or denied. Start again on "
                                 "your device to get a new code.", 409)
        client = self.clients.get(found.client_id)
        if action == "continue":
            return confirm(visit, found, client)
        return self.decide(visit, found, client, approve=action == "approve")

    def lookup(self, visit: Visit, code: str) -> DeviceRequest | None:
        """The pending request of a user code; every miss counts against the caps
        (per source, per signed-in user, over all callers, and per code if issued).
        """
        assert visit.web is not None
        flow, ip, user_id = self.flow, visit.request.source_ip, visit.web.user.id
        items = self.batch_get({"devices": [self.devices.code_key(code)],
                                "throttle": flow.guess_keys(ip, user_id, code)})
        counters = flow.guess_counters(ip, user_id, code, items["throttle"])
        if flow.guessing_blocked(counters):
            raise TooManyRequests("Too many wrong codes were entered. Wait 15 minutes, then try "
                                  "again with the code shown on your device.",
                                  headers={"Retry-After": str(flow.guessing_retry_after(counters))})
        reservation = items["devices"][0] if items["devices"] else None
        found = flow.find(reservation)
        if found is None:
            flow.record_wrong_code(counters, code_issued=reservation is not None)
        return found

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
                self.flow.approve(found, user, granted, auth_time=visit.web.session.auth_time)
            else:
                self.flow.deny(found, user)
        except ConditionFailed:
            return visit.message("Code already used", "This request was already decided or has "
                                 "expired. Start again on your device.", 409)
        if approve:
            main = (f"<h1>Device approved</h1><p class=\"ok\" role=\"status\">{esc(name)} is now "
                    "signed in to your account. Return to your device; it will finish on its own."
                    "</p><p>You can close this page.</p>")
            return visit.page("Device approved", main)
        main = (f"<h1>Request denied</h1><p class=\"ok\" role=\"status\">{esc(name)} was not "
                "given access to your account.</p><p>You can close this page.</p>")
        return visit.page("Request denied", main)


# --------------------------------------------------------------------------
# views
# --------------------------------------------------------------------------

def client_name(client: Client | None, found: DeviceRequest) -> str:
    return (client.name if client and client.name else found.client_id)


def entry(visit: Visit, typed: str, *, confirm: bool = False, error: str = "",
          status: int = 200) -> Response:
    parts = ["<h1>Connect a device</h1>"]
    if error:
        parts.append(f"<p class=\"error\" role=\"alert\" id=\"form-error\">{esc(error)}</p>")
    if confirm and not error:
        parts.append("<p class=\"notice\">Check that this code matches the one shown on your "
                     "device. If it does not, do not continue.</p>")
    elif not error:
        parts.append("<p>Enter the code shown on your device.</p>")
    described = ' aria-describedby="form-error code-hint"' if error else ' aria-describedby="code-hint"'
    parts.append(
        f"<form method=\"post\" action=\"{esc(visit.path('/device'))}\">" + visit.hidden_csrf()
        + "<label for=\"user_code\">Code from your device</label>"
        + f"<input id=\"user_code\" name=\"user_code\" class=\"code\" value=\"{esc(typed)}\" "
        "autocomplete=\"off\" autocapitalize=\"characters\" spellcheck=\"false\" "
        f"maxlength=\"32\" required{described}"
        + ("" if confirm else " autofocus") + ">"
        + "<p class=\"hint\" id=\"code-hint\">8 letters, for example WDJB-MJHT. Dashes and "
        "spaces do not matter.</p>")
    if visit.web is None:
        parts.append(
            "<fieldset><legend>Sign in</legend>"
            "<label for=\"username\">Username</label>"
            "<input id=\"username\" name=\"username\" autocomplete=\"username\" "
            "autocapitalize=\"none\" spellcheck=\"false\" required"
            + (" autofocus" if confirm else "") + ">"
            "<label for=\"password\">Password</label>"
            "<input id=\"password\" name=\"password\" type=\"password\" "
            "autocomplete=\"current-password\" required></fieldset>")
    parts.append("<div class=\"actions\"><button type=\"submit\" name=\"action\" "
                 "value=\"continue\">Continue</button></div></form>")
    return visit.page("Connect a device", "".join(parts), status)


def confirm(visit: Visit, found: DeviceRequest, client: Client | None) -> Response:
    assert visit.web is not None
    name = client_name(client, found)
    scopes = found.scope.split()
    items = "".join(f"<li>{esc(SCOPE_TEXT.get(s, s))} <span class=\"hint\">({esc(s)})</span></li>"
                    for s in scopes) or "<li>Sign in only</li>"
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(found.created_at))
    device: dict[str, Any] = found.device
    main = (
        f"<h1>Allow {esc(name)} to access your account?</h1>"
        "<p class=\"notice\">Only approve if you started this sign-in yourself and the code "
        "below is the one shown on your device.</p>"
        "<dl>"
        f"<dt>Code</dt><dd class=\"code\">{esc(display_user_code(found.user_code))}</dd>"
        f"<dt>Application</dt><dd>{esc(name)}</dd>"
        f"<dt>It asks to</dt><dd><ul>{items}</ul></dd>"
        f"<dt>Started from</dt><dd>{esc(device.get('ip', 'unknown'))}</dd>"
        f"<dt>Device software</dt><dd>{esc(device.get('user_agent') or 'unknown')}</dd>"
        f"<dt>Started at</dt><dd>{esc(started)}</dd>"
        "</dl>"
        f"<form method=\"post\" action=\"{esc(visit.path('/device'))}\">" + visit.hidden_csrf()
        + f"<input type=\"hidden\" name=\"user_code\" value=\"{esc(found.user_code)}\">"
        "<div class=\"actions\">"
        "<button type=\"submit\" name=\"action\" value=\"approve\">Approve</button>"
        "<button type=\"submit\" name=\"action\" value=\"deny\" class=\"secondary\">Deny</button>"
        "</div></form>"
    )
    return visit.page("Approve device", main)
