"""The single-page app of ``examples/spa`` in headless Chromium against the real
runner: oidc-client-ts (its browser bundle, as ``make node-deps`` installs it)
signs alice in with the authorization code flow and PKCE, and the page calls
``/v1/me`` with the access token. Discovery, the token endpoint and ``/v1/me``
are all cross-origin calls: without CORS the browser stops at the first.

The page is served as static files from an ephemeral loopback port; its client
is registered with the admin command for that page's redirect URI, whose origin
becomes the client's web origin.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SPA = Path(__file__).resolve().parents[2] / "examples" / "spa"
BUNDLE = SPA / "node_modules" / "oidc-client-ts" / "dist" / "browser" / "oidc-client-ts.min.js"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def spa_origin() -> Iterator[str]:
    """``examples/spa`` as static files (``python -m http.server`` as the README says)."""
    if not BUNDLE.exists():
        pytest.fail(f"no {BUNDLE.relative_to(SPA.parents[1])}: run `make node-deps`")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(SPA)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_spa_example_signs_alice_in_with_pkce_and_reads_v1_me(live_server, chromium,
                                                                   spa_origin):
    made = live_server.admin("client", "create", "e2e-spa", "--public", "--name", "SPA example",
                             "--grant-types", "authorization_code,refresh_token",
                             "--scopes", "openid,profile,email",
                             "--redirect-uri", spa_origin + "/callback.html")
    assert made.returncode == 0, made.stderr
    base = live_server.base_url
    context = chromium.new_context()
    console: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda message: console.append(message.text))
        page.goto(f"{spa_origin}/index.html?" + urlencode({"authority": base,
                                                           "client_id": "e2e-spa"}))
        page.click("#signin")
        page.wait_for_selector("text=Sign in to continue")
        assert page.url.startswith(base + "/oauth/authorize?")
        assert "code_challenge_method=S256" in page.url
        page.fill("#username", "alice")
        page.fill("#password", "password4alice")
        page.click("button[value=signin]")
        page.wait_for_selector("text=to access your account?")
        page.click("button[value=approve]")
        page.wait_for_url(spa_origin + "/index.html", timeout=15000)
        try:
            page.wait_for_function("document.getElementById('me').textContent.length > 0",
                                   timeout=15000)
        except Exception:
            error = page.text_content("#error")
            pytest.fail(f"the page shows no /v1/me answer: {error!r}; console: {console}")
        me = json.loads(page.text_content("#me") or "")
    finally:
        context.close()
    assert me["email"] == "alice@example.com" and me["firstname"] == "Alice"
    assert me["active"] is True and me["id"]


def test_the_demo_spa_clients_origin_passes_preflights_over_http(live_server):
    """The README's `make run` setup: the demo seed's `spa` client at
    http://127.0.0.1:8700, through the real runner's HTTP server."""
    from tests.e2e.support import http

    base, origin = live_server.base_url, "http://127.0.0.1:8700"
    asks = {"Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"}
    answer = http("OPTIONS", base + "/oauth/token", headers=asks)
    assert answer.status == 204
    assert answer.headers["Access-Control-Allow-Origin"] == origin
    assert "POST" in answer.headers["Access-Control-Allow-Methods"]
    refused = http("OPTIONS", base + "/oauth/token", headers={**asks, "Origin": "http://127.0.0.1:8701"})
    assert "Access-Control-Allow-Origin" not in refused.headers
