"""Counters of failures per user and per source (sign-in, user-code guessing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.storage.dynamo import Item, Table


@dataclass(frozen=True)
class Counter:
    key: str
    failures: int = 0
    window_start: int = 0
    last_failure_at: int = 0

    @classmethod
    def from_item(cls, key: str, item: Item | None, now: int, window: int) -> Counter:
        if not item or int(item.get("window_start", 0)) + window <= now:
            return cls(key)
        return cls(key, int(item.get("failures", 0)), int(item["window_start"]),
                   int(item.get("last_failure_at", 0)))


class ThrottleRepo:
    def __init__(self, table: Table) -> None:
        self.table = table

    def key(self, name: str) -> dict[str, str]:
        return {"pk": name}

    def record_failure(self, counter: Counter, now: int, window: int) -> Counter:
        """Count one failure; a window that has lapsed starts again at 1.

        The update is atomic (ADD), so concurrent failures are all counted.
        """
        if counter.failures == 0:
            # A new window: overwrite whatever stale count is there.
            item = self.table.update(
                self.key(counter.key),
                "SET failures = :one, window_start = :now, last_failure_at = :now, #ttl = :ttl",
                names={"#ttl": "ttl"},
                values={":one": 1, ":now": now, ":ttl": now + window})
        else:
            item = self.table.update(
                self.key(counter.key),
                "SET last_failure_at = :now, #ttl = :ttl ADD failures :one",
                names={"#ttl": "ttl"},
                values={":one": 1, ":now": now, ":ttl": now + window})
        assert item is not None
        return Counter.from_item(counter.key, item, now, window)

    def op_clear(self, name: str) -> dict[str, Any]:
        return self.table.op_delete(self.key(name))
