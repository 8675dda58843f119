"""The benchmark's bare-call replay (``bench.bare``) on moto: a recorded call replays
on a default client against the state the request met, with the request's outcome."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from bench.bare import SUCCESS, Call, CallRecorder, ReplayMismatch, replay, replay_request
from bench.dynamo_meter import TableInfo

TABLE = "bench-replay"
KEY = {"id": {"S": "a"}}


@pytest.fixture
def clients(aws: None) -> Iterator[tuple[Any, Any, Any]]:
    """(the service's client, the shadow, the bare client), and one table."""
    service, shadow, bare = (boto3.client("dynamodb") for _ in range(3))
    service.create_table(TableName=TABLE, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
    yield service, shadow, bare


@pytest.fixture
def recorder(clients: tuple[Any, Any, Any]) -> Iterator[CallRecorder]:
    service, shadow, _ = clients
    r = CallRecorder(service, shadow, {TABLE: TableInfo(("id",))})
    yield r
    r.close()


def rotate(client: Any, old: str, new: str) -> None:
    """A refresh-like rotation: one conditional UpdateItem on the current value."""
    client.update_item(TableName=TABLE, Key=KEY, UpdateExpression="SET v = :new",
                       ConditionExpression="v = :old",
                       ExpressionAttributeValues={":old": {"S": old}, ":new": {"S": new}},
                       ReturnValues="ALL_NEW")


def item(client: Any) -> dict[str, Any] | None:
    found: dict[str, Any] | None = client.get_item(TableName=TABLE, Key=KEY,
                                                   ConsistentRead=True).get("Item")
    return found


def test_a_conditional_update_replays_on_its_pre_image_with_the_same_success(
        clients: tuple[Any, Any, Any], recorder: CallRecorder) -> None:
    service, shadow, bare = clients
    service.put_item(TableName=TABLE, Item={**KEY, "v": {"S": "one"}})     # not recorded
    requests = []
    for old, new in (("one", "two"), ("two", "three")):
        recorder.start()
        rotate(service, old, new)
        requests.append(recorder.stop())
    (first,), _ = requests
    assert first.operation == "UpdateItem" and first.outcome == SUCCESS
    assert first.pre_images == [(TABLE, KEY, {**KEY, "v": {"S": "one"}})]
    # each rotation's condition holds only on its own pre-image: both replay as successes
    cpu = replay(bare, shadow, requests, warmup=1)
    assert len(cpu) == 2 and all(c >= 0 for c in cpu)
    assert item(shadow) == {**KEY, "v": {"S": "three"}}        # as the requests left it


def test_a_failed_condition_replays_as_the_same_failure(clients: tuple[Any, Any, Any],
                                                        recorder: CallRecorder) -> None:
    service, shadow, bare = clients
    service.put_item(TableName=TABLE, Item={**KEY, "v": {"S": "two"}})
    recorder.start()
    with pytest.raises(service.exceptions.ConditionalCheckFailedException):
        rotate(service, "one", "three")                        # a reused token
    calls = recorder.stop()
    assert calls[0].outcome == "ConditionalCheckFailedException"
    replay_request(bare, shadow, calls)
    assert item(shadow) == {**KEY, "v": {"S": "two"}}


def test_a_put_of_a_new_item_replays_after_the_item_is_removed_again(
        clients: tuple[Any, Any, Any], recorder: CallRecorder) -> None:
    service, shadow, bare = clients
    recorder.start()
    service.put_item(TableName=TABLE, Item={**KEY, "v": {"S": "jti"}},
                     ConditionExpression="attribute_not_exists(id)")   # a replay guard
    calls = recorder.stop()
    assert calls[0].pre_images == [(TABLE, KEY, None)]
    replay_request(bare, shadow, calls)                        # would fail on the item left behind
    assert item(shadow) == {**KEY, "v": {"S": "jti"}}


def test_a_transaction_restores_every_item_it_touches(clients: tuple[Any, Any, Any],
                                                      recorder: CallRecorder) -> None:
    service, shadow, bare = clients
    other = {"id": {"S": "b"}}
    service.put_item(TableName=TABLE, Item={**other, "n": {"N": "0"}})
    recorder.start()
    service.transact_write_items(TransactItems=[
        {"Put": {"TableName": TABLE, "Item": {**KEY, "v": {"S": "new"}},
                 "ConditionExpression": "attribute_not_exists(id)"}},
        {"Update": {"TableName": TABLE, "Key": other, "UpdateExpression": "SET n = n + :one",
                    "ConditionExpression": "n = :zero",
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":zero": {"N": "0"}}}}])
    calls = recorder.stop()
    assert [key for _, key, _ in calls[0].pre_images] == [KEY, other]
    replay_request(bare, shadow, calls)
    assert shadow.get_item(TableName=TABLE, Key=other)["Item"]["n"] == {"N": "1"}


def test_a_read_replays_against_the_state_the_request_read(clients: tuple[Any, Any, Any],
                                                          recorder: CallRecorder) -> None:
    service, shadow, bare = clients
    service.put_item(TableName=TABLE, Item={**KEY, "v": {"S": "live"}})
    recorder.start()             # a logout: read the session, then delete it
    assert item(service) is not None
    service.delete_item(TableName=TABLE, Key=KEY, ConditionExpression="attribute_exists(id)")
    calls = recorder.stop()
    assert [c.operation for c in calls] == ["GetItem", "DeleteItem"]
    replay_request(bare, shadow, calls)          # the session is put back before the read
    assert item(shadow) is None


def test_only_calls_made_while_recording_are_kept(clients: tuple[Any, Any, Any],
                                                  recorder: CallRecorder) -> None:
    service, _, _ = clients
    item(service)
    recorder.start()
    item(service)
    assert [c.operation for c in recorder.stop()] == ["GetItem"]
    item(service)
    assert recorder.stop() == []


def test_a_replay_that_ends_otherwise_than_the_request_is_an_error(
        clients: tuple[Any, Any, Any]) -> None:
    _, shadow, bare = clients
    shadow.put_item(TableName=TABLE, Item={**KEY, "v": {"S": "two"}})
    params = {"TableName": TABLE, "Key": KEY, "UpdateExpression": "SET v = :new",
              "ConditionExpression": "v = :old",
              "ExpressionAttributeValues": {":old": {"S": "two"}, ":new": {"S": "three"}}}
    claimed = Call("UpdateItem", params, [(TABLE, KEY, {**KEY, "v": {"S": "two"}})],
                   outcome="ConditionalCheckFailedException")
    with pytest.raises(ReplayMismatch):
        replay_request(bare, shadow, [claimed])


def test_a_request_whose_call_the_service_retried_is_not_replayed() -> None:
    from bench.bare import SUCCESS, Call, retried

    def call(operation: str, outcome: str) -> Call:
        return Call(operation=operation, params={}, outcome=outcome, pre_images=[])

    assert retried([call("TransactWriteItems", "TransactionCanceledException"),
                    call("TransactWriteItems", SUCCESS)])
    assert not retried([call("UpdateItem", "ConditionalCheckFailedException"),
                        call("GetItem", SUCCESS)])
    assert not retried([call("BatchGetItem", SUCCESS), call("BatchGetItem", SUCCESS)])
