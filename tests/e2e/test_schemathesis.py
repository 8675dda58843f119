"""Schemathesis over HTTP against the real local runner (issue 22): every request
the OpenAPI document calls valid is accepted, every answer is the documented one,
and no request makes a 500.

``st run`` (schemathesis, pinned in requirements-dev.txt) reads ``/openapi.json``
from a runner of this module's own (the campaign logs alice out, deletes her
tokens and roles), with every check (``--checks all``), every phase (examples,
coverage, fuzzing, and stateful runs that follow the document's links from a
created PAT or role to its sub-resources), as alice with a fresh sign-in
(``schemathesis_hooks.py``: scopes tokens:manage, sessions:manage, roles:manage).
``TESSERA_SCHEMATHESIS_EXAMPLES`` sets the examples per operation (8 in
`make test`, 100 in `make fuzz`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support import ROOT, LiveServer, running_server

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("TESSERA_SCHEMATHESIS_EXAMPLES", "8"))
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("schemathesis")) as live:
        yield live


def test_schemathesis_finds_nothing(server: LiveServer, tmp_path: Path) -> None:
    env = {**server.admin_env, "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
           "TESSERA_ST_BASE_URL": server.base_url,
           "TESSERA_ST_DYNAMODB": server.admin_env["AWS_ENDPOINT_URL"],
           "TESSERA_ST_THROTTLE_TABLE": f"tessera-{server.admin_env['TESSERA_STAGE']}-throttle",
           "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(HERE / "schemathesis.toml"),
         "run", server.base_url + "/openapi.json", "--url", server.base_url,
         "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
         "--max-examples", str(EXAMPLES), "--seed", os.environ.get("TESSERA_SCHEMATHESIS_SEED", "20261204"), "--workers", "1",
         # The security schemes are alice's token (the hooks), not generated values: a
         # generated `session` parameter beside the header is a token given twice (400).
         "--generation-with-security-parameters", "false",
         "--generation-database", "none", "--request-timeout", "20",
         "--report", "junit", "--report-dir", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-20000:]
    # The stateful phase ran and followed links of the document (a created PAT or role
    # to its sub-resources).
    links = re.search(r"API Links:\s+(\d+) covered", out)
    assert links and int(links.group(1)) >= 5, out[-6000:]
