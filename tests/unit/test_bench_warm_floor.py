"""The stack's floor (bench.warm_floor): a refresh rotates once and answers real tokens,
introspection tells the current token from a used one, and every row is measured."""

from __future__ import annotations

from typing import Any

import boto3
import jwt
import pytest
from moto import mock_aws

from bench import warm_floor
from bench.cases import YOUNG_ROTATIONS
from bench.lambda_http import LambdaDriver, Request
from chalicelib.services.tokens import at_hash

OPENID = "openid profile email sessions:manage"
PLAIN = "profile email sessions:manage"


def _template(scope: str) -> dict[str, Any]:
    """A session item in DynamoDB JSON with the attributes the floor reads."""
    return {"id": {"S": "x"}, "user_id": {"S": "u_floor"}, "client_id": {"S": "tessera-cli"},
            "scope": {"S": scope}, "created_at": {"N": "1700000000"},
            "auth_time": {"N": "1700000000"}, "expires_at": {"N": "4000000000"},
            "rt_hash": {"S": "-"}}


@pytest.fixture
def floor() -> Any:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        warm_floor.create_table(client)
        warm_floor.create_table(client)         # a second run finds its table there
        es256, rs256 = warm_floor._keys()
        driver = LambdaDriver(warm_floor.floor_app(client, warm_floor.TABLE, es256, rs256))
        yield client, driver, es256, rs256


def _refresh(driver: LambdaDriver, token: str) -> Any:
    return driver(Request("POST", "/token", warm_floor.FORM,
                          f"grant_type=refresh_token&refresh_token={token}".encode()))


def _claims(token: str, key: Any, audience: str) -> dict[str, Any]:
    return jwt.decode(token, key.public_key(), algorithms=["ES256", "RS256"], audience=audience,
                      issuer=warm_floor.ISSUER)


def test_a_refresh_rotates_once_and_answers_an_es256_access_token_and_an_rs256_id_token(floor):
    client, driver, es256, rs256 = floor
    sessions = warm_floor.Sessions(client, warm_floor.TABLE, _template(OPENID))
    first = sessions.token()

    answer = _refresh(driver, first)
    assert answer.status == 200
    body = answer.json()
    session_id = first.partition(".")[0]
    assert body["refresh_token"].startswith(session_id + ".") and body["refresh_token"] != first
    access = _claims(body["access_token"], es256, warm_floor.ISSUER)
    assert (access["sub"], access["sid"], access["scope"]) == ("u_floor", session_id, OPENID)
    assert jwt.get_unverified_header(body["id_token"])["alg"] == "RS256"
    id_token = _claims(body["id_token"], rs256, warm_floor.CLIENT_ID)
    assert id_token["at_hash"] == at_hash(body["access_token"])
    assert id_token["auth_time"] == 1700000000
    # the rotation is one conditional write: the used token is refused
    again = _refresh(driver, first)
    assert (again.status, again.json()) == (400, {"error": "invalid_grant"})
    assert _refresh(driver, body["refresh_token"]).status == 200


def test_a_session_without_openid_refreshes_without_an_id_token(floor):
    client, driver, _, _ = floor
    token = warm_floor.Sessions(client, warm_floor.TABLE, _template(PLAIN)).token()

    assert "id_token" not in _refresh(driver, token).json()


def test_introspection_tells_the_current_token_from_a_used_one(floor):
    client, driver, _, _ = floor
    token = warm_floor.Sessions(client, warm_floor.TABLE, _template(PLAIN)).token()
    successor = _refresh(driver, token).json()["refresh_token"]

    def introspect(t: str) -> dict[str, Any]:
        return driver(Request("POST", "/introspect", warm_floor.FORM, f"token={t}".encode())).json()

    assert introspect(token) == {"active": False}
    active = introspect(successor)
    assert active["active"] is True and active["sub"] == "u_floor" and active["scope"] == PLAIN
    assert introspect("nosuchsession.secret") == {"active": False}


def test_a_session_item_serves_its_rotations_then_a_new_one_is_made(floor):
    client, _, _, _ = floor
    sessions = warm_floor.Sessions(client, warm_floor.TABLE, _template(PLAIN))
    first = sessions.token()
    for i in range(YOUNG_ROTATIONS):
        assert sessions.token().startswith(first.partition(".")[0] + ".")
        sessions.rotated(f"{first.partition('.')[0]}.rotated{i}")
    assert not sessions.token().startswith(first.partition(".")[0] + ".")


def test_measure_gives_each_row_of_the_peer_its_own_cpu(floor):
    client, _, _, _ = floor
    logged: list[str] = []

    out = warm_floor.measure(client, {"refresh": _template(OPENID), "refresh_no_openid": _template(PLAIN)},
                             iterations=4, log=logged.append)

    assert set(out) == set(warm_floor.CASES)
    for figures in out.values():
        assert figures["n"] == 4
        assert 0 < figures["own_cpu_ms"]["p10"] <= figures["own_cpu_ms"]["median"]
    # an RS256 signature more than without openid
    assert out["refresh"]["own_cpu_ms"]["median"] > out["refresh_no_openid"]["own_cpu_ms"]["median"]
    assert logged and "the stack's floor" in logged[0]
