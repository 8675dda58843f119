from chalicelib.security.opaque import CHECKSUM_LEN, PAT, REFRESH, SECRET_LEN, digest, is_base62


def test_refresh_token_shape():
    token = REFRESH.mint("A" * 16)
    assert token.startswith("tsr_") and len(token) == 4 + 16 + SECRET_LEN + CHECKSUM_LEN
    assert is_base62(token[4:])
    assert REFRESH.parse(token) == "A" * 16


def test_secret_carries_at_least_128_bits():
    assert 62 ** SECRET_LEN >= 2 ** 128


def test_checksum_rejects_a_changed_character_without_storage():
    token = REFRESH.mint("B" * 16)
    body = token[4:]
    flipped = "tsr_" + ("0" if body[0] != "0" else "1") + body[1:]
    assert REFRESH.parse(flipped) is None


def test_wrong_prefix_or_length_is_rejected():
    token = REFRESH.mint("C" * 16)
    assert PAT.parse(token) is None
    assert REFRESH.parse(token + "x") is None
    assert REFRESH.parse("tsr_é" + token[5:]) is None


def test_digest_is_not_the_token():
    token = REFRESH.mint("D" * 16)
    assert token not in digest(token) and len(digest(token)) == 64
