"""Stored logins, one per server: in the OS keyring, or a 0600 file where there is none.

The keyring entry is service ``tessera``, user = the server URL, password = the
credentials as JSON. Where no keyring backend exists (CI, containers: keyring's
``fail.Keyring``, ``NoKeyringError``) they go to ``credentials.json`` in the
config directory, mode 0600, with a one-line warning.

``Credentials`` is a dataclass checked field by field rather than a pydantic
model: ``tessera token show`` reads it on its fast path, where importing pydantic
alone would cost half the start-up budget.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import Any

from tessera_cli.config import Config, file_lock, no_interrupt, read_json, write_private
from tessera_cli.errors import NotLoggedIn

SERVICE = "tessera"
CREDENTIALS_FILE = "credentials.json"
KEYRING, FILE = "keyring", "file"
# A token this close to its expiry is refreshed before use: it would die in flight.
EXPIRY_SKEW = 30


@dataclass(frozen=True)
class Credentials:
    server: str
    client_id: str
    token_endpoint: str
    revocation_endpoint: str | None
    access_token: str
    refresh_token: str | None
    expires_at: int
    scope: str

    def expired(self, now: float) -> bool:
        return now >= self.expires_at - EXPIRY_SKEW

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: object) -> Credentials:
        """Every member present and of its type, else ``NotLoggedIn`` (log in again)."""
        if not isinstance(data, dict):
            raise NotLoggedIn("the stored login is unreadable; run `tessera login`")
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = data.get(f.name)
            if value is None and f.name in _OPTIONAL:
                values[f.name] = None
            elif isinstance(value, _TYPES.get(f.name, str)) and not isinstance(value, bool):
                values[f.name] = value
            else:
                raise NotLoggedIn(f"the stored login lacks a valid {f.name}; run `tessera login`")
        return cls(**values)


_OPTIONAL = frozenset({"revocation_endpoint", "refresh_token"})
_TYPES: dict[str, type] = {"expires_at": int}

Warn = Callable[[str], None]


class CredentialStore:
    """Load, save and delete the login of a server."""

    def __init__(self, directory: Path, config: Config, warn: Warn) -> None:
        self.file = directory / CREDENTIALS_FILE
        self.config = config
        self.warn = warn

    def load(self, server: str) -> Credentials | None:
        where = self.config.location(server)
        if where == FILE:
            text = read_json(self.file).get(server)
            return None if text is None else Credentials.from_dict(text)
        if where == KEYRING:
            from keyring.errors import KeyringError

            try:
                secret = self._keyring(server).get_password(SERVICE, server)
            except KeyringError as exc:
                raise NotLoggedIn(f"cannot read the keyring ({exc}); run `tessera login`") from exc
            if secret is None:
                return None
            try:
                return Credentials.from_dict(json.loads(secret))
            except ValueError as exc:
                raise NotLoggedIn("the stored login is unreadable; run `tessera login`") from exc
        return None

    def save(self, creds: Credentials) -> str:
        """Store ``creds`` where the last login of the server put them, else in the
        keyring, else in the file; Ctrl-C waits until both the credentials and the
        config that points at them are written. Answers ``keyring`` or ``file``."""
        with no_interrupt(), file_lock(self.file.parent):
            self.config.reload()
            where = self.config.location(creds.server)
            backend = None if where == FILE else self._keyring_set(creds)
            if backend is not None:
                where = KEYRING
                self._file_delete(creds.server)
            else:
                if where != FILE:
                    self.warn(f"no keyring available: credentials stored in {self.file} (mode 0600)")
                stored = read_json(self.file)
                stored[creds.server] = json.loads(creds.to_json())
                write_private(self.file, json.dumps(stored, indent=2, sort_keys=True) + "\n")
                where = FILE
            self.config.remember(creds.server, where, backend)
        return where

    def delete(self, server: str) -> None:
        with no_interrupt(), file_lock(self.file.parent):
            self.config.reload()
            if self.config.location(server) == KEYRING:
                from keyring.errors import KeyringError

                with contextlib.suppress(KeyringError):
                    self._keyring(server).delete_password(SERVICE, server)
            self._file_delete(server)
            self.config.forget(server)

    def _keyring(self, server: str) -> ModuleType:
        """keyring, with the backend that stored this login when it is one of keyring's
        own: that skips the discovery of every installed backend (entry points, a D-Bus
        probe each), the slow part of a desktop's ``token show``. ``PYTHON_KEYRING_BACKEND``
        and keyring's configuration file still win at the next login."""
        import keyring

        name = self.config.backend(server)
        if name and name.startswith("keyring.backends.") and not os.environ.get("PYTHON_KEYRING_BACKEND"):
            from keyring.core import load_keyring

            try:
                backend = load_keyring(name)
            except Exception:  # a backend that no longer loads: discovery as usual
                backend = None
            if backend is not None:
                keyring.set_keyring(backend)
        return keyring

    def _keyring_set(self, creds: Credentials) -> str | None:
        """Store in the keyring; answers the backend's class name, or ``None`` where
        there is no keyring or it refused."""
        import keyring
        from keyring.backends.fail import Keyring as NoKeyring
        from keyring.errors import KeyringError

        backend = keyring.get_keyring()
        if isinstance(backend, NoKeyring):
            return None
        try:
            keyring.set_password(SERVICE, creds.server, creds.to_json())
        except KeyringError:  # NoKeyringError, a locked or refusing backend
            return None
        return f"{type(backend).__module__}.{type(backend).__qualname__}"

    def _file_delete(self, server: str) -> None:
        stored = read_json(self.file)
        if server in stored:
            del stored[server]
            write_private(self.file, json.dumps(stored, indent=2, sort_keys=True) + "\n")
