"""Passkeys on the pages (SPEC §11) over the Chalice test client, with the software
authenticator playing the browser's WebAuthn part."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from chalicelib.models import user_id_for
from tests.api.helpers import seed
from tests.api.test_pages_tokens import Browser, csrf, sign_in
from tests.conftest import ISSUER
from tests.webauthn_support import SoftAuthenticator

ALICE = user_id_for("alice")


@pytest.fixture
def browser(client: Any, ctr: Any) -> Browser:
    seed(ctr)
    return Browser(client)


def passkey_csrf(page: Any) -> str:
    return re.search(r'data-csrf="([^"]+)"', page.body.decode()).group(1)


def add_passkey(browser: Browser, auth: SoftAuthenticator, name: str = "laptop") -> Any:
    page = browser.get("/account/security")
    token = csrf(page)
    options = browser.post("/account/passkeys/options", {"csrf": token})
    assert options.status_code == 200 and options.headers["Content-Type"] == "application/json"
    return browser.post("/account/passkeys", {"csrf": token, "name": name,
                                              "next": "/account/tokens",
                                              "credential": json.dumps(auth.create(options.body.decode()))})


def test_adding_a_passkey_keeps_the_sign_in_and_lists_it(browser, ctr):
    sign_in(browser)
    added = add_passkey(browser, SoftAuthenticator(ISSUER))
    # The first second factor: its ten recovery codes, shown once, then on to next.
    assert added.status_code == 200 and added.body.decode().count("<li>") >= 10
    assert b'href="/account/tokens"' in added.body
    second = add_passkey(browser, SoftAuthenticator(ISSUER), "phone")
    assert second.status_code == 303 and second.headers["Location"] == "/account/tokens"
    page = browser.get("/account/security")
    assert page.status_code == 200 and b"Signed in as" in page.body
    assert b"<td>laptop</td>" in page.body and b"<td>never</td>" in page.body
    from chalicelib.storage.sessions import session_from_item

    listed = next(s for s in ctr.sessions.list_for_user(ALICE) if s.kind == "web")
    session = session_from_item(ctr.sessions_repo.get_item(listed.id))
    assert session.amr == ("pwd", "hwk", "mfa")


def test_a_password_then_a_passkey_completes_the_sign_in(browser, ctr):
    auth = SoftAuthenticator(ISSUER)
    sign_in(browser)
    add_passkey(browser, auth)
    browser.jar.pop("tessera_web")
    sign_in(browser)
    step = browser.get("/account/tokens")
    assert b"Two-factor authentication" in step.body and b"Use a passkey" in step.body
    token = passkey_csrf(step)
    options = browser.post("/signin/passkey/options", {"csrf": token})
    assert json.loads(options.body)["allowCredentials"]
    done = browser.post("/signin/passkey", {"csrf": token, "next": "/account/tokens",
                                            "credential": json.dumps(auth.get(options.body.decode()))})
    assert done.status_code == 303 and done.headers["Location"] == "/account/tokens"
    assert b"Signed in as" in browser.get("/account/tokens").body


def test_a_passkey_alone_signs_in_and_logs_it(browser, ctr):
    auth = SoftAuthenticator(ISSUER, backup_eligible=True)
    sign_in(browser)
    add_passkey(browser, auth)
    browser.jar.pop("tessera_web")
    page = browser.get("/account/tokens")
    assert b'data-passkey="signin"' in page.body and b'data-next="/account/tokens"' in page.body
    token = passkey_csrf(page)
    options = browser.post("/signin/passkey/options", {"csrf": token})
    assert json.loads(options.body)["allowCredentials"] == []
    done = browser.post("/signin/passkey", {"csrf": token, "next": "//evil.test/x",
                                            "credential": json.dumps(auth.get(options.body.decode()))})
    assert done.status_code == 303 and done.headers["Location"] == "/account"   # safe_next
    assert b"Signed in as" in browser.get("/account/tokens").body
    events, _ = ctr.security_log.page(ALICE, kind="signin")
    assert events and events[0].detail["method"] == "swk"


def test_the_passkey_calls_need_the_pages_csrf_token(browser):
    browser.get("/account/tokens")
    assert browser.post("/signin/passkey/options", {"csrf": "forged"}).status_code == 403
    r = browser.post("/signin/passkey", {"csrf": "forged", "credential": "{}"})
    assert r.status_code == 403 and r.headers["Content-Type"].startswith("text/html")


def test_a_malformed_assertion_is_a_page_not_a_500(browser):
    token = csrf(browser.get("/account/tokens"))
    for credential in ("not json", "[]", json.dumps({"id": "x"})):
        r = browser.post("/signin/passkey", {"csrf": token, "credential": credential})
        assert r.status_code in (400, 403, 422), r.body
        assert r.headers["Content-Type"].startswith("text/html")


def test_adding_needs_a_finished_sign_in(browser):
    token = csrf(browser.get("/account/tokens"))
    assert browser.post("/account/passkeys/options", {"csrf": token}).status_code == 403


def test_removing_a_passkey_from_the_page(browser, ctr):
    sign_in(browser)
    add_passkey(browser, SoftAuthenticator(ISSUER))
    page = browser.get("/account/security")
    passkey_id = re.search(r'name="id" value="([^"]+)"', page.body.decode()).group(1)
    r = browser.post("/account/passkeys/remove", {"csrf": csrf(page), "id": passkey_id,
                                                  "next": "/account/security"})
    assert r.status_code == 303
    assert not ctr.users.get(ALICE).second_factors.passkeys


def test_the_authorize_sign_in_offers_a_passkey_that_comes_back_to_the_request(client, ctr,
                                                                                 browser):
    ctr.identities.create_client("web-app", public=True, grant_types=["authorization_code"],
                                 scopes=["openid"], redirect_uris=["https://app.test/cb"])
    page = browser.get("/oauth/authorize?response_type=code&client_id=web-app&scope=openid"
                       "&redirect_uri=https%3A%2F%2Fapp.test%2Fcb&state=s1"
                       "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
                       "&code_challenge_method=S256")
    assert page.status_code == 200, page.body
    next_path = re.search(r'data-next="([^"]+)"', page.body.decode()).group(1)
    assert next_path.startswith("/oauth/authorize?") and "state=s1" in next_path
    assert "connect-src 'self'" in page.headers["Content-Security-Policy"]
