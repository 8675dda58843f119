"""Web page building blocks: cookies and escaping (no AWS)."""

import pytest

from chalicelib.services.web_signin import csrf_ok, csrf_token, new_browser_secret
from chalicelib.web.browser import cookies_must_be_secure, set_cookie
from chalicelib.web.page import esc


@pytest.mark.parametrize("issuer", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"])
def test_plain_http_loopback_cookies_are_not_secure(issuer):
    assert not cookies_must_be_secure(issuer)
    assert "Secure" not in set_cookie("n", "v", secure=cookies_must_be_secure(issuer))


@pytest.mark.parametrize("issuer", ["https://auth.example.com", "http://auth.example.com",
                                    "https://127.0.0.1", "http://127.0.0.1.example.com"])
def test_every_other_issuer_gets_secure_cookies(issuer):
    assert cookies_must_be_secure(issuer)


def test_cookie_attributes():
    assert set_cookie("n", "v", secure=True) == "n=v; Path=/; HttpOnly; SameSite=Lax; Secure"


def test_csrf_token_is_bound_to_browser_and_session():
    a, b = new_browser_secret(), new_browser_secret()
    token = csrf_token(a, "session-1")
    assert csrf_ok(a, "session-1", token)
    assert not csrf_ok(b, "session-1", token)
    assert not csrf_ok(a, "session-2", token)
    assert not csrf_ok(a, "session-1", "")
    assert not csrf_ok("", "session-1", token)


def test_escaping_covers_attributes():
    assert esc('"><script>') == "&quot;&gt;&lt;script&gt;"
