"""Redirect URI rules (RFC 6749 §3.1.2, RFC 8252 §7.3): what registers, what matches."""

from __future__ import annotations

import pytest

from chalicelib.security.redirect_uris import choose, matches, registrable


@pytest.mark.parametrize("uri", ["https://app.example/cb", "http://127.0.0.1/cb",
                                 "http://[::1]:8080/cb", "http://localhost:9000/callback",
                                 "com.example.app:/oauth2redirect"])
def test_registrable_redirect_uris(uri):
    assert registrable(uri) is None


@pytest.mark.parametrize("uri", ["", "http://app.example/cb", "https://app.example/cb#x",
                                 "/relative", "myapp:/cb", "https:///nohost", "http://127.0.0.1:x/"])
def test_unregistrable_redirect_uris(uri):
    assert registrable(uri) is not None


def test_matching_is_exact_except_for_loopback_ports():
    assert matches("https://app.example/cb", "https://app.example/cb")
    assert not matches("https://app.example/cb/", "https://app.example/cb")
    assert not matches("https://app.example:444/cb", "https://app.example/cb")
    assert matches("http://127.0.0.1:53211/cb", "http://127.0.0.1/cb")
    assert matches("http://[::1]:1/cb", "http://[::1]:2/cb")
    assert not matches("http://localhost:5000/cb", "http://localhost/cb")   # RFC 8252 §8.3: IPs only
    assert not matches("http://127.0.0.1:53211/other", "http://127.0.0.1/cb")
    assert not matches("http://127.0.0.1:x/cb", "http://127.0.0.1/cb")


def test_an_omitted_redirect_uri_needs_exactly_one_registered():
    assert choose(None, ("https://a.example/cb",)) == "https://a.example/cb"
    assert choose(None, ("https://a.example/cb", "https://a.example/2")) is None
    assert choose("http://127.0.0.1:9/cb", ("http://127.0.0.1/cb",)) == "http://127.0.0.1:9/cb"
