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


# -- key families: ES256 and RS256 (OIDC Core §15.1, SPEC §4) -----------------------------

def _algs(ring):
    return sorted({k["alg"] for k in json.loads(ring.jwks_json())["keys"]})


def test_first_use_makes_the_default_family_only_and_no_rsa_key(ctr, clock):
    ring = ctr.keyring
    ring.verify(ring.sign(claims(clock)), issuer=ISS)
    assert {k["alg"] for k in ctr.keystore.load()["keys"]} == {"ES256"}


def test_an_rs256_token_signs_and_verifies_and_the_jwks_publishes_both_families(ctr, clock):
    import jwt

    ring = ctr.keyring
    token = ring.sign(claims(clock), alg="RS256")
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert ring.verify(token, issuer=ISS)["sub"] == "u"
    keys = json.loads(ring.jwks_json())["keys"]
    assert _algs(ring) == ["ES256", "RS256"]
    rsa = [k for k in keys if k["alg"] == "RS256"]
    assert len(rsa) == 2 and all(k["kty"] == "RSA" and k["use"] == "sig" and k["e"] == "AQAB"
                                 for k in rsa)
    assert all(k["use"] == "sig" and "d" not in k for k in keys)   # public parts only


def test_an_es256_only_key_set_gains_rs256_on_first_need_and_keeps_its_keys(ctr, clock):
    legacy = KeyRing(ctr.keystore, clock)
    es_kid = legacy.current_kid()
    before = ctr.keystore.load()["keys"]
    assert {k["alg"] for k in before} == {"ES256"}
    es_token = legacy.sign(claims(clock))
    rs_token = KeyRing(ctr.keystore, clock).sign(claims(clock), alg="RS256")
    after = ctr.keystore.load()["keys"]
    assert [k for k in after if k["alg"] == "ES256"] == before
    other = KeyRing(ctr.keystore, clock)
    assert other.current_kid() == es_kid
    assert other.verify(es_token, issuer=ISS)["sub"] == other.verify(rs_token, issuer=ISS)["sub"]


def test_instances_adding_the_rs256_family_at_once_end_up_with_the_same_keys(ctr, clock):
    first, second = KeyRing(ctr.keystore, clock), KeyRing(ctr.keystore, clock)
    first.current_kid(), second.current_kid()      # both have read the ES256-only set
    first.ensure("RS256")
    second.ensure("RS256")                         # its write loses; it takes the winner's keys
    assert first.current_kid("RS256") == second.current_kid("RS256")
    assert len([k for k in ctr.keystore.load()["keys"] if k["alg"] == "RS256"]) == 2


def test_a_write_based_on_a_replaced_version_is_refused(ctr, clock):
    from chalicelib.storage.keystore import KeySetChanged

    ctr.keyring.current_kid()
    keyset, version = ctr.keystore.load_versioned()
    newer = ctr.keystore.replace(keyset, version)
    with pytest.raises(KeySetChanged):
        ctr.keystore.replace({"keys": []}, version)
    assert ctr.keystore.load_versioned() == (keyset, newer)


def test_rotation_rotates_both_families_and_old_rs256_tokens_still_verify(ctr, clock):
    ring = ctr.keyring
    old_rs = ring.sign(claims(clock), alg="RS256")
    old_rs_kid, old_es_kid = ring.current_kid("RS256"), ring.current_kid()
    ring.rotate()
    assert ring.current_kid("RS256") != old_rs_kid and ring.current_kid() != old_es_kid
    assert KeyRing(ctr.keystore, clock).verify(old_rs, issuer=ISS)["sub"] == "u"
    statuses = sorted((k["alg"], k["status"]) for k in ctr.keystore.load()["keys"])
    assert statuses == [("ES256", s) for s in ("current", "next", "retired")] + \
        [("RS256", s) for s in ("current", "next", "retired")]


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_an_hs256_token_keyed_with_the_published_rsa_key_is_refused(ctr, clock):
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import serialization

    ring = ctr.keyring
    ring.ensure("RS256")
    kid = ring.current_kid("RS256")
    entry = next(k for k in ctr.keystore.load()["keys"] if k["kid"] == kid)
    public_pem = serialization.load_pem_private_key(
        entry["private_pem"].encode(), None).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    # The classic confusion (RFC 8725 §2.1): HMAC keyed with the published public key.
    signing_input = (_b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode()) + "."
                     + _b64(json.dumps(claims(clock)).encode()))
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidJWT):
        ring.verify(f"{signing_input}.{_b64(mac)}", issuer=ISS)


def test_an_es256_signature_under_an_rs256_kid_is_refused(ctr, clock):
    ring = ctr.keyring
    ring.ensure("RS256")
    _, payload, sig = ring.sign(claims(clock)).split(".")
    header = {"alg": "ES256", "typ": "JWT", "kid": ring.current_kid("RS256")}
    with pytest.raises(InvalidJWT):
        ring.verify(f"{_b64(json.dumps(header).encode())}.{payload}.{sig}", issuer=ISS)

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


def test_a_token_verified_once_is_not_verified_again_but_its_expiry_still_counts(ctr, clock,
                                                                                  monkeypatch):
    ring = ctr.keyring
    token = ring.sign(claims(clock))
    first = ring.verify(token, issuer=ISS)
    calls = []
    real = ring._verify
    monkeypatch.setattr(ring, "_verify", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert ring.verify(token, issuer=ISS) == first
    assert calls == []                                   # remembered, not verified again
    with pytest.raises(InvalidJWT):                      # what it was checked against counts
        ring.verify(token, issuer="https://other.test")
    assert calls == [1]
    clock.advance(300)
    with pytest.raises(InvalidJWT, match="expired"):
        ring.verify(token, issuer=ISS)


def test_a_remembered_token_whose_key_is_gone_is_refused(ctr, clock):
    ring = ctr.keyring
    token = ring.sign({**claims(clock), "exp": clock.now() + 30 * 86400})
    ring.verify(token, issuer=ISS)
    for _ in range(2):                    # the signing key retires, then leaves the set
        ring.rotate()
        clock.advance(ctr.settings.key_retire_seconds + 1)
    ring.rotate()
    with pytest.raises(InvalidJWT, match="unknown kid"):
        ring.verify(token, issuer=ISS)


def test_a_token_that_failed_is_checked_again_each_time(ctr, clock, monkeypatch):
    ring = ctr.keyring
    token = ring.sign(claims(clock))
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    calls = []
    real = ring._verify
    monkeypatch.setattr(ring, "_verify", lambda *a, **k: calls.append(1) or real(*a, **k))
    for _ in range(2):
        with pytest.raises(InvalidJWT):
            ring.verify(forged, issuer=ISS)
    assert calls == [1, 1]


def test_the_verified_tokens_stay_within_their_bound_when_threads_fill_them_at_once():
    from chalicelib.services.signing import VerifiedTokens
    from tests.concurrency import run_together

    remembered = VerifiedTokens(size=64)
    counter = iter(range(10**6))

    def fill():
        for _ in range(200):
            n = next(counter)
            remembered.put((f"token-{n}",), "kid", {"exp": n})
        return True

    results = run_together(8, fill)
    assert all(kind == "ok" for kind, _ in results)
    assert len(remembered._entries) == 64
    last = max(int(key[0].split("-")[1]) for key in remembered._entries)
    assert remembered.get((f"token-{last}",)) == ("kid", {"exp": last})
