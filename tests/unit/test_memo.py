"""The per-instance memory behind the client directory, resource servers and web
origins: answers expire with the clock and the memory stays bounded."""

from __future__ import annotations

from chalicelib.clock import FakeClock
from chalicelib.services.memo import MAX_ENTRIES, Memo


def test_an_answer_is_kept_for_its_ttl_and_looked_up_again_after():
    clock, calls = FakeClock(), []
    memo: Memo[bool] = Memo(clock, ttl=60)

    def look_up(key: str) -> bool:
        calls.append(key)
        return True

    assert memo.answer("a", look_up) and memo.answer("a", look_up)
    assert calls == ["a"]
    clock.advance(60)
    assert memo.recall("a") == (False, None)
    assert memo.answer("a", look_up) and calls == ["a", "a"]


def test_a_stream_of_distinct_keys_never_grows_it_past_its_bound():
    memo: Memo[int] = Memo(FakeClock())
    for i in range(3 * MAX_ENTRIES):
        memo.keep(str(i), i)
        assert len(memo._answers) <= MAX_ENTRIES
