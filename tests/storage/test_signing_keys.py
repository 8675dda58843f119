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
    es256 = {k["kid"] for k in json.loads(ring.jwks_json())["keys"] if k["alg"] == "ES256"}
    assert old_kid in es256 and len(es256) == 3   # retired, current, next


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
    original = ring.store.load_versioned
    ring.store.load_versioned = lambda: loads.append(1) or original()
    for _ in range(5):
        ring.verify(ring.sign(claims(clock)), issuer=ISS)
        ring.jwks_json()
    assert loads == []
