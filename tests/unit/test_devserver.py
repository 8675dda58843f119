"""The local runner's pieces that need no server: schedules and their events."""

from __future__ import annotations

import pytest
from chalice import Chalice, Cron, Rate

from devserver import Scheduler, rate_seconds, scheduled_event


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
