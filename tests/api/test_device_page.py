"""The /device verification page (RFC 8628 §3.3) through chalice.test.Client."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from chalicelib.config import Settings
from tests.api.helpers import CLI, body, form, seed
from tests.conftest import TEST_SCRYPT_LOG_N

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class Browser:
    """Keeps cookies between requests, as a browser would."""

    def __init__(self, client):
        self.client = client
        self.jar: dict[str, str] = {}
        self.last = None

    def _remember(self, response):
        cookies = response.headers.get("Set-Cookie") or response.headers.get("set-cookie") or ""
        for line in _cookie_lines(cookies):
            name, _, rest = line.partition("=")
            self.jar[name.strip()] = rest.split(";", 1)[0]
        self.last = response
        return response

    def _cookie_header(self):
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.jar.items())} if self.jar else {}

    def get(self, path):
        return self._remember(self.client.http.get(path, headers=self._cookie_header()))

    def post(self, path="/device", csrf=None, **fields):
        if csrf is None:
            csrf = csrf_of(self.last)
        data = urlencode({"csrf": csrf, **fields}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **self._cookie_header()}
        return self._remember(self.client.http.post(path, body=data, headers=headers))


def _cookie_lines(value):
    # chalice.test hands multi-value headers back as a list.
    return list(value) if isinstance(value, list) else [value] if value else []


def text(response):
    return response.body.decode() if isinstance(response.body, bytes) else response.body


def csrf_of(response):
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', text(response))
    assert match, text(response)
    return match.group(1)


@pytest.fixture
def started(client, ctr):
    seed(ctr)
    response = form(client, "/oauth/device_authorization", client_id=CLI,
                    scope="openid profile", headers={"User-Agent": "tessera-cli/1.0"})
    return body(response)


def poll(client, device_code):
    return form(client, "/oauth/token", grant_type=DEVICE_GRANT, client_id=CLI,
                device_code=device_code)


def sign_in_and_continue(browser, user_code, username="alice", password="password4alice"):
    browser.get("/device")
    return browser.post(user_code=user_code, username=username, password=password,
                        action="continue")


def test_page_asks_for_the_code_and_a_sign_in(client, started):
    page = client.http.get("/device")
    assert page.status_code == 200
    html = text(page)
    assert 'name="user_code"' in html and 'name="username"' in html and 'type="password"' in html
    assert '<label for="user_code">' in html and '<label for="password">' in html
    assert "<script" not in html


def test_page_sends_strict_security_headers(client, started):
    headers = client.http.get("/device").headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "form-action 'self'" in csp and "base-uri 'none'" in csp
    assert "script-src" not in csp and "unsafe-inline" not in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Content-Type"].startswith("text/html")


def test_style_nonce_matches_the_policy(client, started):
    page = client.http.get("/device")
    nonce = re.search(r"'nonce-([^']+)'", page.headers["Content-Security-Policy"]).group(1)
    assert f'<style nonce="{nonce}">' in text(page)


@pytest.mark.parametrize("settings", [Settings(issuer="https://api.example.com/dev",
                                                table_prefix="test-",
                                                keys_secret_name="test/signing-keys", scrypt_log_n=TEST_SCRYPT_LOG_N)])
def test_forms_post_under_the_stage_path(client, started):
    # Behind an API Gateway stage the service lives under /dev: so must the form.
    html = text(client.http.get("/device"))
    assert 'action="/dev/device"' in html and 'action="/device"' not in html


def test_prefilled_code_asks_the_person_to_check_it(client, started):
    page = client.http.get(f"/device?user_code={started['user_code']}")
    html = text(page)
    assert f'value="{started["user_code"]}"' in html
    assert "matches the one shown on your device" in html


def test_sign_in_shows_client_scopes_and_where_the_device_started(client, started):
    browser = Browser(client)
    page = sign_in_and_continue(browser, started["user_code"].lower().replace("-", " "))
    assert page.status_code == 200, text(page)
    html = text(page)
    assert CLI in html and "(openid)" in html and "(profile)" in html
    assert "tessera-cli/1.0" in html and "127.0.0.1" in html
    assert started["user_code"] in html and 'value="approve"' in html and 'value="deny"' in html


def test_sign_in_cookie_is_httponly_lax_and_secure(client, started):
    browser = Browser(client)
    page = sign_in_and_continue(browser, started["user_code"])
    cookies = _cookie_lines(page.headers["Set-Cookie"])
    web = next(c for c in cookies if c.startswith("tessera_web="))
    assert "HttpOnly" in web and "SameSite=Lax" in web and "Secure" in web and "Path=/" in web
    assert web.split(";")[0].split("=", 1)[1].startswith("tsb_")


def test_approve_gives_the_device_its_tokens(client, ctr, started):
    browser = Browser(client)
    sign_in_and_continue(browser, started["user_code"])
    result = browser.post(user_code=started["user_code"], action="approve")
    assert result.status_code == 200 and "Device approved" in text(result)
    response = poll(client, started["device_code"])
    assert response.status_code == 200 and body(response)["scope"] == "openid profile"


def test_deny_gives_the_device_access_denied(client, started):
    browser = Browser(client)
    sign_in_and_continue(browser, started["user_code"])
    result = browser.post(user_code=started["user_code"], action="deny")
    assert result.status_code == 200 and "Request denied" in text(result)
    assert body(poll(client, started["device_code"]))["error"] == "access_denied"


def test_a_signed_in_browser_does_not_sign_in_again(client, ctr, started):
    browser = Browser(client)
    sign_in_and_continue(browser, "BCDF-GHJK")   # signs in; the code is wrong
    page = browser.get("/device")
    assert 'name="password"' not in text(page) and "Signed in as <strong>alice</strong>" in text(page)
    page = browser.post(user_code=started["user_code"], action="continue")
    assert page.status_code == 200 and 'value="approve"' in text(page)


def test_post_without_the_csrf_token_is_refused(client, ctr, started):
    browser = Browser(client)
    sign_in_and_continue(browser, started["user_code"])
    forged = browser.post(csrf="", user_code=started["user_code"], action="approve")
    assert forged.status_code == 403 and "text/html" in forged.headers["Content-Type"]
    assert body(poll(client, started["device_code"]))["error"] == "authorization_pending"


def test_csrf_token_of_another_browser_is_refused(client, ctr, started):
    attacker, victim = Browser(client), Browser(client)
    attacker.get("/device")
    token = csrf_of(attacker.last)
    sign_in_and_continue(victim, started["user_code"])
    forged = victim.post(csrf=token, user_code=started["user_code"], action="approve")
    assert forged.status_code == 403
    assert body(poll(client, started["device_code"]))["error"] == "authorization_pending"


def test_csrf_token_from_before_sign_in_no_longer_works_after(client, started):
    browser = Browser(client)
    browser.get("/device")
    anonymous_token = csrf_of(browser.last)
    sign_in_and_continue(browser, started["user_code"])
    forged = browser.post(csrf=anonymous_token, user_code=started["user_code"], action="approve")
    assert forged.status_code == 403


def test_wrong_password_shows_the_form_again(client, started):
    browser = Browser(client)
    page = sign_in_and_continue(browser, started["user_code"], password="wrong-password")
    assert page.status_code == 401 and "Invalid username or password" in text(page)
    assert not any(c.startswith("tessera_web=") for c in _cookie_lines(page.headers.get("Set-Cookie")))


def test_approve_without_a_sign_in_approves_nothing(client, started):
    browser = Browser(client)
    browser.get("/device")
    page = browser.post(user_code=started["user_code"], action="approve")
    assert page.status_code == 401
    assert body(poll(client, started["device_code"]))["error"] == "authorization_pending"


def test_malformed_and_look_alike_codes_are_refused(client, started):
    browser = Browser(client)
    look_alike = started["user_code"][:-1] + "Т"   # Cyrillic Te
    page = sign_in_and_continue(browser, look_alike)
    assert page.status_code == 400 and "8 letters" in text(page)


def test_full_width_code_is_accepted(client, started):
    browser = Browser(client)
    wide = "".join(chr(ord(ch) + 0xFEE0) for ch in started["user_code"])
    page = sign_in_and_continue(browser, wide)
    assert page.status_code == 200 and 'value="approve"' in text(page)


def test_wrong_codes_are_capped_per_source(client, ctr, started):
    browser = Browser(client)
    page = sign_in_and_continue(browser, "BCDF-GHJK")
    assert page.status_code == 400 and "not valid" in text(page)
    for guess in ["BCDF-GHJL", "BCDF-GHJM", "BCDF-GHJN", "BCDF-GHJP"]:
        assert browser.post(user_code=guess, action="continue").status_code == 400
    blocked = browser.post(user_code=started["user_code"], action="continue")
    assert blocked.status_code == 429 and "Too many wrong codes" in text(blocked)
    assert "Retry-After" in blocked.headers and "text/html" in blocked.headers["Content-Type"]


def miss(ctr, flow, source, user_id, code, *, issued=False):
    """One wrong entry of ``code`` as the page makes it; True when it was refused (429)."""
    items = ctr.batch_get({"throttle": flow.guess_keys(source, user_id, code)})["throttle"]
    counters = flow.guess_counters(source, user_id, code, items)
    if flow.guessing_blocked(counters):
        return True
    flow.record_wrong_code(counters, code_issued=issued)
    return False


def test_misses_on_an_issued_code_are_capped_per_code(client, ctr, clock, started):
    # Five sources and users each try the same (now expired) issued code once:
    # a sixth is refused it.
    flow, code = ctr.device_flow, started["user_code"].replace("-", "")
    clock.advance(ctr.settings.device_code_seconds + 1)
    for i in range(5):
        assert not miss(ctr, flow, f"10.0.0.{i}", f"user{i}", code, issued=True)
    assert miss(ctr, flow, "10.9.9.9", "user9", code, issued=True)


def test_misses_on_a_code_never_issued_do_not_block_it(client, ctr, started):
    flow = ctr.device_flow
    for i in range(8):
        assert not miss(ctr, flow, f"10.0.0.{i}", f"user{i}", "BCDFGHJK")
    ctr.device_flow.user_codes = lambda: "BCDFGHJK"
    issued = body(form(client, "/oauth/device_authorization", client_id=CLI))
    assert issued["user_code"] == "BCDF-GHJK"
    page = sign_in_and_continue(Browser(client), issued["user_code"])
    assert page.status_code == 200 and 'value="approve"' in text(page)


def test_wrong_codes_are_capped_per_signed_in_user(client, ctr):
    # One account guessing from many sources.
    flow = ctr.device_flow
    guesses = ["BCDFGHJK", "BCDFGHJL", "BCDFGHJM", "BCDFGHJN", "BCDFGHJP"]
    for i, guess in enumerate(guesses):
        assert not miss(ctr, flow, f"10.0.0.{i}", "mallory", guess)
    assert miss(ctr, flow, "10.0.0.99", "mallory", "BCDFGHJQ")
    assert not miss(ctr, flow, "10.0.0.99", "someone-else", "BCDFGHJQ")


def test_wrong_codes_are_capped_over_all_callers(ctr, clock, settings):
    # Many accounts from many sources: the global budget ends the search.
    from dataclasses import replace

    from chalicelib.services.device_flow import DeviceFlow

    flow = DeviceFlow(ctr.devices_repo, clock, replace(settings, user_code_global_misses=20),
                      ctr.throttle)
    codes = [f"BCDFGH{a}{b}" for a in "JKLM" for b in "BCDFG"]
    for i, code in enumerate(codes):
        assert not miss(ctr, flow, f"10.0.{i}.1", f"user{i}", code)
    assert miss(ctr, flow, "10.9.9.9", "fresh-user", "LMNPQRST")
    clock.advance(settings.login_window_seconds)
    assert not miss(ctr, flow, "10.9.9.9", "fresh-user", "LMNPQRST")


def test_a_code_cap_lasts_its_full_term_past_the_window(client, ctr, clock):
    flow, start = ctr.device_flow, clock.now()
    assert not miss(ctr, flow, "10.0.0.1", "mallory", "BCDFGHJK")
    clock.t = start + ctr.settings.login_window_seconds - 1
    for guess in ["BCDFGHJL", "BCDFGHJM", "BCDFGHJN", "BCDFGHJP"]:   # the fifth miss locks
        assert not miss(ctr, flow, "10.0.0.1", "mallory", guess)
    clock.advance(1)   # the window that counted them has ended
    assert miss(ctr, flow, "10.0.0.1", "mallory", "BCDFGHJQ")
    clock.advance(ctr.settings.login_window_seconds - 1)
    assert not miss(ctr, flow, "10.0.0.1", "mallory", "BCDFGHJQ")


def test_the_cap_lifts_after_the_window(client, ctr, clock, started):
    browser = Browser(client)
    sign_in_and_continue(browser, "BCDF-GHJK")
    for guess in ["BCDF-GHJL", "BCDF-GHJM", "BCDF-GHJN", "BCDF-GHJP"]:
        browser.post(user_code=guess, action="continue")
    assert browser.post(user_code="BCDF-GHJQ", action="continue").status_code == 429
    clock.advance(901)
    fresh = body(form(client, "/oauth/device_authorization", client_id=CLI))
    assert sign_in_and_continue(Browser(client), fresh["user_code"]).status_code == 200


def test_an_expired_code_cannot_be_approved(client, clock, started):
    browser = Browser(client)
    sign_in_and_continue(browser, started["user_code"])
    clock.advance(301)
    page = browser.post(user_code=started["user_code"], action="approve")
    assert page.status_code == 400 and "not valid or has expired" in text(page)


def test_a_used_code_shows_a_clear_page(client, started):
    browser = Browser(client)
    token = csrf_of(sign_in_and_continue(browser, started["user_code"]))
    browser.post(user_code=started["user_code"], action="approve")
    again = browser.post(csrf=token, user_code=started["user_code"], action="deny")
    assert again.status_code == 409 and "already" in text(again)
    assert poll(client, started["device_code"]).status_code == 200


def test_page_errors_are_html_not_json(client, started):
    response = client.http.post("/device", body=b"{}", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.headers["Content-Type"].startswith("text/html")
    repeated = client.http.get("/device?user_code=A&user_code=B")
    assert repeated.status_code == 400 and repeated.headers["Content-Type"].startswith("text/html")


def test_web_session_is_listed_and_ends_like_any_session(client, ctr, started):
    browser = Browser(client)
    sign_in_and_continue(browser, started["user_code"])
    alice = ctr.identities.find_user("alice")
    sessions = ctr.sessions.list_for_user(alice.id)
    assert [s.kind for s in sessions] == ["web"]
    ctr.sessions.end(sessions[0].id)
    page = browser.get("/device")
    assert 'name="password"' in text(page)
