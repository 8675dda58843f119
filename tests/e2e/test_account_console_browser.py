"""The account console (SPEC §11) in headless Chromium: every page at 1280×800 and
390×844 has nothing wider than the screen and no serious or critical axe-core
violation (the pinned ``axe-core`` of ``tests/node``, injected into the page); the
pages work from the keyboard alone; the old ``/tokens`` and ``/consents`` URLs land
on the console. Screenshots of every console page at both sizes go to
``docs/screenshots/`` (the manual shows them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
AXE = ROOT / "tests" / "node" / "node_modules" / "axe-core" / "axe.min.js"
VIEWPORTS = [({"width": 1280, "height": 800}, "1280x800"), ({"width": 390, "height": 844}, "390x844")]
PAGES = [("/account", "profile"), ("/account/password", "password"),
         ("/account/sessions", "sessions"), ("/account/tokens", "tokens"),
         ("/account/apps", "apps"), ("/account/roles", "roles"),
         ("/account/roles/alice.console", "role"), ("/account/security-log", "security-log"),
         ("/account/security", "security")]
SERIOUS = ("serious", "critical")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations of the page as it is now."""
    if not AXE.exists():
        pytest.fail(f"no {AXE}: run `make node-deps` (make test does)")
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']}))
        .violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                               nodes: v.nodes.map(n => n.target.join(' '))}))""")
    return [v for v in found if v["impact"] in SERIOUS]


def sign_in(page: Any, base: str, path: str = "/account") -> None:
    page.goto(base + path)
    page.fill("#username", "alice")
    page.fill("#password", "password4alice")
    page.click("main button[type=submit]")
    page.wait_for_selector("nav.console")


def fits(page: Any, width: int) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{page.url} is {scroll}px wide in a {width}px window"


@pytest.fixture(scope="module")
def server(live_server: Any, chromium: Any) -> str:
    """The local runner, with a role, a key and a trust policy of alice's to show."""
    base = str(live_server.base_url)
    context = chromium.new_context()
    try:
        page = context.new_page()
        sign_in(page, base, "/account/roles")
        if page.locator("a:has-text('alice.console')").count() == 0:
            page.fill("#role-name", "console")
            page.fill("#role-description", "Screenshots of the console")
            page.click("text=Create role")
            page.wait_for_selector("h1:has-text('alice.console')")
            page.fill("#permission", "data:get@urn:tessera:data:alice.*")
            page.click("button:has-text('Add policy')")
            page.wait_for_selector("text=Policy added")
            page.fill("#key-description", "nightly export")
            page.click("button:has-text('Make a key')")
            page.wait_for_selector("#secret-token")
            page.goto(base + "/account/roles/alice.console")
            page.fill("#issuer", "https://token.actions.githubusercontent.com")
            page.fill("#audience", "tessera")
            page.fill("#subject", "repo:acme/app:ref:refs/heads/main")
            page.click("button:has-text('Add trust policy')")
            page.wait_for_selector("text=Trust policy added")
    finally:
        context.close()
    return base


@pytest.mark.parametrize(("viewport", "label"), VIEWPORTS)
def test_every_console_page_passes_axe_fits_and_is_photographed(server, chromium, viewport,
                                                                 label):
    SHOTS.mkdir(parents=True, exist_ok=True)
    # axe is injected as a script: the pages' CSP (rightly) allows none but their own.
    context = chromium.new_context(viewport=viewport, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(server + "/account")
        assert axe_violations(page) == [], "sign-in page"
        fits(page, viewport["width"])
        page.screenshot(path=str(SHOTS / f"account-signin-{label}.png"), full_page=True)
        sign_in(page, server)
        for path, name in PAGES:
            page.goto(server + path)
            current = page.locator("nav.console a[aria-current=page]")
            assert current.count() == 1, path
            assert page.locator("header").count() >= 1 and page.locator("main").count() == 1
            fits(page, viewport["width"])
            violations = axe_violations(page)
            assert violations == [], (path, violations)
            page.screenshot(path=str(SHOTS / f"account-{name}-{label}.png"), full_page=True)
    finally:
        context.close()


def test_the_console_works_from_the_keyboard_alone(server, chromium):
    context = chromium.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto(server + "/account")
        page.focus("#username")
        page.keyboard.type("alice")
        page.keyboard.press("Tab")
        page.keyboard.type("password4alice")
        page.keyboard.press("Enter")
        page.wait_for_selector("nav.console")
        # Tab from the top of the page to the nav's Sessions link, then follow it.
        for _ in range(30):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.textContent") == "Sessions":
                break
        else:
            pytest.fail("the Sessions link is not reachable with Tab")
        page.keyboard.press("Enter")
        page.wait_for_url("**/account/sessions")
        assert page.locator("text=this session").count() == 1
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline is not None
    finally:
        context.close()


def test_the_old_pages_land_on_the_console(server, chromium):
    context = chromium.new_context()
    try:
        page = context.new_page()
        sign_in(page, server)
        page.goto(server + "/tokens")
        assert page.url == server + "/account/tokens"
        assert page.locator("nav.console a[aria-current=page]").inner_text() == "Tokens"
        page.goto(server + "/consents")
        assert page.url == server + "/account/apps"
    finally:
        context.close()


def test_the_axe_check_finds_a_serious_violation_where_there_is_one(chromium):
    """The check above can fail: an unlabelled field is a critical violation."""
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.set_content('<!doctype html><html lang="en"><head><title>t</title></head><body>'
                         '<main><h1>t</h1><input type="text"></main></body></html>')
        assert "label" in [v["id"] for v in axe_violations(page)]
    finally:
        context.close()
