"""The tables, defined once (SPEC §7).

The deploy template (``deploy/package.py``), the local runner and the tests all
build their tables from ``TABLES``. Every table keeps its expiry in the number
attribute ``ttl`` (epoch seconds) for DynamoDB TTL; since TTL is lazy, every
read checks expiry itself.
"""

from __future__ import annotations

from typing import Any

TTL_ATTRIBUTE = "ttl"

# Index names used by the code.
SESSIONS_BY_IDLE = "by_idle"   # purge: (purge_shard, idle_deadline), KEYS_ONLY
SESSIONS_BY_USER = "by_user"   # /v1/sessions and "end all sessions of a user"
TOKENS_BY_NOTICE = "by_notice"  # expiry notices: (notice_shard, notice_at), expires_at


def _s(name: str) -> dict[str, str]:
    return {"AttributeName": name, "AttributeType": "S"}


def _n(name: str) -> dict[str, str]:
    return {"AttributeName": name, "AttributeType": "N"}


def _hash(name: str) -> dict[str, str]:
    return {"AttributeName": name, "KeyType": "HASH"}


def _range(name: str) -> dict[str, str]:
    return {"AttributeName": name, "KeyType": "RANGE"}


# Logical name -> CreateTable arguments (without TableName and BillingMode).
TABLES: dict[str, dict[str, Any]] = {
    # Users, keyed by an id derived from the normalised username, so that the
    # password grant reads user and client in one BatchGetItem (SPEC §9).
    "users": {
        "AttributeDefinitions": [_s("id")],
        "KeySchema": [_hash("id")],
    },
    "clients": {
        "AttributeDefinitions": [_s("client_id")],
        "KeySchema": [_hash("client_id")],
    },
    # One item per login session; it also carries the refresh-token state so
    # that rotation is a single conditional UpdateItem.
    "sessions": {
        "AttributeDefinitions": [_s("id"), _n("purge_shard"), _n("idle_deadline"),
                                 _s("user_id"), _n("created_at")],
        "KeySchema": [_hash("id")],
        "GlobalSecondaryIndexes": [
            {
                # A handful of shard keys, sorted by idle deadline: the purge
                # Queries "idle_deadline < now" per shard and so reads only the
                # sessions it is about to remove, never the live ones.
                "IndexName": SESSIONS_BY_IDLE,
                "KeySchema": [_hash("purge_shard"), _range("idle_deadline")],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
            {
                "IndexName": SESSIONS_BY_USER,
                "KeySchema": [_hash("user_id"), _range("created_at")],
                "Projection": {
                    "ProjectionType": "INCLUDE",
                    "NonKeyAttributes": ["client_id", "last_used_at", "idle_deadline",
                                         "expires_at", "device", "kind", "scope"],
                },
            },
        ],
    },
    # Personal access tokens (and later role keys), partitioned by owner so a
    # user's list is one strongly consistent Query of the base table.
    "tokens": {
        "AttributeDefinitions": [_s("owner"), _s("id"), _n("notice_shard"), _n("notice_at")],
        "KeySchema": [_hash("owner"), _range("id")],
        "GlobalSecondaryIndexes": [
            {
                # Sparse: only PATs with an expiry notice still to send carry
                # ``notice_shard``; sorted by when the next one is due, so the
                # daily job Queries "notice_at <= now" per shard and reads only
                # the tokens it notifies (``jobs/expiry_notices.py``).
                "IndexName": TOKENS_BY_NOTICE,
                "KeySchema": [_hash("notice_shard"), _range("notice_at")],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["expires_at"]},
            },
        ],
    },
    # Roles (SPEC §6) under their owner; each item holds the role's policies,
    # trust policies and keys (``storage/roles.py``).
    "roles": {
        "AttributeDefinitions": [_s("owner"), _s("id")],
        "KeySchema": [_hash("owner"), _range("id")],
    },
    # Device authorization requests: "dc#<digest of device_code>" holds the
    # state, "uc#<user code>" reserves the user code among live ones; and
    # authorization codes, "ac#<digest of code>" (``storage/codes.py``): both
    # are short-lived single-use grants keyed by a secret's digest.
    "devices": {
        "AttributeDefinitions": [_s("pk")],
        "KeySchema": [_hash("pk")],
    },
    # What each person consented to, per app (``storage/consents.py``): a user's
    # list is one strongly consistent Query of the base table.
    "consents": {
        "AttributeDefinitions": [_s("user_id"), _s("client_id")],
        "KeySchema": [_hash("user_id"), _range("client_id")],
    },
    # The public half of the signing keys, one item (``storage/public_keys.py``):
    # what verifying a JWT reads instead of the key set in Secrets Manager.
    "keys": {
        "AttributeDefinitions": [_s("pk")],
        "KeySchema": [_hash("pk")],
    },
    # Counters of failed sign-ins and guesses, per user and per source.
    "throttle": {
        "AttributeDefinitions": [_s("pk")],
        "KeySchema": [_hash("pk")],
    },
    # The security log (SPEC §11): one item per event under its user, ``id`` a
    # time-ordered identifier, so a user's log newest first is one Query
    # (``storage/events.py``); ``ttl`` ends each after the stage's retention.
    "events": {
        "AttributeDefinitions": [_s("user_id"), _s("id")],
        "KeySchema": [_hash("user_id"), _range("id")],
    },
    # CI job tokens already exchanged (SPEC §6 federation): "jti#<digest of iss
    # and jti>", kept until the job token could no longer be accepted.
    "replay": {
        "AttributeDefinitions": [_s("pk")],
        "KeySchema": [_hash("pk")],
    },
}


def create_table_kwargs(logical: str, physical: str) -> dict[str, Any]:
    """CreateTable arguments for one table (on-demand billing)."""
    spec = TABLES[logical]
    kwargs: dict[str, Any] = {"TableName": physical, "BillingMode": "PAY_PER_REQUEST", **spec}
    return kwargs


def create_tables(client: Any, prefix: str, *, ttl: bool = True) -> list[str]:
    """Create every table (if missing) and enable TTL; returns the physical names.

    Used by the local runner and the tests; the deploy template is built from
    the same ``TABLES``. ``ttl=False``: leave TTL off (the tests: nothing reads
    past an expiry, every read checks it itself, and moto never expires items).
    """
    existing = set(client.list_tables().get("TableNames", []))
    names = []
    for logical in TABLES:
        physical = prefix + logical
        names.append(physical)
        if physical in existing:
            continue
        created = client.create_table(**create_table_kwargs(logical, physical))
        if created["TableDescription"].get("TableStatus") != "ACTIVE":
            # DynamoDB Local or AWS: wait until it is usable (moto answers ACTIVE at once).
            client.get_waiter("table_exists").wait(TableName=physical,
                                                   WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
        if not ttl:
            continue
        client.update_time_to_live(
            TableName=physical,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
    return names
