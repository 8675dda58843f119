"""A per-instance memory of answers that change rarely (clients, resource servers,
registered web origins): each answer is kept ``ttl`` seconds by the injected clock,
and the memory holds at most ``MAX_ENTRIES``, emptied when full, so a stream of
distinct keys cannot grow it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from chalicelib.clock import Clock

T = TypeVar("T")
MAX_ENTRIES = 1000


class Memo(Generic[T]):
    def __init__(self, clock: Clock, ttl: int = 60) -> None:
        self.clock = clock
        self.ttl = ttl
        self._answers: dict[str, tuple[T, int]] = {}
        self._lock = threading.Lock()

    def recall(self, key: str) -> tuple[bool, T | None]:
        """(True, the answer) while one younger than ``ttl`` is kept, else (False, None)."""
        hit = self._answers.get(key)
        if hit is not None and self.clock.now() < hit[1] + self.ttl:
            return True, hit[0]
        return False, None

    def keep(self, key: str, answer: T) -> T:
        with self._lock:
            if len(self._answers) >= MAX_ENTRIES:
                self._answers.clear()
            self._answers[key] = (answer, self.clock.now())
        return answer

    def answer(self, key: str, look_up: Callable[[str], T]) -> T:
        """The kept answer for ``key``, else ``look_up(key)``, kept."""
        known, answer = self.recall(key)
        if known:
            return answer  # type: ignore[return-value]
        return self.keep(key, look_up(key))
