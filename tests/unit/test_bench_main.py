"""The benchmark's own run (python -m bench): a phase whose tools are missing is skipped and
said so, and the audit log's lines stay out of its report."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench import __main__ as bench_main
from bench import peer
from chalicelib import audit


def _no_peer() -> None:
    raise peer.PeerUnavailable("node is not on PATH: run `make peer-deps`")


def test_without_the_peers_packages_the_run_goes_on_and_its_report_says_the_peer_was_skipped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    ran: list[set[str]] = []

    def services(args: argparse.Namespace, results: dict[str, Any], timing_done: Callable[[], None]) -> None:
        ran.append(set(args.phases))

    out = tmp_path / "run.json"
    code = bench_main.main(["--only", "cpu,peer", "--out", str(out)], check_peer=_no_peer,
                           services=services)

    assert code == 0
    assert ran == [{"cpu"}]                       # the other phases ran, without the peer
    captured = capsys.readouterr()
    assert "peer phase skipped" in captured.err and "make peer-deps" in captured.err
    assert "Skipped: the peer phase." in captured.out and "make peer-deps" in captured.out
    results = json.loads(out.read_text())
    assert results["skipped"] == {"peer": "node is not on PATH: run `make peer-deps`"}
    assert results["settings"]["phases"] == ["cpu"]


def test_a_peer_that_goes_missing_during_the_run_is_skipped_too():
    args = argparse.Namespace(phases={"peer"})
    results: dict[str, Any] = {}
    bench_main.skip_unavailable(args, results, check_peer=lambda: "/usr/bin/node")
    assert args.phases == {"peer"} and "skipped" not in results

    bench_main.skip_unavailable(args, results, check_peer=_no_peer)
    assert args.phases == set() and "make peer-deps" in results["skipped"]["peer"]


def test_audit_lines_of_a_benchmark_run_go_to_their_file_not_to_stdout_or_stderr(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    def services(args: argparse.Namespace, results: dict[str, Any], timing_done: Callable[[], None]) -> None:
        audit.event("session_created", user_id="u1")     # as the cases' sign-ins do

    out = tmp_path / "run.json"
    try:
        bench_main.main(["--only", "cpu", "--out", str(out)], check_peer=_no_peer, services=services)
    finally:
        audit.send_to("stdout")

    captured = capsys.readouterr()
    assert "session_created" not in captured.out
    assert "session_created" not in captured.err
    [line] = bench_main.audit_file(out).read_text().splitlines()
    assert json.loads(line)["event"] == "session_created"
    # afterwards, audit lines are the process's stdout again, as everywhere else
    audit.event("after_the_run")
    assert "after_the_run" in capsys.readouterr().out


def _runner_results(rps: dict[str, float]) -> dict[str, Any]:
    """What bench.runner_load.measure returns, for the levels in ``rps``."""
    levels = {n: {"clients": int(n), "rps": r, "p50_ms": 20.0, "p90_ms": 40.0, "p99_ms": 80.0,
                  "max_ms": 120.0, "runner_cpu_ms_per_request": 3.0,
                  "children_cpu_ms_per_request": 1.5, "client_cpu_ms_per_request": 0.5, "errors": 0}
              for n, r in rps.items()}
    return {"levels": levels, "mix": ["GET /v1/me"], "seconds": 4.0, "warmup": 1.0, "slices": 4,
            "cores": 2}


def test_the_runner_phase_runs_after_every_other_phase_and_its_figures_are_in_the_results(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    order: list[str] = []

    def services(args: argparse.Namespace, results: dict[str, Any], timing_done: Callable[[], None]) -> None:
        order.append("services")

    def runner(**kwargs: Any) -> dict[str, Any]:
        order.append("runner")
        assert kwargs["levels"] == (8, 32) and kwargs["seconds"] == 4.0
        return _runner_results({"8": 100.0, "32": 120.0})

    out = tmp_path / "run.json"
    assert bench_main.main(["--only", "cpu,runner", "--quick", "--out", str(out)], check_peer=_no_peer,
                           services=services, runner=runner) == 0
    assert order == ["services", "runner"]
    results = json.loads(out.read_text())
    assert results["runner"]["levels"]["32"]["rps"] == 120.0
    assert "runner" in results["phase_s"]
    # the report's budget table holds the runner's two rows, and its own table follows
    report = capsys.readouterr().out
    assert "| local runner: req/s at 32 clients ≥ at 8 | 120 (at 8: 100) |" in report
    assert "| local runner: p99 at 32 clients < 1 s | 80 ms |" in report
    assert "### The local runner under concurrent clients" in report


def test_the_runner_phase_alone_starts_no_service_phase(tmp_path: Path):
    ran: list[str] = []

    def runner(**kwargs: Any) -> dict[str, Any]:
        ran.append(f"runner {kwargs['seconds']:g}")
        return _runner_results({})

    bench_main.main(["--only", "runner", "--runner-seconds", "2", "--out", str(tmp_path / "r.json")],
                    check_peer=_no_peer, services=lambda *a: ran.append("services"), runner=runner)
    assert ran == ["runner 2"]
