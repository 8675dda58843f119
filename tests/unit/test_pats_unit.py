"""PAT credentials and change confirmation, built from their collaborators (SPEC §5, §9)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from chalicelib.clock import FakeClock
from chalicelib.errors import Forbidden, InvalidGrant, Unauthorized
from chalicelib.models import Client, User
from chalicelib.security.opaque import PAT, digest, new_id
from chalicelib.security.passwords import hash_password
from chalicelib.services.authn import PasswordSignIn
from chalicelib.services.confirmation import Confirmation, signed_in_at
from chalicelib.services.pats import PatCredentials
from chalicelib.services.principals import Principal
from chalicelib.storage.identities import UsersRepo, user_to_item
from chalicelib.storage.pats import Pat
from chalicelib.storage.throttle import Counter, Limit
from tests.unit.fakes import (
    ISSUER,
    Items,
    live_session,
    offline_table,
    pat_item,
    settings,
    unused,
    user,
)


class FakePatsRepo:
    def __init__(self) -> None:
        self.touched: list[tuple[str, str, int]] = []
        self.revoked: list[tuple[str, str, str]] = []

    def touch(self, owner: str, pat_id: str, now: int, resolution: int) -> None:
        self.touched.append((owner, pat_id, now))

    def revoke(self, owner: str, pat_id: str, token_hash: str, now: int) -> bool:
        self.revoked.append((owner, pat_id, token_hash))
        return True


def issue(owner: User, now: int, **fields: Any) -> tuple[Pat, str]:
    pat_id = new_id()
    token = PAT.mint(owner.id + pat_id)
    defaults: dict[str, Any] = {"expires_on": None, "expires_at": None}
    pat = Pat(id=pat_id, owner=owner.id, description="ci", token_hash=digest(token),
              last_four=token[-4:], scopes=("tokens:read", "api:read"), created_at=now - 100,
              **{**defaults, **fields})
    return pat, token


def credentials(items: Items, clock: FakeClock, repo: FakePatsRepo | None = None) -> PatCredentials:
    return PatCredentials(repo or FakePatsRepo(), clock, settings(),
                          users=UsersRepo(offline_table()), batch_get=items)


def test_a_pat_is_its_owners_principal_with_only_the_scopes_the_owner_still_holds():
    clock, alice = FakeClock(), user("alice", scopes=("tokens:read",))
    pat, token = issue(alice, clock.now())
    items = Items(tokens=[pat_item(pat)], users=[user_to_item(alice)])
    found = credentials(items, clock).resolve(token, ISSUER)
    assert found is not None and found.kind == "pat" and found.user.id == alice.id
    assert found.scopes == frozenset({"tokens:read"})
    assert len(items.calls) == 1 and set(items.calls[0]) == {"tokens", "users"}


def test_a_token_that_is_not_a_pat_costs_no_read():
    items = Items()
    assert credentials(items, FakeClock()).resolve("tsr_not-a-pat", ISSUER) is None
    assert credentials(items, FakeClock()).introspect("tsp_" + "x" * 60) is None
    assert items.calls == []


@pytest.mark.parametrize("case", ["wrong secret", "expired", "revoked", "owner disabled"])
def test_a_dead_pat_is_unauthorized(case):
    clock, alice = FakeClock(), user("alice", active=case != "owner disabled")
    pat, token = issue(alice, clock.now(),
                       **({"expires_at": clock.now()} if case == "expired" else {}),
                       **({"revoked_at": clock.now() - 1} if case == "revoked" else {}))
    if case == "wrong secret":
        token = PAT.mint(alice.id + pat.id)     # the same PAT's locator, another secret
    items = Items(tokens=[pat_item(pat)], users=[user_to_item(alice)])
    with pytest.raises(Unauthorized):
        credentials(items, clock).resolve(token, ISSUER)


def test_last_use_is_written_at_most_once_per_resolution():
    clock, alice, repo = FakeClock(), user("alice"), FakePatsRepo()
    pat, token = issue(alice, clock.now(), last_used_at=clock.now() - 10)
    creds = credentials(Items(tokens=[pat_item(pat)], users=[user_to_item(alice)]), clock, repo)
    assert creds.validate(token) is not None and repo.touched == []
    clock.advance(settings().pat_last_used_resolution)
    assert creds.validate(token) is not None and repo.touched == [(alice.id, pat.id, clock.now())]


def test_revoking_a_pat_names_it_by_its_digest_and_ignores_malformed_tokens():
    clock, alice, repo = FakeClock(), user("alice"), FakePatsRepo()
    pat, token = issue(alice, clock.now())
    kind = credentials(Items(), clock, repo).opaque_kind()
    other_last = "a" if token[-1] != "a" else "b"
    assert kind.matches(token) and not kind.matches(token[:-1] + other_last)   # bad checksum
    kind.revoke(Client("cli"), token)
    kind.revoke(Client("cli"), "tsp_garbage")
    assert repo.revoked == [(alice.id, pat.id, digest(token))]


def test_introspecting_a_pat_reports_its_effective_scope():
    """RFC 7662 §2.2 for a PAT: active, with the scopes its owner still holds."""
    clock, alice = FakeClock(), user("alice", scopes=("api:read",))
    pat, token = issue(alice, clock.now())
    found = credentials(Items(tokens=[pat_item(pat)], users=[user_to_item(alice)]),
                        clock).introspect(token)
    assert found is not None
    assert (found["active"], found["scope"], found["pat_id"]) == (True, "api:read", pat.id)


# -- confirming a change (SPEC §5) ------------------------------------------------------

class FakeThrottle:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def record_failure(self, name: str, now: int, limit: Limit) -> Counter:
        self.failures.append(name)
        return Counter(name, failures=1, window_start=now, last_failure_at=now)


def confirmation(clock: FakeClock, items: Items, throttle: FakeThrottle) -> Confirmation:
    s = settings()
    return Confirmation(PasswordSignIn(throttle, clock, s), clock, s, batch_get=items,
                        second_factors=unused("the second factors"), transact=unused("writes"))


def test_a_recent_sign_in_confirms_a_change_without_any_read():
    clock, items, throttle = FakeClock(), Items(), FakeThrottle()
    signed_in = clock.now() - settings().recent_signin_seconds + 1
    confirmation(clock, items, throttle).require(user("alice"), password=None,
                                                 signed_in_at=signed_in, source="10.0.0.1")
    assert items.calls == [] and throttle.failures == []


def test_an_old_sign_in_needs_the_password():
    clock = FakeClock()
    with pytest.raises(Forbidden):
        confirmation(clock, Items(), FakeThrottle()).require(
            user("alice"), password="", signed_in_at=clock.now() - settings().recent_signin_seconds,
            source="10.0.0.1")


def test_the_right_password_confirms_and_a_wrong_one_counts_as_a_failed_sign_in():
    clock, throttle = FakeClock(), FakeThrottle()
    alice = user("alice", password_hash=hash_password("password4alice", log_n=10))
    items = Items()
    confirm = confirmation(clock, items, throttle)
    confirm.require(alice, password="password4alice", signed_in_at=None, source="10.0.0.1")
    assert len(items.calls) == 1 and list(items.calls[0]) == ["throttle"]   # both counters, one read
    with pytest.raises(Forbidden) as refused:
        confirm.require(alice, password="wrong", signed_in_at=None, source="10.0.0.1")
    assert isinstance(refused.value.__cause__, InvalidGrant)
    assert len(throttle.failures) == 2      # the user's counter and the source's


def test_only_the_persons_own_sign_in_can_be_recent():
    """services.confirmation: an access token's session counts; a PAT, a role and a
    delegated token (RFC 8693 §4.1 ``act``) never do, whatever their session."""
    clock = FakeClock()
    alice = user("alice")
    session = live_session(clock, alice.id)
    own = Principal(kind="access_token", user=alice, scopes=frozenset(), session=session)
    assert signed_in_at(own) == session.auth_time
    for other in (dataclasses.replace(own, act={"sub": "console"}),
                  dataclasses.replace(own, kind="pat"),
                  dataclasses.replace(own, kind="role_token"),
                  dataclasses.replace(own, session=None)):
        assert signed_in_at(other) is None, other
        with pytest.raises(Forbidden):
            confirmation(clock, Items(), FakeThrottle()).require_of(other, password=None,
                                                                    source="10.0.0.1")
    confirmation(clock, Items(), FakeThrottle()).require_of(own, password=None, source="10.0.0.1")
