"""DynamoDB work per request, counted on the service's own botocore client.

``DynamoMeter`` registers botocore event hooks on a client and counts every
API call by operation name (round trips; botocore's retries inside one call are
not separate calls). With ``units=True`` it also computes the read and write
request units each call consumes, from the sizes of the items involved, by
DynamoDB's published rules:

* reads: 4 KB per unit, rounded up per item (GetItem, BatchGetItem) or per page
  (Query, Scan), at least one unit; eventually consistent reads cost half;
* writes: 1 KB per unit of the larger of the item before and after, at least
  one; a failed condition still costs the existing item's size; a transactional
  write costs twice; every global secondary index whose entry the write adds,
  changes or removes costs its own write units (a changed index key is a delete
  plus a put).

Why compute: moto answers ``ReturnConsumedCapacity`` with constants (1.0 per
write, 0.5 per read whatever the size, no index writes), so its figures would
be wrong. To know the sizes before and after a write, the meter reads the item
through a second, unhooked client ("shadow reads") around each write; those
reads are not counted. Use units only where CPU is not being measured.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

READ_UNIT = 4096
WRITE_UNIT = 1024
WRITES = ("PutItem", "UpdateItem", "DeleteItem")


# --------------------------------------------------------------------------
# item sizes
# --------------------------------------------------------------------------

def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one attribute value in the wire format (``{"S": "..."}`` etc.)."""
    (tag, raw), = value.items()
    if tag == "S":
        return len(str(raw).encode("utf-8"))
    if tag == "N":
        digits = str(raw).lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if tag == "B":
        return len(raw)
    if tag in ("BOOL", "NULL"):
        return 1
    if tag == "SS":
        return sum(len(str(v).encode("utf-8")) for v in raw)
    if tag == "NS":
        return sum(value_size({"N": v}) for v in raw)
    if tag == "BS":
        return sum(len(v) for v in raw)
    if tag == "L":
        return 3 + sum(value_size(v) + 1 for v in raw)
    if tag == "M":
        return 3 + sum(len(k.encode("utf-8")) + value_size(v) + 1 for k, v in raw.items())
    raise ValueError(f"unknown attribute type {tag}")


def item_size(item: Mapping[str, Any] | None, only: Iterable[str] | None = None) -> int:
    """Bytes of an item: attribute names plus values (only the named ones if given)."""
    if not item:
        return 0
    names = item.keys() if only is None else [n for n in only if n in item]
    return sum(len(n.encode("utf-8")) + value_size(item[n]) for n in names)


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT))
    return float(units) if consistent else units / 2


def write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT))


# --------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]
    projection: str                      # KEYS_ONLY | INCLUDE | ALL
    include: tuple[str, ...] = ()

    def entry(self, item: Mapping[str, Any] | None, table_keys: tuple[str, ...]) -> dict[str, Any] | None:
        """The index entry of an item (None: the item is not in the index)."""
        if not item or any(k not in item for k in self.keys):
            return None
        if self.projection == "ALL":
            return dict(item)
        names = {*table_keys, *self.keys, *self.include}
        return {n: item[n] for n in names if n in item}


@dataclass(frozen=True)
class TableInfo:
    keys: tuple[str, ...]
    indexes: tuple[Index, ...] = ()

    def key_of(self, item: Mapping[str, Any]) -> dict[str, Any]:
        return {k: item[k] for k in self.keys}


def tables_from_schema(prefix: str) -> dict[str, TableInfo]:
    """Physical table name -> keys and indexes, from ``chalicelib.storage.schema``."""
    from chalicelib.storage.schema import TABLES

    out: dict[str, TableInfo] = {}
    for logical, spec in TABLES.items():
        indexes = []
        for gsi in spec.get("GlobalSecondaryIndexes", []):
            projection = gsi["Projection"]
            indexes.append(Index(gsi["IndexName"], tuple(k["AttributeName"] for k in gsi["KeySchema"]),
                                 projection["ProjectionType"],
                                 tuple(projection.get("NonKeyAttributes", ()))))
        out[prefix + logical] = TableInfo(tuple(k["AttributeName"] for k in spec["KeySchema"]),
                                          tuple(indexes))
    return out


def index_write_units(info: TableInfo, before: Mapping[str, Any] | None,
                      after: Mapping[str, Any] | None) -> int:
    """Write units the indexes of a table consume for one item changing."""
    total = 0
    for index in info.indexes:
        old, new = index.entry(before, info.keys), index.entry(after, info.keys)
        if old == new:
            continue
        if old is not None and new is not None and all(old[k] == new[k] for k in index.keys):
            total += write_units(max(item_size(old), item_size(new)))      # updated in place
        else:
            total += (write_units(item_size(old)) if old is not None else 0) \
                + (write_units(item_size(new)) if new is not None else 0)   # removed and/or added
    return total


def write_targets(tables: Mapping[str, TableInfo], name: str,
                  params: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(table, key) of every item a write touches (a transaction's condition checks
    included); none for a read."""
    if name == "PutItem":
        info = tables[params["TableName"]]
        return [(params["TableName"], info.key_of(params["Item"]))]
    if name in ("UpdateItem", "DeleteItem"):
        return [(params["TableName"], dict(params["Key"]))]
    if name == "TransactWriteItems":
        out = []
        for op in params["TransactItems"]:
            (kind, spec), = op.items()
            if kind == "Put":
                out.append((spec["TableName"], tables[spec["TableName"]].key_of(spec["Item"])))
            else:
                out.append((spec["TableName"], dict(spec["Key"])))
        return out
    return []


# --------------------------------------------------------------------------
# the meter
# --------------------------------------------------------------------------

@dataclass
class Work:
    """DynamoDB work of some requests."""

    calls: Counter[str] = field(default_factory=Counter)
    rru: float = 0.0
    wru: float = 0.0
    items_read: int = 0

    @property
    def round_trips(self) -> int:
        return sum(self.calls.values())

    def as_dict(self) -> dict[str, Any]:
        return {"calls": dict(sorted(self.calls.items())), "round_trips": self.round_trips,
                "rru": self.rru, "wru": self.wru, "items_read": self.items_read}


class DynamoMeter:
    """Counts the DynamoDB calls of one botocore client (and their units, on request)."""

    def __init__(self, client: Any, *, tables: Mapping[str, TableInfo] | None = None,
                 shadow: Any = None) -> None:
        self.client = client
        self.tables = dict(tables or {})
        self.shadow = shadow
        self.units = shadow is not None
        self.work = Work()
        events = client.meta.events
        events.register("before-parameter-build.dynamodb", self._before, unique_id=f"meter-b-{id(self)}")
        events.register("after-call.dynamodb", self._after, unique_id=f"meter-a-{id(self)}")

    def close(self) -> None:
        events = self.client.meta.events
        events.unregister("before-parameter-build.dynamodb", unique_id=f"meter-b-{id(self)}")
        events.unregister("after-call.dynamodb", unique_id=f"meter-a-{id(self)}")

    def take(self) -> Work:
        """The work counted since the last take."""
        work, self.work = self.work, Work()
        return work

    # -- hooks ------------------------------------------------------------------------

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        self.work.calls[model.name] += 1
        context["bench_params"] = params
        if self.units:
            context["bench_before"] = self._snapshot(model.name, params)

    def _after(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if "bench_params" not in context:
            return
        params = context["bench_params"]
        name = model.name
        if name in ("Query", "Scan"):
            self.work.items_read += len(parsed.get("Items", []))
        elif name == "BatchGetItem":
            self.work.items_read += sum(len(v) for v in parsed.get("Responses", {}).values())
        elif name == "GetItem":
            self.work.items_read += 1 if parsed.get("Item") else 0
        if not self.units:
            return
        failed = "Error" in parsed
        before = context.get("bench_before") or []
        if name == "GetItem":
            self.work.rru += read_units(item_size(parsed.get("Item")), bool(params.get("ConsistentRead")))
        elif name == "BatchGetItem":
            for table, request in params["RequestItems"].items():
                found = parsed.get("Responses", {}).get(table, [])
                consistent = bool(request.get("ConsistentRead"))
                self.work.rru += sum(read_units(item_size(i), consistent) for i in found)
                self.work.rru += (len(request["Keys"]) - len(found)) * read_units(0, consistent)
        elif name in ("Query", "Scan"):
            consistent = bool(params.get("ConsistentRead"))
            self.work.rru += read_units(sum(item_size(i) for i in parsed.get("Items", [])), consistent)
        elif name in WRITES or name == "TransactWriteItems":
            factor = 2 if name == "TransactWriteItems" else 1
            for table, key, old in before:
                info = self.tables.get(table, TableInfo(tuple(key)))
                if failed:
                    self.work.wru += factor * write_units(item_size(old))
                    continue
                new = self._read(table, key)
                self.work.wru += factor * write_units(max(item_size(old), item_size(new)))
                self.work.wru += index_write_units(info, old, new)

    # -- shadow reads -----------------------------------------------------------------

    def _snapshot(self, name: str, params: Mapping[str, Any]) -> list[tuple[str, dict[str, Any], Any]]:
        return [(table, key, self._read(table, key))
                for table, key in write_targets(self.tables, name, params)]

    def _read(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.shadow.get_item(
            TableName=table, Key=dict(key), ConsistentRead=True).get("Item")
        return item
