"""The per-user PAT cap and regeneration under concurrency (issue 10 item 5).

Each test states the invariant it checks. Parallel tests use real threads over
a client whose requests are each atomic, as DynamoDB's are
(``tests.concurrency``); the stale-recount test forces the one interleaving
that used to break the cap, through a botocore event hook.
"""

from __future__ import annotations

import pytest

from chalicelib.api_models import PatCreate
from chalicelib.errors import Conflict
from chalicelib.security.opaque import digest
from chalicelib.storage.dynamo import CONFLICT_ATTEMPTS, Backoff, aws_client
from chalicelib.storage.pats import COUNTER_ID, PatsRepo
from tests.api.helpers import seed
from tests.concurrency import atomic_container, run_together
from tests.faults import BeforeCall, ThreadConflicts

BODY = PatCreate(description="ci", scopes=["api:read"])


@pytest.fixture
def alice(ctr):
    seed(ctr)
    return ctr.identities.find_user("alice")


def stored(ctr, owner: str) -> int:
    return len(ctr.pats_repo.list(owner))


def ttl_removes(ctr, owner: str, n: int) -> None:
    """TTL deletes items behind the counter's back."""
    for pat in ctr.pats_repo.list(owner)[:n]:
        ctr.pats_repo.table.delete(PatsRepo.key(owner, pat.id))


def counter(ctr, owner: str) -> int:
    return int(ctr.pats_repo.table.get(PatsRepo.key(owner, COUNTER_ID))["n"])


def test_a_stale_recount_is_never_written_back(ctr, alice):
    """Invariant: an owner never holds more than ``cap`` PATs, whatever the interleaving.

    A create at the cap recounts (TTL removed two PATs) and, between its listing
    and its write, other creates recount and fill the freed places; its count is
    stale by then and must not reset the counter.
    """
    pats = ctr.pats
    pats.cap = 3
    for _ in range(3):
        pats.generate(alice, BODY)
    ttl_removes(ctr, alice.id, 2)

    def others_fill_the_cap() -> None:
        for _ in range(2):
            pats.generate(alice, BODY)

    def is_recount(params: dict) -> bool:
        return "SET n = :n" in params.get("UpdateExpression", "")

    with BeforeCall(aws_client("dynamodb"), "UpdateItem", is_recount, others_fill_the_cap) as race:
        with pytest.raises(Conflict):
            pats.generate(alice, BODY)
    assert race.fired
    assert stored(ctr, alice.id) == 3
    assert counter(ctr, alice.id) >= stored(ctr, alice.id)


def test_parallel_creates_at_the_cap_fill_it_exactly(ctr, alice):
    """Invariant: of concurrent creates, exactly as many succeed as there are free places."""
    atomic = atomic_container(ctr)
    atomic.pats.cap = 5
    for _ in range(2):
        atomic.pats.generate(alice, BODY)
    results = run_together(8, lambda: atomic.pats.generate(alice, BODY))
    ok = [value for kind, value in results if kind == "ok"]
    errors = [value for kind, value in results if kind == "error"]
    assert len(ok) == 3 and len(errors) == 5
    assert all(isinstance(e, Conflict) for e in errors)
    assert stored(ctr, alice.id) == 5 == counter(ctr, alice.id)


def statuses(results: list[tuple[str, object]]) -> list[int]:
    """The HTTP status each outcome is rendered as (TesseraError.status, 201 for a PAT)."""
    return sorted(201 if kind == "ok" else getattr(value, "status", 500) for kind, value in results)


def test_fifty_creates_at_95_of_100_that_meet_transaction_conflicts_are_201_or_409(ctr, alice):
    """Invariant (issue 21 item 7): a create that lost to concurrent transactions is
    tried again, and is refused 409 once the cap is reached, never 503: exactly
    the free places succeed, every other create is a conflict that cannot succeed.

    DynamoDB cancels the losers of concurrent transactions on the owner's counter
    (moto never does): every thread meets as many conflicts as one transaction
    retries, as the losers of a 50-way race do.
    """
    atomic = atomic_container(ctr)
    pauses: list[float] = []
    atomic.pats_repo.backoff = Backoff(sleep=pauses.append)
    atomic.pats.cap = 100
    for _ in range(95):
        atomic.pats.generate(alice, BODY)
    with ThreadConflicts(aws_client("dynamodb"), n_operations=2, times=CONFLICT_ATTEMPTS):
        results = run_together(50, lambda: atomic.pats.generate(alice, BODY))
    assert statuses(results) == [201] * 5 + [409] * 45
    assert all(isinstance(v, Conflict) for kind, v in results if kind == "error")
    assert stored(ctr, alice.id) == 100 == counter(ctr, alice.id)
    assert pauses and all(p <= 2 for p in pauses)     # jittered backoff, within its cap


def test_parallel_creates_and_removals_after_ttl_removals_never_pass_the_cap(ctr, alice):
    """Invariant: with a counter made stale by TTL, concurrent creates (each recounting)
    and removals still never leave more than ``cap`` PATs, and the counter never
    falls below the number stored."""
    atomic = atomic_container(ctr)
    atomic.pats.cap = 4
    for _ in range(4):
        atomic.pats.generate(alice, BODY)
    ttl_removes(ctr, alice.id, 3)
    survivor = ctr.pats_repo.list(alice.id)[0].id
    calls = iter([lambda: atomic.pats.remove(alice, survivor)] +
                 [lambda: atomic.pats.generate(alice, BODY)] * 9)
    results = run_together(10, lambda: next(calls)())
    created = sum(1 for kind, value in results if kind == "ok" and value is not None)
    assert all(isinstance(v, Conflict) for kind, v in results if kind == "error")
    assert stored(ctr, alice.id) <= 4
    assert stored(ctr, alice.id) == created
    assert counter(ctr, alice.id) >= stored(ctr, alice.id)


def test_parallel_regenerations_leave_exactly_one_working_secret(ctr, alice):
    """Invariant: however concurrent regenerations interleave (a thread that reads after
    another's write regenerates again, legitimately), exactly one secret works at the
    end, it is the last winner's, and no two winners replaced the same secret."""
    atomic = atomic_container(ctr)
    issued = atomic.pats.generate(alice, BODY)
    results = run_together(6, lambda: atomic.pats.regenerate(alice, issued.pat.id))
    winners = [value.token for kind, value in results if kind == "ok"]
    losers = [value for kind, value in results if kind == "error"]
    assert winners and all(isinstance(e, Conflict) for e in losers)
    assert stored(ctr, alice.id) == 1
    working = [t for t in [issued.token, *winners] if ctr.pat_credentials.validate(t) is not None]
    assert len(working) == 1
    assert ctr.pats_repo.get(alice.id, issued.pat.id).token_hash == digest(working[0])
    assert ctr.pats_repo.get(alice.id, issued.pat.id).regenerated_at is not None
