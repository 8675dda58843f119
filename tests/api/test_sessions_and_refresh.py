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


def test_a_refresh_answers_an_id_token_only_where_the_scope_has_openid(client):
    import jwt

    with_openid = body(refresh(client, tokens(client, scope="openid profile")["refresh_token"]))
    assert jwt.get_unverified_header(with_openid["id_token"])["alg"] == "RS256"
    assert "id_token" not in body(refresh(client, tokens(client, scope="profile")["refresh_token"]))
    # narrowed away from openid (RFC 6749 §6): no ID token either
    narrowed = refresh(client, tokens(client, scope="openid profile")["refresh_token"], scope="profile")
    assert narrowed.status_code == 200 and "id_token" not in body(narrowed)


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


# -- scope never widens, on any path (RFC 6749 §6) -------------------------------------------

def test_grace_retry_cannot_widen_scope(client, clock):
    t = tokens(client, scope="openid")
    first = body(refresh(client, t["refresh_token"]))
    clock.advance(5)
    wider = refresh(client, t["refresh_token"], scope="openid api:write tokens:manage email")
    assert wider.status_code == 400 and body(wider)["error"] == "invalid_scope"
    retry = refresh(client, t["refresh_token"], scope="openid")
    assert retry.status_code == 200
    assert body(retry)["refresh_token"] == first["refresh_token"]
    assert body(retry)["scope"] == "openid"


def test_a_grace_retry_without_a_scope_gets_the_sessions_scope(client, clock):
    import jwt

    t = tokens(client, scope="openid profile")
    refresh(client, t["refresh_token"], scope="openid")
    retry = body(refresh(client, t["refresh_token"]))
    claims = jwt.decode(retry["access_token"], options={"verify_signature": False})
    assert retry["scope"] == claims["scope"] == "openid profile"


# -- the stored successor (SPEC §4: an AEAD, no home-made cipher) ---------------------------------

def _item(ctr, refresh_token):
    from chalicelib.security.opaque import REFRESH

    return ctr.sessions_repo.get_item(REFRESH.parse(refresh_token))


def test_the_successor_is_sealed_and_opens_only_with_the_previous_token_and_session():
    from chalicelib.security.opaque import REFRESH
    from chalicelib.services.sessions import unwrap_successor, wrap_successor

    previous, successor = REFRESH.mint("A" * 16), REFRESH.mint("A" * 16)
    wrap = wrap_successor(previous, successor, "A" * 16)
    assert wrap != wrap_successor(previous, successor, "A" * 16)      # a fresh nonce each time
    assert unwrap_successor(previous, wrap, "A" * 16) == successor
    assert unwrap_successor(previous, wrap, "B" * 16) is None          # bound to its session
    assert unwrap_successor(successor, wrap, "A" * 16) is None         # and to the previous token


def test_a_tampered_successor_wrap_is_invalid_grant_not_a_500(client, ctr, clock):
    t = tokens(client)
    first = body(refresh(client, t["refresh_token"]))
    import base64

    item = _item(ctr, t["refresh_token"])
    raw = bytearray(base64.urlsafe_b64decode(item["rt_next_wrap"]))
    raw[len(raw) // 2] ^= 1                      # one bit of the sealed successor
    ctr.sessions_repo.table.update(ctr.sessions_repo.key(item["id"]), "SET rt_next_wrap = :w",
                                   values={":w": base64.urlsafe_b64encode(raw).decode("ascii")})
    clock.advance(5)
    retry = refresh(client, t["refresh_token"])
    assert retry.status_code == 400 and body(retry)["error"] == "invalid_grant"
    # a changed wrap is detected as such, not mistaken for reuse: the session lives on
    assert refresh(client, first["refresh_token"]).status_code == 200


# -- ttl: the moment the item becomes useless -------------------------------------------------

def test_a_fresh_sessions_ttl_is_its_idle_deadline(client, ctr, clock):
    t = tokens(client)
    item = _item(ctr, t["refresh_token"])
    assert item["ttl"] == item["idle_deadline"] == clock.now() + 10 * HOUR


def test_a_rotation_never_sets_the_idle_deadline_or_ttl_past_the_cap(client, ctr, clock):
    current = tokens(client)["refresh_token"]
    cap = clock.now() + 24 * HOUR
    clock.advance(9 * HOUR)
    current = body(refresh(client, current))["refresh_token"]
    assert _item(ctr, current)["ttl"] == clock.now() + 10 * HOUR
    clock.advance(9 * HOUR)                  # 18 h after login: now + 10 h is past the cap
    r = body(refresh(client, current))
    item = _item(ctr, r["refresh_token"])
    assert item["ttl"] == item["idle_deadline"] == item["expires_at"] == cap
    assert r["refresh_expires_in"] == 6 * HOUR


# -- an SDK retry of a rotation that committed (SPEC §8) ------------------------------------------

class LoseFirstResponse:
    """A before-send hook: the first UpdateItem reaches moto (and commits), then its
    response is lost as a read timeout; botocore's standard retry sends it again."""

    def __init__(self):
        self.attempts = 0

    def __call__(self, request, event_name, **kwargs):
        from botocore.exceptions import ReadTimeoutError
        from moto.core.models import botocore_stubber

        self.attempts += 1
        if self.attempts == 1:
            botocore_stubber(event_name, request)          # the write happens ...
            raise ReadTimeoutError(endpoint_url=request.url)  # ... the answer does not arrive
        return None


def test_a_retried_rotation_whose_first_attempt_committed_succeeds_in_strict_mode(client, ctr):
    from dataclasses import replace

    ctr.sessions.settings = replace(ctr.settings, refresh_grace_seconds=0)
    t = tokens(client)
    events = ctr.dynamodb().meta.events
    lose = LoseFirstResponse()
    events.register_first("before-send.dynamodb.UpdateItem", lose)
    try:
        r = refresh(client, t["refresh_token"])
    finally:
        events.unregister("before-send.dynamodb.UpdateItem", lose)
    assert lose.attempts == 2
    assert r.status_code == 200, r.body
    successor = body(r)
    # our own retry did not look like reuse: the session lives and the successor works
    assert me(client, successor["access_token"]).status_code == 200
    assert refresh(client, successor["refresh_token"]).status_code == 200
