"""The time left to answer the current request.

Lambda ends a function at its timeout without any response. The request
middleware binds the invocation's remaining time here, and storage consults it
before every DynamoDB attempt and every backoff, so a request that cannot
finish answers 503 with Retry-After (SPEC §8) instead of being killed. Outside a
bound block (jobs, the admin command, most tests) there is no deadline.

A context variable, not a global: each request (and each thread) sees its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

RemainingMs = Callable[[], float]

_remaining: ContextVar[RemainingMs | None] = ContextVar("tessera_remaining_ms", default=None)


def remaining_ms() -> float | None:
    """Milliseconds left in the innermost bound block, or None when unbounded."""
    source = _remaining.get()
    return None if source is None else float(source())


@contextmanager
def bound(source: RemainingMs) -> Iterator[None]:
    """Within the block the time left is ``source()``, or less if an outer block has less."""
    outer = _remaining.get()

    def tighter() -> float:
        return source() if outer is None else min(source(), outer())

    token = _remaining.set(tighter)
    try:
        yield
    finally:
        _remaining.reset(token)
