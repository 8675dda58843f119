"""The operator's tools as a package of their own (tessera_admin, issue 23): the
``tessera-admin`` console script `make` installs, and ``python -m tessera_admin``."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tessera_admin import cli

ROOT = Path(__file__).resolve().parents[2]


def test_the_console_script_is_the_admin_commands_main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    module, _, name = project["scripts"]["tessera-admin"].partition(":")
    assert getattr(importlib.import_module(module), name) is cli.main


def test_make_installs_the_root_project_as_a_plain_path_entry() -> None:
    """Compat mode puts this checkout on sys.path, so the script finds chalicelib too."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"pip install .*-e \. --config-settings editable_mode=compat", makefile)


def test_the_usage_names_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("usage: tessera-admin [-h] {user,client,role,tables,keys,seed}")


def test_python_m_tessera_admin_runs_the_same_command() -> None:
    done = subprocess.run([sys.executable, "-m", "tessera_admin", "user", "show"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "usage: tessera-admin user show [-h] username" in done.stderr
