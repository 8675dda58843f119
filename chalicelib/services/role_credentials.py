"""Role keys and role tokens as credentials (SPEC §6, §9).

A role key is ``tka_…:tsk_…``: a public access id and a secret whose locator names
the role's owner and the role (``security.opaque.ROLE_KEY_SECRET``). Using one:

* the secret's checksum is checked before any read (a malformed key costs none);
* one strongly consistent BatchGetItem reads the role item and its owner's user
  item; the access id must be a key of the role, the secret must hash to its
  ``secret_hash`` (constant-time), the owner must be active;
* ``last_used_at`` is written at most once per ``pat_last_used_resolution``
  (10 min), by one conditional update, never once per request.

A role token (the JWT of ``TokenIssuer.role_response``) is verified offline by
``Principals``; on Tessera's own endpoints this module then reads the role and its
owner in one round trip: the role must still exist and be no younger than the
token (a role deleted and recreated does not revive old tokens), the key the
token came from must still be a key of the role, the owner must be active.

Either way a role's permissions are recomputed at each use, ``policies ∩ the
owner's current rights``, so narrowing the owner narrows every key and token of
the role at once. A role's ``scope`` is the distinct actions of its permissions,
sorted; Tessera's own account scopes (``NOT_FOR_ROLES``) are never among them, so
a role can manage no PAT, session or role even if a policy names such an action.

``RoleCredentials`` plugs into the composition root three ways: ``resolve`` as a
``Principals`` resolver (Bearer and Basic on ``/v1/*``), ``from_claims`` as its
role-token resolver, ``opaque_kind()`` for RFC 7009 revocation and RFC 7662
introspection; ``authenticate_client`` makes a role key an OAuth client of the
``client_credentials`` grant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.audit import event
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import InvalidScope, Unauthorized
from chalicelib.models import Client, User
from chalicelib.security.opaque import (
    ID_LEN,
    ROLE_KEY_SECRET,
    digest,
    is_role_key_access_id,
    looks_like_role_key,
    same_digest,
)
from chalicelib.security.permissions import intersect
from chalicelib.services.authn import client_auth_failed
from chalicelib.services.oauth_tokens import OpaqueKind, describe_role
from chalicelib.services.principals import ROLE_SUBJECT_PREFIX, Principal, RoleIdentity
from chalicelib.services.security_log import NOWHERE, SecurityLog
from chalicelib.storage.identities import UsersRepo, user_from_item
from chalicelib.storage.roles import Role, RoleKey, RolesRepo, owner_id_of, role_from_item, role_id_for
from chalicelib.storage.tables import BatchGet

CLIENT_CREDENTIALS = "client_credentials"
# Tessera's own account scopes: a role never holds them (SPEC §6), so the PAT,
# sessions and roles APIs refuse a role principal with 403.
NOT_FOR_ROLES = frozenset({"tokens:read", "tokens:manage", "sessions:manage", "roles:manage"})
DEAD_KEY = "role key malformed, unknown or revoked, or its role or owner gone"


# --------------------------------------------------------------------------
# pure rules
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyParts:
    """A well-formed role key, taken apart without any read."""

    access_id: str
    secret: str
    owner: str
    role_id: str


def split_key(token: str) -> KeyParts | None:
    """The parts of ``tka_…:tsk_…``, or None when it is not one: wrong shape, or a
    secret whose checksum does not match (no database is consulted)."""
    access_id, sep, secret = token.partition(":")
    if not sep or not is_role_key_access_id(access_id):
        return None
    locator = ROLE_KEY_SECRET.parse(secret)
    if locator is None:
        return None
    return KeyParts(access_id, secret, locator[:ID_LEN], locator[ID_LEN:])


def action_of(permission: str) -> str:
    """The action of ``action@resource`` (actions hold no ``@``)."""
    return permission.partition("@")[0]


def scopes_of(permissions: Iterable[str]) -> tuple[str, ...]:
    """A role's scope tokens: the distinct actions of its permissions, sorted,
    without Tessera's account scopes."""
    return tuple(sorted({action_of(p) for p in permissions} - NOT_FOR_ROLES))


def effective_permissions(role: Role, owner: User) -> tuple[str, ...]:
    """SPEC §6: the role's policies ∩ its owner's current rights (policies in text order)."""
    return intersect(sorted(role.policies.values()), owner.permissions)


def granted_permissions(permissions: tuple[str, ...], requested: tuple[str, ...] | None
                        ) -> tuple[str, ...]:
    """The permissions a token gets: all of them, or those whose action a requested
    scope names; a requested scope the role does not hold is ``invalid_scope``
    (RFC 6749 §3.3, §5.2)."""
    if requested is None:
        return permissions
    held = set(scopes_of(permissions))
    extra = [s for s in requested if s not in held]
    if extra:
        raise InvalidScope(f"Scope not held by this role: {' '.join(extra)}")
    return tuple(p for p in permissions if action_of(p) in requested)


@dataclass(frozen=True)
class ActiveRole:
    """A role found alive with its owner, and what it may do now."""

    role: Role
    owner: User
    permissions: tuple[str, ...]
    key: RoleKey | None = None      # the key presented, when one was

    @property
    def identity(self) -> RoleIdentity:
        return RoleIdentity(self.role.name, self.owner.id, self.permissions)


@dataclass(frozen=True)
class RoleKeyClient(Client):
    """A role key acting as an OAuth client (SPEC §6): ``client_id`` is its access
    id, it is confidential (its secret authenticated it) and may use the
    ``client_credentials`` grant only."""

    active: ActiveRole | None = None


def role_user(name: str) -> User:
    """The user a role principal presents: the role itself, holding no scope and no
    right, so nothing done as the role reaches its owner's account."""
    subject = ROLE_SUBJECT_PREFIX + name
    return User(id=subject, username=subject, scopes=(), default_permission_revoked=True)


def role_principal(active: ActiveRole, permissions: tuple[str, ...], *, kind: str,
                   client_id: str, issued_at: int, expires_at: int | None, token_id: str,
                   details: Mapping[str, Any] | None = None) -> Principal:
    identity = RoleIdentity(active.role.name, active.owner.id, permissions)
    return Principal(kind=kind, user=role_user(active.role.name),
                     scopes=frozenset(scopes_of(permissions)), client_id=client_id,
                     issued_at=issued_at, expires_at=expires_at, token_id=token_id,
                     details={"role": identity.name, "owner": identity.owner_id,
                              "permissions": list(permissions), **(details or {})},
                     role=identity)


# --------------------------------------------------------------------------
# using role keys and role tokens: one strongly consistent round trip (SPEC §9)
# --------------------------------------------------------------------------

class RoleCredentials:
    def __init__(self, repo: RolesRepo, clock: Clock, settings: Settings, *, users: UsersRepo,
                 batch_get: BatchGet, security_log: SecurityLog | None = None) -> None:
        self.repo = repo
        self.clock = clock
        self.settings = settings
        self.users = users
        self.batch_get = batch_get
        self.security_log = security_log

    def _load(self, owner: str, role_id: str) -> tuple[Role, User] | None:
        """The role and its active owner, in one BatchGetItem; None if either is gone."""
        found = self.batch_get({"roles": [RolesRepo.key(owner, role_id)],
                                "users": [self.users.key(owner)]})
        if not found["roles"] or not found["users"]:
            return None
        role, user = role_from_item(found["roles"][0]), user_from_item(found["users"][0])
        if role.owner != owner or role.id != role_id or user.id != owner or not user.active:
            return None
        return role, user

    def check(self, parts: KeyParts) -> ActiveRole | None:
        """The role behind a well-formed key, if the key is live (one read)."""
        loaded = self._load(parts.owner, parts.role_id)
        if loaded is None:
            return None
        role, owner = loaded
        key = role.keys.get(parts.access_id)
        if key is None or not same_digest(key.secret_hash, digest(parts.secret)):
            return None
        self._record_use(role, key)
        return ActiveRole(role, owner, effective_permissions(role, owner), key)

    def validate(self, token: str) -> ActiveRole | None:
        """The role of a live role key ``tka_…:tsk_…``, else None (malformed: no read)."""
        parts = split_key(token)
        return None if parts is None else self.check(parts)

    def _record_use(self, role: Role, key: RoleKey) -> None:
        """``last_used_at`` to within the resolution, without a write per request."""
        now, resolution = self.clock.now(), self.settings.pat_last_used_resolution
        if key.last_used_at is None or key.last_used_at < now - resolution:
            self.repo.touch_key(role.owner, role.id, key.id, now, resolution)

    # -- Bearer and Basic on Tessera's API --------------------------------------------

    def resolve(self, token: str, issuer: str) -> Principal | None:
        """A ``Principals`` resolver: None for non role keys, 401 for dead ones."""
        if not looks_like_role_key(token):
            return None
        active = self.validate(token)
        if active is None or active.key is None:
            raise Unauthorized(detail=DEAD_KEY)
        return self.key_principal(active)

    @staticmethod
    def key_principal(active: ActiveRole) -> Principal:
        assert active.key is not None
        key = active.key
        return role_principal(active, active.permissions, kind="role_key", client_id=key.id,
                              issued_at=key.created_at, expires_at=None, token_id=key.id,
                              details={"key_id": key.id, "description": key.description,
                                       "last_used_at": key.last_used_at})

    def from_claims(self, claims: dict[str, Any]) -> Principal:
        """The ``Principals`` role-token resolver: claims verified offline, then the
        role and its owner read in one round trip."""
        name, owner = claims.get("role"), claims.get("owner")
        held = claims.get("permissions")
        if not (isinstance(name, str) and isinstance(owner, str) and owner_id_of(name) == owner
                and isinstance(held, list)):
            raise Unauthorized(detail="role token without a well-formed role, owner or permissions")
        loaded = self._load(owner, role_id_for(name))
        issued_at, client_id = int(claims["iat"]), str(claims["client_id"])
        if loaded is None or loaded[0].name != name:
            raise Unauthorized(detail="role token of a deleted role or a disabled owner")
        role, user = loaded
        if role.created_at > issued_at:
            raise Unauthorized(detail="role token older than its role (deleted and recreated)")
        if is_role_key_access_id(client_id) and client_id not in role.keys:
            raise Unauthorized(detail="role token of a revoked role key")
        active = ActiveRole(role, user, effective_permissions(role, user))
        # What the token was given, as far as the role still holds it now.
        permissions = tuple(p for p in active.permissions if p in held)
        return role_principal(active, permissions, kind="role_token", client_id=client_id,
                              issued_at=issued_at, expires_at=int(claims["exp"]),
                              token_id=str(claims["jti"]))

    # -- RFC 6749 §2.3: a role key as an OAuth client -----------------------------

    def authenticate_client(self, client_id: str, secret: str | None) -> RoleKeyClient:
        """``client_id=tka_…`` with ``client_secret=tsk_…`` (Basic or post): one read
        of the role and its owner, never the clients table."""
        if secret is None:
            raise client_auth_failed("A role key authenticates with its secret (tsk_…) "
                                     "as the client secret")
        parts = split_key(f"{client_id}:{secret}")
        active = None if parts is None else self.check(parts)
        if active is None or active.key is None:
            raise client_auth_failed("Client authentication failed")
        return RoleKeyClient(client_id=client_id, secret_hash=active.key.secret_hash,
                             name=active.role.name, grant_types=(CLIENT_CREDENTIALS,),
                             created_at=active.key.created_at, active=active)

    # -- RFC 7009 revocation and RFC 7662 introspection ------------------------------

    def introspect(self, token: str) -> dict[str, Any] | None:
        """RFC 7662 §2.2 for a role key."""
        active = self.validate(token)
        return None if active is None or active.key is None else describe_role(
            self.key_principal(active))

    def revoke(self, client: Client, token: str) -> None:
        """RFC 7009 §2.1, as for PATs: whoever holds the key (its secret) may revoke
        it, through any authenticated client; an unknown key is fine (§2.2)."""
        parts = split_key(token)
        if parts is None:
            return
        role = self.repo.revoke_key(parts.owner, parts.role_id, parts.access_id,
                                    digest(parts.secret))
        if role is not None:
            event("role_key_revoked", owner=role.owner, role=role.name, key_id=parts.access_id,
                  client_id=client.client_id)
            # One PutItem after the conditional UpdateItem that alone says it happened.
            if self.security_log is not None:
                self.security_log.record(role.owner, "role_key_revoked", NOWHERE,
                                         {"role": role.name, "key_id": parts.access_id,
                                          "reason": "revoked", "client_id": client.client_id})

    def opaque_kind(self) -> OpaqueKind:
        """Role keys as one of the opaque kinds of revocation and introspection."""
        return OpaqueKind(matches=looks_like_role_key, revoke=self.revoke,
                          introspect=self.introspect)
