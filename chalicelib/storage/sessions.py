"""The sessions table: one item per login, carrying its refresh-token state.

Refresh-token attributes of a session item:

* ``rt_hash``       digest of the current refresh token;
* ``rt_prev_hash``  digest of the one it replaced, ``rt_rotated_at`` when;
* ``rt_next_wrap``  the current token sealed with AES-GCM under a key derived
  (HKDF) from the previous one, the session id as associated data: only whoever
  presents the previous token can open it, which is how a retry within the
  grace window gets the *same* successor back, and a changed wrap is detected;
* ``rt_retired``    64-bit fingerprints of every rotated-out token, so reuse of
  any of them (RFC 9700 §4.14.2) is recognised, not just of the last one.

``ttl`` is the moment the item becomes useless, min(idle deadline, cap): a
session past either refuses everything, so TTL may remove it then.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chalicelib.errors import ConditionFailed
from chalicelib.models import Session
from chalicelib.storage.dynamo import Item, Table
from chalicelib.storage.schema import SESSIONS_BY_IDLE, SESSIONS_BY_USER


def session_from_item(item: Item) -> Session:
    return Session(
        id=item["id"], user_id=item["user_id"], client_id=item["client_id"],
        scope=item.get("scope", ""), created_at=int(item["created_at"]),
        expires_at=int(item["expires_at"]), idle_deadline=int(item["idle_deadline"]),
        last_used_at=int(item.get("last_used_at") or item["created_at"]),
        kind=item.get("kind", "oauth"), device=dict(item.get("device") or {}),
        auth_time=int(item.get("auth_time") or item["created_at"]),
        resources=tuple(sorted(item.get("resources") or ())),
        amr=tuple(item.get("amr") or ()),
    )


class SessionsRepo:
    def __init__(self, table: Table, shards: int = 8) -> None:
        self.table = table
        self.shards = max(1, shards)

    def key(self, session_id: str) -> dict[str, str]:
        return {"id": session_id}

    def shard_of(self, session_id: str) -> int:
        return sum(session_id.encode("ascii")) % self.shards

    def new_item(self, session: Session, rt_hash: str | None) -> Item:
        item: dict[str, Any] = {
            "id": session.id, "user_id": session.user_id, "client_id": session.client_id,
            "scope": session.scope, "created_at": session.created_at,
            "expires_at": session.expires_at, "idle_deadline": session.idle_deadline,
            "last_used_at": session.last_used_at, "kind": session.kind,
            "device": session.device or None, "purge_shard": self.shard_of(session.id),
            "ttl": min(session.idle_deadline, session.expires_at), "rt_hash": rt_hash,
            "rt_gen": 0, "scopes": set(session.scope.split()) or None,
            "auth_time": session.auth_time,
            # A string set, absent when empty (DynamoDB has no empty set).
            "resources": set(session.resources) or None,
            "amr": list(session.amr),
        }
        return item

    def op_create(self, session: Session, rt_hash: str | None) -> dict[str, Any]:
        # attribute_not_exists: a fresh random id never overwrites a session.
        return self.table.op_put(self.new_item(session, rt_hash), "attribute_not_exists(id)")

    def op_end(self, session_id: str) -> dict[str, Any]:
        """End a session evicted by its user's session cap, in the transaction that
        opens the new one. No condition: the id comes from the user's own sessions
        map, and one that already ended is nothing to end (a condition would fail
        the sign-in for it)."""
        return self.table.op_delete(self.key(session_id))

    def create(self, session: Session, rt_hash: str | None) -> None:
        # attribute_not_exists: a fresh random id never overwrites a session.
        self.table.put(self.new_item(session, rt_hash), condition="attribute_not_exists(id)")

    def get_item(self, session_id: str) -> Item | None:
        return self.table.get(self.key(session_id))

    def get(self, session_id: str) -> Session | None:
        item = self.get_item(session_id)
        return session_from_item(item) if item else None

    def touch_web(self, session_id: str, cookie_hash: str, now: int, idle_deadline: int) -> Item | None:
        """Record a use of a browser sign-in: move its idle deadline (SPEC §3).

        The condition guarantees that only the cookie's own live web session is
        moved, so an ended, idle or capped session is never revived; None then.
        """
        try:
            return self.table.update(
                self.key(session_id), "SET last_used_at = :now, idle_deadline = :idle",
                condition="kind = :web AND rt_hash = :h AND idle_deadline > :now "
                          "AND expires_at > :now",
                values={":now": now, ":idle": idle_deadline, ":web": "web", ":h": cookie_hash})
        except ConditionFailed:
            return None

    def op_complete_web(self, session_id: str, old_hash: str, new_hash: str,
                        amr: list[str], now: int) -> dict[str, Any]:
        """A browser sign-in's second step (SPEC §11), for the transaction that also
        spends the factor: record the methods, take the new cookie's digest (the
        cookie changes when the sign-in gains rights) and the moment of
        authentication. The condition: it is still this cookie's live web session,
        so a replayed form or an ended session gains nothing."""
        return self.table.op_update(
            self.key(session_id), "SET amr = :amr, rt_hash = :new, auth_time = :now",
            condition="kind = :web AND rt_hash = :old AND idle_deadline > :now "
                      "AND expires_at > :now",
            values={":amr": amr, ":new": new_hash, ":old": old_hash, ":now": now, ":web": "web"})

    def op_add_methods(self, session_id: str, amr: list[str]) -> dict[str, Any]:
        """A factor enrolled through a session's access token counts for the sign-in
        behind it (the person just proved holding it, SPEC §11): its methods become
        ``amr``. The condition: the session still exists (an ended one stays ended)."""
        return self.table.op_update(self.key(session_id), "SET amr = :amr",
                                    condition="attribute_exists(id)", values={":amr": amr})

    def rotate(self, session_id: str, *, presented: str, successor: str, wrap: str,
               fingerprint: str, client_id: str, now: int, idle_deadline: int,
               scopes: tuple[str, ...] = (), resources: tuple[str, ...] = (),
               max_rotations: int = 2000) -> Item:
        """Exchange the current refresh token for its successor: one conditional write.

        ``idle_deadline`` comes clamped to the cap by the caller; it is the ttl too.

        The condition guarantees that the presented token is the current one, that
        it is presented by the client it was issued to, and that the session is
        alive, that every requested scope was granted to the session (RFC 6749 §6:
        no widening), that every requested resource was one of the login's (RFC 8707
        §2.2), and that the session has rotated fewer than ``max_rotations``
        times (each rotation keeps a 16-character fingerprint, so this bounds the
        item far below DynamoDB's 400 KB); so of two concurrent exchanges exactly one succeeds, and
        a dead or ended session is never revived. Raises ConditionFailed carrying
        the item as it was (ALL_OLD) so the caller can tell a grace retry from reuse.
        """
        scope_values = {f":s{i}": s for i, s in enumerate(scopes)}
        scope_condition = "".join(f" AND contains(scopes, {k})" for k in scope_values)
        resource_values = {f":r{i}": r for i, r in enumerate(resources)}
        scope_condition += "".join(f" AND contains(#res, {k})" for k in resource_values)
        item = self.table.update(
            self.key(session_id),
            "SET rt_prev_hash = :presented, rt_hash = :successor, rt_rotated_at = :now, "
            "rt_next_wrap = :wrap, last_used_at = :now, idle_deadline = :idle, #ttl = :ttl "
            "ADD rt_gen :one, rt_retired :fp",
            condition="rt_hash = :presented AND client_id = :client "
                      "AND idle_deadline > :now AND expires_at > :now "
                      "AND (attribute_not_exists(rt_gen) OR rt_gen < :max_gen)" + scope_condition,
            names={"#ttl": "ttl", **({"#res": "resources"} if resource_values else {})},
            values={":presented": presented, ":successor": successor, ":now": now,
                    ":wrap": wrap, ":idle": idle_deadline, ":ttl": idle_deadline, ":one": 1,
                    ":fp": {fingerprint}, ":client": client_id, ":max_gen": max_rotations,
                    **scope_values, **resource_values},
        )
        assert item is not None
        return item

    def narrow(self, session_id: str, seen_scope: str, scope: str) -> bool:
        """Replace a session's scope by a narrower one (its user lost rights).

        The condition guarantees that nothing changed the scope since it was read
        (a concurrent narrowing is not undone) and that an ended session is not
        recreated; False if it lost, so the caller reads again.
        """
        try:
            self.table.update(self.key(session_id), "SET #scope = :new, scopes = :set",
                              condition="attribute_exists(id) AND #scope = :seen",
                              names={"#scope": "scope"},
                              values={":new": scope, ":set": set(scope.split()),
                                      ":seen": seen_scope}, returns="NONE")
        except ConditionFailed:
            return False
        return True

    def delete_if_scope(self, session_id: str, seen_scope: str) -> bool:
        """End a session whose user no longer holds any of its scopes.

        The condition guarantees the scope is still the one read; False otherwise.
        """
        try:
            self.table.delete(self.key(session_id), condition="#scope = :seen",
                              names={"#scope": "scope"}, values={":seen": seen_scope})
        except ConditionFailed:
            return False
        return True

    def op_delete_owned(self, session_id: str, user_id: str, now: int) -> dict[str, Any]:
        """``delete_owned`` as one operation of a transaction (with the security
        log's entry): the same condition, so the entry commits only with the end."""
        return self.table.op_delete(
            self.key(session_id),
            condition="user_id = :u AND idle_deadline > :now AND expires_at > :now",
            values={":u": user_id, ":now": now})

    def delete_owned(self, session_id: str, user_id: str, now: int) -> bool:
        """End a live session of this user; False if there is none to end.

        The condition guarantees a user can end only their own sessions, and that
        a dead one reads as absent (TTL is lazy), in one write and no read.
        """
        try:
            self.table.delete(self.key(session_id),
                              condition="user_id = :u AND idle_deadline > :now AND expires_at > :now",
                              values={":u": user_id, ":now": now})
        except ConditionFailed:
            return False
        return True

    def delete_if_current(self, session_id: str, rt_hash: str, client_id: str) -> Item | None:
        """End a session by its current refresh token (RFC 7009 revocation).

        The condition guarantees that only the session's current token, presented
        by the client it was issued to, deletes it; a stale or foreign token
        deletes nothing. Returns None when deleted, else the item as it was
        (ALL_OLD; None too if there was no session).
        """
        try:
            self.table.delete(self.key(session_id), condition="rt_hash = :h AND client_id = :client",
                              values={":h": rt_hash, ":client": client_id})
        except ConditionFailed as lost:
            return lost.item
        return None

    def delete_if_client(self, session_id: str, user_id: str, client_id: str) -> Item | None:
        """End a session of this user with this client; returns what it was.

        The condition guarantees that only that user's session with that client
        is deleted (the index that named it may be stale); None otherwise.
        """
        try:
            return self.table.delete(self.key(session_id), condition="user_id = :u AND client_id = :c",
                                     values={":u": user_id, ":c": client_id})
        except ConditionFailed:
            return None

    def delete(self, session_id: str) -> Item | None:
        """End a session; returns what it was (None if it was not there)."""
        return self.table.delete(self.key(session_id))

    def delete_if_idle(self, session_id: str, now: int) -> bool:
        """Purge one session only if it is still idle past its deadline.

        The condition guarantees that a session refreshed while the purge runs
        (its idle_deadline moved into the future) survives, and that deleting
        twice is harmless.
        """
        try:
            self.table.delete(self.key(session_id), condition="idle_deadline <= :now",
                              values={":now": now})
        except ConditionFailed:
            return False
        return True

    def idle_page(self, shard: int, now: int, start_key: Item | None,
                  limit: int) -> tuple[list[Item], Item | None]:
        """One page of sessions of a shard whose idle deadline has passed."""
        return self.table.query(
            "purge_shard = :shard AND idle_deadline <= :now", index=SESSIONS_BY_IDLE,
            values={":shard": shard, ":now": now}, limit=limit, start_key=start_key)

    def for_user(self, user_id: str) -> Iterator[Item]:
        return self.table.query_all("user_id = :u", index=SESSIONS_BY_USER,
                                    values={":u": user_id}, forward=False)
