"""Disabling, narrowing and password resets reach every session of a user (issue 9 C, A).

Refresh reads no user (SPEC §9), so these changes act on the sessions themselves:
through the user's sessions map, written in the same transaction as each
session, and through the user's version, which a sign-in in flight must still
match when it writes its session.
"""

from __future__ import annotations

import io
import queue
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.errors import InvalidGrant
from chalicelib.models import user_id_for
from chalicelib.storage.sessions import SessionsRepo
from tessera_admin.cli import Console, main
from tests.api.helpers import CLI, RS, RS_SECRET, basic, bearer, body, form, refresh, seed, tokens
from tests.concurrency import atomic_container, run_together

ALICE = user_id_for("alice")


@pytest.fixture(autouse=True)
def _seeded(ctr):
    seed(ctr)


def answer(capsys) -> str:
    """The admin command's stdout, without the audit lines of the test's own sign-ins."""
    out = capsys.readouterr().out
    return "".join(line for line in out.splitlines(keepends=True) if not line.startswith('{"time"'))


def admin(*argv: str) -> int:
    return main(list(argv), Console(stdin=io.StringIO("")))


def introspect(client, token):
    return body(form(client, "/oauth/introspect", headers=basic(RS, RS_SECRET), token=token))


def live_sessions(ctr, user_id: str) -> list[dict[str, Any]]:
    table = ctr.sessions_repo.table
    items = table.client.scan(TableName=table.name)["Items"]
    now = ctr.clock.now()
    return [i for i in items if i["user_id"]["S"] == user_id
            and int(i["idle_deadline"]["N"]) > now and int(i["expires_at"]["N"]) > now]


class BlindIndexRepo(SessionsRepo):
    """The by_user index lagging behind: it finds none of the user's sessions."""

    def for_user(self, user_id: str) -> Iterator[dict[str, Any]]:
        return iter(())


# -- disabling --------------------------------------------------------------------------------

def test_disable_ends_a_session_the_eventually_consistent_index_misses(client, ctr, capsys):
    ctr.sessions_repo = BlindIndexRepo(ctr.table("sessions"), ctr.settings.purge_shards)
    t = tokens(client)
    assert admin("user", "disable", "alice") == 0
    assert answer(capsys) == "disabled user alice; ended 1 session(s)\n"
    r = refresh(client, t["refresh_token"])
    assert r.status_code == 400 and body(r)["error"] == "invalid_grant"
    assert introspect(client, t["refresh_token"]) == {"active": False}


def test_a_disabled_users_refresh_token_is_inactive_even_before_its_session_ends(client, ctr):
    t = tokens(client)
    ctr.identities.set_user_active("alice", False)     # the sessions are not ended (yet)
    assert introspect(client, t["refresh_token"]) == {"active": False}
    assert introspect(client, t["access_token"]) == {"active": False}


@pytest.mark.parametrize("change", [
    lambda ctr: ctr.identities.set_user_active("alice", False),
    lambda ctr: ctr.identities.set_scopes("alice", ["openid"]),
    lambda ctr: ctr.identities.set_password("alice", "a-new-password", end_sessions=True),
], ids=["disable", "narrow", "reset"])
def test_a_sign_in_that_read_the_user_before_a_change_opens_no_session(ctr, change):
    sessions = ctr.sessions
    read_before = ctr.users.get(ALICE)
    change(ctr)
    session = sessions.new_session(user_id=ALICE, client_id=CLI, scope="openid api:write")
    with pytest.raises(InvalidGrant):
        sessions.open(session, sessions.mint_refresh_token(session), read_before)
    assert ctr.sessions_repo.get_item(session.id) is None


def test_sign_ins_racing_a_disable_leave_no_live_session(ctr):
    """Real threads: sign-ins (read the user, then write the session) against one
    disable (write the user, then end the sessions of the map it returned)."""
    atomic = atomic_container(ctr)

    def sign_in() -> str:
        user = atomic.users.get(ALICE)
        if not user.active:
            raise InvalidGrant("Invalid username or password")
        session = atomic.sessions.new_session(user_id=ALICE, client_id=CLI, scope="openid")
        atomic.sessions.open(session, atomic.sessions.mint_refresh_token(session), user)
        return session.id

    def disable() -> str:
        user = atomic.identities.set_user_active("alice", False)
        atomic.sessions.end_all_for_user(ALICE, "user_disabled", known=user.sessions or {})
        return "disabled"

    for _ in range(5):
        ctr.identities.set_user_active("alice", True)
        jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for job in [disable] + [sign_in] * 5:
            jobs.put(job)
        results = run_together(6, lambda jobs=jobs: jobs.get()())
        assert all(isinstance(v, InvalidGrant) for kind, v in results if kind == "error")
        assert live_sessions(ctr, ALICE) == []


# -- password resets ------------------------------------------------------------------------

def test_set_password_changes_only_the_password_and_keeps_a_concurrent_disable(ctr, capsys):
    """The disable lands between the start of set-password and its write: the
    write must not bring the old ``active`` back."""
    client = ctr.dynamodb()
    disabled = []

    def disable_first(request, event_name, **kwargs):
        body_text = request.body.decode() if isinstance(request.body, bytes) else request.body
        if not disabled and "test-users" in body_text and ("PutItem" in event_name
                                                          or "UpdateItem" in event_name):
            disabled.append(True)
            ctr.users.set_active(ALICE, False)

    client.meta.events.register_first("before-send.dynamodb", disable_first)
    try:
        assert admin("user", "set-password", "alice", "--password", "a-new-password") == 0
    finally:
        client.meta.events.unregister("before-send.dynamodb", disable_first)
    assert disabled
    user = ctr.users.get(ALICE)
    assert user.active is False
    from chalicelib.security.passwords import verify_password

    assert verify_password("a-new-password", user.password_hash)


def test_set_password_keeps_sessions_unless_asked_to_end_them(client, ctr, capsys):
    kept, ended = tokens(client), tokens(client)
    assert admin("user", "set-password", "alice", "--password", "a-new-password") == 0
    assert refresh(client, kept["refresh_token"]).status_code == 200
    assert admin("user", "set-password", "alice", "--password", "another-password",
                 "--end-sessions") == 0
    assert answer(capsys).endswith("; ended 2 session(s)\n")
    assert refresh(client, ended["refresh_token"]).status_code == 400
    assert tokens(client, password="another-password")["refresh_token"]


def test_set_password_of_an_unknown_user_is_a_one_line_error(ctr, capsys):
    assert admin("user", "set-password", "nobody", "--password", "a-new-password") == 1
    assert capsys.readouterr().err == "error: no user nobody\n"
    assert ctr.users.get(user_id_for("nobody")) is None


# -- narrowing a user's rights (A: every path is bounded by them) -----------------------------------

def test_narrowing_a_user_bounds_the_scope_of_later_refreshes(client, ctr, capsys):
    wide = tokens(client, scope="openid api:write")
    only_lost = tokens(client, scope="api:write")
    assert admin("user", "set-scopes", "alice", "--scopes", "openid,profile") == 0
    assert answer(capsys) == ("user alice now holds openid, profile; "
                                       "narrowed 1 session(s), ended 1\n")
    r = refresh(client, wide["refresh_token"])
    assert r.status_code == 200 and body(r)["scope"] == "openid"
    again = refresh(client, body(r)["refresh_token"], scope="openid api:write")
    assert again.status_code == 400 and body(again)["error"] == "invalid_scope"
    assert refresh(client, only_lost["refresh_token"]).status_code == 400
    assert client.http.get("/v1/me", headers=bearer(only_lost["access_token"])).status_code == 401
    # and a new sign-in gets only what the user holds
    assert tokens(client, scope="openid profile api:write")["scope"] == "openid profile"


def test_set_scopes_all_gives_every_scope_back_to_new_sign_ins(client, ctr, capsys):
    assert admin("user", "set-scopes", "alice", "--scopes", "openid") == 0
    assert admin("user", "set-scopes", "alice", "--all") == 0
    assert tokens(client, scope="openid api:write")["scope"] == "openid api:write"


def test_the_sessions_map_forgets_sessions_past_their_cap(client, ctr, clock):
    old = tokens(client)
    clock.advance(24 * 3600)
    tokens(client)
    from chalicelib.security.opaque import REFRESH

    sessions = ctr.users.get(ALICE).sessions
    assert len(sessions) == 1 and REFRESH.parse(old["refresh_token"]) not in sessions


def test_a_user_item_from_before_the_sessions_map_gets_one_at_its_next_sign_in(client, ctr):
    table = ctr.users.table
    table.update(ctr.users.key(ALICE), "REMOVE #s, #v", names={"#s": "sessions", "#v": "version"})
    assert ctr.users.get(ALICE).sessions is None
    tokens(client)
    tokens(client)
    assert len(ctr.users.get(ALICE).sessions) == 2
