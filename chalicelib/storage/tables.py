"""The stage's tables by logical name, and the calls that span several of them.

Services never see table names or the DynamoDB client: they get repositories
and, where one round trip must cover several tables (SPEC §9), the two callables
below, ``BatchGet`` and ``Transact``, bound to a ``Tables``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.storage.dynamo import Item, Table, batch_get, transact

Key = dict[str, Any]
# {logical table: [keys]} -> {logical table: [items]}, in one BatchGetItem round trip.
BatchGet = Callable[[dict[str, list[Key]]], dict[str, list[Item]]]
# All-or-nothing writes (TransactWriteItems), one round trip.
Transact = Callable[[list[dict[str, Any]]], None]


class Tables:
    def __init__(self, physical: Callable[[str], str], client: Callable[[], Any]) -> None:
        self.physical = physical    # logical name ("users") -> table name of the stage
        self.client = client        # the DynamoDB client, built lazily and cached

    def table(self, kind: str) -> Table:
        return Table(self.physical(kind), self.client)

    def transact(self, operations: list[dict[str, Any]]) -> None:
        transact(self.client(), operations)

    def batch_get(self, requests: dict[str, list[Key]]) -> dict[str, list[Item]]:
        """Items of several tables (by logical name) in one BatchGetItem round trip."""
        physical = {self.physical(kind): keys for kind, keys in requests.items() if keys}
        found = batch_get(self.client(), physical) if physical else {}
        return {kind: found.get(self.physical(kind), []) for kind in requests}
