"""Grants get their services through ``GrantDeps``, each built on first use: a
refresh never builds the password sign-in or the device flow (cold start)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.clock import FakeClock
from chalicelib.errors import InvalidScope
from chalicelib.grants import GrantDeps, TokenContext, grant_types, lookup
from chalicelib.models import Client, Session
from chalicelib.services.sessions import Rotation
from tests.unit.fakes import ISSUER, unused

CLIENT = Client("cli", grant_types=("refresh_token",), scopes=("openid", "api:read", "api:write"))


class FakeSessions:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.rotations: list[tuple[str, str, tuple[str, ...]]] = []

    def rotate(self, presented: str, client_id: str, scopes: tuple[str, ...] = (), *,
               resources: tuple[str, ...] = ()) -> Rotation:
        self.rotations.append((presented, client_id, scopes))
        return Rotation(self.session, "tsr_successor", " ".join(scopes) or self.session.scope)


class FakeIssuer:
    def session_response(self, **kw: Any) -> dict[str, Any]:
        return {"refresh_token": kw["refresh_token"], "scope": kw["scope"], "issuer": kw["issuer"]}


def refresh_context(sessions: FakeSessions | None) -> TokenContext:
    deps = GrantDeps(sessions=(lambda: sessions) if sessions else unused("the session service"),
                     token_issuer=FakeIssuer, password_signin=unused("the password sign-in"),
                     device_flow=unused("the device flow"), users=unused("the users table"),
                     throttle=unused("the throttle table"))
    return TokenContext(deps=deps, issuer=ISSUER, source_ip="10.0.0.1", user_agent="test")


def a_session() -> Session:
    now = FakeClock().now()
    return Session(id="s" * 16, user_id="u1", client_id="cli", scope="openid api:read",
                   created_at=now, expires_at=now + 86400, idle_deadline=now + 3600,
                   last_used_at=now)


def test_a_refresh_uses_only_the_sessions_and_the_token_issuer():
    sessions = FakeSessions(a_session())
    grant = lookup("refresh_token")
    ctx = refresh_context(sessions)
    params = {"refresh_token": "tsr_presented", "scope": "api:read"}
    assert grant.prefetch(ctx, params) == {}
    assert grant.handle(ctx, CLIENT, params, {}) == {
        "refresh_token": "tsr_successor", "scope": "api:read", "issuer": ISSUER}
    assert sessions.rotations == [("tsr_presented", "cli", ("api:read",))]


def test_a_refresh_asking_for_a_scope_the_client_lacks_is_refused_before_any_write():
    """RFC 6749 §6: the requested scope is checked first; no session service is built."""
    grant = lookup("refresh_token")
    with pytest.raises(InvalidScope):
        grant.handle(refresh_context(None), CLIENT,
                     {"refresh_token": "tsr_presented", "scope": "tokens:manage"}, {})


def test_every_grant_module_has_the_same_shape():
    for grant_type, module in ((t, lookup(t)) for t in grant_types()):
        assert module.GRANT_TYPE == grant_type
        assert isinstance(module.ANONYMOUS, bool)
        assert callable(module.prefetch) and callable(module.handle)


def test_only_the_token_exchange_may_name_no_client():
    anonymous = sorted(t for t, module in ((t, lookup(t)) for t in grant_types()) if module.ANONYMOUS)
    assert anonymous == ["urn:ietf:params:oauth:grant-type:token-exchange"]


class FakeClientIssuer:
    def client_response(self, **kw: Any) -> dict[str, Any]:
        return {"sub": kw["client"].client_id, "scope": kw["scope"]}


def client_credentials_context() -> TokenContext:
    deps = GrantDeps(sessions=unused("the session service"), token_issuer=FakeClientIssuer,
                     password_signin=unused("the password sign-in"),
                     device_flow=unused("the device flow"), users=unused("the users table"),
                     throttle=unused("the throttle table"))
    return TokenContext(deps=deps, issuer=ISSUER, source_ip="10.0.0.1", user_agent="test")


SERVICE = Client("svc", secret_hash="sha256$salt$hex", grant_types=("client_credentials",),
                 scopes=("api:read", "api:write"))


def test_client_credentials_uses_only_the_token_issuer_and_reads_nothing():
    grant = lookup("client_credentials")
    ctx = client_credentials_context()
    assert grant.prefetch(ctx, {}) == {}
    assert grant.handle(ctx, SERVICE, {"scope": "api:write"}, {}) == {
        "sub": "svc", "scope": "api:write"}


def test_client_credentials_refuses_a_public_client_even_if_registered_for_it():
    from chalicelib.errors import InvalidClient

    public = Client("pub", grant_types=("client_credentials",), scopes=("api:read",))
    with pytest.raises(InvalidClient):
        lookup("client_credentials").handle(client_credentials_context(), public, {}, {})


def test_each_grant_module_is_filed_under_its_own_grant_type() -> None:
    from chalicelib.grants import grant_types, lookup

    for grant_type in grant_types():
        module = lookup(grant_type)
        assert module is not None and module.GRANT_TYPE == grant_type
    assert lookup("urn:example:unknown") is None and lookup("") is None
