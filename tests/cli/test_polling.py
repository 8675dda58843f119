"""The device flow's polling schedule (RFC 8628 §3.5) on a fake clock: no test sleeps."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from tessera_cli.polling import LoginEnded, PollFailed, PollSchedule, Transient, poll_until_done


class Clock:
    """Fake monotonic time; ``sleep`` moves it. ``rate`` < 1 is a client clock that runs
    slow against the server's (drift): the server's time is ``now / rate``."""

    def __init__(self, rate: float = 1.0) -> None:
        self.now = 1000.0
        self.rate = rate
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds

    def server_time(self) -> float:
        return self.now / self.rate


class Server:
    """The token endpoint's side: answers from a script, records when each poll came."""

    def __init__(self, clock: Clock, answers: list[Any]) -> None:
        self.clock, self.answers, self.polls = clock, list(answers), []

    def __call__(self) -> tuple[int, Any]:
        self.polls.append(self.clock.server_time())
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


PENDING = (400, {"error": "authorization_pending"})
TOKENS = (200, {"access_token": "at", "token_type": "Bearer", "refresh_token": "tsr_x"})


def run(clock: Clock, answers: list[Any], interval: int = 5, expires_in: int = 300) -> tuple[Any, Server]:
    server = Server(clock, answers)
    schedule = PollSchedule.start(interval, expires_in, clock())
    return poll_until_done(server, schedule, clock, clock.sleep), server


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def test_polls_after_the_interval_plus_a_pad_until_approved():
    clock = Clock()
    tokens, server = run(clock, [PENDING, PENDING, TOKENS])
    assert tokens["access_token"] == "at"
    assert clock.sleeps == [6.0, 6.0, 6.0]
    assert len(server.polls) == 3


def test_a_client_clock_running_ten_percent_fast_still_never_polls_too_early():
    # The client's 6 s are 5.45 s of the server's: still more than the 5 s interval.
    clock = Clock(rate=1.1)
    _, server = run(clock, [PENDING] * 5 + [TOKENS])
    assert min(gaps(server.polls)) >= 5.0
    assert server.polls[0] - 1000 / 1.1 >= 5.0


def test_the_pad_is_a_tenth_of_a_long_interval():
    clock = Clock()
    run(clock, [TOKENS], interval=30)
    assert clock.sleeps == [33.0]


def test_slow_down_adds_five_seconds_to_this_and_every_later_poll():
    clock = Clock()
    run(clock, [(400, {"error": "slow_down"}), PENDING, PENDING, TOKENS])
    assert clock.sleeps == [6.0, 11.0, 11.0, 11.0]


def test_slow_down_honours_a_larger_interval_named_by_the_server():
    clock = Clock()
    run(clock, [(400, {"error": "slow_down", "interval": 20}), TOKENS])
    assert clock.sleeps == [6.0, 22.0]


def test_slow_downs_accumulate():
    clock = Clock()
    run(clock, [(400, {"error": "slow_down"}), (400, {"error": "slow_down"}), TOKENS])
    assert clock.sleeps == [6.0, 11.0, 16.5]


def test_no_poll_is_sent_after_the_code_expired_locally():
    clock = Clock()
    with pytest.raises(LoginEnded) as ended:
        run(clock, [PENDING] * 100, interval=5, expires_in=30)
    assert ended.value.reason == "expired"
    assert "tessera login" in str(ended.value)
    # Polls at +6, +12, +18, +24; the next (+30) would be at the expiry: not sent.
    assert len(clock.sleeps) == 4
    assert clock.now - 1000 < 30


def test_expired_token_from_the_server_stops_with_a_clear_message():
    clock = Clock()
    with pytest.raises(LoginEnded) as ended:
        run(clock, [PENDING, (400, {"error": "expired_token"})])
    assert ended.value.reason == "expired" and "expired" in str(ended.value)


def test_access_denied_stops_polling():
    clock = Clock()
    with pytest.raises(LoginEnded) as ended:
        run(clock, [(400, {"error": "access_denied"}), TOKENS])
    assert ended.value.reason == "denied"
    assert "denied" in str(ended.value)


def test_an_unexpected_error_stops_with_its_description():
    clock = Clock()
    with pytest.raises(PollFailed, match="Unknown device code"):
        run(clock, [(400, {"error": "invalid_grant", "error_description": "Unknown device code"})])


def test_an_unreachable_server_backs_off_exponentially_up_to_a_minute():
    clock = Clock()
    down = Transient("connection refused")
    run(clock, [down, down, down, down, PENDING, TOKENS], expires_in=1000)
    assert clock.sleeps == [6.0, 12.0, 24.0, 48.0, 60.0, 6.0]


def test_backing_off_still_respects_the_codes_lifetime():
    clock = Clock()
    down = Transient("connection refused")
    with pytest.raises(LoginEnded):
        run(clock, [down] * 100, expires_in=100)
    assert clock.now - 1000 < 100
