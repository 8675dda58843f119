"""Signing keys in Secrets Manager: created once, rotated with overlap."""

import json

import pytest

from chalicelib.services.signing import InvalidJWT, KeyRing

ISS = "https://tessera.test"


def claims(clock, **extra):
    return {"iss": ISS, "sub": "u", "iat": clock.now(), "exp": clock.now() + 300, **extra}


def test_keys_are_created_on_first_use_and_shared_by_instances(ctr, clock):
    first = KeyRing(ctr.keystore, clock)
    second = KeyRing(ctr.keystore, clock)
    assert first.current_kid() == second.current_kid()
    stored = ctr.keystore.load()
    assert {k["status"] for k in stored["keys"]} == {"current", "next"}


def test_a_token_signed_before_rotation_still_verifies_after(ctr, clock):
    ring = ctr.keyring
    old = ring.sign(claims(clock))
    old_kid = ring.current_kid()
    ring.rotate()
    assert ring.current_kid() != old_kid
    assert ring.verify(old, issuer=ISS)["sub"] == "u"
    kids = {k["kid"] for k in json.loads(ring.jwks_json())["keys"]}
    assert old_kid in kids and len(kids) == 3   # retired, current, next


def test_retired_keys_leave_the_jwks_after_the_overlap(ctr, clock):
    ring = ctr.keyring
    old_kid = ring.current_kid()
    ring.rotate()
    clock.advance(ctr.settings.key_retire_seconds + 1)
    ring.rotate()
    assert old_kid not in {k["kid"] for k in json.loads(ring.jwks_json())["keys"]}


def test_another_instance_picks_up_a_rotation_on_an_unknown_kid(ctr, clock):
    stale = KeyRing(ctr.keystore, clock)
    stale.current_kid()
    fresh = KeyRing(ctr.keystore, clock)
    fresh.rotate()
    fresh.rotate()   # a kid the stale instance has never seen
    token = fresh.sign(claims(clock))
    clock.advance(61)
    assert stale.verify(token, issuer=ISS)["sub"] == "u"


def test_expiry_is_checked_against_the_injected_clock(ctr, clock):
    token = ctr.keyring.sign(claims(clock))
    clock.advance(299)
    ctr.keyring.verify(token, issuer=ISS)
    clock.advance(1)
    with pytest.raises(InvalidJWT):
        ctr.keyring.verify(token, issuer=ISS)


def test_tampered_or_unsigned_tokens_are_refused(ctr, clock):
    import jwt

    token = ctr.keyring.sign(claims(clock))
    head, payload, sig = token.split(".")
    with pytest.raises(InvalidJWT):
        # Change a character in the middle: the last one carries padding bits, and a
        # fixed replacement would sometimes equal what it replaces.
        middle = len(sig) // 2
        flipped = "B" if sig[middle] == "A" else "A"
        ctr.keyring.verify(f"{head}.{payload}.{sig[:middle]}{flipped}{sig[middle + 1:]}", issuer=ISS)
    unsigned = jwt.encode(claims(clock), key=None, algorithm="none",
                          headers={"kid": ctr.keyring.current_kid()})
    with pytest.raises(InvalidJWT):
        ctr.keyring.verify(unsigned, issuer=ISS)
    with pytest.raises(InvalidJWT):
        ctr.keyring.verify(token, issuer="https://evil.example")


def test_no_key_parsing_after_the_first_use(ctr, clock):
    ring = ctr.keyring
    token = ring.sign(claims(clock))
    ring.verify(token, issuer=ISS)
    loads = []
    original = ring.store.load
    ring.store.load = lambda: loads.append(1) or original()
    for _ in range(5):
        ring.verify(ring.sign(claims(clock)), issuer=ISS)
        ring.jwks_json()
    assert loads == []


def test_the_first_key_set_goes_into_the_empty_secret_the_stack_made(ctr, clock):
    import boto3

    sm = boto3.client("secretsmanager")
    sm.create_secret(Name=ctr.settings.keys_secret_name)   # as the stack does: no value
    assert ctr.keystore.load() is None
    ring = KeyRing(ctr.keystore, clock)
    kid = ring.current_kid()
    stored = json.loads(sm.get_secret_value(SecretId=ctr.settings.keys_secret_name)["SecretString"])
    assert kid in {k["kid"] for k in stored["keys"]}


def test_of_two_first_key_sets_only_one_is_written(ctr, clock):
    import boto3

    from chalicelib.storage.keystore import KeySetExists

    sm = boto3.client("secretsmanager")
    sm.create_secret(Name=ctr.settings.keys_secret_name)
    ctr.keystore.create({"keys": [{"kid": "first"}]})
    with pytest.raises(KeySetExists):
        ctr.keystore.create({"keys": [{"kid": "second"}]})
    assert ctr.keystore.load() == {"keys": [{"kid": "first"}]}
