"""Crafted redirect URIs through /oauth/authorize (RFC 9700 §2.1, §4.1.3; RFC 8252 §7.3;
RFC 6749 §3.1.2.3, §4.1.2.1): a redirect URI that is not a registered one (or, for a
loopback IP, a registered one with another port) gets the error page, never a redirect;
and every redirect goes to the registered string with only the port substituted.

Each hostile URI is tried where a code would be issued (a signed-in browser with a
remembered consent), on the error path (an invalid request, nobody signed in) and with
``prompt=none``.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chalicelib.errors import BadRequest
from tests.api.helpers import seed
from tests.api.test_authorization_code import (
    VERIFIER,
    authorize_path,
    get_code,
    location,
    redeem,
)
from tests.api.test_device_page import Browser, text

LOOP, LOOP_CB = "loop-app", "http://127.0.0.1/callback"
LOOP6, LOOP6_CB = "loop6-app", "http://[::1]/callback"
LOCAL, LOCAL_CB = "localhost-app", "http://localhost:8765/callback"
WEB, WEB_SECRET, WEB_CB = "web-app", "web-app-secret-value", "https://app.example/cb"

HOSTILE_LOOPBACK = [
    # userinfo, backslash and their encodings: the browser goes to evil.example
    "http://evil.example\\@127.0.0.1/callback",
    "http://evil.example\\@127.0.0.1:7/callback",
    "http://evil.example%5C@127.0.0.1/callback",
    "http://evil.example%5c@127.0.0.1:7/callback",
    "http://evil.example@127.0.0.1/callback",
    "http://evil.example%40127.0.0.1/callback",
    "http://user:pw@127.0.0.1:7/callback",
    "http://@127.0.0.1:7/callback",
    "http://127.0.0.1:7\\@evil.example/callback",
    "http://127.0.0.1:7%2F@evil.example/callback",
    "http:\\\\127.0.0.1:7\\callback",
    "http://127.0.0.1:7\\callback",
    # fragments, and delimiters hidden in the path
    "http://127.0.0.1:7/callback#",
    "http://127.0.0.1:7/callback#x",
    "http://evil.example#@127.0.0.1/callback",
    "http://evil.example?@127.0.0.1/callback",
    "http://127.0.0.1:7/callback%23x",
    "http://127.0.0.1:7/callback%3Fx=1",
    "http://127.0.0.1:7/callback%2F..%2F..%2Fevil",
    "http://127.0.0.1:7/callback%5C..%5Cevil",
    "http://127.0.0.1:7/%63allback",
    "http://127.0.0.1:7//callback",
    "http://127.0.0.1:7/callback/",
    "http://127.0.0.1:7/./callback",
    "http://127.0.0.1:7/x/../callback",
    "http://127.0.0.1:7/CALLBACK",
    "http://127.0.0.1:7/callback?",
    "http://127.0.0.1:7/callback?x=1",
    "//127.0.0.1:7/callback",
    "http:/127.0.0.1:7/callback",
    "http:127.0.0.1:7/callback",
    # tabs, newlines, spaces, controls: URL parsers drop or keep them differently
    "http://127.0.0.1:7/call\tback",
    "http://127.0.0.1:7/callback\n",
    "http://127.0.0.1:7/callback\r\n",
    "http://127.0.0.1\t:7/callback",
    "\thttp://127.0.0.1:7/callback",
    "http://evil.example\t@127.0.0.1/callback",
    "http://127.0.0.1:7/callback ",
    " http://127.0.0.1:7/callback",
    "http://127.0.0.1:7/callback\x00",
    "http://127.0.0.1:7/callback%0A",
    "http://127.0.0.1:7/callback%09",
    "http://127.0.0.1:7/callback\u200b",
    # other hosts, other spellings of the loopback address
    "http://127.0.0.1.evil/callback",
    "http://127.0.0.1.evil:7/callback",
    "http://127.0.0.1.evil.example/callback",
    "http://127.0.0.1./callback",
    "http://127.0.0.1.:7/callback",
    "http://[::1]/callback",
    "http://[::1]:7/callback",
    "http://[0:0:0:0:0:0:0:1]:7/callback",
    "http://[::ffff:127.0.0.1]:7/callback",
    "http://[::ffff:7f00:1]:7/callback",
    "http://0x7f.1/callback",
    "http://0x7f000001/callback",
    "http://127.1/callback",
    "http://127.0.1/callback",
    "http://2130706433/callback",
    "http://0177.0.0.1/callback",
    "http://127.000.000.001/callback",
    "http://127.0.0.2/callback",
    "http://localhost:7/callback",
    "http://LOCALHOST/callback",
    "http://\uff11\uff12\uff17.0.0.1/callback",
    "http://evil.example/callback",
    "https://evil.example/callback",
    # scheme tricks
    "HTTP://127.0.0.1:7/callback",
    "Http://127.0.0.1/callback",
    "hTTp://127.0.0.1:7/callback",
    "https://127.0.0.1:7/callback",
    "javascript://127.0.0.1/callback",
    # ports that are not a plain port
    "http://127.0.0.1:/callback",
    "http://127.0.0.1:07/callback",
    "http://127.0.0.1:0/callback",
    "http://127.0.0.1:65536/callback",
    "http://127.0.0.1:99999/callback",
    "http://127.0.0.1:+7/callback",
    "http://127.0.0.1:7:8/callback",
    "http://127.0.0.1:0x50/callback",
    "http://127.0.0.1:\uff17/callback",
    "http://127.0.0.1: 7/callback",
]


@pytest.fixture
def apps(client, ctr):
    seed(ctr)
    ids = ctr.identities
    # remember_consent: the attacker's best case, a remembered consent that makes
    # prompt=none silent (public loopback clients are otherwise asked every time).
    for client_id, uri in ((LOOP, LOOP_CB), (LOOP6, LOOP6_CB), (LOCAL, LOCAL_CB)):
        ids.create_client(client_id, public=True, name=client_id,
                          grant_types=["authorization_code", "refresh_token"],
                          scopes=["openid", "profile"], redirect_uris=[uri], remember_consent=True)
    ids.create_client(WEB, secret=WEB_SECRET, name="Web App",
                      grant_types=["authorization_code", "refresh_token"],
                      scopes=["openid", "profile"], redirect_uris=[WEB_CB])
    return client


def consented(apps, client_id: str = LOOP, redirect_uri: str = "http://127.0.0.1:50001/callback"):
    """A browser signed in as alice that has approved ``client_id`` once."""
    browser = Browser(apps)
    answer = get_code(browser, client_id=client_id, redirect_uri=redirect_uri,
                      scope="openid profile")
    assert answer["code"].startswith("tsc_")
    return browser


def refused_with_a_page(response) -> None:
    assert response.status_code == 400, (response.status_code, response.headers.get("Location"))
    assert "Location" not in response.headers and "location" not in response.headers
    assert response.headers["Content-Type"].startswith("text/html")
    assert "not registered" in text(response)


# -- the classic list, through the endpoint --------------------------------------------
# One signed-in browser per flow, the whole list through it (a sign-in per URI would be
# slow); each failure names its URI.

def bent(responses) -> list[tuple[str, int, str | None]]:
    """The (uri, status, Location) of each response that was not the error page."""
    out = []
    for uri, response in responses:
        location_header = response.headers.get("Location")
        if response.status_code != 400 or location_header is not None \
                or not response.headers["Content-Type"].startswith("text/html") \
                or "not registered" not in text(response):
            out.append((uri, response.status_code, location_header))
    return out


def test_a_crafted_redirect_uri_gets_no_code(apps):
    browser = consented(apps)
    assert bent((uri, browser.get(authorize_path(client_id=LOOP, redirect_uri=uri,
                                                 scope="openid profile")))
                for uri in HOSTILE_LOOPBACK) == []


def test_a_crafted_redirect_uri_gets_no_code_with_prompt_none(apps):
    browser = consented(apps)
    assert bent((uri, browser.get(authorize_path(client_id=LOOP, redirect_uri=uri,
                                                 scope="openid profile", prompt="none")))
                for uri in HOSTILE_LOOPBACK) == []


def test_a_crafted_redirect_uri_is_no_open_redirect_for_errors(apps):
    # Nobody signed in, an invalid request or prompt=none: the error must not travel to ``uri``.
    assert bent((uri, apps.http.get(authorize_path(client_id=LOOP, redirect_uri=uri,
                                                   response_type="token")))
                for uri in HOSTILE_LOOPBACK) == []
    assert bent((uri, apps.http.get(authorize_path(client_id=LOOP, redirect_uri=uri,
                                                   prompt="none")))
                for uri in HOSTILE_LOOPBACK) == []


def test_a_crafted_redirect_uri_sent_by_post_gets_no_code(apps):
    browser = consented(apps)
    # An authorization request sent by POST (OIDC Core §3.1.2.1): no page action, no CSRF.
    assert bent((uri, browser.post("/oauth/authorize", csrf="", **dict(parse_qsl(urlsplit(
        authorize_path(client_id=LOOP, redirect_uri=uri, scope="openid profile")).query))))
                for uri in HOSTILE_LOOPBACK if "\x00" not in uri) == []


@pytest.mark.parametrize("uri", [
    "http://127.0.0.1/callback", "http://127.0.0.1:7/callback", "http://127.0.0.1:80/callback",
    "http://127.0.0.1.evil/callback", "http://localhost:7/callback", "http://[::1]:7/callback/",
    "http://evil.example\\@[::1]/callback", "http://user@[::1]:7/callback",
    "http://[0:0:0:0:0:0:0:1]:7/callback", "HTTP://[::1]:7/callback", "http://[::1]:07/callback",
])
def test_an_ipv6_loopback_registration_matches_only_its_own_spelling(apps, uri):
    browser = consented(apps, LOOP6, "http://[::1]:50002/callback")
    response = browser.get(authorize_path(client_id=LOOP6, redirect_uri=uri, scope="openid profile"))
    if uri in ("http://[::1]/callback",):
        assert location(response)[0] == uri
    else:
        refused_with_a_page(response)


@pytest.mark.parametrize("uri", [
    "http://localhost:9999/callback", "http://localhost/callback", "http://127.0.0.1:8765/callback",
    "http://localhost.:8765/callback", "http://LocalHost:8765/callback",
    "http://evil.example\\@localhost:8765/callback", "http://localhost:8765/callback#",
])
def test_a_localhost_registration_matches_only_exactly(apps, uri):
    # RFC 8252 §8.3: the any-port rule is for loopback IP literals, not localhost.
    browser = consented(apps, LOCAL, LOCAL_CB)
    refused_with_a_page(browser.get(authorize_path(client_id=LOCAL, redirect_uri=uri,
                                                   scope="openid profile")))
    assert location(browser.get(authorize_path(client_id=LOCAL, redirect_uri=LOCAL_CB,
                                               scope="openid profile")))[0] == LOCAL_CB


@pytest.mark.parametrize("uri", [
    "https://app.example/cb/", "https://APP.example/cb", "HTTPS://app.example/cb",
    "https://app.example./cb", "https://app.example:443/cb", "https://app.example/cb#",
    "https://evil.example\\@app.example/cb", "https://user@app.example/cb",
    "https://app.example/cb?x=1", "https://app.example/%63b", "https://app.example/cb\t",
    "https://app.example.evil/cb", "http://app.example/cb",
])
def test_a_web_redirect_uri_is_compared_exactly(apps, uri):
    page = apps.http.get(authorize_path(client_id=WEB, redirect_uri=uri, scope="openid",
                                        response_type="token"))
    refused_with_a_page(page)


# -- what is accepted, and where it goes ---------------------------------------------

@pytest.mark.parametrize("port", ["", ":1", ":80", ":8080", ":49152", ":65535"])
def test_a_loopback_redirect_goes_to_the_registered_uri_with_the_port_substituted(apps, port):
    browser = consented(apps)
    sent = f"http://127.0.0.1{port}/callback"
    response = browser.get(authorize_path(client_id=LOOP, redirect_uri=sent, scope="openid profile",
                                          prompt="none"))
    assert response.headers["Location"].startswith(sent + "?code=tsc_")
    errors = apps.http.get(authorize_path(client_id=LOOP, redirect_uri=sent, response_type="token"))
    assert errors.headers["Location"].startswith(sent + "?error=unsupported_response_type")


def test_the_code_redeems_with_the_redirect_uri_the_client_sent(apps):
    # RFC 6749 §4.1.3: the token request presents the same redirect_uri; an unmodified
    # client sends back exactly what it sent, which is what the code was bound to.
    browser = consented(apps)
    sent = "http://127.0.0.1:61234/callback"
    where, answer = location(browser.get(authorize_path(client_id=LOOP, redirect_uri=sent,
                                                        scope="openid profile")))
    assert where == sent
    wrong = redeem(apps, answer["code"], client_id=LOOP, secret=None,
                   redirect_uri="http://127.0.0.1:61235/callback", verifier=VERIFIER)
    assert wrong.status_code == 400
    got = redeem(apps, answer["code"], client_id=LOOP, secret=None, redirect_uri=sent,
                 verifier=VERIFIER)
    assert got.status_code == 200, got.body


# -- a property: whatever is presented, a redirect goes to the registered place --------

REGISTERED_PREFIX = re.compile(r"http://127\.0\.0\.1(:[1-9][0-9]{0,4})?/callback\?")
PIECES = ["http", "HTTP", "https", ":", "//", "/", "\\", "@", "#", "?", "%", "%5C", "%40", "%2F",
          "%23", "%3F", "%2e", ".", "..", "127.0.0.1", "[::1]", "127.1", "0x7f", "localhost",
          "evil.example", "callback", "CALLBACK", ":7", ":0", ":65536", ":080", "\t", "\n", " ",
          "user:pw", "\x00", "\u3002", "%00"]


BROWSERS: dict[object, Browser] = {}   # one signed-in browser per app client, not per example


@st.composite
def presented_uris(draw) -> str:
    """Strings near the registered URI: it, with pieces inserted, replaced or dropped."""
    base = draw(st.sampled_from([LOOP_CB, "http://127.0.0.1:7/callback",
                                 "http://127.0.0.1:49152/callback"]))
    chars = list(base)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(chars)))
        op = draw(st.sampled_from(["insert", "replace", "drop"]))
        piece = draw(st.one_of(st.sampled_from(PIECES), st.text(max_size=3)))
        if op == "insert" or not chars:
            chars[at:at] = [piece]
        elif op == "replace":
            chars[min(at, len(chars) - 1)] = piece
        else:
            del chars[min(at, len(chars) - 1)]
    return "".join(chars)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(uri=st.one_of(presented_uris(), st.text(max_size=40)),
       extra=st.sampled_from([{}, {"prompt": "none"}, {"response_type": "token"}]))
@example(uri="http://evil.example\\@127.0.0.1/callback", extra={})
@example(uri="http://127.0.0.1:7/call\tback", extra={"response_type": "token"})
@example(uri="http://user:pw@127.0.0.1:7/callback", extra={"prompt": "none"})
def test_any_presented_string_is_refused_or_goes_to_the_registered_uri(apps, uri, extra):
    browser = BROWSERS.get(apps) or BROWSERS.setdefault(apps, consented(apps))
    response = browser.get(authorize_path(client_id=LOOP, redirect_uri=uri, scope="openid profile",
                                          **extra))
    if response.status_code not in (301, 302, 303, 307, 308):
        assert "Location" not in response.headers
        return
    where = response.headers["Location"]
    assert REGISTERED_PREFIX.match(where), (uri, where)
    parts = urlsplit(where)
    assert parts.hostname == "127.0.0.1" and parts.username is None and parts.fragment == ""
    assert parts.path == "/callback"
    # And it is exactly what was presented (so the token request can present it again);
    # an empty one counts as omitted: the only registered URI.
    assert where.startswith((uri or LOOP_CB) + "?")


# -- registration refuses them (the service; the admin command and the seed share it) ----

@pytest.mark.parametrize("uri", [
    "http://evil.example\\@127.0.0.1/callback", "http://user:pw@127.0.0.1:7/callback",
    "http://127.0.0.1/callback#", "http://127.0.0.1/callback#x", "http://127.0.0.1/call%5Cback",
    "http://127.0.0.1/call%40back", "http://127.0.0.1/a%2Fb", "https://app.example/cb%23x",
    "https://app.example/cb%3Fx", "https://app.example/cb%2e%2e", "http://127.0.0.1/call\tback",
    "http://127.0.0.1/callback\n", " https://app.example/cb", "http://127.0.0.1./cb",
    "https://app.example./cb", "http://127.0.0.1.evil/cb", "http://0x7f.1/cb", "http://127.1/cb",
    "http://2130706433/cb", "https://2130706433/cb", "https://0177.0.0.1/cb",
    "http://[0:0:0:0:0:0:0:1]/cb", "http://[::ffff:127.0.0.1]/cb", "HTTP://127.0.0.1/cb",
    "HTTPS://app.example/cb", "https://App.Example/cb", "http://LOCALHOST/cb",
    "http://127.0.0.1:07/cb", "http://127.0.0.1:0/cb", "http://127.0.0.1:/cb",
    "https://app.example/a/../cb", "https://app.example\\cb", "com.example.app:/cb#x",
    "com.example.app:/c\\b", "https://app.example/cb\u200b",
])
def test_registration_refuses_bendable_redirect_uris(apps, ctr, uri):
    with pytest.raises(BadRequest) as refused:
        ctr.identities.create_client("new-app", public=True, grant_types=["authorization_code"],
                                     scopes=["openid"], redirect_uris=[uri])
    assert "redirect URI" in refused.value.description
    with pytest.raises(BadRequest):
        ctr.identities.create_client("new-app", secret="new-app-secret-value",
                                     grant_types=["refresh_token"], scopes=["openid"],
                                     post_logout_redirect_uris=[uri])
    assert ctr.identities.clients.get("new-app") is None
