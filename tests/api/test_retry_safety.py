"""Writes that are safe to retry, and requests that end in time (issue 9 J and K, issue 10 item 7).

The faults happen inside botocore's retry loop (``tests.faults``): the write
reaches the store and its answer is lost, so the SDK resends the same request;
or the store answers a transaction conflict; or every attempt times out while a
fake remaining-time source runs down.
"""

from __future__ import annotations

import pytest

from chalicelib import deadline
from chalicelib.services.device_flow import normalise_user_code
from chalicelib.storage.dynamo import CONFLICT_ATTEMPTS, Backoff, aws_client, retry_budget
from chalicelib.storage.pats import CREATE_ROUNDS
from tests.api.helpers import CLI, bearer, body, form, login, refresh, seed, tokens
from tests.faults import BeforeCall, ErrorAnswers, FakeBudget, LostResponse, TimingOut, transaction_conflict

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def seeded(client, ctr):
    seed(ctr)
    return client


@pytest.fixture
def dynamodb(ctr):
    return aws_client("dynamodb")


def approved_device_code(client, ctr, clock) -> str:
    started = body(form(client, "/oauth/device_authorization", client_id=CLI,
                        scope="openid profile"))
    flow = ctr.device_flow
    code = normalise_user_code(started["user_code"])
    request = flow.find(ctr.devices_repo.table.get(ctr.devices_repo.code_key(code)))
    flow.approve(request, ctr.identities.find_user("alice"), request.scope, auth_time=ctr.clock.now())
    clock.advance(5)
    return started["device_code"]


def poll(client, device_code):
    return form(client, "/oauth/token", grant_type=DEVICE_GRANT, client_id=CLI,
                device_code=device_code)


def new_pat(client, token):
    return client.http.post("/v1/tokens", headers={**bearer(token), **JSON},
                            body=b'{"description": "ci", "scopes": ["api:read"]}')


# -- J: a committed write whose answer was lost ----------------------------------------------

def test_a_device_poll_whose_answer_was_lost_still_gets_its_tokens(seeded, ctr, clock, dynamodb):
    device_code = approved_device_code(seeded, ctr, clock)
    with LostResponse(dynamodb, "TransactWriteItems") as fault:
        response = poll(seeded, device_code)
    assert fault.lost == 1 and fault.seen == 2          # botocore resent the request
    # The resend is the same request: DynamoDB's idempotency token included.
    assert fault.bodies[0]["ClientRequestToken"] == fault.bodies[1]["ClientRequestToken"]
    assert response.status_code == 200, response.body
    issued = body(response)
    # The session written by the first try is the one these tokens belong to.
    assert refresh(seeded, issued["refresh_token"]).status_code == 200
    clock.advance(5)
    again = poll(seeded, device_code)
    assert again.status_code == 400 and body(again)["error"] == "invalid_grant"


def test_a_lost_poll_answer_does_not_let_another_poll_take_the_code(seeded, ctr, clock, dynamodb):
    device_code = approved_device_code(seeded, ctr, clock)
    assert poll(seeded, device_code).status_code == 200
    clock.advance(5)
    with LostResponse(dynamodb, "TransactWriteItems") as fault:
        late = poll(seeded, device_code)
    assert fault.lost == 0           # the code is consumed: the poll never gets that far
    assert late.status_code == 400 and body(late)["error"] == "invalid_grant"


@pytest.mark.parametrize("cap", [1, 100])
def test_a_pat_create_whose_answer_was_lost_is_stored_once_and_shown(seeded, ctr, dynamodb, cap):
    ctr.pats.cap = cap
    access = tokens(seeded)["access_token"]
    with LostResponse(dynamodb, "TransactWriteItems") as fault:
        response = new_pat(seeded, access)
    assert fault.lost == 1 and fault.seen >= 2
    assert response.status_code == 201, response.body
    created = body(response)
    listed = body(seeded.http.get("/v1/tokens", headers=bearer(access)))["tokens"]
    assert [t["id"] for t in listed] == [created["id"]]
    # The secret shown is the one stored.
    me = seeded.http.get("/v1/token-info", headers=bearer(created["token"]))
    assert me.status_code == 200, me.body


# -- issue 10 item 7: a transaction conflict is retried, not a 503 -----------------------------

def test_a_device_poll_that_meets_a_transaction_conflict_is_retried(seeded, ctr, clock, dynamodb):
    device_code = approved_device_code(seeded, ctr, clock)
    with transaction_conflict(dynamodb, n_operations=2) as fault:
        response = poll(seeded, device_code)
    assert fault.seen == 2
    assert response.status_code == 200, response.body


def test_a_refresh_that_meets_a_transaction_conflict_is_retried(seeded, dynamodb):
    issued = tokens(seeded)
    with ErrorAnswers(dynamodb, "UpdateItem", "TransactionConflictException") as fault:
        response = refresh(seeded, issued["refresh_token"])
    assert fault.seen >= 2
    assert response.status_code == 200, response.body


def test_a_conflict_that_does_not_clear_is_503_with_retry_after(seeded, ctr, clock, dynamodb):
    device_code = approved_device_code(seeded, ctr, clock)
    with transaction_conflict(dynamodb, n_operations=2, times=100):
        response = poll(seeded, device_code)
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert body(response)["error"] == "temporarily_unavailable"


# -- issue 21 item 7: a PAT create that keeps conflicting is 409 at the cap, else 503 -----------

def no_pauses(ctr):
    ctr.pats_repo.backoff = Backoff(sleep=lambda _: None)


def test_a_pat_create_that_keeps_conflicting_at_the_cap_is_409(seeded, ctr, dynamodb):
    """At the cap no retry can succeed: the answer is the cap's 409, not a 503."""
    no_pauses(ctr)
    ctr.pats.cap = 2
    access = tokens(seeded)["access_token"]
    assert [new_pat(seeded, access).status_code for _ in range(2)] == [201, 201]
    with transaction_conflict(dynamodb, n_operations=2, times=1000) as fault:
        response = new_pat(seeded, access)
    assert fault.seen == CONFLICT_ATTEMPTS         # one round, then the counter decided
    assert response.status_code == 409, response.body
    assert "maximum of 2" in body(response)["detail"]


def test_a_pat_create_that_keeps_conflicting_below_the_cap_is_503_with_retry_after(
        seeded, ctr, dynamodb):
    """Below the cap a retry could succeed: bounded rounds, then 503 with Retry-After."""
    no_pauses(ctr)
    access = tokens(seeded)["access_token"]
    with transaction_conflict(dynamodb, n_operations=2, times=1000) as fault:
        response = new_pat(seeded, access)
    assert fault.seen == CONFLICT_ATTEMPTS * CREATE_ROUNDS
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert body(seeded.http.get("/v1/tokens", headers=bearer(access)))["tokens"] == []


def test_a_pat_create_whose_conflicts_clear_in_a_later_round_is_201(seeded, ctr, dynamodb):
    no_pauses(ctr)
    access = tokens(seeded)["access_token"]
    with transaction_conflict(dynamodb, n_operations=2, times=CONFLICT_ATTEMPTS + 1) as fault:
        response = new_pat(seeded, access)
    assert fault.seen == CONFLICT_ATTEMPTS + 2
    assert response.status_code == 201, response.body


# -- K: the invocation's remaining time bounds retries -----------------------------------------

def test_requests_see_the_invocations_remaining_time(seeded, dynamodb):
    seen: list[float | None] = []
    with BeforeCall(dynamodb, None, lambda _: True, lambda: seen.append(deadline.remaining_ms())):
        assert login(seeded).status_code == 200
    # Chalice's context counts down from lambda_timeout in .chalice/config.json (25 s).
    assert seen and seen[0] is not None and 0 < seen[0] <= 25_000
    assert deadline.remaining_ms() is None           # nothing leaks out of the request


def test_a_request_that_cannot_finish_in_time_answers_503_before_the_deadline(seeded, dynamodb):
    budget, limits = FakeBudget(9_000), retry_budget()
    with deadline.bound(budget), TimingOut(dynamodb, None, budget, limits.attempt_ms) as fault:
        response = login(seeded)
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert body(response)["error"] == "temporarily_unavailable"
    assert 1 <= fault.seen < limits.max_attempts       # stopped by the deadline, not the count
    assert budget.left >= limits.reserve_ms             # answered before the platform's timeout


def test_a_password_sign_in_whose_answer_was_lost_still_gets_its_tokens(seeded, ctr, clock, dynamodb):
    # The sign-in's one transaction (session + its record on the user) committed, the
    # answer was lost, botocore resent it: the resend finds its own session, not a conflict.
    with LostResponse(dynamodb, "TransactWriteItems") as fault:
        response = login(seeded)
    assert fault.lost == 1 and fault.seen == 2
    assert response.status_code == 200, response.body
    assert refresh(seeded, body(response)["refresh_token"]).status_code == 200
