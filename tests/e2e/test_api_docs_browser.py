"""``/docs`` in headless Chromium against the real runner (issue 22): Swagger UI
renders the OpenAPI document's operations from assets of this origin only, with no
console error and no CSP violation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

# Runs before any script of the page (through the DevTools protocol, which the
# page's CSP does not govern): records every CSP violation the page reports.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


def test_docs_renders_the_operations_without_errors_or_csp_violations(live_server: Any,
                                                                      chromium: Any) -> None:
    base = live_server.base_url
    page = chromium.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.add_init_script(RECORD_VIOLATIONS)
    try:
        answer = page.goto(base + "/docs")
        assert answer is not None and answer.status == 200
        page.wait_for_selector(".opblock-summary-path", timeout=30000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert "/v1/tokens" in [p.strip() for p in paths]
        assert "/v1/roles/{name}/keys" in [p.replace("\u200b", "").strip() for p in paths]
        page.wait_for_selector("text=Tessera JSON API")
        # Open one operation: its parameters and responses render too.
        page.locator("#operations-Personal_access_tokens-generate").click()
        page.wait_for_selector("#operations-Personal_access_tokens-generate .responses-table")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "docs-desktop.png"))
        violations = page.evaluate("window.__violations")
    finally:
        page.close()
    assert violations == [], violations
    assert errors == [], errors
    assert requests and all(url.startswith(base + "/") or url.startswith("data:")
                            for url in requests), requests
