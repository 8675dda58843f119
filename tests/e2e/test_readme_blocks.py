"""The README's first minute and the manual's getting-started page stay true: their
command blocks run, as written, against a real runner.

The blocks are taken from the files themselves. Only what a reader fills in by hand
is filled in: the server's address (the README says ``127.0.0.1:8000``), the PAT
and the device code the previous commands printed (``tsp_…``, ``tsd_…``), and the
approval alice gives in the browser (headless Chromium here). Each ``curl`` runs
with ``--fail``, so an HTTP error fails the block.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.support import running_server
from tests.e2e.test_cli import approve, login_with_approval

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
GETTING_STARTED = ROOT / "docs" / "getting-started.md"
DOCUMENTED = "http://127.0.0.1:8000"
LOGIN = ".venv/bin/tessera login --server " + DOCUMENTED
PAT_LINE = re.compile(r"^(tessera pat create [^#]*?)\s+# prints tsp_… once$")


def sh_blocks(path: Path) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", path.read_text(encoding="utf-8"), re.DOTALL)


def block_with(path: Path, needle: str) -> str:
    found = [b for b in sh_blocks(path) if needle in b]
    assert len(found) == 1, f"{path.name}: one block with {needle!r}"
    return found[0]


def curl_fails_on_errors(script: str) -> str:
    return re.sub(r"(^|\$\(|\s)curl ", r"\1curl --fail --show-error ", script, flags=re.MULTILINE)


def run_bash(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Any:
    # A runner of its own: the blocks create alice.ci and PATs with fixed names.
    with running_server(tmp_path_factory.mktemp("readme")) as server:
        yield server


@pytest.fixture
def shell_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TESSERA_", "AWS_", "DISPLAY", "BROWSER", "XDG_"))}
    # .venv/bin of this checkout, or of the interpreter running the tests.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(XDG_CONFIG_HOME=str(tmp_path), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    return env


def test_the_getting_started_page_shows_the_readmes_first_minute():
    for needle in (LOGIN, "device_authorization"):
        assert block_with(GETTING_STARTED, needle) == block_with(README, needle)


def test_the_first_minute_with_the_cli_runs_as_written(runner, chromium, shell_env):
    block = block_with(README, LOGIN)
    lines = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert lines[0] == LOGIN
    status, out, err = login_with_approval(chromium, runner.base_url, shell_env)
    assert status == 0 and out == "Login successful!\n", err
    script = []
    for line in lines[1:]:
        pat = PAT_LINE.match(line)
        script.append(f"PAT=$({pat.group(1)}); echo \"$PAT\"" if pat else line)
    text = curl_fails_on_errors("\n".join(script)).replace(DOCUMENTED, runner.base_url)
    text = text.replace("tsp_…", "$PAT")
    done = run_bash(text, shell_env)
    assert done.returncode == 0, f"{text}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    # curl prints no newline: the login's /v1/me is alice, the role key's last one is alice.ci
    assert done.stdout.count('"email":"alice@example.com"') >= 1
    assert done.stdout.rstrip().endswith("}") and "alice.ci" in done.stdout.rsplit("{", 1)[-1]


def test_the_first_minute_over_http_runs_as_written(runner, chromium, shell_env):
    block = curl_fails_on_errors(block_with(README, "device_authorization")).replace(
        DOCUMENTED, runner.base_url)
    step1, marker, rest = block.partition("\n#    ...open the printed verification_uri_complete")
    rest = marker + rest
    started = run_bash(step1, shell_env)
    assert started.returncode == 0, started.stderr
    device = json.loads(started.stdout)
    approve(chromium, device["verification_uri_complete"], device["user_code"])
    # the reader pastes the printed device_code and, from step 2's answer, the PAT
    step2, _, step3 = rest.partition("\n# 3.")
    step2 = step2.replace("tsd_…", device["device_code"])
    made = run_bash(step2, shell_env)
    assert made.returncode == 0, f"{step2}\n{made.stderr}"
    pat = json.loads(made.stdout)["token"]
    assert pat.startswith("tsp_")
    used = run_bash("# 3." + step3.replace("tsp_…", pat), shell_env)
    assert used.returncode == 0, used.stderr
    # three uses of the PAT, three profiles of alice (curl prints no newline)
    assert used.stdout.count('"email":"alice@example.com"') == 3, used.stdout
