"""Faults injected inside botocore's request pipeline, through its event hooks.

Nothing here patches our modules: each injector registers a handler on the
botocore client's own events, so the fault happens where a real one would, and
botocore's standard-mode retry loop (and everything above it) reacts as it
would in production. Use them as context managers; they unregister on exit.

* ``LostResponse``: the request reaches moto (the write is applied), then the
  answer is lost as a ``ReadTimeoutError``; botocore resends the same request.
* ``TimingOut``: every attempt times out after spending time on a ``FakeBudget``.
* ``ErrorAnswers``: the service answers an error (a conflict) instead of
  applying the request; ``ThreadConflicts``: each thread's first transactions
  are cancelled by a conflict (moto never cancels one so).
* ``UnprocessedKeys``: BatchGetItem answers with every key unprocessed.
* ``BeforeCall``: run something (another request) right before a matching call,
  to force one interleaving of two requests deterministically.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

SERVICE = "dynamodb"


class _Raw:
    """The raw body botocore reads an ``AWSResponse`` from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def answer(request: Any, status: int, payload: dict[str, Any]) -> AWSResponse:
    data = json.dumps(payload).encode()
    return AWSResponse(request.url, status, {"Content-Type": "application/x-amz-json-1.0",
                                             "Content-Length": str(len(data))}, _Raw(data))


class _Injector:
    """Registers ``self.handle`` first among the operation's handlers while active."""

    event_prefix = "before-send"

    def __init__(self, client: Any, operation: str | None) -> None:
        self.client = client
        # No operation: every operation of the service.
        self.event = f"{self.event_prefix}.{SERVICE}" + (f".{operation}" if operation else "")
        self.seen = 0          # requests of the operation that reached the injector

    def __enter__(self) -> _Injector:
        self.client.meta.events.register_first(self.event, self._handler)
        return self

    def __exit__(self, *_: object) -> None:
        self.client.meta.events.unregister(self.event, self._handler)

    def _handler(self, **kwargs: Any) -> Any:
        self.seen += 1
        return self.handle(**kwargs)

    def handle(self, **kwargs: Any) -> Any:
        raise NotImplementedError


class FakeBudget:
    """A fake remaining-time source (as ``context.get_remaining_time_in_millis``)."""

    def __init__(self, remaining_ms: float) -> None:
        self.left = remaining_ms

    def __call__(self) -> float:
        return self.left

    def spend(self, ms: float) -> None:
        self.left -= ms


class LostResponse(_Injector):
    """The first ``times`` matching requests are applied by moto, then their answer is
    lost: botocore sees a read timeout and, in standard mode, sends the same request
    again (same body, so the same ClientRequestToken)."""

    def __init__(self, client: Any, operation: str, times: int = 1,
                 when: Callable[[dict[str, Any]], bool] = lambda _: True) -> None:
        super().__init__(client, operation)
        self.times, self.when, self.lost = times, when, 0
        self.bodies: list[dict[str, Any]] = []

    def handle(self, request: Any, event_name: str, **_: Any) -> Any:
        body = json.loads(request.body or b"{}")
        self.bodies.append(body)
        if self.lost >= self.times or not self.when(body):
            return None
        self.lost += 1
        from moto.core.models import botocore_stubber

        botocore_stubber(event_name, request)        # the service applies the write ...
        raise ReadTimeoutError(endpoint_url=request.url)   # ... and the answer never arrives


class TimingOut(_Injector):
    """Every matching attempt waits ``cost_ms`` (spent on ``budget``) and times out."""

    def __init__(self, client: Any, operation: str | None, budget: FakeBudget,
                 cost_ms: float) -> None:
        super().__init__(client, operation)
        self.budget, self.cost_ms = budget, cost_ms

    def handle(self, request: Any, **_: Any) -> Any:
        self.budget.spend(self.cost_ms)
        raise ReadTimeoutError(endpoint_url=request.url)


class ErrorAnswers(_Injector):
    """The first ``times`` requests get a DynamoDB error answer and change nothing.

    The error is raised (as botocore raises a parsed error answer, modeled class and
    fields included) rather than returned: a returned answer would not stop moto's
    own before-send handler from applying the request.
    """

    def __init__(self, client: Any, operation: str, code: str, times: int = 1,
                 status: int = 400, **fields: Any) -> None:
        super().__init__(client, operation)
        self.operation, self.code, self.times = operation, code, times
        self.response = {"Error": {"Code": code, "Message": f"injected {code}"},
                         "ResponseMetadata": {"HTTPStatusCode": status}, **fields}

    def handle(self, **_: Any) -> Any:
        if self.seen > self.times:
            return None
        raise self.client.exceptions.from_code(self.code)(self.response, self.operation)


def transaction_conflict(client: Any, n_operations: int, times: int = 1) -> ErrorAnswers:
    """TransactWriteItems cancelled because another transaction held an item."""
    reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}]
    reasons += [{"Code": "None"}] * (n_operations - 1)
    return ErrorAnswers(client, "TransactWriteItems", "TransactionCanceledException", times,
                        CancellationReasons=reasons)


class UnprocessedKeys(_Injector):
    """The first ``times`` BatchGetItem requests return every key unprocessed (moto
    still reads them, which changes nothing)."""

    def __init__(self, client: Any, times: int) -> None:
        super().__init__(client, "BatchGetItem")
        self.times = times

    def handle(self, request: Any, **_: Any) -> Any:
        if self.seen > self.times:
            return None
        asked = json.loads(request.body)["RequestItems"]
        return answer(request, 200, {"Responses": {t: [] for t in asked}, "UnprocessedKeys": asked})


class BeforeCall(_Injector):
    """Run ``action`` once, in the calling thread, just before the first call whose
    parameters satisfy ``when`` is built: one interleaving, forced."""

    event_prefix = "before-parameter-build"

    def __init__(self, client: Any, operation: str, when: Callable[[dict[str, Any]], bool],
                 action: Callable[[], Any]) -> None:
        super().__init__(client, operation)
        self.when, self.action, self.fired = when, action, False

    def handle(self, params: dict[str, Any], **_: Any) -> Any:
        if not self.fired and self.when(params):
            self.fired = True        # before acting: the action's own calls pass through
            self.action()
        return None


class CountingKeyStore:
    """The stage's key store, counting how often the key set is fetched (each a
    Secrets Manager call)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.loads = 0

    def load_versioned(self) -> Any:
        self.loads += 1
        return self.inner.load_versioned()

    def create(self, keyset: Any) -> None:
        self.inner.create(keyset)

    def replace(self, keyset: Any, based_on: str) -> str:
        return str(self.inner.replace(keyset, based_on))


class ThreadConflicts(ErrorAnswers):
    """Each thread's first ``times`` TransactWriteItems are cancelled by a conflict with
    another transaction (and change nothing), as DynamoDB cancels the losers of
    concurrent transactions on one item; moto itself never does (it applies a
    transaction in one step). Per thread, so that every thread meets the same number
    of conflicts whatever the scheduling, and the outcome is deterministic."""

    def __init__(self, client: Any, n_operations: int, times: int) -> None:
        reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}]
        reasons += [{"Code": "None"}] * (n_operations - 1)
        super().__init__(client, "TransactWriteItems", "TransactionCanceledException", times,
                         CancellationReasons=reasons)
        self._mine = threading.local()

    def handle(self, **_: Any) -> Any:
        self._mine.seen = getattr(self._mine, "seen", 0) + 1
        if self._mine.seen > self.times:
            return None
        raise self.client.exceptions.from_code(self.code)(self.response, self.operation)
