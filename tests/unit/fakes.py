"""In-memory stand-ins for the unit layer: services built from their collaborators,
with no container, no moto and no AWS client (a call to one fails the test)."""

from __future__ import annotations

import dataclasses
from typing import Any

from chalicelib.clock import FakeClock
from chalicelib.config import Settings
from chalicelib.models import Session, User, user_id_for
from chalicelib.services.principals import Principals
from chalicelib.services.signing import InvalidJWT
from chalicelib.storage.dynamo import Table
from chalicelib.storage.identities import UsersRepo
from chalicelib.storage.pats import Pat
from chalicelib.storage.sessions import SessionsRepo
from tests.conftest import TEST_SCRYPT_LOG_N

ISSUER = "https://tessera.test"


def settings(**overrides: Any) -> Settings:
    return Settings(issuer=ISSUER, table_prefix="unit-", keys_secret_name="unit/keys",
                    **{"scrypt_log_n": TEST_SCRYPT_LOG_N, **overrides})


def _no_aws() -> Any:
    raise AssertionError("a unit test reached for an AWS client")


def offline_table(name: str = "unit") -> Table:
    """A table for repositories whose key helpers a service uses; any I/O fails."""
    return Table(name, _no_aws)


class Items:
    """``BatchGet`` over dicts: {logical table: [item]}; it records every round trip."""

    def __init__(self, **tables: list[dict[str, Any]]) -> None:
        self.tables = tables
        self.calls: list[dict[str, list[dict[str, Any]]]] = []

    def __call__(self, requests: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        self.calls.append(requests)
        return {kind: [item for item in self.tables.get(kind, [])
                       if any(all(item.get(k) == v for k, v in key.items()) for key in keys)]
                for kind, keys in requests.items()}


def pat_item(pat: Pat) -> dict[str, Any]:
    return {**dataclasses.asdict(pat), "kind": "pat", "scopes": list(pat.scopes)}


def session_item(session: Session, rt_hash: str | None = None) -> dict[str, Any]:
    item = dataclasses.asdict(session)
    if rt_hash is not None:
        item["rt_hash"] = rt_hash
    return item


def user(name: str = "alice", **fields: Any) -> User:
    return User(id=user_id_for(name), username=name, **fields)


def unused(what: str) -> Any:
    """A provider that must not be called: the path under test must not build ``what``."""

    def provider() -> Any:
        raise AssertionError(f"{what} was built, but this path must not need it")

    return provider


JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"


class FakeKeyRing:
    """Verifies every token as ``claims``, or refuses them all."""

    def __init__(self, claims: dict[str, Any] | None) -> None:
        self.claims = claims
        self.audiences: list[str | None] = []

    def verify(self, token: str, *, issuer: str, typ: str | None = None,
               audience: str | None = None, required: tuple[str, ...] = ()) -> dict[str, Any]:
        self.audiences.append(audience)
        if self.claims is None:
            raise InvalidJWT("bad signature")
        return dict(self.claims)

    def public_keys_wanted(self) -> bool:
        return False        # its keys are always at hand


def principals(keyring: FakeKeyRing, items: Items, clock: FakeClock, *resolvers: Any,
               **overrides: Any) -> Principals:
    return Principals(keyring, clock, settings(**overrides),
                      sessions=SessionsRepo(offline_table()), users=UsersRepo(offline_table()),
                      batch_get=items, resolvers=resolvers)


def live_session(clock: FakeClock, user_id: str) -> Session:
    now = clock.now()
    return Session(id="s" * 16, user_id=user_id, client_id="cli", scope="openid api:read",
                   created_at=now - 60, expires_at=now + 3600, idle_deadline=now + 600,
                   last_used_at=now - 60)


def claims_for(session: Session, clock: FakeClock) -> dict[str, Any]:
    return {"sub": session.user_id, "sid": session.id, "client_id": "cli", "jti": "j1",
            "scope": "api:read", "iat": clock.now() - 5, "exp": clock.now() + 300}
