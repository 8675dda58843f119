"""Discovery and access tokens as oauth4webapi (Node, from npm) processes them.

``make test`` installs the package (``tests/node/package.json``, pinned by its
lock file) and, on Debian, Node itself where it is missing; these tests are
skipped only on a machine without Node.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.api.helpers import body, seed
from tests.api.test_audiences import claims_of, password_pairs, token_request
from tests.conftest import ISSUER

NODE = shutil.which("node")
SCRIPT = Path(__file__).resolve().parents[1] / "node" / "relying_party.mjs"
ORDERS = "https://orders.example/api"
RS_CLI = "rs256-cli"

pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")


@pytest.fixture(autouse=True)
def _seeded(ctr: Any) -> None:
    seed(ctr)
    ctr.identities.create_client("orders-api", secret="orders-api-secret-value",
                                 resources=[ORDERS])
    ctr.identities.create_client(RS_CLI, public=True, grant_types=["password"],
                                 scopes=["openid", "api:read"],
                                 access_token_signed_response_alg="RS256")


def oauth4webapi(**payload: Any) -> subprocess.CompletedProcess[str]:
    assert NODE is not None
    assert (SCRIPT.parent / "node_modules" / "oauth4webapi").is_dir(), \
        "run `make node-deps` (make test does) to install tests/node's packages"
    return subprocess.run([NODE, str(SCRIPT)], input=json.dumps({"issuer": ISSUER, **payload}),
                          capture_output=True, text=True, timeout=60, check=False)


def processed(**payload: Any) -> dict[str, Any]:
    done = oauth4webapi(**payload)
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration",
                                  "/.well-known/oauth-authorization-server"])
def test_oauth4webapi_accepts_the_metadata_at_both_paths(client, path):
    doc = body(client.http.get(path))
    out = processed(discovery=doc)
    assert out["issuer"] == ISSUER and out["metadata"] == doc


def test_oauth4webapi_refuses_metadata_of_another_issuer(client):
    doc = body(client.http.get("/.well-known/openid-configuration"))
    done = oauth4webapi(discovery={**doc, "issuer": "https://other.example"})
    assert done.returncode == 1 and "OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED" in done.stderr


@pytest.mark.parametrize("client_id, alg", [("cf83e1357eefb8bd", "ES256"), (RS_CLI, "RS256")])
def test_oauth4webapi_validates_an_access_token_for_a_resource(client, ctr, client_id, alg):
    response = token_request(client, password_pairs(client_id, ORDERS))
    assert response.status_code == 200, response.body
    token = body(response)["access_token"]
    out = processed(discovery=body(client.http.get("/.well-known/openid-configuration")),
                    jwks=body(client.http.get("/.well-known/jwks.json")),
                    access_token=token, audience=ORDERS, now=ctr.clock.now())
    assert out["claims"]["aud"] == ORDERS and out["claims"]["client_id"] == client_id
    assert out["claims"]["sub"] == claims_of(token)["sub"]
    assert jwt.get_unverified_header(token)["alg"] == alg


def test_oauth4webapi_refuses_a_token_meant_for_another_audience(client, ctr):
    token = body(token_request(client, password_pairs(RS_CLI, ORDERS)))["access_token"]
    done = oauth4webapi(discovery=body(client.http.get("/.well-known/openid-configuration")),
                        jwks=body(client.http.get("/.well-known/jwks.json")),
                        access_token=token, audience=ISSUER, now=ctr.clock.now())
    assert done.returncode == 1 and "aud" in done.stderr
