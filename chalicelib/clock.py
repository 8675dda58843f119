"""Time is data: one injectable clock, epoch seconds everywhere (STYLE habit 5)."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> int:
        """Current time in whole epoch seconds."""


class SystemClock:
    def now(self) -> int:
        return int(time.time())


class FakeClock:
    """A clock tests move by hand; nothing ever sleeps."""

    def __init__(self, start: int = 1_800_000_000) -> None:
        self.t = start

    def now(self) -> int:
        return self.t

    def advance(self, seconds: int) -> None:
        self.t += seconds
