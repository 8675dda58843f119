"""``python -m bench``: measure everything, print markdown tables, write JSON.

    python -m bench                       # the full run (about 9 minutes on 2 cores)
    python -m bench --quick               # fewer runs and iterations, purge up to 10,000
    python -m bench --only cold,cpu,peer,work,purge,runner --out path.json

The runner phase (``bench.runner_load``) starts the local runner (``devserver.py``, as
``make run`` does) and times it under 8 and 32 concurrent clients: wall clock, so it
runs last, alone, once every other phase (the purge child included) is done.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cost, peer, prices, report, runner_load
from bench.cases import CASES
from bench.moto_process import ROOT, MotoProcess, aws_environment

PHASES = ("cold", "cpu", "peer", "work", "purge", "runner")
DEFAULT_OUT = ROOT / "bench" / "results" / "latest.json"
ROTATIONS_PER_SESSION = 24 * 12       # a 24 h session refreshed at every 5-minute expiry


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    # 16: on a shared 2-core machine the median of 10 moved a ratio by ±0.05 between runs.
    p.add_argument("--runs", type=int, default=16, help="cold starts per variant (default 16)")
    p.add_argument("--iterations", type=int, default=100,
                   help="measured requests per endpoint (default 100)")
    p.add_argument("--costly-iterations", type=int, default=30,
                   help="measured requests of endpoints whose setup hashes a password (default 30)")
    p.add_argument("--purge-sizes", default="1000,10000,100000",
                   help="live sessions of the purge runs (default 1000,10000,100000)")
    p.add_argument("--only", default=",".join(PHASES), help=f"phases to run ({','.join(PHASES)})")
    p.add_argument("--quick", action="store_true",
                   help="3 cold runs, 30 iterations, a short peer run, purge over 1,000 and 10,000 only")
    p.add_argument("--baseline", metavar="REV",
                   help="also cold-start a git revision as packaged, in the same runs (before/after)")
    p.add_argument("--cold-source-all", action="store_true",
                   help="cold-start every first request without byte code too (default: /v1/me only)")
    p.add_argument("--bare-requests", type=int, default=20,
                   help="requests per endpoint recorded and replayed on a bare DynamoDB client "
                        "(default 20; at most --costly-iterations where setup hashes a password)")
    p.add_argument("--peer-iterations", type=int, default=2000,
                   help="measured requests per grant of the peer, node-oidc-provider (default 2000)")
    p.add_argument("--peer-warmup", type=int, default=3000,
                   help="unmeasured requests per grant that warm the peer first (default 3000)")
    p.add_argument("--runner-seconds", type=float, default=runner_load.SECONDS,
                   help="measured seconds per level of the runner phase (default %(default)g)")
    p.add_argument("--runner-warmup", type=float, default=runner_load.WARMUP,
                   help="unmeasured seconds before each level of the runner phase (default %(default)g)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results (default %(default)s)")
    args = p.parse_args(argv)
    if args.quick:
        args.runs, args.iterations, args.costly_iterations, args.bare_requests = 3, 30, 5, 10
        args.peer_iterations, args.peer_warmup = 300, 1000
        args.purge_sizes = "1000,10000"
        args.runner_seconds, args.runner_warmup = 4.0, 1.5
    args.phases = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = args.phases - set(PHASES)
    if unknown:
        p.error(f"unknown phases: {', '.join(sorted(unknown))}")
    return args


def service_phases(args: argparse.Namespace, results: dict[str, Any],
                   timing_done: Callable[[], None]) -> None:
    """Everything that runs the service against the moto server process.

    ``timing_done`` is called once nothing timed is left (before the DynamoDB-work
    phase, which counts and does not time): the purge child may run from then on.
    """
    with MotoProcess() as moto:
        log(f"moto server (pid {moto.pid}) at {moto.endpoint}")
        os.environ.update(aws_environment(moto.endpoint))
        import boto3

        from app import app
        from bench import coldstart, cpu, warm_floor, work
        from bench.cases import (
            SESSION_SCOPE,
            SESSION_SCOPE_NO_OPENID,
            SteppedClock,
            World,
            companions,
            load_demo_seed,
        )
        from bench.dynamo_meter import DynamoMeter, tables_from_schema
        from bench.lambda_http import LambdaDriver, Request
        from chalicelib import container as container_module
        from chalicelib.config import SCRYPT_LOG_N_FLOOR, get_settings
        from chalicelib.models import user_id_for
        from chalicelib.storage.schema import create_tables

        # What container() would build, with a clock the DynamoDB-work phase can move.
        c = container_module.use(container_module.Container(get_settings(), SteppedClock()))
        create_tables(c.dynamodb(), c.settings.table_prefix)
        driver = LambdaDriver(app)
        world = World(driver, c, load_demo_seed(c))
        world.login()            # creates the signing keys, as the first login of a stage does
        for alg in c.keyring.algorithms:
            # every key family (RS256 too), as the daily rotation job makes sure of on a
            # deployed stage: no instance re-reads an incomplete key set mid-measurement
            c.keyring.ensure(alg)

        phase = time.perf_counter()
        if "cold" in args.phases:
            log(f"cold start: {args.runs} runs of each variant")
            def first_refresh() -> dict[str, Any]:
                # A refresh token is single use: a new session for every cold start.
                return driver.event(world.form("/oauth/token", grant_type="refresh_token",
                                               client_id=world.cli,
                                               refresh_token=world.fresh_session()["refresh_token"]))

            def key_in_use(request: Request) -> Callable[[], dict[str, Any]]:
                # A role key's last_used_at is written at most every ten minutes: one use
                # here, just before each cold start, keeps it recent, so every child's
                # first request is the steady one (one read, no write) however long the run.
                def event() -> dict[str, Any]:
                    world.expect(Request("GET", "/v1/me", world.bearer(world.role_key())))
                    return driver.event(request)
                return event

            def first_me() -> dict[str, Any]:
                # The access token lives five minutes; the world logs in again after two.
                return driver.event(Request("GET", "/v1/me", world.bearer(world.access_token)))

            events = {"/v1/me": first_me,
                      "refresh": first_refresh,
                      "/v1/me with a role key": key_in_use(Request("GET", "/v1/me",
                                                              world.bearer(world.role_key()))),
                      "client_credentials with a role key": key_in_use(world.role_client_credentials()),
                      "discovery": driver.event(Request("GET", "/.well-known/openid-configuration"))}
            results["cold"] = coldstart.measure(aws_environment(moto.endpoint), events, args.runs, log,
                                                baseline=args.baseline,
                                                source=None if args.cold_source_all else ("/v1/me",))
            phase = _phase_done(results, "cold", phase)
        if "cpu" in args.phases:
            log(f"CPU per warm request: {args.iterations} requests per endpoint")
            user = c.users.get(user_id_for(world.username))
            assert user is not None, "the demo seed's user"
            # The password grant's share of the scrypt hash is measured at production
            # strength: the bench stage cannot lower the factor (Settings.from_env).
            assert user.password_hash.startswith(f"scrypt${SCRYPT_LOG_N_FLOOR}$"), \
                "the demo user's hash is not at the production work factor"
            scrypt = cpu.scrypt_verification(world.password, user.password_hash)
            # The bare calls: a default client of its own, and an unhooked one for pre-images.
            bare = cpu.Bare(boto3.client("dynamodb"), boto3.client("dynamodb"),
                            tables_from_schema(c.settings.table_prefix), args.bare_requests,
                            min(args.bare_requests, args.costly_iterations))
            results["cpu"] = cpu.measure(world, driver, c.dynamodb(), CASES, args.iterations,
                                         args.costly_iterations,
                                         {"password_grant": scrypt, **companions(world)}, log,
                                         bare=bare)
            # The least the peer's rows can cost on the same parts (issue 27), with
            # session items as Tessera stores them.
            results["warm_floor"] = warm_floor.measure(
                boto3.client("dynamodb"),
                {"refresh": world.stored_session(SESSION_SCOPE),
                 "refresh_no_openid": world.stored_session(SESSION_SCOPE_NO_OPENID)},
                args.iterations, log)
            results["botocore_floor"] = cpu.botocore_floor(c.dynamodb(), c.settings.table("throttle"),
                                                           args.iterations)
            phase = _phase_done(results, "cpu", phase)
        if "peer" in args.phases:
            # Timed too: before the purge child may start.
            log("node-oidc-provider side by side (CPU per warm grant)")
            try:
                results["peer"] = peer.measure(iterations=args.peer_iterations,
                                               warmup=args.peer_warmup, log=log)
            except peer.PeerUnavailable as exc:     # checked at the start; gone since
                _skip(args, results, "peer", str(exc))
            phase = _phase_done(results, "peer", phase)
        timing_done()
        if "work" in args.phases:
            log("DynamoDB work per request")
            meter = DynamoMeter(c.dynamodb(), tables=tables_from_schema(c.settings.table_prefix),
                                shadow=boto3.client("dynamodb"))
            results["work"] = work.measure(world, meter, CASES, log=log)
            results["long_session"] = work.long_session(world, meter, ROTATIONS_PER_SESSION)
            meter.close()
            _phase_done(results, "work", phase)


def _skip(args: argparse.Namespace, results: dict[str, Any], name: str, why: str) -> None:
    """Go on without a phase: say so now on stderr, and in the report (``results["skipped"]``)."""
    args.phases.discard(name)
    results.setdefault("skipped", {})[name] = why
    log(f"{name} phase skipped: {why}")


def skip_unavailable(args: argparse.Namespace, results: dict[str, Any],
                     check_peer: Callable[[], object]) -> None:
    """Before anything runs: a phase whose tools are missing is left out, not a traceback later."""
    if "peer" in args.phases:
        try:
            check_peer()
        except peer.PeerUnavailable as exc:
            _skip(args, results, "peer", str(exc))


@contextmanager
def audit_lines_to(path: Path) -> Iterator[None]:
    """The audit log's JSON lines (one per session the cases open) go to ``path`` meanwhile:
    still written as in Lambda, so their cost stays in the figures, but neither into the
    report on stdout nor between the progress lines on stderr."""
    from chalicelib import audit

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as lines:
        audit.send_to(lines)
        try:
            yield
        finally:
            audit.send_to("stdout")


def _phase_done(results: dict[str, Any], name: str, started: float) -> float:
    now = time.perf_counter()
    results.setdefault("phase_s", {})[name] = now - started
    log(f"{name} phase: {now - started:.0f} s")
    return now


class PurgePhase:
    """The purge-scaling child (``bench.purge_scaling``): it times nothing, so it runs
    alongside the DynamoDB-work phase, which times nothing either."""

    def __init__(self, sizes: str) -> None:
        self.sizes = sizes
        self.proc: subprocess.Popen[str] | None = None
        self.started = 0.0

    def start(self) -> None:
        if self.proc is not None:
            return
        log(f"purge scaling over {self.sizes} live sessions (moto in process, in the background)")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.purge_scaling", self.sizes],
                                     cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")})

    def result(self, results: dict[str, Any]) -> None:
        self.start()
        assert self.proc is not None
        out, err = self.proc.communicate(timeout=900)
        if self.proc.returncode != 0:
            sys.stderr.write(err)
            raise RuntimeError("purge scaling failed")
        results["purge"] = json.loads(out.strip().splitlines()[-1])
        _phase_done(results, "purge", self.started)


def audit_file(out: Path) -> Path:
    """Where a run's audit lines go: beside its JSON results (``latest.json``: ``latest.audit.jsonl``)."""
    return out.with_suffix(".audit.jsonl")


def model_costs(results: dict[str, Any]) -> None:
    memory = cost.function_memory_mb()
    results["memory_mb"], results["round_trip_ms"] = memory, cost.DYNAMODB_ROUND_TRIP_MS
    results["prices"] = prices.as_dict()
    results["cost"] = {}
    for name, c in results.get("cpu", {}).items():
        w = results.get("work", {}).get(name)
        if w is None:
            continue
        results["cost"][name] = cost.per_million(c["cpu_ms"]["median"], w["round_trips"], w["rru"],
                                                 w["wru"], memory)


def runner_phase(args: argparse.Namespace, results: dict[str, Any],
                 measure: Callable[..., dict[str, Any]]) -> None:
    """The local runner under concurrent clients: after every other phase, since it
    times wall clock and its own processes take both cores."""
    log(f"the local runner under {', '.join(map(str, runner_load.LEVELS))} concurrent clients, "
        f"{args.runner_seconds:g} s each")
    started = time.perf_counter()
    results["runner"] = measure(levels=runner_load.LEVELS, seconds=args.runner_seconds,
                                warmup=args.runner_warmup, log=log)
    _phase_done(results, "runner", started)


def main(argv: list[str] | None = None, *,
         check_peer: Callable[[], object] = peer.check_installed,
         services: Callable[[argparse.Namespace, dict[str, Any], Callable[[], None]], None]
         = service_phases,
         runner: Callable[..., dict[str, Any]] = runner_load.measure) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    results: dict[str, Any] = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                               "machine": report.machine(),
                               "settings": {k: v for k, v in vars(args).items() if k != "out"}}
    skip_unavailable(args, results, check_peer)
    results["settings"]["phases"] = sorted(args.phases)
    purge = PurgePhase(args.purge_sizes) if "purge" in args.phases else None
    audit_path = audit_file(args.out)
    with audit_lines_to(audit_path):
        if args.phases & {"cold", "cpu", "peer", "work"}:
            services(args, results, purge.start if purge else (lambda: None))
        if purge is not None:
            purge.result(results)
        if "runner" in args.phases:
            runner_phase(args, results, runner)
    log(f"audit lines written to {audit_path}")
    model_costs(results)
    results["elapsed_s"] = time.perf_counter() - started
    text = report.markdown(results, CASES)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(text)
    log(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
