"""The local runner under concurrent clients: what ``make run`` serves at 8 and at 32 at once.

    python -m bench.runner_load                      # levels 8 and 32, 10 s each: a table
    python -m bench.runner_load --levels 4,16 --seconds 5 --json

It starts the real runner as ``make run`` does (``devserver.py`` on a free port,
the demo seed), makes one role key of the demo user over the API, signs every
client of every level in once with the password grant (not measured), runs each
level for ``warmup`` seconds, then ``seconds`` of each, measured. A level's clients
run at once, each a thread on its own keep-alive connection sending one request
after the other (no think time), round the mix ``MIX``:

* ``GET /v1/me`` with the client's JWT access token (three in six requests),
* ``refresh_token`` with rotation (the next refresh uses the new token and the
  new access token): one session per client, signed in before anything is measured
  (a sign-in hashes a password: one inside a measured slice would measure scrypt),
  so a session rotates some dozens of times in a run (a day's session 288 times: it
  rotates at every 5-minute expiry),
* introspection of the client's refresh token by the demo resource server,
* ``client_credentials`` with the role key.

The levels take turns, slice by slice (``SLICES``), so that a drift of the machine's
load (on a shared machine) hits them alike. A figure is over the requests that
started and ended inside a measured slice:
requests per second (all clients together), latency percentiles, and the runner's
CPU (its process and its children, from ``/proc``) per request. Every answer is
checked; ``errors`` must be 0.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode, urlsplit

from bench.cpu import quantile
from bench.report import MISS, PASS

ROOT = Path(__file__).resolve().parent.parent
LEVELS = (8, 32)
SECONDS = 10.0
WARMUP = 3.0
# The measured seconds of a level come in this many slices, the levels taking turns,
# each slice after SETTLE unmeasured seconds (the clients' first requests).
SLICES = 4
SETTLE = 0.5
# The demo seed (seeds/demo.json): its user, its CLI client, its introspecting client.
USERNAME, PASSWORD = "alice", "password4alice"
CLI_CLIENT = "cf83e1357eefb8bd"
INTROSPECTOR = ("resource-server", "resource-server-local-secret")
ROLE = f"{USERNAME}.runner-load"
SCOPE = "openid profile offline_access roles:manage"
MIX = ("me", "refresh", "me", "introspect", "client_credentials", "me")
START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 30.0
# The budgets (issue 27): 32 clients are served at least as fast as 8, and the slowest
# hundredth of their requests within a second.
P99_BUDGET_MS = 1000.0
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class LoadError(RuntimeError):
    """The runner did not start, or setting up the load failed."""


# --------------------------------------------------------------------------
# the runner, as `make run` starts it
# --------------------------------------------------------------------------

_LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


@dataclass
class Runner:
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    base_url: str = ""

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.base_url)
        return str(parts.hostname), int(parts.port or 80)

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode("utf-8", errors="replace")

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU (user + system) so far of the runner's process, and of every process under it."""
        pids = _tree(self.process.pid)
        return _process_cpu(pids[0]), sum(_process_cpu(pid) for pid in pids[1:])

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def _tree(pid: int) -> list[int]:
    pids, i = [pid], 0
    while i < len(pids):
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{pids[i]}/task/{pids[i]}/children").read_text().split()
            pids += [int(c) for c in children]
        i += 1
    return pids


def _process_cpu(pid: int) -> float:
    """utime + stime of a live process (its threads included), in seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def running(extra_args: tuple[str, ...] = ()) -> Iterator[Runner]:
    """``devserver.py --port 0`` with the demo seed, until the block ends (SIGTERM)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TESSERA_"))}
    env["PYTHONUNBUFFERED"] = "1"
    # Every level signs its clients in again: no cap on the demo user's sessions ends
    # a session still in use (the benchmark's stage does the same, bench.moto_process).
    env["TESSERA_MAX_SESSIONS_PER_USER"] = "100000"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([sys.executable, "devserver.py", "--port", "0", *extra_args],
                                   cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        runner = Runner(process, log)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not runner.base_url:
                if process.poll() is not None:
                    raise LoadError(f"the runner exited with {process.returncode}:\n{runner.output()}")
                if time.monotonic() > deadline:
                    raise LoadError(f"the runner did not start in {START_TIMEOUT:g}s:\n{runner.output()}")
                found = _LISTENING.search(runner.output())
                if found:
                    runner.base_url = found.group(1)
                else:
                    time.sleep(0.05)
            yield runner
        finally:
            runner.stop()


# --------------------------------------------------------------------------
# one client: a keep-alive connection
# --------------------------------------------------------------------------

class Failure(Exception):
    """An answer that is not the expected one."""


@dataclass
class Answer:
    status: int
    body: bytes

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


class Connection:
    """One keep-alive HTTP/1.1 connection (TCP_NODELAY, as a browser's), reopened after an error."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.conn: http.client.HTTPConnection | None = None

    def _open(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(*self.address, timeout=REQUEST_TIMEOUT)
            self.conn.connect()
            assert self.conn.sock is not None
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.conn

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                body: bytes | None = None, expect: int = 200) -> Answer:
        try:
            conn = self._open()
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            answer = Answer(response.status, response.read())
            if response.will_close:
                self.close()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise Failure(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if answer.status != expect:
            raise Failure(f"{method} {path}: {answer.status} {answer.body[:200]!r}")
        return answer

    def form(self, path: str, params: dict[str, str], headers: dict[str, str] | None = None,
             expect: int = 200) -> Answer:
        return self.request("POST", path, {**FORM, **(headers or {})}, urlencode(params).encode(), expect)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def basic(user: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(conn: Connection) -> dict[str, Any]:
    return conn.form("/oauth/token", {"grant_type": "password", "client_id": CLI_CLIENT,
                                      "username": USERNAME, "password": PASSWORD,
                                      "scope": SCOPE}).json()


def make_role_key(address: tuple[str, int]) -> dict[str, str]:
    """A role key of the demo user, made over the API as its owner would: Basic credentials."""
    conn = Connection(address)
    try:
        token = sign_in(conn)["access_token"]
        json_body = {"Content-Type": "application/json", **bearer(token)}
        conn.request("POST", "/v1/roles", json_body, json.dumps({"name": ROLE}).encode(), expect=201)
        key = conn.request("POST", f"/v1/roles/{ROLE}/keys", json_body,
                           json.dumps({"password": PASSWORD}).encode(), expect=201).json()
        return basic(key["access"], key["secret"])
    finally:
        conn.close()


@dataclass
class Client:
    """One client thread's state: its connection, its session's tokens, what it measured."""

    conn: Connection
    role_key: dict[str, str]
    position: int = 0           # where in the mix its next request is
    tokens: dict[str, Any] = field(default_factory=dict)
    # (started, ended, kind) of each request that was answered as expected
    done: list[tuple[float, float, str]] = field(default_factory=list)
    errors: list[tuple[float, str]] = field(default_factory=list)

    def new_session(self) -> None:
        self.tokens = sign_in(self.conn)

    def one(self, kind: str) -> None:
        if kind == "me":
            self.conn.request("GET", "/v1/me", bearer(self.tokens["access_token"]))
        elif kind == "refresh":
            self.tokens = self.conn.form("/oauth/token", {
                "grant_type": "refresh_token", "client_id": CLI_CLIENT,
                "refresh_token": self.tokens["refresh_token"]}).json()
        elif kind == "introspect":
            active = self.conn.form("/oauth/introspect", {"token": self.tokens["refresh_token"]},
                                    basic(*INTROSPECTOR)).json()
            if active.get("active") is not True:
                raise Failure(f"introspection: {active}")
        elif kind == "client_credentials":
            self.conn.form("/oauth/token", {"grant_type": "client_credentials"}, self.role_key)
        else:
            raise ValueError(kind)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            kind = MIX[self.position % len(MIX)]
            self.position += 1
            started = time.perf_counter()
            try:
                self.one(kind)
            except Failure as exc:
                self.errors.append((started, str(exc)))
                with contextlib.suppress(Failure):
                    self.new_session()      # whatever went wrong, go on with a good session
                continue
            self.done.append((started, time.perf_counter(), kind))


# --------------------------------------------------------------------------
# a level: N clients at once
# --------------------------------------------------------------------------

def _latency(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {"count": 0, **dict.fromkeys(("p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms"),
                                            float("nan"))}
    return {"count": len(ms), "p50_ms": quantile(ms, 0.50), "p90_ms": quantile(ms, 0.90),
            "p99_ms": quantile(ms, 0.99), "max_ms": max(ms), "mean_ms": statistics.fmean(ms)}


@dataclass
class Level:
    """One level's clients and what was measured of them, slice after slice."""

    clients: list[Client]
    done: list[tuple[float, float, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    span: float = 0.0
    cpu: list[float] = field(default_factory=lambda: [0.0, 0.0])   # the runner's, its children's
    load_cpu: float = 0.0

    def drive(self, runner: Runner, seconds: float, settle: float, measured: bool = True) -> None:
        """All its clients at once for ``settle`` seconds, then ``seconds`` measured."""
        stop = threading.Event()
        threads = [threading.Thread(target=c.run, args=(stop,), name=f"client-{i}", daemon=True)
                   for i, c in enumerate(self.clients)]
        for thread in threads:
            thread.start()
        time.sleep(settle)
        cpu_before, load_before, start = runner.cpu_seconds(), time.process_time(), time.perf_counter()
        time.sleep(seconds)
        end, load_after, cpu_after = time.perf_counter(), time.process_time(), runner.cpu_seconds()
        stop.set()
        for thread in threads:
            thread.join(REQUEST_TIMEOUT + 5)
        for c in self.clients:
            # A connection idle while the other level runs is closed here, not by the runner.
            c.conn.close()
            self.errors += [text for _, text in c.errors]
            if measured:
                self.done += [(s, e, k) for (s, e, k) in c.done if s >= start and e <= end]
            c.done.clear()
            c.errors.clear()
        if measured:
            self.span += end - start
            self.cpu = [self.cpu[i] + cpu_after[i] - cpu_before[i] for i in (0, 1)]
            self.load_cpu += load_after - load_before

    def result(self) -> dict[str, Any]:
        n = max(1, len(self.done))
        return {"clients": len(self.clients), "seconds": self.span, "requests": len(self.done),
                "rps": len(self.done) / self.span if self.span else 0.0,
                **_latency([(e - s) * 1000 for s, e, _ in self.done]),
                "runner_cpu_s": sum(self.cpu),
                "runner_cpu_ms_per_request": sum(self.cpu) * 1000 / n,
                # of which the runner's children (the embedded AWS, when it runs apart)
                "children_cpu_ms_per_request": self.cpu[1] * 1000 / n,
                "client_cpu_ms_per_request": self.load_cpu * 1000 / n,
                "errors": len(self.errors), "error_samples": self.errors[:5],
                "kinds": {kind: _latency([(e - s) * 1000 for s, e, k in self.done if k == kind])
                          for kind in dict.fromkeys(MIX)}}


def signed_in(runner: Runner, clients: int, role_key: dict[str, str]) -> Level:
    pool = [Client(Connection(runner.address), role_key, position=i) for i in range(clients)]
    # Sign-ins hash a password: a few at a time, before anything is measured.
    with ThreadPoolExecutor(max_workers=4) as signing:
        list(signing.map(lambda c: c.new_session(), pool))
    return Level(pool)


def measure(levels: tuple[int, ...] = LEVELS, seconds: float = SECONDS, warmup: float = WARMUP,
            log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Start the runner; sign every level's clients in; warm each level up for ``warmup``
    seconds; then measure ``seconds`` of each, in ``SLICES`` slices, the levels taking
    turns (each slice after ``SETTLE`` unmeasured seconds), so that a drift of the
    machine's load hits every level alike. The figures per level: ``levels[str(n)]``."""
    with running() as runner:
        log(f"runner (pid {runner.process.pid}) at {runner.base_url}")
        role_key = make_role_key(runner.address)
        runs = {n: signed_in(runner, n, role_key) for n in levels}
        for level in runs.values():
            level.drive(runner, 0.0, warmup, measured=False)
        for _ in range(SLICES):
            for level in runs.values():
                level.drive(runner, seconds / SLICES, SETTLE)
        if runner.process.poll() is not None:
            raise LoadError(f"the runner died under load:\n{runner.output()}")
    results = {str(n): level.result() for n, level in runs.items()}
    for n, r in results.items():
        log(f"{n} clients: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.0f} ms, "
            f"p99 {r['p99_ms']:.0f} ms, errors {r['errors']}")
    return {"levels": results, "mix": list(MIX), "seconds": seconds, "warmup": warmup,
            "slices": SLICES, "cores": os.cpu_count()}


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------

def runner_table(results: dict[str, Any]) -> list[str]:
    """The runner's table (``results`` is the benchmark's, with ``results["runner"]``, or
    what ``measure`` returned)."""
    runner = results.get("runner", results)
    lines = [f"### The local runner under concurrent clients ({runner['seconds']:g} s per level in "
             f"{runner.get('slices', 1)} slices, the levels taking turns, after {runner['warmup']:g} s of "
             f"warm-up; keep-alive connections, mix: {', '.join(runner['mix'])})",
             "", "| clients | requests/s | p50 ms | p90 ms | p99 ms | max ms | runner CPU ms/request "
             "| of which moto's process | load's own CPU ms/request | errors |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for level in runner["levels"].values():
        lines.append(f"| {level['clients']} | {level['rps']:.0f} | {level['p50_ms']:.1f} "
                     f"| {level['p90_ms']:.1f} | {level['p99_ms']:.1f} | {level['max_ms']:.0f} "
                     f"| {level['runner_cpu_ms_per_request']:.2f} "
                     f"| {level['children_cpu_ms_per_request']:.2f} "
                     f"| {level['client_cpu_ms_per_request']:.2f} | {level['errors']} |")
    lines.append("")
    return lines


def budget_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The runner's rows of the budget summary: 32 clients at least as fast as 8, p99 under 1 s."""
    levels = results.get("runner", results).get("levels", {})
    rows = []
    few, many = levels.get("8"), levels.get("32")
    # A level with an error misses both: its figures are not of a runner that works.
    if few is not None and many is not None:
        clean = not few["errors"] and not many["errors"]
        rows.append(("local runner: req/s at 32 clients ≥ at 8",
                     f"{many['rps']:.0f} (at 8: {few['rps']:.0f})", "≥ at 8 clients",
                     PASS if many["rps"] >= few["rps"] and clean else MISS))
    if many is not None:
        rows.append(("local runner: p99 at 32 clients < 1 s", f"{many['p99_ms']:.0f} ms",
                     f"< {P99_BUDGET_MS:g} ms",
                     PASS if many["p99_ms"] < P99_BUDGET_MS and not many["errors"] else MISS))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.runner_load", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--levels", default=",".join(map(str, LEVELS)),
                   help="concurrent clients of each level (default %(default)s)")
    p.add_argument("--seconds", type=float, default=SECONDS, help="measured seconds per level")
    p.add_argument("--warmup", type=float, default=WARMUP, help="unmeasured seconds before each level")
    p.add_argument("--json", action="store_true", help="print the JSON results too")
    args = p.parse_args(argv)
    levels = tuple(int(n) for n in args.levels.split(",") if n.strip())
    results = measure(levels, args.seconds, args.warmup,
                      log=lambda m: print(m, file=sys.stderr, flush=True))
    print("\n".join(runner_table(results)))
    for what, measured, budget, verdict in budget_rows(results):
        print(f"{what}: {measured} (budget {budget}): {verdict}")
    if args.json:
        print(json.dumps(results, indent=2))
    errors = sum(level["errors"] for level in results["levels"].values())
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
