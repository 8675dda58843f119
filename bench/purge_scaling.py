"""Purge scaling: one purge run over 1,000 / 10,000 / 100,000 live sessions and a
fixed 100 idle ones; its DynamoDB calls, items read and units must stay flat.

Runs as its own process (``python -m bench.purge_scaling``, started by the
harness) with moto in process (``mock_aws``): the items are many, and nothing
here is a CPU figure. Live sessions are written with BatchWriteItem, 25 at a
time, as ``SessionsRepo.new_item`` shapes them (with a refresh-token digest);
the idle ones through the service, so that they are exactly what logins leave.
Live counts grow cumulatively (1,000, then 9,000 more, then 90,000 more).

The PAT expiry-notice job (``jobs/expiry_notices.py``) is measured the same way:
one run over 1,000 / 10,000 / 100,000 PATs that expire months ahead and a fixed
100 that expire in 5 days (one notice each), all written with BatchWriteItem as
``PatsRepo`` shapes them (a generate's transaction would make moto copy the
table). Its reads must stay flat too.
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
DAY = 86400
DUE = 100           # PATs with a notice due at each notice run
DUE_OWNERS = 10     # spread over owners below the per-user PAT cap


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


def _batch_put(client: Any, table: str, items: list[dict[str, Any]]) -> None:
    from chalicelib.storage.dynamo import encode_item

    for i in range(0, len(items), BATCH):
        pending: dict[str, Any] = {table: [{"PutRequest": {"Item": encode_item(item)}}
                                           for item in items[i:i + BATCH]]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def _pat_items(c: Any, start: int, n: int, owners: list[str], days: Any) -> list[dict[str, Any]]:
    """PAT items exactly as ``PatsRepo.create`` stores them (without the per-owner counter,
    which the job never reads), expiring ``days(i)`` days from now."""
    from chalicelib.security.opaque import PAT, digest
    from chalicelib.storage.pats import Pat

    now, repo = c.clock.now(), c.pats_repo
    items = []
    for i in range(start, start + n):
        pat_id, owner = f"{i:016d}", owners[i % len(owners)]
        token = PAT.mint(owner + pat_id)
        pat = Pat(id=pat_id, owner=owner, description=f"bench {i}", token_hash=digest(token),
                  last_four=token[-4:], scopes=("api:read",), created_at=now,
                  expires_on=None, expires_at=now + days(i) * DAY)
        items.append(repo._item(pat))
    return items


def _write_later_pats(c: Any, start: int, n: int) -> None:
    """PATs expiring 60 to 400 days ahead: no notice due, and never read by the job."""
    owners = [f"{i:016d}" for i in range(5000)]
    _batch_put(c.dynamodb(), c.pats_repo.table.name,
               _pat_items(c, start, n, owners, lambda i: 60 + i % 340))


def _write_due_pats(c: Any, owners: list[Any], round_: int) -> None:
    """PATs expiring in 5 days (their 7-day notice is due), of owners with an address."""
    _batch_put(c.dynamodb(), c.pats_repo.table.name,
               _pat_items(c, 10**9 + round_ * DUE, DUE, [u.id for u in owners], lambda i: 5))


class _CountingNotifier:
    """Sends nothing: the figures are the job's DynamoDB work, not a mail service's."""

    def __init__(self) -> None:
        self.sent = 0

    def expiry_notice(self, owner: Any, pat: Any, threshold_days: int) -> None:
        self.sent += 1


def run_notices(sizes: list[int]) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from bench.dynamo_meter import DynamoMeter, tables_from_schema
    from chalicelib.clock import FakeClock
    from chalicelib.config import Settings
    from chalicelib.container import Container
    from chalicelib.jobs.expiry_notices import send_expiry_notices
    from chalicelib.models import User, user_id_for
    from chalicelib.storage.schema import create_tables

    results = []
    with mock_aws():
        clock = FakeClock()
        settings = Settings(table_prefix="notices-", keys_secret_name="notices/keys")
        c = Container(settings, clock)
        create_tables(c.dynamodb(), settings.table_prefix)
        owners = []
        for i in range(DUE_OWNERS):
            user = User(id=user_id_for(f"owner{i}"), username=f"owner{i}",
                        email=f"owner{i}@example.com")
            c.users.create(user)
            owners.append(user)
        meter = DynamoMeter(c.dynamodb(), tables=tables_from_schema(settings.table_prefix),
                            shadow=boto3.client("dynamodb"))
        written = 0
        for round_, size in enumerate(sizes):
            t0 = time.perf_counter()
            _write_later_pats(c, written, size - written)
            written = size
            _write_due_pats(c, owners, round_)
            loaded = time.perf_counter() - t0
            meter.take()
            notifier = _CountingNotifier()
            t1 = time.perf_counter()
            report = send_expiry_notices(c.pats_repo, c.users, notifier, clock)
            wall = time.perf_counter() - t1
            work = meter.take()
            results.append({"tokens": size, "due": DUE, "sent": report.sent,
                            "examined": report.examined, "pages": report.pages,
                            "complete": report.complete, **work.as_dict(),
                            "load_s": loaded, "job_wall_s_in_moto": wall})
            print(f"  expiry notices with {size} PATs: {work.round_trips} calls", file=sys.stderr,
                  flush=True)
    return {"due": DUE, "runs": results}


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
    out = run(sizes)
    out["notices"] = run_notices(sizes)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
