"""The security log (SPEC §11; GitHub's "security log"): what happened to an account,
readable by its owner.

Every audit event that concerns a user is also an item of the ``events`` table
under that user. Where the change has a transaction, the entry is one more
operation of it (``op``), so a change never commits without its entry and costs
no extra round trip; otherwise it is one PutItem (``record``). Never a secret:
``detail`` holds ids, names and reasons only.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import BadRequest
from chalicelib.storage.events import Event, EventsRepo, new_event_id, possible_event_id

KINDS = ("signin", "signin_failed", "lockout", "session_ended", "password_changed",
         "password_reset", "mfa_added", "mfa_removed", "recovery_code_used", "pat_created",
         "pat_revoked", "pat_used_new_ip", "role_key_created", "role_key_revoked",
         "trust_policy_changed", "consent_given", "consent_withdrawn", "email_changed")
MAX_LIMIT = 100
DEFAULT_LIMIT = 50
# Orders the events of one instance within a second (ids carry milliseconds; the
# clock gives seconds): the n-th event of a second is its n-th millisecond.
_sequence = itertools.count()


@dataclass(frozen=True)
class Where:
    """Where a request came from, for the log: its source address and user agent."""

    ip: str = ""
    user_agent: str = ""


NOWHERE = Where()


class SecurityLog:
    def __init__(self, repo: EventsRepo, clock: Clock, settings: Settings) -> None:
        self.repo = repo
        self.clock = clock
        self.settings = settings

    def _event(self, user_id: str, kind: str, where: Where,
               detail: Mapping[str, Any] | None) -> tuple[Event, int]:
        assert kind in KINDS, kind
        now = self.clock.now()
        now_ms = now * 1000 + next(_sequence) % 1000
        event = Event(user_id=user_id, id=new_event_id(now_ms), kind=kind, time=now,
                      ip=where.ip, user_agent=where.user_agent, detail=dict(detail or {}))
        return event, now + self.settings.events_ttl_days * 86400

    def op(self, user_id: str, kind: str, where: Where = NOWHERE,
           detail: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The entry as one operation of the change's own transaction."""
        return self.repo.op_put(*self._event(user_id, kind, where, detail))

    def record(self, user_id: str, kind: str, where: Where = NOWHERE,
               detail: Mapping[str, Any] | None = None) -> None:
        """The entry of something that has no transaction of ours: one PutItem."""
        self.repo.put(*self._event(user_id, kind, where, detail))

    def page(self, user_id: str, *, kind: str | None = None, cursor: str | None = None,
             limit: int = DEFAULT_LIMIT) -> tuple[list[Event], str | None]:
        """The user's events, newest first; ``cursor`` is a previous page's ``next_cursor``."""
        if kind is not None and kind not in KINDS:
            raise BadRequest(f"kind must be one of: {', '.join(KINDS)}")
        if cursor is not None and not possible_event_id(cursor):
            raise BadRequest("cursor is not one this service gave")
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
        return self.repo.page(user_id, now=self.clock.now(), kind=kind, after=cursor, limit=limit)

    def listing(self, user_id: str, *, kind: str | None = None, cursor: str | None = None,
                limit: str | None = None) -> dict[str, Any]:
        """``GET /v1/events`` (SPEC §11): a page of the user's log as the query gave
        it (``limit`` as text: anything but 1 to MAX_LIMIT digits is a 400)."""
        count = DEFAULT_LIMIT
        if limit is not None:
            if not (limit.isascii() and limit.isdigit() and len(limit) <= 3):
                raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
            count = int(limit)
        events, next_cursor = self.page(user_id, kind=kind, cursor=cursor, limit=count)
        return {"events": [e.view() for e in events], "next_cursor": next_cursor}
