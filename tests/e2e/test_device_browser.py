"""The device flow end to end: a real HTTP server, a real headless Chromium.

The "device" side talks HTTP with urllib; the person's side is Chromium driven
by Playwright. Screenshots of the code-entry and approval pages at 1280×800 and
390×844 are kept in ``artifacts/screenshots/``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CLI = "cf83e1357eefb8bd"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server(live_server: Any) -> str:
    """The real local runner (``devserver.py``) with the demo seed."""
    return str(live_server.base_url)


def call(url: str, data: dict[str, str] | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    body = urlencode(data).encode() if data is not None else None
    hdrs = {"User-Agent": "tessera-cli/e2e", **(headers or {})}
    if body is not None:
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=body, headers=hdrs)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def start(base: str) -> dict[str, Any]:
    status, got = call(f"{base}/oauth/device_authorization",
                       {"client_id": CLI, "scope": "openid profile email"})
    assert status == 200, got
    return got


def poll(base: str, device_code: str) -> tuple[int, dict[str, Any]]:
    return call(f"{base}/oauth/token",
                {"grant_type": DEVICE_GRANT, "client_id": CLI, "device_code": device_code})


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def open_page(chromium: Any, viewport: dict[str, int]) -> Any:
    context = chromium.new_context(viewport=viewport)
    return context.new_page()


@pytest.mark.parametrize("viewport,label", [(DESKTOP, "1280x800"), (PHONE, "390x844")])
def test_person_approves_in_the_browser_and_the_device_gets_tokens(server, chromium, viewport, label):
    got = start(server)
    assert poll(server, got["device_code"])[1]["error"] == "authorization_pending"
    page = open_page(chromium, viewport)
    try:
        page.goto(got["verification_uri_complete"])
        code_box = page.get_by_label("Code from your device")
        assert code_box.input_value() == got["user_code"]
        assert "monospace" in code_box.evaluate("e => getComputedStyle(e).fontFamily")
        assert page.get_by_text("matches the one shown on your device").is_visible()
        shot(page, f"device-entry-{label}")
        # Keyboard order follows the form: code, username, password, Continue.
        code_box.focus()
        order = []
        for _ in range(3):
            page.keyboard.press("Tab")
            order.append(page.evaluate("document.activeElement.id || document.activeElement.textContent"))
        assert order == ["username", "password", "Continue"]
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill("password4alice")
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("button", name="Approve").wait_for()
        assert "Tessera CLI" in page.content() and "tessera-cli/e2e" in page.content()
        assert "127.0.0.1" in page.content()
        shot(page, f"device-approve-{label}")
        page.get_by_role("button", name="Approve").click()
        page.get_by_role("heading", name="Device approved").wait_for()
        shot(page, f"device-approved-{label}")
    finally:
        page.context.close()
    status, tokens = poll(server, got["device_code"])
    assert status == 200, tokens
    status, me = call(f"{server}/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert status == 200 and me["email"] == "alice@example.com"
    # Single use: the next poll gets nothing.
    assert poll(server, got["device_code"])[1]["error"] == "invalid_grant"


def test_person_denies_and_the_device_gets_access_denied(server, chromium):
    got = start(server)
    page = open_page(chromium, PHONE)
    try:
        page.goto(f"{server}/device")
        page.get_by_label("Code from your device").fill(got["user_code"].lower().replace("-", " "))
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill("password4alice")
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("button", name="Deny").click()
        page.get_by_role("heading", name="Request denied").wait_for()
        shot(page, "device-denied-390x844")
    finally:
        page.context.close()
    assert poll(server, got["device_code"])[1]["error"] == "access_denied"


def test_wrong_code_shows_an_error_and_approves_nothing(server, chromium):
    got = start(server)
    page = open_page(chromium, DESKTOP)
    try:
        page.goto(f"{server}/device")
        wrong = "BCDF-GHJK" if got["user_code"] != "BCDF-GHJK" else "BCDF-GHJL"
        page.get_by_label("Code from your device").fill(wrong)
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill("password4alice")
        page.get_by_role("button", name="Continue").click()
        alert = page.get_by_role("alert")
        alert.wait_for()
        assert "not valid or has expired" in alert.inner_text()
        assert page.get_by_role("button", name="Approve").count() == 0
        shot(page, "device-wrong-code-1280x800")
    finally:
        page.context.close()
    assert poll(server, got["device_code"])[1]["error"] == "authorization_pending"
