"""The device flow's polling schedule (RFC 8628 §3.5), as pure logic over a clock.

* The first poll waits one interval; each next poll waits the interval counted
  from the previous *answer*, plus a pad (a second, or a tenth of the interval
  if larger), so clock drift and network jitter never make two polls reach the
  server closer than its interval (which would earn ``slow_down``).
* ``slow_down``: the interval grows by 5 s for this and every later poll (§3.5),
  or to the server's ``interval`` if it names a larger one.
* A connection failure backs off exponentially (§3.5), up to a minute.
* No poll is sent after the device code's lifetime (``expires_in``), counted on
  the local monotonic clock from when the code was issued.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SLOW_DOWN_STEP = 5
MIN_PAD = 1.0
PAD_FRACTION = 0.1
MAX_BACKOFF = 60.0


class LoginEnded(Exception):
    """Polling stopped for good: ``reason`` is ``expired`` or ``denied``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class PollFailed(Exception):
    """The token endpoint answered an error the device flow does not expect."""


class Transient(Exception):
    """The poll did not reach the server (connection refused, timeout): try again later."""


@dataclass
class PollSchedule:
    interval: float
    deadline: float
    backoff: float = 0.0

    @classmethod
    def start(cls, interval: int, expires_in: int, now: float) -> PollSchedule:
        return cls(interval=float(max(interval, 1)), deadline=now + expires_in)

    def delay(self) -> float:
        """Seconds to wait after the last answer before the next poll."""
        wait = self.interval + max(MIN_PAD, self.interval * PAD_FRACTION)
        return max(wait, self.backoff)

    def slow_down(self, server_interval: object = None) -> None:
        stepped = self.interval + SLOW_DOWN_STEP
        if isinstance(server_interval, int) and not isinstance(server_interval, bool):
            stepped = max(stepped, float(server_interval))
        self.interval = stepped

    def unreachable(self) -> None:
        self.backoff = min(MAX_BACKOFF, max(self.backoff * 2, self.delay() * 2))

    def reached(self) -> None:
        self.backoff = 0.0

    def next_poll_at(self, now: float) -> float | None:
        """When to poll next, or ``None`` when that would be past the code's lifetime."""
        at = now + self.delay()
        return None if at >= self.deadline else at


# A poll answers (status, body): 200 with tokens, or 400 with an RFC 6749 §5.2 error.
Poll = Callable[[], tuple[int, Any]]


def poll_until_done(poll: Poll, schedule: PollSchedule, clock: Callable[[], float],
                    sleep: Callable[[float], None]) -> dict[str, Any]:
    """Poll until the person approves; answers the token response (RFC 8628 §3.4, §3.5)."""
    while True:
        now = clock()
        at = schedule.next_poll_at(now)
        if at is None:
            raise LoginEnded("expired", "the code expired before it was approved; "
                                        "run `tessera login` again")
        sleep(at - now)
        try:
            status, body = poll()
        except Transient:
            schedule.unreachable()
            continue
        schedule.reached()
        if status == 200 and isinstance(body, dict):
            return body
        error = body.get("error") if isinstance(body, dict) else None
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            schedule.slow_down(body.get("interval"))
            continue
        if error == "access_denied":
            raise LoginEnded("denied", "the login was denied in the browser")
        if error == "expired_token":
            raise LoginEnded("expired", "the code expired before it was approved; "
                                        "run `tessera login` again")
        described = body.get("error_description") if isinstance(body, dict) else None
        raise PollFailed(f"login failed: {described or error or f'HTTP {status}'}")
