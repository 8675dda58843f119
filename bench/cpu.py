"""CPU per warm request, in the API process, with DynamoDB served by another process.

For each case: a few unmeasured requests (the instance is warm), then many
measured ones. Each sample is ``time.process_time()`` around the handler call
``app(event, context)`` alone: building the event (API Gateway's work) and the
case's setup requests stay outside. The figure includes the client side of
every DynamoDB call (botocore building, signing and parsing the request, the
socket work), and excludes moto's own work, which runs in its own process.
The part spent inside the DynamoDB client is measured too (``BotocoreTime``), so
the service's own CPU (SPEC §9: "DynamoDB excluded") is the difference.

After a case's measured samples, with ``Bare`` given, a few more of its requests
are served unmeasured while their DynamoDB calls are recorded, then replayed on a
bare default client (``bench.bare``): the CPU of the bare call(s) per request,
against which the request's CPU is a ratio (issue 16: ≤ 1.25 where budgeted).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.bare import CallRecorder, replay
from bench.cases import Case, World
from bench.lambda_http import LambdaContext, LambdaDriver, response_of

WARMUP = 3
# Rounds of (measured requests, bare replays) per case compared with its bare calls.
BARE_ROUNDS = 5


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class BotocoreTime:
    """CPU time spent inside the DynamoDB client's calls: the whole of each API call
    (``client._make_api_call``, which every operation method goes through), from
    validating and serialising its parameters to parsing the response and raising
    the error of a failed condition. botocore's events (``before-parameter-build`` to
    ``after-call``) would leave out the call's own prologue and epilogue, about
    20 µs a call on this machine, and count them as the service's."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.total = 0.0
        inner = client._make_api_call

        def timed(operation_name: str, api_params: dict[str, Any]) -> Any:
            start = time.process_time()
            try:
                return inner(operation_name, api_params)
            finally:
                self.total += time.process_time() - start

        client._make_api_call = timed

    def take(self) -> float:
        total, self.total = self.total, 0.0
        return total

    def close(self) -> None:
        # the class's method again (the instance attribute set above hid it)
        del self.client._make_api_call


@dataclass
class Samples:
    cpu: list[float] = field(default_factory=list)          # whole request
    botocore: list[float] = field(default_factory=list)     # of which inside DynamoDB calls
    wall: list[float] = field(default_factory=list)
    companion: list[float] = field(default_factory=list)    # e.g. the password hash alone


def cpu_samples(world: World, driver: LambdaDriver, case: Case, n: int, inside: BotocoreTime,
                companion: Callable[[], None] | None = None, out: Samples | None = None,
                warmup: int = WARMUP) -> Samples:
    """CPU of ``n`` requests of a case in a row (added to ``out``), as a warm instance
    serves a stream of them; then ``companion`` timed ``n`` times in a row. The caller
    alternates such rounds, so that drift of the machine hits both alike, and neither
    runs with the caches the other left."""
    for _ in range(warmup):
        case.serve(world)
    out = out if out is not None else Samples()
    gc.collect()
    for _ in range(n):
        event = driver.event(case.request(world))
        context = LambdaContext()
        inside.take()
        c0, w0 = time.process_time(), time.perf_counter()
        response = driver.app(event, context)
        c1, w1 = time.process_time(), time.perf_counter()
        out.botocore.append(inside.take())
        case.check(world, response_of(response))
        out.cpu.append(c1 - c0)
        out.wall.append(w1 - w0)
    if companion is not None:
        for _ in range(n):
            c0 = time.process_time()
            companion()
            out.companion.append(time.process_time() - c0)
    return out


@dataclass
class Bare:
    """What the bare-call replay needs: a default client (``boto3.client("dynamodb")``),
    an unhooked shadow client for pre-images, the tables' keys, and how many requests
    of a case to record (``costly`` for cases whose setup hashes a password)."""

    client: Any
    shadow: Any
    tables: dict[str, Any]
    requests: int = 30
    costly: int = 5


def bare_samples(world: World, driver: LambdaDriver, case: Case, n: int,
                 recorder: CallRecorder, bare: Bare) -> tuple[list[float], int]:
    """Serve ``n`` more requests of a case (unmeasured) recording their DynamoDB calls,
    then replay them on the bare client: (CPU of each request's bare calls, calls per
    request)."""
    requests = []
    for _ in range(n):
        event = driver.event(case.request(world))
        recorder.start()
        try:
            response = driver.app(event, LambdaContext())
        finally:
            calls = recorder.stop()
        case.check(world, response_of(response))
        requests.append(calls)
    return replay(bare.client, bare.shadow, requests), max(len(r) for r in requests)


def _ms(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values) * 1000, "p10": quantile(values, 0.1) * 1000,
            "p90": quantile(values, 0.9) * 1000}


def summarize(s: Samples) -> dict[str, Any]:
    own = [c - b for c, b in zip(s.cpu, s.botocore, strict=True)]
    out: dict[str, Any] = {"n": len(s.cpu), "cpu_ms": _ms(s.cpu), "botocore_ms": _ms(s.botocore),
                           "own_cpu_ms": _ms(own), "wall_ms_median": statistics.median(s.wall) * 1000,
                           "wall_ms_max": max(s.wall) * 1000}
    if s.companion:
        out["companion_ms"] = _ms(s.companion)
    return out


def measure(world: World, driver: LambdaDriver, client: Any, cases: list[Case], iterations: int,
            costly_iterations: int, companions: dict[str, Callable[[], None]] | None = None,
            log: Callable[[str], None] = print, bare: Bare | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    inside = BotocoreTime(client)
    recorder = CallRecorder(client, bare.shadow, bare.tables) if bare is not None else None
    try:
        for case in cases:
            n = costly_iterations if case.costly_setup else iterations
            started = time.perf_counter()
            replayed = bare is not None and recorder is not None and case.replay_bare
            # A case compared with its bare calls alternates between the two in
            # rounds, so that the machine's drift over the case hits both alike.
            rounds = BARE_ROUNDS if replayed else 1
            samples, sums, calls = Samples(), [], 0
            companion = (companions or {}).get(case.name)
            for r in range(rounds):
                share = n // rounds + (1 if r < n % rounds else 0)
                # Every round starts warm: the bare replay before it ran other code
                # (a case whose setup is costly warms up once).
                cpu_samples(world, driver, case, share, inside, companion, samples,
                            warmup=WARMUP if r == 0 or not case.costly_setup else 0)
                if replayed:
                    assert bare is not None and recorder is not None
                    requests = bare.costly if case.costly_setup else bare.requests
                    part, most = bare_samples(world, driver, case,
                                              max(1, requests // rounds), recorder, bare)
                    sums += part
                    calls = max(calls, most)
            result = out[case.name] = summarize(samples)
            note = ""
            if calls and sums:
                result["bare_ms"] = _ms(sums)
                result["bare_calls"] = calls
                result["bare_ratio"] = result["cpu_ms"]["median"] / result["bare_ms"]["median"]
                note = f", {result['bare_ratio']:.2f} × its bare call(s)"
            log(f"  {case.name}: {result['cpu_ms']['median']:.3f} ms CPU{note} "
                f"({n} requests, {time.perf_counter() - started:.0f} s)")
    finally:
        inside.close()
        if recorder is not None:
            recorder.close()
    return out


def botocore_floor(client: Any, table: str, n: int) -> dict[str, Any]:
    """CPU of the smallest DynamoDB calls through the same client: a GetItem of a
    missing item and an UpdateItem of a one-attribute item (the floor under every
    endpoint that makes a round trip)."""
    get, update = [], []
    for i in range(n):
        c0 = time.process_time()
        client.get_item(TableName=table, Key={"pk": {"S": "bench#floor"}}, ConsistentRead=True)
        c1 = time.process_time()
        client.update_item(TableName=table, Key={"pk": {"S": "bench#floor"}},
                           UpdateExpression="SET n = :n", ExpressionAttributeValues={":n": {"N": str(i)}})
        c2 = time.process_time()
        get.append(c1 - c0)
        update.append(c2 - c1)
    client.delete_item(TableName=table, Key={"pk": {"S": "bench#floor"}})
    return {"n": n, "get_item_ms": _ms(get), "update_item_ms": _ms(update)}


def scrypt_verification(password: str, encoded: str) -> Callable[[], None]:
    """One password verification by itself, as the password grant does it."""
    from chalicelib.security.passwords import verify_password

    def verify() -> None:
        if not verify_password(password, encoded):
            raise AssertionError("the password does not verify")

    return verify
