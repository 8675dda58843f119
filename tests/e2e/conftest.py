"""``live_server``: the real local runner, started once per session.

It runs as a subprocess on a free port, is ready once discovery answers, and at
the end is stopped with SIGTERM, which must end it with exit status 0.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from tests.e2e.support import LiveServer, start_server


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("live"))
    yield server
    status = server.stop(signal.SIGTERM)
    assert status == 0, f"devserver exited with {status} on SIGTERM:\n{server.log()}"
    assert "Traceback" not in server.log(), server.log()

