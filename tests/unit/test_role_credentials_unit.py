"""Role keys and role tokens, built from in-memory reads: parsing, the one read, the
permissions in force, and what a role principal is."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.clock import FakeClock
from chalicelib.errors import InvalidScope, Unauthorized
from chalicelib.http import basic_token
from chalicelib.security.opaque import ROLE_KEY_SECRET, digest, new_role_key_access_id
from chalicelib.services.principals import is_client_token, is_role_token
from chalicelib.services.role_credentials import (
    RoleCredentials,
    granted_permissions,
    scopes_of,
    split_key,
)
from chalicelib.storage.identities import UsersRepo, user_to_item
from chalicelib.storage.roles import Role, RoleKey, RolesRepo, role_id_for
from tests.unit.fakes import Items, offline_table, settings, user

READ = "data:get@urn:tessera:data:alice.*"
WRITE = "data:put@urn:tessera:data:alice.x"


def role_item(role: Role) -> dict[str, Any]:
    return {"owner": role.owner, "id": role.id, "name": role.name,
            "description": role.description, "created_at": role.created_at,
            "policies": dict(role.policies), "trust": {},
            "keys": {k.id: {"secret_hash": k.secret_hash, "description": k.description,
                            "created_at": k.created_at, "last_used_at": k.last_used_at}
                     for k in role.keys.values()}}


def world(clock: FakeClock, *, last_used_at: int | None = None, active: bool = True
          ) -> tuple[RoleCredentials, Items, str]:
    """Credentials over in-memory items (any write fails: the tables are offline)."""
    alice = user("alice", active=active)
    access, secret = new_role_key_access_id(), ROLE_KEY_SECRET.mint(alice.id + role_id_for("alice.ci"))
    role = Role(name="alice.ci", owner=alice.id, description="", created_at=clock.now() - 100,
                policies={"p1": READ, "p2": WRITE},
                keys={access: RoleKey(id=access, secret_hash=digest(secret), description="",
                                      created_at=clock.now() - 100, last_used_at=last_used_at)})
    items = Items(roles=[role_item(role)], users=[user_to_item(alice)])
    creds = RoleCredentials(RolesRepo(offline_table()), clock, settings(),
                            users=UsersRepo(offline_table()), batch_get=items)
    return creds, items, f"{access}:{secret}"


def test_a_well_formed_key_names_its_owner_and_role():
    access = new_role_key_access_id()
    secret = ROLE_KEY_SECRET.mint("o" * 16 + "r" * 16)
    parts = split_key(f"{access}:{secret}")
    assert parts is not None
    assert (parts.access_id, parts.secret, parts.owner, parts.role_id) == \
        (access, secret, "o" * 16, "r" * 16)


@pytest.mark.parametrize("mangle", [
    lambda a, s: f"{a}{s}", lambda a, s: f"{a}:{s[:-1]}", lambda a, s: f"{a}:{s}x",
    lambda a, s: f"{a[:-1]}:{s}", lambda a, s: f"{a}:{s[:-1]}{'B' if s[-1] == 'A' else 'A'}",
    lambda a, s: f"{s}:{a}", lambda a, s: f"tkb_{a[4:]}:{s}", lambda a, s: f"{a}:tsp_{s[4:]}",
    lambda a, s: f"{a}:{s}:{s}"])
def test_malformed_keys_are_refused_without_a_read(mangle):
    clock = FakeClock()
    creds, items, token = world(clock)
    access, _, secret = token.partition(":")
    assert creds.validate(mangle(access, secret)) is None
    assert items.calls == []


def test_a_live_key_is_one_read_of_its_role_and_owner_and_no_write_when_the_touch_is_not_due():
    clock = FakeClock()
    creds, items, token = world(clock, last_used_at=clock.now() - 599)
    active = creds.validate(token)
    assert active is not None and active.permissions == (READ, WRITE)
    assert len(items.calls) == 1 and set(items.calls[0]) == {"roles", "users"}


def test_a_due_touch_writes_last_used_at():
    clock = FakeClock()
    creds, _, token = world(clock, last_used_at=clock.now() - 601)
    with pytest.raises(AssertionError, match="AWS client"):   # the offline table refuses the write
        creds.validate(token)


def test_a_key_of_a_disabled_owner_is_dead():
    clock = FakeClock()
    creds, _, token = world(clock, active=False)
    assert creds.validate(token) is None
    with pytest.raises(Unauthorized):
        creds.resolve(token, "https://tessera.test")


def test_the_resolver_passes_on_what_is_not_a_role_key():
    creds, items, _ = world(FakeClock())
    assert creds.resolve("tsp_something", "https://tessera.test") is None
    assert items.calls == []


def test_a_role_principal_is_the_role_not_its_owner():
    clock = FakeClock()
    creds, _, token = world(clock, last_used_at=clock.now())
    p = creds.resolve(token, "https://tessera.test")
    assert p is not None and p.role is not None
    assert p.user.id == "role:alice.ci" and p.user.permissions == ()
    assert not p.user.allows("tokens:manage")
    assert p.role.owner_id == user("alice").id
    assert p.profile() == {"id": "role:alice.ci", "email": "", "firstname": "", "lastname": "",
                           "active": True, "role": "alice.ci", "owner_id": user("alice").id}


def test_role_token_claims_are_reevaluated_against_the_role_now():
    clock = FakeClock()
    creds, _, token = world(clock, last_used_at=clock.now())
    claims = {"sub": "role:alice.ci", "role": "alice.ci", "owner": user("alice").id,
              "client_id": token.partition(":")[0], "permissions": [READ, "data:x@urn:a:b"],
              "iat": clock.now(), "exp": clock.now() + 3600, "jti": "j"}
    p = creds.from_claims(claims)
    assert p.role is not None and p.role.permissions == (READ,)
    assert p.kind == "role_token" and p.scopes == frozenset({"data:get"})


@pytest.mark.parametrize("change", [
    {"owner": "x" * 16}, {"role": "bob.ci", "sub": "role:bob.ci"}, {"permissions": "data:get"},
    {"iat": 0}, {"client_id": new_role_key_access_id()}])
def test_role_token_claims_that_do_not_match_the_role_are_refused(change):
    clock = FakeClock()
    creds, _, token = world(clock, last_used_at=clock.now())
    claims = {"sub": "role:alice.ci", "role": "alice.ci", "owner": user("alice").id,
              "client_id": token.partition(":")[0], "permissions": [READ],
              "iat": clock.now(), "exp": clock.now() + 3600, "jti": "j", **change}
    with pytest.raises(Unauthorized):
        creds.from_claims(claims)


def test_a_roles_scope_is_its_distinct_actions_without_the_account_scopes():
    assert scopes_of(["data:put@urn:a:b", "data:get@urn:a:c", "data:get@urn:a:d",
                      "tokens:manage@urn:a:b", "sessions:manage@urn:a:b", "roles:manage@urn:a:b",
                      "tokens:read@urn:a:b", "*@urn:a:b"]) == ("*", "data:get", "data:put")


def test_a_requested_scope_keeps_the_permissions_of_its_actions():
    held = (READ, WRITE)
    assert granted_permissions(held, None) == held
    assert granted_permissions(held, ("data:put",)) == (WRITE,)
    with pytest.raises(InvalidScope):
        granted_permissions(held, ("data:get", "data:delete"))


def test_a_role_token_is_never_taken_for_a_client_token():
    claims = {"sub": "role:alice.ci", "role": "alice.ci", "client_id": "role:alice.ci"}
    assert is_role_token(claims) and not is_client_token(claims)
    assert not is_role_token({"sub": "role:alice.ci", "role": "alice.other"})
    assert is_client_token({"sub": "svc", "client_id": "svc"})


@pytest.mark.parametrize("user_name,password,token", [
    ("tka_0123456789abcdef", "tsk_x", "tka_0123456789abcdef:tsk_x"),
    ("console", "tka_0123456789abcdef:tsk_x", "tka_0123456789abcdef:tsk_x"),
    ("tka_0123456789abcdef", "tsp_x", "tsp_x"),
    ("tka_short", "tsk_x", "tsk_x"),
    ("any", "tsp_x", "tsp_x")])
def test_the_token_of_basic_credentials(user_name, password, token):
    assert basic_token(user_name, password) == token


def test_the_grants_and_a_sessions_principals_do_not_load_the_role_machinery():
    """Cold start (SPEC §9): every grant module, ``Principals`` and ``OAuthTokens``
    load ``role_credentials`` only when a role key or role token comes."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, app\n"
        "from chalicelib import grants\n"
        "from chalicelib.clock import FakeClock\n"
        "from chalicelib.config import Settings\n"
        "from chalicelib.container import Container\n"
        "def no_aws(service):\n"
        "    raise AssertionError(service)\n"
        "[grants.lookup(t) for t in grants.grant_types()]\n"
        "c = Container(Settings(issuer='https://t'), FakeClock(), client_factory=no_aws)\n"
        "c.principals, c.oauth_tokens\n"
        "print('chalicelib.services.role_credentials' in sys.modules, 'role_credentials' in vars(c))\n")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                         env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}, check=True,
                         timeout=60)
    assert out.stdout.split() == ["False", "False"]
