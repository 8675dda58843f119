"""Principals, built from a fake key ring and in-memory reads: who presents a credential."""

from __future__ import annotations

import pytest

from chalicelib.clock import FakeClock
from chalicelib.errors import Unauthorized
from chalicelib.services.principals import Principal
from chalicelib.storage.identities import user_to_item
from tests.unit.fakes import (
    ISSUER,
    JWT,
    FakeKeyRing,
    Items,
    claims_for,
    live_session,
    principals,
    session_item,
    user,
)


def test_an_access_token_of_a_live_session_is_read_with_its_user_in_one_round_trip():
    clock, alice = FakeClock(), user("alice")
    session = live_session(clock, alice.id)
    items = Items(sessions=[session_item(session)], users=[user_to_item(alice)])
    found = principals(FakeKeyRing(claims_for(session, clock)), items, clock).authenticate(JWT, ISSUER)
    assert (found.kind, found.user.id, found.session and found.session.id) == \
        ("access_token", alice.id, session.id)
    assert found.scopes == frozenset({"api:read"}) and found.token_id == "j1"
    assert len(items.calls) == 1 and set(items.calls[0]) == {"sessions", "users"}


def test_an_access_token_of_an_ended_session_is_refused_before_it_expires():
    clock, alice = FakeClock(), user("alice")
    session = live_session(clock, alice.id)
    items = Items(sessions=[], users=[user_to_item(alice)])
    with pytest.raises(Unauthorized):
        principals(FakeKeyRing(claims_for(session, clock)), items, clock).authenticate(JWT, ISSUER)


def test_an_access_token_of_a_disabled_user_is_refused():
    clock, alice = FakeClock(), user("alice", active=False)
    session = live_session(clock, alice.id)
    items = Items(sessions=[session_item(session)], users=[user_to_item(alice)])
    with pytest.raises(Unauthorized):
        principals(FakeKeyRing(claims_for(session, clock)), items, clock).authenticate(JWT, ISSUER)


def test_an_access_token_that_does_not_verify_costs_no_read():
    items = Items()
    with pytest.raises(Unauthorized):
        principals(FakeKeyRing(None), items, FakeClock()).authenticate(JWT, ISSUER)
    assert items.calls == []


def test_access_tokens_are_checked_against_the_configured_audience():
    """RFC 9068 §4: ``aud`` must name this resource; the stage's audience, else the issuer."""
    keyring = FakeKeyRing(None)
    for audience, expected in (("https://api.example", "https://api.example"), ("", ISSUER)):
        with pytest.raises(Unauthorized):
            principals(keyring, Items(), FakeClock(), audience=audience).verify_access_token(JWT, ISSUER)
        assert keyring.audiences[-1] == expected


def test_other_credentials_go_to_the_first_resolver_that_knows_them():
    alice = user("alice")
    seen: list[str] = []

    def knows_nothing(token: str, issuer: str) -> Principal | None:
        seen.append("first")
        return None

    def knows_it(token: str, issuer: str) -> Principal | None:
        seen.append("second")
        return Principal(kind="pat", user=alice, scopes=frozenset())

    def never_asked(token: str, issuer: str) -> Principal | None:
        raise AssertionError("resolvers after the one that answered are not asked")

    found = principals(FakeKeyRing(None), Items(), FakeClock(), knows_nothing, knows_it,
                       never_asked).authenticate("tsp_opaque", ISSUER)
    assert found.kind == "pat" and seen == ["first", "second"]


def test_a_credential_no_resolver_knows_is_unauthorized():
    with pytest.raises(Unauthorized):
        principals(FakeKeyRing(None), Items(), FakeClock()).authenticate("opaque", ISSUER)
