"""The authorization code flow (RFC 6749 §4.1, RFC 7636, OIDC Core §3.1) through
chalice.test.Client: the authorize pages, the code grant, consents, RP logout."""

from __future__ import annotations

import base64
import hashlib
import html as htmllib
import re
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest

from tests.api.helpers import basic, bearer, body, form, seed
from tests.api.test_device_page import Browser, text
from tests.conftest import ISSUER

WEB, WEB_SECRET, WEB_CB = "webapp", "webapp-secret-value", "https://app.example/cb"
NATIVE = "native"
VERIFIER = "v" * 43 + "-._~" + "x" * 10


def challenge(verifier: str = VERIFIER) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@pytest.fixture
def clients(client, ctr):
    seed(ctr)
    ids = ctr.identities
    ids.create_client(WEB, secret=WEB_SECRET, name="Web App",
                      grant_types=["authorization_code", "refresh_token"],
                      scopes=["openid", "profile", "email", "api:read", "sessions:manage"],
                      redirect_uris=[WEB_CB, "https://app.example/other"],
                      post_logout_redirect_uris=["https://app.example/bye"])
    ids.create_client(NATIVE, public=True, name="Native App",
                      grant_types=["authorization_code", "refresh_token"],
                      scopes=["openid", "profile"], redirect_uris=["http://127.0.0.1/cb"])
    ids.create_client("no-code", secret="no-code-secret", grant_types=["refresh_token"],
                      scopes=["openid"], redirect_uris=[WEB_CB])
    return client


def authorize_path(**params: str) -> str:
    base = {"response_type": "code", "client_id": WEB, "redirect_uri": WEB_CB,
            "scope": "openid profile email", "state": "st-1", "nonce": "n-0S6",
            "code_challenge": challenge(), "code_challenge_method": "S256"}
    base.update(params)
    return "/oauth/authorize?" + urlencode({k: v for k, v in base.items() if v is not None})


def hidden(response) -> dict[str, str]:
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', text(response))
    return {htmllib.unescape(k): htmllib.unescape(v) for k, v in found if k != "csrf"}


def location(response) -> tuple[str, dict[str, str]]:
    assert response.status_code in (302, 303), (response.status_code, text(response))
    url = response.headers["Location"]
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", {k: v[0] for k, v in parse_qs(parts.query).items()}


def sign_in(browser: Browser, page, username="alice", password="password4alice"):
    return browser.post("/oauth/authorize", **hidden(page), action="signin", username=username,
                        password=password)


def approve(browser: Browser, page, action="approve"):
    return browser.post("/oauth/authorize", **hidden(page), action=action)


def get_code(browser: Browser, **params: str) -> dict[str, str]:
    """Sign in (if needed), approve (if asked): the authorization response's parameters."""
    page = browser.get(authorize_path(**params))
    if page.status_code == 200 and 'name="password"' in text(page):
        page = sign_in(browser, page)
    if page.status_code == 200 and 'value="approve"' in text(page):
        page = approve(browser, page)
    return location(page)[1]


def redeem(client, code: str, *, verifier: str | None = VERIFIER, redirect_uri: str | None = WEB_CB,
           client_id: str = WEB, secret: str | None = WEB_SECRET):
    params = {"grant_type": "authorization_code", "code": code}
    if verifier is not None:
        params["code_verifier"] = verifier
    if redirect_uri is not None:
        params["redirect_uri"] = redirect_uri
    headers = basic(client_id, secret) if secret else None
    if not secret:
        params["client_id"] = client_id
    return form(client, "/oauth/token", headers=headers, **params)


def keys(ctr):
    return jwt.PyJWKSet.from_json(ctr.keyring.jwks_json())


def verify_id_token(ctr, token: str, audience: str = WEB) -> dict:
    header = jwt.get_unverified_header(token)
    key = keys(ctr)[header["kid"]]
    return jwt.decode(token, key.key, algorithms=[header["alg"]], audience=audience, issuer=ISSUER,
                      options={"verify_exp": False, "verify_iat": False})


# -- the happy path --------------------------------------------------------------------

def test_code_flow_signs_in_consents_and_returns_code_state_and_iss(clients, ctr):
    browser = Browser(clients)
    page = browser.get(authorize_path())
    assert page.status_code == 200 and "Sign in to continue to Web App" in text(page)
    page = sign_in(browser, page)
    html = text(page)
    assert page.status_code == 200 and "Allow Web App to access your account?" in html
    assert "See your email address" in html and "(profile)" in html
    assert "form-action 'self' https://app.example" in page.headers["Content-Security-Policy"]
    where, answer = location(approve(browser, page))
    assert where == WEB_CB
    assert answer["code"].startswith("tsc_") and answer["state"] == "st-1"
    assert answer["iss"] == ISSUER   # RFC 9207


def test_code_redeems_for_tokens_whose_id_token_carries_nonce_at_hash_azp_sid(clients, ctr):
    answer = get_code(Browser(clients))
    response = redeem(clients, answer["code"])
    assert response.status_code == 200, response.body
    got = body(response)
    assert got["refresh_token"].startswith("tsr_") and got["scope"] == "openid profile email"
    claims = verify_id_token(ctr, got["id_token"])
    assert claims["nonce"] == "n-0S6" and claims["azp"] == WEB and claims["sub"]
    half = hashlib.sha256(got["access_token"].encode()).digest()[:16]
    assert claims["at_hash"] == base64.urlsafe_b64encode(half).rstrip(b"=").decode()
    assert claims["auth_time"] == ctr.clock.now()
    assert claims["sid"] == jwt.decode(got["access_token"], options={"verify_signature": False})["sid"]
    assert claims["email"] == "alice@example.com" and claims["preferred_username"] == "alice"
    info = clients.http.get("/oauth/userinfo", headers=bearer(got["access_token"]))
    assert info.status_code == 200 and body(info)["sub"] == claims["sub"]


def test_the_session_refreshes_like_any_other(clients, ctr):
    got = body(redeem(clients, get_code(Browser(clients))["code"]))
    again = form(clients, "/oauth/token", headers=basic(WEB, WEB_SECRET), grant_type="refresh_token",
                 refresh_token=got["refresh_token"])
    assert again.status_code == 200, again.body


def test_a_refresh_answers_an_id_token_of_the_same_sign_in_without_nonce(clients, ctr):
    # OIDC Core §12.2: same iss, sub, aud, azp, auth_time; a new iat; no nonce.
    got = body(redeem(clients, get_code(Browser(clients))["code"]))
    first = verify_id_token(ctr, got["id_token"])
    ctr.clock.advance(60)
    again = body(form(clients, "/oauth/token", headers=basic(WEB, WEB_SECRET),
                      grant_type="refresh_token", refresh_token=got["refresh_token"]))
    assert jwt.get_unverified_header(again["id_token"])["alg"] == "RS256"
    claims = verify_id_token(ctr, again["id_token"])
    for same in ("iss", "sub", "aud", "azp", "auth_time", "sid", "amr", "acr"):
        assert claims[same] == first[same], same
    assert claims["iat"] == first["iat"] + 60 and "nonce" not in claims
    half = hashlib.sha256(again["access_token"].encode()).digest()[:16]
    assert claims["at_hash"] == base64.urlsafe_b64encode(half).rstrip(b"=").decode()
    # the profile is at userinfo: a refresh reads nothing but the session
    assert "email" not in claims and "preferred_username" not in claims


def test_remembered_consent_skips_the_consent_page(clients, ctr):
    browser = Browser(clients)
    get_code(browser)
    where, answer = location(browser.get(authorize_path(state="second")))
    assert where == WEB_CB and answer["state"] == "second" and answer["code"].startswith("tsc_")


def test_a_wider_request_asks_again_and_prompt_consent_always_asks(clients, ctr):
    browser = Browser(clients)
    get_code(browser, scope="openid")
    page = browser.get(authorize_path(scope="openid email"))
    assert page.status_code == 200 and 'value="approve"' in text(page)
    approve(browser, page)
    assert location(browser.get(authorize_path(scope="email openid")))[1]["code"]
    page = browser.get(authorize_path(scope="openid", prompt="consent"))
    assert page.status_code == 200 and 'value="approve"' in text(page)


def test_a_signed_in_browser_is_reused_across_pages(clients, ctr):
    browser = Browser(clients)
    page = browser.get("/account/tokens")
    page = browser.post("/account/signin", username="alice", password="password4alice")
    page = browser.get(authorize_path())
    assert page.status_code == 200 and 'value="approve"' in text(page)
    assert 'name="password"' not in text(page)


def native_path(**params: str) -> str:
    return authorize_path(**{"client_id": NATIVE, "redirect_uri": "http://127.0.0.1:5000/cb",
                             "scope": "openid", **params})


def test_a_public_client_with_a_loopback_redirect_asks_for_consent_every_time(clients, ctr):
    # RFC 6749 §10.2: anyone can send a public client's id; a loopback redirect
    # proves nothing, so the person is asked again and prompt=none cannot be silent.
    browser = Browser(clients)
    page = sign_in(browser, browser.get(native_path()))
    assert location(approve(browser, page))[1]["code"]
    assert location(browser.get(native_path(prompt="none")))[1]["error"] == "consent_required"
    page = browser.get(native_path(state="second"))
    assert page.status_code == 200 and 'value="approve"' in text(page)
    assert location(approve(browser, page))[1]["code"]   # an approval still answers with a code


def test_remember_consent_is_a_client_setting(clients, ctr):
    ids = ctr.identities
    ids.create_client("native-remembers", public=True, remember_consent=True,
                      grant_types=["authorization_code"], scopes=["openid"],
                      redirect_uris=["http://127.0.0.1/cb"])
    ids.create_client("spa", public=True, grant_types=["authorization_code"], scopes=["openid"],
                      redirect_uris=["https://spa.example/cb"])
    ids.create_client("web-asks", secret="web-asks-secret", remember_consent=False,
                      grant_types=["authorization_code"], scopes=["openid"],
                      redirect_uris=[WEB_CB])
    browser = Browser(clients)
    remembered = {"native-remembers": "http://127.0.0.1:5000/cb", "spa": "https://spa.example/cb"}
    for client_id, uri in {**remembered, "web-asks": WEB_CB}.items():
        get_code(browser, client_id=client_id, redirect_uri=uri, scope="openid")
    for client_id, uri in remembered.items():     # set, or a claimed https redirect URI
        assert location(browser.get(authorize_path(client_id=client_id, redirect_uri=uri,
                                                   scope="openid", prompt="none")))[1]["code"]
    asked = browser.get(authorize_path(client_id="web-asks", scope="openid"))
    assert asked.status_code == 200 and 'value="approve"' in text(asked)


def test_login_hint_prefills_the_username(clients, ctr):
    page = clients.http.get(authorize_path(login_hint="alice"))
    assert 'name="username" value="alice"' in text(page)


def test_wrong_password_shows_the_sign_in_page_again(clients, ctr):
    browser = Browser(clients)
    page = sign_in(browser, browser.get(authorize_path()), password="wrong-password")
    assert page.status_code == 403 and "Sign in to continue" in text(page)


def test_approve_without_the_csrf_token_is_refused(clients, ctr):
    browser = Browser(clients)
    page = sign_in(browser, browser.get(authorize_path()))
    refused = browser.post("/oauth/authorize", csrf="0" * 64, **hidden(page), action="approve")
    assert refused.status_code == 403 and "Location" not in refused.headers


def test_a_post_authorization_request_works_like_a_get(clients, ctr):
    params = dict(parse_qs(urlsplit(authorize_path()).query))
    data = urlencode({k: v[0] for k, v in params.items()}).encode()
    page = clients.http.post("/oauth/authorize", body=data,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert page.status_code == 200 and "Sign in to continue to Web App" in text(page)


# -- prompt and max_age (OIDC Core §3.1.2.1) ---------------------------------------------

def test_prompt_none_without_a_sign_in_is_login_required(clients, ctr):
    where, answer = location(clients.http.get(authorize_path(prompt="none")))
    assert where == WEB_CB and answer["error"] == "login_required" and answer["state"] == "st-1"


def test_prompt_none_without_consent_is_consent_required(clients, ctr):
    browser = Browser(clients)
    browser.get("/account/tokens")
    browser.post("/account/signin", username="alice", password="password4alice")
    answer = location(browser.get(authorize_path(prompt="none")))[1]
    assert answer["error"] == "consent_required"


def test_prompt_none_with_consent_answers_at_once(clients, ctr):
    browser = Browser(clients)
    get_code(browser)
    assert location(browser.get(authorize_path(prompt="none")))[1]["code"]


def test_prompt_login_asks_a_signed_in_browser_to_sign_in_again(clients, ctr):
    browser = Browser(clients)
    get_code(browser)
    page = browser.get(authorize_path(prompt="login"))
    assert page.status_code == 200 and 'name="password"' in text(page)
    where, answer = location(sign_in(browser, page))   # consent remembered: straight back
    assert where == WEB_CB and answer["code"]


def test_an_older_sign_in_than_max_age_asks_again(clients, ctr):
    browser = Browser(clients)
    get_code(browser)
    ctr.clock.advance(120)
    page = browser.get(authorize_path(max_age="60"))
    assert page.status_code == 200 and 'name="password"' in text(page)
    assert location(browser.get(authorize_path(max_age="600")))[1]["code"]


def test_max_age_zero_still_completes_after_signing_in(clients, ctr):
    browser = Browser(clients)
    page = sign_in(browser, browser.get(authorize_path(max_age="0")))
    assert location(approve(browser, page))[1]["code"]


def test_max_age_zero_asks_a_browser_signed_in_this_very_second_to_sign_in_again(clients, ctr):
    # OIDC Core §3.1.2.1: max_age=0 is prompt=login; the age is compared with >=.
    browser = Browser(clients)
    get_code(browser)
    page = browser.get(authorize_path(max_age="0"))
    assert page.status_code == 200 and 'name="password"' in text(page)
    ctr.clock.advance(5)
    where, answer = location(sign_in(browser, page))   # signed in again: straight back, no loop
    assert where == WEB_CB and answer["code"]
    claims = verify_id_token(ctr, body(redeem(clients, answer["code"]))["id_token"])
    assert claims["auth_time"] == ctr.clock.now()


def test_a_sign_in_exactly_max_age_old_asks_again(clients, ctr):
    browser = Browser(clients)
    get_code(browser)
    ctr.clock.advance(60)
    page = browser.get(authorize_path(max_age="60"))
    assert page.status_code == 200 and 'name="password"' in text(page)


def test_prompt_none_with_a_sign_in_too_old_for_max_age_is_login_required(clients, ctr):
    browser = Browser(clients)
    get_code(browser)
    assert location(browser.get(authorize_path(prompt="none", max_age="0")))[1]["error"] \
        == "login_required"
    ctr.clock.advance(61)
    assert location(browser.get(authorize_path(prompt="none", max_age="60")))[1]["error"] \
        == "login_required"


def test_deny_sends_access_denied(clients, ctr):
    browser = Browser(clients)
    page = sign_in(browser, browser.get(authorize_path()))
    where, answer = location(approve(browser, page, action="deny"))
    assert where == WEB_CB and answer["error"] == "access_denied" and answer["state"] == "st-1"


# -- errors before and after the redirect URI is validated (RFC 6749 §4.1.2.1) -----------

@pytest.mark.parametrize("params", [
    {"client_id": "nobody"}, {"client_id": ""}, {"redirect_uri": "https://evil.example/cb"},
    {"redirect_uri": WEB_CB + "/"}, {"redirect_uri": None},
])
def test_unknown_client_or_redirect_uri_gets_an_error_page_never_a_redirect(clients, params):
    page = clients.http.get(authorize_path(**params))
    assert page.status_code == 400 and "Location" not in page.headers
    assert page.headers["Content-Type"].startswith("text/html")


def test_the_only_registered_redirect_uri_may_be_omitted(clients, ctr):
    page = clients.http.get(authorize_path(client_id=NATIVE, redirect_uri=None,
                                           response_type="bogus"))
    where, answer = location(page)
    assert where == "http://127.0.0.1/cb" and answer["error"] == "unsupported_response_type"


@pytest.mark.parametrize("port", ["", ":8123", ":51000"])
def test_a_loopback_redirect_matches_on_any_port(clients, port):
    uri = f"http://127.0.0.1{port}/cb"
    page = clients.http.get(authorize_path(client_id=NATIVE, redirect_uri=uri,
                                           scope="openid profile"))
    assert page.status_code == 200 and "Native App" in text(page)


def test_a_loopback_redirect_must_match_its_path(clients):
    page = clients.http.get(authorize_path(client_id=NATIVE, redirect_uri="http://127.0.0.1:8/x"))
    assert page.status_code == 400


@pytest.mark.parametrize("params,error", [
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"response_type": None}, "invalid_request"),
    ({"scope": "openid tokens:manage"}, "invalid_scope"),
    ({"scope": "openid bad\\scope"}, "invalid_scope"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge_method": None}, "invalid_request"),
    ({"code_challenge": "short"}, "invalid_request"),
    ({"code_challenge": None}, "invalid_request"),
    ({"prompt": "none login"}, "invalid_request"),
    ({"prompt": "sometimes"}, "invalid_request"),
    ({"max_age": "-1"}, "invalid_request"),
    ({"response_mode": "fragment"}, "invalid_request"),
    ({"request": "eyJ..."}, "request_not_supported"),
    ({"request_uri": "https://x.example/r"}, "request_uri_not_supported"),
    ({"client_id": "no-code"}, "unauthorized_client"),
])
def test_errors_after_the_redirect_uri_is_validated_go_back_to_the_app(clients, params, error):
    where, answer = location(clients.http.get(authorize_path(**params)))
    assert where == WEB_CB and answer["error"] == error, answer
    assert answer["state"] == "st-1" and answer["iss"] == ISSUER and answer["error_description"]


def test_a_public_client_must_send_pkce(clients):
    answer = location(clients.http.get(authorize_path(
        client_id=NATIVE, redirect_uri="http://127.0.0.1/cb", scope="openid",
        code_challenge=None, code_challenge_method=None)))[1]
    assert answer["error"] == "invalid_request" and "PKCE" in answer["error_description"]


def test_a_confidential_client_may_omit_pkce(clients, ctr):
    code = get_code(Browser(clients), code_challenge=None, code_challenge_method=None)["code"]
    assert redeem(clients, code, verifier=None).status_code == 200


# -- the token request (RFC 6749 §4.1.3, §5.2; RFC 7636 §4.6) ------------------------------

def error_of(response) -> str:
    assert response.status_code in (400, 401), (response.status_code, response.body)
    return body(response)["error"]


def test_a_wrong_verifier_is_invalid_grant_and_leaves_the_code_usable(clients):
    code = get_code(Browser(clients))["code"]
    assert error_of(redeem(clients, code, verifier="w" * 43)) == "invalid_grant"
    assert redeem(clients, code).status_code == 200


def test_a_missing_verifier_is_invalid_grant(clients):
    code = get_code(Browser(clients))["code"]
    assert error_of(redeem(clients, code, verifier=None)) == "invalid_grant"


def test_a_malformed_verifier_is_invalid_request(clients):
    code = get_code(Browser(clients))["code"]
    assert error_of(redeem(clients, code, verifier="short")) == "invalid_request"


def test_a_verifier_without_a_challenge_is_invalid_grant(clients):
    code = get_code(Browser(clients), code_challenge=None, code_challenge_method=None)["code"]
    assert error_of(redeem(clients, code)) == "invalid_grant"


@pytest.mark.parametrize("uri", ["https://app.example/other", None, WEB_CB + "?x=1"])
def test_a_redirect_uri_unlike_the_requests_is_invalid_grant(clients, uri):
    code = get_code(Browser(clients))["code"]
    assert error_of(redeem(clients, code, redirect_uri=uri)) == "invalid_grant"


def test_a_code_expires_after_60_seconds(clients, ctr):
    code = get_code(Browser(clients))["code"]
    ctr.clock.advance(60)
    response = redeem(clients, code)
    assert error_of(response) == "invalid_grant" and "expired" in body(response)["error_description"]


def test_a_code_used_twice_is_refused_and_ends_the_first_uses_session(clients, ctr):
    code = get_code(Browser(clients))["code"]
    first = body(redeem(clients, code))
    second = redeem(clients, code)
    assert error_of(second) == "invalid_grant" and "already used" in body(second)["error_description"]
    refreshed = form(clients, "/oauth/token", headers=basic(WEB, WEB_SECRET),
                     grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert error_of(refreshed) == "invalid_grant"
    me = clients.http.get("/v1/me", headers=bearer(first["access_token"]))
    assert me.status_code == 401


def test_another_clients_code_is_invalid_grant_and_stays_with_its_client(clients, ctr):
    ctr.identities.create_client("other-web", secret="other-web-secret",
                                 grant_types=["authorization_code"], scopes=["openid"],
                                 redirect_uris=[WEB_CB])
    code = get_code(Browser(clients))["code"]
    assert error_of(redeem(clients, code, client_id="other-web",
                           secret="other-web-secret")) == "invalid_grant"
    assert redeem(clients, code).status_code == 200


@pytest.mark.parametrize("code", ["tsc_nonsense", "", "tsr_" + "a" * 44])
def test_a_malformed_or_missing_code_is_refused(clients, code):
    assert error_of(redeem(clients, code)) in ("invalid_grant", "invalid_request")


def test_an_unknown_well_formed_code_is_invalid_grant(clients):
    from chalicelib.security.opaque import AUTHORIZATION_CODE

    assert error_of(redeem(clients, AUTHORIZATION_CODE.mint())) == "invalid_grant"


def test_a_confidential_client_must_authenticate(clients):
    code = get_code(Browser(clients))["code"]
    assert error_of(redeem(clients, code, secret=None)) == "invalid_client"
    assert error_of(redeem(clients, code, secret="wrong")) == "invalid_client"


def test_a_client_without_the_grant_is_unauthorized_client(clients):
    response = redeem(clients, "tsc_x", client_id="no-code", secret="no-code-secret")
    assert error_of(response) == "unauthorized_client"


def test_a_public_client_redeems_with_its_verifier(clients, ctr):
    browser = Browser(clients)
    answer = get_code(browser, client_id=NATIVE, redirect_uri="http://127.0.0.1:49152/cb",
                      scope="openid profile")
    got = redeem(clients, answer["code"], client_id=NATIVE, secret=None,
                 redirect_uri="http://127.0.0.1:49152/cb")
    assert got.status_code == 200, got.body
    assert verify_id_token(ctr, body(got)["id_token"], audience=NATIVE)["nonce"] == "n-0S6"


def test_a_disabled_user_s_code_opens_no_session(clients, ctr):
    code = get_code(Browser(clients))["code"]
    ctr.identities.set_user_active("alice", False)
    assert error_of(redeem(clients, code)) == "invalid_grant"


# -- consents (SPEC §2) ------------------------------------------------------------------------

def api_token(clients) -> str:
    got = body(redeem(clients, get_code(Browser(clients), scope="openid sessions:manage")["code"]))
    return got["access_token"]


def test_consents_are_listed_with_the_app_name_and_scopes(clients, ctr):
    token = api_token(clients)
    listed = clients.http.get("/v1/consents", headers=bearer(token))
    assert listed.status_code == 200
    [consent] = body(listed)["consents"]
    assert consent["client_id"] == WEB and consent["client_name"] == "Web App"
    assert consent["scopes"] == ["openid", "sessions:manage"]
    assert consent["created_at"] == consent["updated_at"] == ctr.clock.now()


def test_consents_need_sessions_manage(clients):
    got = body(redeem(clients, get_code(Browser(clients))["code"]))
    assert clients.http.get("/v1/consents", headers=bearer(got["access_token"])).status_code == 403


def test_withdrawing_a_consent_ends_the_apps_sessions(clients, ctr):
    browser = Browser(clients)
    first = body(redeem(clients, get_code(browser, scope="openid sessions:manage")["code"]))
    code = location(browser.get(authorize_path(scope="openid")))[1]["code"]   # consent remembered
    gone = clients.http.delete(f"/v1/consents/{WEB}", headers=bearer(first["access_token"]))
    assert gone.status_code == 204
    refreshed = form(clients, "/oauth/token", headers=basic(WEB, WEB_SECRET),
                     grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert error_of(refreshed) == "invalid_grant"
    # The code issued before the withdrawal opens no session either.
    assert error_of(redeem(clients, code)) == "invalid_grant"
    # And the app must ask again.
    assert 'value="approve"' in text(browser.get(authorize_path()))


def test_withdrawing_an_unknown_consent_is_404(clients):
    token = api_token(clients)
    assert clients.http.delete("/v1/consents/nobody", headers=bearer(token)).status_code == 404


def test_the_consents_page_lists_and_withdraws(clients, ctr):
    browser = Browser(clients)
    got = body(redeem(clients, get_code(browser)["code"]))
    page = browser.get("/account/apps")
    assert page.status_code == 200 and "Web App" in text(page) and "(email)" in text(page)
    done = browser.post("/account/apps/withdraw", client_id=WEB)
    assert done.status_code == 200 and "no longer connected" in text(done)
    assert "No app has access" in text(done)
    refreshed = form(clients, "/oauth/token", headers=basic(WEB, WEB_SECRET),
                     grant_type="refresh_token", refresh_token=got["refresh_token"])
    assert error_of(refreshed) == "invalid_grant"


def test_the_consents_page_asks_a_stranger_to_sign_in(clients):
    browser = Browser(clients)
    page = browser.get("/account/apps")
    assert 'name="password"' in text(page)
    page = browser.post("/account/signin", username="alice", password="password4alice")
    assert page.status_code == 303


# -- RP-initiated logout ---------------------------------------------------------------------------

def test_logout_with_an_id_token_hint_ends_the_session_and_returns_to_the_app(clients, ctr):
    browser = Browser(clients)
    got = body(redeem(clients, get_code(browser)["code"]))
    ctr.clock.advance(3600)    # an expired hint is still accepted
    page = browser.get("/oauth/logout?" + urlencode({
        "id_token_hint": got["id_token"], "post_logout_redirect_uri": "https://app.example/bye",
        "state": "bye-1"}))
    where, answer = location(page)
    assert where == "https://app.example/bye" and answer == {"state": "bye-1"}
    refreshed = form(clients, "/oauth/token", headers=basic(WEB, WEB_SECRET),
                     grant_type="refresh_token", refresh_token=got["refresh_token"])
    assert error_of(refreshed) == "invalid_grant"
    assert 'name="password"' in text(browser.get(authorize_path()))   # the browser signed out


def test_logout_refuses_an_unregistered_return_address(clients, ctr):
    got = body(redeem(clients, get_code(Browser(clients))["code"]))
    page = clients.http.get("/oauth/logout?" + urlencode({
        "id_token_hint": got["id_token"], "post_logout_redirect_uri": "https://evil.example/"}))
    assert page.status_code == 400 and "Location" not in page.headers


def test_logout_refuses_a_forged_hint(clients, ctr):
    got = body(redeem(clients, get_code(Browser(clients))["code"]))
    forged = got["id_token"][:-4] + ("AAAA" if not got["id_token"].endswith("AAAA") else "BBBB")
    page = clients.http.get("/oauth/logout?" + urlencode({"id_token_hint": forged}))
    assert page.status_code == 400


def test_logout_without_a_hint_asks_the_person_to_confirm(clients, ctr):
    browser = Browser(clients)
    get_code(browser)
    page = browser.get("/oauth/logout")
    assert page.status_code == 200 and 'value="signout"' in text(page)
    done = browser.post("/oauth/logout", action="signout")
    assert done.status_code == 200 and "signed out" in text(done)
    assert 'name="password"' in text(browser.get(authorize_path()))


def signed_in_to_the_app(browser: Browser, username: str = "alice") -> dict:
    """Sign ``browser`` in as ``username`` through the code flow: the token response."""
    page = browser.get(authorize_path())
    if 'name="password"' in text(page):
        page = sign_in(browser, page, username=username, password=f"password4{username}")
    if page.status_code == 200 and 'value="approve"' in text(page):
        page = approve(browser, page)
    return body(redeem(browser.client, location(page)[1]["code"]))


def still_signed_in(browser: Browser) -> bool:
    return "code" in location(browser.get(authorize_path(prompt="none")))[1]


def test_logout_with_a_hint_from_another_browser_asks_before_signing_this_one_out(clients, ctr):
    # RP-Initiated Logout §2: the OP MUST ask when the hint is not the current sign-in's.
    elsewhere, here = Browser(clients), Browser(clients)
    other = signed_in_to_the_app(elsewhere)
    signed_in_to_the_app(here)
    page = here.get("/oauth/logout?" + urlencode({
        "id_token_hint": other["id_token"], "post_logout_redirect_uri": "https://app.example/bye",
        "state": "bye-2"}))
    assert page.status_code == 200 and 'value="signout"' in text(page)
    assert still_signed_in(here) and still_signed_in(elsewhere)
    # Confirmed: this browser signs out, then goes back to the app.
    page = here.get("/oauth/logout?" + urlencode({
        "id_token_hint": other["id_token"], "post_logout_redirect_uri": "https://app.example/bye",
        "state": "bye-2"}))
    done = here.post("/oauth/logout", **hidden(page), action="signout")
    where, answer = location(done)
    assert where == "https://app.example/bye" and answer == {"state": "bye-2"}
    assert not still_signed_in(here)


def test_logout_with_another_users_hint_asks_and_keeps_this_sign_in(clients, ctr):
    bobs, alices = Browser(clients), Browser(clients)
    bob = signed_in_to_the_app(bobs, "bob")
    signed_in_to_the_app(alices)
    page = alices.get("/oauth/logout?" + urlencode({"id_token_hint": bob["id_token"]}))
    assert page.status_code == 200 and 'value="signout"' in text(page)
    assert still_signed_in(alices)


def test_logout_with_an_expired_hint_of_an_older_sign_in_asks(clients, ctr):
    browser = Browser(clients)
    older = signed_in_to_the_app(browser)
    sign_in(browser, browser.get(authorize_path(prompt="login")))   # a new sign-in here
    ctr.clock.advance(3600)
    page = browser.get("/oauth/logout?" + urlencode({"id_token_hint": older["id_token"]}))
    assert page.status_code == 200 and 'value="signout"' in text(page)
    assert still_signed_in(browser)


def test_a_logout_confirmation_without_the_csrf_token_is_refused(clients, ctr):
    elsewhere, here = Browser(clients), Browser(clients)
    other = signed_in_to_the_app(elsewhere)
    signed_in_to_the_app(here)
    refused = here.post("/oauth/logout", csrf="0" * 64, id_token_hint=other["id_token"],
                        action="signout")
    assert refused.status_code == 403 and still_signed_in(here)


# -- discovery ---------------------------------------------------------------------------------------

def test_discovery_lists_the_authorization_endpoint_and_its_features(clients):
    doc = body(clients.http.get("/.well-known/openid-configuration"))
    assert doc["authorization_endpoint"] == f"{ISSUER}/oauth/authorize"
    assert doc["end_session_endpoint"] == f"{ISSUER}/oauth/logout"
    assert doc["response_types_supported"] == ["code"]
    assert doc["response_modes_supported"] == ["query"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert "authorization_code" in doc["grant_types_supported"]
    assert {"nonce", "at_hash", "azp"} <= set(doc["claims_supported"])


def test_signing_in_again_ends_the_older_browser_sign_in(clients, ctr):
    browser = Browser(clients)
    get_code(browser)
    older = browser.jar["tessera_web"]
    sign_in(browser, browser.get(authorize_path(prompt="login")))
    assert browser.jar["tessera_web"] != older
    from chalicelib.security.opaque import WEB_SESSION

    assert ctr.sessions_repo.get(WEB_SESSION.parse(older)) is None
