"""Stored logins: the keyring first, a 0600 file with one warning where there is none."""

from __future__ import annotations

import json
import stat

import pytest
from tessera_cli.config import Config
from tessera_cli.errors import NotLoggedIn
from tessera_cli.store import SERVICE, Credentials, CredentialStore

from tests.cli.fakes import MemoryKeyring, press_ctrl_c

SERVER = "https://tessera.example.com"


def creds(server: str = SERVER, access: str = "at-1", expires_at: int = 2_000_000_000) -> Credentials:
    return Credentials(server=server, client_id="cli", token_endpoint=f"{server}/oauth/token",
                       revocation_endpoint=f"{server}/oauth/revoke", access_token=access,
                       refresh_token="tsr_1", expires_at=expires_at, scope="openid")


def store(directory, warnings: list[str] | None = None) -> CredentialStore:
    sink = warnings if warnings is not None else []
    return CredentialStore(directory, Config(directory), sink.append)


def test_a_login_goes_to_the_keyring_under_the_server_url(config_home, memory_keyring):
    warnings: list[str] = []
    assert store(config_home, warnings).save(creds()) == "keyring"
    assert json.loads(memory_keyring.items[(SERVICE, SERVER)])["access_token"] == "at-1"
    assert not (config_home / "credentials.json").exists()
    assert warnings == []
    # A new process (a new store) finds it through the config.
    assert store(config_home).load(SERVER) == creds()
    config = json.loads((config_home / "config.json").read_text())
    assert config["current"] == SERVER
    assert config["servers"][SERVER] == {"store": "keyring", "backend": "tests.cli.fakes.MemoryKeyring"}


def test_logins_to_two_servers_are_kept_apart(config_home, memory_keyring):
    s = store(config_home)
    s.save(creds(access="first"))
    s.save(creds("http://127.0.0.1:8000", access="second"))
    again = store(config_home)
    assert again.load(SERVER).access_token == "first"
    assert again.load("http://127.0.0.1:8000").access_token == "second"


def test_without_a_keyring_the_login_goes_to_a_0600_file_with_one_warning(config_home, no_keyring):
    warnings: list[str] = []
    s = store(config_home, warnings)
    assert s.save(creds()) == "file"
    path = config_home / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_home.stat().st_mode) == 0o700
    assert len(warnings) == 1 and str(path) in warnings[0] and "0600" in warnings[0]
    # A refresh rewrites the file without warning again.
    s.save(creds(access="at-2"))
    assert len(warnings) == 1
    assert store(config_home).load(SERVER).access_token == "at-2"
    assert not list(config_home.glob(".*.tmp"))


def test_a_keyring_that_refuses_the_write_falls_back_to_the_file(config_home, use_keyring):
    use_keyring(MemoryKeyring(locked=True))
    warnings: list[str] = []
    assert store(config_home, warnings).save(creds()) == "file"
    assert warnings and store(config_home).load(SERVER) == creds()


def test_delete_removes_the_login_and_keeps_the_current_server(config_home, memory_keyring):
    s = store(config_home)
    s.save(creds())
    s.delete(SERVER)
    assert memory_keyring.items == {}
    again = store(config_home)
    assert again.load(SERVER) is None
    assert again.config.current == SERVER


def test_delete_of_a_file_login_removes_it_from_the_file(config_home, no_keyring):
    s = store(config_home)
    s.save(creds())
    s.save(creds("http://127.0.0.1:8000"))
    s.delete(SERVER)
    kept = json.loads((config_home / "credentials.json").read_text())
    assert list(kept) == ["http://127.0.0.1:8000"]


def test_nothing_stored_loads_as_none(config_home, memory_keyring):
    assert store(config_home).load(SERVER) is None


def test_a_damaged_stored_login_asks_for_a_new_login(config_home, memory_keyring):
    s = store(config_home)
    s.save(creds())
    memory_keyring.items[(SERVICE, SERVER)] = json.dumps({"server": SERVER, "expires_at": "soon"})
    with pytest.raises(NotLoggedIn, match="tessera login"):
        store(config_home).load(SERVER)
    memory_keyring.items[(SERVICE, SERVER)] = "{not json"
    with pytest.raises(NotLoggedIn, match="tessera login"):
        store(config_home).load(SERVER)


def test_ctrl_c_during_the_save_waits_until_the_login_is_complete(config_home, use_keyring):
    backend = use_keyring(MemoryKeyring(on_set=press_ctrl_c))
    with pytest.raises(KeyboardInterrupt):
        store(config_home).save(creds())
    # Both halves were written before the interrupt was let through.
    assert (SERVICE, SERVER) in backend.items
    assert store(config_home).load(SERVER) == creds()


def test_expiry_is_judged_with_a_margin_for_the_request_in_flight():
    c = creds(expires_at=1000)
    assert not c.expired(969)
    assert c.expired(970)


def test_a_damaged_credentials_file_reads_as_no_login_and_the_next_login_replaces_it(config_home, no_keyring):
    s = store(config_home)
    s.save(creds())
    (config_home / "credentials.json").write_text("{half")
    assert store(config_home).load(SERVER) is None
    store(config_home).save(creds(access="at-2"))
    assert store(config_home).load(SERVER).access_token == "at-2"


def test_two_commands_saving_at_once_keep_each_others_logins(config_home, no_keyring):
    # Both read the config before either wrote (two processes started together).
    first, second = store(config_home), store(config_home)
    first.save(creds(access="a"))
    second.save(creds("http://127.0.0.1:8000", access="b"))
    again = store(config_home)
    assert again.load(SERVER).access_token == "a"
    assert again.load("http://127.0.0.1:8000").access_token == "b"
