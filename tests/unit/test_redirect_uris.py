"""Redirect URI rules (RFC 6749 §3.1.2, RFC 9700 §4.1.3, RFC 8252 §7.3): what
registers, what matches, and what the browser is sent to."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.security.redirect_uris import choose, match, matches, registrable
from chalicelib.services.authorization import with_query


@pytest.mark.parametrize("uri", ["https://app.example/cb", "http://127.0.0.1/cb",
                                 "http://[::1]:8080/cb", "http://localhost:9000/callback",
                                 "com.example.app:/oauth2redirect", "https://app.example",
                                 "https://192.0.2.1/cb", "https://[2001:db8::1]/cb",
                                 "https://xn--bcher-kva.example/cb?x=1&y=%C3%A9",
                                 "http://127.0.0.1:9000/callback", "https://a-b.example:8443/a/b"])
def test_registrable_redirect_uris(uri):
    assert registrable(uri) is None


@pytest.mark.parametrize(("uri", "why"), [
    ("", "1-2000"), ("http://app.example/cb", "loopback"), ("/relative", "https"),
    ("myapp:/cb", "private-use"), ("https:///nohost", "host"), ("http://127.0.0.1:x/", "port"),
    ("https://app.example/cb#x", "fragment"), ("https://app.example/cb#", "fragment"),
    ("http://evil.example\\@127.0.0.1/cb", "userinfo"), ("http://u:p@127.0.0.1/cb", "userinfo"),
    ("https://app.example\\cb", "backslash"), ("http://127.0.0.1/a%5Cb", "%5C"),
    ("http://127.0.0.1/a%40b", "%40"), ("http://127.0.0.1/a%2fb", "%2f"),
    ("https://app.example/a%23b", "%23"), ("https://app.example/a%3Fb", "%3F"),
    ("https://app.example/a%2E%2E", "%2E"), ("https://app.example/a%25", "%25"),
    ("https://app.example/a%0A", "%0A"), ("https://app.example/a%", "malformed"),
    ("https://app.example/a%zz", "malformed"), ("https://app.example/c\tb", "tabs"),
    ("https://app.example/cb\n", "newlines"), (" https://app.example/cb", "spaces"),
    ("https://app.example/cb\u00e9", "ASCII"), ("HTTPS://app.example/cb", "lower case"),
    ("Http://127.0.0.1/cb", "lower case"), ("https://App.example/cb", "lower case"),
    ("http://LOCALHOST/cb", "lower case"), ("https://app.example./cb", "dot"),
    ("http://127.0.0.1./cb", "dot"), ("http://127.0.0.1.evil/cb", "loopback"),
    ("http://127.1/cb", "dotted quad"), ("http://0x7f.1/cb", "dotted quad"),
    ("https://2130706433/cb", "dotted quad"), ("https://0177.0.0.1/cb", "dotted quad"),
    ("https://127.000.0.1/cb", "dotted quad"), ("https://256.0.0.1/cb", "dotted quad"),
    ("http://[0:0:0:0:0:0:0:1]/cb", "[::1]"), ("http://[::ffff:127.0.0.1]/cb", "IPv6"),
    ("https://[::g]/cb", "IPv6"), ("http://127.0.0.1:07/cb", "port"),
    ("http://127.0.0.1:0/cb", "port"), ("http://127.0.0.1:65536/cb", "port"),
    ("http://127.0.0.1:/cb", "port"), ("https://app.example/a/../cb", ".."),
    ("https://app.example/./cb", "."), ("com.example.app:/c#b", "fragment"),
    ("com.example.app:/c\\b", "backslash"), ("javascript://x/%0Aalert(1)", "%0A"),
    ("https://a_b.example/cb", "host name"), ("https://-a.example/cb", "host name"),
    ("http:127.0.0.1/cb", "absolute"), ("https://" + "a" * 2000, "1-2000"),
])
def test_unregistrable_redirect_uris_say_why(uri, why):
    reason = registrable(uri)
    assert reason is not None and why in reason, reason


def test_matching_is_exact_except_for_loopback_ports():
    assert matches("https://app.example/cb", "https://app.example/cb")
    assert not matches("https://app.example/cb/", "https://app.example/cb")
    assert not matches("https://app.example:444/cb", "https://app.example/cb")
    assert not matches("https://app.example:443/cb", "https://app.example/cb")
    assert matches("http://127.0.0.1:53211/cb", "http://127.0.0.1/cb")
    assert matches("http://[::1]:1/cb", "http://[::1]:2/cb")
    assert not matches("http://localhost:5000/cb", "http://localhost/cb")   # RFC 8252 §8.3: IPs only
    assert not matches("http://127.0.0.1:53211/other", "http://127.0.0.1/cb")
    assert not matches("http://127.0.0.1:x/cb", "http://127.0.0.1/cb")
    assert not matches("http://[::1]:7/cb", "http://127.0.0.1/cb")
    assert not matches("http://127.0.0.1:7/cb", "http://[::1]/cb")


def test_a_loopback_match_is_the_registered_string_with_the_presented_port():
    assert match("http://127.0.0.1:7/cb?app=1", "http://127.0.0.1:9000/cb?app=1") \
        == "http://127.0.0.1:7/cb?app=1"
    assert match("http://127.0.0.1/cb", "http://127.0.0.1:9000/cb") == "http://127.0.0.1/cb"
    assert match("http://127.0.0.1:7/cb?app=2", "http://127.0.0.1:9000/cb?app=1") is None
    assert match("http://127.0.0.1:7/cb?", "http://127.0.0.1/cb") is None


@pytest.mark.parametrize("presented", [
    "http://evil.example\\@127.0.0.1/cb", "http://evil.example%5C@127.0.0.1/cb",
    "http://user:pw@127.0.0.1:7/cb", "http://127.0.0.1:7/cb#", "http://127.0.0.1:7/c%62",
    "http://127.0.0.1:7/cb%2F..", "http://127.0.0.1:7//cb", "http://127.0.0.1:7/c\tb",
    "http://127.0.0.1:7/cb\n", "http://127.0.0.1.evil/cb", "http://127.0.0.1.:7/cb",
    "http://0x7f.1/cb", "http://127.1/cb", "http://2130706433/cb", "HTTP://127.0.0.1:7/cb",
    "http://127.0.0.1:07/cb", "http://127.0.0.1:0/cb", "http://127.0.0.1:65536/cb",
    "http://127.0.0.1:/cb", "http://[::1]:7/cb", "http://localhost:7/cb",
])
def test_a_bent_loopback_uri_matches_nothing(presented):
    assert choose(presented, ("http://127.0.0.1/cb", "https://app.example/cb")) is None


def test_an_omitted_redirect_uri_needs_exactly_one_registered():
    assert choose(None, ("https://a.example/cb",)) == "https://a.example/cb"
    assert choose(None, ("https://a.example/cb", "https://a.example/2")) is None
    assert choose("http://127.0.0.1:9/cb", ("http://127.0.0.1/cb",)) == "http://127.0.0.1:9/cb"


def test_a_uri_registered_under_older_rules_that_can_be_bent_matches_nothing():
    legacy = "http://user@127.0.0.1/cb"
    assert choose(legacy, (legacy,)) is None
    assert choose(None, (legacy,)) is None
    assert choose("HTTPS://App.example/cb", ("HTTPS://App.example/cb",)) is None


@given(st.text(max_size=60))
def test_any_string_matches_only_as_the_registered_uri_with_a_port(presented):
    chosen = choose(presented, ("http://127.0.0.1/callback", "https://app.example/cb"))
    assert chosen is None or chosen == presented
    if chosen is not None:
        assert chosen == "https://app.example/cb" or re.fullmatch(
            r"http://127\.0\.0\.1(:[1-9][0-9]{0,4})?/callback", chosen)


@given(st.integers(1, 65535))
def test_every_port_of_a_loopback_ip_matches(port):
    assert choose(f"http://[::1]:{port}/cb", ("http://[::1]/cb",)) == f"http://[::1]:{port}/cb"


def test_the_response_keeps_the_registered_string_and_appends_its_parameters():
    assert with_query("https://app.example/cb", {"code": "c", "state": "a b"}) \
        == "https://app.example/cb?code=c&state=a+b"
    assert with_query("https://app.example/cb?app=%C3%A9&x", {"code": "c"}) \
        == "https://app.example/cb?app=%C3%A9&x&code=c"
    assert with_query("https://app.example/cb?", {"code": "c"}) == "https://app.example/cb?code=c"
    assert with_query("https://app.example/bye", {}) == "https://app.example/bye"
