"""The local runner over real HTTP: what `make run` gives an operator."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection, HTTPResponse
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.support import ROOT, START_TIMEOUT, STOP_TIMEOUT, http, start_server

pytestmark = pytest.mark.e2e

PROBLEM_401 = {"type": "about:blank", "title": "Unauthorized", "status": 401,
               "detail": "Provided token is not valid"}


def test_discovery_is_served_with_the_local_issuer(live_server):
    response = http("GET", live_server.base_url + "/.well-known/openid-configuration")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    doc = response.json()
    assert doc["issuer"] == live_server.base_url
    assert doc["jwks_uri"] == live_server.base_url + "/.well-known/jwks.json"


def test_jwks_publishes_es256_and_rs256_keys_with_kids(live_server):
    response = http("GET", live_server.base_url + "/.well-known/jwks.json")
    assert response.status == 200
    keys = response.json()["keys"]
    # the local runner makes both families at start-up (OIDC Core §15.1: RS256 too)
    assert {key["alg"] for key in keys} == {"ES256", "RS256"}
    for key in keys:
        if key["alg"] == "ES256":
            assert key["kty"] == "EC" and key["crv"] == "P-256"
        else:
            assert key["kty"] == "RSA" and key["e"] == "AQAB"
        assert key["kid"] and key["use"] == "sig"
        assert "d" not in key and "p" not in key
    assert len({key["kid"] for key in keys}) == len(keys)


def test_whoami_with_a_bad_bearer_token_is_the_spec_401(live_server):
    response = http("GET", live_server.base_url + "/v1/me",
                    headers={"Authorization": "Bearer not-a-token"})
    assert response.status == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json() == PROBLEM_401


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer whatever"}])
def test_unknown_route_is_problem_json_404(live_server, headers):
    response = http("GET", live_server.base_url + "/no/such/thing?x=1", headers=headers)
    assert response.status == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json() == {"type": "about:blank", "title": "Not Found", "status": 404,
                               "detail": "No resource at /no/such/thing"}


def test_unknown_route_with_a_body_is_problem_json_404(live_server):
    response = http("POST", live_server.base_url + "/oauth/nothing", body=b"a=b",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 404
    assert response.json()["title"] == "Not Found"


def test_demo_seed_is_loaded_and_the_admin_command_reaches_it(live_server):
    shown = live_server.admin("user", "show", "alice")
    assert shown.returncode == 0, shown.stderr
    alice = json.loads(shown.stdout)
    assert (alice["username"], alice["email"], alice["firstname"], alice["lastname"], alice["active"]) == (
        "alice", "alice@example.com", "Alice", "Liddell", True)
    client = json.loads(live_server.admin("client", "show", "cf83e1357eefb8bd").stdout)
    assert client["public"] is True
    assert "urn:ietf:params:oauth:grant-type:device_code" in client["grant_types"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_server_cleanly(tmp_path, signum):
    server = start_server(tmp_path, "--no-seed")
    address = urlsplit(server.base_url)
    assert server.stop(signum) == 0, server.log()
    assert "Traceback" not in server.log()
    with pytest.raises(OSError), socket.create_connection((address.hostname, address.port), timeout=1):
        pass


# --------------------------------------------------------------------------
# every error in the documented format, HEAD, unknown methods (SPEC §8)
# --------------------------------------------------------------------------

def raw_exchange(base_url: str, data: bytes, method: str = "GET") -> tuple[HTTPResponse, bytes]:
    """Send bytes as they are (http.client would refuse to send a malformed request)."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(data)
        response = HTTPResponse(sock, method=method)
        response.begin()
        return response, response.read()


def assert_problem(exchange: tuple[HTTPResponse, bytes], status: int) -> dict[str, object]:
    response, body = exchange
    assert response.status == status
    assert response.getheader("Content-Type") == "application/problem+json"
    problem = json.loads(body)
    assert problem["type"] == "about:blank" and problem["status"] == status
    assert problem["title"] == response.reason
    return problem


def test_head_is_405_without_a_body_and_the_connection_stays_usable(live_server):
    address = urlsplit(live_server.base_url)
    conn = HTTPConnection(address.hostname, address.port, timeout=10)
    conn.request("HEAD", "/.well-known/jwks.json")
    head = conn.getresponse()
    # OPTIONS: the CORS preflight (a browser app reads the JWKS)
    assert head.status == 405 and head.getheader("Allow") == "GET, OPTIONS"
    assert head.getheader("Content-Type") == "application/problem+json"
    assert head.read() == b""
    conn.request("GET", "/.well-known/jwks.json")
    after = conn.getresponse()
    assert after.status == 200 and json.loads(after.read())["keys"]
    conn.close()


@pytest.mark.parametrize("method", ["PROPFIND", "TRACE", "DELETE"])
def test_a_method_the_route_lacks_is_problem_json_405_with_allow(live_server, method):
    exchange = raw_exchange(live_server.base_url,
                            f"{method} /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert exchange[0].getheader("Allow") == "GET, OPTIONS"
    assert assert_problem(exchange, 405)["detail"] == f"{method} is not allowed on /.well-known/jwks.json"


@pytest.mark.parametrize(("method", "path"), [("HEAD", "/tokens"), ("PROPFIND", "/tokens"),
                                              ("PUT", "/device")])
def test_a_405_on_a_page_is_an_html_page(live_server, method, path):
    response, page = raw_exchange(live_server.base_url,
                                  f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), method)
    assert response.status == 405
    assert response.getheader("Content-Type") == "text/html; charset=utf-8"
    assert response.getheader("X-Frame-Options") == "DENY"
    assert page == b"" if method == "HEAD" else b"Method Not Allowed" in page


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(120)) + b"\r\n", 431),
    (b"GET / HTTP/1.1\r\nX-Long: " + b"y" * 70_000 + b"\r\n\r\n", 431),
    (b"NONSENSE\r\n\r\n", 400),
    (b"GET / HTTP/9.9\r\n\r\n", 505),
])
def test_requests_http_server_refuses_get_problem_json(live_server, request_bytes, status):
    exchange = raw_exchange(live_server.base_url, request_bytes)
    assert_problem(exchange, status)
    assert exchange[0].getheader("Connection") == "close"


def test_64_concurrent_clients_all_get_an_answer(live_server):
    """The listen backlog holds a burst: no connection is reset or refused."""
    address = urlsplit(live_server.base_url)
    clients = 64
    ready = threading.Barrier(clients)

    def one(_: int) -> int | str:
        try:
            ready.wait(timeout=30)
            conn = HTTPConnection(address.hostname, address.port, timeout=60)
            conn.request("POST", "/oauth/token", body=b"grant_type=nothing",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            status = conn.getresponse().status
            conn.close()
            return status
        except OSError as exc:
            return type(exc).__name__

    with ThreadPoolExecutor(clients) as pool:
        outcomes = list(pool.map(one, range(clients)))
    failures = [o for o in outcomes if not isinstance(o, int)]
    assert failures == [], f"{len(failures)} of {clients} connections failed: {failures[:5]}"
    assert len(set(outcomes)) == 1 and 400 <= int(outcomes[0]) < 500


# --------------------------------------------------------------------------
# audit events reach the runner's output (SPEC §8)
# --------------------------------------------------------------------------

def test_the_runner_prints_audit_events_as_json_lines(live_server):
    http("POST", live_server.base_url + "/oauth/token",
         headers={"Content-Type": "application/x-www-form-urlencoded"},
         body=b"grant_type=password&client_id=cf83e1357eefb8bd&username=alice&password=nope-e2e")
    deadline = time.monotonic() + 5
    events: list[dict[str, object]] = []
    while time.monotonic() < deadline and not events:
        events = [json.loads(line) for line in live_server.log().splitlines()
                  if line.startswith("{") and '"event":"signin_failed"' in line]
    assert events and events[-1]["logger"] == "tessera.audit" and events[-1]["user_known"] is True
    assert "nope-e2e" not in live_server.log()


# --------------------------------------------------------------------------
# `make run` and signals to its process group (make forwards them)
# --------------------------------------------------------------------------

def start_in_group(tmp_path: Path, argv: list[str]) -> tuple[subprocess.Popen[bytes], Path, str]:
    """Start ``argv`` as the leader of a new process group; wait until it serves."""
    log_path = tmp_path / f"group-{time.monotonic_ns()}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TESSERA_", "MAKE"))}
    env["PYTHONUNBUFFERED"] = "1"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log_file,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode}:\n{text}")
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", text)
        if found:
            try:
                if http("GET", found.group(1) + "/.well-known/jwks.json").status == 200:
                    return process, log_path, found.group(1)
            except OSError:
                pass
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    pytest.fail(f"did not start within {START_TIMEOUT}s:\n{log_path.read_text(errors='replace')}")


def group_is_gone(pgid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def stop_group(process: subprocess.Popen[bytes], signum: int) -> int:
    os.killpg(process.pid, signum)
    try:
        status = process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail(f"still running {STOP_TIMEOUT}s after {signal.Signals(signum).name} to its group")
    if not group_is_gone(process.pid, STOP_TIMEOUT):
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("a process of the group outlived the signal")
    return status


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_make_run_stops_cleanly_on_a_signal_to_its_process_group(tmp_path, signum):
    stamp = tmp_path / "requirements.stamp"
    stamp.touch()   # the venv is ready: make skips the install and only runs the server
    process, log_path, base_url = start_in_group(tmp_path, [
        "make", "--no-print-directory", "run", f"PY={sys.executable}", f"STAMP={stamp}", "PORT=0"])
    status = stop_group(process, signum)
    log = log_path.read_text(errors="replace")
    # make itself dies of the signal it got (130 / 143 in a shell); the runner stopped cleanly.
    assert status in (-signum, 128 + signum), log
    assert f"stopping ({signal.Signals(signum).name})" in log
    assert "Traceback" not in log, log
    address = urlsplit(base_url)
    with pytest.raises(OSError), socket.create_connection((address.hostname, address.port), timeout=1):
        pass


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_runner_exits_0_when_its_group_gets_the_signal_again_and_again(tmp_path, signum):
    process, log_path, _ = start_in_group(
        tmp_path, [sys.executable, "devserver.py", "--port", "0", "--no-seed"])
    for _ in range(20):   # a burst, as make forwarding and a terminal can produce
        os.killpg(process.pid, signum)
    assert stop_group(process, signum) == 0
    log = log_path.read_text(errors="replace")
    assert "Traceback" not in log, log


# --------------------------------------------------------------------------
# slow clients: a read timeout, a bound on threads, a stop that does not wait on them
# --------------------------------------------------------------------------

def slow_clients(base_url: str, count: int) -> list[socket.socket]:
    """Clients that announce a body and send 3 bytes of it, then nothing."""
    address = urlsplit(base_url)
    socks = []
    for _ in range(count):
        sock = socket.create_connection((address.hostname, address.port), timeout=10)
        sock.sendall(b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nabc")
        socks.append(sock)
    return socks


def test_a_slow_body_is_a_408_and_slow_clients_do_not_keep_a_request_from_an_answer(tmp_path):
    server = start_server(tmp_path, "--no-seed", "--request-timeout", "1", "--max-connections", "8")
    socks = slow_clients(server.base_url, 30)
    try:
        started = time.monotonic()
        statuses = []
        while time.monotonic() - started < 10:
            statuses.append(http("GET", server.base_url + "/.well-known/jwks.json").status)
            if statuses[-1] == 200:
                break
        assert statuses[-1] == 200 and set(statuses) <= {200, 503}
        answer = b""
        socks[0].settimeout(5)
        while chunk := socks[0].recv(65536):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert time.monotonic() - started < 5
    finally:
        for sock in socks:
            sock.close()
        assert server.stop() == 0, server.log()


def test_sigterm_with_slow_clients_connected_stops_within_seconds(tmp_path):
    server = start_server(tmp_path, "--no-seed", "--request-timeout", "60")
    socks = slow_clients(server.base_url, 30)
    try:
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        status = server.process.wait(timeout=STOP_TIMEOUT)
        assert time.monotonic() - started < 6, server.log()
        assert status == 0 and "Traceback" not in server.log(), server.log()
    finally:
        for sock in socks:
            sock.close()
        server.stop()
