"""Device authorization grant (RFC 8628): every state of the protocol, clock-driven."""

from __future__ import annotations

import json
import threading

import pytest

from chalicelib.errors import TesseraError
from chalicelib.grants import TokenContext, lookup
from chalicelib.routes.oauth import grant_deps
from chalicelib.security.opaque import DEVICE_CODE
from chalicelib.services.device_flow import USER_CODE_ALPHABET, normalise_user_code
from tests.api.helpers import CLI, RS, RS_SECRET, basic, bearer, body, form, seed

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def start(client, client_id=CLI, **extra):
    response = form(client, "/oauth/device_authorization", client_id=client_id, **extra)
    assert response.status_code == 200, response.body
    return body(response)


def poll(client, device_code, client_id=CLI):
    return form(client, "/oauth/token", grant_type=DEVICE_GRANT, client_id=client_id,
                device_code=device_code)


def approve(ctr, user_code, username="alice", allow=True):
    flow = ctr.device_flow
    code = normalise_user_code(user_code)
    request = flow.find(ctr.devices_repo.table.get(ctr.devices_repo.code_key(code)))
    user = ctr.identities.find_user(username)
    if allow:
        return flow.approve(request, user, request.scope, auth_time=ctr.clock.now())
    return flow.deny(request, user)


def error_of(response):
    return body(response)["error"]


@pytest.fixture
def seeded(client, ctr):
    seed(ctr)
    return client


# -- the device authorization request (RFC 8628 §3.1, §3.2) -------------------------------

def test_device_authorization_returns_codes_and_uris(seeded, ctr):
    response = form(seeded, "/oauth/device_authorization", client_id=CLI, scope="openid profile")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    got = body(response)
    assert DEVICE_CODE.matches(got["device_code"])
    user_code = got["user_code"]
    assert len(user_code) == 9 and user_code[4] == "-"
    assert set(user_code.replace("-", "")) <= set(USER_CODE_ALPHABET)
    assert got["verification_uri"] == "https://tessera.test/device"
    assert got["verification_uri_complete"] == f"https://tessera.test/device?user_code={user_code}"
    assert got["expires_in"] == 300 and got["interval"] == 5


def test_device_code_is_stored_only_as_its_digest(seeded, ctr):
    got = start(seeded)
    table = ctr.devices_repo.table
    items = table.client.scan(TableName=table.name)["Items"]
    assert len(items) == 2
    assert got["device_code"] not in json.dumps(items)


def test_device_authorization_refuses_a_client_without_the_grant(seeded):
    response = form(seeded, "/oauth/device_authorization", client_id="other-cli")
    assert response.status_code == 400 and error_of(response) == "unauthorized_client"


def test_device_authorization_refuses_unknown_scope(seeded):
    response = form(seeded, "/oauth/device_authorization", client_id=CLI, scope="openid admin")
    assert response.status_code == 400 and error_of(response) == "invalid_scope"


def test_device_authorization_requires_client_authentication(seeded):
    response = form(seeded, "/oauth/device_authorization", scope="openid")
    assert response.status_code == 401 and error_of(response) == "invalid_client"
    bad = form(seeded, "/oauth/device_authorization", headers=basic(RS, "wrong"))
    assert bad.status_code == 401 and error_of(bad) == "invalid_client"


def test_confidential_client_without_the_grant_is_unauthorized(seeded):
    response = form(seeded, "/oauth/device_authorization", headers=basic(RS, RS_SECRET))
    assert response.status_code == 400 and error_of(response) == "unauthorized_client"


def test_user_code_collision_draws_another_code(seeded, ctr):
    ctr.device_flow.user_codes = iter(["BCDFGHJK", "BCDFGHJK", "LMNPQRST"]).__next__
    first = start(seeded)
    second = start(seeded)
    assert first["user_code"] == "BCDF-GHJK" and second["user_code"] == "LMNP-QRST"


def test_an_expired_reservation_frees_its_user_code(seeded, ctr, clock):
    ctr.device_flow.user_codes = lambda: "BCDFGHJK"
    start(seeded)
    clock.advance(301)
    assert start(seeded)["user_code"] == "BCDF-GHJK"


def test_discovery_lists_the_device_endpoint_and_grant(seeded):
    doc = body(seeded.http.get("/.well-known/openid-configuration"))
    assert doc["device_authorization_endpoint"] == "https://tessera.test/oauth/device_authorization"
    assert DEVICE_GRANT in doc["grant_types_supported"]


# -- polling (RFC 8628 §3.4, §3.5) -----------------------------------------------------------

def test_poll_before_approval_is_authorization_pending(seeded):
    got = start(seeded)
    response = poll(seeded, got["device_code"])
    assert response.status_code == 400 and error_of(response) == "authorization_pending"
    assert response.headers["Cache-Control"] == "no-store"


def test_polling_too_fast_is_slow_down_with_the_new_interval(seeded, clock):
    got = start(seeded)
    assert error_of(poll(seeded, got["device_code"])) == "authorization_pending"
    clock.advance(1)
    fast = poll(seeded, got["device_code"])
    assert error_of(fast) == "slow_down" and body(fast)["interval"] == 10
    # The new interval holds for all later requests: 5 s is now too soon.
    clock.advance(5)
    again = poll(seeded, got["device_code"])
    assert error_of(again) == "slow_down" and body(again)["interval"] == 15
    clock.advance(15)
    assert error_of(poll(seeded, got["device_code"])) == "authorization_pending"


def test_polling_allows_for_client_clock_drift(seeded, clock):
    got = start(seeded)
    assert error_of(poll(seeded, got["device_code"])) == "authorization_pending"
    clock.advance(4)   # 80 % of the 5 s interval: on time, given clock drift
    assert error_of(poll(seeded, got["device_code"])) == "authorization_pending"
    clock.advance(3)
    assert error_of(poll(seeded, got["device_code"])) == "slow_down"


def test_approved_code_gives_tokens_that_work_once(seeded, ctr, clock):
    got = start(seeded, scope="openid profile email")
    approve(ctr, got["user_code"])
    clock.advance(5)
    response = poll(seeded, got["device_code"])
    assert response.status_code == 200, response.body
    tokens = body(response)
    assert tokens["token_type"] == "Bearer" and "id_token" in tokens
    assert tokens["scope"] == "openid profile email"
    me = seeded.http.get("/v1/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200 and body(me)["email"] == "alice@example.com"
    clock.advance(5)
    again = poll(seeded, got["device_code"])
    assert again.status_code == 400 and error_of(again) == "invalid_grant"


def test_device_login_creates_a_session_like_the_password_grant(seeded, ctr, clock):
    got = start(seeded)
    approve(ctr, got["user_code"])
    tokens = body(poll(seeded, got["device_code"]))
    info = body(seeded.http.get("/v1/token-info", headers=bearer(tokens["access_token"])))
    sessions = ctr.sessions.list_for_user(ctr.identities.find_user("alice").id)
    assert len(sessions) == 1
    session = sessions[0]
    assert session.expires_at - session.created_at == 24 * 3600
    assert session.idle_deadline - session.created_at == 10 * 3600
    assert info, "token-info answers for a device-login token"
    refreshed = form(seeded, "/oauth/token", grant_type="refresh_token", client_id=CLI,
                     refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 200


def test_denied_code_is_access_denied(seeded, ctr):
    got = start(seeded)
    approve(ctr, got["user_code"], allow=False)
    response = poll(seeded, got["device_code"])
    assert response.status_code == 400 and error_of(response) == "access_denied"


def test_expired_code_is_expired_token_even_if_the_item_remains(seeded, ctr, clock):
    got = start(seeded)
    clock.advance(300)
    response = poll(seeded, got["device_code"])
    assert error_of(response) == "expired_token"


def test_approved_but_expired_code_gives_no_tokens(seeded, ctr, clock):
    got = start(seeded)
    approve(ctr, got["user_code"])
    clock.advance(301)
    assert error_of(poll(seeded, got["device_code"])) == "expired_token"


def test_another_clients_device_code_is_invalid_grant(seeded, ctr):
    ctr.identities.create_client("other-device", public=True, grant_types=[DEVICE_GRANT],
                                 scopes=["openid"])
    got = start(seeded)
    approve(ctr, got["user_code"])
    response = poll(seeded, got["device_code"], client_id="other-device")
    assert response.status_code == 400 and error_of(response) == "invalid_grant"
    # ... and the rightful client still gets its tokens.
    assert poll(seeded, got["device_code"]).status_code == 200


def test_unknown_and_malformed_device_codes_are_invalid_grant(seeded):
    assert error_of(poll(seeded, DEVICE_CODE.mint())) == "invalid_grant"
    assert error_of(poll(seeded, "tsd_not-a-code")) == "invalid_grant"


def test_missing_device_code_is_invalid_request(seeded):
    response = form(seeded, "/oauth/token", grant_type=DEVICE_GRANT, client_id=CLI)
    assert response.status_code == 400 and error_of(response) == "invalid_request"


def test_client_without_the_grant_cannot_poll(seeded):
    got = start(seeded)
    response = poll(seeded, got["device_code"], client_id="other-cli")
    assert error_of(response) == "unauthorized_client"


def test_a_code_is_decided_only_once(seeded, ctr):
    from chalicelib.errors import ConditionFailed

    got = start(seeded)
    approve(ctr, got["user_code"])
    with pytest.raises(ConditionFailed):
        approve(ctr, got["user_code"], allow=False)


def test_concurrent_polls_of_an_approved_code_give_exactly_one_token_response(seeded, ctr):
    from tests.concurrency import atomic_container

    got = start(seeded, scope="openid")
    approve(ctr, got["user_code"])
    ctr = atomic_container(ctr)
    cli = ctr.client_directory.get(CLI)
    grant = lookup(DEVICE_GRANT)
    results: list[object] = []
    barrier = threading.Barrier(8)

    def one_poll() -> None:
        ctx = TokenContext(deps=grant_deps(ctr), issuer="https://tessera.test",
                           source_ip="10.0.0.1", user_agent="test")
        barrier.wait()
        try:
            results.append(grant.handle(ctx, cli, {"device_code": got["device_code"]}, {}))
        except TesseraError as err:
            results.append(err)

    threads = [threading.Thread(target=one_poll) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    responses = [r for r in results if isinstance(r, dict)]
    refusals = [r for r in results if isinstance(r, TesseraError)]
    assert len(responses) == 1 and len(refusals) == 7
    assert {getattr(r, "error", "") for r in refusals} <= {"invalid_grant", "temporarily_unavailable"}
    assert len(ctr.sessions.list_for_user(ctr.identities.find_user("alice").id)) == 1


# -- user codes as people type them ------------------------------------------------------

@pytest.mark.parametrize("typed", ["WDJB-MJHT", "wdjbmjht", " wdjb mjht ", "WDJB–MJHT",
                                   "ＷＤＪＢ－ＭＪＨＴ", "wd-jb-mj-ht"])
def test_user_codes_ignore_case_space_dashes_and_width(typed):
    assert normalise_user_code(typed) == "WDJBMJHT"


@pytest.mark.parametrize("typed", ["WDJB-MJH", "WDJB-MJHTX", "WDJB-MJH0", "WDJA-MJHT",
                                   "WDJB-MJHТ", "", "WDJB_MJHT"])
def test_user_codes_outside_the_alphabet_are_refused_not_fuzzy_matched(typed):
    # "Т" above is Cyrillic: a look-alike is refused, never mapped to "T".
    assert normalise_user_code(typed) is None


# -- what the device's session inherits from the approval ---------------------------------

def test_a_device_session_carries_the_browser_sign_in_time_not_the_poll_time(seeded, ctr, clock):
    import jwt

    from tests.api.test_device_page import Browser, sign_in_and_continue

    browser = Browser(seeded)
    first = start(seeded)
    signed_in_at = clock.now()
    sign_in_and_continue(browser, first["user_code"])
    browser.post(user_code=first["user_code"], action="approve")
    clock.advance(2 * 3600)
    # hours later the same browser session approves another device, no password typed
    later = start(seeded, scope="openid tokens:manage")
    browser.get("/device")
    browser.post(user_code=later["user_code"], action="continue")
    approved = browser.post(user_code=later["user_code"], action="approve")
    assert approved.status_code == 200, approved.body
    response = poll(seeded, later["device_code"])
    assert response.status_code == 200
    access_token = body(response)["access_token"]
    claims = jwt.decode(access_token, options={"verify_signature": False})
    assert claims["auth_time"] == signed_in_at      # OIDC Core §2: when the person authenticated
    # so the "sign-in younger than 10 minutes" rule of the PAT API asks for the password
    created = seeded.http.post("/v1/tokens", headers={**bearer(access_token),
                                                      "Content-Type": "application/json"},
                               body=json.dumps({"description": "ci", "scopes": ["api:read"],
                                                "expires_at": "2027-03-01"}).encode())
    assert created.status_code == 403 and "password" in body(created)["detail"]


def test_a_device_poll_mints_only_the_approved_scopes_the_user_still_holds(seeded, ctr):
    got = start(seeded, scope="openid profile")
    approve(ctr, got["user_code"])
    ctr.identities.set_scopes("alice", ["openid", "email"])
    response = poll(seeded, got["device_code"])
    assert response.status_code == 200 and body(response)["scope"] == "openid"
