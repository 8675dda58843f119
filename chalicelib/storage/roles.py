"""The ``roles`` table (SPEC §6): one item per role, holding its policies, its trust
policies and its keys.

A role lives under its owner (pk ``owner`` = the owner's user id) at
``id = role_id_for(name)``, a fixed-length digest of its name. A role key's
secret carries ``owner id + role id`` as its locator (``security.opaque.ROLE_KEY``),
so validating a key is one BatchGetItem of the role and its owner (SPEC §9: one
read), and the owner's *current* rights are in hand at every use.

Keys, policies and trust policies are maps inside the role item, so:

* deleting the role deletes every key with it, in one write;
* removing a key is one conditional update, and every later (strongly
  consistent) read sees it gone, so no request validated after the removal's
  answer succeeds;
* a role recreated under the same name is a new item (new ``created_at``): keys
  and tokens of the old one find their key id missing or their ``iat`` older.

One more item per owner, ``id = "~count"``, counts the owner's roles, so that the
per-owner cap holds under concurrent creates (a conditional counter update in the
same transaction as the put, as ``storage/pats.py`` does for PATs). The caps on
policies, keys and trust policies per role are conditions on the size of the map.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.errors import ConditionFailed
from chalicelib.models import derived_id, user_id_for
from chalicelib.storage.dynamo import Item, Table, transact

# SPEC §6: ``<username>.<name>``, lowercase letters, digits and dashes. The name has
# no dot, so the owner is everything before the last one: a username
# (``models.USERNAME``, no dot) for every role made now, and still the right owner
# for the roles of a user stored before usernames lost the dot (``alice.x.ci``).
ROLE_NAME = re.compile(r"^([a-z0-9][a-z0-9_.-]{0,63})\.([a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)$")
MAX_ROLE_NAME = 128
COUNTER_ID = "~count"   # "~" sorts after every base62 role id and is never one


class RoleExists(ConditionFailed):
    """A role of that name exists already."""


class LimitReached(ConditionFailed):
    """The owner's roles, or the role's policies, keys or trust policies, are at their cap."""


def role_id_for(name: str) -> str:
    """The role's key within its owner's partition: 16 base62 characters of
    SHA-256 of its name (fixed length, so a key's locator can name it)."""
    return derived_id("tessera:role:" + name)


def policy_id_for(permission: str) -> str:
    """A policy's id, derived from its (canonical) permission: adding the same
    permission twice names the same entry, so the add is idempotent."""
    return derived_id("tessera:policy:" + permission)


def trust_id_for(issuer: str, audience: str, subject: str, claims: dict[str, str]) -> str:
    """A trust policy's id, derived from what it matches (idempotent adds, as policies)."""
    canonical = "\n".join([issuer, audience, subject,
                            *(f"{k}={v}" for k, v in sorted(claims.items()))])
    return derived_id("tessera:trust:" + canonical)


def split_role_name(name: str) -> tuple[str, str] | None:
    """(owner username, short name) of a well-formed role name, else None."""
    if len(name) > MAX_ROLE_NAME:
        return None
    m = ROLE_NAME.match(name)
    return (m.group(1), m.group(2)) if m else None


def owner_id_of(name: str) -> str | None:
    """The user id of the role's owner, derived from the name (no read)."""
    parts = split_role_name(name)
    return user_id_for(parts[0]) if parts else None


@dataclass(frozen=True)
class RoleKey:
    """A role key as stored: never the secret, only its digest."""

    id: str                     # the public access id, ``tka_…``
    secret_hash: str
    description: str
    created_at: int
    last_used_at: int | None = None


@dataclass(frozen=True)
class TrustPolicy:
    """Which external OIDC tokens may act as the role (SPEC §6 federation)."""

    id: str
    issuer: str
    audience: str
    subject: str                # exact, or a prefix ending with ``*``
    claims: dict[str, str] = field(default_factory=dict)
    created_at: int = 0

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "issuer": self.issuer, "audience": self.audience,
                "subject": self.subject, "claims": dict(self.claims),
                "created_at": self.created_at}


@dataclass(frozen=True)
class Role:
    name: str
    owner: str                  # the owner's user id
    description: str
    created_at: int
    policies: dict[str, str] = field(default_factory=dict)        # id -> permission
    trust: dict[str, TrustPolicy] = field(default_factory=dict)    # id -> policy
    keys: dict[str, RoleKey] = field(default_factory=dict)         # access id -> key

    @property
    def id(self) -> str:
        return role_id_for(self.name)


def _key_from(key_id: str, raw: dict[str, Any]) -> RoleKey:
    last = raw.get("last_used_at")
    return RoleKey(id=key_id, secret_hash=str(raw.get("secret_hash", "")),
                   description=str(raw.get("description", "")),
                   created_at=int(raw.get("created_at", 0)),
                   last_used_at=None if last is None else int(last))


def _trust_from(trust_id: str, raw: dict[str, Any]) -> TrustPolicy:
    return TrustPolicy(id=trust_id, issuer=str(raw["issuer"]), audience=str(raw["audience"]),
                       subject=str(raw["subject"]),
                       claims={str(k): str(v) for k, v in (raw.get("claims") or {}).items()},
                       created_at=int(raw.get("created_at", 0)))


def role_from_item(item: Item) -> Role:
    return Role(
        name=item["name"], owner=item["owner"], description=item.get("description", ""),
        created_at=int(item["created_at"]),
        policies={str(k): str(v) for k, v in (item.get("policies") or {}).items()},
        trust={k: _trust_from(k, v) for k, v in (item.get("trust") or {}).items()},
        keys={k: _key_from(k, v) for k, v in (item.get("keys") or {}).items()},
    )


class RolesRepo:
    """Roles of every owner. Reads are strongly consistent."""

    def __init__(self, table: Table) -> None:
        self.table = table

    @staticmethod
    def key(owner: str, role_id: str) -> dict[str, str]:
        return {"owner": owner, "id": role_id}

    @classmethod
    def key_for_name(cls, name: str) -> dict[str, str] | None:
        owner = owner_id_of(name)
        return None if owner is None else cls.key(owner, role_id_for(name))

    # -- reads -------------------------------------------------------------------

    def get(self, name: str) -> Role | None:
        key = self.key_for_name(name)
        if key is None:
            return None
        item = self.table.get(key)
        return role_from_item(item) if item and item.get("name") == name else None

    def list(self, owner: str) -> list[Role]:
        items = self.table.query_all("#o = :o AND #i < :counter",
                                     names={"#o": "owner", "#i": "id"},
                                     values={":o": owner, ":counter": COUNTER_ID}, consistent=True)
        return sorted((role_from_item(i) for i in items), key=lambda r: r.name)

    # -- writes ------------------------------------------------------------------

    def create(self, role: Role, cap: int | None = None) -> None:
        """Store a new role and count it. ``RoleExists`` if one of that name exists,
        ``LimitReached`` if the owner holds ``cap`` roles (None: no cap, still counted).

        Safe to retry after a lost answer: the item records a nonce of this call,
        and a failed condition whose old item (ALL_OLD) carries it is our own
        earlier write, committed before the answer was lost, not a conflict.
        """
        nonce = secrets.token_urlsafe(16)
        item: Item = {"owner": role.owner, "id": role.id, "name": role.name,
                      "description": role.description, "created_at": role.created_at,
                      "policies": dict(role.policies),
                      "trust": {t.id: _trust_item(t) for t in role.trust.values()},
                      "keys": {k.id: _key_item(k) for k in role.keys.values()},
                      "create_nonce": nonce}
        values: dict[str, Any] = {":one": 1}
        if cap is not None:
            values[":cap"] = cap
        try:
            transact(self.table.client, [
                # attribute_not_exists: a role name is taken once; a concurrent create
                # of the same name loses. It comes first, so a failure of its
                # condition is the one reported.
                self.table.op_put(item, "attribute_not_exists(id)"),
                # n < cap: the owner holds fewer than ``cap`` roles, even under
                # concurrent creates.
                self.table.op_update(self.key(role.owner, COUNTER_ID), "ADD n :one",
                                     condition=None if cap is None
                                     else "attribute_not_exists(n) OR n < :cap",
                                     values=values),
            ])
        except ConditionFailed as exc:
            old: Item = exc.item or {}
            if old.get("create_nonce") == nonce:
                return
            if old.get("id") == COUNTER_ID:
                raise LimitReached(f"owner holds {cap} roles", item=old) from exc
            raise RoleExists(f"role {role.name} exists", item=old) from exc

    def delete(self, name: str) -> bool:
        """Remove the role with all its keys, policies and trust, and uncount it;
        False when there was no such role."""
        key = self.key_for_name(name)
        if key is None:
            return False
        # attribute_exists and the name: only this role is removed, and a missing
        # role is reported rather than "deleted" twice.
        condition, names, values = "attribute_exists(id) AND #n = :n", {"#n": "name"}, {":n": name}
        try:
            transact(self.table.client, [
                self.table.op_delete(key, condition, names=names, values=values),
                # n > 0: the counter never goes below zero.
                self.table.op_update(self.key(key["owner"], COUNTER_ID), "ADD n :minus",
                                     condition="n > :zero", values={":minus": -1, ":zero": 0}),
            ])
        except ConditionFailed:
            # The role is gone, or it was never counted (counter at 0); try it alone.
            try:
                self.table.delete(key, condition=condition, names=names, values=values)
            except ConditionFailed:
                return False
        return True

    def _add_entry(self, name: str, attribute: str, entry_id: str, value: Any, cap: int,
                   same: Callable[[Any], bool] | None = None) -> Role | None:
        """Add one entry to a map of the role (policies, trust, keys): the role as
        it now is, None when there is no such role, ``LimitReached`` at the cap.

        An entry already stored under ``entry_id`` for which ``same`` holds (by
        default: equal to ``value``) counts as added."""
        key = self.key_for_name(name)
        if key is None:
            return None
        try:
            # The role exists under this name, the entry is new, and the map holds
            # fewer than ``cap`` entries: size() of a map counts its entries, so
            # the cap holds under concurrent adds.
            item = self.table.update(
                key, "SET #m.#id = :v",
                condition="attribute_exists(id) AND #name = :name "
                          "AND attribute_not_exists(#m.#id) AND size(#m) < :cap",
                names={"#name": "name", "#m": attribute, "#id": entry_id},
                values={":name": name, ":v": value, ":cap": cap})
        except ConditionFailed as exc:
            old: Item | None = exc.item
            if not old or old.get("name") != name:
                return None
            entries: dict[str, Any] = old.get(attribute) or {}
            if entry_id in entries and (same or (lambda old: old == value))(entries[entry_id]):
                # Already there: our own write whose answer was lost, or the same
                # entry added before (policy and trust ids derive from content).
                return role_from_item(old)
            if len(entries) >= cap:
                raise LimitReached(f"role {name} holds {cap} {attribute}", item=old) from exc
            raise
        return role_from_item(item) if item else None

    def _remove_entry(self, name: str, attribute: str, entry_id: str) -> Role | None:
        """Remove one entry of a map of the role: the role as it now is, None when
        the role or the entry is absent."""
        key = self.key_for_name(name)
        if key is None:
            return None
        try:
            # attribute_exists: removing an entry that is not there is a 404, not a
            # no-op. After this answer every strongly consistent read lacks it.
            item = self.table.update(
                key, "REMOVE #m.#id",
                condition="attribute_exists(id) AND #name = :name AND attribute_exists(#m.#id)",
                names={"#name": "name", "#m": attribute, "#id": entry_id},
                values={":name": name})
        except ConditionFailed:
            return None
        return role_from_item(item) if item else None

    def add_policy(self, name: str, policy_id: str, permission: str, cap: int) -> Role | None:
        return self._add_entry(name, "policies", policy_id, permission, cap)

    def remove_policy(self, name: str, policy_id: str) -> Role | None:
        return self._remove_entry(name, "policies", policy_id)

    def add_trust(self, name: str, trust: TrustPolicy, cap: int) -> Role | None:
        # The id derives from what the policy matches: the same id is the same policy.
        return self._add_entry(name, "trust", trust.id, _trust_item(trust), cap,
                               same=lambda old: True)

    def remove_trust(self, name: str, trust_id: str) -> Role | None:
        return self._remove_entry(name, "trust", trust_id)

    def add_key(self, name: str, key: RoleKey, cap: int) -> Role | None:
        return self._add_entry(name, "keys", key.id, _key_item(key), cap,
                               same=lambda old: old.get("secret_hash") == key.secret_hash)

    def remove_key(self, name: str, key_id: str) -> Role | None:
        # After this answer, every strongly consistent read of the role lacks the
        # key: no request validated later succeeds with it.
        return self._remove_entry(name, "keys", key_id)

    def revoke_key(self, owner: str, role_id: str, key_id: str, secret_hash: str) -> Role | None:
        """Remove the key whose secret hashes to ``secret_hash`` (RFC 7009: the
        holder revokes it); the role as it is after, or None if no such key."""
        try:
            # Only the holder of the secret removes the key: a made-up secret with
            # a valid checksum names the key but does not match its hash. After
            # this answer every strongly consistent read of the role lacks the key.
            item = self.table.update(
                self.key(owner, role_id), "REMOVE #k.#id",
                condition="attribute_exists(#k.#id) AND #k.#id.#h = :h",
                names={"#k": "keys", "#id": key_id, "#h": "secret_hash"},
                values={":h": secret_hash})
        except ConditionFailed:
            return None
        return role_from_item(item) if item else None

    def touch_key(self, owner: str, role_id: str, key_id: str, now: int, resolution: int) -> bool:
        """Record a use of the key, at most once per ``resolution`` seconds (SPEC §6:
        ``last_used_at`` without a write per request). False when nothing was written."""
        try:
            # The key still exists (a touch never recreates a removed key) and its
            # last use is older than the resolution.
            self.table.update(
                self.key(owner, role_id), "SET #k.#id.#u = :now",
                condition="attribute_exists(#k.#id) AND (attribute_not_exists(#k.#id.#u) "
                          "OR #k.#id.#u < :stale)",
                names={"#k": "keys", "#id": key_id, "#u": "last_used_at"},
                values={":now": now, ":stale": now - resolution}, returns="NONE")
        except ConditionFailed:
            return False
        return True


def _key_item(key: RoleKey) -> dict[str, Any]:
    out: dict[str, Any] = {"secret_hash": key.secret_hash, "description": key.description,
                           "created_at": key.created_at}
    if key.last_used_at is not None:
        out["last_used_at"] = key.last_used_at
    return out


def _trust_item(t: TrustPolicy) -> dict[str, Any]:
    return {"issuer": t.issuer, "audience": t.audience, "subject": t.subject,
            "claims": dict(t.claims), "created_at": t.created_at}
