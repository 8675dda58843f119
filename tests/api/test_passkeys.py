"""Passkeys (SPEC §11, WebAuthn L2) through the API and the service, with the
software authenticator of ``tests.webauthn_support``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.errors import ConditionFailed, Forbidden
from chalicelib.models import user_id_for
from chalicelib.services.security_log import Where
from tests.api.helpers import bearer, body, refresh, seed, tokens
from tests.concurrency import atomic_container, run_together
from tests.conftest import ISSUER
from tests.webauthn_support import SoftAuthenticator, b64url

JSON = {"Content-Type": "application/json"}
ALICE = user_id_for("alice")
HERE = Where("203.0.113.9", "pytest")


@pytest.fixture
def alice(client: Any, ctr: Any) -> str:
    seed(ctr)
    return str(tokens(client, scope="sessions:manage")["access_token"])


def call(client: Any, method: str, path: str, token: str, payload: Any = None) -> Any:
    data = json.dumps(payload).encode() if payload is not None else b""
    return getattr(client.http, method)(path, body=data, headers={**JSON, **bearer(token)})


def register(client: Any, token: str, auth: SoftAuthenticator, name: str = "laptop") -> Any:
    options = call(client, "post", "/v1/mfa/passkeys/options", token)
    assert options.status_code == 200, options.body
    return call(client, "post", "/v1/mfa/passkeys", token,
                {"name": name, "credential": auth.create(body(options))})


def user(ctr: Any) -> Any:
    return ctr.users.get(ALICE)


# -- registration ------------------------------------------------------------------------

def test_creation_options_ask_for_a_discoverable_verified_credential_of_the_issuer(client,
                                                                                    alice):
    r = call(client, "post", "/v1/mfa/passkeys/options", alice)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    o = body(r)
    assert o["rp"] == {"id": "tessera.test", "name": "Tessera"}
    assert o["user"]["id"] == b64url(ALICE.encode()) and o["user"]["name"] == "alice"
    assert o["authenticatorSelection"]["residentKey"] == "required"
    assert o["authenticatorSelection"]["userVerification"] == "required"
    assert {p["alg"] for p in o["pubKeyCredParams"]} == {-7, -8, -257}
    assert o["excludeCredentials"] == []


def test_a_registered_passkey_is_listed_logged_and_excluded_next_time(client, ctr, alice):
    auth = SoftAuthenticator(ISSUER)
    r = register(client, alice, auth, "work laptop")
    assert r.status_code == 201, r.body
    view = body(r)
    assert set(view) == {"id", "name", "created_at", "last_used_at", "recovery_codes"}
    assert len(view["recovery_codes"]) == 10     # the first second factor
    assert view["name"] == "work laptop" and view["last_used_at"] is None
    passkey = user(ctr).second_factors.passkey(view["id"])
    assert passkey is not None and passkey.credential_id == b64url(auth.credential_id)
    assert passkey.amr == "hwk" and user(ctr).second_factors.enrolled
    events, _ = ctr.security_log.page(ALICE, kind="mfa_added")
    assert [e.detail for e in events] == [{"method": "passkey", "name": "work laptop"}]
    again = body(call(client, "post", "/v1/mfa/passkeys/options", alice))
    assert [c["id"] for c in again["excludeCredentials"]] == [b64url(auth.credential_id)]


def test_a_backup_eligible_passkey_is_a_software_key(client, ctr, alice):
    assert register(client, alice, SoftAuthenticator(ISSUER, backup_eligible=True)).status_code \
        == 201
    assert user(ctr).second_factors.passkeys[0].amr == "swk"


def test_a_registration_response_is_accepted_once(client, ctr, alice):
    options = body(call(client, "post", "/v1/mfa/passkeys/options", alice))
    credential = SoftAuthenticator(ISSUER).create(options)
    first = call(client, "post", "/v1/mfa/passkeys", alice, {"name": "a", "credential": credential})
    assert first.status_code == 201
    replay = call(client, "post", "/v1/mfa/passkeys", alice,
                  {"name": "b", "credential": credential})
    assert replay.status_code == 409
    other = SoftAuthenticator(ISSUER).create(options)   # the spent challenge, another key
    assert call(client, "post", "/v1/mfa/passkeys", alice,
                {"name": "c", "credential": other}).status_code == 409
    assert len(user(ctr).second_factors.passkeys) == 1


@pytest.mark.parametrize("how", ["origin", "no_uv", "rp_id"])
def test_a_registration_from_elsewhere_or_without_verification_is_refused(client, ctr, alice,
                                                                          how):
    options = body(call(client, "post", "/v1/mfa/passkeys/options", alice))
    auth = SoftAuthenticator(ISSUER, rp_id="evil.test" if how == "rp_id" else "")
    credential = auth.create(options, uv=how != "no_uv",
                             origin="https://evil.test" if how == "origin" else None)
    r = call(client, "post", "/v1/mfa/passkeys", alice, {"name": "x", "credential": credential})
    assert r.status_code == 422, r.body
    assert r.headers["Content-Type"] == "application/problem+json"
    assert not user(ctr).second_factors.passkeys


def test_bad_bodies_are_422(client, alice):
    r = call(client, "post", "/v1/mfa/passkeys", alice, {"name": "", "credential": "nope"})
    assert r.status_code == 422
    pointers = {e["pointer"] for e in body(r)["errors"]}
    assert pointers == {"#/name", "#/credential"}
    r = call(client, "post", "/v1/mfa/passkeys", alice,
             {"name": "x", "credential": {"response": {"clientDataJSON": "!!"}}})
    assert r.status_code == 422


def test_at_most_ten_passkeys(client, ctr, alice):
    for i in range(10):
        assert register(client, alice, SoftAuthenticator(ISSUER), f"key {i}").status_code == 201
    assert call(client, "post", "/v1/mfa/passkeys/options", alice).status_code == 409


def test_the_calls_need_sessions_manage_and_a_recent_sign_in(client, ctr, clock, alice):
    narrow = tokens(client, scope="tokens:read")["access_token"]
    assert call(client, "post", "/v1/mfa/passkeys/options", narrow).status_code == 403
    rt = tokens(client, scope="sessions:manage offline_access")["refresh_token"]
    clock.advance(ctr.settings.recent_signin_seconds + 1)
    old = body(refresh(client, rt))["access_token"]     # an old sign-in, refreshed
    stale = call(client, "post", "/v1/mfa/passkeys/options", old)
    assert stale.status_code == 403 and "password" in body(stale)["detail"]
    confirmed = call(client, "post", "/v1/mfa/passkeys/options", old,
                     {"password": "password4alice"})
    assert confirmed.status_code == 200


def test_removing_a_passkey(client, ctr, alice):
    view = body(register(client, alice, SoftAuthenticator(ISSUER), "old key"))
    r = call(client, "delete", f"/v1/mfa/passkeys/{view['id']}", alice)
    assert r.status_code == 204
    assert not user(ctr).second_factors.passkeys
    events, _ = ctr.security_log.page(ALICE, kind="mfa_removed")
    assert [e.detail for e in events] == [{"method": "passkey", "name": "old key"}]
    assert call(client, "delete", f"/v1/mfa/passkeys/{view['id']}", alice).status_code == 404


# -- authentication (the service) ----------------------------------------------------------

@pytest.fixture
def enrolled(client: Any, ctr: Any, alice: str) -> SoftAuthenticator:
    auth = SoftAuthenticator(ISSUER)
    assert register(client, alice, auth).status_code == 201
    return auth


def test_a_second_factor_assertion_lists_the_users_credentials_and_counts(ctr, clock, enrolled):
    options = json.loads(ctr.webauthn.authentication_options(ISSUER, user(ctr)))
    assert [c["id"] for c in options["allowCredentials"]] == [b64url(enrolled.credential_id)]
    assert options["userVerification"] == "required" and options["rpId"] == "tessera.test"
    clock.advance(5)
    asserted = ctr.webauthn.verify(ISSUER, enrolled.get(options), user(ctr))
    ctr.transact(asserted.ops)
    assert asserted.method == "hwk"
    passkey = user(ctr).second_factors.passkeys[0]
    assert passkey.sign_count == 1 and passkey.last_used_at == clock.now()


def test_a_first_factor_assertion_names_its_user(ctr, enrolled):
    options = json.loads(ctr.webauthn.authentication_options(ISSUER))
    assert options["allowCredentials"] == []
    asserted = ctr.webauthn.verify(ISSUER, enrolled.get(options))
    assert asserted.user.id == ALICE
    ctr.transact(asserted.ops)


def test_an_assertion_is_accepted_once(client, ctr, alice):
    """An authenticator without a counter: only the spent challenge refuses the replay."""
    auth = SoftAuthenticator(ISSUER, counter=False)
    assert register(client, alice, auth).status_code == 201
    assertion = auth.get(ctr.webauthn.authentication_options(ISSUER))
    ctr.transact(ctr.webauthn.verify(ISSUER, assertion).ops)
    replayed = ctr.webauthn.verify(ISSUER, assertion)       # signature and counter still fine
    with pytest.raises(ConditionFailed):
        ctr.transact(replayed.ops)


def test_a_challenge_of_a_sign_in_does_not_serve_a_second_factor(ctr, enrolled):
    options = ctr.webauthn.authentication_options(ISSUER)     # first factor: user ""
    asserted = ctr.webauthn.verify(ISSUER, enrolled.get(options), user(ctr))
    with pytest.raises(ConditionFailed):
        ctr.transact(asserted.ops)


def test_a_stale_counter_is_refused_and_logged(ctr, enrolled, audit_events):
    ctr.transact(ctr.webauthn.verify(ISSUER, enrolled.get(
        ctr.webauthn.authentication_options(ISSUER))).ops)
    clone = enrolled.get(ctr.webauthn.authentication_options(ISSUER), count=1)
    audit_events()
    with pytest.raises(Forbidden):
        ctr.webauthn.verify(ISSUER, clone)
    assert any(e.get("event") == "passkey_counter_stale" for e in audit_events())


def test_a_stale_counter_loses_its_conditional_write_too(ctr, enrolled):
    """Two assertions checked against the same stored count: the second to commit loses."""
    a = ctr.webauthn.verify(ISSUER, enrolled.get(ctr.webauthn.authentication_options(ISSUER)))
    b = ctr.webauthn.verify(ISSUER, enrolled.get(ctr.webauthn.authentication_options(ISSUER)))
    ctr.transact(b.ops)      # count 2
    with pytest.raises(ConditionFailed):
        ctr.transact(a.ops)  # count 1, checked against 0


def test_an_authenticator_without_a_counter_keeps_working(client, ctr, alice):
    auth = SoftAuthenticator(ISSUER, counter=False)
    assert register(client, alice, auth).status_code == 201
    for _ in range(2):
        ctr.transact(ctr.webauthn.verify(ISSUER, auth.get(
            ctr.webauthn.authentication_options(ISSUER))).ops)
    assert user(ctr).second_factors.passkeys[0].sign_count == 0


@pytest.mark.parametrize("how", ["origin", "no_uv", "other_key"])
def test_a_bad_assertion_is_refused(ctr, enrolled, how):
    options = ctr.webauthn.authentication_options(ISSUER)
    if how == "other_key":
        forger = SoftAuthenticator(ISSUER, credential_id=enrolled.credential_id,
                                   user_handle=enrolled.user_handle)
        assertion = forger.get(options)
    else:
        assertion = enrolled.get(options, uv=how != "no_uv",
                                 origin="https://evil.test" if how == "origin" else None)
    with pytest.raises(Forbidden):
        ctr.webauthn.verify(ISSUER, assertion)


def test_twenty_threads_replaying_one_assertion_get_one_sign_in(ctr, enrolled):
    c = atomic_container(ctr)
    assertion = enrolled.get(c.webauthn.authentication_options(ISSUER))

    def sign_in() -> Any:
        asserted = c.webauthn.verify(ISSUER, assertion)
        return c.web_signin.sign_in_with_passkey(asserted.user, asserted.method, asserted.ops,
                                                 "203.0.113.9", "pytest")

    results = run_together(20, sign_in)
    wins = [value for kind, value in results if kind == "ok"]
    assert len(wins) == 1 and wins[0].ready and wins[0].session.amr == ("hwk", "mfa")
    # A loser either lost the conditional writes or read the count its winner wrote.
    assert all(isinstance(value, (ConditionFailed, Forbidden))
               for kind, value in results if kind == "error")
    sessions = [s for s in c.sessions.list_for_user(ALICE) if s.kind == "web"]
    assert len(sessions) == 1
