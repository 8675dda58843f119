"""The browser sign-in, built from its collaborators: every request with the cookie
is a use (SPEC §3), and showing a page never builds the session service."""

from __future__ import annotations

from typing import Any

from chalicelib.clock import FakeClock
from chalicelib.models import Session, User
from chalicelib.security.opaque import WEB_SESSION, digest
from chalicelib.services.authn import PasswordSignIn
from chalicelib.services.web_signin import TOUCH_EVERY, WebSignIn
from tests.unit.fakes import Items, session_item, settings, unused, user


class FakeSessionsRepo:
    def __init__(self, item: dict[str, Any] | None) -> None:
        self.item = item
        self.touches: list[tuple[str, int, int]] = []

    def get_item(self, session_id: str) -> dict[str, Any] | None:
        return dict(self.item) if self.item and self.item["id"] == session_id else None

    def touch_web(self, session_id: str, cookie_hash: str, now: int,
                  idle_deadline: int) -> dict[str, Any] | None:
        assert self.item is not None and cookie_hash == self.item["rt_hash"]
        self.touches.append((session_id, now, idle_deadline))
        self.item = {**self.item, "last_used_at": now, "idle_deadline": idle_deadline}
        return dict(self.item)


class FakeUsers:
    def __init__(self, *users: User) -> None:
        self.users = {u.id: u for u in users}

    def get(self, user_id: str) -> User | None:
        return self.users.get(user_id)


def signed_in(clock: FakeClock, owner: User, kind: str = "web") -> tuple[str, FakeSessionsRepo]:
    now = clock.now()
    cookie = WEB_SESSION.mint("w" * 16)
    session = Session(id="w" * 16, user_id=owner.id, client_id="tessera-web", scope="",
                      created_at=now, expires_at=now + 86400, idle_deadline=now + 3600,
                      last_used_at=now, kind=kind)
    return cookie, FakeSessionsRepo(session_item(session, rt_hash=digest(cookie)))


def web_signin(clock: FakeClock, repo: FakeSessionsRepo, *users: User) -> WebSignIn:
    s = settings()
    return WebSignIn(unused("the session service"), PasswordSignIn(None, clock, s),
                     clock, s, sessions_repo=repo, users=FakeUsers(*users),
                     throttle=None, batch_get=Items(), transact=unused("transactions"))


def test_page_views_closer_together_than_a_minute_write_once():
    clock, alice = FakeClock(), user("alice")
    cookie, repo = signed_in(clock, alice)
    signin = web_signin(clock, repo, alice)
    clock.advance(TOUCH_EVERY - 1)
    assert signin.current(cookie) is not None and repo.touches == []
    clock.advance(1)
    found = signin.current(cookie)
    assert found is not None and repo.touches == [
        ("w" * 16, clock.now(), clock.now() + settings().session_idle_seconds)]
    assert found.session.idle_deadline == clock.now() + settings().session_idle_seconds


def test_a_cookie_is_no_sign_in_once_its_user_is_disabled_or_its_session_is_not_a_web_one():
    clock, alice = FakeClock(), user("alice")
    cookie, repo = signed_in(clock, alice)
    assert web_signin(clock, repo, user("alice", active=False)).current(cookie) is None
    cookie, repo = signed_in(clock, alice, kind="oauth")
    assert web_signin(clock, repo, alice).current(cookie) is None


def test_a_cookie_that_is_not_the_sessions_own_is_no_sign_in():
    clock, alice = FakeClock(), user("alice")
    _, repo = signed_in(clock, alice)
    forged = WEB_SESSION.mint("w" * 16)     # names the session, but is another secret
    assert web_signin(clock, repo, alice).current(forged) is None
    assert web_signin(clock, repo, alice).current(None) is None
