"""TOTP (RFC 6238) and recovery codes (SPEC §11) against moto: enrolment, one use per
step or code, drift, sealing, and the sign-in lockout counting wrong codes."""

from __future__ import annotations

import pyotp
import pytest

from chalicelib.clock import FakeClock
from chalicelib.container import Container
from chalicelib.errors import ConditionFailed, Conflict, Forbidden, TooManyRequests
from chalicelib.models import User
from chalicelib.services.second_factors import TOTP_STEP
from chalicelib.services.security_log import Where
from tests.concurrency import atomic_container, run_together

HERE = Where("203.0.113.9", "pytest")


def alice(ctr: Container) -> User:
    ctr.identities.create_user("alice", "password4alice")
    return reload(ctr, "alice")


def reload(ctr: Container, username: str) -> User:
    from chalicelib.models import user_id_for

    found = ctr.users.get(user_id_for(username))
    assert found is not None
    return found


def enrol(ctr: Container, clock: FakeClock) -> tuple[User, str, list[str]]:
    user = alice(ctr)
    shown = ctr.factors.begin_totp(user, "tessera.example")
    assert shown.otpauth_uri.startswith("otpauth://totp/")
    assert "secret=" + shown.secret in shown.otpauth_uri
    codes = ctr.factors.confirm_totp(reload(ctr, "alice"),
                                            pyotp.TOTP(shown.secret).at(clock.now()), HERE)
    clock.advance(TOTP_STEP)   # the confirming step is used; the next one is fresh
    return reload(ctr, "alice"), shown.secret, codes


def spend(ctr: Container, user: User, code: str) -> str:
    verified = ctr.factors.verify(user, code, HERE)
    ctr.transact(verified.ops)
    return verified.method


def test_enrolment_stores_the_secret_sealed_and_gives_ten_recovery_codes(ctr, clock):
    user, secret, codes = enrol(ctr, clock)
    assert user.second_factors.enrolled and len(codes) == 10 and len(set(codes)) == 10
    item = ctr.table("users").get({"id": user.id})
    assert secret not in str(item) and not any(c in str(item) for c in codes)
    assert ctr.factors.status(user) == {
        "totp": {"enrolled": True}, "passkeys": [], "recovery_codes": {"remaining": 10}}


def test_a_wrong_confirming_code_enrols_nothing(ctr, clock):
    user = alice(ctr)
    ctr.factors.begin_totp(user)
    with pytest.raises(Forbidden):
        ctr.factors.confirm_totp(reload(ctr, "alice"), "000000", HERE)
    assert not reload(ctr, "alice").second_factors.enrolled


def test_a_second_authenticator_needs_the_first_removed(ctr, clock):
    user, _, _ = enrol(ctr, clock)
    with pytest.raises(Conflict):
        ctr.factors.begin_totp(user)
    ctr.factors.remove_totp(user, HERE)
    assert not reload(ctr, "alice").second_factors.enrolled


def test_a_code_is_accepted_once_and_its_step_never_again(ctr, clock):
    user, secret, _ = enrol(ctr, clock)
    code = pyotp.TOTP(secret).at(clock.now())
    assert spend(ctr, user, code) == "otp"
    with pytest.raises(Forbidden):
        spend(ctr, reload(ctr, "alice"), code)
    # The stale user (as read before the use) loses the conditional write instead.
    with pytest.raises(ConditionFailed):
        spend(ctr, user, code)


def test_one_step_of_drift_either_way_and_no_more(ctr, clock):
    user, secret, _ = enrol(ctr, clock)
    clock.advance(3 * TOTP_STEP)
    totp = pyotp.TOTP(secret)
    assert spend(ctr, user, totp.at(clock.now() - TOTP_STEP)) == "otp"
    assert spend(ctr, reload(ctr, "alice"), totp.at(clock.now() + TOTP_STEP)) == "otp"
    with pytest.raises(Forbidden):
        spend(ctr, reload(ctr, "alice"), totp.at(clock.now() + 2 * TOTP_STEP))


def test_a_recovery_code_gets_in_once_and_is_logged(ctr, clock):
    user, _, codes = enrol(ctr, clock)
    assert spend(ctr, user, codes[3].upper().replace("-", " ")) == "otp"
    after = reload(ctr, "alice")
    assert ctr.factors.status(after)["recovery_codes"] == {"remaining": 9}
    with pytest.raises(Forbidden):
        spend(ctr, after, codes[3])
    events, _ = ctr.security_log.page(user.id, kind="recovery_code_used")
    assert [e.detail for e in events] == [{"remaining": 9}]


def test_regenerated_recovery_codes_replace_the_old_ones(ctr, clock):
    user, _, old = enrol(ctr, clock)
    new = ctr.factors.regenerate_recovery(user, HERE)
    assert set(new).isdisjoint(old)
    with pytest.raises(Forbidden):
        spend(ctr, reload(ctr, "alice"), old[0])
    assert spend(ctr, reload(ctr, "alice"), new[0]) == "otp"


def test_wrong_codes_count_toward_the_sign_in_lockout(ctr, clock):
    user, _, _ = enrol(ctr, clock)
    for _ in range(ctr.settings.login_lockout_failures):
        with pytest.raises((Forbidden, TooManyRequests)):
            spend(ctr, user, "123456")
        clock.advance(60)
    with pytest.raises(TooManyRequests):
        spend(ctr, user, "123456")


def test_twenty_threads_with_one_code_get_exactly_one_success(ctr, clock):
    user, secret, _ = enrol(ctr, clock)
    atomic = atomic_container(ctr)
    code = pyotp.TOTP(secret).at(clock.now())
    results = run_together(20, lambda: spend(atomic, user, code))
    assert [r for r in results if r[0] == "ok"] == [("ok", "otp")]
    assert all(isinstance(exc, ConditionFailed) for kind, exc in results if kind == "error")


def test_twenty_threads_with_one_recovery_code_get_exactly_one_success(ctr, clock):
    user, _, codes = enrol(ctr, clock)
    atomic = atomic_container(ctr)
    results = run_together(20, lambda: spend(atomic, user, codes[0]))
    assert sum(kind == "ok" for kind, _ in results) == 1
