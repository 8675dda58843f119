"""Purge scaling: one purge run over 1,000 / 10,000 / 100,000 live sessions and a
fixed 100 idle ones; its DynamoDB calls, items read and units must stay flat.

Runs as its own process (``python -m bench.purge_scaling``, started by the
harness) with moto in process (``mock_aws``): the items are many, and nothing
here is a CPU figure. Live sessions are written with BatchWriteItem, 25 at a
time, as ``SessionsRepo.new_item`` shapes them (with a refresh-token digest);
the idle ones through the service, so that they are exactly what logins leave.
Live counts grow cumulatively (1,000, then 9,000 more, then 90,000 more).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

HOUR = 3600
IDLE = 100
BATCH = 25


def _write_live(c: Any, n: int) -> None:
    from chalicelib.security.opaque import REFRESH, digest
    from chalicelib.storage.dynamo import encode_item

    repo, client, table = c.sessions_repo, c.dynamodb(), c.sessions_repo.table.name
    batch: list[dict[str, Any]] = []
    for i in range(n):
        session = c.sessions.new_session(user_id=f"user{i % 5000}", client_id="cf83e1357eefb8bd",
                                         scope="openid profile email",
                                         device={"ip": "192.0.2.10", "user_agent": "bench"})
        item = repo.new_item(session, digest(REFRESH.mint(session.id)))
        batch.append({"PutRequest": {"Item": encode_item(item)}})
        if len(batch) == BATCH or i == n - 1:
            pending: dict[str, Any] = {table: batch}
            while pending:
                pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            batch = []


def _write_idle(c: Any, clock: Any) -> None:
    """Sessions that went idle 11 h ago, made by the service as a login makes them."""
    clock.advance(-11 * HOUR)
    for i in range(IDLE):
        session = c.sessions.new_session(user_id=f"idle{i}", client_id="cf83e1357eefb8bd",
                                         scope="openid profile email",
                                         device={"ip": "192.0.2.10", "user_agent": "bench"})
        c.sessions.create(session, c.sessions.mint_refresh_token(session))
    clock.advance(11 * HOUR)


def run(sizes: list[int]) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from bench.dynamo_meter import DynamoMeter, tables_from_schema
    from chalicelib.clock import FakeClock
    from chalicelib.config import Settings
    from chalicelib.container import Container
    from chalicelib.jobs.purge import purge_idle_sessions
    from chalicelib.storage.schema import create_tables

    results = []
    with mock_aws():
        clock = FakeClock()
        settings = Settings(table_prefix="purge-", keys_secret_name="purge/keys")
        c = Container(settings, clock)
        create_tables(c.dynamodb(), settings.table_prefix)
        meter = DynamoMeter(c.dynamodb(), tables=tables_from_schema(settings.table_prefix),
                            shadow=boto3.client("dynamodb"))
        live = 0
        for size in sizes:
            t0 = time.perf_counter()
            _write_live(c, size - live)
            live = size
            _write_idle(c, clock)
            loaded = time.perf_counter() - t0
            meter.take()
            t1 = time.perf_counter()
            report = purge_idle_sessions(c.sessions_repo, clock)
            purge_wall = time.perf_counter() - t1
            work = meter.take()
            results.append({"live": size, "idle": IDLE, "removed": report.removed,
                            "survived": report.survived, "pages": report.pages,
                            "complete": report.complete, **work.as_dict(),
                            "load_s": loaded, "purge_wall_s_in_moto": purge_wall})
            print(f"  purge with {size} live sessions: {work.round_trips} calls", file=sys.stderr,
                  flush=True)
    return {"idle": IDLE, "runs": results}


def main() -> int:
    sizes = [int(s) for s in (sys.argv[1] if len(sys.argv) > 1 else "1000,10000,100000").split(",")]
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing")
    print(json.dumps(run(sizes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
