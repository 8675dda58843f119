"""Sessions, lifetimes and refresh-token rotation (SPEC §3), driven by one fake clock."""

import pytest

from chalicelib.config import Settings
from tests.api.helpers import CLI, bearer, body, refresh, seed, tokens
from tests.concurrency import atomic_container, run_together

HOUR = 3600


@pytest.fixture(autouse=True)
def _seeded(ctr):
    seed(ctr)


def me(client, access_token):
    return client.http.get("/v1/me", headers=bearer(access_token))


def test_password_grant_returns_the_documented_response(client):
    t = tokens(client, scope="openid profile email")
    assert set(t) == {"access_token", "token_type", "expires_in", "refresh_token",
                      "refresh_expires_in", "scope", "id_token"}
    assert t["refresh_token"].startswith("tsr_")
    assert t["refresh_expires_in"] == 10 * HOUR
    assert t["scope"] == "openid profile email"


def test_id_token_only_with_openid(client):
    assert "id_token" not in tokens(client, scope="profile")


def test_access_token_is_an_rfc9068_jwt(client, ctr):
    import jwt

    t = tokens(client, scope="openid")
    header = jwt.get_unverified_header(t["access_token"])
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256"
    assert header["kid"] == ctr.keyring.current_kid()
    claims = jwt.decode(t["access_token"], options={"verify_signature": False})
    for claim in ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "sid"):
        assert claim in claims
    assert claims["exp"] - claims["iat"] == 300 and claims["client_id"] == CLI


def test_access_token_works_until_exp_minus_one_and_not_at_exp(client, clock):
    t = tokens(client)
    clock.advance(299)
    assert me(client, t["access_token"]).status_code == 200
    clock.advance(1)
    r = me(client, t["access_token"])
    assert r.status_code == 401
    assert body(r) == {"type": "about:blank", "title": "Unauthorized", "status": 401,
                       "detail": "Provided token is not valid"}


def test_session_survives_idle_just_under_ten_hours(client, clock):
    t = tokens(client)
    clock.advance(10 * HOUR - 1)
    assert refresh(client, t["refresh_token"]).status_code == 200


def test_session_dies_after_ten_hours_idle(client, clock):
    t = tokens(client)
    clock.advance(10 * HOUR)
    r = refresh(client, t["refresh_token"])
    assert r.status_code == 400 and body(r)["error"] == "invalid_grant"


def test_refresh_moves_the_idle_deadline(client, clock):
    t = tokens(client)
    clock.advance(9 * HOUR)
    t2 = body(refresh(client, t["refresh_token"]))
    clock.advance(9 * HOUR)
    assert refresh(client, t2["refresh_token"]).status_code == 200


def test_cap_of_24_hours_holds_even_with_hourly_refreshes(client, clock):
    current = tokens(client)["refresh_token"]
    for _ in range(23):
        clock.advance(HOUR)
        r = refresh(client, current)
        assert r.status_code == 200, r.body
        current = body(r)["refresh_token"]
    clock.advance(HOUR - 1)
    r = refresh(client, current)
    assert r.status_code == 200
    assert body(r)["refresh_expires_in"] == 1
    clock.advance(1)
    r = refresh(client, body(r)["refresh_token"])
    assert r.status_code == 400 and body(r)["error"] == "invalid_grant"


def test_refresh_rotates_and_the_access_token_still_names_the_session(client):
    import jwt

    t = tokens(client)
    t2 = body(refresh(client, t["refresh_token"]))
    assert t2["refresh_token"] != t["refresh_token"]
    sid1 = jwt.decode(t["access_token"], options={"verify_signature": False})["sid"]
    sid2 = jwt.decode(t2["access_token"], options={"verify_signature": False})["sid"]
    assert sid1 == sid2


def test_retry_within_grace_gets_the_same_successor(client, clock):
    t = tokens(client)
    first = body(refresh(client, t["refresh_token"]))
    clock.advance(30)
    retry = body(refresh(client, t["refresh_token"]))
    assert retry["refresh_token"] == first["refresh_token"]
    assert refresh(client, first["refresh_token"]).status_code == 200


def test_reuse_after_grace_ends_the_session_and_the_successor_dies(client, clock):
    t = tokens(client)
    successor = body(refresh(client, t["refresh_token"]))
    clock.advance(31)
    reused = refresh(client, t["refresh_token"])
    assert reused.status_code == 400 and body(reused)["error"] == "invalid_grant"
    assert refresh(client, successor["refresh_token"]).status_code == 400
    assert me(client, successor["access_token"]).status_code == 401


def test_reuse_of_an_older_generation_also_ends_the_session(client, clock):
    t = tokens(client)
    gen1 = body(refresh(client, t["refresh_token"]))["refresh_token"]
    clock.advance(60)
    gen2 = body(refresh(client, gen1))["refresh_token"]
    clock.advance(60)
    assert refresh(client, t["refresh_token"]).status_code == 400
    assert refresh(client, gen2).status_code == 400


def test_forged_token_for_a_real_session_does_not_end_it(client):
    from chalicelib.security.opaque import REFRESH

    t = tokens(client)
    session_id = REFRESH.parse(t["refresh_token"])
    forged = REFRESH.mint(session_id)
    assert refresh(client, forged).status_code == 400
    assert refresh(client, t["refresh_token"]).status_code == 200


def test_refresh_is_bound_to_its_client(client):
    t = tokens(client)
    r = refresh(client, t["refresh_token"], client_id="other-cli")
    assert r.status_code == 400 and body(r)["error"] == "invalid_grant"
    assert refresh(client, t["refresh_token"]).status_code == 200


def test_refresh_cannot_widen_scope(client):
    t = tokens(client, scope="profile")
    r = refresh(client, t["refresh_token"], scope="profile email")
    assert r.status_code == 400 and body(r)["error"] == "invalid_scope"
    narrowed = refresh(client, t["refresh_token"], scope="profile")
    assert narrowed.status_code == 200 and body(narrowed)["scope"] == "profile"


def test_stale_session_that_ttl_has_not_removed_is_refused(client, ctr, clock):
    t = tokens(client)
    clock.advance(25 * HOUR)
    from chalicelib.security.opaque import REFRESH

    assert ctr.sessions_repo.get_item(REFRESH.parse(t["refresh_token"])) is not None
    assert refresh(client, t["refresh_token"]).status_code == 400
    assert me(client, t["access_token"]).status_code == 401


def _concurrent_refreshes(ctr, token, n=2):
    atomic = atomic_container(ctr)
    return run_together(n, lambda: atomic.sessions.rotate(token, CLI))


def test_two_concurrent_refreshes_yield_one_successor_within_grace(client, ctr):
    t = tokens(client)
    results = _concurrent_refreshes(ctr, t["refresh_token"])
    assert [kind for kind, _ in results] == ["ok", "ok"]
    successors = {r.refresh_token for _, r in results}
    assert len(successors) == 1
    assert sorted(r.retried for _, r in results) == [False, True]


def test_two_concurrent_refreshes_in_strict_mode_leave_one_winner(client, ctr):
    from dataclasses import replace

    from chalicelib.errors import InvalidGrant

    t = tokens(client)
    strict = atomic_container(ctr)
    strict.sessions.settings = replace(ctr.settings, refresh_grace_seconds=0)
    results = run_together(2, lambda: strict.sessions.rotate(t["refresh_token"], CLI))
    kinds = sorted(kind for kind, _ in results)
    assert kinds == ["error", "ok"]
    error = next(value for kind, value in results if kind == "error")
    assert isinstance(error, InvalidGrant)
    # Strict mode: the loser looks like reuse, so the whole session ends.
    winner = next(value for kind, value in results if kind == "ok")
    assert refresh(client, winner.refresh_token).status_code == 400


def test_a_session_stops_rotating_at_its_limit_and_its_item_stays_small(client, ctr, clock):
    from dataclasses import replace

    ctr.sessions.settings = replace(ctr.settings, session_max_rotations=5)
    current = tokens(client)["refresh_token"]
    for _ in range(5):
        clock.advance(60)
        r = refresh(client, current)
        assert r.status_code == 200
        current = body(r)["refresh_token"]
    clock.advance(60)
    r = refresh(client, current)
    assert r.status_code == 400 and "too many times" in body(r)["error_description"]


def test_settings_default_to_spec_lifetimes():
    s = Settings.from_env({})
    assert (s.session_max_seconds, s.session_idle_seconds, s.access_token_seconds,
            s.refresh_grace_seconds, s.device_code_seconds, s.device_poll_interval,
            s.purge_rate_minutes) == (24 * HOUR, 10 * HOUR, 300, 30, 300, 5, 15)
