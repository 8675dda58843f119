"""The events table: the security log of each user (SPEC §11).

One item per event, under its user::

    user_id, id, kind, time, ip, user_agent, detail, ttl

``id`` is 8 base62 characters of the event's time in milliseconds, then 8
random ones: ids sort by time, so a user's log newest first is one Query
backwards, and the last id of a page is the cursor of the next. ``ttl`` ends
an event after the stage's retention (*default* 90 days); TTL is lazy, so a
read drops what is past it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.security.opaque import b62encode, is_base62, random_b62
from chalicelib.storage.dynamo import Item, Table

EVENT_ID_LEN = 16
MAX_USER_AGENT = 256
# Query pages read for one listing page when a kind filter drops most events.
MAX_PAGES_PER_LISTING = 5


def new_event_id(now_ms: int) -> str:
    return b62encode(now_ms, 8) + random_b62(8)


def possible_event_id(text: str) -> bool:
    return len(text) == EVENT_ID_LEN and is_base62(text)


@dataclass(frozen=True)
class Event:
    user_id: str
    id: str
    kind: str
    time: int
    ip: str = ""
    user_agent: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)

    def view(self) -> dict[str, Any]:
        """The wire form (SPEC §11 ``GET /v1/events``)."""
        return {"id": self.id, "kind": self.kind, "time": self.time, "ip": self.ip,
                "user_agent": self.user_agent, "detail": dict(self.detail)}


def event_from_item(item: Item) -> Event:
    return Event(user_id=item["user_id"], id=item["id"], kind=item.get("kind", ""),
                 time=int(item.get("time") or 0), ip=item.get("ip") or "",
                 user_agent=item.get("user_agent") or "", detail=dict(item.get("detail") or {}))


def event_to_item(event: Event, ttl: int) -> Item:
    return {"user_id": event.user_id, "id": event.id, "kind": event.kind, "time": event.time,
            "ip": event.ip, "user_agent": event.user_agent[:MAX_USER_AGENT],
            "detail": dict(event.detail) or None, "ttl": ttl}


class EventsRepo:
    def __init__(self, table: Table) -> None:
        self.table = table

    def op_put(self, event: Event, ttl: int) -> dict[str, Any]:
        """An event for the transaction of the change it records, so a change never
        commits without its entry. attribute_not_exists: a fresh random id never
        overwrites another event."""
        return self.table.op_put(event_to_item(event, ttl), "attribute_not_exists(id)")

    def put(self, event: Event, ttl: int) -> None:
        """An event that records no transaction of ours (a failed sign-in, a use)."""
        self.table.put(event_to_item(event, ttl), condition="attribute_not_exists(id)")

    def page(self, user_id: str, *, now: int, kind: str | None = None, after: str | None = None,
             limit: int = 50) -> tuple[list[Event], str | None]:
        """Up to ``limit`` events of ``user_id``, newest first, older than the event
        ``after`` (a cursor); and the cursor of the next page, or None at the end.

        With ``kind`` the filter runs in DynamoDB after the read; a page then
        reads at most ``MAX_PAGES_PER_LISTING`` Query pages and may come back short
        with a cursor to go on from.
        """
        found: list[Event] = []
        start: Item | None = {"user_id": user_id, "id": after} if after else None
        for _ in range(MAX_PAGES_PER_LISTING):
            items, start = self.table.query(
                "user_id = :u", values={":u": user_id, **({":k": kind} if kind else {})},
                names={"#kind": "kind"} if kind else None,
                filter_expression="#kind = :k" if kind else None,
                limit=limit - len(found) if not kind else max(limit, 100),
                forward=False, start_key=start, consistent=True)
            for item in items:
                if int(item.get("ttl") or 0) > now and len(found) < limit:
                    found.append(event_from_item(item))
            if len(found) >= limit:
                return found, found[-1].id
            if not start:
                return found, None
        return found, str(start["id"]) if start else None
