"""The scrypt work factor is a setting (TESSERA_SCRYPT_LOG_N): new hashes use the
current one, and every stored hash verifies at its own, whatever the setting is now."""

from __future__ import annotations

import dataclasses
from typing import Any

from chalicelib import container as container_module
from chalicelib.container import Container
from tests.api.helpers import login, seed, tokens
from tests.conftest import TEST_SCRYPT_LOG_N


def test_new_hashes_use_the_setting(ctr: Container) -> None:
    seed(ctr)
    assert ctr.identities.find_user("alice").password_hash.startswith(f"scrypt${TEST_SCRYPT_LOG_N}$")
    ctr.identities.set_password("bob", "password4bob-2")
    assert ctr.identities.find_user("bob").password_hash.startswith(f"scrypt${TEST_SCRYPT_LOG_N}$")


def test_a_password_hashed_at_one_factor_signs_in_after_the_setting_changed(client: Any,
                                                                           ctr: Container) -> None:
    seed(ctr)
    raised = Container(dataclasses.replace(ctr.settings, scrypt_log_n=TEST_SCRYPT_LOG_N + 2),
                       ctr.clock)
    container_module.use(raised)
    assert tokens(client)["access_token"]                    # alice's hash: the old factor
    assert login(client, password="password4alicE").status_code == 400
    raised.identities.create_user("carol", "password4carol")
    assert raised.identities.find_user("carol").password_hash.startswith(
        f"scrypt${TEST_SCRYPT_LOG_N + 2}$")
    container_module.use(ctr)                                # and back: carol's still verifies
    assert tokens(client, username="carol", password="password4carol")["access_token"]
