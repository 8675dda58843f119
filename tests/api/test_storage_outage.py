"""SPEC §8: a DynamoDB throttle or outage gives 503 with Retry-After, and no
token is issued whose state was not durably written."""

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from chalicelib import container as container_module
from chalicelib.container import Container
from chalicelib.storage.dynamo import aws_client
from tests.api.helpers import bearer, body, login, refresh, seed, tokens


class FailingWrites:
    """A DynamoDB client whose writes fail the way DynamoDB fails under load."""

    WRITES = frozenset({"put_item", "update_item", "delete_item", "transact_write_items"})

    def __init__(self, client: Any, error: Exception) -> None:
        self._client, self._error = client, error

    def __getattr__(self, name: str) -> Any:
        if name in self.WRITES:
            def fail(**_: Any) -> Any:
                raise self._error
            return fail
        return getattr(self._client, name)


THROTTLED = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                   "Message": "Rate exceeded"}}, "PutItem")
UNREACHABLE = EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")


@pytest.fixture
def failing(ctr):
    seed(ctr)

    def install(error: Exception) -> Container:
        broken = Container(ctr.settings, ctr.clock, client_factory=lambda s: (
            FailingWrites(aws_client(s), error) if s == "dynamodb" else aws_client(s)))
        broken.keyring.current_kid()   # keys exist already (Secrets Manager is healthy)
        return container_module.use(broken)

    yield install
    container_module.use(ctr)


@pytest.mark.parametrize("error", [THROTTLED, UNREACHABLE], ids=["throttled", "unreachable"])
def test_login_during_an_outage_is_503_and_issues_nothing(client, ctr, failing, error):
    failing(error)
    r = login(client)
    assert r.status_code == 503
    assert r.headers["Retry-After"]
    parsed = body(r)
    assert parsed["error"] == "temporarily_unavailable" and "access_token" not in parsed
    assert "refresh_token" not in r.body.decode()


def test_refresh_during_an_outage_keeps_the_old_token_valid(client, ctr, failing):
    t = tokens(client)
    failing(THROTTLED)
    r = refresh(client, t["refresh_token"])
    assert r.status_code == 503 and "refresh_token" not in body(r)
    container_module.use(ctr)
    assert refresh(client, t["refresh_token"]).status_code == 200


def test_api_during_an_outage_is_problem_json_503(client, ctr, failing):
    t = tokens(client)
    failing(THROTTLED)
    r = client.http.post("/v1/logout", headers=bearer(t["access_token"]))
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert r.headers["Content-Type"] == "application/problem+json"
    assert body(r)["status"] == 503
