"""Audit events reach the log with the real app imported (SPEC §8).

Chalice configures the logger named after the app ("tessera") at ERROR without
propagation; these tests go through ``app`` (the ``client`` fixture) and read
what the process really printed, so an event swallowed by that logger fails them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.helpers import CLI, bearer, body, login, refresh, seed, tokens
from tests.api.test_pages_tokens import Browser, csrf, sign_in
from tests.api.test_pats import new_pat

DAY = 86400


@pytest.fixture
def seeded(client: Any, ctr: Any) -> Any:
    seed(ctr)
    return client


def names(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events]


def test_sign_in_refresh_reuse_and_logout_are_logged_with_the_app_imported(seeded, clock,
                                                                          audit_events):
    audit_events()
    assert login(seeded, password="wrong-password").status_code == 400
    issued = tokens(seeded)
    rotated = body(refresh(seeded, issued["refresh_token"]))
    clock.advance(31)   # past the grace window: presenting the old token again is reuse
    assert refresh(seeded, issued["refresh_token"]).status_code == 400
    again = tokens(seeded)
    assert seeded.http.post("/v1/logout", headers=bearer(again["access_token"])).status_code in (200, 204)

    logged = audit_events()
    events = [e for e in logged if e["event"] not in ("request_error", "signing_keys_created")]
    assert names(events) == ["signin_failed", "session_created", "refresh_token_reuse",
                             "session_created", "session_ended"]
    failed, created, reuse, created_again, ended = events
    assert failed["user_known"] is True and failed["blocked"] is False
    assert created["client_id"] == CLI and created["user_id"]
    assert reuse["sid"] == created["sid"]
    assert ended["sid"] == created_again["sid"] and ended["reason"] == "logout"
    text = json.dumps(logged)
    for secret in ("wrong-password", "password4alice", issued["refresh_token"],
                   rotated["refresh_token"], again["refresh_token"], again["access_token"]):
        assert secret not in text
    for event in logged:
        assert event["level"] == "info" and event["time"].endswith("+00:00")


def test_every_event_is_one_json_line_on_stdout(seeded, capsys):
    capsys.readouterr()
    login(seeded, password="wrong-password")
    printed = capsys.readouterr().out.splitlines()
    assert printed, "nothing reached stdout"
    assert all(json.loads(line)["logger"] == "tessera.audit" for line in printed)


def test_pat_changes_and_browser_sign_ins_are_logged(seeded, ctr, audit_events):
    access = tokens(seeded)["access_token"]
    audit_events()
    pat = new_pat(seeded, access)
    page = Browser(seeded)
    sign_in(page, password="not-it")
    sign_in(page)
    page.post("/account/signout", {"csrf": csrf(page.get("/account/tokens"))})

    events = audit_events()
    assert names(events)[:1] == ["pat_created"] and events[0]["pat_id"] == pat["id"]
    web = [e for e in events if e.get("client_id") == "tessera-web"]
    assert [e["event"] for e in web] == ["session_created", "session_ended"]
    assert "signin_failed" in names(events) and "web_sign_out" in names(events)
    assert pat["token"] not in json.dumps(events)


def test_scheduled_jobs_log_key_rotation_and_purge(seeded, ctr, clock, audit_events):
    ctr.keyring.current_kid()
    clock.advance(30 * DAY)
    audit_events()
    scheduled = seeded.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event",
                                                detail={}, resources=[])
    seeded.lambda_.invoke("rotate_signing_keys", scheduled)
    seeded.lambda_.invoke("purge_idle_sessions", scheduled)
    got = names(audit_events())
    assert "signing_keys_rotated" in got and "key_rotation" in got and "purge" in got


def test_an_opaque_secret_in_a_log_line_is_redacted(capsys):
    from chalicelib.audit import event

    secret = "tsr_" + "A" * 44
    capsys.readouterr()
    event("test_event", note=f"leaked {secret}")
    line = json.loads(capsys.readouterr().out)
    assert secret not in line["note"] and line["note"] == "leaked [redacted]"


def test_a_lockout_is_logged_once(seeded, ctr, clock, audit_events):
    audit_events()
    for _ in range(ctr.settings.login_lockout_failures):
        login(seeded, password="wrong-password")
        clock.advance(20)   # past any slow-down delay, within the counting window
    lockouts = [e for e in audit_events() if e["event"] == "signin_lockout"]
    assert len(lockouts) == 2   # the user's counter and the source's
    assert {e["counter"].split("#")[0] for e in lockouts} == {"signin-user", "signin-src"}
