"""Every RFC 6749 §5.2 error the token endpoint can produce, each from a real request."""

import json

import pytest

from tests.api.helpers import CLI, RS, RS_SECRET, basic, body, form, login, seed


@pytest.fixture(autouse=True)
def _seeded(ctr):
    seed(ctr)


def assert_oauth_error(response, status, error):
    assert response.status_code == status, response.body
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Type"] == "application/json"
    parsed = body(response)
    assert parsed["error"] == error
    assert isinstance(parsed["error_description"], str) and parsed["error_description"]
    return parsed


def test_missing_grant_type_is_invalid_request(client):
    assert_oauth_error(form(client, "/oauth/token", client_id=CLI), 400, "invalid_request")


def test_missing_password_is_invalid_request(client):
    r = form(client, "/oauth/token", grant_type="password", client_id=CLI, username="alice")
    assert_oauth_error(r, 400, "invalid_request")


def test_repeated_parameter_is_invalid_request(client):
    r = client.http.post("/oauth/token", headers={"Content-Type": "application/x-www-form-urlencoded"},
                         body=b"grant_type=password&client_id=" + CLI.encode()
                         + b"&username=alice&username=bob&password=password4alice")
    parsed = assert_oauth_error(r, 400, "invalid_request")
    assert "repeated" in parsed["error_description"]


def test_json_body_is_invalid_request(client):
    r = client.http.post("/oauth/token", headers={"Content-Type": "application/json"},
                         body=json.dumps({"grant_type": "password"}).encode())
    assert_oauth_error(r, 400, "invalid_request")


def test_non_utf8_body_is_invalid_request(client):
    r = client.http.post("/oauth/token", headers={"Content-Type": "application/x-www-form-urlencoded"},
                         body=b"grant_type=password&username=%ff%fe&client_id=" + CLI.encode())
    assert_oauth_error(r, 400, "invalid_request")


def test_oversized_parameter_is_invalid_request(client):
    r = login(client, username="a" * 5000)
    assert_oauth_error(r, 400, "invalid_request")


def test_two_client_auth_methods_is_invalid_request(client):
    r = form(client, "/oauth/token", headers=basic(RS, RS_SECRET), grant_type="client_credentials",
             client_secret=RS_SECRET)
    assert_oauth_error(r, 400, "invalid_request")


def test_unknown_client_is_invalid_client_with_challenge(client):
    r = login(client, client_id="nobody")
    assert_oauth_error(r, 401, "invalid_client")
    assert r.headers["WWW-Authenticate"].startswith("Basic")


def test_wrong_client_secret_is_invalid_client(client):
    r = form(client, "/oauth/token", headers=basic(RS, "wrong"), grant_type="password",
             username="alice", password="password4alice")
    assert_oauth_error(r, 401, "invalid_client")
    assert "WWW-Authenticate" in r.headers


def test_bad_basic_base64_is_invalid_client(client):
    r = form(client, "/oauth/token", headers={"Authorization": "Basic !!!not-base64"},
             grant_type="password", username="alice", password="x")
    assert_oauth_error(r, 401, "invalid_client")


def test_no_client_is_invalid_client(client):
    r = form(client, "/oauth/token", grant_type="password", username="alice", password="password4alice")
    assert_oauth_error(r, 401, "invalid_client")


def test_wrong_password_is_invalid_grant(client):
    assert_oauth_error(login(client, password="wrong-password"), 400, "invalid_grant")


def test_bad_refresh_token_is_invalid_grant(client):
    r = form(client, "/oauth/token", grant_type="refresh_token", client_id=CLI,
             refresh_token="tsr_not-a-real-token")
    assert_oauth_error(r, 400, "invalid_grant")


def test_client_not_allowed_password_is_unauthorized_client(client):
    assert_oauth_error(login(client, client_id="no-password"), 400, "unauthorized_client")


def test_unknown_grant_type_is_unsupported_grant_type(client):
    r = form(client, "/oauth/token", grant_type="implicit", client_id=CLI, code="x")
    assert_oauth_error(r, 400, "unsupported_grant_type")


def test_scope_beyond_client_is_invalid_scope(client):
    assert_oauth_error(login(client, scope="openid admin:everything"), 400, "invalid_scope")


def test_malformed_scope_is_invalid_scope(client):
    assert_oauth_error(login(client, scope='openid  "profile"'), 400, "invalid_scope")


def test_unknown_user_wrong_password_and_disabled_user_answer_identically(client, ctr):
    ctr.identities.set_user_active("bob", False)
    answers = [login(client, username="nobody", password="whatever1"),
               login(client, password="wrong-password"),
               login(client, username="bob", password="password4bob")]
    assert {r.status_code for r in answers} == {400}
    assert len({r.body for r in answers}) == 1


def test_repeated_failures_lock_the_account_even_for_the_right_password(client, ctr, clock):
    for _ in range(ctr.settings.login_lockout_failures):
        assert login(client, password="wrong-password").status_code == 400
        clock.advance(40)  # past every slow-down delay (1..16 s), within the window
    locked = login(client)
    wrong = login(client, password="wrong-password")
    assert locked.status_code == 400 and locked.body == wrong.body
    clock.advance(ctr.settings.login_lockout_seconds + 1)
    assert login(client).status_code == 200


def test_failures_past_the_threshold_are_slowed_down(client, ctr, clock):
    for _ in range(ctr.settings.login_max_failures):
        login(client, password="wrong-password")
    # Immediately after: refused even with the right password (slow-down window).
    assert login(client).status_code == 400
    clock.advance(60)
    assert login(client).status_code == 200


def test_storage_outage_is_503_with_retry_after(client, ctr):
    from chalicelib.errors import StorageUnavailable
    from chalicelib.http import render_oauth_error

    response = render_oauth_error(StorageUnavailable(detail="throttled"))
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert json.loads(response.body)["error"] == "temporarily_unavailable"
