"""The bare botocore call(s) a request makes, replayed on a default client (issue 16 goal 2).

A warm request's CPU is compared with what the DynamoDB calls it makes cost by
themselves: the same operations with the same parameters against the same stored
state, through a client made with ``boto3.client("dynamodb")`` and nothing else
(default configuration, no hooks, the same endpoint). How:

1. ``CallRecorder`` hooks ``before-parameter-build`` on the service's client and,
   while it is active (around the handler call only, not the case's setup), keeps
   each call's operation and a deep copy of its parameters; for a write
   (``PutItem``, ``UpdateItem``, ``DeleteItem``, ``TransactWriteItems``) it also
   reads, through an unhooked shadow client, the item(s) the write touches as they
   were before it (the pre-images); ``after-call`` gives the call's outcome
   (success, or the error code: a failed condition is an outcome too).
2. ``replay`` makes each recorded call again on the bare client and times only
   that call with ``time.process_time()``. Before a request's calls, and again
   before each of its writes, the pre-images are written back (unmeasured), so a
   read sees what the request's read saw and a conditional write meets the state
   the request met; its outcome must be the original's (else ``ReplayMismatch``).
   A write replayed on its own pre-image writes what the request wrote, so the
   table ends as the requests left it.

Per request the bare figure is the sum of its calls. Operations outside those
above (``BatchWriteItem``) are not replayed (``NotReplayable``).
"""

from __future__ import annotations

import copy
import gc
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.dynamo_meter import TableInfo, write_targets

WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems")
READS = ("GetItem", "BatchGetItem", "Query", "Scan")
SUCCESS = "success"


class ReplayMismatch(AssertionError):
    """A replayed call did not end as the recorded one did."""


class NotReplayable(ValueError):
    """A request made a call that the replay cannot put back in its state."""


@dataclass
class Call:
    operation: str                                # e.g. UpdateItem
    params: dict[str, Any]
    # (table, key, item before the call or None) of every item a write touches
    pre_images: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = field(default_factory=list)
    outcome: str = SUCCESS                        # or the error code

    @property
    def writes(self) -> bool:
        return self.operation in WRITES


class CallRecorder:
    """Records the DynamoDB calls a client makes while ``active`` (see the module doc)."""

    def __init__(self, client: Any, shadow: Any, tables: Mapping[str, TableInfo]) -> None:
        self.client, self.shadow, self.tables = client, shadow, dict(tables)
        self.active = False
        self.calls: list[Call] = []
        self._uid = f"bench-bare-{id(self)}"
        events = client.meta.events
        events.register("before-parameter-build.dynamodb", self._before, unique_id=self._uid + "-b")
        events.register("after-call.dynamodb", self._after, unique_id=self._uid + "-a")

    def close(self) -> None:
        events = self.client.meta.events
        events.unregister("before-parameter-build.dynamodb", unique_id=self._uid + "-b")
        events.unregister("after-call.dynamodb", unique_id=self._uid + "-a")

    def start(self) -> None:
        self.calls, self.active = [], True

    def stop(self) -> list[Call]:
        self.active = False
        calls, self.calls = self.calls, []
        return calls

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if not self.active:
            return
        name = model.name
        if name not in WRITES and name not in READS:
            raise NotReplayable(f"{name} is not replayed")
        call = Call(name, copy.deepcopy(params))
        if call.writes:
            call.pre_images = [(table, key, self._read(table, key))
                               for table, key in write_targets(self.tables, name, params)]
        context["bench_bare_call"] = call
        self.calls.append(call)

    def _after(self, parsed: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        call = context.get("bench_bare_call")
        if call is not None and "Error" in parsed:
            call.outcome = str(parsed["Error"].get("Code", "error"))

    def _read(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.shadow.get_item(
            TableName=table, Key=dict(key), ConsistentRead=True).get("Item")
        return item


def restore(shadow: Any, pre_images: list[tuple[str, dict[str, Any], dict[str, Any] | None]]) -> None:
    """Write back items as they were (delete those that did not exist)."""
    for table, key, item in pre_images:
        if item is None:
            shadow.delete_item(TableName=table, Key=key)
        else:
            shadow.put_item(TableName=table, Item=item)


def _first_pre_images(calls: list[Call]) -> list[tuple[str, dict[str, Any], dict[str, Any] | None]]:
    """Each item a request writes, as it was before the request's first write of it."""
    seen: set[str] = set()
    out = []
    for call in calls:
        for table, key, item in call.pre_images:
            ident = json.dumps([table, key], sort_keys=True)
            if ident not in seen:
                seen.add(ident)
                out.append((table, key, item))
    return out


def replay_call(bare: Any, call: Call) -> tuple[float, str]:
    """One recorded call on the bare client: (CPU seconds, outcome)."""
    from botocore import xform_name
    from botocore.exceptions import ClientError

    method = getattr(bare, xform_name(call.operation))
    params = copy.deepcopy(call.params)
    outcome = SUCCESS
    c0 = time.process_time()
    try:
        method(**params)
    except ClientError as exc:
        outcome = str(exc.response.get("Error", {}).get("Code", "error"))
    return time.process_time() - c0, outcome


def replay_request(bare: Any, shadow: Any, calls: list[Call]) -> float:
    """A request's calls on the bare client, in order, each write on its pre-image;
    the CPU of the calls alone, summed."""
    restore(shadow, _first_pre_images(calls))
    total = 0.0
    for call in calls:
        if call.writes:
            restore(shadow, call.pre_images)
        spent, outcome = replay_call(bare, call)
        if outcome != call.outcome:
            raise ReplayMismatch(f"{call.operation} replayed as {outcome}, recorded as {call.outcome}")
        total += spent
    return total


def retried(calls: list[Call]) -> bool:
    """The service tried a call again after it failed (a cancelled transaction, a
    throttle): what the failed attempt met (a concurrent write, a busy partition)
    is not in the recorded state, so the request cannot be replayed as it ran."""
    return any(call.outcome != SUCCESS and any(later.operation == call.operation
                                               for later in calls[i + 1:])
               for i, call in enumerate(calls))


def replay(bare: Any, shadow: Any, requests: list[list[Call]], warmup: int = 3) -> list[float]:
    """CPU of the bare calls of each request (seconds), after ``warmup`` unmeasured
    replays of the first requests (the bare client loads its models on first use).
    Requests the service retried a call of are left out (``retried``)."""
    requests = [calls for calls in requests if not retried(calls)]
    for calls in requests[:warmup]:
        replay_request(bare, shadow, calls)
    gc.collect()
    return [replay_request(bare, shadow, calls) for calls in requests]
