"""Strict relying parties with their default settings, against the real local runner.

* requests-oauth2client expects RS256 ID tokens unless told otherwise (OIDC Dynamic
  Client Registration §2 makes it the default) and validates them itself.
* pyoidc (``oic``) sends the access token to UserInfo in a form-encoded POST body
  by default (OIDC Core §5.3.1, RFC 6750 §2.2).

Each signs alice in with the authorization code flow in headless Chromium and
reads UserInfo, with nothing configured beyond its client id, secret and
redirect URI (the demo ``console`` client; a loopback redirect matches on any
port, RFC 8252 §7.3).
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.test_webapp_signin import DESKTOP, callback, sign_in_and_consent  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def browser_sign_in(chromium: Any, url: str, redirect: str) -> str:
    context = chromium.new_context(viewport=DESKTOP)
    try:
        return sign_in_and_consent(context.new_page(), url, redirect)
    finally:
        context.close()


def test_requests_oauth2client_signs_alice_in_and_reads_userinfo_with_its_defaults(
        live_server, chromium, callback):  # noqa: F811
    from requests_oauth2client import OAuth2Client

    base = live_server.base_url
    # testing=True only lets the library accept an http:// issuer (the local runner).
    rp = OAuth2Client.from_discovery_endpoint(base + "/.well-known/openid-configuration",
                                              issuer=base, client_id="console",
                                              client_secret="console-local-secret",
                                              redirect_uri=callback, testing=True)
    assert rp.id_token_signed_response_alg == "RS256"      # its default, untouched
    request = rp.authorization_request(scope="openid profile email", prompt="consent")
    back = browser_sign_in(chromium, str(request.uri), callback)
    token = rp.authorization_code(request.validate_callback(back))   # validates the ID token
    assert token.id_token is not None and token.id_token.alg == "RS256"
    assert token.id_token.audiences == ["console"]
    profile = rp.userinfo(token)
    assert profile["sub"] == token.id_token.subject and profile["email"] == "alice@example.com"


def test_pyoidc_signs_alice_in_and_reads_userinfo_with_its_defaults(live_server, chromium,
                                                                    callback):  # noqa: F811
    from oic.oic import Client
    from oic.oic.message import AuthorizationResponse, OpenIDSchema, RegistrationResponse
    from oic.utils.authn.client import CLIENT_AUTHN_METHOD

    base = live_server.base_url
    rp = Client(client_authn_method=CLIENT_AUTHN_METHOD)
    rp.provider_config(base)
    rp.store_registration_info(RegistrationResponse(
        client_id="console", client_secret="console-local-secret", redirect_uris=[callback]))
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    request = rp.construct_AuthorizationRequest(request_args={
        "client_id": "console", "response_type": "code", "scope": ["openid", "profile", "email"],
        "state": state, "nonce": nonce, "redirect_uri": callback, "prompt": "consent"})
    back = browser_sign_in(chromium, request.request(rp.authorization_endpoint), callback)
    answer = rp.parse_response(AuthorizationResponse, info=urlsplit(back).query,
                               sformat="urlencoded")
    assert answer["state"] == state
    tokens = rp.do_access_token_request(state=state, request_args={"code": answer["code"]},
                                        authn_method="client_secret_basic")
    id_token = tokens["id_token"]          # verified by pyoidc against the JWKS
    assert id_token["aud"] == ["console"] and id_token["nonce"] == nonce
    profile = rp.do_user_info_request(state=state)    # POST, token in the body: its default
    assert isinstance(profile, OpenIDSchema)
    assert profile["sub"] == id_token["sub"] and profile["email"] == "alice@example.com"
