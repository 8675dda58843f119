"""The public half of the signing keys, published in DynamoDB for instances that
only verify (SPEC §7, §9): the key set in Secrets Manager stays the truth."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.errors import StorageUnavailable
from chalicelib.services.signing import KeyRing
from tests.faults import CountingKeyStore

ISS = "https://tessera.test"


def claims(clock: Any) -> dict[str, Any]:
    return {"iss": ISS, "sub": "u", "iat": clock.now(), "exp": clock.now() + 300}


def ring(ctr: Any, clock: Any, store: Any = None, public: Any = "repo") -> KeyRing:
    return KeyRing(store or ctr.keystore, clock,
                   public=ctr.public_keys_repo if public == "repo" else public)


def public_jwks(ctr: Any) -> list[dict[str, Any]]:
    published = ctr.public_keys_repo.load()
    assert published is not None
    return list(published.keys)


def test_every_change_of_the_key_set_is_published_without_private_keys(ctr: Any, clock: Any) -> None:
    signer = ring(ctr, clock)
    signer.current_kid()
    assert ctr.public_keys_repo.load().seq == 1
    signer.ensure("RS256")
    signer.rotate()
    published = ctr.public_keys_repo.load()
    assert published.seq == 3
    assert public_jwks(ctr) == json.loads(signer.jwks_json())["keys"]
    assert public_jwks(ctr) == [k["public_jwk"] for k in ctr.keystore.load()["keys"]]
    text = json.dumps(public_jwks(ctr))
    assert "PRIVATE" not in text and '"d"' not in text


def test_a_verifying_instance_never_reads_the_key_store(ctr: Any, clock: Any) -> None:
    signer = ring(ctr, clock)
    token = signer.sign(claims(clock))
    store = CountingKeyStore(ctr.keystore)
    verifier = ring(ctr, clock, store)
    assert verifier.verify(token, issuer=ISS)["sub"] == "u"
    assert json.loads(verifier.jwks_json()) == json.loads(signer.jwks_json())
    assert store.loads == 0


def test_nothing_published_yet_reads_the_key_store_once_and_publishes_it(ctr: Any, clock: Any) -> None:
    # A stage whose keys predate the publication: the key set holds them, the table not.
    token = ring(ctr, clock, public=None).sign(claims(clock))
    assert ctr.public_keys_repo.load() is None
    store = CountingKeyStore(ctr.keystore)
    verifier = ring(ctr, clock, store)
    assert verifier.verify(token, issuer=ISS)["sub"] == "u"
    assert store.loads == 1
    assert public_jwks(ctr) == [k["public_jwk"] for k in ctr.keystore.load()["keys"]]
    # Another new instance finds them published.
    other = CountingKeyStore(ctr.keystore)
    assert ring(ctr, clock, other).verify(token, issuer=ISS)["sub"] == "u"
    assert other.loads == 0


def test_a_key_the_publication_lacks_is_looked_up_in_the_key_store_and_published(
        ctr: Any, clock: Any) -> None:
    signer = ring(ctr, clock)
    signer.current_kid()
    store = CountingKeyStore(ctr.keystore)
    verifier = ring(ctr, clock, store)
    verifier.jwks_json()                              # caches the published keys
    # A rotation whose publication failed: the key set moved on, the table did not.
    unpublished = ring(ctr, clock, public=None)
    unpublished.rotate()
    unpublished.rotate()                              # a kid nobody published
    token = unpublished.sign(claims(clock))
    clock.advance(61)                                 # unknown kids re-read at most once a minute
    assert verifier.verify(token, issuer=ISS)["sub"] == "u"
    assert store.loads == 1
    assert ctr.public_keys_repo.load().seq == ctr.keystore.load()["seq"] == 3
    assert unpublished.current_kid() in {k["kid"] for k in public_jwks(ctr)}


def test_unknown_kids_ask_the_key_store_at_most_once_a_minute(ctr: Any, clock: Any) -> None:
    import jwt

    from chalicelib.services.signing import InvalidJWT

    ring(ctr, clock).current_kid()
    store = CountingKeyStore(ctr.keystore)
    verifier = ring(ctr, clock, store)
    verifier.jwks_json()
    for n in range(3):
        forged = jwt.encode(claims(clock), "x" * 32, algorithm="HS256", headers={"kid": f"no{n}"})
        with pytest.raises(InvalidJWT):
            verifier.verify(forged, issuer=ISS)
        clock.advance(20)
    assert store.loads == 1
    clock.advance(1)
    with pytest.raises(InvalidJWT):
        verifier.verify(forged, issuer=ISS)
    assert store.loads == 2


def test_an_older_key_set_never_replaces_a_newer_publication(ctr: Any, clock: Any) -> None:
    repo = ctr.public_keys_repo
    assert repo.publish([{"kid": "b", "alg": "ES256"}], 5, clock.now())
    assert not repo.publish([{"kid": "a", "alg": "ES256"}], 4, clock.now())
    assert not repo.publish([{"kid": "a", "alg": "ES256"}], 5, clock.now())
    assert repo.load().keys == ({"kid": "b", "alg": "ES256"},)
    assert repo.publish([{"kid": "c", "alg": "ES256"}], 6, clock.now())


def test_a_failed_publication_does_not_fail_the_rotation(ctr: Any, clock: Any) -> None:
    class Down:
        def load(self) -> None:
            raise StorageUnavailable(detail="down")

        def publish(self, *args: Any) -> bool:
            raise StorageUnavailable(detail="down")

    signer = ring(ctr, clock, public=Down())
    before = signer.current_kid()
    signer.rotate()
    assert signer.current_kid() != before
    assert ctr.keystore.load()["seq"] == 2


def test_publications_at_once_leave_the_newest_whatever_the_order(ctr: Any, clock: Any) -> None:
    """Many instances publishing different key-set changes at the same moment: each
    write is conditional on seq, so the stored item is the highest seq's, and the
    highest seq's write is one that succeeded."""
    import itertools
    import threading

    from tests.concurrency import atomic_container, run_together

    repo = atomic_container(ctr).public_keys_repo
    counter = itertools.count(1)
    lock = threading.Lock()

    def publish() -> tuple[int, bool]:
        with lock:
            seq = next(counter)
        return seq, repo.publish([{"kid": f"k{seq}", "alg": "ES256"}], seq, clock.now())

    results = run_together(16, publish)
    assert all(kind == "ok" for kind, _ in results)
    assert dict(value for _, value in results)[16] is True
    stored = repo.load()
    assert stored is not None
    assert stored.seq == 16 and stored.keys == ({"kid": "k16", "alg": "ES256"},)
