"""moto in server mode in a process of its own, so that its CPU time is never
counted as the API's, behind a small HTTP/1.1 server that keeps connections
alive as DynamoDB does.

Run as ``python -m bench.moto_process``: prints the endpoint on one line, serves
until its stdin closes.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"


def aws_environment(endpoint: str, stage: str = "bench") -> dict[str, str]:
    """What a process needs to talk to the moto server as Tessera's stage ``stage``."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "TESSERA_STAGE": stage,
        "TESSERA_ISSUER": "https://tessera.bench",
        # The benchmark signs its user in hundreds of times while it reuses one login
        # for a while: the session cap would end that login mid-run.
        "TESSERA_MAX_SESSIONS_PER_USER": "100000",
        # moto's TransactWriteItems copies every table to roll back with, so by the end of
        # a full run (thousands of sessions) one takes seconds, which DynamoDB's does not:
        # past the stage's 2 s read timeout the client would retry a write that went
        # through. Only how long the client waits changes, not what a request does.
        "TESSERA_DYNAMODB_READ_TIMEOUT_MS": "20000",
    }


def end_child(proc: subprocess.Popen[Any], timeout: float) -> None:
    """Stop a child that exits when its stdin closes (the moto server, the peer):
    close stdin, wait ``timeout`` seconds, then kill it."""
    if proc.stdin is not None and not proc.stdin.closed:
        proc.stdin.close()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class MotoProcess:
    """A moto server child process; ``endpoint`` is its URL."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.moto_process"], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http://"):
            self.stop()
            raise RuntimeError(f"moto server did not start: {line!r}")
        self.endpoint = line
        self.pid = self.proc.pid

    def stop(self) -> None:
        end_child(self.proc, timeout=20)

    def __enter__(self) -> MotoProcess:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def main() -> int:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from devserver import AWSRequestHandler

    # Keep-alive connections as DynamoDB's (werkzeug's server, which ThreadedMotoServer
    # uses, closes each one after its answer: every call would pay a new TCP connection).
    handler = type("MotoHandler", (AWSRequestHandler,),
                   {"app": DomainDispatcherApplication(create_backend_app)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    host, port = str(server.server_address[0]), int(server.server_address[1])
    threading.Thread(target=server.serve_forever, name="moto", daemon=True).start()
    print(f"http://{host}:{port}", flush=True)
    sys.stdin.read()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
