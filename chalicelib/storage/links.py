"""Single-use links mailed to people (SPEC §11): invitations (``tsi_``, 7 days),
password resets (``tsw_``, 30 minutes) and email changes (``tse_``, 24 hours).

One item per link in the devices table, beside the device and authorization
codes (short-lived single-use grants keyed by a secret's digest)::

    pk = "ln#<digest of the link's token>", kind, user_id, email, data,
    created_at, expires_at, ttl

Only the digest is stored. Redeeming is one conditional delete in the
transaction of what the link does, so a link works once, however many follow it
at the same time, and never after it expired.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.storage.dynamo import Item, Table

INVITATION, PASSWORD_RESET, EMAIL_CHANGE = "invitation", "password_reset", "email_change"


@dataclass(frozen=True)
class Link:
    digest: str
    kind: str
    id: str
    created_at: int
    expires_at: int
    user_id: str = ""
    email: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)

    def live(self, now: int) -> bool:
        return now < self.expires_at


def link_from_item(item: Item) -> Link:
    return Link(digest=str(item["pk"])[3:], kind=str(item.get("kind") or ""),
                id=str(item.get("id") or ""), created_at=int(item.get("created_at") or 0),
                expires_at=int(item.get("expires_at") or 0), user_id=str(item.get("user_id") or ""),
                email=str(item.get("email") or ""), data=dict(item.get("data") or {}))


class LinksRepo:
    def __init__(self, table: Table) -> None:
        self.table = table

    @staticmethod
    def key(digest: str) -> dict[str, str]:
        return {"pk": "ln#" + digest}

    def put(self, link: Link) -> None:
        # attribute_not_exists: a fresh random token's digest never overwrites a link.
        self.table.put({**self.key(link.digest), "kind": link.kind, "id": link.id,
                        "created_at": link.created_at, "expires_at": link.expires_at,
                        "user_id": link.user_id or None, "email": link.email or None,
                        "data": dict(link.data) or None, "ttl": link.expires_at},
                       condition="attribute_not_exists(pk)")

    def get(self, digest: str) -> Link | None:
        item = self.table.get(self.key(digest))
        return link_from_item(item) if item else None

    def op_redeem(self, link: Link, now: int) -> dict[str, Any]:
        """Spend the link in the transaction of what it does. The condition: it still
        exists (not used), is of this kind and has not expired."""
        return self.table.op_delete(
            self.key(link.digest),
            "attribute_exists(pk) AND kind = :k AND expires_at > :now",
            values={":k": link.kind, ":now": now})
