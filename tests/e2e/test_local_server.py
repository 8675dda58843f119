"""The local runner over real HTTP: what `make run` gives an operator."""

from __future__ import annotations

import json
import signal
import socket
from urllib.parse import urlsplit

import pytest

from tests.e2e.support import http, start_server

pytestmark = pytest.mark.e2e

PROBLEM_401 = {"type": "about:blank", "title": "Unauthorized", "status": 401,
               "detail": "Provided token is not valid"}


def test_discovery_is_served_with_the_local_issuer(live_server):
    response = http("GET", live_server.base_url + "/.well-known/openid-configuration")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    doc = response.json()
    assert doc["issuer"] == live_server.base_url
    assert doc["jwks_uri"] == live_server.base_url + "/.well-known/jwks.json"


def test_jwks_publishes_ec_p256_keys_with_kids(live_server):
    response = http("GET", live_server.base_url + "/.well-known/jwks.json")
    assert response.status == 200
    keys = response.json()["keys"]
    assert keys
    for key in keys:
        assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256"
        assert key["kid"]
        assert "d" not in key
    assert len({key["kid"] for key in keys}) == len(keys)


def test_whoami_with_a_bad_bearer_token_is_the_spec_401(live_server):
    response = http("GET", live_server.base_url + "/v1/me",
                    headers={"Authorization": "Bearer not-a-token"})
    assert response.status == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json() == PROBLEM_401


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer whatever"}])
def test_unknown_route_is_problem_json_404(live_server, headers):
    response = http("GET", live_server.base_url + "/no/such/thing?x=1", headers=headers)
    assert response.status == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json() == {"type": "about:blank", "title": "Not Found", "status": 404,
                               "detail": "No resource at /no/such/thing"}


def test_unknown_route_with_a_body_is_problem_json_404(live_server):
    response = http("POST", live_server.base_url + "/oauth/nothing", body=b"a=b",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 404
    assert response.json()["title"] == "Not Found"


def test_demo_seed_is_loaded_and_the_admin_command_reaches_it(live_server):
    shown = live_server.admin("user", "show", "alice")
    assert shown.returncode == 0, shown.stderr
    alice = json.loads(shown.stdout)
    assert (alice["username"], alice["email"], alice["firstname"], alice["lastname"], alice["active"]) == (
        "alice", "alice@example.com", "Alice", "Liddell", True)
    client = json.loads(live_server.admin("client", "show", "cf83e1357eefb8bd").stdout)
    assert client["public"] is True
    assert "urn:ietf:params:oauth:grant-type:device_code" in client["grant_types"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_server_cleanly(tmp_path, signum):
    server = start_server(tmp_path, "--no-seed")
    address = urlsplit(server.base_url)
    assert server.stop(signum) == 0, server.log()
    assert "Traceback" not in server.log()
    with pytest.raises(OSError), socket.create_connection((address.hostname, address.port), timeout=1):
        pass
