"""The devices table: device authorization requests (RFC 8628).

Two kinds of item share the table:

* ``dc#<digest of device_code>``: the state of one request: which client asked
  for which scopes from where, ``status`` (pending, approved, denied, consumed),
  the poll pacing (``interval``, ``poll_gap`` = 80 % of it, ``next_poll_at``),
  and once decided the user, the granted scope and ``auth_time``, when the
  approver signed in to the browser (OIDC Core §2; the session inherits it);
* ``uc#<user code>``: reserves the user code among live requests and points at
  its ``dc#`` item, so the verification page finds a request by its code.

Both carry ``expires_at``; TTL is lazy, so every read checks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib.errors import ConditionFailed
from chalicelib.storage.dynamo import Item, Table, transact

PENDING, APPROVED, DENIED, CONSUMED = "pending", "approved", "denied", "consumed"


@dataclass(frozen=True)
class DeviceRequest:
    digest: str
    client_id: str
    user_code: str
    scope: str
    created_at: int
    expires_at: int
    interval: int
    status: str = PENDING
    device: dict[str, str] = field(default_factory=dict)
    user_id: str = ""
    granted_scope: str = ""
    auth_time: int = 0       # when the approver authenticated (0: undecided)
    amr: tuple[str, ...] = ("pwd",)   # and how (RFC 8176)

    def live(self, now: int) -> bool:
        return now < self.expires_at


def device_from_item(item: Item) -> DeviceRequest:
    return DeviceRequest(
        digest=str(item["pk"])[3:], client_id=item["client_id"], user_code=item["user_code"],
        scope=item.get("scope", ""), created_at=int(item["created_at"]),
        expires_at=int(item["expires_at"]), interval=int(item["interval"]),
        status=item.get("status", PENDING), device=dict(item.get("device") or {}),
        user_id=item.get("user_id", ""), granted_scope=item.get("granted_scope", ""),
        auth_time=int(item.get("auth_time") or 0),
        amr=tuple(item.get("amr") or ("pwd",)),
    )


class DevicesRepo:
    def __init__(self, table: Table) -> None:
        self.table = table

    @staticmethod
    def device_key(digest: str) -> dict[str, str]:
        return {"pk": "dc#" + digest}

    @staticmethod
    def code_key(user_code: str) -> dict[str, str]:
        return {"pk": "uc#" + user_code}

    def insert(self, request: DeviceRequest, poll_gap: int) -> None:
        """Store a new request and reserve its user code, all or nothing.

        The conditions guarantee that a device code is never overwritten and that
        a user code names at most one live request (a reservation whose expiry
        has passed but which TTL has not removed yet may be taken over). A taken
        code raises ConditionFailed; the caller draws another.
        """
        now = request.created_at
        state: dict[str, Any] = {
            **self.device_key(request.digest), "client_id": request.client_id,
            "user_code": request.user_code, "scope": request.scope, "status": PENDING,
            "created_at": now, "expires_at": request.expires_at, "interval": request.interval,
            "poll_gap": poll_gap, "next_poll_at": now, "device": request.device or None,
            "ttl": request.expires_at,
        }
        reservation = {**self.code_key(request.user_code), "device_pk": state["pk"],
                       "expires_at": request.expires_at, "ttl": request.expires_at}
        transact(self.table.client, [
            self.table.op_put(state, "attribute_not_exists(pk)"),
            self.table.op_put(reservation, "attribute_not_exists(pk) OR expires_at <= :now",
                              values={":now": now}),
        ])

    def get(self, digest: str) -> DeviceRequest | None:
        item = self.table.get(self.device_key(digest))
        return device_from_item(item) if item else None

    @staticmethod
    def digest_of_reservation(item: Item | None, now: int) -> str | None:
        """The device-code digest a live ``uc#`` item points at."""
        if not item or int(item.get("expires_at", 0)) <= now:
            return None
        return str(item["device_pk"])[3:]

    def record_poll(self, digest: str, client_id: str, now: int) -> None:
        """Count one on-time poll of a pending request (RFC 8628 §3.5).

        The condition guarantees that the request exists, belongs to this client,
        is still pending and unexpired, and that the previous poll was at least
        ``poll_gap`` ago; of two concurrent polls only one passes. Anything else
        raises ConditionFailed with the item as it was, which tells the caller
        why (too fast, decided, expired, another client's, unknown).
        """
        self.table.update(
            self.device_key(digest), "SET next_poll_at = poll_gap + :now, last_poll = :now",
            condition="attribute_exists(pk) AND client_id = :client AND #status = :pending "
                      "AND expires_at > :now AND next_poll_at <= :now",
            names={"#status": "status"},
            values={":client": client_id, ":pending": PENDING, ":now": now}, returns="NONE")

    def slow_down(self, digest: str, seen_interval: int, seen_gap: int, now: int,
                  step: int, gap_step: int) -> int:
        """Grow the polling interval once; returns the interval now in force.

        The condition (interval unchanged since it was read) guarantees that
        concurrent too-fast polls grow it by one step, not one step each.
        """
        try:
            self.table.update(
                self.device_key(digest),
                "SET #interval = :interval, poll_gap = :gap, next_poll_at = :next, last_poll = :now",
                condition="attribute_exists(pk) AND #interval = :seen",
                names={"#interval": "interval"},
                values={":interval": seen_interval + step, ":gap": seen_gap + gap_step,
                        ":next": now + seen_gap + gap_step, ":now": now, ":seen": seen_interval},
                returns="NONE")
        except ConditionFailed as lost:
            current = (lost.item or {}).get("interval")
            return int(current) if isinstance(current, int) else seen_interval + step
        return seen_interval + step

    def decide(self, digest: str, now: int, status: str, user_id: str,
               granted_scope: str, auth_time: int,
               amr: tuple[str, ...] = ("pwd",)) -> DeviceRequest:
        """Approve or deny a pending request: one conditional write.

        The condition guarantees that a request is decided once, and never after
        it expired; raises ConditionFailed otherwise.
        """
        item = self.table.update(
            self.device_key(digest),
            "SET #status = :status, user_id = :user, granted_scope = :scope, decided_at = :now, "
            "auth_time = :auth_time, amr = :amr",
            condition="attribute_exists(pk) AND #status = :pending AND expires_at > :now",
            names={"#status": "status"},
            values={":status": status, ":user": user_id, ":scope": granted_scope,
                    ":pending": PENDING, ":now": now, ":auth_time": auth_time,
                    ":amr": list(amr)})
        assert item is not None
        return device_from_item(item)

    def op_consume(self, digest: str, client_id: str, now: int, session_id: str) -> dict[str, Any]:
        """The write that spends an approved device code, for a caller's transaction.

        The condition guarantees single use: only an approved, unexpired request of
        this client moves to consumed, so of concurrent polls exactly one gets a
        token response.
        """
        return self.table.op_update(
            self.device_key(digest), "SET #status = :consumed, session_id = :sid, consumed_at = :now",
            condition="attribute_exists(pk) AND #status = :approved AND client_id = :client "
                      "AND expires_at > :now",
            names={"#status": "status"},
            values={":consumed": CONSUMED, ":sid": session_id, ":now": now,
                    ":approved": APPROVED, ":client": client_id})

    @staticmethod
    def consumed_by(item: Item | None, session_id: str) -> bool:
        """Whether a device code as it was (``ALL_OLD`` of a lost consume) was spent by
        this very session: then the "lost" write is our own earlier one, committed
        before its answer was lost and the request retried, not another poll's."""
        return item is not None and item.get("status") == CONSUMED \
            and item.get("session_id") == session_id
