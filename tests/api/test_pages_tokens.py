"""The tokens page of the account console (/account/tokens) over the Chalice test client
(no browser); the old /tokens URLs redirect to it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.api.helpers import bearer, seed

ROOT = Path(__file__).resolve().parents[2]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Browser:
    """Just enough of a browser: a cookie jar and form posts."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.jar: dict[str, str] = {}

    def _remember(self, response: Any) -> Any:
        raw = response.headers.get("Set-Cookie") or []
        cookies = raw if isinstance(raw, list) else re.split(r",\s*(?=tessera_)", raw)
        for cookie in cookies:
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in cookie:
                self.jar.pop(name, None)
            else:
                self.jar[name] = value
        return response

    def headers(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.jar.items())} if self.jar else {}

    def get(self, path: str) -> Any:
        return self._remember(self.client.http.get(path, headers=self.headers()))

    def post(self, path: str, fields: list[tuple[str, str]] | dict[str, str]) -> Any:
        body = urlencode(fields).encode()
        return self._remember(self.client.http.post(path, body=body, headers={**FORM, **self.headers()}))


def csrf(page: Any) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page.body.decode()).group(1)


def secret(page: Any) -> str:
    return re.search(r'id="secret-token" readonly value="([^"]+)"', page.body.decode()).group(1)


@pytest.fixture
def browser(client: Any, ctr: Any) -> Browser:
    seed(ctr)
    return Browser(client)


def sign_in(browser: Browser, password: str = "password4alice") -> Any:
    page = browser.get("/account/tokens")
    return browser.post("/account/signin", {"csrf": csrf(page), "username": "alice", "password": password,
                                            "next": "/account/tokens"})


def test_sign_in_generate_use_and_remove(browser, client):
    page = browser.get("/account/tokens")
    assert page.status_code == 200 and b"Sign in" in page.body
    for name, value in [("Content-Security-Policy", "default-src 'none'"), ("X-Frame-Options", "DENY"),
                        ("Cache-Control", "no-store")]:
        assert value in page.headers[name]
    r = sign_in(browser)
    assert r.status_code == 303 and r.headers["Location"] == "/account/tokens"
    cookie = " ".join(r.headers["Set-Cookie"])
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie and "Path=/" in cookie
    dash = browser.get("/account/tokens")
    assert b"Signed in as" in dash.body
    made = browser.post("/account/tokens/generate", {"csrf": csrf(dash), "description": "from the page",
                                             "expires_at": "2027-02-01", "api_set": "ide-plugins"})
    assert made.status_code == 201, made.body
    assert b"You will not see it again" in made.body
    token = secret(made)
    assert client.http.get("/v1/me", headers=bearer(token)).status_code == 200
    dash = browser.get("/account/tokens")
    assert b"from the page" in dash.body and token.encode() not in dash.body
    pat_id = re.search(r'name="ids" value="([^"]+)"', dash.body.decode()).group(1)
    regen = browser.post(f"/account/tokens/{pat_id}/regenerate", {"csrf": csrf(dash)})
    assert regen.status_code == 200 and secret(regen) != token
    assert client.http.get("/v1/me", headers=bearer(token)).status_code == 401
    gone = browser.post("/account/tokens/remove", [("csrf", csrf(dash)), ("ids", pat_id)])
    assert gone.status_code == 200 and b"Removed 1 token" in gone.body
    assert client.http.get("/v1/me", headers=bearer(secret(regen))).status_code == 401


def test_edit_and_copy_from_the_page(browser):
    sign_in(browser)
    dash = browser.get("/account/tokens")
    browser.post("/account/tokens/generate", [("csrf", csrf(dash)), ("description", "one"),
                                      ("expires_at", "2027-02-01"), ("api_set", ""),
                                      ("scopes", "api:read"), ("scopes", "profile")])
    dash = browser.get("/account/tokens")
    pat_id = re.search(r'name="ids" value="([^"]+)"', dash.body.decode()).group(1)
    form = browser.get(f"/account/tokens/{pat_id}/edit")
    assert form.status_code == 200 and b'value="one"' in form.body
    r = browser.post(f"/account/tokens/{pat_id}/edit", [("csrf", csrf(form)), ("description", "two"),
                                                ("expires_at", "2027-03-01"), ("scopes", "api:read")])
    assert r.status_code == 303
    copied = browser.post(f"/account/tokens/{pat_id}/copy", {"csrf": csrf(dash)})
    assert copied.status_code == 201 and b"two" in copied.body
    assert browser.get("/account/tokens").body.count(b'name="ids"') == 2


def test_page_changes_need_the_password_after_ten_minutes(browser, clock):
    sign_in(browser)
    clock.advance(601)
    dash = browser.get("/account/tokens")
    fields = {"csrf": csrf(dash), "description": "late", "expires_at": "2027-02-01",
              "api_set": "marketplace"}
    r = browser.post("/account/tokens/generate", fields)
    assert r.status_code == 403 and b"password" in r.body
    r = browser.post("/account/tokens/generate", {**fields, "password": "password4alice"})
    assert r.status_code == 201


def test_forms_without_the_csrf_token_are_refused(browser):
    sign_in(browser)
    r = browser.post("/account/tokens/generate", {"description": "x", "api_set": "marketplace"})
    assert r.status_code == 403
    page = Browser(browser.client).get("/account/tokens")
    r = browser.client.http.post("/account/signin", body=urlencode(
        {"csrf": "forged", "username": "alice", "password": "password4alice"}).encode(), headers=FORM)
    assert r.status_code == 403 and page.status_code == 200


def test_wrong_password_sign_in_shows_one_generic_error(browser):
    r = sign_in(browser, password="wrong-password")
    assert r.status_code == 403 and b"Invalid username or password" in r.body


def test_validation_errors_re_render_the_form(browser):
    sign_in(browser)
    dash = browser.get("/account/tokens")
    r = browser.post("/account/tokens/generate", {"csrf": csrf(dash), "description": "keep",
                                          "expires_at": "2031-01-01", "api_set": "marketplace"})
    assert r.status_code == 422 and b"at most 366 days" in r.body and b'value="keep"' in r.body


def test_another_users_token_is_not_found_on_the_page(browser, client, ctr):
    sign_in(browser)
    dash = browser.get("/account/tokens")
    browser.post("/account/tokens/generate", {"csrf": csrf(dash), "description": "alice-token",
                                      "expires_at": "2027-02-01", "api_set": "marketplace"})
    pat_id = re.search(r'name="ids" value="([^"]+)"', browser.get("/account/tokens").body.decode()).group(1)
    bob = Browser(client)
    page = bob.get("/account/tokens")
    bob.post("/account/signin", {"csrf": csrf(page), "username": "bob", "password": "password4bob"})
    bob_dash = bob.get("/account/tokens")
    assert b"alice-token" not in bob_dash.body
    assert bob.get(f"/account/tokens/{pat_id}/edit").status_code == 404
    for action in ("regenerate", "copy"):
        assert bob.post(f"/account/tokens/{pat_id}/{action}", {"csrf": csrf(bob_dash)}).status_code == 404
    r = bob.post("/account/tokens/remove", [("csrf", csrf(bob_dash)), ("ids", pat_id)])
    assert b"Removed 0 token" in r.body
    assert b"alice-token" in browser.get("/account/tokens").body


def nonce(page: Any) -> str:
    return re.search(r"style-src 'nonce-([^']+)'", page.headers["Content-Security-Policy"]).group(1)


def stylesheet(page: Any) -> str:
    return re.search(r'<style nonce="([^"]+)">(.*?)</style>', page.body.decode(), re.S).group(2)


def test_device_and_tokens_pages_share_one_layout_and_stylesheet(browser):
    site_css = (ROOT / "chalicelib" / "web" / "static" / "site.css").read_text(encoding="utf-8")
    device, tokens = browser.get("/device"), browser.get("/account/tokens")
    for page in (device, tokens):
        assert stylesheet(page) == site_css
        assert f'<style nonce="{nonce(page)}">' in page.body.decode()
        assert b'<header class="site"><span class="brand">Tessera</span>' in page.body
        assert b"<link" not in page.body
    sign_in(browser)
    for page in (browser.get("/device"), browser.get("/account/tokens")):
        assert stylesheet(page) == site_css
        assert b"Signed in as <strong>alice</strong>" in page.body


def test_only_pages_that_enhance_carry_the_script_and_its_nonce(browser):
    page = browser.get("/device")
    assert b"<script" not in page.body
    assert "script-src" not in page.headers["Content-Security-Policy"]
    # The sign-in page offers a passkey (SPEC §11): the script, which fetches its
    # options from this origin only.
    page = browser.get("/account/tokens")
    csp = page.headers["Content-Security-Policy"]
    assert f"script-src 'nonce-{nonce(page)}'; connect-src 'self';" in csp
    assert b'data-passkey="signin"' in page.body
    sign_in(browser)
    dash = browser.get("/account/tokens")
    csp = dash.headers["Content-Security-Policy"]
    assert f"script-src 'nonce-{nonce(dash)}'" in csp and "'self'" not in csp.split("form-action")[0]
    assert f'<script nonce="{nonce(dash)}">' in dash.body.decode()
    assert b"<script src" not in dash.body


def test_a_device_page_sign_in_holds_on_the_tokens_page_and_signs_out_from_the_bar(browser):
    first = browser.get("/device")
    signed = browser.post("/device", {"csrf": csrf(first), "user_code": "BCDF-GHJK",
                                      "username": "alice", "password": "password4alice"})
    assert b"Signed in as <strong>alice</strong>" in signed.body
    assert b"Signed in as" in browser.get("/account/tokens").body
    bar = re.search(r'<form method="post" action="([^"]+)"><input type="hidden" name="csrf" '
                    r'value="([^"]+)"><button class="link" type="submit">Sign out', signed.body.decode())
    out = browser.post(bar.group(1), {"csrf": bar.group(2)})
    assert out.status_code == 303
    assert b'name="password"' in browser.get("/device").body
    assert b"Sign in to your account" in browser.get("/account/tokens").body


def test_an_error_page_keeps_the_layout_and_a_way_back(browser):
    sign_in(browser)
    missing = browser.get("/account/tokens/AAAAAAAAAAAAAAAA/edit")
    assert missing.status_code == 404 and missing.headers["Content-Type"].startswith("text/html")
    assert b"Back to your tokens" in missing.body and b"Signed in as" in missing.body


def test_sign_out_ends_the_web_session(browser):
    sign_in(browser)
    dash = browser.get("/account/tokens")
    old = dict(browser.jar)
    browser.post("/account/signout", {"csrf": csrf(dash)})
    browser.jar = old
    assert b"Sign in" in browser.get("/account/tokens").body


def test_the_old_tokens_urls_redirect_to_the_console(browser):
    old = browser.get("/tokens?state=active")
    assert old.status_code == 308 and old.headers["Location"] == "/account/tokens?state=active"
    edit = browser.get("/tokens/AAAAAAAAAAAAAAAA/edit")
    assert edit.status_code == 308 and edit.headers["Location"] == "/account/tokens/AAAAAAAAAAAAAAAA/edit"
    for old_path, new_path in [("/tokens/generate", "/account/tokens/generate"),
                               ("/tokens/remove", "/account/tokens/remove"),
                               ("/tokens/signin", "/account/signin"),
                               ("/tokens/signout", "/account/signout"),
                               ("/tokens/AAAAAAAAAAAAAAAA/regenerate",
                                "/account/tokens/AAAAAAAAAAAAAAAA/regenerate")]:
        r = browser.post(old_path, {"csrf": "x"})
        # 308 keeps the method and the body: a form posted from an old page still arrives.
        assert r.status_code == 308 and r.headers["Location"] == new_path, old_path


def test_a_form_posted_to_an_old_url_works_at_the_new_one(browser):
    page = browser.get("/account/tokens")
    fields = {"csrf": csrf(page), "username": "alice", "password": "password4alice",
              "next": "/account/tokens"}
    moved = browser.post("/tokens/signin", fields)
    r = browser.post(moved.headers["Location"], fields)
    assert r.status_code == 303 and r.headers["Location"] == "/account/tokens"
