"""Password reset timing (SPEC §11): the work behind ``POST /v1/password-reset``
(``PasswordReset.request``) for an address an account uses and for one nobody
uses, measured in the same process, interleaved, against moto's DynamoDB and SES.

The service does the same work for both (the same reads and writes, one mail
each: a reset link, or a note that no account uses the address); this measures
what is left of a difference. Both kinds alternate (so drift on the machine falls
on both), after both paths are warm, and each pair has an address and a source
address of its own (no throttle engages).

    python -m bench.reset_timing [--requests 200]

Prints one JSON line: per kind the median and the 90th percentile in ms, the
ratio of the medians, and a rank test's two-sided p-value (Mann-Whitney U, normal
approximation): a large p means no measurable difference.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import time
from typing import Any


def _mann_whitney_p(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test (normal approximation, ties averaged)."""
    pooled = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks = [0.0] * len(pooled)
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    r_a = sum(r for r, (_, g) in zip(ranks, pooled, strict=True) if g == 0)
    n1, n2 = len(a), len(b)
    u = r_a - n1 * (n1 + 1) / 2
    mean, sd = n1 * n2 / 2, math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    z = (u - mean) / sd if sd else 0.0
    return math.erfc(abs(z) / math.sqrt(2))


def run(requests: int) -> dict[str, Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    from moto import mock_aws

    from chalicelib import container as container_module
    from chalicelib.clock import SystemClock
    from chalicelib.config import Settings
    from chalicelib.storage.dynamo import aws_client
    from chalicelib.storage.schema import create_tables

    with mock_aws():
        settings = dataclasses.replace(Settings(), issuer="https://tessera.bench",
                                       table_prefix="bench-", scrypt_log_n=10,
                                       mail_from="Tessera <no-reply@tessera.bench>")
        c = container_module.Container(settings, SystemClock())
        create_tables(c.dynamodb(), settings.table_prefix)
        aws_client("sesv2").create_email_identity(EmailIdentity="no-reply@tessera.bench")
        for i in range(requests + 10):
            c.identities.create_user(f"user{i}", "a long bench passphrase",
                                     email=f"user{i}@bench.example")
        times: dict[str, list[float]] = {"known": [], "unknown": []}
        reset = c.password_reset
        # Warm both paths (imports, templates, the SES client) before measuring.
        for i in range(10):
            reset.request(f"user{requests + i}@bench.example", source=f"192.0.2.{i}",
                          issuer=settings.issuer)
            reset.request(f"warm{i}@bench.example", source=f"192.0.2.{i}", issuer=settings.issuer)
        for i in range(requests):
            # A source and an address of their own each: no throttle engages.
            source = f"198.51.{i // 250}.{i % 250}"
            for kind, address in (("known", f"user{i}@bench.example"),
                                  ("unknown", f"nobody{i}@bench.example")):
                start = time.perf_counter()
                reset.request(address, source=source, issuer=settings.issuer)
                times[kind].append((time.perf_counter() - start) * 1000)

    def summary(values: list[float]) -> dict[str, float]:
        cuts = statistics.quantiles(values, n=10)
        return {"median_ms": round(statistics.median(values), 2), "p90_ms": round(cuts[8], 2)}

    known, unknown = summary(times["known"]), summary(times["unknown"])
    return {"requests_each": requests, "known": known, "unknown": unknown,
            "median_ratio": round(known["median_ms"] / unknown["median_ms"], 3),
            "mann_whitney_p": round(_mann_whitney_p(times["known"], times["unknown"]), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(run(args.requests)))


if __name__ == "__main__":
    main()
