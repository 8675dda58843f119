"""Issue 25, end to end in Chromium against the real runner and its outbox: an
invited person follows the link from /_local/outbox, chooses a password and signs
in; alice resets her password through the outbox and her old refresh tokens die;
the reset page answers the same for known and unknown addresses."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.support import running_server

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CLI = "cf83e1357eefb8bd"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with running_server(tmp_path_factory.mktemp("mail")) as running:
        yield running


def token_request(base: str, fields: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(base + "/oauth/token",
                                     data=urllib.parse.urlencode(fields).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return dict(json.loads(answer.read()))
    except urllib.error.HTTPError as refused:
        return dict(json.loads(refused.read()))


def outbox_link(page: Any, base: str, to: str, prefix: str) -> str:
    """The newest link with a ``prefix`` token in a mail to ``to``, as the outbox page shows it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        page.goto(base + "/_local/outbox")
        for article in page.locator("article.mail").all():
            if to in article.inner_text():
                links = [a.get_attribute("href") or "" for a in article.locator("a").all()]
                found = [link for link in links if f"token={prefix}" in link]
                if found:
                    return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no mail to {to} with a {prefix} link in the outbox")


def test_an_invited_person_follows_the_outbox_link_and_signs_in(server, chromium):
    base = server.base_url
    made = server.admin("user", "invite", "grace@example.org", "--issuer", base)
    assert made.returncode == 0, made.stderr
    context = chromium.new_context()
    page = context.new_page()
    page.goto(outbox_link(page, base, "grace@example.org", "tsi_"))
    assert "grace@example.org" in page.locator("main").inner_text()
    page.fill("#username", "grace")
    page.fill("#password", "grace's long passphrase")
    page.fill("#password_again", "grace's long passphrase")
    page.click("text=Create account")
    page.wait_for_selector("nav.console")
    assert "/account/security" in page.url          # offered a second factor next
    context.close()
    signed = token_request(base, {"grant_type": "password", "client_id": CLI,
                                  "username": "grace", "password": "grace's long passphrase"})
    assert "access_token" in signed, signed


def test_alice_resets_her_password_through_the_outbox_and_her_refresh_tokens_die(server,
                                                                                   chromium):
    base = server.base_url
    before = token_request(base, {"grant_type": "password", "client_id": CLI,
                                  "username": "alice", "password": "password4alice"})
    context = chromium.new_context()
    page = context.new_page()
    page.goto(base + "/account")
    page.click("text=Forgot password?")
    page.fill("#email", "alice@example.com")
    page.click("text=Send me a link")
    page.wait_for_selector("text=a link to set a new password is on its way")
    page.goto(outbox_link(page, base, "alice@example.com", "tsw_"))
    page.fill("#password", "alice's brand new passphrase")
    page.fill("#password_again", "alice's brand new passphrase")
    page.click("text=Set the new password")
    page.wait_for_selector("text=Password changed")
    context.close()
    dead = token_request(base, {"grant_type": "refresh_token", "client_id": CLI,
                                "refresh_token": before["refresh_token"]})
    assert dead["error"] == "invalid_grant"
    after = token_request(base, {"grant_type": "password", "client_id": CLI,
                                 "username": "alice", "password": "alice's brand new passphrase"})
    assert "access_token" in after


def test_the_reset_page_is_the_same_for_known_and_unknown_addresses(server, chromium):
    seen = []
    for address in ("alice@example.com", "nobody@example.net"):
        context = chromium.new_context()
        page = context.new_page()
        page.goto(server.base_url + "/password-reset")
        page.fill("#email", address)
        page.click("text=Send me a link")
        page.wait_for_selector("[role=status]")
        seen.append(re.sub(r"\s+", " ", page.locator("main").inner_text()))
        context.close()
    assert seen[0] == seen[1]
