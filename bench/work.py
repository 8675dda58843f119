"""DynamoDB work per request of every case: calls, items read, request units.

Each case is served once to warm the instance's caches, then ``repeats`` times
under the meter; the calls must be the same every time (they are what the
budget tests assert). Units are computed from item sizes (see
``bench.dynamo_meter``). The container's clock (``SteppedClock``) is moved a
second before each measured request.

A session item grows by one 16-character fingerprint per rotation (reuse
detection keeps them all), so the refresh and the reads of a session cost more
late in a session than early: ``long_session`` measures both after the number
of rotations a client makes in a whole session that refreshes at every
access-token expiry (24 h / 5 min = 288).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.cases import Case, World
from bench.dynamo_meter import DynamoMeter, Work


def measure_case(world: World, meter: DynamoMeter, c: Case, repeats: int) -> dict[str, Any]:
    clock = world.c.clock
    # Past the client directory's minute: the warm-up refills it, as an instance's
    # first request of a client does, and the measured requests find it warm.
    clock.advance(61)
    c.serve(world)
    works: list[Work] = []
    for _ in range(repeats):
        # A second apart, so that what a request writes (last use, idle deadline,
        # and so the index keys) differs from the request before, as in real use.
        clock.advance(1)
        request = c.request(world)
        meter.take()
        c.check(world, world.send(request))
        works.append(meter.take())
    calls = {tuple(sorted(w.calls.items())) for w in works}
    last = works[-1].as_dict()
    last["deterministic"] = len(calls) == 1
    last["rru"] = max(w.rru for w in works)
    last["wru"] = max(w.wru for w in works)
    return last


def measure(world: World, meter: DynamoMeter, cases: list[Case], repeats: int = 3,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    out = {c.name: measure_case(world, meter, c, repeats) for c in cases}
    log(f"  {len(cases)} cases metered")
    return out


def long_session(world: World, meter: DynamoMeter, rotations: int) -> dict[str, Any]:
    """Refresh and ``/v1/me`` on a session that has rotated ``rotations`` times."""
    from bench.lambda_http import Request
    from chalicelib.security.opaque import REFRESH

    tokens = world.fresh_session()
    token = tokens["refresh_token"]
    for _ in range(rotations - 1):
        token = world.expect(world.form("/oauth/token", grant_type="refresh_token",
                                        client_id=world.cli, refresh_token=token)).json()["refresh_token"]
    world.c.clock.advance(1)
    meter.take()
    last = world.expect(world.form("/oauth/token", grant_type="refresh_token", client_id=world.cli,
                                   refresh_token=token)).json()
    refreshed = meter.take()
    world.expect(Request("GET", "/v1/me", world.bearer(last["access_token"])))
    me = meter.take()
    item = world.c.sessions_repo.get_item(REFRESH.parse(tokens["refresh_token"]))
    return {"rotations": rotations, "refresh": refreshed.as_dict(), "me_jwt": me.as_dict(),
            "session_item_retired_fingerprints": len(item.get("rt_retired") or ()) if item else 0}
