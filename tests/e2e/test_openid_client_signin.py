"""Sign in to a web app whose relying party is openid-client (Node, from npm,
unmodified): discovery, the authorization URL with PKCE, a callback server on
127.0.0.1, the code exchange, the ID token's validation and ``/oauth/userinfo``,
against the real local runner, with headless Chromium signing alice in and
consenting. ``make node-deps`` installs the package (``tests/node``, as locked);
skipped only on a machine without Node."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.test_webapp_signin import DESKTOP, sign_in_and_consent

NODE = shutil.which("node")
SCRIPT = Path(__file__).resolve().parents[1] / "node" / "openid_client_app.mjs"

pytestmark = [pytest.mark.e2e, pytest.mark.browser,
              pytest.mark.skipif(NODE is None, reason="Node.js is not installed")]


def test_openid_client_signs_alice_in_with_pkce_and_reads_her_profile(live_server, chromium):
    assert NODE is not None
    assert (SCRIPT.parent / "node_modules" / "openid-client").is_dir(), \
        "run `make node-deps` (make test does) to install tests/node's packages"
    app = subprocess.Popen([NODE, str(SCRIPT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        assert app.stdin is not None and app.stdout is not None
        app.stdin.write(json.dumps({"issuer": live_server.base_url, "client_id": "console",
                                    "client_secret": "console-local-secret",
                                    "scope": "openid profile email"}))
        app.stdin.close()
        started = app.stdout.readline()
        assert started, app.stderr.read() if app.stderr else ""
        url = json.loads(started)["authorization_url"]
        assert url.startswith(live_server.base_url + "/oauth/authorize?")
        assert "code_challenge_method=S256" in url
        callback = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        context = chromium.new_context(viewport=DESKTOP)
        try:
            sign_in_and_consent(context.new_page(), url, callback)
        finally:
            context.close()
        finished = app.stdout.readline()
        app.wait(timeout=30)
        assert app.returncode == 0, app.stderr.read() if app.stderr else ""
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
    result: dict[str, Any] = json.loads(finished)
    claims, userinfo = result["claims"], result["userinfo"]
    # openid-client checked the signature, iss, aud, exp, nonce and at_hash already
    assert claims["iss"] == live_server.base_url
    assert claims["aud"] == "console" and claims["azp"] == "console"
    assert claims["nonce"] and claims["at_hash"] and claims["auth_time"] and claims["sid"]
    assert result["token_type"].lower() == "bearer"
    assert userinfo["sub"] == claims["sub"]
    assert userinfo["email"] == "alice@example.com"
    assert userinfo["preferred_username"] == "alice"
