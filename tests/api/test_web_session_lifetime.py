"""Browser sign-ins follow the session rules of SPEC §3: 10 h idle, 24 h cap,
every request with the cookie is a use."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import seed
from tests.api.test_pages_tokens import Browser, sign_in

HOUR = 3600


@pytest.fixture
def browser(client: Any, ctr: Any) -> Browser:
    seed(ctr)
    b = Browser(client)
    assert sign_in(b).status_code == 303
    return b


def signed_in(browser: Browser) -> bool:
    return b"Signed in as" in browser.get("/account/tokens").body


def test_a_browser_sign_in_in_use_outlives_the_idle_period(browser, clock):
    for _ in range(2):
        clock.advance(9 * HOUR)
        assert signed_in(browser)   # 18 h after sign-in, never 10 h idle


def test_a_browser_sign_in_left_idle_for_ten_hours_ends(browser, clock):
    clock.advance(9 * HOUR)
    assert signed_in(browser)
    clock.advance(10 * HOUR)
    assert not signed_in(browser)


def test_use_never_extends_a_browser_sign_in_past_the_24_hour_cap(browser, clock):
    for _ in range(2):
        clock.advance(8 * HOUR)
        assert signed_in(browser)
    clock.advance(8 * HOUR - 1)
    assert signed_in(browser)
    clock.advance(1)
    assert not signed_in(browser)


def test_a_used_browser_session_is_not_purged(browser, ctr, clock):
    from chalicelib.jobs.purge import purge_idle_sessions

    clock.advance(9 * HOUR)
    assert signed_in(browser)
    clock.advance(2 * HOUR)
    assert purge_idle_sessions(ctr.sessions_repo, clock).removed == 0
    assert signed_in(browser)
