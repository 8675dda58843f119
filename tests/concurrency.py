"""Concurrency tests against moto."""

from __future__ import annotations

import threading
from typing import Any


class AtomicRequests:
    """A DynamoDB client whose every request is atomic, as DynamoDB's are.

    moto applies a request (a conditional UpdateItem or a TransactWriteItems)
    without any lock, so two threads can both pass the same condition; real
    DynamoDB never lets them. Serialising whole requests keeps the race between
    requests, which is what the tests are about, and takes away moto's race
    inside one.
    """

    _lock = threading.Lock()

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not callable(method):
            return method

        def atomic(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)

        return atomic


def atomic_container(ctr: Any) -> Any:
    """A container like ``ctr`` whose DynamoDB requests are each atomic."""
    from chalicelib.container import Container
    from chalicelib.storage.dynamo import aws_client

    return Container(ctr.settings, ctr.clock, client_factory=lambda s: AtomicRequests(aws_client(s)))


def run_together(n: int, work: Any) -> list[tuple[str, Any]]:
    """Start ``n`` threads at one barrier; each result is ("ok", value) or ("error", exc)."""
    results: list[tuple[str, Any]] = []
    barrier = threading.Barrier(n)

    def worker() -> None:
        barrier.wait()
        try:
            results.append(("ok", work()))
        except Exception as exc:  # the losers' errors are what the tests assert on
            results.append(("error", exc))

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
