"""The CLI's tests: each gets its own config directory and an in-memory keyring."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

from tests.cli.fakes import MemoryKeyring


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    for name in ("TESSERA_SERVER", "TESSERA_TOKEN", "TESSERA_OIDC_TOKEN", "TESSERA_CLIENT_ID",
                 "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return home / "tessera"


@pytest.fixture
def use_keyring() -> Iterator[object]:
    """Installs ``backend`` (default: an empty MemoryKeyring) for the test."""
    previous = keyring.get_keyring()
    installed: list[KeyringBackend] = []

    def install(backend: KeyringBackend | None = None) -> KeyringBackend:
        backend = backend or MemoryKeyring()
        keyring.set_keyring(backend)
        installed.append(backend)
        return backend

    yield install
    keyring.set_keyring(previous)


@pytest.fixture
def memory_keyring(use_keyring) -> MemoryKeyring:
    return use_keyring()


@pytest.fixture
def no_keyring(use_keyring) -> object:
    from keyring.backends.fail import Keyring

    return use_keyring(Keyring())
