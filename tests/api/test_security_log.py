"""The security log (SPEC §11, issue 24 item 6): every change that concerns a user
leaves its entry under that user, in the change's own transaction where it has
one; ``GET /v1/events`` lists the caller's own, newest first."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from bench.lambda_http import LambdaDriver, Request
from chalicelib.errors import ConditionFailed
from chalicelib.models import user_id_for
from chalicelib.services.security_log import KINDS, SecurityLog, Where
from chalicelib.services.sessions import Sessions
from tests.api.helpers import CLI, RS, RS_SECRET, basic, bearer, body, form, login, refresh, seed, tokens

JSON = {"Content-Type": "application/json"}
AGENT = {"User-Agent": "security-log-test/1.0"}
NEXT_MONTH = "2027-02-15"
TRUST = {"issuer": "https://token.actions.githubusercontent.com", "audience": "tessera",
         "subject": "repo:acme/app:ref:refs/heads/main"}
ALICE = user_id_for("alice")
BOB = user_id_for("bob")


def call(client: Any, method: str, path: str, token: str, payload: Any = None) -> Any:
    headers = {**bearer(token), **AGENT}
    data = b""
    if payload is not None:
        data = json.dumps(payload).encode()
        headers = {**JSON, **headers}
    return getattr(client.http, method)(path, body=data, headers=headers)


def entries(ctr: Any, user_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    """Every event of the user, newest first, as the API shows them."""
    events, _ = ctr.security_log.page(user_id, kind=kind, limit=100)
    return [e.view() for e in events]


def kinds(ctr: Any, user_id: str) -> list[str]:
    return [e["kind"] for e in entries(ctr, user_id)]


@pytest.fixture
def alice(client: Any, ctr: Any) -> str:
    seed(ctr)
    return str(tokens(client)["access_token"])


# -- sign-ins ------------------------------------------------------------------------

def test_a_password_grant_logs_a_signin_with_its_session_ip_and_user_agent(client, ctr):
    seed(ctr)
    r = form(client, "/oauth/token", AGENT, grant_type="password", client_id=CLI,
             username="alice", password="password4alice")
    assert r.status_code == 200
    [event] = entries(ctr, ALICE)
    assert event["kind"] == "signin"
    assert event["ip"] == "127.0.0.1" and event["user_agent"] == "security-log-test/1.0"
    assert event["detail"]["client_id"] == CLI and event["detail"]["method"] == "pwd"
    assert event["detail"]["session_id"] in {s.id for s in ctr.sessions.list_for_user(ALICE)}


def test_a_wrong_password_of_a_known_user_is_logged_and_an_unknown_name_is_not(client, ctr):
    seed(ctr)
    assert login(client, password="not-her-password").status_code == 400
    assert login(client, username="nobody", password="whatever1").status_code == 400
    [event] = entries(ctr, ALICE)
    assert event["kind"] == "signin_failed" and event["detail"] == {"reason": "wrong_password"}
    assert entries(ctr, user_id_for("nobody")) == []
    assert "password" not in json.dumps(event["detail"]).replace("wrong_password", "")


def test_the_failure_that_starts_a_lockout_is_logged_once(client, ctr, clock):
    seed(ctr)
    lock_after = ctr.settings.login_lockout_failures
    for _ in range(lock_after + 2):
        login(client, password="not-her-password")
        clock.advance(40)        # past the growing delay, within the counting window
    locks = entries(ctr, ALICE, "lockout")
    assert len(locks) == 1
    assert locks[0]["detail"]["failures"] == lock_after
    # attempts the lockout refused are not logged: an attacker cannot flood the log
    assert len(entries(ctr, ALICE, "signin_failed")) == lock_after


def test_a_browser_sign_in_ready_at_once_is_logged_and_its_sign_out_too(ctr):
    seed(ctr)
    web = ctr.web_signin.sign_in("alice", "password4alice", "198.51.100.4", "Firefox")
    [signin] = entries(ctr, ALICE)
    assert signin["kind"] == "signin" and signin["ip"] == "198.51.100.4"
    assert signin["detail"]["session_id"] == web.session.id
    ctr.web_signin.sign_out(web, Where("198.51.100.4", "Firefox"))
    ended = entries(ctr, ALICE, "session_ended")
    assert [e["detail"]["reason"] for e in ended] == ["web_sign_out"]
    assert ended[0]["detail"]["session_id"] == web.session.id


# -- sessions ending ------------------------------------------------------------------

def test_logout_and_ending_a_session_are_logged_with_their_reason(client, ctr, alice):
    other = tokens(client)
    assert call(client, "delete", f"/v1/sessions/{json.loads(_jwt_payload(other['access_token']))['sid']}",
                alice).status_code == 204
    assert call(client, "post", "/v1/logout", alice).status_code == 204
    ended = entries(ctr, ALICE, "session_ended")
    assert [e["detail"]["reason"] for e in ended] == ["logout", "ended_by_user"]
    assert all(e["ip"] == "127.0.0.1" and e["user_agent"] == AGENT["User-Agent"] for e in ended)


def test_refresh_token_reuse_logs_the_end_of_the_session(client, ctr, clock):
    seed(ctr)
    first = tokens(client)["refresh_token"]
    assert refresh(client, first).status_code == 200
    clock.advance(ctr.settings.refresh_grace_seconds + 1)
    assert refresh(client, first).status_code == 400
    [ended] = entries(ctr, ALICE, "session_ended")
    assert ended["detail"]["reason"] == "refresh_token_reuse"


def test_a_session_evicted_by_the_cap_is_logged(client, ctr, clock):
    seed(ctr)
    ctr.settings = dataclasses.replace(ctr.settings, max_sessions_per_user=2)
    ctr.__dict__.pop("sessions", None)
    oldest = json.loads(_jwt_payload(tokens(client)["access_token"]))["sid"]
    for _ in range(2):
        clock.advance(1)
        tokens(client)
    [ended] = entries(ctr, ALICE, "session_ended")
    assert ended["detail"] == {"session_id": oldest, "reason": "session_cap"}


def test_ending_another_users_session_leaves_no_entry_in_either_log(client, ctr, alice):
    bobs = json.loads(_jwt_payload(tokens(client, username="bob",
                                          password="password4bob")["access_token"]))["sid"]
    assert call(client, "delete", f"/v1/sessions/{bobs}", alice).status_code == 404
    assert entries(ctr, ALICE, "session_ended") == []
    assert entries(ctr, BOB, "session_ended") == []


# -- the transaction property ------------------------------------------------------------

class RefusingLog(SecurityLog):
    """A log whose entries never commit: its operation's condition always fails."""

    def op(self, user_id: str, kind: str, where: Where = Where(),
           detail: Any = None) -> dict[str, Any]:
        return self.repo.table.op_check({"user_id": user_id, "id": "0" * 16}, "attribute_exists(id)")


def test_a_session_end_whose_entry_cannot_commit_does_not_happen(client, ctr, alice):
    sid = json.loads(_jwt_payload(alice))["sid"]
    refusing = Sessions(ctr.sessions_repo, ctr.clock, ctr.settings, users=ctr.users,
                        transact=ctr.transact,
                        security_log=RefusingLog(ctr.events_repo, ctr.clock, ctr.settings))
    assert refusing.end_owned(sid, ALICE, reason="logout") is False
    assert ctr.sessions.live(sid) is not None          # the change did not happen either
    assert entries(ctr, ALICE, "session_ended") == []


def test_a_pat_the_cap_refuses_leaves_no_entry(client, ctr, alice):
    ctr.pats.cap = 1
    assert _generate(client, alice).status_code == 201
    assert _generate(client, alice).status_code == 409
    assert len(entries(ctr, ALICE, "pat_created")) == 1


def test_a_transaction_with_an_entry_is_all_or_nothing(ctr):
    seed(ctr)
    log = ctr.security_log
    with pytest.raises(ConditionFailed):
        ctr.transact([log.op(ALICE, "pat_created", detail={"pat_id": "x"}),
                      ctr.events_repo.table.op_check({"user_id": ALICE, "id": "0" * 16},
                                                     "attribute_exists(id)")])
    assert entries(ctr, ALICE) == []


# -- PATs --------------------------------------------------------------------------------

def _generate(client: Any, token: str) -> Any:
    return call(client, "post", "/v1/tokens", token,
                {"description": "ci", "expires_at": NEXT_MONTH, "scopes": ["api:read"]})


def test_pat_create_regenerate_remove_and_revoke_are_logged(client, ctr, alice):
    first = body(_generate(client, alice))
    second = body(_generate(client, alice))
    third = body(_generate(client, alice))
    assert call(client, "post", f"/v1/tokens/{first['id']}/regenerate", alice).status_code == 200
    assert call(client, "delete", f"/v1/tokens/{first['id']}", alice).status_code == 204
    assert call(client, "post", "/v1/tokens/remove", alice,
                {"ids": [second["id"], "AAAAAAAAAAAAAAAA"]}).status_code == 200
    assert form(client, "/oauth/revoke", basic(RS, RS_SECRET),
                token=third["token"]).status_code == 200
    created = entries(ctr, ALICE, "pat_created")
    assert [e["detail"] for e in reversed(created)] == [
        {"pat_id": first["id"], "description": "ci"},
        {"pat_id": second["id"], "description": "ci"},
        {"pat_id": third["id"], "description": "ci"},
        {"pat_id": first["id"], "description": "ci", "regenerated": True}]
    assert created[-1]["ip"] == "127.0.0.1"
    assert created[0]["ip"] == "127.0.0.1"         # the regeneration's
    removals = entries(ctr, ALICE, "pat_revoked")
    assert [e["user_agent"] for e in removals] == ["", AGENT["User-Agent"], AGENT["User-Agent"]]
    revoked = [e["detail"] for e in reversed(removals)]
    assert revoked == [{"pat_id": first["id"], "reason": "removed"},
                       {"pat_id": second["id"], "reason": "removed"},
                       {"pat_id": third["id"], "reason": "revoked", "client_id": RS}]
    assert not any(p["token"] in json.dumps(entries(ctr, ALICE)) for p in (first, second, third))


def _me_from(driver: LambdaDriver, token: str, ip: str) -> int:
    event = driver.event(Request("GET", "/v1/me", {"authorization": f"Bearer {token}",
                                                   "user-agent": "curl/8"}))
    event["requestContext"]["identity"]["sourceIp"] = ip
    return driver.invoke(event).status


def test_a_pat_used_from_a_new_address_is_logged_once_per_address(client, ctr, alice):
    from app import app

    pat = body(_generate(client, alice))["token"]
    driver = LambdaDriver(app)
    assert _me_from(driver, pat, "127.0.0.1") == 200       # where it was created: not new
    assert entries(ctr, ALICE, "pat_used_new_ip") == []
    for ip in ("203.0.113.9", "203.0.113.9", "198.51.100.20", "203.0.113.9"):
        assert _me_from(driver, pat, ip) == 200
    used = entries(ctr, ALICE, "pat_used_new_ip")
    assert [e["ip"] for e in used] == ["198.51.100.20", "203.0.113.9"]
    assert used[0]["user_agent"] == "curl/8" and used[0]["detail"]["description"] == "ci"


def test_a_pat_keeps_a_bounded_set_of_seen_addresses(client, ctr, alice):
    from app import app
    from chalicelib.storage.pats import MAX_SEEN_IPS

    made = body(_generate(client, alice))
    driver = LambdaDriver(app)
    for n in range(MAX_SEEN_IPS + 3):
        assert _me_from(driver, made["token"], f"192.0.2.{n}") == 200
    pat = ctr.pats_repo.get(ALICE, made["id"])
    assert len(pat.seen_ips) == MAX_SEEN_IPS
    assert pat.seen_ips[-1] == f"192.0.2.{MAX_SEEN_IPS + 2}"


# -- roles ---------------------------------------------------------------------------------

def test_role_keys_and_trust_policies_are_logged(client, ctr, alice, clock):
    assert call(client, "post", "/v1/roles", alice, {"name": "alice.ci"}).status_code == 201
    key = body(call(client, "post", "/v1/roles/alice.ci/keys", alice, {"description": "deploy"}))
    trust = body(call(client, "post", "/v1/roles/alice.ci/trust", alice, TRUST))
    clock.advance(1)
    assert call(client, "post", "/v1/roles/alice.ci/trust", alice, TRUST).status_code in (200, 201)
    assert call(client, "delete", f"/v1/roles/alice.ci/trust/{trust['id']}",
                alice).status_code == 204
    assert call(client, "delete", f"/v1/roles/alice.ci/keys/{key['id']}",
                alice).status_code == 204
    [made] = entries(ctr, ALICE, "role_key_created")
    assert made["detail"] == {"role": "alice.ci", "key_id": key["id"], "description": "deploy"}
    assert made["ip"] == "127.0.0.1"
    [revoked] = entries(ctr, ALICE, "role_key_revoked")
    assert revoked["detail"] == {"role": "alice.ci", "key_id": key["id"], "reason": "revoked"}
    changes = [e["detail"]["change"] for e in reversed(entries(ctr, ALICE, "trust_policy_changed"))]
    assert changes == ["added", "removed"]      # adding the same policy again changes nothing
    assert key["secret"] not in json.dumps(entries(ctr, ALICE))


# -- consents ----------------------------------------------------------------------------

def test_consent_given_and_withdrawn_are_logged_with_the_sessions_it_ended(client, ctr, alice):
    user = ctr.users.get(ALICE)
    app_client = ctr.client_directory.get(CLI)
    ctr.authorization.remember_consent(user, app_client, ("openid",))
    assert call(client, "delete", f"/v1/consents/{CLI}", alice).status_code == 204
    [given] = entries(ctr, ALICE, "consent_given")
    assert given["detail"]["client_id"] == CLI and given["detail"]["scopes"] == ["openid"]
    [withdrawn] = entries(ctr, ALICE, "consent_withdrawn")
    assert withdrawn["detail"] == {"client_id": CLI, "sessions_ended": 1}
    assert withdrawn["ip"] == "127.0.0.1"
    assert [e["detail"]["reason"] for e in entries(ctr, ALICE, "session_ended")] == [
        "consent_withdrawn"]


# -- GET /v1/events ----------------------------------------------------------------------

def test_the_api_lists_the_callers_events_newest_first_in_the_spec_shape(client, ctr, alice,
                                                                          clock):
    clock.advance(5)
    _generate(client, alice)
    r = call(client, "get", "/v1/events", alice)
    assert r.status_code == 200 and r.headers["Cache-Control"].startswith("no-store")
    listed = body(r)
    assert set(listed) == {"events", "next_cursor"} and listed["next_cursor"] is None
    assert [e["kind"] for e in listed["events"]] == ["pat_created", "signin"]
    for event in listed["events"]:
        assert set(event) == {"id", "kind", "time", "ip", "user_agent", "detail"}
    assert listed["events"][0]["time"] > listed["events"][1]["time"]


def test_the_api_pages_with_a_cursor_and_filters_by_kind(client, ctr, alice):
    for _ in range(4):
        login(client, password="not-her-password")
    seen: list[str] = []
    cursor = None
    while True:
        query = "/v1/events?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = body(call(client, "get", query, alice))
        assert len(page["events"]) <= 2
        seen += [e["id"] for e in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [e["id"] for e in entries(ctr, ALICE)] and len(seen) == 5
    failed = body(call(client, "get", "/v1/events?kind=signin_failed", alice))["events"]
    assert [e["kind"] for e in failed] == ["signin_failed"] * 4


def test_another_users_events_are_never_listed(client, ctr, alice):
    bob = tokens(client, username="bob", password="password4bob")["access_token"]
    _generate(client, bob)
    mine = body(call(client, "get", "/v1/events?limit=100", alice))["events"]
    assert [e["kind"] for e in mine] == ["signin"]
    assert {e["id"] for e in mine}.isdisjoint(e["id"] for e in entries(ctr, BOB))


def test_events_past_the_retention_are_not_listed(client, ctr, alice, clock):
    clock.advance(ctr.settings.events_ttl_days * 86400 - 10)
    fresh = tokens(client)["access_token"]
    clock.advance(20)
    listed = body(call(client, "get", "/v1/events", fresh))["events"]
    assert [e["kind"] for e in listed] == ["signin"]
    assert listed[0]["time"] == clock.now() - 20


@pytest.mark.parametrize("query, detail", [
    ("kind=password_guessed", "kind must be one of"),
    ("cursor=not-a-cursor", "cursor"),
    ("limit=0", "limit"),
    ("limit=101", "limit"),
    ("limit=ten", "limit"),
])
def test_a_bad_kind_cursor_or_limit_is_a_400_problem(client, ctr, alice, query, detail):
    r = call(client, "get", f"/v1/events?{query}", alice)
    assert r.status_code == 400, r.body
    assert r.headers["Content-Type"] == "application/problem+json"
    assert detail in body(r)["detail"]


def test_reading_the_log_needs_sessions_manage(client, ctr):
    seed(ctr)
    narrow = tokens(client, scope="openid tokens:read")["access_token"]
    r = call(client, "get", "/v1/events", narrow)
    assert r.status_code == 403 and "sessions:manage" in body(r)["detail"]


def test_every_kind_of_the_spec_is_known():
    assert set(KINDS) >= {"signin", "signin_failed", "lockout", "session_ended", "pat_created",
                          "pat_revoked", "pat_used_new_ip", "role_key_created",
                          "role_key_revoked", "trust_policy_changed", "consent_given",
                          "consent_withdrawn"}


def _jwt_payload(token: str) -> str:
    import base64

    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()


def test_the_documented_limit_is_exactly_the_range_the_log_takes():
    import re

    from chalicelib.api_models import EventFilters
    from chalicelib.services.security_log import MAX_LIMIT

    pattern = EventFilters.model_json_schema()["properties"]["limit"]["pattern"]
    accepted = {n for n in range(0, 1000) if re.fullmatch(pattern, str(n))}
    assert accepted == set(range(1, MAX_LIMIT + 1))


def test_twenty_first_uses_from_one_new_address_log_it_once(client, ctr, alice):
    from chalicelib.services.pats import principal_for
    from tests.concurrency import atomic_container, run_together

    made = body(_generate(client, alice))
    pat = ctr.pats_repo.get(ALICE, made["id"])
    principal = principal_for(pat, ctr.users.get(ALICE))
    racing = atomic_container(ctr)
    outcomes = run_together(20, lambda: racing.pat_credentials.used_from(
        principal, Where("203.0.113.50", "curl/8")))
    assert all(kind == "ok" for kind, _ in outcomes)
    assert [e["ip"] for e in entries(ctr, ALICE, "pat_used_new_ip")] == ["203.0.113.50"]
    assert ctr.pats_repo.get(ALICE, made["id"]).seen_ips == ("127.0.0.1", "203.0.113.50")
