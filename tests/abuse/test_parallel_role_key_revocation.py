"""A role key revoked while 20 clients use it (issue 12): no request that starts
after the revocation's answer succeeds.

Real threads send real HTTP requests to the real local runner (``abuse_server``),
half of them ``GET /v1/me`` with the key as Bearer, half ``client_credentials``
with it as Basic, while the key is revoked over ``/oauth/revoke``. Each request
records when it started and what it got; requests in flight during the
revocation may go either way, every one that started after it answered must
fail.
"""

from __future__ import annotations

import base64
import threading
import time
from typing import Any

from tests.abuse.support import post_form
from tests.api.role_support import make_role, mint_key
from tests.e2e.support import LiveServer, http

THREADS = 20
BEFORE = 60          # requests served with the live key before it is revoked
AFTER = 60           # requests started after the revocation answered
DEADLINE = 120.0
RS, RS_SECRET = "resource-server", "resource-server-local-secret"


def server_container(server: LiveServer) -> Any:
    """A container on the server's own moto, as the admin command would build one."""
    import boto3

    from chalicelib.clock import SystemClock
    from chalicelib.config import Settings
    from chalicelib.container import Container

    env = server.admin_env

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"],
                            region_name=env["AWS_DEFAULT_REGION"],
                            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])

    return Container(Settings.from_env(env), SystemClock(), client_factory=client)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_no_request_started_after_the_revocation_answered_succeeds(abuse_server: LiveServer):
    ctr = server_container(abuse_server)
    key = mint_key(ctr, make_role(ctr, "alice", "race", "data:get@urn:tessera:data:alice.*"))
    base = abuse_server.base_url
    results: list[tuple[float, str, int]] = []      # (started, what, status)
    lock = threading.Lock()
    stop = threading.Event()
    barrier = threading.Barrier(THREADS)

    def use_the_key(n: int) -> None:
        barrier.wait()
        while not stop.is_set():
            started = time.monotonic()
            if n % 2:
                what = "me"
                status = http("GET", base + "/v1/me",
                              headers={"Authorization": f"Bearer {key.token}"}).status
            else:
                what = "client_credentials"
                status = post_form(base + "/oauth/token", {"grant_type": "client_credentials"},
                                   headers=basic(key.access, key.secret)).status
            with lock:
                results.append((started, what, status))

    def wait_until(condition: Any) -> None:
        deadline = time.monotonic() + DEADLINE
        while not condition():
            assert time.monotonic() < deadline, "the requests did not come back in time"
            time.sleep(0.01)

    threads = [threading.Thread(target=use_the_key, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(results) >= BEFORE)
        revoked = post_form(base + "/oauth/revoke", {"token": key.token},
                            headers=basic(RS, RS_SECRET))
        answered = time.monotonic()
        assert revoked.status == 200, revoked.body

        def started_after() -> list[tuple[float, str, int]]:
            with lock:
                return [r for r in results if r[0] > answered]

        wait_until(lambda: len(started_after()) >= AFTER)
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    before = [r for r in results if r[0] < answered]
    after = started_after()
    assert {status for _, _, status in results} <= {200, 401}
    assert {what for _, what, status in before if status == 200} == {"me", "client_credentials"}
    assert {what for _, what, _ in after} == {"me", "client_credentials"}
    succeeded_after = [r for r in after if r[2] == 200]
    assert succeeded_after == [], succeeded_after
