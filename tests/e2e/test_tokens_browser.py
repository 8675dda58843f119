"""End to end in headless Chromium (issue 5): sign in, generate a PAT, use it over
HTTP, regenerate it (the old one fails), remove it (the new one fails).

Screenshots at desktop and phone sizes go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.pats_server import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
UNAUTHORIZED = {"type": "about:blank", "title": "Unauthorized", "status": 401,
                "detail": "Provided token is not valid"}


@pytest.fixture(scope="module")
def pats_server() -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    proc = subprocess.Popen([sys.executable, "-m", "tests.e2e.pats_server", str(port)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == "READY":
                break
        else:
            pytest.fail("the local server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


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


def test_generate_use_regenerate_and_remove_in_the_browser(pats_server):
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(pats_server + "/tokens")
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
            phone.goto(pats_server + "/tokens")
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
            browser.close()
