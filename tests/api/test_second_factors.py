"""Second factors at every sign-in path (SPEC §11), over the Chalice test client:
the /v1/mfa API, the browser sign-in's second step on every page, the password
grant's refusal, amr/acr in ID tokens, acr_values, a client's require_mfa, the
stage's TESSERA_REQUIRE_MFA, and the recent-sign-in rule for lasting grants."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from chalicelib.models import user_id_for
from chalicelib.services.second_factors import TOTP_STEP
from tests.api import test_authorization_code as code_flow_tests
from tests.api.helpers import CLI, bearer, form, login, refresh, seed, tokens
from tests.api.test_authorization_code import (
    authorize_path,
    location,
    redeem,
    verify_id_token,
)
from tests.api.test_device_page import Browser, text

SECOND_STEP = "Two-factor authentication"


def api(client: Any, method: str, path: str, token: str, payload: dict | None = None) -> Any:
    headers = {**bearer(token), "Content-Type": "application/json"}
    call = getattr(client.http, method)
    if payload is None and method in ("get", "delete"):
        return call(path, headers=bearer(token))
    return call(path, headers=headers, body=json.dumps(payload or {}).encode())


def enrol_totp(client: Any, clock: Any, username: str = "alice",
               password: str = "password4alice") -> tuple[str, list[str]]:
    """Enrol TOTP through the API with a fresh password sign-in; the secret and the codes."""
    token = tokens(client, username=username, password=password)["access_token"]
    begun = api(client, "post", "/v1/mfa/totp", token)
    assert begun.status_code == 201, begun.body
    shown = json.loads(begun.body)
    assert shown["otpauth_uri"].startswith("otpauth://totp/") and "secret=" in shown["otpauth_uri"]
    confirmed = api(client, "post", "/v1/mfa/totp/confirm", token,
                    {"code": pyotp.TOTP(shown["secret"]).at(clock.now())})
    assert confirmed.status_code == 200, confirmed.body
    clock.advance(TOTP_STEP)
    return shown["secret"], json.loads(confirmed.body)["recovery_codes"]


@pytest.fixture
def clients(client, ctr):
    """The web apps of the authorization code tests."""
    return code_flow_tests.clients.__wrapped__(client, ctr)


@pytest.fixture
def seeded(client, ctr):
    seed(ctr)
    return client


# -- the API ---------------------------------------------------------------------------

def test_totp_enrols_through_the_api_and_the_status_says_so(seeded, clock):
    _, codes = enrol_totp(seeded, clock)
    assert len(codes) == 10
    # The password grant no longer opens a session, so read the status with a PAT-less
    # path: the device flow is tested below; here the stored user says it.
    token = tokens(seeded, username="bob", password="password4bob")["access_token"]
    status = json.loads(api(seeded, "get", "/v1/mfa", token).body)
    assert status == {"totp": {"enrolled": False}, "passkeys": [],
                      "recovery_codes": {"remaining": 0}}


def test_a_malformed_code_is_422_and_a_wrong_one_403(seeded, clock, ctr):
    token = tokens(seeded)["access_token"]
    shown = json.loads(api(seeded, "post", "/v1/mfa/totp", token).body)
    wrong = api(seeded, "post", "/v1/mfa/totp/confirm", token, {"code": "12345x"})
    assert wrong.status_code == 422
    again = api(seeded, "post", "/v1/mfa/totp/confirm", token, {"code": "000000"})
    assert again.status_code == 403 and not ctr.users.get(user_id_for("alice")) \
        .second_factors.enrolled
    assert shown["secret"] not in str(ctr.table("users").get({"id": user_id_for("alice")}))


def test_mfa_calls_need_the_sessions_scope(seeded):
    token = tokens(seeded, scope="openid")["access_token"]
    assert api(seeded, "get", "/v1/mfa", token).status_code == 403


# -- the password grant --------------------------------------------------------------

def test_the_password_grant_refuses_a_user_with_a_second_factor(seeded, clock):
    enrol_totp(seeded, clock)
    refused = login(seeded)
    assert refused.status_code == 400
    answer = json.loads(refused.body)
    assert answer["error"] == "invalid_grant"
    assert "browser sign-in with a second factor is required" in answer["error_description"]
    # A wrong password still gets the one answer every bad credential gets.
    assert json.loads(login(seeded, password="nope").body)["error_description"] \
        == "Invalid username or password"


def test_a_client_that_requires_mfa_gets_no_password_sessions(seeded, ctr):
    ctr.identities.create_client("strict-cli", public=True, grant_types=["password"],
                                 scopes=["openid"], require_mfa=True)
    refused = login(seeded, client_id="strict-cli", scope="openid")
    assert json.loads(refused.body)["error"] == "invalid_grant"


# -- the browser sign-in's second step ------------------------------------------------------

def sign_in(browser: Browser, next_path: str) -> Any:
    """The console's password step (it comes back to ``next_path``)."""
    browser.get("/account")
    return browser.post("/account/signin", username="alice", password="password4alice",
                        next=next_path)


def second_step(browser: Browser, page: Any, code: str) -> Any:
    assert SECOND_STEP in text(page), text(page)
    nxt = re.search(r'name="next" value="([^"]*)"', text(page)).group(1)
    import html
    return browser.post("/signin/second-factor", code=code, next=html.unescape(nxt))


def test_the_tokens_page_asks_for_the_code_after_the_password(seeded, clock, ctr):
    secret, _ = enrol_totp(seeded, clock)
    browser = Browser(seeded)
    after_password = sign_in(browser, "/account/tokens")
    page = browser.get(urlsplit(after_password.headers["Location"]).path)
    assert SECOND_STEP in text(page) and "Personal access tokens" not in text(page)
    wrong = second_step(browser, page, "000000")
    assert wrong.status_code == 403 and SECOND_STEP in text(wrong)
    done = second_step(browser, wrong, pyotp.TOTP(secret).at(clock.now()))
    assert done.status_code == 303 and done.headers["Location"].endswith("/account/tokens")
    dashboard = browser.get("/account/tokens")
    assert "Personal access tokens" in text(dashboard) and SECOND_STEP not in text(dashboard)


def test_a_recovery_code_gets_in_once_and_lands_in_the_security_log(seeded, clock, ctr):
    _, codes = enrol_totp(seeded, clock)
    browser = Browser(seeded)
    sign_in(browser, "/account/tokens")
    done = second_step(browser, browser.get("/account/tokens"), codes[0])
    assert done.status_code == 303
    events, _ = ctr.security_log.page(user_id_for("alice"), kind="recovery_code_used")
    assert len(events) == 1
    other = Browser(seeded)
    sign_in(other, "/account/tokens")
    assert second_step(other, other.get("/account/tokens"), codes[0]).status_code == 403


def test_a_pending_sign_in_opens_no_page_and_cancel_signs_out(seeded, clock):
    enrol_totp(seeded, clock)
    browser = Browser(seeded)
    sign_in(browser, "/account/apps")
    page = browser.get("/account/apps")
    assert SECOND_STEP in text(page)
    assert SECOND_STEP in text(browser.get("/device"))
    nxt = re.search(r'name="next" value="([^"]*)"', text(page)).group(1)
    browser.post("/signin/cancel", next=nxt)
    assert 'name="password"' in text(browser.get("/account/apps"))


def test_next_never_leaves_the_site(seeded, clock):
    secret, _ = enrol_totp(seeded, clock)
    browser = Browser(seeded)
    sign_in(browser, "/account/tokens")
    browser.get("/account/tokens")
    done = browser.post("/signin/second-factor", code=pyotp.TOTP(secret).at(clock.now()),
                        next="//evil.example/x")
    assert done.status_code == 303 and "evil.example" not in done.headers["Location"]


# -- amr and acr, the authorization code flow ---------------------------------------------

def code_flow(client: Any, browser: Browser, clock: Any, secret: str | None, **params: str) -> Any:
    page = browser.get(authorize_path(**params))
    if 'name="password"' in text(page):
        page = browser.post("/oauth/authorize", **_hidden(page), action="signin",
                            username="alice", password="password4alice")
    if secret is not None and page.status_code == 200 and SECOND_STEP in text(page):
        done = second_step(browser, page, pyotp.TOTP(secret).at(clock.now()))
        page = browser.get(done.headers["Location"].removeprefix("http://localhost"))
    if page.status_code == 200 and 'value="approve"' in text(page):
        page = browser.post("/oauth/authorize", **_hidden(page), action="approve")
    return page


def _hidden(page: Any) -> dict[str, str]:
    import html
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', text(page))
    return {html.unescape(k): html.unescape(v) for k, v in found if k != "csrf"}


def id_token_of(client: Any, ctr: Any, page: Any) -> dict:
    _, answer = location(page)
    issued = json.loads(redeem(client, answer["code"]).body)
    return verify_id_token(ctr, issued["id_token"])


def test_an_id_token_says_the_person_signed_in_with_a_password_only(clients, ctr, clock):
    claims = id_token_of(clients, ctr, code_flow(clients, Browser(clients), clock, None))
    assert claims["amr"] == ["pwd"] and claims["acr"] == "urn:tessera:acr:pwd"


def test_an_id_token_says_the_person_used_a_second_factor(clients, ctr, clock):
    secret, _ = enrol_totp(clients, clock)
    claims = id_token_of(clients, ctr, code_flow(clients, Browser(clients), clock, secret))
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "urn:tessera:acr:mfa"


def test_acr_values_asking_for_mfa_sends_a_person_without_one_to_enrol(clients, ctr, clock):
    page = code_flow(clients, Browser(clients), clock, None, acr_values="urn:tessera:acr:mfa")
    assert page.status_code == 303
    parts = urlsplit(page.headers["Location"])
    assert parts.path.endswith("/account/security")
    assert parse_qs(parts.query)["next"][0].startswith("/oauth/authorize?")


def test_acr_values_with_prompt_none_and_no_second_factor_is_login_required(clients, ctr, clock):
    browser = Browser(clients)
    code_flow(clients, browser, clock, None)          # signed in with a password, consented
    page = browser.get(authorize_path(acr_values="urn:tessera:acr:mfa", prompt="none"))
    assert location(page)[1]["error"] == "login_required"


def test_acr_values_that_also_accept_a_password_are_served_as_signed_in(clients, ctr, clock):
    page = code_flow(clients, Browser(clients), clock, None,
                     acr_values="urn:tessera:acr:mfa urn:tessera:acr:pwd")
    assert id_token_of(clients, ctr, page)["acr"] == "urn:tessera:acr:pwd"


def test_discovery_names_amr_acr_and_the_levels(seeded):
    doc = json.loads(seeded.http.get("/.well-known/openid-configuration").body)
    assert {"amr", "acr"} <= set(doc["claims_supported"])
    assert doc["acr_values_supported"] == ["urn:tessera:acr:pwd", "urn:tessera:acr:mfa"]


# -- the device flow ---------------------------------------------------------------------

def test_a_device_login_demands_the_second_factor_and_its_session_says_so(seeded, ctr, clock):
    secret, _ = enrol_totp(seeded, clock)
    started = json.loads(form(seeded, "/oauth/device_authorization", client_id=CLI,
                              scope="openid sessions:manage").body)
    browser = Browser(seeded)
    browser.get("/device")
    page = browser.post("/device", user_code=started["user_code"], username="alice",
                        password="password4alice")
    assert SECOND_STEP in text(page)
    done = second_step(browser, page, pyotp.TOTP(secret).at(clock.now()))
    assert "/device?user_code=" in done.headers["Location"]
    page = browser.get(urlsplit(done.headers["Location"]).path + "?"
                       + urlsplit(done.headers["Location"]).query)
    approved = browser.post("/device", user_code=started["user_code"], action="approve")
    assert approved.status_code == 200, text(approved)
    polled = json.loads(form(seeded, "/oauth/token", client_id=CLI, device_code=started[
        "device_code"], grant_type="urn:ietf:params:oauth:grant-type:device_code").body)
    session = ctr.sessions_repo.get(json.loads(api(
        seeded, "get", "/v1/token-info", polled["access_token"]).body)["session_id"])
    assert session.amr == ("pwd", "otp", "mfa")
    # That sign-in used its second factor: a lasting grant needs no password now.
    made = api(seeded, "post", "/v1/mfa/recovery-codes", polled["access_token"])
    assert made.status_code == 201


# -- the recent-sign-in rule ----------------------------------------------------------------

def test_a_lasting_grant_with_the_password_alone_is_refused_once_a_factor_is_enrolled(
        seeded, ctr, clock):
    first = tokens(seeded)
    secret, _ = enrol_totp(seeded, clock)
    clock.advance(ctr.settings.recent_signin_seconds)
    old = json.loads(refresh(seeded, first["refresh_token"]).body)["access_token"]
    refused = api(seeded, "post", "/v1/tokens", old, {"description": "ci", "scopes": ["api:read"],
                                                      "password": "password4alice"})
    assert refused.status_code == 403 and "otp" in json.loads(refused.body)["detail"]
    made = api(seeded, "post", "/v1/tokens", old, {
        "description": "ci", "scopes": ["api:read"], "password": "password4alice",
        "otp": pyotp.TOTP(secret).at(clock.now())})
    assert made.status_code == 201, made.body


def test_a_recent_sign_in_without_the_second_factor_is_not_enough(seeded, ctr, clock):
    fresh = tokens(seeded)["access_token"]   # a password sign-in, before enrolling
    enrol_totp(seeded, clock)
    refused = api(seeded, "post", "/v1/tokens", fresh, {"description": "ci", "scopes": ["api:read"]})
    assert refused.status_code == 403


# -- the stage's requirement -----------------------------------------------------------------

@pytest.fixture
def strict(ctr, settings):
    ctr.settings = dataclasses.replace(settings, require_mfa=True, mfa_grace_days=14)
    return ctr


def test_a_required_second_factor_lets_people_in_during_the_grace_period(seeded, strict, clock):
    assert login(seeded).status_code == 200       # the password grant too, for now
    browser = Browser(seeded)
    sign_in(browser, "/account/tokens")
    assert "Personal access tokens" in text(browser.get("/account/tokens"))
    security = browser.get("/account/security")
    assert "will be required for every account" in text(security)


def test_after_the_grace_period_a_sign_in_can_only_enrol(seeded, strict, clock, ctr):
    browser = Browser(seeded)
    sign_in(browser, "/account/tokens")
    clock.advance(15 * 86400)
    again = Browser(seeded)
    sign_in(again, "/account/tokens")
    page = again.get("/account/tokens")
    assert page.status_code == 303 and "/account/security" in page.headers["Location"]
    assert json.loads(login(seeded).body)["error"] == "invalid_grant"
    security = again.get("/account/security")
    assert "required for every account" in text(security)
    begun = again.post("/account/security/totp", next="/account/tokens")
    secret = re.search(r'id="totp-secret" readonly value="([A-Z2-7]+)"', text(begun)).group(1)
    done = again.post("/account/security/totp/confirm", next="/account/tokens",
                      code=pyotp.TOTP(secret).at(clock.now()))
    assert done.status_code == 200 and len(re.findall(r"<li>[a-z2-7]{4}-", text(done))) == 10
    assert "Personal access tokens" in text(again.get("/account/tokens"))
