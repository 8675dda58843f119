"""The benchmark's peer (bench.peer): node-oidc-provider really runs, and the table judges right."""

import json

import pytest

from bench import peer
from bench.report import MISS, PASS


def test_the_peer_serves_every_grant_and_its_cpu_figures_are_positive():
    # Tiny counts: this checks the harness and the grants, not the figures (python -m bench.peer).
    result = peer.measure(iterations=20, warmup=50, log=lambda _: None)

    pinned = json.loads((peer.PEER_DIR / "package.json").read_text())["dependencies"]["oidc-provider"]
    assert result["oidc_provider"] == pinned
    assert result["node"].startswith("v")
    assert set(result["kinds"]) == set(peer.KINDS)
    for kind, figures in result["kinds"].items():
        assert figures["n"] == 20
        assert figures["cpu_ms"] > 0, kind
    # The grants that sign a JWT cost clearly more than the no-op even at 20 requests;
    # introspection's small difference can drown in that count's noise (it measured
    # -0.14 ms once), so only its figure's presence is checked here.
    for kind in ("client_credentials", "refresh_token"):
        assert result["kinds"][kind]["minus_noop_ms"] > 0, kind
    assert isinstance(result["kinds"]["introspection"]["minus_noop_ms"], float)


def test_a_missing_install_says_to_run_make_peer_deps(tmp_path):
    with pytest.raises(peer.PeerUnavailable, match="make peer-deps"), peer.PeerProcess(tmp_path):
        pass


def _results(ours: dict[str, float]) -> dict:
    kinds = {k: {"n": 100, "cpu_ms": v + 0.1, "minus_noop_ms": v, "batch_ms": {}}
             for k, v in {"client_credentials": 0.3, "refresh_token": 0.5, "introspection": 0.07}.items()}
    kinds["noop"] = {"n": 100, "cpu_ms": 0.1, "minus_noop_ms": 0.0, "batch_ms": {}}
    return {"peer": {"oidc_provider": "9.13.3", "node": "v20.0.0", "iterations": 100, "warmup": 1000,
                     "kinds": kinds},
            "cpu": {case: {"own_cpu_ms": {"median": ms}} for case, ms in ours.items()}}


def _row(lines: list[str], grant: str) -> list[str]:
    [line] = [line for line in lines if line.startswith(f"| {grant} ")]
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_the_peer_table_says_ok_when_ours_is_at_or_below_theirs_and_miss_otherwise():
    lines = peer.peer_table(_results({"client_credentials": 0.3, "refresh": 0.6, "introspect_jwt": 0.05}))

    cc, refresh, introspection = (_row(lines, g) for g in ("client_credentials", "refresh_token", "introspection"))
    assert cc[1:4] == ["0.300", "0.300", PASS]            # equal is ok
    assert refresh[1:4] == ["0.600", "0.500", MISS]
    # not like for like (the peer refuses JWTs): shown, no target
    assert introspection[1:3] == ["0.050", "0.070"] and PASS not in introspection[3]
    assert cc[4] == refresh[4] == "8.3"                   # Keycloak: 120 grants/s per vCPU
    assert introspection[4] == ""


def test_the_budget_summary_holds_the_two_grants_against_the_peer():
    rows = peer.budget_rows(_results({"client_credentials": 0.3, "refresh": 0.6, "introspect_jwt": 0.05}))
    assert [(what.split(": ", 1)[1].split(" ")[0], verdict) for what, _, _, verdict in rows] == [
        ("client_credentials", PASS), ("refresh_token", MISS)]


def test_the_peer_table_shows_no_verdict_without_our_cpu_phase():
    lines = peer.peer_table(_results({}))

    assert _row(lines, "refresh_token")[1:4] == ["n/a", "0.500", ""]
