"""Roles and role keys for the API tests, made through ``RolesRepo`` directly (the
``/v1/roles`` API is built elsewhere): a role for a user, its policies, a key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.security.opaque import ROLE_KEY_SECRET, digest, new_id, new_role_key_access_id
from chalicelib.storage.roles import Role, RoleKey

MAX_KEYS = 100
MAX_POLICIES = 100


@dataclass(frozen=True)
class Key:
    """A role key as its creator receives it: the only time the secret exists."""

    access: str
    secret: str

    @property
    def token(self) -> str:
        return f"{self.access}:{self.secret}"


def make_role(ctr: Any, username: str, short: str, *policies: str,
              description: str = "") -> Role:
    """The role ``<username>.<short>`` of that user, with ``policies``."""
    owner = ctr.identities.find_user(username)
    assert owner is not None, username
    role = Role(name=f"{username}.{short}", owner=owner.id, description=description,
                created_at=ctr.clock.now())
    ctr.roles_repo.create(role)
    for permission in policies:
        add_policy(ctr, role.name, permission)
    found = ctr.roles_repo.get(role.name)
    assert found is not None
    return found


def add_policy(ctr: Any, name: str, permission: str) -> None:
    assert ctr.roles_repo.add_policy(name, new_id(), permission, MAX_POLICIES) is not None


def mint_key(ctr: Any, role: Role, description: str = "ci") -> Key:
    """A new key of ``role``: access id ``tka_…``, secret ``tsk_…`` locating the role."""
    access = new_role_key_access_id()
    secret = ROLE_KEY_SECRET.mint(role.owner + role.id)
    stored = RoleKey(id=access, secret_hash=digest(secret), description=description,
                     created_at=ctr.clock.now())
    assert ctr.roles_repo.add_key(role.name, stored, MAX_KEYS) is not None
    return Key(access, secret)
