"""A peer measured side by side: node-oidc-provider's CPU per grant, on this machine, in this run.

    python -m bench.peer                          # warm, measure, print the JSON
    python -m bench.peer --results bench/results/latest.json   # and the table against a run's CPU phase

The peer is ``bench/peer/server.mjs``: node-oidc-provider (the version pinned in
``bench/peer/package.json``, installed by ``make peer-deps``) with its default
in-memory adapter, an ES256 and an RS256 key (as Tessera's key set), one
confidential client (``client_secret_basic``) allowed ``client_credentials`` and
``refresh_token``, ES256 JWT access tokens (through a resource indicator), RS256
ID tokens (``id_token_signed_response_alg``, as Tessera's default), refresh-token
rotation on every use, introspection.

The kinds, each what Tessera's case of the same row does (``COMPARED``):
``client_credentials``; ``refresh_token`` of a session without ``openid`` (no ID
token); ``refresh_token_openid`` of a session with ``openid`` (an RS256 ID token
besides the ES256 access token, OIDC Core §12.2); ``introspection`` of an opaque
refresh token (Tessera's refresh tokens are opaque too: one read each side);
``noop``.

Every kind gets ``warmup`` unmeasured requests first (V8 needs thousands to
optimise the hot paths), then ``iterations`` measured ones: sequential requests on
one keep-alive connection (``http.client``), in batches of ``BATCH``, the kinds
interleaved batch by batch, warm-up and measurement alike, so that drift and load
of the machine hit them alike. The CPU is the server's own
(``process.cpuUsage()``: user + system, every thread of the Node process, garbage
collection included), read by the server itself at the edges of each batch, after
a young-generation collection: each batch pays for its own short-lived garbage,
none of the kind before it (``/bench/mark``; without it, a no-op batch was charged
for the garbage of the batch before it); this client's CPU is not in it. A figure
is a mean: the batches' CPU summed over their requests. ``noop`` is a POST of a form body to a
handler outside the Provider that reads the body and answers ``{}``: Node's own
HTTP cost, which ``minus_noop_ms`` takes off.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

from bench.cases import jws_alg
from bench.moto_process import end_child
from bench.report import MISS, PASS

PEER_DIR = Path(__file__).resolve().parent / "peer"
KINDS = ("client_credentials", "refresh_token", "refresh_token_openid", "introspection", "noop")
# The kinds that rotate refresh tokens of sessions made at each batch's mark, and their sort.
REFRESH_KINDS = {"refresh_token": False, "refresh_token_openid": True}
# Requests between two CPU readings. A batch of the in-memory adapter's size (1,000
# entries, LRU) or more would evict the sessions a refresh batch made at its start.
BATCH = 100
# Each session is refreshed this many times, then the next one (bench.cases.YOUNG_ROTATIONS:
# Tessera's refresh case measures young sessions too). oidc-provider's in-memory adapter
# walks a grant's every token at each save, so one endless chain would grow in cost.
ROTATIONS = 10
DEFAULT_ITERATIONS = 2000
DEFAULT_WARMUP = 3000
STARTUP_TIMEOUT_S = 20

# Keycloak's published sizing: "allocate 1 vCPU [...] for each 120 client credential grants
# per second" and the same for 120 refresh token requests per second
# (https://www.keycloak.org/high-availability/single-cluster/concepts-memory-and-cpu-sizing).
# Its client-credentials figure includes a TLS handshake per request (each client sends
# one), and both include its database: a reference line, not a like-for-like measure.
KEYCLOAK_GRANTS_PER_S_PER_VCPU = 120
KEYCLOAK_MS_PER_GRANT = 1000 / KEYCLOAK_GRANTS_PER_S_PER_VCPU

# Per row: Tessera's case in the CPU phase (bench.cases), the peer's kind, the row's label, what
# each side signs (ours, theirs), and the target: ours ≤ this × theirs (issue 27).
COMPARED = (
    ("client_credentials", "client_credentials", "client_credentials",
     "an ES256 JWT access token", "an ES256 JWT access token", 1.0),
    ("refresh", "refresh_token_openid", "refresh_token, openid session (rotation)",
     "an ES256 JWT access token + an RS256 ID token", "an ES256 JWT access token + an RS256 ID token",
     0.7),
    ("refresh_no_openid", "refresh_token", "refresh_token, no openid (rotation)",
     "an ES256 JWT access token", "an ES256 JWT access token", 0.7),
    ("introspect_refresh", "introspection", "introspection of a refresh token (opaque, one lookup)",
     "nothing", "nothing", 1.0),
)


def _verdict(ours: float, theirs: float, factor: float) -> str:
    """A row's verdict: ours ≤ ``factor`` × theirs."""
    return PASS if ours <= factor * theirs else MISS


def _target(factor: float) -> str:
    return "≤ the peer's" if factor == 1.0 else f"≤ {factor:g} × the peer's"


def budget_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The peer's rows of the budget summary: per row of ``COMPARED``, ours against theirs."""
    peer, cpu = results["peer"], results.get("cpu", {})
    rows = []
    for case, kind, label, _, _, factor in COMPARED:
        ours = cpu.get(case, {}).get("own_cpu_ms", {}).get("median")
        theirs = peer["kinds"].get(kind, {}).get("minus_noop_ms")
        if ours is None or theirs is None:
            continue
        floor = _floor(results, case)
        at_floor = f"; the stack's floor {floor:.3f}: {floor / theirs:.2f} ×" if floor is not None else ""
        rows.append((f"warm CPU against node-oidc-provider: {label}",
                     f"{ours:.3f} ms (theirs {theirs:.3f}: {ours / theirs:.2f} ×{at_floor})",
                     _target(factor), _verdict(ours, theirs, factor)))
    return rows


def _floor(results: dict[str, Any], case: str) -> float | None:
    """The stack's floor for a row (``bench.warm_floor``), if the run measured it."""
    figure = results.get("warm_floor", {}).get(case, {}).get("own_cpu_ms", {}).get("median")
    return float(figure) if figure is not None else None


class PeerUnavailable(RuntimeError):
    """Node or the peer's npm packages are missing."""


def check_installed(peer_dir: Path = PEER_DIR) -> str:
    """Node's path, or ``PeerUnavailable`` saying what to run."""
    node = shutil.which("node")
    if node is None:
        raise PeerUnavailable("node is not on PATH: run `make peer-deps` (it installs Node.js and "
                              "the peer's npm packages)")
    if not (peer_dir / "node_modules" / "oidc-provider" / "package.json").is_file():
        raise PeerUnavailable(f"{peer_dir / 'node_modules'} is missing: run `make peer-deps` "
                              "(npm ci in bench/peer)")
    return node


class PeerProcess:
    """``node server.mjs`` in ``bench/peer``, stopped by closing its stdin."""

    def __init__(self, peer_dir: Path = PEER_DIR) -> None:
        self.peer_dir = peer_dir
        self.proc: subprocess.Popen[str] | None = None
        self.stderr: IO[str] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> PeerProcess:
        node = check_installed(self.peer_dir)
        self.stderr = tempfile.TemporaryFile("w+", encoding="utf-8")
        self.proc = subprocess.Popen([node, "--expose-gc", "server.mjs"], cwd=self.peer_dir,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()      # the server's one JSON line, or '' if it died
        if not line:
            self.proc.wait(timeout=STARTUP_TIMEOUT_S)
            raise RuntimeError(f"the peer did not start (exit {self.proc.returncode}):\n{self.errors()}")
        self.info = json.loads(line)
        return self

    def errors(self) -> str:
        if self.stderr is None:
            return ""
        self.stderr.seek(0)
        return self.stderr.read()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            end_child(self.proc, timeout=10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
        if self.stderr is not None:
            self.stderr.close()


class PeerClient:
    """Sequential requests on one keep-alive connection; each kind's request and its check."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.conn = http.client.HTTPConnection("127.0.0.1", info["port"], timeout=30)
        basic = base64.b64encode(f"{info['client_id']}:{info['client_secret']}".encode()).decode()
        self.headers = {"Authorization": f"Basic {basic}",
                        "Content-Type": "application/x-www-form-urlencoded"}
        self.cc_body = urlencode({"grant_type": "client_credentials", "resource": info["resource"],
                                  "scope": info["scope"]})
        self.sessions: Iterator[dict[str, str]] = iter(())
        self.current_refresh = ""
        self.rotations = ROTATIONS
        self.introspected = ""

    def close(self) -> None:
        self.conn.close()

    def post(self, path: str, body: str) -> tuple[int, bytes]:
        self.conn.request("POST", path, body, self.headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def ok(self, path: str, body: str) -> dict[str, Any]:
        status, data = self.post(path, body)
        parsed: dict[str, Any] = json.loads(data) if data else {}
        if status != 200:
            raise AssertionError(f"peer {path}: {status} {parsed}")
        return parsed

    def mark(self, sessions: int, openid: bool = False) -> tuple[int, int]:
        """The server's CPU (µs) before and after it makes ``sessions`` new sessions
        (of the openid sort or not)."""
        out = self.ok(f"/bench/mark?sessions={sessions}&openid={int(openid)}", "")
        made: list[dict[str, str]] = out["sessions"]
        if made:
            self.sessions = iter(made)
            self.introspected = made[0]["refresh_token"]
            self.rotations = ROTATIONS
        return out["cpu_before_us"], out["cpu_after_us"]

    def client_credentials(self) -> None:
        token = self.ok(self.info["token_path"], self.cc_body)
        if not token.get("access_token", "").startswith("eyJ"):
            raise AssertionError(f"client_credentials: no JWT access token: {token}")

    def _refresh(self) -> dict[str, Any]:
        if self.rotations >= ROTATIONS:
            self.current_refresh = next(self.sessions)["refresh_token"]
            self.rotations = 0
        token = self.ok(self.info["token_path"], urlencode({"grant_type": "refresh_token",
                                                            "refresh_token": self.current_refresh}))
        rotated = token.get("refresh_token")
        if not rotated or rotated == self.current_refresh or jws_alg(token.get("access_token")) != "ES256":
            raise AssertionError(f"refresh_token: not rotated, or no ES256 JWT access token: {token}")
        self.current_refresh = rotated
        self.rotations += 1
        return token

    def refresh_token(self) -> None:
        token = self._refresh()
        if "id_token" in token:
            raise AssertionError(f"refresh_token: an ID token for a session without openid: {token}")

    def refresh_token_openid(self) -> None:
        token = self._refresh()
        if jws_alg(token.get("id_token")) != "RS256":
            raise AssertionError(f"refresh_token_openid: no RS256 ID token: {token}")

    def introspection(self) -> None:
        """An opaque refresh token of a session, introspected (as Tessera's introspect_refresh)."""
        answer = self.ok(self.info["introspection_path"],
                         urlencode({"token": self.introspected, "token_type_hint": "refresh_token"}))
        if answer.get("active") is not True or answer.get("sub") != self.info["account"]:
            raise AssertionError(f"introspection: the refresh token is not active: {answer}")

    def noop(self) -> None:
        self.ok("/bench/noop", self.cc_body)

    def batch(self, kind: str, n: int) -> int:
        """``n`` requests of a kind; the server's CPU over them, in µs."""
        send: Callable[[], None] = getattr(self, kind)
        sessions = -(-n // ROTATIONS) if kind in REFRESH_KINDS else 1 if kind == "introspection" else 0
        _, start = self.mark(sessions, REFRESH_KINDS.get(kind, False))
        for _ in range(n):
            send()
        end, _ = self.mark(0)
        return end - start


def _batches(total: int) -> list[int]:
    return [BATCH] * (total // BATCH) + ([total % BATCH] if total % BATCH else [])


def _turned(kinds: tuple[str, ...], i: int) -> tuple[str, ...]:
    """The kinds in their order turned by ``i``: each round of batches starts with another kind."""
    return kinds[i % len(kinds):] + kinds[:i % len(kinds)]


def measure(iterations: int = DEFAULT_ITERATIONS, warmup: int = DEFAULT_WARMUP,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    """Warm every kind, then measure ``iterations`` requests of each; ms of CPU per request."""
    started = time.perf_counter()
    with PeerProcess() as peer:
        client = PeerClient(peer.info)
        try:
            log(f"peer: node-oidc-provider {peer.info['oidc_provider']} on Node {peer.info['node']}, "
                f"{warmup} warm-up and {iterations} measured requests per kind")
            for i, n in enumerate(_batches(warmup)):
                for kind in _turned(KINDS, i):
                    client.batch(kind, n)
            per_batch: dict[str, list[tuple[int, int]]] = {kind: [] for kind in KINDS}
            for i, n in enumerate(_batches(iterations)):
                for kind in _turned(KINDS, i):
                    per_batch[kind].append((n, client.batch(kind, n)))
        except Exception as exc:
            raise RuntimeError(f"{exc}\npeer's stderr:\n{peer.errors()}") from exc
        finally:
            client.close()
        info = peer.info
    kinds: dict[str, Any] = {}
    for kind, batches in per_batch.items():
        n = sum(b[0] for b in batches)
        means = [us / 1000 / count for count, us in batches]
        kinds[kind] = {"n": n, "cpu_ms": sum(b[1] for b in batches) / 1000 / n,
                       "batch_ms": {"min": min(means), "median": statistics.median(means), "max": max(means)}}
    for figures in kinds.values():
        figures["minus_noop_ms"] = figures["cpu_ms"] - kinds["noop"]["cpu_ms"]
    elapsed = time.perf_counter() - started
    log("  " + ", ".join(f"{k}: {v['minus_noop_ms']:.3f} ms" for k, v in kinds.items() if k != "noop")
        + f" (minus no-op {kinds['noop']['cpu_ms']:.3f} ms; {elapsed:.0f} s)")
    return {"peer": "node-oidc-provider", "oidc_provider": info["oidc_provider"], "node": info["node"],
            "iterations": iterations, "warmup": warmup, "batch": BATCH, "rotations_per_session": ROTATIONS,
            "kinds": kinds, "elapsed_s": elapsed}


def peer_table(results: dict[str, Any]) -> list[str]:
    """Markdown: per row, what each side signs, Tessera's own CPU against the peer's, and
    Keycloak's sizing."""
    peer, cpu = results["peer"], results.get("cpu", {})
    kinds = peer["kinds"]
    lines = [f"### Against a peer: node-oidc-provider {peer['oidc_provider']} (Node {peer['node']}), "
             "CPU per warm request in ms", "",
             "| grant | signs: Tessera | signs: node-oidc-provider | Tessera, own (median) "
             "| node-oidc-provider, minus no-op (mean) | ours ÷ theirs | target "
             "| the stack's floor (median) | floor ÷ theirs | Keycloak sizing |",
             "|---|---|---|---:|---:|---:|---|---:|---:|---:|"]
    for case, kind, label, ours_sign, theirs_sign, factor in COMPARED:
        figures = kinds.get(kind)
        if figures is None:         # a results file of an older peer
            continue
        theirs = figures["minus_noop_ms"]
        ours = cpu.get(case, {}).get("own_cpu_ms", {}).get("median")
        mine, ratio, verdict = "n/a", "", ""
        if ours is not None:
            mine, ratio = f"{ours:.3f}", f"{ours / theirs:.2f}" if theirs > 0 else ""
            verdict = f": {_verdict(ours, theirs, factor)}"
        floor = _floor(results, case)
        at_floor = (f"{floor:.3f} | {floor / theirs:.2f}" if floor is not None and theirs > 0
                    else "n/a | ")
        keycloak = f"{KEYCLOAK_MS_PER_GRANT:.1f}" if kind != "introspection" else ""
        lines.append(f"| {label} | {ours_sign} | {theirs_sign} | {mine} | {theirs:.3f} | {ratio} "
                     f"| {_target(factor)}{verdict} | {at_floor} | {keycloak} |")
    lines += ["", f"Tessera: the CPU phase's `own_cpu_ms` (the API process, the DynamoDB client's "
              f"part excluded), median per request. node-oidc-provider: its in-memory adapter, the "
              f"server process's whole CPU (every thread, garbage collection included) over "
              f"{peer['iterations']} sequential keep-alive requests per row after {peer['warmup']} "
              f"warm-up ones, the rows interleaved batch by batch, as a mean, less a no-op POST's "
              f"({kinds['noop']['cpu_ms']:.3f} ms: Node's own HTTP). Both on this machine, in this run. "
              "Both sides sign access tokens with ES256 and ID tokens with RS256 (2048-bit keys); a "
              "refresh rotates the refresh token on both; a refresh of a session without `openid` "
              "answers no ID token on either (OIDC Core §12.2). Introspection: an opaque refresh "
              "token each side (the peer refuses to introspect a JWT), the peer told "
              "`token_type_hint=refresh_token`. The stack's floor (`bench.warm_floor`): a Chalice app "
              "on the same boto3, PyJWT and moto, measured as Tessera is, doing only what each "
              "answer cannot do without (one UpdateItem or GetItem of a session item as Tessera "
              "stores it, the same signatures, the JSON) and none of the rest SPEC asks for "
              "(client authentication, checksums, the grace window's AES-GCM wrap, reuse "
              "detection, deadlines, scope, origin and error handling): the least any service "
              "of these parts pays on this machine. Keycloak: its published sizing, "
              f"{KEYCLOAK_GRANTS_PER_S_PER_VCPU} grants per second per vCPU (TLS handshakes and its "
              "database included), as a reference line.", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.peer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS,
                   help="measured requests per kind (default %(default)s)")
    p.add_argument("--warmup", type=int, default=DEFAULT_WARMUP,
                   help="unmeasured requests per kind first (default %(default)s)")
    p.add_argument("--results", type=Path,
                   help="a `python -m bench` results file: also print the table against its CPU phase")
    args = p.parse_args(argv)
    try:
        peer = measure(args.iterations, args.warmup, lambda m: print(m, file=sys.stderr, flush=True))
    except PeerUnavailable as exc:
        print(f"python -m bench.peer: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(peer, indent=2))
    if args.results:
        results = json.loads(args.results.read_text(encoding="utf-8"))
        print("\n".join(peer_table({**results, "peer": peer})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
