"""Stand-ins for the CLI's tests: an in-memory keyring backend (never a real one)."""

from __future__ import annotations

import signal
from collections.abc import Callable

from keyring.backend import KeyringBackend
from keyring.errors import KeyringLocked, PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    """A keyring backend in a dict; ``on_set`` runs inside ``set_password``."""

    priority = 1

    def __init__(self, locked: bool = False, on_set: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}
        self.locked = locked
        self.on_set = on_set

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        if self.locked:
            raise KeyringLocked("the keyring is locked")
        if self.on_set is not None:
            self.on_set()
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.items.pop((service, username), None) is None:
            raise PasswordDeleteError("not found")


def press_ctrl_c() -> None:
    signal.raise_signal(signal.SIGINT)
