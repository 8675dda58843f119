"""Modeled cost per million requests of an endpoint, from measured figures and
the list prices of ``bench.prices``.

* Lambda duration = CPU time measured here, scaled to the function's share of a
  vCPU (Lambda gives one full vCPU at 1,769 MB and a proportional share below),
  plus an assumed in-region latency per DynamoDB round trip; billed per 1 ms,
  at the function's memory size (``.chalice/config.json``). The CPU time is this
  machine's: Graviton (arm64) and Lambda's x86 cores are not modeled separately.
* API Gateway REST: one request each. DynamoDB on-demand: the request units
  computed by ``bench.dynamo_meter``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench import prices

ROOT = Path(__file__).resolve().parent.parent
FULL_VCPU_MB = 1769
# Assumed wall time of one DynamoDB round trip from Lambda in the same region:
# single-digit milliseconds is what DynamoDB advertises; a conservative middle.
DYNAMODB_ROUND_TRIP_MS = 5.0


def function_memory_mb() -> int:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    return int(config.get("lambda_memory_size", 128))


def duration_ms(cpu_ms: float, round_trips: int, memory_mb: int) -> int:
    share = min(1.0, memory_mb / FULL_VCPU_MB)
    return max(1, math.ceil(cpu_ms / share + round_trips * DYNAMODB_ROUND_TRIP_MS))


def per_million(cpu_ms: float, round_trips: int, rru: float, wru: float,
                memory_mb: int) -> dict[str, Any]:
    billed = duration_ms(cpu_ms, round_trips, memory_mb)
    gb_seconds = billed / 1000 * memory_mb / 1024
    lam = {arch: 1e6 * gb_seconds * price + prices.LAMBDA_PER_MILLION_REQUESTS
           for arch, price in prices.LAMBDA_PER_GB_SECOND.items()}
    dynamodb = rru * prices.DYNAMODB_PER_MILLION_RRU + wru * prices.DYNAMODB_PER_MILLION_WRU
    gateway = prices.API_GATEWAY_REST_PER_MILLION
    return {"billed_ms": billed, "lambda_arm64": lam["arm64"], "lambda_x86_64": lam["x86_64"],
            "api_gateway": gateway, "dynamodb": dynamodb,
            "total_arm64": lam["arm64"] + gateway + dynamodb,
            "total_x86_64": lam["x86_64"] + gateway + dynamodb}
