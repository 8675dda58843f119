"""The local runner's pieces that need no AWS: schedules, their events, the stop signal,
and the HTTP server's limits on what one client can hold."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path

import pytest
from chalice import Chalice, Cron, Rate

from devserver import (
    Limits,
    LocalHTTPServer,
    Scheduler,
    StopRequest,
    make_http_server,
    rate_seconds,
    scheduled_event,
    stop_within,
)

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


# --------------------------------------------------------------------------
# what one client can hold: read timeouts, a body cap, a bound on threads
# (a real server on 127.0.0.1 in this process, with a throwaway app and short limits)
# --------------------------------------------------------------------------

@contextlib.contextmanager
def serving(limits: Limits) -> Iterator[LocalHTTPServer]:
    app = Chalice(app_name="limits")

    @app.route("/")
    def index():
        return {"ok": True}

    @app.route("/echo", methods=["POST"], content_types=["application/octet-stream"])
    def echo():
        return {"length": len(app.current_request.raw_body)}

    web = make_http_server(app, 0, limits=limits)
    server = web.server
    assert isinstance(server, LocalHTTPServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def connect(server: LocalHTTPServer) -> socket.socket:
    return socket.create_connection(server.server_address[:2], timeout=10)


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def get(server: LocalHTTPServer, path: str = "/") -> int:
    conn = HTTPConnection(*server.server_address[:2], timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def test_a_body_announced_over_the_cap_is_a_413_before_it_is_read():
    with serving(Limits(request_timeout=30)) as server, connect(server) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: 1000000000\r\n\r\nabc")
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"Connection: close" in answer and b"application/problem+json" in answer
    assert time.monotonic() - started < 5


def test_a_body_shorter_than_announced_is_a_408_within_the_timeout_and_the_connection_closes():
    with serving(Limits(request_timeout=1)) as server, connect(server) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: 100\r\n\r\nabc")
        answer = read_until_closed(sock)
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"Connection: close" in answer
    assert 0.9 <= elapsed < 4


def test_a_body_that_ends_before_its_content_length_is_a_400():
    with serving(Limits(request_timeout=10)) as server, connect(server) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: 100\r\n\r\nabc")
        sock.shutdown(socket.SHUT_WR)
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"ended before its Content-Length" in answer


def test_a_client_sending_a_byte_at_a_time_is_disconnected_at_the_timeout():
    """Each byte arrives well within a socket timeout; the request as a whole does not."""
    request = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n" \
              b"Content-Length: 50\r\n\r\n" + b"x" * 50
    with serving(Limits(request_timeout=1)) as server, connect(server) as sock:
        started = time.monotonic()
        closed_after = None
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed_after = time.monotonic() - started
                break
            sock.settimeout(0.2)
            try:
                if sock.recv(65536) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                pass
            except OSError:
                closed_after = time.monotonic() - started
                break
    assert closed_after is not None, "the trickling client was served to the end"
    assert closed_after < 3


def test_a_kept_alive_connection_still_serves_one_request_after_another():
    with serving(Limits(request_timeout=2)) as server:
        conn = HTTPConnection(*server.server_address[:2], timeout=10)
        for _ in range(3):
            conn.request("POST", "/echo", body=b"12345",
                         headers={"Content-Type": "application/octet-stream"})
            response = conn.getresponse()
            assert response.status == 200 and json.loads(response.read()) == {"length": 5}
        conn.close()


def handler_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("Thread-") and t.daemon)


def test_slow_clients_hold_no_more_threads_than_the_bound_and_a_normal_request_is_answered():
    slow_clients, bound = 30, 4
    with serving(Limits(request_timeout=1, max_connections=bound, queue_wait=0.1)) as server:
        before = threading.active_count()
        socks = [connect(server) for _ in range(slow_clients)]
        try:
            for sock in socks:
                sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
            most = 0
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                most = max(most, threading.active_count() - before)
                time.sleep(0.02)
            statuses = []
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                statuses.append(get(server))
                if statuses[-1] == 200:
                    break
        finally:
            for sock in socks:
                sock.close()
    assert most <= bound
    assert statuses[-1] == 200 and set(statuses) <= {200, 503}


def test_a_connection_beyond_the_bound_is_a_503_with_retry_after():
    with serving(Limits(request_timeout=5, max_connections=1, queue_wait=0.1)) as server, \
            connect(server) as holder, connect(server) as extra:
        holder.sendall(b"GET / HTTP/1.1\r\n")   # holds the one thread, unfinished
        answer = read_until_closed(extra)
    assert answer.startswith(b"HTTP/1.1 503 ")
    assert b"Retry-After: 1" in answer and b"application/problem+json" in answer


def test_finished_connections_leave_no_thread_behind():
    with serving(Limits(request_timeout=5)) as server:
        before = threading.active_count()
        assert [get(server) for _ in range(20)] == [200] * 20
        deadline = time.monotonic() + 5
        while threading.active_count() > before and time.monotonic() < deadline:
            time.sleep(0.02)
        assert threading.active_count() == before
        # socketserver keeps no list of threads (to join at close) that would grow per connection.
        kept = vars(server).get("_threads")
        assert kept is None or len(kept) == 0


def test_the_stop_gives_up_on_a_step_that_does_not_end_in_time():
    never = threading.Event()
    started = time.monotonic()
    late = stop_within(0.3, {"stuck": never.wait, "quick": lambda: None})
    assert late == ["stuck"] and time.monotonic() - started < 2
    never.set()
