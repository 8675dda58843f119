"""bench.cpu's measure of the DynamoDB client's part: every call whole, failures too."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from bench.cpu import BotocoreTime


@pytest.fixture
def client() -> Any:
    with mock_aws():
        c = boto3.client("dynamodb", region_name="us-east-1")
        c.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                       AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                       BillingMode="PAY_PER_REQUEST")
        yield c


def test_every_call_is_inside_the_client_whole_a_failed_condition_included(client: Any) -> None:
    inside = BotocoreTime(client)
    c0 = time.process_time()
    client.put_item(TableName="t", Item={"pk": {"S": "a"}})
    with pytest.raises(ClientError):
        client.put_item(TableName="t", Item={"pk": {"S": "a"}},
                        ConditionExpression="attribute_not_exists(pk)")
    whole = time.process_time() - c0
    measured = inside.take()
    # moto answers in this process, so nearly all of the two calls is the client's
    assert 0.8 * whole <= measured <= whole
    assert inside.take() == 0.0
    inside.close()
    client.get_item(TableName="t", Key={"pk": {"S": "a"}})
    assert inside.take() == 0.0
    assert "_make_api_call" not in vars(client)
