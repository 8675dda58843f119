"""New passwords (issue 25: invitations, resets, changes): length, not the name or
address, not a breached password (a local Bloom filter, never a network call)."""

from __future__ import annotations

import random

import pytest

from chalicelib.security import password_rules
from chalicelib.security.bloom import BloomFilter
from chalicelib.security.password_rules import BREACHED, problem


@pytest.mark.parametrize("password", ["password", "123456789", "football", "Qwerty123", "iloveyou"])
def test_common_breached_passwords_are_refused(password):
    assert "data breaches" in (problem(password) or "")


@pytest.mark.parametrize("password,why", [
    ("short1!", "at least 8"), ("x" * 257, "at most 256"),
    ("aliceliddell", "username"), ("ALICELIDDELL", "username"),
    ("alice@example.com", "email"),
])
def test_length_and_identity_rules(password, why):
    assert why in (problem(password, username="aliceliddell", email="alice@example.com") or "")


def test_a_long_random_passphrase_passes():
    assert problem("correct horse battery staple 7", username="alice") is None


def test_the_filter_holds_every_source_password_and_few_others():
    from tessera_admin.breached import source

    breached = password_rules.breached_list()
    assert all(p in breached for p in source())
    rng = random.Random(7)
    strangers = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(14))
                 for _ in range(5000)]
    assert sum(s in breached for s in strangers) <= 25      # 1 in 1,000 designed; 5 expected


def test_the_committed_filter_is_what_the_build_makes():
    """Regenerate with ``python -m tessera_admin.breached`` after changing the zxcvbn pin."""
    from tessera_admin.breached import build

    assert BREACHED.read_bytes() == build()


def test_a_filter_file_round_trips_and_refuses_garbage():
    made = BloomFilter.of(["a", "b"], 0.01)
    again = BloomFilter.from_bytes(made.to_bytes())
    assert "a" in again and "b" in again
    with pytest.raises(ValueError):
        BloomFilter.from_bytes(b"nope" + made.to_bytes()[4:])
