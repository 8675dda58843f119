"""The ``tessera`` CLI end to end (issue 14): the real local runner, the CLI as a
subprocess (``.venv/bin/tessera``), the device approval in headless Chromium.

One login is shared by the module; the tests run in file order and ``logout`` is
last. There is no real keyring here: ``PYTHON_KEYRING_BACKEND`` names keyring's
``fail`` backend, so the login goes to the 0600 file fallback (with its warning),
in a config directory of the module's own.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.e2e.ci_issuer import RUNNER_SECRET, ci_issuer
from tests.e2e.support import http

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

TESSERA = str(Path(sys.executable).parent / "tessera")
ROLE = "alice.e2e-cli"
URL_LINE = re.compile(r"(http://127\.0\.0\.1:\d+/device\?user_code=\S+)")
CODE_LINE = re.compile(r"code: ([B-DF-HJ-NP-TV-XZ]{4}-[B-DF-HJ-NP-TV-XZ]{4})")


@dataclass
class Cli:
    server: str
    home: Path
    env: dict[str, str]
    login_stderr: str = ""
    state: dict[str, Any] = field(default_factory=dict)

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run([TESSERA, *args], env={**self.env, **(env or {})}, capture_output=True,
                              text=True, timeout=timeout, check=False)

    def ok(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = self.run(*args, env=env)
        assert done.returncode == 0, f"tessera {' '.join(args)}: {done.returncode}\n{done.stderr}"
        return done.stdout

    def stored(self) -> dict[str, Any]:
        return json.loads((self.home / "tessera" / "credentials.json").read_text())[self.server]


def approve(chromium: Any, url: str, code: str) -> None:
    page = chromium.new_context().new_page()
    try:
        page.goto(url)
        assert page.get_by_label("Code from your device").input_value() == code
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill("password4alice")
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("button", name="Approve").click()
        page.get_by_role("heading", name="Device approved").wait_for()
    finally:
        page.context.close()


@pytest.fixture(scope="module")
def cli(live_server: Any, chromium: Any, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    home = tmp_path_factory.mktemp("cli-config")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TESSERA_", "AWS_", "ACTIONS_", "DISPLAY", "BROWSER", "XDG_"))}
    env.update(XDG_CONFIG_HOME=str(home), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    session = Cli(live_server.base_url, home, env)
    returncode, stdout, session.login_stderr = login_with_approval(chromium, live_server.base_url, env)
    assert returncode == 0, session.login_stderr
    assert stdout == "Login successful!\n"
    return session


def login_with_approval(chromium: Any, server: str, env: dict[str, str]) -> tuple[int, str, str]:
    """``tessera login --no-browser --server SERVER``, its device code approved by alice in
    Chromium from the URL and code it prints: (exit status, stdout, stderr)."""
    process = subprocess.Popen([TESSERA, "login", "--no-browser", "--server", server],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert process.stderr is not None and process.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stderr], daemon=True)
    reader.start()
    seen, url, code = [], None, None
    deadline = time.monotonic() + 20
    while (url is None or code is None) and time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(line)
        url = url or (m.group(1) if (m := URL_LINE.search(line)) else None)
        code = code or (m.group(1) if (m := CODE_LINE.search(line)) else None)
    assert url and code, "".join(seen)
    assert code in url
    approve(chromium, url, code)
    stdout = process.stdout.read()
    process.wait(timeout=60)
    reader.join(timeout=10)
    while not lines.empty():
        seen.append(lines.get())
    return process.returncode, stdout, "".join(seen)


def test_login_stores_the_tokens_in_the_0600_file_with_a_warning(cli):
    assert "warning: no keyring available" in cli.login_stderr
    path = cli.home / "tessera" / "credentials.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert cli.stored()["refresh_token"].startswith("tsr_")


def test_whoami_shows_the_person_as_a_table(cli):
    out = cli.ok("whoami")
    assert re.search(r"^First name\s+Alice$", out, re.M) and re.search(r"^Last name\s+Liddell$", out, re.M)
    assert re.search(r"^Email\s+alice@example.com$", out, re.M)
    assert re.search(r"^Active\s+yes$", out, re.M) and re.search(r"^ID\s+\S{16}$", out, re.M)


def test_token_show_h_is_a_header_another_client_can_send(cli):
    done = cli.run("token", "show", "-H")
    assert done.returncode == 0 and "valid" in done.stderr
    name, _, value = done.stdout.strip().partition(": ")
    assert name == "Authorization" and value.startswith("Bearer ey")
    got = http("GET", f"{cli.server}/v1/me", headers={name: value})
    assert got.status == 200 and got.json()["email"] == "alice@example.com"


def test_token_info_says_when_the_token_expires_in_words(cli):
    out = cli.ok("token", "info")
    assert re.search(r"^Type\s+access_token$", out, re.M)
    assert re.search(r"^Expires in\s+in [45] minutes$", out, re.M)
    assert re.search(r"^Originally issued at\s+\d{4}-\d\d-\d\d ", out, re.M)


def test_sessions_list_marks_the_clis_own_session(cli):
    sessions = json.loads(cli.ok("sessions", "list", "--json"))
    (current,) = [s for s in sessions if s["current"]]
    assert current["client_id"] == "cf83e1357eefb8bd"
    assert current["device"]["user_agent"].startswith("tessera-cli/")


def test_consents_list_answers_a_json_list(cli):
    # alice has consented to no app in this module: the list is there, and empty.
    assert json.loads(cli.ok("consents", "list", "--json")) == []


def test_token_refresh_rotates_the_refresh_token(cli):
    before = cli.stored()["refresh_token"]
    cli.ok("token", "refresh")
    assert cli.stored()["refresh_token"] != before


def test_a_pat_works_with_tessera_token_until_it_is_revoked(cli):
    secret = cli.ok("pat", "create", "--description", "ci", "--api-set", "ide-plugins").strip()
    assert secret.startswith("tsp_") and "\n" not in secret
    assert "alice@example.com" in cli.ok("whoami", env={"TESSERA_TOKEN": secret})
    listed = json.loads(cli.ok("pat", "list", "--json"))
    (pat,) = [p for p in listed if p["description"] == "ci" and p["state"] == "active"]
    cli.ok("pat", "revoke", pat["id"])
    refused = cli.run("whoami", env={"TESSERA_TOKEN": secret})
    assert refused.returncode == 4
    assert refused.stderr == "Error: TESSERA_TOKEN / --token was rejected: Provided token is not valid\n"


def test_a_role_key_made_with_a_format_template_is_a_working_credential(cli):
    cli.ok("role", "new", ROLE, "--description", "e2e of the CLI")
    out = cli.ok("role", "policy", "add", ROLE, "data:get@urn:tessera:data:alice.workspace")
    assert out.startswith("Added policy ")
    assert "data:get@urn:tessera:data:alice.workspace" in cli.ok("role", "policy", "list", ROLE)
    token = cli.ok("role", "key", "new", ROLE, "--format-template", "{access}:{secret}").strip()
    assert re.fullmatch(r"tka_[0-9A-Za-z]{16}:tsk_\S+", token)
    me = json.loads(cli.ok("whoami", "--json", env={"TESSERA_TOKEN": token}))
    assert me["role"] == ROLE
    keys = json.loads(cli.ok("role", "key", "list", ROLE, "--json"))
    assert [k["id"] for k in keys] == [token.split(":")[0]]  # a key's id is its access id
    assert "secret" not in keys[0]
    cli.ok("role", "key", "revoke", ROLE, keys[0]["id"])
    assert cli.run("whoami", env={"TESSERA_TOKEN": token}).returncode == 4


def test_a_ci_job_gets_a_role_token_from_its_oidc_identity(cli):
    with ci_issuer() as issuer:
        cli.ok("role", "trust", "add", ROLE, "--issuer", issuer.url, "--audience", "tessera",
               "--subject", "repo:acme/app:*", "--claim", "repository_owner=acme")
        job_env = {"ACTIONS_ID_TOKEN_REQUEST_URL": f"{issuer.url}/token-request?api-version=2.0",
                   "ACTIONS_ID_TOKEN_REQUEST_TOKEN": RUNNER_SECRET, "TESSERA_SERVER": cli.server,
                   "XDG_CONFIG_HOME": str(cli.home / "empty")}
        header = cli.ok("job", "token", "--role", ROLE, "-H", env=job_env).strip()
        assert issuer.requests[0]["query"]["audience"] == "tessera"
    assert header.startswith("Authorization: Bearer ")
    role_token = header.removeprefix("Authorization: Bearer ")
    claims = jwt.decode(role_token, options={"verify_signature": False})
    assert claims["role"] == ROLE and claims["act"]["sub"] == "repo:acme/app:ref:refs/heads/main"
    got = http("GET", f"{cli.server}/v1/me", headers={"Authorization": f"Bearer {role_token}"})
    assert got.status == 200 and got.json()["role"] == ROLE
    cli.ok("role", "delete", ROLE)


def test_logout_ends_the_session_on_the_server(cli):
    refresh_token = cli.stored()["refresh_token"]
    out = cli.ok("logout")
    assert out.startswith("Logged out of ")
    got = http("POST", f"{cli.server}/oauth/token",
               headers={"Content-Type": "application/x-www-form-urlencoded"},
               body=f"grant_type=refresh_token&client_id=cf83e1357eefb8bd&refresh_token={refresh_token}".encode())
    assert got.status == 400 and got.json()["error"] == "invalid_grant"
    after = cli.run("whoami")
    assert after.returncode == 4 and "tessera login" in after.stderr
