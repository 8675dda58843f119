"""Driving the real local runner (``devserver.py``) as a subprocess, over real HTTP.

``start_server`` runs it on a free port (``--port 0``; the runner prints the
URL it bound) and returns once discovery answers; ``http`` sends one request.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devserver import LOCAL_MAIL_FROM

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_LISTENING = re.compile(r"listening on (http://(?:127\.0\.0\.1|localhost):\d+)")
_ENDPOINT = re.compile(r"AWS_ENDPOINT_URL=(http://127\.0\.0\.1:\d+)")
_STAGE = re.compile(r"TESSERA_STAGE=(\S+)")


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    log_path: Path
    base_url: str = ""
    # The environment that points the admin command at this server's moto.
    admin_env: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def admin(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``python -m tessera_admin ARGS`` (the ``tessera-admin`` command) against
        this server's tables."""
        return subprocess.run([sys.executable, "-m", "tessera_admin", *args], cwd=ROOT,
                              env=self.admin_env, input=stdin, capture_output=True, text=True,
                              timeout=60, check=False)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TESSERA_"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_server(tmp_dir: Path, *args: str) -> LiveServer:
    """Start ``devserver.py --port 0 ARGS`` and wait until discovery answers."""
    log_path = tmp_dir / f"devserver-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen([sys.executable, "devserver.py", "--port", "0", *args], cwd=ROOT,
                                   env=_child_env(), stdout=log_file, stderr=subprocess.STDOUT)
    server = LiveServer(process, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"devserver exited with {process.returncode}:\n{server.log()}")
        text = server.log()
        found, endpoint, stage = _LISTENING.search(text), _ENDPOINT.search(text), _STAGE.search(text)
        if found and endpoint and stage:
            server.base_url = found.group(1)
            server.admin_env = {**_child_env(), "AWS_ENDPOINT_URL": endpoint.group(1),
                                "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                                "AWS_DEFAULT_REGION": "us-east-1", "TESSERA_STAGE": stage.group(1),
                                # As the banner's line says: the links the admin command mails
                                # (an invitation) name this server, from the runner's sender.
                                "TESSERA_ISSUER": found.group(1),
                                "TESSERA_MAIL_FROM": LOCAL_MAIL_FROM}
            try:
                with urllib.request.urlopen(server.base_url + "/.well-known/openid-configuration",
                                            timeout=5) as response:
                    if response.status == 200:
                        return server
            except (urllib.error.URLError, ConnectionError):
                pass
        time.sleep(0.05)
    server.stop()
    pytest.fail(f"devserver did not answer within {START_TIMEOUT}s:\n{server.log()}")


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def http(method: str, url: str, *, headers: dict[str, str] | None = None,
         body: bytes | None = None) -> HttpResponse:
    """One real HTTP request; 4xx and 5xx are returned, not raised."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return HttpResponse(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as err:
        return HttpResponse(err.code, dict(err.headers.items()), err.read())


@contextlib.contextmanager
def running_server(tmp_dir: Path, *args: str) -> Iterator[LiveServer]:
    """A real runner for the duration of the block; it must stop on SIGTERM with
    exit status 0 and no traceback in its output."""
    server = start_server(tmp_dir, *args)
    try:
        yield server
    finally:
        status = server.stop(signal.SIGTERM)
    assert status == 0, f"devserver exited with {status} on SIGTERM:\n{server.log()}"
    assert "Traceback" not in server.log(), server.log()
