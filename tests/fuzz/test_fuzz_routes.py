"""Hostile requests against every route: no 5xx, every answer in its documented
format (SPEC §8). A fixed seed and an example budget keep it bounded in
`make test`; `make fuzz` runs a long campaign (TESSERA_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import collections
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import EXAMPLES, LIVE_EXAMPLES
from tests.fuzz.formats import problems
from tests.fuzz.strategies import requests

HISTOGRAM: collections.Counter[int] = collections.Counter()
# TESSERA_FUZZ_COLLECT=1: record every contract breach instead of stopping at the first
# (for surveying a campaign; `make test` never sets it).
COLLECT = os.environ.get("TESSERA_FUZZ_COLLECT") == "1"
BREACHES: list[str] = []

CAMPAIGN = dict(deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.large_base_example])


def one_request(target: Any, data: st.DataObject) -> None:
    server, account = target
    request = data.draw(requests(server.routes(), account.creds))
    answer = server.send(request)
    HISTOGRAM[answer.status] += 1
    found = problems(request.method, request.path, answer, frozenset(path for path, _ in server.routes()))
    account.heal()
    if COLLECT and found:
        BREACHES.append(f"{found} {request.method} {request.path[:80]} -> {answer.status} {answer.body[:160]!r}")
        return
    assert not found, f"{found}\nrequest: {request.describe()}\nanswer: {answer.status} " \
                      f"{dict(answer.headers)} {answer.body[:400]!r}"


@seed(20261127)
@settings(max_examples=EXAMPLES, **CAMPAIGN)  # type: ignore[arg-type]
@given(data=st.data())
def test_no_request_gets_a_5xx_or_an_undocumented_answer(target: Any, data: st.DataObject) -> None:
    one_request(target, data)


@pytest.mark.e2e
@seed(20261128)
@settings(max_examples=LIVE_EXAMPLES, **CAMPAIGN)  # type: ignore[arg-type]
@given(data=st.data())
def test_the_real_runner_answers_hostile_requests_in_format(live_target: Any, data: st.DataObject) -> None:
    one_request(live_target, data)


def test_every_route_is_fuzzed(target: Any) -> None:
    """The campaign aims at the app's own route table, so a new route is fuzzed too."""
    server, _ = target
    paths = {path for path, _ in server.routes()}
    assert {"/oauth/token", "/v1/tokens/{pat_id}", "/device", "/v1/sessions/{session_id}"} <= paths
