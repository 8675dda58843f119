"""The rules of a person's own password change (services/passwords.py), without AWS."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from chalicelib.models import User
from chalicelib.services.passwords import end_other_sessions, new_password_problem

ALICE = User(id="u1", username="alice", sessions={"s-this": 9, "s-map-only": 9})


@pytest.mark.parametrize(("new", "again", "words"), [
    ("short", "short", "at least 8"),
    ("x" * 257, "x" * 257, "at most 256"),
    ("iloveyou", "iloveyou", "data breaches"),
    ("Alice   ", "Alice   ", "not be your username"),
    ("differs-1", "differs-2", "differ"),
    ("good-password", "good-password", ""),
])
def test_new_password_problems(new, again, words):
    problem = new_password_problem(ALICE, new, again)
    assert (words in problem) if words else problem == ""


def test_the_username_in_any_case_is_refused():
    user = User(id="u2", username="carol-long")
    assert "username" in new_password_problem(user, "CAROL-LONG", "CAROL-LONG")


@dataclass
class FakeSessions:
    indexed: list[str]
    ended: list[str] = field(default_factory=list)

    def list_for_user(self, user_id: str) -> list[object]:
        return [type("S", (), {"id": sid})() for sid in self.indexed]

    def end(self, session_id: str, reason: str = "logout") -> bool:
        self.ended.append(session_id)
        return True


def test_ending_other_sessions_spares_this_one_and_reads_the_map_and_the_index():
    fake = FakeSessions(indexed=["s-this", "s-index-only"])
    assert end_other_sessions(fake, ALICE, "s-this", "password_changed") == 2
    assert sorted(fake.ended) == ["s-index-only", "s-map-only"]
