"""The per-user session cap under concurrent sign-ins (issue 21 item 7).

Real threads over a client whose requests are each atomic, as DynamoDB's are
(``tests.concurrency``): the race is between whole requests.
"""

from __future__ import annotations

from chalicelib.errors import StorageContended
from chalicelib.services.sessions import OPEN_ATTEMPTS
from tests.api.helpers import CLI, seed
from tests.concurrency import atomic_container, run_together


def open_one(ctr, username: str = "alice") -> str:
    """A sign-in's write: read the user, open a session recorded on it."""
    user = ctr.identities.find_user(username)
    sessions = ctr.sessions
    session = sessions.new_session(user_id=user.id, client_id=CLI, scope="openid")
    sessions.open(session, sessions.mint_refresh_token(session), user)
    return session.id


def test_concurrent_sign_ins_at_the_cap_keep_the_bound(ctr, clock):
    """Invariant: however 20 sign-ins at the cap interleave, the user's map never
    holds more than the cap, every sign-in that succeeded is live, exactly the cap
    are live, and only the oldest sessions ended."""
    seed(ctr)
    atomic = atomic_container(ctr)
    cap = atomic.settings.max_sessions_per_user
    alice = ctr.identities.find_user("alice")
    before = []
    for _ in range(cap):
        before.append(open_one(atomic))
        clock.advance(1)
    results = run_together(20, lambda: open_one(atomic))
    opened = [value for kind, value in results if kind == "ok"]
    assert all(isinstance(v, StorageContended) for kind, v in results if kind == "error")
    # A try loses only to another sign-in's commit: if any sign-in ran out of
    # tries, at least OPEN_ATTEMPTS others succeeded.
    assert len(opened) >= min(20, OPEN_ATTEMPTS)
    recorded = ctr.users.get(alice.id).sessions
    assert len(recorded) <= cap
    live = {s.id for s in ctr.sessions.list_for_user(alice.id)}
    assert len(live) == cap
    assert set(opened) <= live
    assert live == set(before[len(opened):]) | set(opened)
    assert set(recorded) == live
