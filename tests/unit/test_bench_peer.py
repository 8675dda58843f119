"""The benchmark's peer (bench.peer): node-oidc-provider really runs, and the table judges right."""

import json

import pytest

from bench import peer
from bench.cases import jws_alg
from bench.report import MISS, PASS


def test_the_peer_serves_every_kind_and_its_cpu_figures_are_positive():
    # Tiny counts: this checks the harness and the grants, not the figures (python -m bench.peer).
    # Each request's answer is checked by the client: an ES256 JWT access token on every grant,
    # an RS256 ID token on the openid refresh and none on the other, an active refresh token
    # at introspection (PeerClient raises otherwise, and measure with it).
    result = peer.measure(iterations=20, warmup=50, log=lambda _: None)

    pinned = json.loads((peer.PEER_DIR / "package.json").read_text())["dependencies"]["oidc-provider"]
    assert result["oidc_provider"] == pinned
    assert result["node"].startswith("v")
    assert set(result["kinds"]) == set(peer.KINDS) == {
        "client_credentials", "refresh_token", "refresh_token_openid", "introspection", "noop"}
    for kind, figures in result["kinds"].items():
        assert figures["n"] == 20
        assert figures["cpu_ms"] > 0, kind
    # The grants that sign a JWT cost clearly more than the no-op even at 20 requests;
    # introspection's small difference can drown in that count's noise (it measured
    # -0.14 ms once), so only its figure's presence is checked here.
    for kind in ("client_credentials", "refresh_token", "refresh_token_openid"):
        assert result["kinds"][kind]["minus_noop_ms"] > 0, kind
    assert isinstance(result["kinds"]["introspection"]["minus_noop_ms"], float)


@pytest.fixture(scope="module")
def client():
    with peer.PeerProcess() as process:
        c = peer.PeerClient(process.info)
        yield c
        c.close()


def _token(client, openid: bool) -> dict:
    client.mark(1, openid)
    client.rotations = 0
    client.current_refresh = next(client.sessions)["refresh_token"]
    return client.ok(client.info["token_path"], f"grant_type=refresh_token&refresh_token={client.current_refresh}")


def test_an_openid_session_of_the_peer_refreshes_with_an_rs256_id_token_and_an_es256_access_token(client):
    import jwt

    token = _token(client, openid=True)

    assert jws_alg(token["access_token"]) == "ES256"
    assert jws_alg(token["id_token"]) == "RS256"
    claims = jwt.decode(token["id_token"], options={"verify_signature": False})
    assert claims["sub"] == client.info["account"] and claims["aud"] == client.info["client_id"]
    # signed in as Tessera's sessions are: auth_time, acr, amr and sid carried by the session
    assert {"auth_time", "acr", "amr", "sid"} <= set(claims)


def test_a_session_without_openid_refreshes_without_an_id_token(client):
    token = _token(client, openid=False)

    assert jws_alg(token["access_token"]) == "ES256"
    assert "id_token" not in token


def test_the_client_rejects_a_refresh_answer_of_the_wrong_sort(client):
    # the checks the measured kinds make can fail: a session of the other sort is refused
    client.mark(1, openid=False)
    with pytest.raises(AssertionError, match="no RS256 ID token"):
        client.refresh_token_openid()
    client.mark(1, openid=True)
    with pytest.raises(AssertionError, match="ID token for a session without openid"):
        client.refresh_token()


def test_the_peer_introspects_an_opaque_refresh_token_and_not_a_used_one(client):
    client.mark(1)
    client.introspection()                       # active, the session's account
    used = client.introspected
    client.rotations = 0
    client.current_refresh = used
    client.refresh_token()                       # rotated: the old one is consumed
    with pytest.raises(AssertionError, match="not active"):
        client.introspection()


def test_jws_alg_reads_the_header_and_nothing_else():
    import jwt

    assert jws_alg(jwt.encode({"a": 1}, "k" * 32, algorithm="HS256")) == "HS256"
    assert jws_alg("opaque_token") is None
    assert jws_alg("a.b.c") is None
    assert jws_alg(None) is None


def test_a_missing_install_says_to_run_make_peer_deps(tmp_path):
    with pytest.raises(peer.PeerUnavailable, match="make peer-deps"), peer.PeerProcess(tmp_path):
        pass


def _results(ours: dict[str, float], floor: dict[str, float] | None = None) -> dict:
    kinds = {k: {"n": 100, "cpu_ms": v + 0.1, "minus_noop_ms": v, "batch_ms": {}}
             for k, v in {"client_credentials": 0.3, "refresh_token": 0.5, "refresh_token_openid": 1.0,
                          "introspection": 0.1}.items()}
    kinds["noop"] = {"n": 100, "cpu_ms": 0.1, "minus_noop_ms": 0.0, "batch_ms": {}}
    return {"peer": {"oidc_provider": "9.13.3", "node": "v20.0.0", "iterations": 100, "warmup": 1000,
                     "kinds": kinds},
            "cpu": {case: {"own_cpu_ms": {"median": ms}} for case, ms in ours.items()},
            "warm_floor": {case: {"own_cpu_ms": {"median": ms}} for case, ms in (floor or {}).items()}}


def _row(lines: list[str], grant: str) -> list[str]:
    [line] = [line for line in lines if line.startswith(f"| {grant}")]
    return [cell.strip() for cell in line.strip("|").split("|")]


OURS = {"client_credentials": 0.3, "refresh": 0.7, "refresh_no_openid": 0.36, "introspect_refresh": 0.11}


def test_the_peer_table_holds_each_row_to_its_target_and_says_what_each_side_signs():
    lines = peer.peer_table(_results(OURS))

    cc = _row(lines, "client_credentials")
    refresh = _row(lines, "refresh_token, openid session")
    plain = _row(lines, "refresh_token, no openid")
    introspection = _row(lines, "introspection of a refresh token")
    assert cc[1] == cc[2] == "an ES256 JWT access token"
    assert refresh[1] == refresh[2] == "an ES256 JWT access token + an RS256 ID token"
    assert introspection[1] == introspection[2] == "nothing"
    assert cc[3:7] == ["0.300", "0.300", "1.00", f"≤ the peer's: {PASS}"]          # equal is ok
    assert refresh[3:7] == ["0.700", "1.000", "0.70", f"≤ 0.7 × the peer's: {PASS}"]
    assert plain[3:7] == ["0.360", "0.500", "0.72", f"≤ 0.7 × the peer's: {MISS}"]  # 0.72 > 0.7
    assert introspection[3:7] == ["0.110", "0.100", "1.10", f"≤ the peer's: {MISS}"]
    assert cc[7:9] == ["n/a", ""]                         # no floor measured in this run
    assert cc[9] == refresh[9] == plain[9] == "8.3"       # Keycloak: 120 grants/s per vCPU
    assert introspection[9] == ""


def test_the_peer_table_and_the_budget_summary_show_the_stacks_floor_beside_the_peer():
    results = _results(OURS, floor={"refresh_no_openid": 0.25, "introspect_refresh": 0.08})
    lines = peer.peer_table(results)

    assert _row(lines, "refresh_token, no openid")[7:9] == ["0.250", "0.50"]
    assert _row(lines, "introspection of a refresh token")[7:9] == ["0.080", "0.80"]
    assert _row(lines, "refresh_token, openid session")[7:9] == ["n/a", ""]
    assert any("`bench.warm_floor`" in line for line in lines)
    rows = {what.split(": ", 1)[1]: figure for what, figure, _, _ in peer.budget_rows(results)}
    assert rows["refresh_token, no openid (rotation)"] == \
        "0.360 ms (theirs 0.500: 0.72 ×; the stack's floor 0.250: 0.50 ×)"
    assert rows["refresh_token, openid session (rotation)"] == "0.700 ms (theirs 1.000: 0.70 ×)"


def test_the_budget_summary_holds_the_four_rows_against_the_peer():
    rows = peer.budget_rows(_results(OURS))

    assert [(what.split(": ", 1)[1], budget, verdict) for what, _, budget, verdict in rows] == [
        ("client_credentials", "≤ the peer's", PASS),
        ("refresh_token, openid session (rotation)", "≤ 0.7 × the peer's", PASS),
        ("refresh_token, no openid (rotation)", "≤ 0.7 × the peer's", MISS),
        ("introspection of a refresh token (opaque, one lookup)", "≤ the peer's", MISS)]
    assert rows[1][1] == "0.700 ms (theirs 1.000: 0.70 ×)"


def test_the_peer_table_shows_no_verdict_without_our_cpu_phase():
    lines = peer.peer_table(_results({}))

    assert _row(lines, "refresh_token, openid session")[3:7] == ["n/a", "1.000", "", "≤ 0.7 × the peer's"]
    assert peer.budget_rows(_results({})) == []
