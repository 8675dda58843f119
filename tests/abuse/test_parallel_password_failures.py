"""Issue 9 Z: simultaneous wrong passwords all count, against the real local
server over HTTP (its threaded server, its moto), and the right password is then
refused while the account is locked.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.models import user_id_for
from tests.abuse.support import moto_dynamodb, post_form, throttle_table
from tests.e2e.support import HttpResponse, LiveServer

pytestmark = pytest.mark.e2e

THREADS = 30
DEMO_CLIENT = "cf83e1357eefb8bd"
LOCKOUT_FAILURES = 10        # the defaults of TESSERA_LOGIN_LOCKOUT_FAILURES
LOCKOUT_SECONDS = 900        # and TESSERA_LOGIN_LOCKOUT_SECONDS


def password_grant(server: LiveServer, password: str) -> HttpResponse:
    return post_form(server.base_url + "/oauth/token",
                     {"grant_type": "password", "client_id": DEMO_CLIENT, "username": "alice",
                      "password": password})


def test_thirty_simultaneous_wrong_passwords_lock_the_account(abuse_server, throttle_items):
    start = threading.Barrier(THREADS)

    def wrong(i: int) -> HttpResponse:
        start.wait()
        return password_grant(abuse_server, f"wrong-password-{i}")

    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(wrong, range(THREADS)))
    assert {a.status for a in answers} == {400}

    items = throttle_items()
    user, source = items["signin-user#" + user_id_for("alice")], items["signin-src#127.0.0.1"]
    # Nearly all of the 30 read the counters before any finished its hash, so both
    # counters reach the lockout (before issue 9 Z, 30 failures counted as 2). How
    # many past it count depends on when each request reads: exact counting under
    # concurrency is asserted by the next test, with the request's timing taken out.
    assert LOCKOUT_FAILURES <= user["failures"] <= THREADS
    assert LOCKOUT_FAILURES <= source["failures"] <= THREADS
    assert user["locked_until"] >= user["window_start"] + LOCKOUT_SECONDS

    right = password_grant(abuse_server, "password4alice")
    assert right.status == 400
    assert right.body == answers[0].body


def test_simultaneous_failures_from_separate_clients_count_exactly(abuse_server, throttle_items):
    # Each thread has its own DynamoDB client, as separate Lambda instances do.
    from chalicelib.storage.dynamo import Table
    from chalicelib.storage.throttle import Limit, ThrottleRepo

    limit = Limit(window=900, lock_after=LOCKOUT_FAILURES, lock_seconds=LOCKOUT_SECONDS)
    now = int(time.time())
    start = threading.Barrier(THREADS)

    def fail(_: int) -> None:
        client = moto_dynamodb(abuse_server)
        repo = ThrottleRepo(Table(throttle_table(abuse_server), client_factory=lambda: client))
        start.wait()
        repo.record_failure("signin-user#parallel", now, limit)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(fail, range(THREADS)))
    counter = throttle_items()["signin-user#parallel"]
    assert counter["failures"] == THREADS
    assert counter["locked_until"] == now + LOCKOUT_SECONDS
