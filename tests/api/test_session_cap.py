"""Live sessions per user are capped (issue 21 item 7).

Each successful sign-in records its session on the user item (the sessions
map); unbounded, about 10,000 sign-ins would reach DynamoDB's 400 KB item limit
and lock the user out. Opening a session beyond the cap ends the oldest-created
one in the same transaction, so the map never holds more than the cap.
"""

from __future__ import annotations

from chalicelib.config import Settings
from tests.api.helpers import CLI, body, refresh, seed, tokens

CAP = Settings.max_sessions_per_user


def test_the_default_cap_is_100_sessions():
    assert CAP == 100


def test_sign_ins_beyond_the_cap_end_the_oldest_sessions(client, ctr, clock):
    """105 password sign-ins, one a second: the first 5 sessions end (their refresh
    tokens are invalid_grant), the last 100 stay live, the map holds at most 100."""
    seed(ctr)
    alice = ctr.identities.find_user("alice")
    issued = []
    for _ in range(CAP + 5):
        issued.append(tokens(client)["refresh_token"])
        clock.advance(1)
    first = [refresh(client, token) for token in issued[:5]]
    assert [r.status_code for r in first] == [400] * 5
    assert {body(r)["error"] for r in first} == {"invalid_grant"}
    assert all(refresh(client, token).status_code == 200 for token in issued[5:])
    assert len(ctr.sessions.list_for_user(alice.id)) == CAP
    assert len(ctr.users.get(alice.id).sessions) <= CAP


def test_sign_ins_below_the_cap_end_nothing(client, ctr, clock):
    seed(ctr)
    issued = [tokens(client)["refresh_token"] for _ in range(3)]
    assert all(refresh(client, token).status_code == 200 for token in issued)


def test_a_map_over_a_lowered_cap_shrinks_and_sign_ins_still_succeed(ctr, clock):
    """A map recorded before the cap (or under a higher one) does not lock the user
    out: each sign-in evicts up to MAX_EVICTED of the oldest and records itself."""
    from dataclasses import replace

    from chalicelib.storage.identities import MAX_EVICTED

    seed(ctr)
    sessions = ctr.sessions

    def sign_in() -> str:
        user = ctr.identities.find_user("alice")
        session = sessions.new_session(user_id=user.id, client_id=CLI, scope="openid")
        sessions.open(session, sessions.mint_refresh_token(session), user)
        clock.advance(1)
        return session.id

    opened = [sign_in() for _ in range(30)]
    sessions.settings = replace(ctr.settings, max_sessions_per_user=5)
    sizes = []
    for _ in range(3):
        opened.append(sign_in())
        sizes.append(len(ctr.users.get(ctr.identities.find_user("alice").id).sessions))
    assert sizes == [30 - MAX_EVICTED + 1, 5, 5]
    live = {s.id for s in sessions.list_for_user(ctr.identities.find_user("alice").id)}
    assert live == set(opened[-5:])
