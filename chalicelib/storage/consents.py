"""The consents table: what a person allowed each app (SPEC §2 ``/v1/consents``, §7).

One item per (user, client): ``scopes`` (a string set, grown by each approval),
``created_at``, ``updated_at``. Listing a user's consents is one strongly
consistent Query of the base table; consents do not expire (no ``ttl``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from chalicelib.storage.dynamo import Item, Table


@dataclass(frozen=True)
class Consent:
    user_id: str
    client_id: str
    scopes: tuple[str, ...]
    created_at: int
    updated_at: int

    def covers(self, scopes: Iterable[str]) -> bool:
        return set(scopes) <= set(self.scopes)


def consent_from_item(item: Item) -> Consent:
    return Consent(user_id=item["user_id"], client_id=item["client_id"],
                   scopes=tuple(sorted(item.get("scopes") or ())),
                   created_at=int(item.get("created_at") or 0),
                   updated_at=int(item.get("updated_at") or 0))


class ConsentsRepo:
    def __init__(self, table: Table) -> None:
        self.table = table

    @staticmethod
    def key(user_id: str, client_id: str) -> dict[str, str]:
        return {"user_id": user_id, "client_id": client_id}

    def get(self, user_id: str, client_id: str) -> Consent | None:
        item = self.table.get(self.key(user_id, client_id))
        return consent_from_item(item) if item else None

    def grant(self, user_id: str, client_id: str, scopes: Iterable[str], now: int) -> Consent:
        """Record an approval: the scopes join those already granted.

        One UpdateItem, no read and no condition needed: ``ADD`` to a string set
        is idempotent and never drops what a concurrent approval added, and
        ``if_not_exists`` keeps the first ``created_at``.
        """
        granted = set(scopes)
        expression = "SET updated_at = :now, created_at = if_not_exists(created_at, :now)"
        values: dict[str, Any] = {":now": now}
        if granted:
            expression += " ADD scopes :s"
            values[":s"] = granted
        item = self.table.update(self.key(user_id, client_id), expression, values=values)
        assert item is not None
        return consent_from_item(item)

    def for_user(self, user_id: str) -> list[Consent]:
        return [consent_from_item(i) for i in self.table.query_all(
            "user_id = :u", values={":u": user_id}, consistent=True)]

    def delete(self, user_id: str, client_id: str) -> Consent | None:
        """Withdraw a consent; returns what it was (None if there was none)."""
        old = self.table.delete(self.key(user_id, client_id))
        return consent_from_item(old) if old else None

    def op_check_covers(self, user_id: str, client_id: str,
                        scopes: Iterable[str]) -> dict[str, Any]:
        """A check for a caller's transaction: the person's consent to this app still
        exists and covers ``scopes``, so a code redeemed after the consent was
        withdrawn opens no session."""
        values = {f":s{i}": s for i, s in enumerate(sorted(set(scopes)))}
        condition = "attribute_exists(user_id)" + "".join(
            f" AND contains(scopes, {k})" for k in values)
        return self.table.op_check(self.key(user_id, client_id), condition,
                                   values=values or None)
