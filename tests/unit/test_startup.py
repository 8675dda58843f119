"""The collector is paused for a cold start on Lambda and back after the first
invocation, with what the cold start made frozen (chalicelib/startup.py)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib import startup

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def collector() -> Iterator[None]:
    yield
    startup._paused = False
    gc.enable()
    gc.unfreeze()


def test_off_lambda_nothing_changes(collector: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    assert startup.pause() is False
    assert gc.isenabled()


def test_on_lambda_the_first_invocation_ends_the_pause(collector: None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "tessera-test")
    gc.unfreeze()
    assert startup.pause() is True
    assert not gc.isenabled()
    seen = []
    assert startup.middleware("event", lambda e: seen.append(gc.isenabled()) or "answer") == "answer"
    assert seen == [False]                      # the first request ran paused
    assert gc.isenabled() and gc.get_freeze_count() > 0
    frozen = gc.get_freeze_count()
    startup.middleware("event", lambda e: None)  # later invocations change nothing
    assert gc.get_freeze_count() == frozen


def test_a_failing_first_invocation_ends_the_pause_too(collector: None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "tessera-test")
    startup.pause()

    def fails(event: object) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        startup.middleware("event", fails)
    assert gc.isenabled()


def test_the_app_pauses_at_import_and_resumes_after_its_first_request() -> None:
    code = """
import gc, json, sys
import app
from bench.lambda_http import LambdaContext, LambdaDriver, Request
paused = not gc.isenabled()
event = LambdaDriver(app.app).event(Request("GET", "/.well-known/openid-configuration"))
out = app.app(event, LambdaContext())
print(json.dumps({"paused": paused, "status": out["statusCode"], "enabled": gc.isenabled(),
                  "frozen": gc.get_freeze_count()}))
"""
    env = {**os.environ, "AWS_LAMBDA_FUNCTION_NAME": "tessera-test", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["paused"] is True and result["status"] == 200
    assert result["enabled"] is True and result["frozen"] > 10_000
