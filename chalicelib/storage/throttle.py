"""Counters of failures per user and per source (sign-in, user-code guessing).

One item per counted key: ``failures`` in the window that began at
``window_start``, the time of the last failure, and ``locked_until`` once a
failure reached the lockout threshold. Every failure is one atomic ``ADD`` whose
returned value is the count; nothing is decided from a count read earlier, so N
simultaneous failures count N, from any number of processes (SPEC §8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.errors import ConditionFailed, StorageUnavailable
from chalicelib.storage.dynamo import Item, Table

# Each lost condition means another writer moved the counter on (a window
# restarted, a lockout began); a few rounds always settle it.
WRITE_ROUNDS = 4


@dataclass(frozen=True)
class Limit:
    """A failure budget: ``lock_after`` failures within ``window`` seconds lock
    the key for ``lock_seconds``, counted from the failure that reached it.
    """

    window: int
    lock_after: int
    lock_seconds: int

    def ttl(self, now: int) -> int:
        # Past the end of any window or lockout that a write at ``now`` can start.
        return now + max(self.window, self.lock_seconds)


@dataclass(frozen=True)
class Counter:
    key: str
    failures: int = 0           # in the current window; 0 once it has lapsed
    window_start: int = 0
    last_failure_at: int = 0
    locked_until: int = 0       # outlives the window: a lockout runs its full term

    @classmethod
    def from_item(cls, key: str, item: Item | None, now: int, window: int) -> Counter:
        if not item:
            return cls(key)
        locked_until = int(item.get("locked_until", 0))
        if int(item.get("window_start", 0)) + window <= now:
            return cls(key, locked_until=locked_until)
        return cls(key, int(item.get("failures", 0)), int(item["window_start"]),
                   int(item.get("last_failure_at", 0)), locked_until)

    def locked(self, now: int) -> bool:
        return now < self.locked_until


class ThrottleRepo:
    def __init__(self, table: Table) -> None:
        self.table = table

    def key(self, name: str) -> dict[str, str]:
        return {"pk": name}

    def record_failure(self, name: str, now: int, limit: Limit) -> Counter:
        """Count one failure and return the counter as it is after it.

        The failure that brings the count to ``limit.lock_after`` also starts the
        lockout, in the same write. A lapsed window is restarted by exactly one
        writer; a failure that loses that race adds to the new window.
        """
        for _ in range(WRITE_ROUNDS):
            old: Item
            if limit.lock_after > 1:
                try:
                    return self._add(name, now, limit)
                except ConditionFailed as lost:
                    old = dict(lost.item or {})
            else:
                old = self.table.get(self.key(name)) or {}
            try:
                if "window_start" not in old or int(old["window_start"]) + limit.window <= now:
                    return self._restart(name, now, limit, old)
                return self._add_at_threshold(name, now, limit, old)
            except ConditionFailed:
                continue
        raise StorageUnavailable(detail=f"throttle counter {name} kept changing")

    def _counter(self, name: str, item: Item | None, now: int, limit: Limit) -> Counter:
        assert item is not None
        return Counter.from_item(name, item, now, limit.window)

    def _add(self, name: str, now: int, limit: Limit) -> Counter:
        item = self.table.update(
            self.key(name),
            "SET window_start = if_not_exists(window_start, :now), last_failure_at = :now, "
            "#ttl = :ttl ADD failures :one",
            # The window is open (or this is its first failure) and this failure
            # stays below the lockout threshold: a plain ADD is all it takes.
            condition="(attribute_not_exists(window_start) OR window_start > :lapsed) "
                      "AND (attribute_not_exists(failures) OR failures < :below)",
            names={"#ttl": "ttl"},
            values={":one": 1, ":now": now, ":ttl": limit.ttl(now),
                    ":lapsed": now - limit.window, ":below": limit.lock_after - 1})
        return self._counter(name, item, now, limit)

    def _restart(self, name: str, now: int, limit: Limit, old: Item) -> Counter:
        expression = "SET failures = :one, window_start = :now, last_failure_at = :now, #ttl = :ttl"
        values: dict[str, Any] = {":one": 1, ":now": now, ":ttl": limit.ttl(now)}
        if limit.lock_after <= 1 and int(old.get("locked_until", 0)) <= now:
            expression += ", locked_until = :until"
            values[":until"] = now + limit.lock_seconds
        if "window_start" in old:
            # Only the first failure after the window lapsed restarts it; one that
            # loses the race adds to the new window instead of overwriting it.
            condition = "window_start = :old_start"
            values[":old_start"] = int(old["window_start"])
        else:
            # Only the first failure ever creates the counter.
            condition = "attribute_not_exists(window_start)"
        item = self.table.update(self.key(name), expression, condition=condition,
                                 names={"#ttl": "ttl"}, values=values)
        return self._counter(name, item, now, limit)

    def _add_at_threshold(self, name: str, now: int, limit: Limit, old: Item) -> Counter:
        values: dict[str, Any] = {":one": 1, ":now": now, ":ttl": limit.ttl(now),
                                  ":start": int(old["window_start"])}
        if int(old.get("locked_until", 0)) > now:
            # Same window, and the running lockout is neither extended nor cut short.
            expression = "SET last_failure_at = :now, #ttl = :ttl ADD failures :one"
            condition = "window_start = :start"
        else:
            # Same window and no running lockout: exactly one failure starts it,
            # and it lasts its full term from that failure.
            expression = ("SET last_failure_at = :now, locked_until = :until, #ttl = :ttl "
                          "ADD failures :one")
            condition = ("window_start = :start AND "
                         "(attribute_not_exists(locked_until) OR locked_until <= :now)")
            values[":until"] = now + limit.lock_seconds
        item = self.table.update(self.key(name), expression, condition=condition,
                                 names={"#ttl": "ttl"}, values=values)
        return self._counter(name, item, now, limit)

    def op_clear_unless_locked(self, name: str, now: int) -> dict[str, Any]:
        # Deleted only while no lockout runs: a sign-in whose password check
        # overlapped the failure that locked the account is refused, not opened.
        return self.table.op_delete(
            self.key(name), condition="attribute_not_exists(locked_until) OR locked_until <= :now",
            values={":now": now})

    def op_check_unlocked(self, name: str, now: int) -> dict[str, Any]:
        """A check for a caller's transaction: no lockout of ``name`` runs. The
        failures stay counted (a password step that still awaits its second factor
        clears nothing: guessing the second factor counts toward the lockout)."""
        return self.table.op_check(
            self.key(name), condition="attribute_not_exists(locked_until) OR locked_until <= :now",
            values={":now": now})
