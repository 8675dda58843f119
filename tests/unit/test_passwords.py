import time

import pytest

from chalicelib.config import SCRYPT_LOG_N_FLOOR, Settings
from chalicelib.security.passwords import DUMMY_HASH, dummy_hash, hash_password, verify_password


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
    assert DUMMY_HASH.startswith(f"scrypt${SCRYPT_LOG_N_FLOOR}$8$1$")
    assert dummy_hash(SCRYPT_LOG_N_FLOOR) == DUMMY_HASH


def test_the_unknown_user_hash_costs_what_a_users_hash_costs_at_a_lowered_factor():
    assert dummy_hash(10).startswith("scrypt$10$8$1$")
    assert dummy_hash(10) == dummy_hash(10)


# -- the work factor is a setting ------------------------------------------------------------

def test_the_production_factor_is_the_default():
    assert Settings().scrypt_log_n == SCRYPT_LOG_N_FLOOR == 15
    assert Settings.from_env({}).scrypt_log_n == 15
    assert Settings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "tessera-prod"}).scrypt_log_n == 15


def test_a_lowered_setting_lowers_the_cost_of_a_hash():
    def cpu(log_n: int) -> float:
        start = time.process_time()
        hash_password("password4alice", log_n=log_n)
        return time.process_time() - start

    lowered = Settings.from_env({"TESSERA_STAGE": "local", "TESSERA_SCRYPT_LOG_N": "10"})
    assert lowered.scrypt_log_n == 10
    # 2^15 is 32 times the work of 2^10; process time is this process's alone.
    assert cpu(SCRYPT_LOG_N_FLOOR) > 4 * min(cpu(lowered.scrypt_log_n) for _ in range(3))


@pytest.mark.parametrize("env", [
    {"AWS_LAMBDA_FUNCTION_NAME": "tessera-prod", "TESSERA_STAGE": "prod"},
    {"AWS_LAMBDA_FUNCTION_NAME": "tessera-dev", "TESSERA_STAGE": "local"},
    {"TESSERA_STAGE": "prod"},
    {},     # the default stage, dev
])
def test_a_deployed_stage_with_a_lowered_factor_fails_to_start(env):
    with pytest.raises(ValueError, match="below the production floor 15"):
        Settings.from_env({**env, "TESSERA_SCRYPT_LOG_N": "14"})


def test_a_deployed_stage_may_raise_the_factor():
    env = {"AWS_LAMBDA_FUNCTION_NAME": "tessera-prod", "TESSERA_STAGE": "prod"}
    assert Settings.from_env({**env, "TESSERA_SCRYPT_LOG_N": "16"}).scrypt_log_n == 16


@pytest.mark.parametrize("value", ["0", "21", "fast"])
def test_a_factor_out_of_range_fails_to_start(value):
    with pytest.raises(ValueError, match="TESSERA_SCRYPT_LOG_N"):
        Settings.from_env({"TESSERA_STAGE": "local", "TESSERA_SCRYPT_LOG_N": value})


def test_a_hash_verifies_whatever_the_factor_is_now():
    encoded = hash_password("password4alice", log_n=10)
    assert verify_password("password4alice", encoded)      # carries N, r and p itself
    assert not verify_password("password4alicE", encoded)


def test_every_stage_hashes_at_the_production_factor():
    from deploy.stages import load_stage, stage_names

    for name in stage_names():
        env = {**load_stage(name).environment, "AWS_LAMBDA_FUNCTION_NAME": f"tessera-{name}"}
        assert env["TESSERA_SCRYPT_LOG_N"] == str(SCRYPT_LOG_N_FLOOR), name
        assert Settings.from_env(env).scrypt_log_n == SCRYPT_LOG_N_FLOOR, name
