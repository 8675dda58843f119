"""Where the CLI keeps its files and which server a command talks to.

``config.json`` (not secret) remembers the server of the last login and, per
server, where its credentials live (``keyring`` or ``file``), so a command that
reads credentials imports keyring only when they are in it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tessera_cli.errors import CliError, NotLoggedIn, UsageProblem

APP = "tessera"
CONFIG_FILE = "config.json"


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/tessera`` when set, else the platform's user config directory."""
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        return Path(xdg) / APP
    if sys.platform.startswith("linux"):  # what platformdirs answers there, without importing it
        return Path.home() / ".config" / APP
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP, appauthor=False))


def normalize_server(url: str) -> str:
    """The key credentials are kept under: scheme and host lower-case, no trailing slash."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageProblem(f"--server must be an http(s) URL such as https://tessera.example.com, "
                           f"not {url!r}")
    if parts.query or parts.fragment:
        raise UsageProblem("--server must not carry a query or fragment")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with a 0600 file: a reader sees the old or the new
    content, never half of it (Ctrl-C or a crash included)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; a missing or damaged file reads as empty, so the
    next login writes a good one (a damaged login reads as no login)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def file_lock(directory: Path) -> Iterator[None]:
    """One writer at a time in ``directory`` (POSIX ``flock``): two commands refreshing
    or logging in at once each re-read the files under the lock, so neither drops the
    other's change. Where ``fcntl`` does not exist (Windows) writes are not serialised."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(directory / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def no_interrupt() -> Iterator[None]:
    """Ctrl-C waits until the block is done: stored credentials and the config that
    points at them are written together or not at all."""
    pending: list[int] = []

    def defer(signum: int, _frame: FrameType | None) -> None:
        pending.append(signum)

    try:
        previous = signal.signal(signal.SIGINT, defer)
    except ValueError:  # not the main thread: nothing to defer
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending:
        raise KeyboardInterrupt


class Config:
    """``config.json``: the current server and where each server's credentials live."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / CONFIG_FILE
        self.data = read_json(self.path)

    @property
    def current(self) -> str | None:
        value = self.data.get("current")
        return value if isinstance(value, str) else None

    def location(self, server: str) -> str | None:
        entry = self.data.get("servers", {}).get(server)
        return entry.get("store") if isinstance(entry, dict) else None

    def backend(self, server: str) -> str | None:
        """The keyring backend (module.Class) that holds the server's login."""
        entry = self.data.get("servers", {}).get(server)
        value = entry.get("backend") if isinstance(entry, dict) else None
        return value if isinstance(value, str) else None

    def reload(self) -> None:
        self.data = read_json(self.path)

    def remember(self, server: str, store: str, backend: str | None = None) -> None:
        self.data["current"] = server
        entry = {"store": store} if backend is None else {"store": store, "backend": backend}
        self.data.setdefault("servers", {})[server] = entry
        self.save()

    def forget(self, server: str) -> None:
        """No stored login for ``server`` any more; it stays the current server, so
        ``TESSERA_TOKEN=… tessera whoami`` still knows where to go."""
        self.data.get("servers", {}).pop(server, None)
        self.save()

    def save(self) -> None:
        write_private(self.path, json.dumps(self.data, indent=2, sort_keys=True) + "\n")


def resolve_server(option: str | None, config: Config) -> str:
    """``--server`` / ``TESSERA_SERVER`` (click fills ``option`` from either), else the
    server of the last login."""
    if option:
        return normalize_server(option)
    if config.current:
        return config.current
    raise NotLoggedIn("no server: run `tessera login --server URL`, or set TESSERA_SERVER")
