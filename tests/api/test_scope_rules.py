"""Who may see and end sessions (issue 9 D).

``GET /v1/sessions`` and ``DELETE /v1/sessions/{id}`` need ``sessions:manage``;
``POST /v1/logout`` takes the access token of a session whatever its scopes,
and ends only that session.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.services.device_flow import normalise_user_code
from tests.api.helpers import CLI, bearer, body, form, refresh, seed, tokens

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture(autouse=True)
def _seeded(ctr: Any) -> None:
    seed(ctr)


def new_pat(client: Any, access: str, scopes: list[str]) -> str:
    payload = {"description": "ci", "expires_at": "2027-02-15", "scopes": scopes}
    r = client.http.post("/v1/tokens", body=json.dumps(payload).encode(),
                         headers={"Content-Type": "application/json", **bearer(access)})
    assert r.status_code == 201, r.body
    return str(body(r)["token"])


def sessions_of(client: Any, token: str) -> Any:
    return client.http.get("/v1/sessions", headers=bearer(token))


def assert_insufficient_scope(r: Any) -> None:
    assert r.status_code == 403, r.body
    assert r.headers["Content-Type"] == "application/problem+json"
    assert "sessions:manage" in body(r)["detail"]
    assert r.headers["WWW-Authenticate"] == \
        'Bearer realm="tessera", error="insufficient_scope", scope="sessions:manage"'


def device_login(client: Any, ctr: Any, **extra: str) -> dict[str, Any]:
    """A CLI login through the device flow with the client's default scopes."""
    started = body(form(client, "/oauth/device_authorization", client_id=CLI, **extra))
    flow = ctr.device_flow
    request = flow.find(ctr.devices_repo.table.get(
        ctr.devices_repo.code_key(normalise_user_code(started["user_code"]))))
    flow.approve(request, ctr.identities.find_user("alice"), request.scope, auth_time=ctr.clock.now())
    r = form(client, "/oauth/token", grant_type=DEVICE_GRANT, client_id=CLI,
             device_code=started["device_code"])
    assert r.status_code == 200, r.body
    return dict(body(r))


def test_a_pat_with_profile_and_api_read_cannot_list_sessions(client):
    pat = new_pat(client, tokens(client)["access_token"], ["profile", "api:read"])
    assert_insufficient_scope(sessions_of(client, pat))


def test_a_pat_with_profile_and_api_read_cannot_end_a_session(client):
    victim = tokens(client)
    session_id = body(sessions_of(client, victim["access_token"]))["sessions"][0]["id"]
    pat = new_pat(client, victim["access_token"], ["profile", "api:read"])
    assert_insufficient_scope(client.http.delete(f"/v1/sessions/{session_id}",
                                                 headers=bearer(pat)))
    assert refresh(client, victim["refresh_token"]).status_code == 200


def test_a_pat_cannot_log_out(client):
    pat = new_pat(client, tokens(client)["access_token"], ["profile", "api:read"])
    r = client.http.post("/v1/logout", headers=bearer(pat))
    assert r.status_code == 400 and "no session" in body(r)["detail"]


def test_an_access_token_without_sessions_manage_cannot_list_or_end_sessions(client):
    narrow = tokens(client, scope="openid profile api:read")
    other = tokens(client)
    assert_insufficient_scope(sessions_of(client, narrow["access_token"]))
    other_id = body(sessions_of(client, other["access_token"]))["sessions"][0]["id"]
    assert_insufficient_scope(client.http.delete(f"/v1/sessions/{other_id}",
                                                 headers=bearer(narrow["access_token"])))
    assert refresh(client, other["refresh_token"]).status_code == 200


def test_a_pat_with_sessions_manage_lists_and_ends_sessions(client):
    login = tokens(client)
    pat = new_pat(client, login["access_token"], ["sessions:manage"])
    listed = body(sessions_of(client, pat))["sessions"]
    assert len(listed) == 1 and listed[0]["current"] is False
    r = client.http.delete(f"/v1/sessions/{listed[0]['id']}", headers=bearer(pat))
    assert r.status_code == 204
    assert refresh(client, login["refresh_token"]).status_code == 400


def test_a_device_login_with_default_scopes_manages_its_sessions(client, ctr):
    t = device_login(client, ctr)
    assert "sessions:manage" in t["scope"].split()
    listed = body(sessions_of(client, t["access_token"]))["sessions"]
    assert [s["current"] for s in listed] == [True]


@pytest.mark.parametrize("scope", [None, "openid", "profile"])
def test_a_device_login_logs_itself_out_whatever_its_scopes(client, ctr, scope):
    t = device_login(client, ctr, **({"scope": scope} if scope else {}))
    r = client.http.post("/v1/logout", headers=bearer(t["access_token"]))
    assert r.status_code == 204
    assert refresh(client, t["refresh_token"]).status_code == 400


def test_logout_ends_only_the_callers_session(client):
    mine, other = tokens(client, scope="openid"), tokens(client)
    assert client.http.post("/v1/logout", headers=bearer(mine["access_token"])).status_code == 204
    assert refresh(client, other["refresh_token"]).status_code == 200
