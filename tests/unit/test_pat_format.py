"""PAT format (SPEC §4): prefix, base62 body, CRC32 checksum checked without a read."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.security.opaque import ALPHABET, PAT, new_id

ids = st.text(alphabet=ALPHABET, min_size=16, max_size=16)


@given(owner=ids, pat_id=ids)
def test_every_generated_token_passes_its_checksum_and_names_its_pat(owner, pat_id):
    token = PAT.mint(owner + pat_id)
    assert token.startswith("tsp_") and len(token) == PAT.length
    assert PAT.parse(token) == owner + pat_id


@given(position=st.integers(min_value=0), replacement=st.sampled_from(ALPHABET + "_-.~ "))
def test_any_single_character_change_fails_the_checksum(position, replacement):
    token = PAT.mint(new_id() + new_id())
    i = position % len(token)
    if token[i] == replacement:
        return
    changed = token[:i] + replacement + token[i + 1:]
    assert PAT.parse(changed) is None


def test_truncated_or_extended_tokens_fail():
    token = PAT.mint(new_id() + new_id())
    assert PAT.parse(token[:-1]) is None
    assert PAT.parse(token + "0") is None
    assert PAT.parse("") is None
