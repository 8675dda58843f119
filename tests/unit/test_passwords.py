from chalicelib.security.passwords import DUMMY_HASH, hash_password, verify_password


def test_hash_verifies_only_the_right_password():
    encoded = hash_password("correct horse", log_n=10)
    assert encoded.startswith("scrypt$10$")
    assert verify_password("correct horse", encoded)
    assert not verify_password("correct horsE", encoded)


def test_each_hash_is_salted():
    assert hash_password("same", log_n=10) != hash_password("same", log_n=10)


def test_garbage_hash_never_verifies():
    assert not verify_password("x", "not-a-hash")
    assert not verify_password("x", "scrypt$zz$8$1$AA==$AA==")


def test_dummy_hash_has_production_cost():
    assert DUMMY_HASH.startswith("scrypt$15$8$1$")
