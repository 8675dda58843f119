"""Sign in to a web app end to end: the real local runner, headless Chromium, and
Authlib's ``OAuth2Session`` as the unmodified relying party.

The app's callback is a tiny HTTP server on 127.0.0.1 (an ephemeral port: the
demo ``console`` client registered ``http://127.0.0.1:9000/callback``, and a
loopback redirect matches on any port, RFC 8252 §7.3). The app validates the ID
token with Authlib (signature against the JWKS, ``iss``, ``aud``, ``nonce``,
``at_hash``) and calls ``/oauth/userinfo``. Screenshots of the sign-in and
consent pages at 1280×800 and 390×844 go to ``docs/screenshots/``.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


class _Callback(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>back in the app</title><p>Back in the app.</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def callback() -> Iterator[str]:
    """The app's redirect URI on an ephemeral loopback port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Callback)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/callback"
    finally:
        server.shutdown()
        server.server_close()


def validated_id_token(base: str, token: dict[str, Any], client_id: str, nonce: str) -> Any:
    """What a relying party does with the ID token (OIDC Core §3.1.3.7), by Authlib."""
    import warnings

    import requests

    with warnings.catch_warnings():
        # Authlib's own ID token validator (authlib.oidc.core) is built on authlib.jose.
        warnings.simplefilter("ignore", DeprecationWarning)
        from authlib.jose import JsonWebKey, JsonWebToken
        from authlib.oidc.core import CodeIDToken

    jwks = JsonWebKey.import_key_set(requests.get(base + "/.well-known/jwks.json", timeout=10).json())
    claims = JsonWebToken(["ES256", "RS256"]).decode(
        token["id_token"], jwks, claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": base}},
        claims_params={"nonce": nonce, "client_id": client_id,
                       "access_token": token["access_token"]})
    claims.validate()   # iss, aud, exp, iat, nonce, azp and at_hash
    return claims


def sign_in_and_consent(page: Any, authorize_url: str, callback: str, shots: str = "") -> str:
    page.goto(authorize_url)
    page.wait_for_selector("text=Sign in to continue")
    if shots:
        for size, label in ((DESKTOP, "1280x800"), (PHONE, "390x844")):
            page.set_viewport_size(size)
            page.screenshot(path=str(SHOTS / f"{shots}-signin-{label}.png"), full_page=True)
    page.fill("#username", "alice")
    page.fill("#password", "password4alice")
    page.click("button[value=signin]")
    page.wait_for_selector("text=to access your account?")
    assert "See your email address" in page.content() or shots == ""
    if shots:
        for size, label in ((DESKTOP, "1280x800"), (PHONE, "390x844")):
            page.set_viewport_size(size)
            page.screenshot(path=str(SHOTS / f"{shots}-consent-{label}.png"), full_page=True)
    page.click("button[value=approve]")
    page.wait_for_url(callback + "?*")
    return str(page.url)


def test_a_web_app_signs_alice_in_with_authlib_and_reads_her_profile(live_server, chromium,
                                                                     callback):
    from authlib.integrations.requests_client import OAuth2Session

    base = live_server.base_url
    SHOTS.mkdir(parents=True, exist_ok=True)
    app = OAuth2Session("console", "console-local-secret", scope="openid profile email",
                        redirect_uri=callback, code_challenge_method="S256")
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    # prompt=consent: another test of the session may have stored alice's consent already.
    url, state = app.create_authorization_url(base + "/oauth/authorize", nonce=nonce,
                                              code_verifier=verifier, prompt="consent")
    context = chromium.new_context(viewport=DESKTOP)
    try:
        back = sign_in_and_consent(context.new_page(), url, callback, shots="authorize")
    finally:
        context.close()
    assert f"state={state}" in back and "iss=" in back
    token = app.fetch_token(base + "/oauth/token", authorization_response=back,
                            code_verifier=verifier)
    claims = validated_id_token(base, token, "console", nonce)
    assert claims["azp"] == "console" and claims["sid"] and claims["auth_time"]
    profile = app.get(base + "/oauth/userinfo", timeout=10)
    assert profile.status_code == 200
    assert profile.json()["sub"] == claims["sub"] and profile.json()["email"] == "alice@example.com"


def test_a_native_app_uses_a_loopback_redirect_on_an_ephemeral_port(live_server, chromium,
                                                                    callback):
    from authlib.integrations.requests_client import OAuth2Session

    made = live_server.admin("client", "create", "e2e-native", "--public", "--name", "Native",
                             "--grant-types", "authorization_code,refresh_token",
                             "--scopes", "openid,profile", "--redirect-uri",
                             "http://127.0.0.1/callback")
    assert made.returncode == 0, made.stderr
    base = live_server.base_url
    app = OAuth2Session("e2e-native", scope="openid profile", redirect_uri=callback,
                        code_challenge_method="S256", token_endpoint_auth_method="none")
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url, _ = app.create_authorization_url(base + "/oauth/authorize", nonce=nonce,
                                          code_verifier=verifier)
    context = chromium.new_context(viewport=PHONE)
    try:
        back = sign_in_and_consent(context.new_page(), url, callback)
    finally:
        context.close()
    token = app.fetch_token(base + "/oauth/token", authorization_response=back,
                            code_verifier=verifier)
    assert validated_id_token(base, token, "e2e-native", nonce)["nonce"] == nonce
    assert token["refresh_token"].startswith("tsr_")
