"""What cannot be stored is refused at the edge (issue 10, items 1 and 2; issue 9 H).

Empty or over-long client ids are ``invalid_client`` before any lookup and are
never cached; strings that cannot be encoded as UTF-8 (lone surrogates) are 422
problem JSON before any storage call; empty OAuth parameters count as omitted
(RFC 6749 §3.2).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from bench.lambda_http import LambdaDriver, Request
from tests.api.helpers import CLI, RS, RS_SECRET, basic, bearer, body, form, seed, tokens

JSON = {"Content-Type": "application/json"}
OAUTH_ENDPOINTS = ["/oauth/token", "/oauth/introspect", "/oauth/revoke",
                   "/oauth/device_authorization"]
LONE = "\ud800"


@pytest.fixture(autouse=True)
def _seeded(ctr: Any) -> None:
    seed(ctr)


@pytest.fixture
def dynamo_calls(ctr: Any) -> Iterator[list[str]]:
    """Names of the DynamoDB operations the service calls, seen through botocore's hooks."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    events = ctr.dynamodb().meta.events
    events.register("before-call.dynamodb", record)
    yield calls
    events.unregister("before-call.dynamodb", record)


def raw_basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def assert_invalid_client(r: Any) -> None:
    assert r.status_code == 401, r.body
    assert body(r)["error"] == "invalid_client"
    assert r.headers["WWW-Authenticate"].startswith("Basic")


def lambda_invoke(method: str, path: str, headers: dict[str, str], **path_params: str) -> Any:
    """Serve one request through the Lambda handler with path parameters as given
    (API Gateway decodes them; the local server cannot send a lone surrogate)."""
    from app import app

    driver = LambdaDriver(app)
    event = driver.event(Request(method, path, headers))
    event["pathParameters"] = {**(event["pathParameters"] or {}), **path_params}
    return driver.invoke(event)


# -- item 10.1: client ids that cannot be keys ---------------------------------------

@pytest.mark.parametrize("path", OAUTH_ENDPOINTS)
@pytest.mark.parametrize("client_id", ["", "x" * 129, "é" * 1100])
def test_unstorable_basic_client_id_is_invalid_client_and_not_cached(client, ctr, dynamo_calls,
                                                                      path, client_id):
    r = form(client, path, headers=raw_basic(client_id, "secret"), token="t",
             grant_type="password", username="alice", password="password4alice")
    assert_invalid_client(r)
    assert dynamo_calls == []
    assert ctr.client_directory.cached(client_id) == (False, None)


@pytest.mark.parametrize("path", OAUTH_ENDPOINTS)
@pytest.mark.parametrize("length", [129, 2049, 5000])
def test_overlong_form_client_id_is_invalid_client_and_not_cached(client, ctr, dynamo_calls, path,
                                                                  length):
    client_id = "c" * length
    r = form(client, path, client_id=client_id, token="t", grant_type="password",
             username="alice", password="password4alice")
    assert_invalid_client(r)
    assert dynamo_calls == []
    assert ctr.client_directory.cached(client_id) == (False, None)


# -- item 10.2: strings that cannot be encoded ------------------------------------------

@pytest.mark.parametrize("path", OAUTH_ENDPOINTS)
def test_a_percent_encoded_surrogate_in_a_form_is_invalid_request(client, dynamo_calls, path):
    r = client.http.post(path, body=b"client_id=" + CLI.encode() + b"&scope=%ED%A0%80",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and body(r)["error"] == "invalid_request"
    assert dynamo_calls == []


def post_json(client: Any, method: str, path: str, token: str, text: str) -> Any:
    return getattr(client.http, method)(path, body=text.encode("ascii"),
                                        headers={**JSON, **bearer(token)})


def new_pat(client: Any, token: str) -> dict[str, Any]:
    payload = json.dumps({"description": "ci", "expires_at": "2027-02-15", "scopes": ["api:read"]})
    r = post_json(client, "post", "/v1/tokens", token, payload)
    assert r.status_code == 201, r.body
    return body(r)


def assert_unprocessable(r: Any) -> None:
    assert r.status_code == 422, r.body
    assert r.headers["Content-Type"] == "application/problem+json"
    assert "Retry-After" not in r.headers
    assert body(r)["title"] == "Unprocessable Content"


@pytest.mark.parametrize("payload", [
    '{"description": "\\ud800", "expires_at": "2027-02-15", "scopes": ["api:read"]}',
    '{"description": "ok", "expires_at": "2027-02-15", "scopes": ["\\udfff"]}',
    '{"description": "ok", "expires_at": "2027-02-15", "scopes": ["api:read"], "\\ud800": 1}',
])
def test_lone_surrogate_in_a_new_token_is_422_and_writes_nothing(client, dynamo_calls, payload):
    access = tokens(client)["access_token"]
    dynamo_calls.clear()
    r = post_json(client, "post", "/v1/tokens", access, payload)
    assert_unprocessable(r)
    assert set(dynamo_calls) <= {"BatchGetItem"}   # the caller's authentication, nothing else


@pytest.mark.parametrize("method, suffix", [("post", "/copy"), ("patch", "")])
def test_lone_surrogate_in_copy_or_edit_is_422_and_writes_nothing(client, dynamo_calls,
                                                                 method, suffix):
    access = tokens(client)["access_token"]
    pat = new_pat(client, access)
    dynamo_calls.clear()
    r = post_json(client, method, f"/v1/tokens/{pat['id']}{suffix}", access,
                  '{"description": "a\\ud800b"}')
    assert_unprocessable(r)
    assert set(dynamo_calls) <= {"BatchGetItem"}   # the caller's authentication, nothing else


def test_lone_surrogate_in_bulk_remove_ids_is_422(client):
    access = tokens(client)["access_token"]
    r = post_json(client, "post", "/v1/tokens/remove", access, '{"ids": ["\\ud800"]}')
    assert_unprocessable(r)


def test_paired_surrogates_are_an_ordinary_character(client):
    access = tokens(client)["access_token"]
    payload = '{"description": "rocket \\ud83d\\ude80", "expires_at": "2027-02-15", ' \
              '"scopes": ["api:read"]}'
    r = post_json(client, "post", "/v1/tokens", access, payload)
    assert r.status_code == 201 and body(r)["description"] == "rocket \U0001f680"


def test_json_body_that_cannot_be_encoded_is_400_not_500(client):
    access = tokens(client)["access_token"]
    from app import app

    driver = LambdaDriver(app)
    event = driver.event(Request("POST", "/v1/tokens", {**JSON, **bearer(access)}, b"{}"))
    event["body"] = '{"description": "' + LONE + '"}'   # a proxy event body is text
    r = driver.invoke(event)
    assert r.status == 400 and r.json()["status"] == 400


@pytest.mark.parametrize("method, path, params", [
    ("DELETE", "/v1/sessions/x", {"session_id": LONE * 16}),
    ("DELETE", "/v1/sessions/x", {"session_id": "s" * 2049}),
    ("DELETE", "/v1/sessions/x", {"session_id": "s" * 40}),
    ("DELETE", "/v1/tokens/x", {"pat_id": LONE * 16}),
    ("GET", "/v1/tokens/x", {"pat_id": LONE * 16}),
    ("GET", "/v1/tokens/x", {"pat_id": "p" * 2049}),
])
def test_path_ids_that_cannot_be_keys_are_404_without_a_storage_call(client, dynamo_calls,
                                                                     method, path, params):
    access = tokens(client)["access_token"]
    dynamo_calls.clear()
    r = lambda_invoke(method, path, bearer(access), **params)
    assert r.status == 404, r.body
    assert r.headers["content-type"] == "application/problem+json"
    assert set(dynamo_calls) <= {"BatchGetItem"}   # the caller's authentication, nothing else


# -- issue 9 H: empty parameters are omitted (RFC 6749 §3.2) -------------------------

def test_empty_scope_on_the_token_endpoint_is_the_default_scope(client, ctr):
    t = tokens(client, scope="")
    assert t["scope"] == " ".join(ctr.client_directory.get(CLI).scopes)


def test_empty_scope_on_device_authorization_is_the_default_scope(client, ctr):
    r = form(client, "/oauth/device_authorization", client_id=CLI, scope="")
    assert r.status_code == 200, r.body


def test_empty_client_id_beside_basic_is_omitted(client):
    t = tokens(client)
    r = form(client, "/oauth/introspect", headers=basic(RS, RS_SECRET), client_id="",
             token=t["access_token"])
    assert r.status_code == 200 and body(r)["active"] is True


def test_empty_client_secret_of_a_public_client_is_omitted(client):
    r = form(client, "/oauth/token", grant_type="password", client_id=CLI, client_secret="",
             username="alice", password="password4alice")
    assert r.status_code == 200, r.body


def test_empty_token_is_still_a_missing_parameter(client):
    r = form(client, "/oauth/introspect", headers=basic(RS, RS_SECRET), token="")
    assert r.status_code == 400 and body(r)["error"] == "invalid_request"
    assert "token" in body(r)["error_description"]
