"""Web page building blocks: cookies, escaping, CSRF, the layout (no AWS)."""

import pytest

from chalicelib.errors import BadRequest, Forbidden
from chalicelib.services.web_signin import csrf_ok, csrf_token, new_browser_secret
from chalicelib.web.browser import (
    BROWSER_COOKIE,
    Form,
    PageRequest,
    Visit,
    cookies_must_be_secure,
    set_cookie,
)
from chalicelib.web.device_page import entry


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


def test_templates_escape_text_and_attributes():
    page = entry(visit(), '"><script>x</script>', error="<b>bad</b>")
    assert 'value="&#34;&gt;&lt;script&gt;x&lt;/script&gt;"' in page.body
    assert "&lt;b&gt;bad&lt;/b&gt;" in page.body and "<script>x" not in page.body


# -- the page layer without AWS: a visit from typed values, a fake sign-in ---------



class NobodySignedIn:
    def current(self, cookie):
        return None

    def sign_in(self, username, password, source_ip, user_agent):
        raise AssertionError("not used")

    def sign_out(self, web):
        raise AssertionError("not used")


def visit(issuer="https://auth.example.com/dev", **fields):
    form = Form({k: tuple(v) if isinstance(v, list) else (v,) for k, v in fields.items()})
    request = PageRequest(issuer=issuer, cookies={BROWSER_COOKIE: "a" * 22}, source_ip="10.0.0.1",
                          user_agent="test", form=form)
    return Visit.open(request, NobodySignedIn(), 3600)


def test_links_and_actions_carry_the_stage_path():
    v = visit()
    assert v.path("/device") == "/dev/device"
    assert 'action="/dev/device"' in entry(v, "").body
    assert visit("http://127.0.0.1:8000").path("/device") == "/device"


def test_a_repeated_form_field_is_a_bad_request_but_a_list_field_is_not():
    form = Form({"user_code": ("A", "B"), "scopes": ("api:read", "profile")})
    with pytest.raises(BadRequest):
        form.one("user_code")
    assert form.all("scopes") == ["api:read", "profile"]
    assert Form({"action": ("",)}).one("action", "continue") == "continue"


def test_a_visit_checks_its_csrf_token_and_keeps_a_valid_browser_secret():
    good = visit()
    assert good.cookies == []   # the browser's secret is kept, not replaced
    visit(csrf=good.csrf()).check_csrf()
    with pytest.raises(Forbidden):
        visit(csrf="0" * 64).check_csrf()


def test_every_page_gets_the_one_stylesheet_and_no_script_unless_asked():
    page = entry(visit(), "")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src" not in csp and "<script" not in page.body
    assert page.headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in csp
    assert "input.code{font-family:var(--mono)" in page.body
