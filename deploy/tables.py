"""CloudFormation tables from ``chalicelib.storage.schema.TABLES`` (SPEC §7).

The CreateTable arguments the local runner and the tests use are translated
key by key; nothing about a table is written down twice.
"""

from __future__ import annotations

import copy
from typing import Any

from chalicelib.storage.schema import TABLES, TTL_ATTRIBUTE

# CreateTable keys that map 1:1 to AWS::DynamoDB::Table properties.
_SAME_SHAPE = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "LocalSecondaryIndexes")


def logical_id(kind: str) -> str:
    """``sessions`` -> ``SessionsTable``; ``device_codes`` -> ``DeviceCodesTable``."""
    return "".join(part.capitalize() for part in kind.split("_")) + "Table"


def table_name(prefix: str, kind: str) -> str:
    # The same rule as chalicelib.config.Settings.table().
    return prefix + kind


def table_resource(kind: str, prefix: str) -> dict[str, Any]:
    spec = TABLES[kind]
    unknown = set(spec) - set(_SAME_SHAPE)
    if unknown:
        raise ValueError(f"table {kind}: no CloudFormation mapping for {sorted(unknown)}")
    props: dict[str, Any] = {
        "TableName": table_name(prefix, kind),
        "BillingMode": "PAY_PER_REQUEST",
        **{key: copy.deepcopy(spec[key]) for key in _SAME_SHAPE if key in spec},
        # TTL is lazy; every read checks expiry itself (schema.py).
        "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
        # Off while the stack is first created (a failed first create must be able to
        # delete what it made), on from the next deploy (deploy.deploy sets
        # TableDeletionProtection=true once the stack exists). Deleting a protected
        # table takes turning this off first.
        "DeletionProtectionEnabled": {"Fn::If": ["ProtectTables", True, False]},
    }
    return {
        "Type": "AWS::DynamoDB::Table",
        # Tables hold users, clients and live sessions: deleting or replacing the
        # stack must not drop them. A stack whose first create fails removes what
        # it made (nothing was stored yet), so a retry does not meet stranded
        # tables of the same name. Remove a retained table by hand if meant.
        "DeletionPolicy": "RetainExceptOnCreate",
        "UpdateReplacePolicy": "Retain",
        "Properties": props,
    }


def table_resources(prefix: str) -> dict[str, dict[str, Any]]:
    """Logical id -> resource for every table of the schema."""
    return {logical_id(kind): table_resource(kind, prefix) for kind in TABLES}


def has_indexes(kind: str) -> bool:
    spec = TABLES[kind]
    return bool(spec.get("GlobalSecondaryIndexes") or spec.get("LocalSecondaryIndexes"))
