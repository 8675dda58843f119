"""Issue 9 L and Z: simultaneous wrong user codes on /device all count, against
the real local server over HTTP, and then even the right code is refused.
"""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.models import user_id_for
from tests.abuse.support import post_form
from tests.e2e.support import HttpResponse, LiveServer, http

pytestmark = pytest.mark.e2e

THREADS = 30
DEMO_CLIENT = "cf83e1357eefb8bd"
MAX_MISSES = 5   # the default TESSERA_USER_CODE_MAX_MISSES
# Thirty distinct codes that nobody was issued (the demo server issued none).
WRONG_CODES = [f"BCDF-GH{a}{b}" for a in "JKLMNP" for b in "BCDFG"]


def csrf_of(page: HttpResponse) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page.body.decode())
    assert match, page.body.decode()
    return match.group(1)


def cookie_of(response: HttpResponse) -> str:
    """``name=value`` of the one cookie a response sets."""
    return response.headers["Set-Cookie"].split(";", 1)[0]


class SignedInBrowser:
    """alice on /device: her CSRF cookie, her sign-in cookie, the form's token."""

    def __init__(self, server: LiveServer) -> None:
        self.url = server.base_url + "/device"
        first = http("GET", self.url)
        self.cookies = [cookie_of(first)]
        signed_in = post_form(self.url, {"csrf": csrf_of(first), "user_code": "BCDF-GHJK",
                                         "username": "alice", "password": "password4alice",
                                         "action": "continue"}, self.headers())
        assert signed_in.status == 400 and "not valid" in signed_in.body.decode()
        self.cookies.append(cookie_of(signed_in))
        self.csrf = csrf_of(signed_in)

    def headers(self) -> dict[str, str]:
        return {"Cookie": "; ".join(self.cookies)}

    def enter(self, user_code: str) -> HttpResponse:
        return post_form(self.url, {"csrf": self.csrf, "user_code": user_code,
                                    "action": "continue"}, self.headers())


def test_thirty_simultaneous_wrong_codes_all_count_and_block_the_right_one(
        abuse_server, throttle_items):
    browser = SignedInBrowser(abuse_server)   # its sign-in entered one wrong code
    start = threading.Barrier(THREADS)

    def guess(code: str) -> HttpResponse:
        start.wait()
        return browser.enter(code)

    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(guess, WRONG_CODES))
    statuses = [a.status for a in answers]
    assert set(statuses) <= {400, 429}
    missed = 1 + statuses.count(400)   # a 400 is a counted miss; a 429 was refused unseen

    items = throttle_items()
    sources = [i for k, i in items.items() if k.startswith("usercode-src#")]
    assert len(sources) == 1
    assert items["usercode-user#" + user_id_for("alice")]["failures"] == missed
    assert sources[0]["failures"] == missed
    assert items["usercode-all"]["failures"] == missed
    assert missed >= MAX_MISSES
    # None of the codes was ever issued: none gets a counter of its own.
    assert not [k for k in items if k.startswith("usercode-code#")]

    started = post_form(abuse_server.base_url + "/oauth/device_authorization",
                        {"client_id": DEMO_CLIENT})
    right = browser.enter(json.loads(started.body)["user_code"])
    assert right.status == 429
    assert int(right.headers["Retry-After"]) > 0
