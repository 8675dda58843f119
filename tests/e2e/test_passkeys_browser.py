"""Passkeys end to end (SPEC §11, issue 24 item 2): headless Chromium with the
DevTools protocol's virtual authenticator (``WebAuthn`` domain, through
Playwright's CDP session) against the real local runner.

WebAuthn takes no IP address as relying party id, so this runner's issuer is
``http://localhost:<port>`` (``devserver.py --issuer-host localhost``; localhost
is a secure context). Each test has a runner of its own: alice starts without a
passkey."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.support import running_server

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

AUTHENTICATOR = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                 "hasUserVerification": True, "isUserVerified": True,
                 "automaticPresenceSimulation": True}


@pytest.fixture
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("passkeys"), "--issuer-host", "localhost") \
            as server:
        assert urlsplit(server.base_url).hostname == "localhost"
        yield server.base_url


class Browser:
    """One browser context with its own virtual authenticator."""

    def __init__(self, chromium: Any) -> None:
        self.context = chromium.new_context(viewport={"width": 1280, "height": 800})
        self.page = self.context.new_page()
        self.cdp = self.context.new_cdp_session(self.page)
        self.cdp.send("WebAuthn.enable")
        self.authenticator = self.add_authenticator()

    def add_authenticator(self) -> str:
        return str(self.cdp.send("WebAuthn.addVirtualAuthenticator",
                                 {"options": AUTHENTICATOR})["authenticatorId"])

    def credentials(self, authenticator: str | None = None) -> list[dict[str, Any]]:
        return list(self.cdp.send("WebAuthn.getCredentials", {
            "authenticatorId": authenticator or self.authenticator})["credentials"])

    def sign_in_with_password(self, base: str) -> None:
        self.page.goto(base + "/account/tokens")
        self.page.fill("#username", "alice")
        self.page.fill("#password", "password4alice")
        self.page.click("form button[type=submit]")

    def sign_out(self) -> None:
        self.context.clear_cookies()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def browser(chromium: Any) -> Iterator[Browser]:
    b = Browser(chromium)
    yield b
    b.close()


def register(b: Browser, base: str, name: str) -> None:
    b.sign_in_with_password(base)
    b.page.wait_for_selector("text=Signed in as")
    b.page.goto(base + "/account/security")
    b.page.fill("#passkey-name", name)
    b.page.click("text=Add a passkey")
    # The first second factor shows its recovery codes once; the list has the passkey.
    b.page.wait_for_selector("text=Your recovery codes")
    b.page.goto(base + "/account/security")
    b.page.wait_for_selector(f"td:text-is('{name}')")


def test_register_then_sign_in_as_second_and_as_first_factor(base, browser):
    b, page = browser, browser.page
    register(b, base, "virtual laptop")
    assert len(b.credentials()) == 1
    assert b.credentials()[0]["isResidentCredential"] is True

    # Second factor: the password, then "Use a passkey".
    b.sign_out()
    b.sign_in_with_password(base)
    page.wait_for_selector("text=Two-factor authentication")
    page.click("text=Use a passkey")
    page.wait_for_selector("text=Signed in as")
    assert urlsplit(page.url).path == "/account/tokens"
    count = b.credentials()[0]["signCount"]

    # First factor: no password at all.
    b.sign_out()
    page.goto(base + "/account/tokens")
    page.click("text=Sign in with a passkey")
    page.wait_for_selector("text=Signed in as")
    assert urlsplit(page.url).path == "/account/tokens"
    assert b.credentials()[0]["signCount"] > count

    # The console lists when it was last used.
    page.goto(base + "/account/security")
    row = page.locator("tr", has_text="virtual laptop")
    assert "never" not in row.inner_text()


def test_a_cloned_authenticators_stale_counter_is_refused(base, browser):
    b, page = browser, browser.page
    register(b, base, "to be cloned")
    b.sign_out()
    page.goto(base + "/account/tokens")
    page.click("text=Sign in with a passkey")
    page.wait_for_selector("text=Signed in as")
    original = b.credentials()[0]
    assert original["signCount"] >= 1

    # The same private key in another authenticator, its counter behind.
    b.cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": b.authenticator})
    clone = b.add_authenticator()
    b.cdp.send("WebAuthn.addCredential", {"authenticatorId": clone, "credential": {
        **{k: original[k] for k in ("credentialId", "isResidentCredential", "rpId",
                                    "privateKey", "userHandle")},
        "signCount": 0}})
    b.sign_out()
    page.goto(base + "/account/tokens")
    page.click("text=Sign in with a passkey")
    page.wait_for_selector("text=could not be verified")
    assert "Signed in as" not in page.content()


def test_a_replayed_assertion_is_refused(base, browser):
    b, page = browser, browser.page
    register(b, base, "replayed")
    b.sign_out()
    page.goto(base + "/account/tokens")
    posted: list[str] = []
    page.on("request", lambda r: posted.append(r.post_data or "")
            if r.method == "POST" and urlsplit(r.url).path == "/signin/passkey" else None)
    page.click("text=Sign in with a passkey")
    page.wait_for_selector("text=Signed in as")
    assert len(posted) == 1 and "credential=" in posted[0]

    # The same form again, from the same browser signed out (its CSRF token holds).
    b.context.clear_cookies(name="tessera_web")
    answer = page.request.post(base + "/signin/passkey", data=posted[0], max_redirects=0,
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status == 403
    assert "already used" in answer.text() or "could not be verified" in answer.text()
    assert "tessera_web=" not in (answer.headers.get("set-cookie") or "")
