"""End to end in headless Chromium (issue 5): sign in, generate a PAT on the account
console's tokens page (/account/tokens), use it over HTTP, regenerate it (the old one
fails), remove it (the new one fails).

Screenshots at desktop and phone sizes go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
UNAUTHORIZED = {"type": "about:blank", "title": "Unauthorized", "status": 401,
                "detail": "Provided token is not valid"}


@pytest.fixture(scope="module")
def pats_server(live_server: Any) -> str:
    """The real local runner (``devserver.py``) with the demo seed."""
    return str(live_server.base_url)


def me(base: str, token: str, basic: bool = False) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(base + "/v1/me")
    if basic:
        import base64
        request.add_header("Authorization", "Basic " + base64.b64encode(f"x:{token}".encode()).decode())
    else:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_generate_use_regenerate_and_remove_in_the_browser(pats_server, chromium):
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser = chromium
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(pats_server + "/account/tokens")
        page.screenshot(path=str(SHOTS / "tokens-signin-desktop.png"))
        page.fill("#username", "alice")
        page.fill("#password", "password4alice")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Signed in as")

        page.fill("#description", "browser e2e")
        page.select_option("#api_set", "ide-plugins")
        page.click("#generate-form button[type=submit]")
        page.wait_for_selector("#secret-token")
        assert page.is_visible("#copy-button"), "the Copy button needs the script to run"
        assert "You will not see it again" in page.content()
        page.screenshot(path=str(SHOTS / "tokens-secret-desktop.png"))
        first = page.input_value("#secret-token")
        assert first.startswith("tsp_")

        status, who = me(pats_server, first)
        assert status == 200 and who["email"] == "alice@example.com"
        assert me(pats_server, first, basic=True)[0] == 200

        page.click("text=Back to your tokens")
        page.wait_for_selector("text=browser e2e")
        page.screenshot(path=str(SHOTS / "tokens-list-desktop.png"), full_page=True)
        phone = browser.new_page(viewport={"width": 390, "height": 844})
        phone.context.add_cookies(page.context.cookies())
        phone.goto(pats_server + "/account/tokens")
        phone.screenshot(path=str(SHOTS / "tokens-list-phone.png"), full_page=True)
        phone.close()

        page.click("button:has-text('Regenerate')")
        page.wait_for_selector("#secret-token")
        second = page.input_value("#secret-token")
        assert second != first
        assert me(pats_server, first) == (401, UNAUTHORIZED)
        assert me(pats_server, second)[0] == 200

        page.click("text=Back to your tokens")
        page.check("input[name=ids]")
        page.click("button:has-text('Remove selected')")
        page.wait_for_selector("text=Removed 1 token")
        page.screenshot(path=str(SHOTS / "tokens-removed-desktop.png"))
        assert me(pats_server, second) == (401, UNAUTHORIZED)
        assert me(pats_server, second, basic=True) == (401, UNAUTHORIZED)
    finally:
        for context in browser.contexts:
            context.close()


VIEWPORTS = [({"width": 1280, "height": 800}, "1280x800"), ({"width": 390, "height": 844}, "390x844")]


def test_device_and_tokens_pages_share_one_look_at_both_sizes(pats_server, chromium):
    """SPEC §7: one layout and stylesheet, readable at 390 px (nothing wider than the screen).

    Screenshots of both pages, signed out and signed in, at both sizes.
    """
    SHOTS.mkdir(parents=True, exist_ok=True)
    for viewport, label in VIEWPORTS:
        context = chromium.new_context(viewport=viewport)
        try:
            page = context.new_page()
            looks = {}
            for state in ("signed-out", "signed-in"):
                if state == "signed-in":
                    page.goto(pats_server + "/account/tokens")
                    page.fill("#username", "alice")
                    page.fill("#password", "password4alice")
                    page.click("button[type=submit]")
                    page.wait_for_selector("text=Signed in as")
                for path in ("/device", "/account/tokens"):
                    page.goto(pats_server + path)
                    bar = page.locator("header.site")
                    looks[(state, path)] = tuple(bar.evaluate(
                        "e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).fontFamily]"))
                    assert ("Signed in as alice" in bar.inner_text()) == (state == "signed-in")
                    width = page.evaluate("document.documentElement.scrollWidth")
                    assert width <= viewport["width"], f"{path} {state} is {width}px wide at {label}"
                    name = path.rsplit("/", 1)[-1]
                    page.screenshot(path=str(SHOTS / f"layout-{name}-{state}-{label}.png"),
                                    full_page=True)
            assert len(set(looks.values())) == 1, looks
        finally:
            context.close()


def test_tokens_page_works_without_javascript(pats_server, chromium):
    context = chromium.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto(pats_server + "/account/tokens")
        page.fill("#username", "alice")
        page.fill("#password", "password4alice")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Signed in as")
        page.fill("#description", "no script")
        page.select_option("#api_set", "marketplace")
        page.click("#generate-form button[type=submit]")
        page.wait_for_selector("#secret-token")
        assert not page.is_visible("#copy-button")   # the enhancement only
        token = page.input_value("#secret-token")
        assert me(pats_server, token)[0] == 200
        page.click("text=Back to your tokens")
        page.check("input[name=ids]")
        page.click("button:has-text('Remove selected')")
        page.wait_for_selector("text=Removed 1 token")
        assert me(pats_server, token)[0] == 401
    finally:
        context.close()
