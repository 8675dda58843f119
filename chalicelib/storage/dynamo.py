"""A thin, typed layer over the low-level DynamoDB client.

* The client is built lazily on first use and cached per process (never at
  import: the packager imports ``app.py``); ``reset_clients()`` clears it in tests.
* Items are converted with a small codec (str, int, bool, None, list, dict, set
  of str) instead of ``boto3.resource``, which costs cold-start time.
* Throttling and outages become ``StorageUnavailable`` (rendered 503 with
  Retry-After); a lost condition becomes ``ConditionFailed`` carrying the old
  item from ``ReturnValuesOnConditionCheckFailure=ALL_OLD``, never a second read.
* Retries stay inside the request's time (``chalicelib.deadline``): no attempt
  starts, and no backoff sleeps, unless a whole attempt still fits before the
  reserve kept for answering 503.
* Every TransactWriteItems carries a ClientRequestToken, so botocore's retry of
  a request whose response was lost is applied once (DynamoDB's 10-minute
  idempotency window); a transaction cancelled by a conflict is tried again,
  and one that keeps conflicting becomes ``StorageContended`` (a 503 unless the
  caller, reading again, can tell the write could never have succeeded).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from chalicelib import deadline
from chalicelib.errors import ConditionFailed, StorageContended, StorageUnavailable

Item = dict[str, Any]

_lock = threading.Lock()
_clients: dict[str, Any] = {}
_session: Any = None
_loader: Any = None       # botocore's loader: parsed service models
# What AWS sees (CloudTrail's userAgent) from the functions' clients.
USER_AGENT = "tessera"

_UNAVAILABLE_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException",
    "RequestLimitExceeded", "InternalServerError", "ServiceUnavailable",
    "TransactionConflictException", "TransactionInProgressException",
    "LimitExceededException",
})
# Cancellation reasons of a transaction that did nothing and may simply be tried again.
_TRANSIENT_REASONS = frozenset({"TransactionConflict", "ThrottlingError",
                                "ProvisionedThroughputExceeded"})
# Our own tries of a write that lost to a concurrent transaction (each one may
# itself be retried by botocore for network faults and throttling).
CONFLICT_ATTEMPTS = 4


# --------------------------------------------------------------------------
# time budget
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class RetryBudget:
    """How long DynamoDB calls may take, from the stage's settings."""

    connect_timeout_ms: int = 1000
    read_timeout_ms: int = 2000
    max_attempts: int = 3
    reserve_ms: int = 1000

    @property
    def attempt_ms(self) -> int:
        """The longest one attempt can take: connecting, then waiting for the answer."""
        return self.connect_timeout_ms + self.read_timeout_ms

    @property
    def backoff_ms(self) -> int:
        """The longest sleep botocore's standard mode makes between two of our
        attempts (throttling: 1 s doubling per attempt, capped at 20 s)."""
        return min(1000 * 2 ** max(self.max_attempts - 2, 0), 20_000) if self.max_attempts > 1 else 0

    @property
    def needed_ms(self) -> int:
        """Time left below which no attempt starts: the attempt, the backoff that may
        follow it, and the reserve for answering 503 before the platform's timeout."""
        return self.attempt_ms + self.backoff_ms + self.reserve_ms

    def check(self, what: str) -> None:
        left = deadline.remaining_ms()
        if left is not None and left < self.needed_ms:
            raise StorageUnavailable(detail=f"{what}: {left:.0f} ms left, an attempt needs "
                                            f"{self.needed_ms} ms")


@lru_cache(maxsize=1)
def retry_budget() -> RetryBudget:
    from chalicelib.config import get_settings

    s = get_settings()
    return RetryBudget(connect_timeout_ms=s.dynamodb_connect_timeout_ms,
                       read_timeout_ms=s.dynamodb_read_timeout_ms,
                       max_attempts=max(1, s.dynamodb_max_attempts),
                       reserve_ms=s.deadline_reserve_ms)


@dataclass
class Backoff:
    """Exponential backoff with full jitter, never sleeping past the request's budget.

    ``sleep`` and ``rand`` are injectable: tests record the pauses instead of taking them.
    """

    base_ms: float = 50
    cap_ms: float = 2000
    sleep: Callable[[float], None] = time.sleep
    rand: Callable[[], float] = random.random
    budget: RetryBudget | None = None

    def delay_ms(self, attempt: int) -> float:
        return self.rand() * min(self.cap_ms, self.base_ms * 2 ** attempt)

    def pause(self, attempt: int, what: str) -> None:
        """Wait before retry ``attempt + 1``; StorageUnavailable if the retry would not fit."""
        delay = self.delay_ms(attempt)
        budget = self.budget or retry_budget()
        left = deadline.remaining_ms()
        if left is not None and left - delay < budget.needed_ms:
            raise StorageUnavailable(detail=f"{what}: no time left to retry ({left:.0f} ms)")
        self.sleep(delay / 1000)


BACKOFF = Backoff()


def _deadline_gate(budget: RetryBudget) -> Callable[..., None]:
    """A ``request-created`` handler: refuse an attempt (first or retry) that could
    outlast the request. botocore builds each attempt's request outside its retry
    loop's error handling, so the refusal reaches the caller at once."""

    def gate(**_: Any) -> None:
        budget.check("DynamoDB attempt refused")

    return gate


def _botocore_session() -> Any:
    """The process's botocore session: what ``boto3.client`` creates its clients
    from, without ``import boto3``. boto3's package imports ``s3transfer`` (and with
    it ``concurrent.futures`` and ``multiprocessing``) for S3 transfers and
    resources, which no function uses. The clients are the same botocore clients,
    with the same credential chain, region and ``AWS_ENDPOINT_URL`` settings. A new
    session reuses the loader of the one before it: the service models it parsed
    hold nothing of a stage or its credentials. Held under ``_lock``."""
    global _session, _loader
    if _session is None:
        import botocore.session

        _session = botocore.session.get_session()
        if _loader is None:
            _loader = _session.get_component("data_loader")
        else:
            _session.register_component("data_loader", _loader)
    return _session


def aws_client(service: str) -> Any:
    """One botocore client per service per process, created on first use."""
    client = _clients.get(service)
    if client is None:
        with _lock:
            client = _clients.get(service)
            if client is None:
                from botocore.config import Config

                budget = retry_budget()
                client = _botocore_session().create_client(service, config=Config(
                    connect_timeout=budget.connect_timeout_ms / 1000,
                    read_timeout=budget.read_timeout_ms / 1000,
                    retries={"mode": "standard", "total_max_attempts": budget.max_attempts},
                    # Per call (SPEC §9): the requests are built by this package's
                    # tested code and DynamoDB validates them again, so botocore's
                    # client-side check of every parameter against the model is
                    # skipped; and a fixed User-Agent, not the one botocore rebuilds
                    # and sanitizes twice per call from about twenty parts.
                    parameter_validation=False,
                    user_agent=USER_AGENT,
                ))
                # Before each attempt is signed and sent.
                client.meta.events.register_first("request-created", _deadline_gate(budget),
                                                  unique_id="tessera-deadline-gate")
                _clients[service] = client
    return client


def preload_models(services: tuple[str, ...] = ("dynamodb", "secretsmanager")) -> None:
    """Parse what creating these services' clients reads (service models, endpoint
    rules, partitions), for a SnapStart snapshot: each client is made with
    placeholder credentials and dropped unused, so no credential is looked up and
    no connection opened. The session's loader keeps what was parsed."""
    with _lock:
        session = _botocore_session()
    region = session.get_config_variable("region") or "us-east-1"
    for service in services:
        session.create_client(service, region_name=region, aws_access_key_id="snapshot",
                              aws_secret_access_key="snapshot")


def reset_clients() -> None:
    """Forget cached clients and the session with its credentials (tests switch
    endpoints and credentials; a SnapStart restore must not share them). The parsed
    service models stay (``_botocore_session``)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None
    retry_budget.cache_clear()


# --------------------------------------------------------------------------
# codec
# --------------------------------------------------------------------------

def encode(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, (set, frozenset)):
        return {"SS": sorted(value)}
    if isinstance(value, (list, tuple)):
        return {"L": [encode(v) for v in value]}
    if isinstance(value, Mapping):
        return {"M": {k: encode(v) for k, v in value.items()}}
    raise TypeError(f"cannot store {type(value).__name__}")


def decode(value: Mapping[str, Any]) -> Any:
    (tag, raw), = value.items()
    if tag == "S":
        return raw
    if tag == "N":
        return int(raw) if "." not in raw else float(raw)
    if tag == "BOOL":
        return bool(raw)
    if tag == "NULL":
        return None
    if tag == "L":
        return [decode(v) for v in raw]
    if tag == "M":
        return {k: decode(v) for k, v in raw.items()}
    if tag == "SS":
        return set(raw)
    if tag == "NS":
        return {int(v) for v in raw}
    raise TypeError(f"unsupported attribute type {tag}")


def encode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: encode(v) for k, v in item.items() if v is not None}


def decode_item(item: Mapping[str, Any] | None) -> Item | None:
    if item is None:
        return None
    return {k: decode(v) for k, v in item.items()}


def encode_values(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not values:
        return None
    return {k: encode(v) for k, v in values.items()}


# --------------------------------------------------------------------------
# error translation
# --------------------------------------------------------------------------

def _translate(exc: Exception) -> Exception:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ConditionalCheckFailedException":
            return ConditionFailed(item=decode_item(exc.response.get("Item")))
        if code == "TransactionCanceledException":
            reasons = exc.response.get("CancellationReasons") or []
            for reason in reasons:
                if reason.get("Code") == "ConditionalCheckFailed":
                    return ConditionFailed(item=decode_item(reason.get("Item")))
            return StorageUnavailable(detail=f"transaction cancelled: {reasons}")
        if code in _UNAVAILABLE_CODES:
            return StorageUnavailable(detail=code)
        return exc
    if isinstance(exc, BotoCoreError):
        return StorageUnavailable(detail=type(exc).__name__)
    return exc


def _conflicted(exc: Exception) -> bool:
    """A write that lost to a concurrent transaction and changed nothing: try again."""
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return False
    code = exc.response.get("Error", {}).get("Code", "")
    if code == "TransactionConflictException":
        return True
    if code != "TransactionCanceledException":
        return False
    reasons = {r.get("Code", "None") for r in exc.response.get("CancellationReasons") or []}
    return bool(reasons & _TRANSIENT_REASONS) and reasons <= _TRANSIENT_REASONS | {"None"}


def _attempts(send: Callable[[], Any], what: str, backoff: Backoff | None = None) -> Any:
    """``send()``, tried again after a transaction conflict (botocore does not retry
    those), with backoff inside the request's budget; errors translated."""
    pause = backoff or BACKOFF
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            return send()
        except Exception as exc:  # translated below, re-raised as-is otherwise
            if _conflicted(exc):
                if attempt + 1 < CONFLICT_ATTEMPTS:
                    pause.pause(attempt, what)
                    continue
                raise StorageContended(detail=f"{what}: still conflicting after "
                                              f"{CONFLICT_ATTEMPTS} tries") from exc
            translated = _translate(exc)
            if translated is exc:
                raise
            raise translated from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _call(fn: Callable[..., Any], **kwargs: Any) -> Any:
    params = {k: v for k, v in kwargs.items() if v is not None}
    return _attempts(lambda: fn(**params), getattr(fn, "__name__", "DynamoDB call"))


class Table:
    """One DynamoDB table, addressed by its physical name."""

    def __init__(self, name: str, client_factory: Callable[[], Any] | None = None) -> None:
        self.name = name
        self._client_factory = client_factory or (lambda: aws_client("dynamodb"))

    @property
    def client(self) -> Any:
        return self._client_factory()

    def get(self, key: Mapping[str, Any], *, consistent: bool = True,
            attributes: tuple[str, ...] = ()) -> Item | None:
        """The item, or only its ``attributes`` where named (a projection: less to
        send, parse and decode; the read costs the same units)."""
        names = {f"#a{i}": a for i, a in enumerate(attributes)}
        out = _call(self.client.get_item, TableName=self.name, Key=encode_item(key),
                    ConsistentRead=consistent, ProjectionExpression=", ".join(names) or None,
                    ExpressionAttributeNames=names or None)
        return decode_item(out.get("Item"))

    def put(self, item: Mapping[str, Any], *, condition: str | None = None,
            names: Mapping[str, str] | None = None,
            values: Mapping[str, Any] | None = None) -> None:
        _call(self.client.put_item, TableName=self.name, Item=encode_item(item),
              ConditionExpression=condition, ExpressionAttributeNames=names or None,
              ExpressionAttributeValues=encode_values(values),
              ReturnValuesOnConditionCheckFailure="ALL_OLD" if condition else None)

    def update(self, key: Mapping[str, Any], expression: str, *,
               condition: str | None = None, names: Mapping[str, str] | None = None,
               values: Mapping[str, Any] | None = None,
               returns: str = "ALL_NEW") -> Item | None:
        out = _call(self.client.update_item, TableName=self.name, Key=encode_item(key),
                    UpdateExpression=expression, ConditionExpression=condition,
                    ExpressionAttributeNames=names or None,
                    ExpressionAttributeValues=encode_values(values),
                    ReturnValues=returns,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD" if condition else None)
        return decode_item(out.get("Attributes"))

    def delete(self, key: Mapping[str, Any], *, condition: str | None = None,
               names: Mapping[str, str] | None = None,
               values: Mapping[str, Any] | None = None) -> Item | None:
        out = _call(self.client.delete_item, TableName=self.name, Key=encode_item(key),
                    ConditionExpression=condition, ExpressionAttributeNames=names or None,
                    ExpressionAttributeValues=encode_values(values), ReturnValues="ALL_OLD",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD" if condition else None)
        return decode_item(out.get("Attributes"))

    def query(self, key_condition: str, *, values: Mapping[str, Any],
              names: Mapping[str, str] | None = None, index: str | None = None,
              filter_expression: str | None = None, limit: int | None = None,
              consistent: bool = False, forward: bool = True,
              start_key: Mapping[str, Any] | None = None) -> tuple[list[Item], Item | None]:
        """One page of a Query: (items, LastEvaluatedKey or None)."""
        out = _call(self.client.query, TableName=self.name, IndexName=index,
                    KeyConditionExpression=key_condition, FilterExpression=filter_expression,
                    ExpressionAttributeNames=names or None,
                    ExpressionAttributeValues=encode_values(values), Limit=limit,
                    ConsistentRead=consistent if index is None else None,
                    ScanIndexForward=forward,
                    ExclusiveStartKey=encode_item(start_key) if start_key else None)
        items = [decode_item(i) or {} for i in out.get("Items", [])]
        return items, decode_item(out.get("LastEvaluatedKey"))

    def query_all(self, key_condition: str, **kwargs: Any) -> Iterator[Item]:
        start: Item | None = None
        while True:
            items, start = self.query(key_condition, start_key=start, **kwargs)
            yield from items
            if not start:
                return

    def scan_all(self, *, projection: str | None = None,
                 names: Mapping[str, str] | None = None) -> Iterator[Item]:
        """Every item, page by page: for the admin command's reports only (a Scan
        reads the whole table; no request path calls it)."""
        start: Item | None = None
        while True:
            out = _call(self.client.scan, TableName=self.name, ProjectionExpression=projection,
                        ExpressionAttributeNames=names or None,
                        ExclusiveStartKey=encode_item(start) if start else None)
            yield from (decode_item(i) or {} for i in out.get("Items", []))
            start = decode_item(out.get("LastEvaluatedKey"))
            if not start:
                return

    # Operations for ``transact`` --------------------------------------------

    def op_put(self, item: Mapping[str, Any], condition: str | None = None,
               names: Mapping[str, str] | None = None,
               values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return {"Put": _strip({"TableName": self.name, "Item": encode_item(item),
                               "ConditionExpression": condition,
                               "ExpressionAttributeNames": names or None,
                               "ExpressionAttributeValues": encode_values(values),
                               "ReturnValuesOnConditionCheckFailure": "ALL_OLD" if condition else None})}

    def op_update(self, key: Mapping[str, Any], expression: str, condition: str | None = None,
                  names: Mapping[str, str] | None = None,
                  values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return {"Update": _strip({"TableName": self.name, "Key": encode_item(key),
                                  "UpdateExpression": expression,
                                  "ConditionExpression": condition,
                                  "ExpressionAttributeNames": names or None,
                                  "ExpressionAttributeValues": encode_values(values),
                                  "ReturnValuesOnConditionCheckFailure": "ALL_OLD" if condition else None})}

    def op_delete(self, key: Mapping[str, Any], condition: str | None = None,
                  names: Mapping[str, str] | None = None,
                  values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return {"Delete": _strip({"TableName": self.name, "Key": encode_item(key),
                                  "ConditionExpression": condition,
                                  "ExpressionAttributeNames": names or None,
                                  "ExpressionAttributeValues": encode_values(values)})}

    def op_check(self, key: Mapping[str, Any], condition: str,
                 names: Mapping[str, str] | None = None,
                 values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return {"ConditionCheck": _strip({"TableName": self.name, "Key": encode_item(key),
                                          "ConditionExpression": condition,
                                          "ExpressionAttributeNames": names or None,
                                          "ExpressionAttributeValues": encode_values(values)})}


def _strip(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def transact(client: Any, operations: list[dict[str, Any]], *,
             backoff: Backoff | None = None) -> None:
    """All-or-nothing write of several items (TransactWriteItems, one round trip).

    Each of our tries carries its own ClientRequestToken, and botocore resends it
    unchanged when it retries a timed-out request: a transaction that committed
    but whose answer was lost is not applied twice, and the retry answers success.
    (A try cancelled by a conflict committed nothing, so the next takes a new token.)
    Callers whose conditions would refuse a repeat still recognise their own
    write from the ``ALL_OLD`` item (moto, like a token older than 10 minutes,
    offers no idempotency).
    """
    def send() -> Any:
        return client.transact_write_items(TransactItems=operations,
                                           ClientRequestToken=os.urandom(16).hex())

    _attempts(send, "TransactWriteItems", backoff)


BATCH_GET_ROUNDS = 6


def batch_get(client: Any, requests: Mapping[str, list[dict[str, Any]]], *,
              consistent: bool = True, backoff: Backoff | None = None) -> dict[str, list[Item]]:
    """Read items of several tables in one BatchGetItem round trip.

    Keys the service left unprocessed (throttling, or a response over 16 MB) are
    asked for again after an exponential backoff with jitter, as DynamoDB asks
    (an immediate retry meets the same throttle), within the request's budget.
    """
    pause = backoff or BACKOFF
    pending: dict[str, Any] = {
        table: {"Keys": [encode_item(k) for k in keys], "ConsistentRead": consistent}
        for table, keys in requests.items() if keys
    }
    found: dict[str, list[Item]] = {table: [] for table in requests}
    for attempt in range(BATCH_GET_ROUNDS):
        if not pending:
            return found
        if attempt:
            pause.pause(attempt - 1, "BatchGetItem UnprocessedKeys")
        out = _call(client.batch_get_item, RequestItems=pending)
        for table, items in out.get("Responses", {}).items():
            found[table].extend(decode_item(i) or {} for i in items)
        pending = out.get("UnprocessedKeys") or {}
    if not pending:
        return found
    raise StorageUnavailable(detail="BatchGetItem kept returning UnprocessedKeys")
