"""Which addresses and hosts the service may connect to for CI federation
(``security.outbound``), and the fetcher that resolves once and connects to the
address it checked (``services.federation.HttpGet``)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.config import Settings
from chalicelib.security.outbound import address_problem, host_problem
from chalicelib.services.federation import FetchFailed, HttpGet
from tests.federation_support import Listener

NOT_PUBLIC = [
    # IPv4
    "0.0.0.0", "0.1.2.3", "10.0.0.1", "100.64.0.1", "100.127.255.254", "127.0.0.1",
    "127.255.255.254", "169.254.169.254", "172.16.0.1", "172.31.255.255", "192.0.0.8",
    "192.0.0.170", "192.0.2.1", "192.88.99.1", "192.168.1.1", "198.18.0.1", "198.19.255.255",
    "198.51.100.7", "203.0.113.7", "224.0.0.1", "239.255.255.250", "240.0.0.1",
    "255.255.255.255",
    # IPv6
    "::", "::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1",
    "::ffff:0.0.0.0", "::127.0.0.1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe",
    "64:ff9b:1::1", "100::1", "2001::1", "2001:db8::1", "2002:7f00:1::1", "2002:a00:1::",
    "fc00::1", "fd12:3456::1", "fe80::1", "febf::1", "fec0::1", "ff00::1", "ff02::1",
    "ff0e::1",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "140.82.112.3", "100.63.255.255", "100.128.0.0", "172.32.0.1",
          "2606:4700:4700::1111", "2a00:1450:4001:80b::200e", "::ffff:8.8.8.8",
          "64:ff9b::808:808"]


@pytest.mark.parametrize("text", NOT_PUBLIC)
def test_non_public_addresses_of_both_families_are_refused(text):
    assert address_problem(ipaddress.ip_address(text)) is not None


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses_are_allowed(text):
    assert address_problem(ipaddress.ip_address(text)) is None


@pytest.mark.parametrize("text", ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1",
                                  "64:ff9b::7f00:1"])
def test_loopback_only_where_allowed(text):
    address = ipaddress.ip_address(text)
    assert "loopback" in (address_problem(address) or "")
    assert address_problem(address, allow_loopback=True) is None


@pytest.mark.parametrize("text", ["10.0.0.1", "169.254.169.254", "0.0.0.0", "::", "fe80::1",
                                  "::ffff:10.0.0.1", "224.0.0.1", "100.64.0.1"])
def test_the_loopback_allowance_allows_nothing_else(text):
    assert address_problem(ipaddress.ip_address(text), allow_loopback=True) is not None


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f000001", "0177.0.0.1",
                                  "0x7f.0.0.1", "127.0.1", "2852039166", "0xa9fea9fe",
                                  "017700000001", "127.000.000.001", "01.02.03.04", "1.2.3.0x4",
                                  "example.1", "0x", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1",
                                  "0000::1", "127.0.0.1.", "example.com."])
def test_a_numeric_host_in_a_non_canonical_spelling_is_refused_as_written(host):
    problem = host_problem(host, allow_loopback=True)
    assert problem is not None
    assert "non-canonical" in problem or "dot" in problem


@pytest.mark.parametrize("host", ["localhost", "foo.localhost", "127.0.0.1", "::1",
                                  "169.254.169.254", "10.1.2.3", "fd00::1", "::ffff:7f00:1",
                                  "exa mple.com", "exämple.com", "a..b", "-a.com", "a%2eb.com"])
def test_loopback_non_public_and_malformed_hosts_are_refused(host):
    assert host_problem(host) is not None


@pytest.mark.parametrize("host", ["token.actions.githubusercontent.com", "gitlab.com",
                                  "gitlab.example.com", "8.8.8.8", "2606:4700:4700::1111",
                                  "xn--bcher-kva.example", "ci-1.example.org", "1a.example"])
def test_public_names_and_canonical_public_addresses_are_allowed(host):
    assert host_problem(host) is None


# -- the fetcher: one resolution, every address checked, the checked one connected --------

@pytest.fixture
def listener() -> Iterator[Listener]:
    running = Listener()
    yield running
    running.close()


class Resolver:
    """getaddrinfo for chosen names; counts the calls."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses
        self.calls: list[str] = []

    def __call__(self, host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        self.calls.append(host)
        out: list[tuple[Any, ...]] = []
        for a in self.addresses:
            if ":" in a:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)))
        return out


@pytest.mark.parametrize("addresses", [("127.0.0.1",), ("8.8.8.8", "127.0.0.1"),
                                       ("127.0.0.1", "8.8.8.8"), ("::ffff:127.0.0.1",)])
def test_a_name_that_resolves_to_loopback_is_never_connected(listener, addresses):
    resolve = Resolver(*addresses)
    fetch = HttpGet(allow_loopback=False, resolve=resolve)
    with pytest.raises(FetchFailed, match="loopback"):
        fetch(f"https://issuer.example.com:{listener.port}/x", 1.0, 1000)
    assert resolve.calls == ["issuer.example.com"]
    assert listener.connections == []


def test_https_localhost_is_refused_without_the_allowance(listener):
    for url in (f"https://localhost:{listener.port}/", f"https://127.0.0.1:{listener.port}/",
                f"https://[::1]:{listener.port}/", f"https://127.1:{listener.port}/"):
        with pytest.raises(FetchFailed, match="URL refused"):
            HttpGet()(url, 1.0, 1000)
    assert listener.connections == []


def test_the_connection_goes_to_the_checked_address_with_the_name_for_tls(listener):
    """Resolved once; the TLS handshake reaches the checked address and names the
    host (SNI), so the certificate is checked against the name."""
    resolve = Resolver("127.0.0.1")
    with pytest.raises(FetchFailed):        # the listener speaks no TLS
        HttpGet(allow_loopback=True, resolve=resolve)(
            f"https://issuer.test:{listener.port}/jwks", 1.0, 1000)
    assert resolve.calls == ["issuer.test"]
    assert len(listener.connections) == 1 and b"issuer.test" in listener.connections[0]


def test_plain_http_only_reaches_loopback_addresses(listener):
    resolve = Resolver("8.8.8.8")
    with pytest.raises(FetchFailed, match="URL refused"):
        HttpGet(allow_loopback=True, resolve=resolve)("http://issuer.test/x", 1.0, 1000)
    with pytest.raises(FetchFailed, match="not loopback"):
        HttpGet(allow_loopback=True, resolve=resolve)("http://localhost/x", 1.0, 1000)
    assert listener.connections == []


# -- the local allowance is the local stage's ------------------------------------------------

def test_a_deployed_function_cannot_turn_the_loopback_allowance_on():
    with pytest.raises(ValueError, match="local stage only"):
        Settings.from_env({"TESSERA_FEDERATION_ALLOW_HTTP": "true",
                           "AWS_LAMBDA_FUNCTION_NAME": "tessera-prod"})
    assert Settings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "tessera-prod"}) \
        .federation_allow_http is False
    assert Settings.from_env({"TESSERA_FEDERATION_ALLOW_HTTP": "true"}).federation_allow_http
