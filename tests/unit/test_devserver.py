"""The local runner's pieces that need no server: schedules, their events, the stop signal."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from chalice import Chalice, Cron, Rate

from devserver import Scheduler, StopRequest, rate_seconds, scheduled_event

ROOT = Path(__file__).resolve().parents[2]


class FakeTime:
    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t


def throwaway_app(calls: list[tuple[str, object]]) -> Chalice:
    app = Chalice(app_name="throwaway")

    @app.schedule(Rate(15, unit=Rate.MINUTES))
    def purge(event):
        calls.append(("purge", event))

    @app.schedule("rate(1 hour)", name="hourly")
    def hourly_job(event):
        calls.append(("hourly", event))

    @app.schedule(Cron(0, 3, "*", "*", "?", "*"))
    def nightly(event):
        calls.append(("nightly", event))

    @app.route("/")
    def index():
        return {}

    return app


@pytest.mark.parametrize(("expression", "seconds"), [
    (Rate(15, unit=Rate.MINUTES), 900), (Rate(1, unit=Rate.HOURS), 3600),
    (Rate(2, unit=Rate.DAYS), 172800), ("rate(5 minutes)", 300), ("rate(1 minute)", 60),
    ("cron(0 3 * * ? *)", None), (Cron(0, 3, "*", "*", "?", "*"), None), ("rate(0 minutes)", None),
])
def test_rate_seconds_reads_rate_objects_and_strings(expression, seconds):
    assert rate_seconds(expression) == seconds


def test_scheduler_finds_the_apps_rate_schedules_and_lists_cron_as_skipped():
    scheduler = Scheduler(throwaway_app([]), now=FakeTime())
    assert sorted((job.name, job.every) for job in scheduler.jobs) == [("hourly", 3600), ("purge", 900)]
    assert scheduler.skipped == ["nightly"]


def test_scheduler_invokes_each_handler_at_its_rate_with_a_scheduled_event():
    calls: list[tuple[str, object]] = []
    now = FakeTime()
    scheduler = Scheduler(throwaway_app(calls), now=now)

    assert scheduler.run_due(now.t) == []
    now.t += 899
    assert scheduler.run_due(now.t) == []
    now.t += 1
    assert scheduler.run_due(now.t) == ["purge"]
    name, event = calls[0]
    assert name == "purge"
    assert event.detail_type == "Scheduled Event" and event.source == "aws.events"
    assert event.resources[0].endswith(":rule/purge")

    now.t += 2700
    assert scheduler.run_due(now.t) == ["purge", "hourly"]
    assert [name for name, _ in calls] == ["purge", "purge", "hourly"]


def test_missed_periods_collapse_into_one_run():
    calls: list[tuple[str, object]] = []
    now = FakeTime()
    scheduler = Scheduler(throwaway_app(calls), now=now)
    now.t += 10 * 900
    assert scheduler.run_due(now.t).count("purge") == 1
    purge = next(job for job in scheduler.jobs if job.name == "purge")
    assert purge.due == now.t + 900


def test_a_failing_job_is_logged_and_runs_again_next_period(caplog):
    app = Chalice(app_name="failing")
    runs = []

    @app.schedule(Rate(1, unit=Rate.MINUTES))
    def flaky(event):
        runs.append(event)
        raise RuntimeError("boom")

    now = FakeTime()
    scheduler = Scheduler(app, now=now)
    now.t += 60
    assert scheduler.run_due(now.t) == ["flaky"]
    now.t += 60
    assert scheduler.run_due(now.t) == ["flaky"]
    assert len(runs) == 2
    assert "scheduled function flaky failed" in caplog.text


def test_scheduler_thread_starts_and_stops_without_waiting_for_a_period():
    scheduler = Scheduler(throwaway_app([]))
    scheduler.start()
    scheduler.stop()
    assert scheduler._thread is not None and not scheduler._thread.is_alive()


def test_an_app_without_schedules_has_nothing_to_run():
    app = Chalice(app_name="plain")
    scheduler = Scheduler(app)
    assert scheduler.jobs == [] and scheduler.next_due() is None
    scheduler.start()
    scheduler.stop()


def test_scheduled_event_carries_what_eventbridge_sends():
    event = scheduled_event("purge", 0)
    assert event["time"] == "1970-01-01T00:00:00Z"
    assert {"version", "id", "detail-type", "source", "account", "region", "resources",
            "detail"} <= set(event)


# The runner's SIGINT/SIGTERM handler, in a child process: a copy of the signal
# is delivered at every line the handler runs (as make forwarding the group's
# SIGTERM can), so a handler that takes a lock, as Event.set() does, deadlocks.
NESTED_SIGNALS = r"""
import signal, sys
from devserver import StopRequest

stop = StopRequest()
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
delivered = []

def mid_handler(frame, event, arg):
    if event == "line" and len(delivered) < 100:
        delivered.append(frame.f_code.co_name)
        signal.raise_signal(signal.SIGINT)
    return mid_handler

def watch(frame, event, arg):
    inside = frame.f_code is StopRequest.__call__.__code__ or (
        frame.f_back is not None and frame.f_back.f_trace is mid_handler)
    return mid_handler if event == "call" and inside else None

sys.settrace(watch)
signal.raise_signal(signal.SIGTERM)
sys.settrace(None)
stop.wait()
print(signal.Signals(stop.signum).name, len(delivered) > 0)
"""


def test_a_signal_arriving_inside_the_stop_handler_does_not_deadlock_it():
    done = subprocess.run([sys.executable, "-c", NESTED_SIGNALS], cwd=ROOT, capture_output=True,
                          text=True, timeout=20, check=False)
    assert done.returncode == 0, done.stderr
    name, nested = done.stdout.split()
    assert name in ("SIGTERM", "SIGINT") and nested == "True"


def test_the_stop_request_keeps_the_first_signal_and_wait_returns_once_set():
    stop = StopRequest()
    stop(signal.SIGTERM, None)
    stop(signal.SIGINT, None)
    stop.wait()
    assert stop.signum == signal.SIGTERM
