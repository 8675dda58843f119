"""One issuer per stage: with TESSERA_ISSUER set, another Host is refused with 421
(RFC 9110 §15.5.20) in the format of the path (SPEC §7, §8)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.config import Settings
from chalicelib.routes.host import misdirected
from tests.api.helpers import CLI, form
from tests.conftest import TEST_SCRYPT_LOG_N

OTHER = "abc123.execute-api.eu-west-1.amazonaws.com"


def test_discovery_under_the_issuers_host_is_served(client: Any) -> None:
    response = client.http.get("/.well-known/openid-configuration", headers={"Host": "tessera.test"})
    assert response.status_code == 200
    assert json.loads(response.body)["issuer"] == "https://tessera.test"


def test_discovery_under_another_host_is_a_421_problem(client: Any) -> None:
    response = client.http.get("/.well-known/openid-configuration", headers={"Host": OTHER})
    assert response.status_code == 421
    assert response.headers["Content-Type"] == "application/problem+json"
    body = json.loads(response.body)
    assert body["status"] == 421 and body["title"] == "Misdirected Request"


def test_the_token_endpoint_under_another_host_answers_oauth_json(client: Any) -> None:
    response = form(client, "/oauth/token", headers={"Host": OTHER}, grant_type="password",
                    client_id=CLI, username="alice", password="password4alice")
    assert response.status_code == 421
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.body)["error"] == "invalid_request"


def test_a_page_under_another_host_answers_html(client: Any) -> None:
    response = client.http.get("/device", headers={"Host": OTHER})
    assert response.status_code == 421
    assert response.headers["Content-Type"].startswith("text/html")


def test_v1_under_another_host_is_refused_before_authentication(client: Any) -> None:
    response = client.http.get("/v1/me", headers={"Host": OTHER})
    assert response.status_code == 421
    assert response.headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("settings", [Settings(issuer="", table_prefix="test-",
                                               keys_secret_name="test/signing-keys", scrypt_log_n=TEST_SCRYPT_LOG_N)])
def test_without_a_configured_issuer_every_host_is_served(client: Any) -> None:
    response = client.http.get("/.well-known/openid-configuration", headers={"Host": OTHER})
    assert response.status_code == 200
    assert json.loads(response.body)["issuer"] == f"https://{OTHER}"


@pytest.mark.parametrize(("issuer", "host", "refused"), [
    ("https://id.example.com", "id.example.com", False),
    ("https://id.example.com", "ID.Example.COM:443", False),
    ("https://id.example.com/", "id.example.com", False),
    ("https://id.example.com:8443", "id.example.com:8443", False),
    ("https://id.example.com:8443", "id.example.com", True),
    ("https://id.example.com", "id.example.com.evil.test", True),
    ("https://id.example.com", OTHER, True),
    ("", OTHER, False),
    ("https://id.example.com", None, False),
    # The local runner's issuer: any loopback name of the same port.
    ("http://127.0.0.1:8000", "localhost:8000", False),
    ("http://127.0.0.1:8000", "[::1]:8000", False),
    ("http://127.0.0.1:8000", "localhost:9000", True),
    ("http://127.0.0.1:8000", "example.com:8000", True),
    ("https://localhost", "127.0.0.1", False),
])
def test_host_matching(issuer: str, host: str | None, refused: bool) -> None:
    assert misdirected(issuer, host) is refused
