"""The issuer-key cache and the trust rules of CI federation, with an injected fetcher:
which URLs are fetched, how often, within what time, and which tokens a policy trusts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib import deadline
from chalicelib.clock import FakeClock
from chalicelib.config import Settings
from chalicelib.errors import StorageUnavailable
from chalicelib.services.federation import (
    FetchFailed,
    HttpGet,
    IssuerKeys,
    Refused,
    policy_matches,
    role_name_of,
    subject_matches,
    url_problem,
)
from chalicelib.services.role_credentials import scopes_of
from chalicelib.storage.roles import TrustPolicy
from tests.oidc_issuer import SigningKey
from tests.unit.fakes import settings

ISSUER = "https://ci.example.com"
JWKS_URI = "https://ci.example.com/.well-known/jwks"
RSA = SigningKey("k1", "RS256")
EC = SigningKey("e1", "ES256")


class FakeFetch:
    """Serves documents by URL; records each request with its timeout and limit."""

    def __init__(self, documents: dict[str, Any] | None = None) -> None:
        self.documents = documents if documents is not None else {
            ISSUER + "/.well-known/openid-configuration": {"issuer": ISSUER, "jwks_uri": JWKS_URI},
            JWKS_URI: {"keys": [RSA.jwk]},
        }
        self.calls: list[tuple[str, float, int]] = []
        self.failing = False

    def __call__(self, url: str, timeout: float, max_bytes: int) -> bytes:
        self.calls.append((url, timeout, max_bytes))
        if self.failing or url not in self.documents:
            raise FetchFailed("HTTP 503")
        document = self.documents[url]
        return document if isinstance(document, bytes) else json.dumps(document).encode()

    @property
    def urls(self) -> list[str]:
        return [c[0] for c in self.calls]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def keys(fetch: FakeFetch, clock: FakeClock, **overrides: Any) -> IssuerKeys:
    return IssuerKeys(fetch, clock, settings(**overrides))


# -- the cache ---------------------------------------------------------------------------

def test_discovery_then_jwks_are_fetched_once_and_kept_for_the_cache_period(clock):
    fetch = FakeFetch()
    cache = keys(fetch, clock)
    assert cache.key(ISSUER, "k1").alg == "RS256"
    clock.advance(599)
    cache.key(ISSUER, "k1")
    assert fetch.urls == [ISSUER + "/.well-known/openid-configuration", JWKS_URI]
    clock.advance(1)
    cache.key(ISSUER, "k1")
    assert len(fetch.calls) == 4


def test_a_failure_is_remembered_for_the_negative_cache_period(clock):
    fetch = FakeFetch()
    fetch.failing = True
    cache = keys(fetch, clock)
    for _ in range(10):
        with pytest.raises(Refused, match="issuer unavailable"):
            cache.key(ISSUER, "k1")
    assert len(fetch.calls) == 1
    clock.advance(29)
    with pytest.raises(Refused):
        cache.key(ISSUER, "k1")
    assert len(fetch.calls) == 1
    clock.advance(1)
    fetch.failing = False
    cache.key(ISSUER, "k1")
    assert len(fetch.calls) == 3


def test_an_unknown_kid_refetches_at_most_once_per_negative_cache_period(clock):
    fetch = FakeFetch()
    cache = keys(fetch, clock)
    cache.key(ISSUER, "k1")
    for _ in range(3):
        clock.advance(9)
        with pytest.raises(Refused, match="unknown kid"):
            cache.key(ISSUER, "k2")     # within 30 s of the fetch: no refetch
    assert len(fetch.calls) == 2
    clock.advance(3)
    fetch.documents[JWKS_URI] = {"keys": [RSA.jwk, EC.jwk | {"kid": "k2"}]}
    assert cache.key(ISSUER, "k2").kty == "EC"
    assert len(fetch.calls) == 4
    for _ in range(5):
        clock.advance(5)
        with pytest.raises(Refused, match="unknown kid"):
            cache.key(ISSUER, "k3")
    assert len(fetch.calls) == 4
    clock.advance(5)
    with pytest.raises(Refused, match="unknown kid"):
        cache.key(ISSUER, "k3")         # 30 s after the refetch: one more
    assert len(fetch.calls) == 6
    assert cache.key(ISSUER, "k1").kty == "RSA"      # known keys keep working meanwhile


def test_a_failed_refetch_for_an_unknown_kid_keeps_the_known_keys(clock):
    fetch = FakeFetch()
    cache = keys(fetch, clock)
    cache.key(ISSUER, "k1")
    clock.advance(30)
    fetch.failing = True
    with pytest.raises(Refused):
        cache.key(ISSUER, "k9")
    assert cache.key(ISSUER, "k1").kty == "RSA"
    assert len(fetch.calls) == 3


def test_discovery_must_name_the_same_issuer_exactly(clock):
    for named in (ISSUER + "/", "https://CI.example.com", "https://evil.example.com", None):
        fetch = FakeFetch()
        fetch.documents[ISSUER + "/.well-known/openid-configuration"]["issuer"] = named
        with pytest.raises(Refused, match="another issuer"):
            keys(fetch, clock).key(ISSUER, "k1")
        assert fetch.urls == [ISSUER + "/.well-known/openid-configuration"]


def test_an_issuer_with_a_path_has_its_discovery_under_that_path(clock):
    issuer = "https://gitlab.example.com/ci"
    fetch = FakeFetch({issuer + "/.well-known/openid-configuration":
                       {"issuer": issuer + "/", "jwks_uri": JWKS_URI},
                       JWKS_URI: {"keys": [RSA.jwk]}})
    keys(fetch, clock).key(issuer + "/", "k1")
    assert fetch.urls[0] == issuer + "/.well-known/openid-configuration"


@pytest.mark.parametrize("document", [
    b"not json", b"[]", json.dumps({"keys": "x"}).encode(), json.dumps({"keys": []}).encode(),
    json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k1"}]}).encode(),
    json.dumps({"keys": [RSA.jwk | {"use": "enc"}]}).encode(),
    json.dumps({"keys": [RSA.jwk | {"alg": "RS512"}]}).encode(),
    json.dumps({"keys": [{"kty": "RSA", "kid": "k1", "n": "AQAB", "e": "AQAB"}]}).encode(),
])
def test_a_jwks_without_a_usable_signing_key_is_a_failure(clock, document):
    fetch = FakeFetch()
    fetch.documents[JWKS_URI] = document
    with pytest.raises(Refused, match="issuer unavailable"):
        keys(fetch, clock).key(ISSUER, "k1")


def test_a_small_rsa_key_is_not_used(clock):
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    jwk = {**RSAAlgorithm.to_jwk(small.public_key(), as_dict=True), "kid": "small"}
    fetch = FakeFetch()
    fetch.documents[JWKS_URI] = {"keys": [RSA.jwk, jwk]}
    with pytest.raises(Refused, match="unknown kid"):
        keys(fetch, clock).key(ISSUER, "small")


def test_a_token_without_kid_uses_the_only_key_and_no_other(clock):
    fetch = FakeFetch()
    assert keys(fetch, clock).key(ISSUER, None).kty == "RSA"
    fetch = FakeFetch()
    fetch.documents[JWKS_URI] = {"keys": [RSA.jwk, EC.jwk]}
    with pytest.raises(Refused):
        keys(fetch, clock).key(ISSUER, None)


def test_a_key_is_used_only_with_its_algorithm_and_type(clock):
    rsa_key = keys(FakeFetch(), clock).key(ISSUER, "k1")
    assert rsa_key.verifies("RS256") and not rsa_key.verifies("PS256")   # the JWK says RS256
    assert not rsa_key.verifies("ES256")
    fetch = FakeFetch()
    fetch.documents[JWKS_URI] = {"keys": [{k: v for k, v in RSA.jwk.items() if k != "alg"},
                                          EC.jwk]}
    cache = keys(fetch, clock)
    assert cache.key(ISSUER, "k1").verifies("PS256")
    assert cache.key(ISSUER, "e1").verifies("ES256")
    assert not cache.key(ISSUER, "e1").verifies("ES384")


# -- which URLs may be fetched -------------------------------------------------------------

@pytest.mark.parametrize("url", ["http://ci.example.com", "ftp://ci.example.com",
                                 "file:///etc/passwd", "https://user:pw@ci.example.com",
                                 "https://ci.example.com?x=1", "https://ci.example.com#f",
                                 "https://10.0.0.5", "https://169.254.169.254",
                                 "https://127.0.0.1", "http://127.0.0.1:8080", "https://[::1]",
                                 "https://", "https://ci.example.com:99999", "not a url"])
def test_only_https_issuers_with_a_public_host_are_fetched_by_default(clock, url):
    assert url_problem(url, allow_http=False, issuer=True) is not None
    fetch = FakeFetch()
    with pytest.raises(Refused, match="issuer URL refused"):
        keys(fetch, clock).key(url, "k1")
    assert fetch.calls == []


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:9000",
                                 "http://[::1]:9000", "https://127.0.0.1:8443"])
def test_loopback_issuers_over_http_only_where_the_setting_allows(url):
    assert url_problem(url, allow_http=True, issuer=True) is None
    assert url_problem(url, allow_http=False, issuer=True) is not None


@pytest.mark.parametrize("url", ["http://ci.example.com", "http://10.0.0.5", "http://192.168.1.1"])
def test_the_setting_never_allows_http_to_other_hosts(url):
    assert url_problem(url, allow_http=True, issuer=True) is not None


def test_a_jwks_uri_follows_the_same_rules(clock):
    for bad in ("http://ci.example.com/jwks", "https://10.1.2.3/jwks", "file:///jwks", 42):
        fetch = FakeFetch()
        fetch.documents[ISSUER + "/.well-known/openid-configuration"]["jwks_uri"] = bad
        with pytest.raises(Refused):
            keys(fetch, clock).key(ISSUER, "k1")
        assert len(fetch.calls) == 1


def test_https_issuers_with_public_hosts_are_allowed():
    for url in ("https://token.actions.githubusercontent.com", "https://gitlab.com",
                "https://8.8.8.8", "https://gitlab.example.com/group"):
        assert url_problem(url, allow_http=False, issuer=True) is None


# -- time and size -------------------------------------------------------------------------

def test_a_fetch_gets_the_configured_timeout_and_size_limit(clock):
    fetch = FakeFetch()
    keys(fetch, clock, federation_fetch_timeout_ms=2500, federation_max_document_bytes=1000) \
        .key(ISSUER, "k1")
    assert {(t, n) for _, t, n in fetch.calls} == {(2.5, 1000)}


def test_a_fetch_never_waits_past_the_invocations_deadline(clock):
    fetch = FakeFetch()
    with deadline.bound(lambda: 1800.0):
        keys(fetch, clock).key(ISSUER, "k1")     # 1800 ms left, 1000 kept back
    assert all(abs(t - 0.8) < 1e-9 for _, t, _ in fetch.calls)


def test_no_fetch_starts_without_time_left_and_nothing_is_remembered(clock):
    fetch = FakeFetch()
    cache = keys(fetch, clock)
    with deadline.bound(lambda: 900.0), pytest.raises(StorageUnavailable):
        cache.key(ISSUER, "k1")
    assert fetch.calls == []
    cache.key(ISSUER, "k1")                      # not negatively cached: not the issuer's fault
    assert len(fetch.calls) == 2


class _Server:
    """A local HTTP server answering each path with (status, headers, body)."""

    def __init__(self, routes: dict[str, tuple[int, dict[str, str], bytes]]) -> None:
        routes_ = routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, headers, data = routes_.get(self.path, (404, {}, b"{}"))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# The local stage's fetcher: these documents are served on 127.0.0.1.
http_get = HttpGet(allow_loopback=True)


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server({"/ok": (200, {}, b'{"a": 1}'), "/big": (200, {}, b"x" * 5000),
                 "/moved": (302, {"Location": "/ok"}, b""), "/gone": (404, {}, b"{}")})
    yield s
    s.close()


def test_http_get_reads_a_document(server):
    assert http_get(server.url + "/ok", 2.0, 1000) == b'{"a": 1}'


def test_http_get_refuses_a_document_over_the_limit(server):
    with pytest.raises(FetchFailed, match="larger than"):
        http_get(server.url + "/big", 2.0, 4999)
    assert len(http_get(server.url + "/big", 2.0, 5000)) == 5000


def test_http_get_follows_no_redirect_and_fails_on_an_error_status(server):
    with pytest.raises(FetchFailed, match="302"):
        http_get(server.url + "/moved", 2.0, 1000)
    with pytest.raises(FetchFailed, match="404"):
        http_get(server.url + "/gone", 2.0, 1000)


def test_http_get_fails_on_a_closed_port_and_other_schemes():
    with pytest.raises(FetchFailed):
        http_get("http://127.0.0.1:9/", 1.0, 1000)
    with pytest.raises(FetchFailed, match="URL refused"):
        http_get("file:///etc/hostname", 1.0, 1000)
    with pytest.raises(FetchFailed, match="not HTTPS"):
        http_get("ftp://127.0.0.1/x", 1.0, 1000)


# -- trust policies ------------------------------------------------------------------------

POLICY = TrustPolicy(id="t", issuer=ISSUER, audience="tessera",
                     subject="repo:acme/app:ref:refs/heads/main",
                     claims={"repository_owner": "acme", "run_attempt": "1", "fork": "false"})
CLAIMS = {"iss": ISSUER, "aud": "tessera", "sub": "repo:acme/app:ref:refs/heads/main",
          "repository_owner": "acme", "run_attempt": 1, "fork": False}


def test_a_policy_matches_issuer_audience_subject_and_claims():
    assert policy_matches(POLICY, CLAIMS)
    assert policy_matches(POLICY, {**CLAIMS, "aud": ["x", "tessera"]})
    assert not policy_matches(POLICY, {**CLAIMS, "iss": ISSUER + "/"})
    assert not policy_matches(POLICY, {**CLAIMS, "aud": "tessera-prod"})
    assert not policy_matches(POLICY, {**CLAIMS, "aud": ["tessera-prod"]})
    assert not policy_matches(POLICY, {**CLAIMS, "sub": "repo:acme/app:ref:refs/heads/main2"})


def test_claims_compare_as_strings_and_a_missing_or_structured_claim_never_matches():
    assert not policy_matches(POLICY, {**CLAIMS, "repository_owner": "Acme"})
    assert not policy_matches(POLICY, {**CLAIMS, "run_attempt": 2})
    assert not policy_matches(POLICY, {**CLAIMS, "fork": True})
    assert not policy_matches(POLICY, {k: v for k, v in CLAIMS.items() if k != "fork"})
    assert not policy_matches(POLICY, {**CLAIMS, "repository_owner": ["acme"]})
    assert policy_matches(POLICY, {**CLAIMS, "run_attempt": "1", "fork": "false"})


def test_a_trailing_star_is_a_prefix_and_nothing_else_is_a_wildcard():
    assert subject_matches("repo:acme/app:*", "repo:acme/app:ref:refs/heads/x")
    assert subject_matches("repo:acme/app:*", "repo:acme/app:")
    assert not subject_matches("repo:acme/app:*", "repo:acme/app")
    assert not subject_matches("repo:*:ref:refs/heads/main", "repo:acme/app:ref:refs/heads/main")
    assert subject_matches("repo:*:ref", "repo:*:ref")


def test_the_audience_names_a_well_formed_role():
    assert role_name_of("urn:tessera:role:alice.ci") == "alice.ci"
    for bad in ("urn:tessera:role:", "urn:tessera:role:alice", "alice.ci",
                "urn:tessera:role:Alice.ci", "urn:tessera:role:alice.ci ", "URN:tessera:role:alice.ci"):
        assert role_name_of(bad) is None


def test_a_role_tokens_scopes_are_its_distinct_actions_sorted():
    assert scopes_of(["data:put@urn:tessera:data:a.x", "data:get@urn:tessera:data:a.y",
                        "data:get@urn:tessera:data:a.z"]) == ("data:get", "data:put")
    assert scopes_of([]) == ()


def test_the_federation_settings_and_their_defaults():
    defaults = Settings.from_env({})
    assert defaults.federation_allow_http is False
    assert (defaults.federation_jwks_cache_seconds, defaults.federation_negative_cache_seconds,
            defaults.federation_fetch_timeout_ms, defaults.federation_max_document_bytes) == (
        600, 30, 3000, 65536)
    local = Settings.from_env({"TESSERA_FEDERATION_ALLOW_HTTP": "true",
                               "TESSERA_FEDERATION_JWKS_CACHE_SECONDS": "60",
                               "TESSERA_FEDERATION_NEGATIVE_CACHE_SECONDS": "5",
                               "TESSERA_FEDERATION_FETCH_TIMEOUT_MS": "1500",
                               "TESSERA_FEDERATION_MAX_DOCUMENT_BYTES": "4096"})
    assert local.federation_allow_http is True
    assert (local.federation_jwks_cache_seconds, local.federation_negative_cache_seconds,
            local.federation_fetch_timeout_ms, local.federation_max_document_bytes) == (
        60, 5, 1500, 4096)
