"""SPEC §8: password sign-in throttling. A lockout runs its full term from the
failure that caused it, and every failure is counted, however the requests
overlap (issue 9, items E and Z).
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.errors import InvalidGrant
from chalicelib.models import user_id_for
from tests.api.helpers import login, seed

WRONG = "wrong-password"


@pytest.fixture(autouse=True)
def _seeded(ctr):
    seed(ctr)


def stored_failures(ctr, username: str = "alice") -> int:
    key = ctr.password_signin.user_counter_key(username)
    item = ctr.throttle.table.get(ctr.throttle.key(key)) or {}
    return int(item.get("failures", 0))


def test_a_lockout_outlasts_the_window_that_counted_it(client, ctr, clock):
    s = ctr.settings
    start = clock.now()
    for _ in range(s.login_lockout_failures - 1):
        assert login(client, password=WRONG).status_code == 400
        clock.advance(40)   # past every slow-down delay, well inside the window
    clock.t = start + s.login_window_seconds - 1
    assert login(client, password=WRONG).status_code == 400   # the failure that locks
    locked_at = clock.now()
    clock.advance(1)   # the counting window has ended; the lockout has not
    assert login(client).status_code == 400
    clock.t = locked_at + s.login_lockout_seconds - 1
    assert login(client).status_code == 400
    clock.t = locked_at + s.login_lockout_seconds
    assert login(client).status_code == 200


@pytest.mark.parametrize("after_a_lapsed_window", [False, True])
def test_failures_checked_against_one_stale_read_all_count(ctr, clock, after_a_lapsed_window):
    # Requests that read the counter before any of them wrote it (they overlap
    # during the password hash) must each add one failure, none overwrite another.
    signin = ctr.password_signin
    if after_a_lapsed_window:
        with pytest.raises(InvalidGrant):
            signin.check("alice", WRONG, "10.0.0.1",
                         ctr.batch_get(signin.reads("alice", "10.0.0.1")))
        clock.advance(ctr.settings.login_window_seconds)
    stale = ctr.batch_get(signin.reads("alice", "10.0.0.1"))
    for _ in range(3):
        with pytest.raises(InvalidGrant):
            signin.check("alice", WRONG, "10.0.0.1", stale)
    assert stored_failures(ctr) == 3


def test_failures_from_one_stale_read_reach_the_lockout(client, ctr):
    signin = ctr.password_signin
    stale = ctr.batch_get(signin.reads("alice", "10.0.0.1"))
    for _ in range(ctr.settings.login_lockout_failures):
        with pytest.raises(InvalidGrant):
            signin.check("alice", WRONG, "10.0.0.1", stale)
    assert login(client).status_code == 400


class LockDuringHash:
    """After the sign-in's one read, other requests lock the account: the
    password is then being hashed against counters that no longer hold."""

    def __init__(self, ctr: Any) -> None:
        self.ctr, self.fired = ctr, False

    def __call__(self, **_: Any) -> None:
        if self.fired:
            return
        self.fired = True
        signin = self.ctr.password_signin
        overlapping = self.ctr.batch_get(signin.reads("alice", "10.0.0.2"))
        for _ in range(self.ctr.settings.login_lockout_failures):
            with pytest.raises(InvalidGrant):
                signin.check("alice", WRONG, "10.0.0.2", overlapping)


def test_a_lockout_begun_during_the_password_check_refuses_the_right_password(client, ctr):
    events = ctr.dynamodb().meta.events
    hook = LockDuringHash(ctr)
    events.register("after-call.dynamodb.BatchGetItem", hook)
    try:
        refused = login(client)
    finally:
        events.unregister("after-call.dynamodb.BatchGetItem", hook)
    assert hook.fired
    assert refused.status_code == 400
    assert refused.body == login(client, password=WRONG).body
    assert list(ctr.sessions_repo.for_user(user_id_for("alice"))) == []


def test_a_success_clears_the_user_failures(client, ctr):
    login(client, password=WRONG)
    assert stored_failures(ctr) == 1
    assert login(client).status_code == 200
    assert stored_failures(ctr) == 0
