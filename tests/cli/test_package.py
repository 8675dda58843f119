"""The CLI package's shape: HTTP only (never the server's code), and a start that
imports no slow library (the start-up budget is measured by ``bench.cli_startup``;
this guards the reason it holds)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import tessera_cli

PACKAGE = Path(tessera_cli.__file__).resolve().parent
SLOW = ("httpx", "pydantic", "keyring", "anyio", "platformdirs")


def test_the_cli_never_imports_the_servers_code():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] in ("chalicelib", "app", "chalice") for n in names), path


def _modules_after(code: str, env_extra: dict[str, str] | None = None) -> set[str]:
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHON_KEYRING_BACKEND"}
    env.update(env_extra or {})
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys, json\n"
                          "print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True, env=env)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_starting_the_cli_imports_no_http_client_model_library_or_keyring():
    loaded = _modules_after("import tessera_cli.main")
    assert not {m.split(".")[0] for m in loaded} & set(SLOW)


def test_token_show_from_the_file_store_imports_none_of_them(tmp_path):
    home = tmp_path / "tessera"
    home.mkdir()
    server = "https://tessera.example.com"
    (home / "config.json").write_text(json.dumps({"current": server,
                                                  "servers": {server: {"store": "file"}}}))
    (home / "credentials.json").write_text(json.dumps({server: {
        "server": server, "client_id": "c", "token_endpoint": f"{server}/oauth/token",
        "revocation_endpoint": None, "access_token": "at", "refresh_token": "tsr_x",
        "expires_at": 4_000_000_000, "scope": ""}}))
    code = ("import sys\nfrom tessera_cli.main import cli\n"
            "try:\n    cli(['token', 'show'], prog_name='tessera')\nexcept SystemExit as e:\n"
            "    assert e.code == 0, e.code")
    loaded = _modules_after(code, {"XDG_CONFIG_HOME": str(tmp_path)})
    assert not {m.split(".")[0] for m in loaded} & set(SLOW)


def test_a_keyring_login_is_read_through_the_backend_that_stored_it_without_discovery(tmp_path):
    # keyring's null backend holds nothing: token show says to log in (exit 4),
    # and no other backend module was imported, which discovery would have done.
    home = tmp_path / "tessera"
    home.mkdir()
    server = "https://tessera.example.com"
    (home / "config.json").write_text(json.dumps({"current": server, "servers": {
        server: {"store": "keyring", "backend": "keyring.backends.null.Keyring"}}}))
    code = ("from tessera_cli.main import cli\n"
            "try:\n    cli(['token', 'show'], prog_name='tessera')\nexcept SystemExit as e:\n"
            "    assert e.code == 4, e.code")
    loaded = _modules_after(code, {"XDG_CONFIG_HOME": str(tmp_path)})
    assert "keyring.backends.null" in loaded
    assert not {"keyring.backends.SecretService", "keyring.backends.kwallet",
                "keyring.backends.chainer"} & loaded


def test_help_lists_the_lazy_groups_with_their_own_lines_without_importing_them():
    import importlib

    from tessera_cli.main import LAZY

    for name, (module, attribute, line) in LAZY.items():
        group = getattr(importlib.import_module(module), attribute)
        assert group.get_short_help_str(limit=200) == line, name
    code = ("from tessera_cli.main import cli\n"
            "try:\n    cli(['--help'], prog_name='tessera')\nexcept SystemExit as e:\n"
            "    assert e.code == 0, e.code")
    loaded = _modules_after(code)
    assert not {module for module, _, _ in LAZY.values()} & loaded
