"""Revocation (RFC 7009) and introspection (RFC 7662), built from their collaborators."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.clock import FakeClock
from chalicelib.errors import UnauthorizedClient
from chalicelib.models import Client
from chalicelib.services.oauth_tokens import OAuthTokens, OpaqueKind
from chalicelib.storage.identities import UsersRepo, user_to_item
from chalicelib.storage.sessions import SessionsRepo
from tests.unit.fakes import (
    ISSUER,
    JWT,
    FakeKeyRing,
    Items,
    claims_for,
    live_session,
    offline_table,
    principals,
    session_item,
    unused,
    user,
)


def oauth_tokens(keyring: FakeKeyRing, items: Items, clock: FakeClock,
                 *kinds: OpaqueKind) -> OAuthTokens:
    # Access tokens and opaque kinds never need the session service: it stays unbuilt.
    return OAuthTokens(principals(keyring, items, clock), unused("the session service"), clock,
                       sessions_repo=SessionsRepo(offline_table()), users=UsersRepo(offline_table()),
                       kinds=kinds)


def test_introspecting_an_access_token_describes_it_without_building_the_session_service():
    clock, alice = FakeClock(), user("alice")
    session = live_session(clock, alice.id)
    items = Items(sessions=[session_item(session)], users=[user_to_item(alice)])
    found = oauth_tokens(FakeKeyRing(claims_for(session, clock)), items, clock).introspect(JWT, ISSUER)
    assert found["active"] is True and found["sid"] == session.id
    assert (found["token_type"], found["iss"], found["tessera_token_kind"]) == \
        ("Bearer", ISSUER, "access_token")


def test_a_bad_token_is_inactive_and_nothing_more():
    """RFC 7662 §2.2: ``{"active": false}``, whatever is wrong with the token."""
    tokens = oauth_tokens(FakeKeyRing(None), Items(), FakeClock())
    assert tokens.introspect(JWT, ISSUER) == {"active": False}
    assert tokens.introspect("something else", ISSUER) == {"active": False}


def test_an_opaque_kind_introspects_and_revokes_its_own_tokens():
    revoked: list[tuple[str, str]] = []

    def introspect(token: str) -> dict[str, Any] | None:
        return {"active": True, "sub": "u1"} if token == "x_live" else None

    kind = OpaqueKind(matches=lambda t: t.startswith("x_"),
                      revoke=lambda client, token: revoked.append((client.client_id, token)),
                      introspect=introspect)
    tokens = oauth_tokens(FakeKeyRing(None), Items(), FakeClock(), kind)
    assert tokens.introspect("x_live", ISSUER) == {"active": True, "sub": "u1",
                                                   "token_type": "Bearer", "iss": ISSUER}
    assert tokens.introspect("x_dead", ISSUER) == {"active": False}
    tokens.revoke(Client("cli"), "x_live", ISSUER)
    tokens.revoke(Client("cli"), "y_other", ISSUER)     # unknown tokens are fine (RFC 7009 §2.2)
    assert revoked == [("cli", "x_live")]


def test_a_client_may_not_revoke_another_clients_access_token():
    clock, alice = FakeClock(), user("alice")
    claims = {**claims_for(live_session(clock, alice.id), clock), "client_id": "other-cli"}
    with pytest.raises(UnauthorizedClient):
        oauth_tokens(FakeKeyRing(claims), Items(), clock).revoke(Client("cli"), JWT, ISSUER)


def test_revoking_an_invalid_access_token_is_a_quiet_no_op():
    oauth_tokens(FakeKeyRing(None), Items(), FakeClock()).revoke(Client("cli"), JWT, ISSUER)
