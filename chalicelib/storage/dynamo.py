"""A thin, typed layer over the low-level DynamoDB client.

* The client is built lazily on first use and cached per process (never at
  import: the packager imports ``app.py``); ``reset_clients()`` clears it in tests.
* Items are converted with a small codec (str, int, bool, None, list, dict, set
  of str) instead of ``boto3.resource``, which costs cold-start time.
* Throttling and outages become ``StorageUnavailable`` (rendered 503 with
  Retry-After); a lost condition becomes ``ConditionFailed`` carrying the old
  item from ``ReturnValuesOnConditionCheckFailure=ALL_OLD``, never a second read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from chalicelib.errors import ConditionFailed, StorageUnavailable

Item = dict[str, Any]

_lock = threading.Lock()
_clients: dict[str, Any] = {}

_UNAVAILABLE_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException",
    "RequestLimitExceeded", "InternalServerError", "ServiceUnavailable",
    "TransactionConflictException", "TransactionInProgressException",
    "LimitExceededException",
})


def aws_client(service: str) -> Any:
    """One botocore client per service per process, created on first use."""
    client = _clients.get(service)
    if client is None:
        with _lock:
            client = _clients.get(service)
            if client is None:
                import boto3
                from botocore.config import Config

                client = boto3.client(service, config=Config(
                    connect_timeout=2, read_timeout=5,
                    retries={"mode": "standard", "max_attempts": 3},
                ))
                _clients[service] = client
    return client


def reset_clients() -> None:
    """Forget cached clients (tests switch endpoints and credentials)."""
    with _lock:
        _clients.clear()


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


def _call(fn: Callable[..., Any], **kwargs: Any) -> Any:
    try:
        return fn(**{k: v for k, v in kwargs.items() if v is not None})
    except Exception as exc:  # translated below, re-raised as-is otherwise
        translated = _translate(exc)
        if translated is exc:
            raise
        raise translated from exc


class Table:
    """One DynamoDB table, addressed by its physical name."""

    def __init__(self, name: str, client_factory: Callable[[], Any] | None = None) -> None:
        self.name = name
        self._client_factory = client_factory or (lambda: aws_client("dynamodb"))

    @property
    def client(self) -> Any:
        return self._client_factory()

    def get(self, key: Mapping[str, Any], *, consistent: bool = True) -> Item | None:
        out = _call(self.client.get_item, TableName=self.name, Key=encode_item(key),
                    ConsistentRead=consistent)
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


def transact(client: Any, operations: list[dict[str, Any]]) -> None:
    """All-or-nothing write of several items (TransactWriteItems, one round trip)."""
    _call(client.transact_write_items, TransactItems=operations)


def batch_get(client: Any, requests: Mapping[str, list[dict[str, Any]]], *,
              consistent: bool = True) -> dict[str, list[Item]]:
    """Read items of several tables in one BatchGetItem round trip.

    Keys the service left unprocessed (throttling) are asked for again.
    """
    pending: dict[str, Any] = {
        table: {"Keys": [encode_item(k) for k in keys], "ConsistentRead": consistent}
        for table, keys in requests.items() if keys
    }
    found: dict[str, list[Item]] = {table: [] for table in requests}
    for _ in range(5):
        if not pending:
            return found
        out = _call(client.batch_get_item, RequestItems=pending)
        for table, items in out.get("Responses", {}).items():
            found[table].extend(decode_item(i) or {} for i in items)
        pending = out.get("UnprocessedKeys") or {}
    raise StorageUnavailable(detail="BatchGetItem kept returning UnprocessedKeys")
