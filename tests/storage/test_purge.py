"""The idle purge reads only what it removes (SPEC §3, §9)."""

import pytest

from chalicelib.jobs.purge import purge_idle_sessions

HOUR = 3600


class CallCounter:
    """Counts DynamoDB operations and the items they return, via botocore events."""

    def __init__(self, client):
        self.calls: dict[str, int] = {}
        self.items_read = 0
        client.meta.events.register("before-call.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def _before(self, model, **_):
        self.calls[model.name] = self.calls.get(model.name, 0) + 1

    def _after(self, model, parsed, **_):
        if model.name in ("Query", "Scan"):
            self.items_read += len(parsed.get("Items", []))


def make_sessions(ctr, n):
    made = []
    for i in range(n):
        session = ctr.sessions.new_session(user_id=f"user{i % 7}", client_id="cli", scope="openid")
        ctr.sessions.create(session, None)
        made.append(session.id)
    return made


@pytest.fixture
def counter(ctr):
    return CallCounter(ctr.dynamodb())


def test_purge_removes_exactly_the_idle_sessions_and_never_reads_live_ones(ctr, clock, counter):
    idle = make_sessions(ctr, 5)
    clock.advance(9 * HOUR)
    live = make_sessions(ctr, 60)
    clock.advance(HOUR + 1)   # the first five are now idle for more than 10 h
    counter.calls.clear()
    report = purge_idle_sessions(ctr.sessions_repo, clock)
    assert report.removed == 5 and report.survived == 0
    assert all(ctr.sessions_repo.get_item(s) is None for s in idle)
    assert all(ctr.sessions_repo.get_item(s) is not None for s in live)
    assert "Scan" not in counter.calls
    assert counter.items_read == 5           # only the idle ones came back from the index
    assert counter.calls["DeleteItem"] == 5


def test_purge_is_idempotent(ctr, clock):
    make_sessions(ctr, 3)
    clock.advance(10 * HOUR)
    assert purge_idle_sessions(ctr.sessions_repo, clock).removed == 3
    assert purge_idle_sessions(ctr.sessions_repo, clock).removed == 0


def test_a_session_refreshed_during_the_purge_survives(ctr, clock):
    from chalicelib.security.opaque import REFRESH

    session = ctr.sessions.new_session(user_id="u", client_id="cli", scope="openid")
    token = REFRESH.mint(session.id)
    ctr.sessions.create(session, token)
    clock.advance(10 * HOUR)
    page, _ = ctr.sessions_repo.idle_page(ctr.sessions_repo.shard_of(session.id), clock.now(), None, 10)
    assert [i["id"] for i in page] == [session.id]      # the purge has picked it...
    clock.t -= 1                                          # ...and a refresh lands a second before
    ctr.sessions.rotate(token, "cli")
    clock.t += 1
    assert ctr.sessions_repo.delete_if_idle(session.id, clock.now()) is False
    assert ctr.sessions.live(session.id) is not None


def test_purge_stops_before_its_time_limit_and_the_next_run_finishes(ctr, clock):
    make_sessions(ctr, 4)
    clock.advance(10 * HOUR)
    budget = iter([60_000, 1_000] + [60_000] * 100)
    first = purge_idle_sessions(ctr.sessions_repo, clock, lambda: next(budget))
    assert first.complete is False
    second = purge_idle_sessions(ctr.sessions_repo, clock)
    assert first.removed + second.removed == 4 and second.complete


def test_purge_logs_one_structured_line(ctr, clock, audit_events):
    make_sessions(ctr, 2)
    clock.advance(10 * HOUR)
    audit_events()
    purge_idle_sessions(ctr.sessions_repo, clock)
    lines = [e for e in audit_events() if e["event"] == "purge"]
    assert len(lines) == 1 and lines[0]["removed"] == 2


class _NearlyOutOfTime:
    """A Lambda context with less time left than the purge keeps in reserve."""

    def get_remaining_time_in_millis(self):
        return 1


def test_the_scheduled_handler_stops_when_its_invocation_runs_out_of_time(ctr):
    from chalice.app import CloudWatchEvent

    from app import purge_idle_sessions as handler

    event = {"version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events",
             "account": "123456789012", "time": "2026-11-27T12:00:00Z", "region": "us-east-1",
             "resources": [], "detail": {}}
    assert CloudWatchEvent(event, None).context is None
    assert handler(event, None)["complete"] is True
    assert handler(event, _NearlyOutOfTime())["complete"] is False
