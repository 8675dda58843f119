"""The benchmark's own arithmetic: item sizes and request units, events, import times, cost;
the cold-start variants, the SnapStart child, and how budgets are rendered."""

import base64
from pathlib import Path
from typing import Any

from bench import cost, report
from bench.cases import CASES, case
from bench.coldstart import (
    Variant,
    child_environment,
    function_tree,
    parse_importtime,
    run_child,
    variants_of,
)
from bench.dynamo_meter import (
    Index,
    TableInfo,
    index_write_units,
    item_size,
    read_units,
    tables_from_schema,
    write_units,
)
from bench.lambda_http import Request, api_gateway_event
from bench.moto_process import aws_environment


def test_item_size_counts_names_and_values_by_dynamodb_rules():
    assert item_size({"id": {"S": "abc"}}) == 2 + 3
    assert item_size({"n": {"N": "123"}}) == 1 + 2 + 1          # 1 byte per 2 digits, plus 1
    assert item_size({"ok": {"BOOL": True}}) == 2 + 1
    assert item_size({"s": {"SS": ["ab", "cde"]}}) == 1 + 5
    assert item_size({"m": {"M": {"k": {"S": "v"}}}}) == 1 + 3 + (1 + 1 + 1)
    assert item_size(None) == 0


def test_reads_round_up_to_4_kb_and_eventual_reads_cost_half():
    assert read_units(0, consistent=True) == 1
    assert read_units(0, consistent=False) == 0.5
    assert read_units(4096, consistent=True) == 1
    assert read_units(4097, consistent=True) == 2


def test_writes_round_up_to_1_kb():
    assert write_units(0) == 1
    assert write_units(1024) == 1
    assert write_units(1025) == 2


def test_a_changed_index_key_costs_a_delete_and_a_put():
    info = TableInfo(("id",), (Index("by_idle", ("shard", "deadline"), "KEYS_ONLY"),))
    before = {"id": {"S": "a"}, "shard": {"N": "1"}, "deadline": {"N": "10"}}
    after = {**before, "deadline": {"N": "20"}}
    assert index_write_units(info, before, after) == 2
    assert index_write_units(info, before, before) == 0
    assert index_write_units(info, before, None) == 1            # removed from the index
    assert index_write_units(info, None, before) == 1            # added to it


def test_a_projected_attribute_change_updates_the_index_entry_in_place():
    info = TableInfo(("id",), (Index("by_user", ("user",), "INCLUDE", ("seen",)),))
    before = {"id": {"S": "a"}, "user": {"S": "u"}, "seen": {"N": "1"}, "other": {"S": "x"}}
    assert index_write_units(info, before, {**before, "seen": {"N": "2"}}) == 1
    assert index_write_units(info, before, {**before, "other": {"S": "y"}}) == 0


def test_tables_come_from_the_schema_with_their_indexes():
    tables = tables_from_schema("t-")
    sessions = tables["t-sessions"]
    assert sessions.keys == ("id",)
    assert {i.name for i in sessions.indexes} == {"by_idle", "by_user"}


def test_the_event_names_the_matched_route_and_encodes_form_bodies():
    routes = {"/v1/sessions/{session_id}": None, "/oauth/token": None}
    event = api_gateway_event(Request("DELETE", "/v1/sessions/abc"), routes, [])
    assert event["requestContext"]["resourcePath"] == "/v1/sessions/{session_id}"
    assert event["pathParameters"] == {"session_id": "abc"}
    form = "application/x-www-form-urlencoded"
    event = api_gateway_event(Request("POST", "/oauth/token", {"Content-Type": form}, b"a=1"),
                              routes, [form])
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"a=1"


def test_import_times_are_ranked_by_own_time_and_summed_by_package():
    stderr = "\n".join([
        "import time: self [us] | cumulative | imported package",
        "import time:       100 |        100 |   botocore.a",
        "import time:       300 |        400 | botocore",
        "import time:       200 |        200 | jwt",
    ])
    parsed = parse_importtime(stderr, top=2)
    assert [m["module"] for m in parsed["modules"]] == ["botocore", "jwt"]
    assert parsed["packages"][0] == {"package": "botocore", "self_ms": 0.4}


def test_duration_scales_cpu_to_the_functions_share_of_a_vcpu():
    assert cost.duration_ms(1.0, 0, cost.FULL_VCPU_MB) == 1
    assert cost.duration_ms(1.0, 0, cost.FULL_VCPU_MB // 2) == 3         # 2.0..., billed per ms
    assert cost.duration_ms(0.0, 2, 1769) == 2 * cost.DYNAMODB_ROUND_TRIP_MS


def test_every_first_request_is_cold_started_as_packaged_and_only_v1_me_also_without_byte_code():
    events = {"/v1/me": {}, "refresh": {}, "/v1/me with a role key": {},
              "client_credentials with a role key": {}, "discovery": {}}
    names = [v.name for v in variants_of(events)]
    assert [n for n in names if n.endswith("_bytecode")] == [f"{e}_bytecode" for e in events]
    assert [n for n in names if n.endswith("_source")] == ["/v1/me_source"]
    assert [n for n in names if n.endswith("_snapstart")] == ["/v1/me_snapstart", "refresh_snapstart"]
    every = [v.name for v in variants_of(events, source=None)]
    assert [n for n in every if n.endswith("_source")] == [f"{e}_source" for e in events]


def test_the_snapstart_child_restores_then_serves_the_first_request(tmp_path: Path):
    # discovery touches no AWS service: the endpoint is never contacted
    tree = function_tree(tmp_path / "task", bytecode=False)
    event = api_gateway_event(Request("GET", "/.well-known/openid-configuration"),
                              {"/.well-known/openid-configuration": None}, [])
    variant = Variant("discovery_snapstart", "first discovery after a SnapStart restore",
                      "snapstart", "bytecode", event)
    env = child_environment(aws_environment("http://127.0.0.1:9"))
    result = run_child(variant, {"bytecode": tree}, env)
    assert result["status"] == 200
    assert result["init_s"] > 0 and result["restore_s"] > 0
    assert result["total_s"] >= result["request_s"]


def _cold_variant(mode: str, tree: str, ratio: float, label: str) -> dict[str, Any]:
    t = {"median": 0.3, "p25": 0.3, "p75": 0.3, "min": 0.3, "max": 0.3, "n": 1}
    v = {"label": label, "mode": mode, "tree": tree, "total_s": t, "import_s": t, "request_s": t,
         "cpu_s": t, "max_rss_mb": {"median": 80}, "ratio_to_floor": ratio, "ratio_of_minimums": ratio}
    if mode == "snapstart":
        v["init_s"] = v["restore_s"] = t
    return v


def _results() -> dict[str, Any]:
    cold = {"runs": 1, "importtime_of": "x", "importtime": {"modules": [], "packages": []},
            "variants": {
                "floor": _cold_variant("floor", "source", 1.0, "floor"),
                "/v1/me_bytecode": _cold_variant("app", "bytecode", 1.2, "first /v1/me (as packaged)"),
                "refresh_bytecode": _cold_variant("app", "bytecode", 1.4, "first refresh (as packaged)"),
                "/v1/me_source": _cold_variant("app", "source", 2.0, "first /v1/me (without byte code)"),
                "/v1/me_snapstart": _cold_variant("snapstart", "bytecode", 0.9, "restored /v1/me")}}
    ms = {"median": 1.0, "p10": 1.0, "p90": 1.0}
    cpu = {"me_jwt": {"cpu_ms": {**ms, "median": 1.2}, "botocore_ms": ms, "own_cpu_ms": ms,
                      "bare_ms": ms, "bare_calls": 1, "bare_ratio": 1.2},
           "refresh": {"cpu_ms": {**ms, "median": 1.5}, "botocore_ms": ms, "own_cpu_ms": ms,
                       "bare_ms": ms, "bare_calls": 1, "bare_ratio": 1.5},
           "revoke_refresh": {"cpu_ms": ms, "botocore_ms": ms, "own_cpu_ms": ms,
                              "bare_ms": ms, "bare_calls": 1, "bare_ratio": 2.0}}
    return {"date": "today", "elapsed_s": 1.0, "cold": cold, "cpu": cpu, "cost": {},
            "prices": {"region": "r", "as_of": "d"}, "memory_mb": 512, "round_trip_ms": 5,
            "machine": {"cpu": "c", "cores": 2, "arch": "a", "os": "o", "python": "3"}}


def test_every_budgeted_figure_is_stated_with_its_budget_and_verdict():
    rows = {what: (measured, budget, verdict)
            for what, measured, budget, verdict in report.budgets(_results(), CASES)}
    assert rows["cold start: first /v1/me (as packaged)"] == ("1.20 × floor", "≤ 1.25 × floor", report.PASS)
    assert rows["cold start: first refresh (as packaged)"][2] == report.MISS
    # what does not deploy, and SnapStart, carry no cold-start budget
    assert not any("without byte code" in what or "restored" in what for what in rows)
    me, refresh = case("me_jwt").label, case("refresh").label
    assert rows[f"warm CPU: {me}"] == ("1.20 × bare call(s)", "≤ 1.25 × bare call(s)", report.PASS)
    assert rows[f"warm CPU: {refresh}"][2] == report.MISS
    assert f"warm CPU: {case('revoke_refresh').label}" not in rows          # a ratio, no budget
    assert rows[f"warm CPU, DynamoDB client excluded: {refresh}"] == ("1.00 ms (all 1.50)", "≤ 2 ms",
                                                                      report.PASS)


def test_the_report_shows_the_ratio_to_the_bare_calls_and_the_snapstart_table():
    text = report.markdown(_results(), CASES)
    assert "### Budgets (SPEC §9, issue 16): 3 of 5 met" in text
    assert "| 1.20 ≤ 1.25: ok |" in text and "| 1.50 ≤ 1.25: **MISS** |" in text
    assert "| 1.00 | 2.00 |  |" in text                         # revoke: a ratio without verdict
    assert "### SnapStart, measured locally" in text
    assert "| restored /v1/me | 300 | 300 | 300 | 300 | 300–300 | 300 | 0.90 |" in text
    assert "| 2.00 | 2.00 |" in text                             # without byte code: no verdict


def _cpu(total: float, own: float, bare: float | None = None, **extra: Any) -> dict[str, Any]:
    ms = {"median": 1.0, "p10": 1.0, "p90": 1.0}
    c: dict[str, Any] = {"cpu_ms": {**ms, "median": total}, "botocore_ms": {**ms, "median": total - own},
                         "own_cpu_ms": {**ms, "median": own}, **extra}
    if bare is not None:
        c.update(bare_ms={**ms, "median": bare}, bare_calls=1, bare_ratio=total / bare)
    return c


def test_a_refresh_with_an_id_token_is_held_to_its_bare_call_plus_one_rs256_signature():
    refresh = case("refresh")
    assert refresh.bare_extra is not None and "RS256" in refresh.bare_extra.label
    # the one case with such an allowance; the refresh without openid has none
    assert [c.name for c in CASES if c.bare_extra is not None] == ["refresh"]
    assert case("refresh_no_openid").bare_budget == 1.25 and case("refresh_no_openid").cpu_budget_ms == 2.0
    results = {**_results(), "cpu": {
        # 1.3 ms against 0.6 bare + 0.5 signature: 1.18 ≤ 1.25, though 2.17 × the bare call alone
        "refresh": _cpu(1.3, 0.5, 0.6, companion_ms={"median": 0.5, "p10": 0.5, "p90": 0.5}),
        "refresh_no_openid": _cpu(0.8, 0.3, 0.6)}}

    rows = {what: (measured, budget, verdict) for what, measured, budget, verdict in
            report.budgets(results, CASES)}

    divisor = "(bare call(s) + one RS256 signature of an ID token)"
    assert rows[f"warm CPU: {refresh.label}"] == (f"1.18 × {divisor}", f"≤ 1.25 × {divisor}", report.PASS)
    assert rows[f"warm CPU: {case('refresh_no_openid').label}"] == (
        "1.33 × bare call(s)", "≤ 1.25 × bare call(s)", report.MISS)
    text = report.markdown(results, CASES)
    assert "| 0.60 + 0.50 | 1.18 ≤ 1.25: ok |" in text
    # the signature measured beside the refresh is no password hash: no share of it is judged
    assert "hash" not in next(line for line in text.splitlines() if line.startswith(f"| {refresh.label} |"))


def test_without_the_signature_measured_the_refresh_is_held_to_its_bare_call_alone_and_says_so():
    results = {**_results(), "cpu": {"refresh": _cpu(1.3, 0.5, 0.6)}}
    [row] = [r for r in report.budgets(results, CASES) if r[0] == f"warm CPU: {case('refresh').label}"]
    assert row[1:] == ("2.17 × bare call(s), one RS256 signature of an ID token not measured",
                       "≤ 1.25 × bare call(s), one RS256 signature of an ID token not measured", report.MISS)


def test_the_ci_token_exchange_is_held_to_2_ms_in_all_and_to_half_a_millisecond_of_its_own():
    exchange = case("token_exchange")
    assert (exchange.cpu_budget_ms, exchange.own_budget_ms) == (2.0, 0.5)
    results = {**_results(), "cpu": {"token_exchange": _cpu(1.9, 0.6)}}

    rows = {what: (measured, budget, verdict) for what, measured, budget, verdict in
            report.budgets(results, CASES)}

    assert rows[f"warm CPU, all (DynamoDB client included): {exchange.label}"] == (
        "1.90 ms (own 0.60)", "≤ 2 ms", report.PASS)
    assert rows[f"warm CPU, DynamoDB client excluded: {exchange.label}"] == (
        "0.60 ms (all 1.90)", "≤ 0.5 ms", report.MISS)
    results["cpu"]["token_exchange"] = _cpu(2.1, 0.4)
    verdicts = [r[3] for r in report.budgets(results, CASES) if r[0].endswith(exchange.label)]
    assert verdicts == [report.MISS, report.PASS]


class _Keyring:
    def __init__(self) -> None:
        self.signed: list[tuple[dict[str, Any], str | None]] = []

    def sign(self, claims: dict[str, Any], *, typ: str = "JWT", alg: str | None = None) -> str:
        self.signed.append((claims, alg))
        return "h.p.s"


def test_the_signature_timed_beside_a_refresh_is_one_rs256_signature_of_id_token_claims():
    from types import SimpleNamespace

    from bench.cases import World, companions

    keyring = _Keyring()
    c = SimpleNamespace(keyring=keyring, settings=SimpleNamespace(issuer="https://issuer.example"),
                        clock=SimpleNamespace(now=lambda: 1000))
    seed = {"users": [{"username": "u", "password": "p"}],
            "clients": [{"client_id": "cli", "public": True},
                        {"client_id": "svc", "client_secret": "s", "introspect": True}]}
    world = World(lambda request: None, c, seed)   # type: ignore[arg-type]

    timed = companions(world)
    assert list(timed) == ["refresh"]
    timed["refresh"]()
    timed["refresh"]()

    assert len(keyring.signed) == 2
    claims, alg = keyring.signed[0]
    assert alg == "RS256"
    assert {"iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "sid", "amr", "acr", "at_hash"} == set(claims)
    assert claims["aud"] == "cli" and claims["iss"] == "https://issuer.example"
