"""Issue 24, end to end in Chromium against the real runner: alice enrols an
authenticator app and a passkey, signs in with each, loses both and gets in with
a recovery code, and reads every step in her security log; a device login and an
authorization code sign-in both demand the second factor, and the tokens say how
she signed in. The runner's issuer is ``http://localhost:<port>`` (WebAuthn takes
no IP address as relying party id).

TOTP runs on the real clock here: a code is accepted once per 30-second step
(RFC 6238 §5.2), so each further use waits for a step not used yet.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pyotp
import pytest

from tests.e2e.support import running_server
from tests.e2e.test_passkeys_browser import AUTHENTICATOR

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORTS = [({"width": 1280, "height": 800}, "1280x800"), ({"width": 390, "height": 844}, "390x844")]
CLI = "cf83e1357eefb8bd"
CONSOLE, CONSOLE_SECRET = "console", "console-local-secret"
CALLBACK = "http://127.0.0.1:9000/callback"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("mfa"), "--issuer-host", "localhost") as server:
        yield server.base_url


class Totp:
    """alice's authenticator app: one code per step, never a step twice."""

    def __init__(self, secret: str) -> None:
        self.totp = pyotp.TOTP(secret)
        self.used = 0

    def code(self) -> str:
        step = int(time.time()) // 30
        if step <= self.used:
            time.sleep((self.used + 1) * 30 - time.time() + 0.5)
            step = int(time.time()) // 30
        self.used = step
        return self.totp.at(step * 30)


def post_form(url: str, fields: dict[str, str], auth: tuple[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(),
                                     method="POST")
    if auth:
        raw = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", "Basic " + raw)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return json.loads(refused.read())


def claims(base: str, id_token: str) -> dict[str, Any]:
    jwks = jwt.PyJWKClient(base + "/.well-known/jwks.json")
    key = jwks.get_signing_key_from_jwt(id_token)
    return jwt.decode(id_token, key.key, algorithms=["RS256", "ES256"], audience=None,
                      options={"verify_aud": False})


def password_step(page: Any, base: str, path: str = "/account") -> None:
    page.goto(base + path)
    page.fill("#username", "alice")
    page.fill("#password", "password4alice")
    page.click("main form button[type=submit]")
    page.wait_for_selector("text=Two-factor authentication")


def code_step(page: Any, code: str) -> None:
    page.fill("#code", code)
    page.click("text=Verify")


def test_alice_enrols_signs_in_with_each_factor_recovers_and_reads_her_log(base, chromium):
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    authenticator = cdp.send("WebAuthn.addVirtualAuthenticator",
                             {"options": AUTHENTICATOR})["authenticatorId"]

    # Enrol the authenticator app: a QR code and the key as text, then a code.
    page.goto(base + "/account")
    page.fill("#username", "alice")
    page.fill("#password", "password4alice")
    page.click("main form button[type=submit]")
    page.wait_for_selector("nav.console")
    page.goto(base + "/account/security")
    page.click("text=Set up an authenticator app")
    assert page.locator(".qr svg").count() == 1
    page.screenshot(path=str(SHOTS / "account-security-totp-1280x800.png"), full_page=True)
    app = Totp(page.input_value("#totp-secret"))
    page.fill("#totp-code", app.code())
    page.click("text=Turn on")
    page.wait_for_selector("text=Your recovery codes")
    recovery = page.locator("ul.codes li").all_inner_texts()
    assert len(recovery) == 10

    # Add a passkey in the same sign-in (its enrolment counts for it).
    page.goto(base + "/account/security")
    page.fill("#passkey-name", "virtual laptop")
    page.click("text=Add a passkey")
    page.wait_for_url(re.compile(r".*/account/security.*"))
    page.wait_for_selector("td:text-is('virtual laptop')")
    for viewport, label in VIEWPORTS:
        page.set_viewport_size(viewport)
        page.screenshot(path=str(SHOTS / f"account-security-enrolled-{label}.png"), full_page=True)
    page.set_viewport_size(VIEWPORTS[0][0])

    # Sign in with the password and the app's code.
    context.clear_cookies()
    password_step(page, base)
    for viewport, label in VIEWPORTS:
        page.set_viewport_size(viewport)
        page.screenshot(path=str(SHOTS / f"second-factor-{label}.png"), full_page=True)
    page.set_viewport_size(VIEWPORTS[0][0])
    code_step(page, app.code())
    page.wait_for_selector("nav.console")

    # Sign in with the passkey alone.
    context.clear_cookies()
    page.goto(base + "/account")
    page.click("text=Sign in with a passkey")
    page.wait_for_selector("nav.console")

    # Both are lost: no authenticator, no phone. A recovery code gets her in, once.
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator})
    context.clear_cookies()
    password_step(page, base)
    code_step(page, recovery[0])
    page.wait_for_selector("nav.console")
    context.clear_cookies()
    password_step(page, base)
    code_step(page, recovery[0])
    page.wait_for_selector("text=not valid")

    # Every step is in her security log.
    code_step(page, recovery[1])
    page.wait_for_selector("nav.console")
    page.goto(base + "/account/security-log")
    log = page.locator("main").inner_text()
    for words in ("Second factor added", "Recovery code used", "Sign-in failed"):
        assert words.lower() in log.lower(), (words, log)
    events = page.locator("main tbody tr").all_inner_texts()
    signins = [e for e in events if "signed in" in e.lower() or "sign-in" in e.lower()]
    assert len(signins) >= 4, events
    context.close()


def test_a_device_login_and_a_code_sign_in_demand_the_second_factor(base, chromium):
    # alice has a second factor from the test above (same runner); a fresh browser each.
    context = chromium.new_context()
    page = context.new_page()
    page.goto(base + "/account")
    page.fill("#username", "alice")
    page.fill("#password", "password4alice")
    page.click("main form button[type=submit]")
    page.wait_for_selector("text=Two-factor authentication")
    context.close()

    # The password grant is refused outright: a browser sign-in is needed.
    refused = post_form(base + "/oauth/token", {"grant_type": "password", "client_id": CLI,
                                                "username": "alice",
                                                "password": "password4alice"})
    assert refused["error"] == "invalid_grant"
    assert "second factor" in refused["error_description"]


def recovery_codes_of_a_fresh_alice(page: Any, base: str) -> tuple[Totp, list[str]]:
    page.goto(base + "/account")
    page.fill("#username", "alice")
    page.fill("#password", "password4alice")
    page.click("main form button[type=submit]")
    page.wait_for_selector("nav.console")
    page.goto(base + "/account/security")
    page.click("text=Set up an authenticator app")
    app = Totp(page.input_value("#totp-secret"))
    page.fill("#totp-code", app.code())
    page.click("text=Turn on")
    page.wait_for_selector("text=Your recovery codes")
    return app, page.locator("ul.codes li").all_inner_texts()


@pytest.fixture
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("mfa-flows")) as server:
        yield server.base_url


def test_device_and_code_flows_ask_for_the_code_and_their_tokens_say_so(fresh, chromium):
    base = fresh
    setup = chromium.new_context()
    app, recovery = recovery_codes_of_a_fresh_alice(setup.new_page(), base)
    setup.close()

    # A device login: the device page asks for the second factor after the password.
    started = post_form(base + "/oauth/device_authorization",
                        {"client_id": CLI, "scope": "openid profile"})
    context = chromium.new_context()
    page = context.new_page()
    page.goto(started["verification_uri_complete"])
    page.fill("#username", "alice")
    page.fill("#password", "password4alice")
    page.click("main form button[type=submit]")
    page.wait_for_selector("text=Two-factor authentication")
    code_step(page, app.code())
    # Back on the device page with the code the person confirms, then approves.
    page.click("button[value=continue]")
    page.click("button[value=approve]")
    page.wait_for_selector("text=approved")
    issued = post_form(base + "/oauth/token", {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": CLI,
        "device_code": started["device_code"]})
    device_claims = claims(base, issued["id_token"])
    assert device_claims["amr"] == ["pwd", "otp", "mfa"]
    assert device_claims["acr"] == "urn:tessera:acr:mfa"
    context.close()

    # An authorization code sign-in (the demo's web app), with a recovery code this time.
    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
        .rstrip(b"=").decode()
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": CONSOLE, "redirect_uri": CALLBACK,
        "scope": "openid profile", "state": "s-1", "nonce": "n-1",
        "code_challenge": challenge, "code_challenge_method": "S256"})
    context = chromium.new_context()
    page = context.new_page()
    page.goto(base + "/oauth/authorize?" + query)
    page.fill("#username", "alice")
    page.fill("#password", "password4alice")
    page.click("main form button[value=signin]")
    page.wait_for_selector("text=Two-factor authentication")
    code_step(page, recovery[0])
    page.wait_for_selector("button[value=approve]")
    with page.expect_request(lambda r: r.url.startswith(CALLBACK)) as went:
        page.click("button[value=approve]")
    answer = urllib.parse.parse_qs(urllib.parse.urlsplit(went.value.url).query)
    context.close()
    tokens = post_form(base + "/oauth/token", {
        "grant_type": "authorization_code", "code": answer["code"][0],
        "redirect_uri": CALLBACK, "code_verifier": verifier}, auth=(CONSOLE, CONSOLE_SECRET))
    code_claims = claims(base, tokens["id_token"])
    assert code_claims["amr"] == ["pwd", "otp", "mfa"] and code_claims["nonce"] == "n-1"
