"""The DynamoDB layer under faults moto does not produce on its own (issue 9 K, issue 10 item 7).

Faults are injected inside botocore's request pipeline (``tests.faults``); the
remaining time is a fake source and backoff pauses are recorded, never slept.
"""

from __future__ import annotations

import pytest

from chalicelib import deadline
from chalicelib.errors import ConditionFailed, StorageUnavailable
from chalicelib.storage.dynamo import (
    BATCH_GET_ROUNDS,
    CONFLICT_ATTEMPTS,
    Backoff,
    RetryBudget,
    aws_client,
    batch_get,
    retry_budget,
    transact,
)
from tests.faults import FakeBudget, LostResponse, TimingOut, UnprocessedKeys, transaction_conflict


class Pauses(list[float]):
    """An injected ``sleep`` that records instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def dynamodb(ctr):
    return aws_client("dynamodb")


@pytest.fixture
def users(ctr):
    table = ctr.table("users")
    for n in range(3):
        table.put({"id": f"u{n}", "username": f"user{n}"})
    return table


def keys(n: int = 3) -> dict[str, list[dict[str, str]]]:
    return {"test-users": [{"id": f"u{i}"} for i in range(n)]}


# -- BatchGetItem UnprocessedKeys ----------------------------------------------------------------

def test_unprocessed_keys_are_asked_again_after_exponential_backoff(dynamodb, users):
    pauses = Pauses()
    with UnprocessedKeys(dynamodb, times=3) as fault:
        found = batch_get(dynamodb, keys(), backoff=Backoff(base_ms=50, sleep=pauses, rand=lambda: 1.0))
    assert fault.seen == 4
    assert sorted(i["id"] for i in found["test-users"]) == ["u0", "u1", "u2"]
    assert pauses == [0.05, 0.1, 0.2]          # doubling, never back to back


def test_unprocessed_key_backoff_is_jittered_and_capped(dynamodb, users):
    pauses = Pauses()
    with UnprocessedKeys(dynamodb, times=BATCH_GET_ROUNDS - 1):
        batch_get(dynamodb, keys(), backoff=Backoff(base_ms=100, cap_ms=400, sleep=pauses,
                                                    rand=lambda: 0.5))
    assert pauses == [0.05, 0.1, 0.2, 0.2, 0.2]


def test_keys_that_stay_unprocessed_are_503_not_an_endless_loop(dynamodb, users):
    pauses = Pauses()
    with UnprocessedKeys(dynamodb, times=100) as fault, pytest.raises(StorageUnavailable):
        batch_get(dynamodb, keys(), backoff=Backoff(sleep=pauses, rand=lambda: 1.0))
    assert fault.seen == BATCH_GET_ROUNDS and len(pauses) == BATCH_GET_ROUNDS - 1


def test_unprocessed_key_backoff_never_sleeps_past_the_time_budget(dynamodb, users):
    pauses, limits = Pauses(), retry_budget()
    budget = FakeBudget(limits.needed_ms + 500)
    with deadline.bound(budget), UnprocessedKeys(dynamodb, times=100) as fault, \
            pytest.raises(StorageUnavailable):
        batch_get(dynamodb, keys(), backoff=Backoff(base_ms=1000, sleep=pauses, rand=lambda: 1.0))
    assert fault.seen == 1 and pauses == []     # a 1 s pause would not leave time for a try


# -- transactions: idempotency token and conflicts -------------------------------------------

def put(table, item_id: str) -> list[dict]:
    return [table.op_put({"id": item_id, "username": item_id}, "attribute_not_exists(id)")]


def test_a_transaction_resent_by_botocore_carries_the_same_client_request_token(dynamodb, users):
    with LostResponse(dynamodb, "TransactWriteItems", times=0) as seen:
        transact(dynamodb, put(users, "a"))
        transact(dynamodb, put(users, "b"))
    first, second = (b["ClientRequestToken"] for b in seen.bodies)
    assert first != second and 0 < len(first) <= 36      # one token per logical write
    with LostResponse(dynamodb, "TransactWriteItems") as lost, pytest.raises(ConditionFailed):
        transact(dynamodb, put(users, "c"))     # moto ignores the token: the retry's condition fails
    assert lost.bodies[0]["ClientRequestToken"] == lost.bodies[1]["ClientRequestToken"]


def test_a_cancelled_transaction_conflict_is_tried_again_with_backoff(dynamodb, users):
    pauses = Pauses()
    with transaction_conflict(dynamodb, 1, times=2) as fault:
        transact(dynamodb, put(users, "new"), backoff=Backoff(sleep=pauses, rand=lambda: 1.0))
    assert fault.seen == 3 and pauses == [0.05, 0.1]
    assert users.get({"id": "new"}) is not None


def test_a_conflict_that_does_not_clear_becomes_storage_unavailable(dynamodb, users):
    pauses = Pauses()
    with transaction_conflict(dynamodb, 1, times=100) as fault, pytest.raises(StorageUnavailable):
        transact(dynamodb, put(users, "new"), backoff=Backoff(sleep=pauses, rand=lambda: 0.0))
    assert fault.seen == CONFLICT_ATTEMPTS
    assert users.get({"id": "new"}) is None


# -- the invocation's deadline ------------------------------------------------------------------

def test_retries_stop_while_there_is_still_time_to_answer(dynamodb, users):
    limits = retry_budget()
    budget = FakeBudget(limits.needed_ms + limits.attempt_ms)       # room for two tries only
    with deadline.bound(budget), TimingOut(dynamodb, "GetItem", budget, limits.attempt_ms) as fault, \
            pytest.raises(StorageUnavailable):
        users.get({"id": "u0"})
    assert fault.seen == 2
    assert budget.left >= limits.reserve_ms


def test_no_attempt_starts_without_time_for_it(dynamodb, users):
    limits = retry_budget()
    budget = FakeBudget(limits.needed_ms - 1)
    with deadline.bound(budget), TimingOut(dynamodb, None, budget, limits.attempt_ms) as fault, \
            pytest.raises(StorageUnavailable):
        users.get({"id": "u0"})
    assert fault.seen == 0


def test_without_a_deadline_the_attempt_count_still_bounds_a_call(dynamodb, users):
    limits, budget = retry_budget(), FakeBudget(0)
    with TimingOut(dynamodb, "GetItem", budget, limits.attempt_ms) as fault, \
            pytest.raises(StorageUnavailable):
        users.get({"id": "u0"})
    assert fault.seen == limits.max_attempts


def test_the_worst_call_fits_the_lambda_timeout_with_room_to_answer():
    # .chalice/config.json: lambda_timeout 25 s. Every attempt and every backoff of
    # one call, plus the reserve, must fit, even before any deadline check.
    limits = RetryBudget()
    worst = limits.max_attempts * limits.attempt_ms + (limits.max_attempts - 1) * limits.backoff_ms
    assert worst + limits.reserve_ms < 25_000


def test_a_nested_bound_never_extends_the_outer_one():
    with deadline.bound(lambda: 1000.0):
        with deadline.bound(lambda: 5000.0):
            assert deadline.remaining_ms() == 1000.0
        assert deadline.remaining_ms() == 1000.0
    assert deadline.remaining_ms() is None
