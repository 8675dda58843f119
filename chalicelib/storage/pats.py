"""The ``tokens`` table, personal access tokens part (SPEC §5).

One item per PAT under its owner (pk ``owner``, sk ``id``), holding only the
digest of the secret. One more item per owner, ``id = "~count"``, counts the
owner's PATs so that the per-user cap holds under concurrent generates (a
conditional counter update in the same transaction as the put).

Expiry notices (``jobs/expiry_notices.py``): a PAT with a notice still to send
carries ``notice_shard`` and ``notice_at`` (when the next one is due), which put
it in the sparse ``by_notice`` index; ``notified_expiry`` and ``notified_days``
record the tightest notice sent and the expiry it was for, so a new expiry
restarts the thresholds by itself. Create and every edit set ``notice_at`` to
the first threshold before the expiry (never later than the next notice due);
the job moves it to the next threshold and drops the token from the index after
the last one. PATs written before the index existed are not in it until their
next edit or ``tessera-admin tokens backfill-notices`` (``tessera_admin/token_backfill.py``).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.errors import ConditionFailed, StorageContended
from chalicelib.storage.dynamo import BACKOFF, CONFLICT_ATTEMPTS, Backoff, Item, Table, transact
from chalicelib.storage.schema import TOKENS_BY_NOTICE

COUNTER_ID = "~count"   # "~" sorts after every base62 id and is never one
# Rounds of a create that keeps losing to concurrent transactions on the owner's
# counter (each round is ``transact``'s own CONFLICT_ATTEMPTS tries), with the
# counter read between rounds: at the cap the create is refused (409), below it
# the next round may win; contended through every round, it is a 503.
CREATE_ROUNDS = 3
# The source addresses a PAT was used from, kept to tell a new one (SPEC §11
# ``pat_used_new_ip``): the most recent few, oldest first.
MAX_SEEN_IPS = 10
DAY = 86400
# The first expiry notice goes this many days before the expiry (the job's thresholds).
FIRST_NOTICE_DAYS = 14
# Partition values of the ``by_notice`` index. Its writes are a few per PAT
# (create, edits, one per notice), far below a partition's 1000 a second; the
# shards spread a burst of creates. Raising the count is safe (the job reads every
# shard below it); lowering it would leave the dropped shards' tokens unnotified.
NOTICE_SHARDS = 4


@dataclass(frozen=True)
class Pat:
    """A personal access token as stored (never the secret itself)."""

    id: str
    owner: str
    description: str
    token_hash: str
    last_four: str
    scopes: tuple[str, ...]
    created_at: int
    expires_on: str | None          # ISO date; the token stops at 00:00 UTC that day
    expires_at: int | None          # the same instant in epoch seconds
    api_set: str | None = None
    last_used_at: int | None = None
    revoked_at: int | None = None
    regenerated_at: int | None = None
    created_from: dict[str, str] = field(default_factory=dict)
    seen_ips: tuple[str, ...] = ()
    # Expiry notices: the next one due (None: none left), the tightest one sent
    # (days before the expiry, 0 = on expiry) and the expiry it was sent for.
    notice_at: int | None = None
    notified_days: int | None = None
    notified_expiry: int | None = None

    def state(self, now: int) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    @property
    def issued_at(self) -> int:
        return self.regenerated_at or self.created_at


def pat_from_item(item: Item) -> Pat:
    def opt_int(name: str) -> int | None:
        value = item.get(name)
        return None if value is None else int(value)

    return Pat(
        id=item["id"], owner=item["owner"], description=item.get("description", ""),
        token_hash=item.get("token_hash", ""), last_four=item.get("last_four", ""),
        scopes=tuple(item.get("scopes") or ()), created_at=int(item["created_at"]),
        expires_on=item.get("expires_on"), expires_at=opt_int("expires_at"),
        api_set=item.get("api_set"), last_used_at=opt_int("last_used_at"),
        revoked_at=opt_int("revoked_at"), regenerated_at=opt_int("regenerated_at"),
        created_from=dict(item.get("created_from") or {}),
        seen_ips=tuple(item.get("seen_ips") or ()),
        notice_at=opt_int("notice_at"), notified_days=opt_int("notified_days"),
        notified_expiry=opt_int("notified_expiry"),
    )


def notice_shard(pat_id: str, shards: int = NOTICE_SHARDS) -> int:
    return sum(pat_id.encode("ascii")) % shards


def first_notice_at(expires_at: int) -> int:
    return expires_at - FIRST_NOTICE_DAYS * DAY


# One page of the notices index: (owner, id, notice_at, expires_at) each, and the next key.
NoticePage = tuple[list[tuple[str, str, int, int]], Item | None]


@dataclass(frozen=True)
class NoticeClaim:
    """The outcome of ``PatsRepo.claim_notice``: whether this run won the notice,
    and the PAT as it was before the write (won) or as it is (lost; None: gone)."""

    won: bool
    pat: Pat | None


class PatsRepo:
    def __init__(self, table: Table, retention_seconds: int = 30 * 86400,
                 backoff: Backoff | None = None) -> None:
        self.table = table
        # Pauses between tries of a contended create (injectable: tests take none).
        self.backoff = backoff
        # Expired and revoked PATs stay listed this long before TTL removes them.
        self.retention = retention_seconds

    @staticmethod
    def key(owner: str, pat_id: str) -> dict[str, str]:
        return {"owner": owner, "id": pat_id}

    def _ttl(self, expires_at: int | None) -> int | None:
        return None if expires_at is None else expires_at + self.retention

    def _item(self, pat: Pat) -> Item:
        return {
            "owner": pat.owner, "id": pat.id, "kind": "pat", "description": pat.description,
            "token_hash": pat.token_hash, "last_four": pat.last_four, "scopes": list(pat.scopes),
            "api_set": pat.api_set, "created_at": pat.created_at, "expires_on": pat.expires_on,
            "expires_at": pat.expires_at, "created_from": pat.created_from or None,
            "seen_ips": list(pat.seen_ips) or None, "ttl": self._ttl(pat.expires_at),
            # In the notices index only when it expires (None is dropped on write).
            "notice_shard": None if pat.expires_at is None else notice_shard(pat.id),
            "notice_at": None if pat.expires_at is None else first_notice_at(pat.expires_at),
        }

    # -- reads ----------------------------------------------------------------------

    def get(self, owner: str, pat_id: str) -> Pat | None:
        item = self.table.get(self.key(owner, pat_id))
        return pat_from_item(item) if item and item.get("kind") == "pat" else None

    def list(self, owner: str) -> list[Pat]:
        items = self.table.query_all("#o = :o AND #i < :counter", names={"#o": "owner", "#i": "id"},
                                     values={":o": owner, ":counter": COUNTER_ID}, consistent=True)
        return [pat_from_item(i) for i in items if i.get("kind") == "pat"]

    # -- writes ---------------------------------------------------------------------

    def create(self, pat: Pat, cap: int, also: Sequence[dict[str, Any]] = ()) -> None:
        """Store a new PAT and count it; raises ``ConditionFailed`` at the cap.

        Safe to retry after a lost answer: the item records a nonce of this call,
        and a failed condition whose old item (ALL_OLD) carries it is our own
        earlier write, committed before the answer was lost, not a conflict.

        Concurrent creates for one owner all update its counter, and DynamoDB
        cancels the losers (TransactionConflict); ``transact`` tries again with
        jittered backoff. One that still lost reads the counter: at the cap it is
        refused with ``ConditionFailed`` (it can never succeed: 409), below it
        another round is tried; ``StorageContended`` (503, worth a retry) only
        when every round lost with places still free. ``also``: more writes of the
        same transaction (the security log's entry).
        """
        nonce = secrets.token_urlsafe(16)
        item = {**self._item(pat), "create_nonce": nonce}
        recounted, contended = False, 0
        while True:
            try:
                self._create(item, cap, also)
                return
            except ConditionFailed as lost:
                if (lost.item or {}).get("create_nonce") == nonce:
                    return
                # The counter may overcount PATs that TTL removed: recount and retry once.
                if recounted or not self._recount(pat.owner, cap):
                    raise
                recounted = True
            except StorageContended as exc:
                # Nothing was written; whether a retry can succeed depends on the count now.
                if not self._below_cap(pat.owner, cap):
                    if recounted or not self._recount(pat.owner, cap):
                        raise ConditionFailed("the owner's PATs are at the cap") from exc
                    recounted = True
                contended += 1
                if contended == CREATE_ROUNDS:
                    raise
                (self.backoff or BACKOFF).pause(CONFLICT_ATTEMPTS - 1 + contended,
                                                "PAT create after conflicts")

    def _below_cap(self, owner: str, cap: int) -> bool:
        """The owner's counter, read strongly consistently, is below the cap."""
        counter = self.table.get(self.key(owner, COUNTER_ID)) or {}
        return int(counter.get("n", 0)) < cap

    def _create(self, item: Item, cap: int, also: Sequence[dict[str, Any]]) -> None:
        transact(self.table.client, [
            # attribute_not_exists: a fresh random id never overwrites a PAT. It
            # comes first, so a failure of its condition is the one reported.
            self.table.op_put(item, "attribute_not_exists(id)"),
            # n < cap: the owner holds fewer than ``cap`` PATs, even under concurrent
            # creates; v counts every change of n, for ``_recount``.
            self.table.op_update(self.key(item["owner"], COUNTER_ID), "ADD n :one, v :one",
                                 condition="attribute_not_exists(n) OR n < :cap",
                                 values={":one": 1, ":cap": cap}),
            *also,
        ], backoff=self.backoff)

    def _recount(self, owner: str, cap: int) -> bool:
        """Lower the counter to the real number of PATs; True when below the cap now.

        The counter is read before the PATs are listed, and the new count is written
        only if it has not changed since (``v`` is bumped by every create, delete
        and recount): a count that a concurrent create or delete made stale is never
        written back, so the counter never falls below the number of PATs and the
        cap holds under any interleaving. (TTL removals after the listing only
        leave the counter high, which is safe.)
        """
        counter = self.table.get(self.key(owner, COUNTER_ID)) or {}
        actual = len(self.list(owner))
        if actual >= cap:
            return False
        seen = counter.get("v")
        try:
            # v unchanged since the read: no PAT was created or deleted while listing.
            self.table.update(
                self.key(owner, COUNTER_ID), "SET n = :n ADD v :one",
                condition="attribute_not_exists(v)" if seen is None else "v = :seen",
                values={":n": actual, ":one": 1, **({} if seen is None else {":seen": seen})},
                returns="NONE")
        except ConditionFailed:
            pass   # the counter moved meanwhile: the create's own condition decides
        return True

    def delete(self, owner: str, pat_id: str, also: Sequence[dict[str, Any]] = ()) -> bool:
        """Remove a PAT and uncount it; False when there was no such PAT. ``also``:
        more writes of the same transaction (the security log's entry)."""
        try:
            transact(self.table.client, [
                # attribute_exists: only an existing PAT is removed and uncounted.
                self.table.op_delete(self.key(owner, pat_id), "attribute_exists(id) AND kind = :pat",
                                     values={":pat": "pat"}),
                # n > 0: the counter never goes below zero; v counts every change of n.
                self.table.op_update(self.key(owner, COUNTER_ID), "ADD n :minus, v :one",
                                     condition="n > :zero",
                                     values={":minus": -1, ":zero": 0, ":one": 1}),
                *also,
            ])
        except ConditionFailed:
            # The PAT is gone, or the counter was already 0 (TTL overcount); try alone.
            try:
                # attribute_exists: a missing PAT is reported, not recreated.
                transact(self.table.client, [
                    self.table.op_delete(self.key(owner, pat_id),
                                         "attribute_exists(id) AND kind = :pat",
                                         values={":pat": "pat"}),
                    *also])
            except ConditionFailed:
                return False
        return True

    def update_settings(self, pat: Pat, *, description: str, scopes: tuple[str, ...],
                        api_set: str | None, expires_on: str | None,
                        expires_at: int | None) -> Pat:
        """Edit description, scopes and expiry of an existing PAT."""
        sets = ["description = :d", "scopes = :s", "expires_on = :eo", "expires_at = :ea",
                "api_set = :a", "#ttl = :ttl"]
        # Notices restart from the first threshold: never later than the next one
        # due; the job skips thresholds already sent for this expiry (notified_*).
        notice: dict[str, int] = {}
        if expires_at is None:
            tail = " REMOVE notice_shard, notice_at"
        else:
            sets += ["notice_shard = :ns", "notice_at = :na"]
            notice = {":ns": notice_shard(pat.id), ":na": first_notice_at(expires_at)}
            tail = ""
        item = self.table.update(
            self.key(pat.owner, pat.id), "SET " + ", ".join(sets) + tail,
            # attribute_exists and same hash: the PAT still exists and was not
            # regenerated meanwhile (never recreate a removed one).
            condition="attribute_exists(id) AND token_hash = :h",
            names={"#ttl": "ttl"},
            values={":d": description, ":s": list(scopes), ":eo": expires_on, ":ea": expires_at,
                    ":a": api_set, ":ttl": self._ttl(expires_at), ":h": pat.token_hash,
                    **notice})
        assert item is not None
        return pat_from_item(item)

    def replace_secret(self, pat: Pat, token_hash: str, last_four: str, now: int) -> Pat:
        """Swap in a new secret; the old digest stops matching in the same write."""
        item = self.table.update(
            self.key(pat.owner, pat.id),
            "SET token_hash = :new, last_four = :four, regenerated_at = :now",
            # token_hash = old: of two concurrent regenerations exactly one wins, and
            # a removed PAT is never recreated.
            condition="attribute_exists(id) AND token_hash = :old",
            values={":new": token_hash, ":four": last_four, ":now": now, ":old": pat.token_hash})
        assert item is not None
        return pat_from_item(item)

    def revoke(self, owner: str, pat_id: str, token_hash: str, now: int) -> bool:
        """Mark a PAT revoked if ``token_hash`` is its current secret."""
        try:
            self.table.update(
                self.key(owner, pat_id), "SET revoked_at = :now, #ttl = :ttl",
                # token_hash = presented: only the holder of the current secret revokes,
                # and a removed PAT is not recreated; revoked_at is set once.
                condition="token_hash = :h AND attribute_not_exists(revoked_at)",
                names={"#ttl": "ttl"},
                values={":now": now, ":ttl": now + self.retention, ":h": token_hash})
        except ConditionFailed:
            return False
        return True

    def op_seen_from(self, pat: Pat, ip: str) -> dict[str, Any]:
        """Add ``ip`` to the PAT's seen addresses (the oldest drops past
        MAX_SEEN_IPS), for the transaction that logs ``pat_used_new_ip``.

        The condition (the list as it was read, and the secret unchanged) makes
        concurrent first uses from new addresses write once each at most and never
        lose one another's address silently; a removed PAT is never recreated.
        """
        seen = [*pat.seen_ips, ip][-MAX_SEEN_IPS:]
        was = ("attribute_not_exists(seen_ips)" if not pat.seen_ips
               else "seen_ips = :was")
        return self.table.op_update(
            self.key(pat.owner, pat.id), "SET seen_ips = :seen",
            condition=f"attribute_exists(id) AND token_hash = :h AND {was}",
            values={":seen": seen, ":h": pat.token_hash,
                    **({":was": list(pat.seen_ips)} if pat.seen_ips else {})})

    def touch(self, owner: str, pat_id: str, now: int, resolution: int) -> bool:
        """Record a use, at most once per ``resolution`` seconds.

        The condition keeps ``last_used_at`` within ``resolution`` of the truth
        without a write per request: of concurrent requests at most one writes,
        and a removed PAT is never recreated by an update.
        """
        try:
            self.table.update(
                self.key(owner, pat_id), "SET last_used_at = :now",
                condition="attribute_exists(id) AND "
                          "(attribute_not_exists(last_used_at) OR last_used_at <= :stale)",
                values={":now": now, ":stale": now - resolution}, returns="NONE")
        except ConditionFailed:
            return False
        return True

    # -- expiry notices (jobs/expiry_notices.py) -------------------------------------

    def notice_page(self, shard: int, now: int, start_key: Item | None,
                    limit: int) -> NoticePage:
        """One page of PATs of a shard with a notice due by ``now``, from the
        ``by_notice`` index (eventually consistent: every write below re-checks):
        ``(owner, id, notice_at, expires_at)`` each, and the next page's key."""
        items, start = self.table.query(
            "notice_shard = :shard AND notice_at <= :now", index=TOKENS_BY_NOTICE,
            values={":shard": shard, ":now": now}, limit=limit, start_key=start_key)
        return [(i["owner"], i["id"], int(i["notice_at"]), int(i["expires_at"])) for i in items], start

    def claim_notice(self, owner: str, pat_id: str, expires_at: int, days: int,
                     next_at: int | None) -> NoticeClaim:
        """Record the ``days`` notice for this expiry as sent, before it is sent.

        The condition guarantees that the PAT still exists with this expiry (a
        removed one is not recreated, an edited one waits for its own thresholds),
        is not revoked, and that no notice as tight as this one was recorded for
        this expiry: of concurrent runs exactly one wins each notice, and a notice
        is never sent twice. ``next_at`` is when the next threshold falls due;
        None after the last, which takes the PAT out of the index.
        """
        values: dict[str, int] = {":e": expires_at, ":d": days}
        if next_at is None:
            move = " REMOVE notice_shard, notice_at"
        else:
            move, values[":next"] = ", notice_at = :next", next_at
        try:
            old = self.table.update(
                self.key(owner, pat_id), "SET notified_expiry = :e, notified_days = :d" + move,
                condition="expires_at = :e AND attribute_not_exists(revoked_at) AND "
                          "(attribute_not_exists(notified_expiry) OR notified_expiry <> :e "
                          "OR notified_days > :d)",
                values=values, returns="ALL_OLD")
        except ConditionFailed as lost:
            return NoticeClaim(False, pat_from_item(lost.item) if lost.item else None)
        assert old is not None
        return NoticeClaim(True, pat_from_item(old))

    def release_notice(self, was: Pat, days: int, next_at: int | None) -> bool:
        """Undo ``claim_notice`` after the notice could not be sent: the next run retries.

        The condition guarantees that only this run's own mark is put back: the
        expiry is unchanged and the recorded notice and next due time are still
        the ones the claim wrote (so a later notice, an edit or a removal is never
        undone, and a removed PAT is not recreated). False when it lost.
        """
        assert was.expires_at is not None
        values: dict[str, int] = {":e": was.expires_at, ":d": days, ":ns": notice_shard(was.id),
                                  ":was": was.notice_at if was.notice_at is not None
                                  else first_notice_at(was.expires_at)}
        sets = ["notice_shard = :ns", "notice_at = :was"]
        if was.notified_expiry is None or was.notified_days is None:
            tail = " REMOVE notified_expiry, notified_days"
        else:
            sets += ["notified_expiry = :oe", "notified_days = :od"]
            values.update({":oe": was.notified_expiry, ":od": was.notified_days})
            tail = ""
        if next_at is None:
            still = "attribute_not_exists(notice_at)"
        else:
            still, values[":next"] = "notice_at = :next", next_at
        try:
            self.table.update(
                self.key(was.owner, was.id), "SET " + ", ".join(sets) + tail,
                condition="expires_at = :e AND notified_expiry = :e AND notified_days = :d AND "
                          + still, values=values, returns="NONE")
        except ConditionFailed:
            return False
        return True

    def reschedule_notice(self, owner: str, pat_id: str, seen_at: int, expires_at: int,
                          next_at: int | None) -> bool:
        """Move a PAT's next notice (None: out of the index) when nothing is due at
        ``seen_at`` (revoked, or the notice already sent for this expiry).

        The condition guarantees that the PAT still has the expiry and the due time
        the job read, so a concurrent claim or edit is never overwritten and a
        removed PAT is not recreated. False when it lost.
        """
        values = {":seen": seen_at, ":e": expires_at}
        if next_at is None:
            expression = "REMOVE notice_shard, notice_at"
        else:
            expression, values[":next"] = "SET notice_at = :next", next_at
        try:
            self.table.update(self.key(owner, pat_id), expression,
                              condition="notice_at = :seen AND expires_at = :e",
                              values=values, returns="NONE")
        except ConditionFailed:
            return False
        return True

    def add_to_notices(self, owner: str, pat_id: str, expires_at: int) -> bool:
        """Put a PAT written before the ``by_notice`` index into it (the admin
        command ``tokens backfill-notices``); False when it was left as it is.

        The condition guarantees that a PAT already in the index (an edit or a
        concurrent backfill) and one whose expiry changed meanwhile are left as
        they are, and that a removed PAT is not recreated.
        """
        try:
            self.table.update(
                self.key(owner, pat_id), "SET notice_shard = :ns, notice_at = :na",
                condition="attribute_not_exists(notice_shard) AND expires_at = :e",
                values={":ns": notice_shard(pat_id), ":na": first_notice_at(expires_at),
                        ":e": expires_at}, returns="NONE")
        except ConditionFailed:
            return False
        return True
