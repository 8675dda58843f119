"""A web app that signs people in with Tessera: the authorization code flow with
PKCE, on Authlib, in the standard library's HTTP server.

Run ``make run`` (Tessera on http://127.0.0.1:8000, with the demo ``console``
client), then ``.venv/bin/python examples/webapp/app.py`` and open
http://127.0.0.1:9000. Signing in sends the browser to Tessera's sign-in and
consent pages; back here, the app checks the ID token (signature, issuer,
audience, nonce, at_hash), reads the profile from ``/oauth/userinfo`` and shows it.
"""

from __future__ import annotations

import html
import os
import secrets
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, JsonWebToken
from authlib.oidc.core import CodeIDToken

TESSERA = os.environ.get("TESSERA_SERVER", "http://127.0.0.1:8000")
CLIENT_ID, CLIENT_SECRET = "console", os.environ.get("CONSOLE_SECRET", "console-local-secret")
HOME, CALLBACK = "http://127.0.0.1:9000/", "http://127.0.0.1:9000/callback"
META = requests.get(TESSERA + "/.well-known/openid-configuration", timeout=10).json()
pending: dict[str, tuple[str, str]] = {}          # state -> (code verifier, nonce)
signed_in: dict[str, tuple[dict[str, Any], str]] = {}   # our cookie -> (profile, ID token)


def oauth() -> OAuth2Session:
    return OAuth2Session(CLIENT_ID, CLIENT_SECRET, scope="openid profile email",
                         redirect_uri=CALLBACK, code_challenge_method="S256")


class App(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        cookie = SimpleCookie(self.headers.get("Cookie", "")).get("app")
        me = signed_in.get(cookie.value) if cookie else None
        if path == "/login":
            verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
            url, state = oauth().create_authorization_url(
                META["authorization_endpoint"], nonce=nonce, code_verifier=verifier)
            pending[state] = (verifier, nonce)
            return self.answer(302, location=url)
        if path == "/callback":
            return self.callback()
        if path == "/logout" and cookie and me:
            signed_in.pop(cookie.value)
            url = META["end_session_endpoint"] + "?" + urlencode(
                {"id_token_hint": me[1], "post_logout_redirect_uri": HOME})
            return self.answer(302, location=url)
        if me:
            profile = me[0]
            rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                           for k, v in profile.items())
            return self.answer(200, f"<h1>Hello, {html.escape(str(profile.get('given_name')))}"
                                    f"</h1><table>{rows}</table><p><a href='/logout'>Sign out</a>")
        return self.answer(200, "<h1>Console</h1><p><a href='/login'>Sign in with Tessera</a>")

    def callback(self) -> None:
        params = parse_qs(urlsplit(self.path).query)
        if "error" in params:
            return self.answer(400, f"<p>Not signed in: {html.escape(params['error'][0])}</p>")
        verifier, nonce = pending.pop(params.get("state", [""])[0], (None, None))
        if verifier is None:
            return self.answer(400, "<p>Unknown or used state.</p>")
        client = oauth()
        token = client.fetch_token(META["token_endpoint"], code_verifier=verifier,
                                   authorization_response="http://127.0.0.1:9000" + self.path)
        keys = JsonWebKey.import_key_set(requests.get(META["jwks_uri"], timeout=10).json())
        claims = JsonWebToken(META["id_token_signing_alg_values_supported"]).decode(
            token["id_token"], keys, claims_cls=CodeIDToken,
            claims_options={"iss": {"essential": True, "value": META["issuer"]}},
            claims_params={"nonce": nonce, "client_id": CLIENT_ID,
                           "access_token": token["access_token"]})
        claims.validate()
        profile = client.get(META["userinfo_endpoint"], timeout=10).json()
        ours = secrets.token_urlsafe(32)
        signed_in[ours] = (profile, token["id_token"])
        self.answer(302, location="/", cookie=f"app={ours}; Path=/; HttpOnly; SameSite=Lax")

    def answer(self, status: int, body: str = "", *, location: str = "", cookie: str = "") -> None:
        data = f"<!doctype html><meta charset=utf-8><title>Console</title>{body}".encode()
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    print(f"Console on {HOME} (signing in at {TESSERA})")
    ThreadingHTTPServer(("127.0.0.1", 9000), App).serve_forever()
