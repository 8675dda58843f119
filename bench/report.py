"""The benchmark's results as markdown tables (what docs/benchmark.md shows)."""

from __future__ import annotations

import os
import platform
from typing import Any

PASS, MISS = "ok", "**MISS**"


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "arch": platform.machine(),
            "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version()}


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def _calls(calls: dict[str, int]) -> str:
    return ", ".join(f"{n} {op}" if n > 1 else op for op, n in calls.items()) or "none"


def _units(x: float) -> str:
    return f"{x:g}"


def _verdict(value: float, budget: float) -> str:
    return PASS if value <= budget else MISS


COLD_BUDGET = 1.25      # SPEC §9: × the floor of import boto3 + one DynamoDB client


def _budgeted_cold(v: dict[str, Any]) -> bool:
    """The cold-start budget is on what deploys: ``import app`` + a first request, as packaged."""
    return v.get("mode", "app") == "app" and v.get("tree", "bytecode") in ("bytecode", "baseline")


def cold_table(cold: dict[str, Any]) -> list[str]:
    lines = [f"### Cold start ({cold['runs']} fresh interpreters each, wall time in ms)", "",
             "| what | median | p25–p75 | min–max | import | first request | CPU | × floor | × floor (min) "
             "| max RSS MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for v in cold["variants"].values():
        if v.get("mode") == "snapstart":
            continue
        t = v["total_s"]
        ratio = v["ratio_to_floor"]
        verdict = f" {_verdict(ratio, COLD_BUDGET)}" if _budgeted_cold(v) else ""
        lines.append(f"| {v['label']} | {_ms(t['median'])} | {_ms(t['p25'])}–{_ms(t['p75'])} | "
                     f"{_ms(t['min'])}–{_ms(t['max'])} | {_ms(v['import_s']['median'])} | "
                     f"{_ms(v['request_s']['median'])} | {_ms(v['cpu_s']['median'])} | "
                     f"{ratio:.2f}{verdict} | {v['ratio_of_minimums']:.2f} | "
                     f"{v['max_rss_mb']['median']:.0f} |")
    lines += ["", "Budget: ≤ 1.25 × floor (SPEC §9), on medians, as packaged (without byte code is "
              "shown for what the byte code saves, not budgeted). Import, first request and CPU are "
              "medians too. The first request's wall time includes its round trips to moto "
              "(Secrets Manager, DynamoDB) over plain HTTP on 127.0.0.1: no TLS handshake, which "
              "the first call to AWS would add.", ""]
    lines += snapstart_table(cold)
    it = cold["importtime"]
    lines += [f"### Import time of {cold['importtime_of']} (`-X importtime`, top ten)", "",
              "| module | self ms | cumulative ms | | package | self ms (sum) |",
              "|---|---:|---:|---|---|---:|"]
    for mod, pkg in zip(it["modules"], it["packages"], strict=False):
        lines.append(f"| {mod['module']} | {mod['self_ms']:.1f} | {mod['cumulative_ms']:.1f} | | "
                     f"{pkg['package']} | {pkg['self_ms']:.1f} |")
    lines.append("")
    return lines


def snapstart_table(cold: dict[str, Any]) -> list[str]:
    """First requests of a function restored from a SnapStart snapshot, beside the floor."""
    restored = [v for v in cold["variants"].values() if v.get("mode") == "snapstart"]
    if not restored:
        return []
    lines = [f"### SnapStart, measured locally ({cold['runs']} fresh interpreters each, wall time in ms)",
             "",
             "| what | before snapshot (init, not billed per start) | after restore: hooks "
             "| first request | after restore, total | p25–p75 | CPU | × floor |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for v in restored:
        t = v["total_s"]
        lines.append(f"| {v['label']} | {_ms(v['init_s']['median'])} | {_ms(v['restore_s']['median'])} | "
                     f"{_ms(v['request_s']['median'])} | {_ms(t['median'])} | "
                     f"{_ms(t['p25'])}–{_ms(t['p75'])} | {_ms(v['cpu_s']['median'])} | "
                     f"{v['ratio_to_floor']:.2f} |")
    lines += ["", "A fresh interpreter runs `import app` and `chalicelib.snapstart.before_snapshot()` "
              "(what Lambda runs once per published version), then the clock starts: "
              "`after_restore()` and the first request. Not modeled: restoring the snapshot's "
              "memory (Lambda pages it in lazily), TLS and the network to AWS, the container "
              "credentials endpoint (here environment variables). So the ratio is a lower bound; "
              "issue 16 states no budget for it.", ""]
    return lines


def _extra(case: Any, c: dict[str, Any]) -> tuple[str, float] | None:
    """(its label, its median ms) of what a case must do besides its bare call(s)
    (``Case.bare_extra``), when the run measured it beside the case (``companion_ms``)."""
    extra = getattr(case, "bare_extra", None)
    if extra is None or "companion_ms" not in c:
        return None
    return extra.label, c["companion_ms"]["median"]


def bare_ratio(case: Any, c: dict[str, Any]) -> tuple[float, str]:
    """A request's CPU ÷ its bare call(s), plus what else it must do where the case
    names it and the run measured it; and what the divisor is, in words."""
    extra = _extra(case, c)
    if extra is None:
        return c["bare_ratio"], "bare call(s)"
    label, ms = extra
    return c["cpu_ms"]["median"] / (c["bare_ms"]["median"] + ms), f"(bare call(s) + {label})"


def _bare_cells(case: Any, c: dict[str, Any]) -> tuple[str, str]:
    """(bare call(s) CPU, × bare with its verdict where budgeted) of an endpoint."""
    if "bare_ms" not in c:
        return "", ""
    ratio, _ = bare_ratio(case, c)
    extra = _extra(case, c)
    bare = f"{c['bare_ms']['median']:.2f}" + (f" + {extra[1]:.2f}" if extra else "")
    budget = getattr(case, "bare_budget", None)
    verdict = f" ≤ {budget:g}: {_verdict(ratio, budget)}" if budget is not None else ""
    return bare, f"{ratio:.2f}{verdict}"


def endpoint_table(results: dict[str, Any], cases: list[Any]) -> list[str]:
    cpu, work, cost = results["cpu"], results.get("work", {}), results.get("cost", {})
    lines = ["### Per warm request", "",
             "CPU of the API process per request (median of the samples, ms): all of it, the part "
             "inside the DynamoDB client (botocore building, signing, sending and parsing), and "
             "the rest, the service's own. Bare call(s): the same DynamoDB calls with the same "
             "parameters on the same stored state, replayed on a default `boto3.client(\"dynamodb\")` "
             "(median of the sum per request), and the request's CPU as a multiple of it (issue 16: "
             "≤ 1.25 where budgeted). DynamoDB calls per request and the request units "
             "they consume; modeled cost per million requests (arm64, Lambda + API Gateway + "
             "DynamoDB).", "",
             "| endpoint | CPU | p10–p90 | in DynamoDB client | own | bare call(s) | × bare "
             "| budget (CPU) | DynamoDB calls | RRU | WRU | $/million |",
             "|---|---:|---:|---:|---:|---:|---|---|---|---:|---:|---:|"]
    for case in cases:
        c = cpu.get(case.name)
        if c is None:
            continue
        w, k = work.get(case.name), cost.get(case.name)
        total, own = c["cpu_ms"]["median"], c["own_cpu_ms"]["median"]
        budget = ""
        if case.cpu_budget_ms is not None:
            budget = (f"≤ {case.cpu_budget_ms:g} ms: {_verdict(total, case.cpu_budget_ms)}"
                      + (f" (own {_verdict(own, case.cpu_budget_ms)})" if c["botocore_ms"]["median"] else ""))
        if "companion_ms" in c and getattr(case, "bare_extra", None) is None:
            share = c["companion_ms"]["median"] / total
            budget = f"hash {share:.0%} of it: {PASS if share >= 0.9 else MISS}"
        calls = _calls(w["calls"]) if w else ""
        units = (_units(w["rru"]), _units(w["wru"])) if w else ("", "")
        bare, times_bare = _bare_cells(case, c)
        dollars = f"{k['total_arm64']:.2f}" if k else ""
        lines.append(f"| {case.label} | {total:.2f} | {c['cpu_ms']['p10']:.2f}–{c['cpu_ms']['p90']:.2f} | "
                     f"{c['botocore_ms']['median']:.2f} | {own:.2f} | {bare} | {times_bare} | {budget} | "
                     f"{calls} | {units[0]} | {units[1]} | {dollars} |")
    pw = cpu.get("password_grant", {}).get("companion_ms")
    if pw:
        lines.append(f"| one scrypt verification alone (interleaved) | {pw['median']:.2f} | "
                     f"{pw['p10']:.2f}–{pw['p90']:.2f} | | | | | | | | | |")
    floor = results.get("botocore_floor")
    if floor:
        for key, label in (("get_item_ms", "GetItem of a missing item, botocore alone"),
                           ("update_item_ms", "UpdateItem of a tiny item, botocore alone")):
            f = floor[key]
            lines.append(f"| {label} | {f['median']:.2f} | {f['p10']:.2f}–{f['p90']:.2f} | "
                         f"{f['median']:.2f} | | | | | 1 | | | |")
    long = results.get("long_session")
    if long:
        lines += ["", f"Late in a session (after {long['rotations']} rotations: 24 h of refreshing "
                  "at every 5-minute expiry; the item keeps one fingerprint per rotated token): "
                  f"a refresh consumes {_units(long['refresh']['wru'])} WRU "
                  f"({_calls(long['refresh']['calls'])}), `/v1/me` {_units(long['me_jwt']['rru'])} RRU."]
    lines.append("")
    return lines


def cost_table(results: dict[str, Any], cases: list[Any], prices: dict[str, Any]) -> list[str]:
    cost = results["cost"]
    lines = [f"### Modeled cost per million requests (USD, {prices['region']} list prices as of "
             f"{prices['as_of']}, {results['memory_mb']} MB)", "",
             "| endpoint | billed ms | Lambda arm64 | Lambda x86_64 | API Gateway REST | DynamoDB | "
             "total arm64 | total x86_64 |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for case in cases:
        k = cost.get(case.name)
        if not k:
            continue
        lines.append(f"| {case.label} | {k['billed_ms']} | {k['lambda_arm64']:.3f} | "
                     f"{k['lambda_x86_64']:.3f} | {k['api_gateway']:.2f} | {k['dynamodb']:.3f} | "
                     f"{k['total_arm64']:.2f} | {k['total_x86_64']:.2f} |")
    lines += ["", f"Duration = CPU ÷ the function's vCPU share ({results['memory_mb']}/1769) + "
              f"{results['round_trip_ms']:g} ms per DynamoDB round trip (assumed), billed per ms; the "
              "CPU is this machine's, for both architectures. List prices, not a quote.", ""]
    return lines


def purge_table(purge: dict[str, Any]) -> list[str]:
    lines = [f"### Purge scaling (one run, {purge['idle']} idle sessions)", "",
             "| live sessions | removed | calls | items read | RRU | WRU |", "|---:|---:|---|---:|---:|---:|"]
    for r in purge["runs"]:
        lines.append(f"| {r['live']:,} | {r['removed']} | {_calls(r['calls'])} | {r['items_read']} | "
                     f"{_units(r['rru'])} | {_units(r['wru'])} |")
    lines.append("")
    notices = purge.get("notices")
    if notices:
        lines += [f"### Expiry-notice scaling (one run, {notices['due']} PATs with a notice due)", "",
                  "| PATs | sent | calls | items read | RRU | WRU | run (s, moto) |",
                  "|---:|---:|---|---:|---:|---:|---:|"]
        for r in notices["runs"]:
            lines.append(f"| {r['tokens']:,} | {r['sent']} | {_calls(r['calls'])} | "
                         f"{r['items_read']} | {_units(r['rru'])} | {_units(r['wru'])} | "
                         f"{r['job_wall_s_in_moto']:.2f} |")
        lines.append("")
    return lines


def budgets(results: dict[str, Any], cases: list[Any]) -> list[tuple[str, str, str, str]]:
    """Every budgeted figure of the run: (what, measured, budget, verdict)."""
    rows = []
    for v in results.get("cold", {}).get("variants", {}).values():
        if _budgeted_cold(v):
            ratio = v["ratio_to_floor"]
            rows.append((f"cold start: {v['label']}", f"{ratio:.2f} × floor", f"≤ {COLD_BUDGET:g} × floor",
                         _verdict(ratio, COLD_BUDGET)))
    cpu = results.get("cpu", {})
    for case in cases:
        c = cpu.get(case.name)
        budget = getattr(case, "bare_budget", None)
        if c is not None and budget is not None and "bare_ratio" in c:
            ratio, divisor = bare_ratio(case, c)
            if getattr(case, "bare_extra", None) is not None and _extra(case, c) is None:
                divisor += f", {case.bare_extra.label} not measured"
            rows.append((f"warm CPU: {case.label}", f"{ratio:.2f} × {divisor}",
                         f"≤ {budget:g} × {divisor}", _verdict(ratio, budget)))
    for case in cases:
        c = cpu.get(case.name)
        if c is None:
            continue
        own, total = c["own_cpu_ms"]["median"], c["cpu_ms"]["median"]
        own_budget = getattr(case, "own_budget_ms", None)
        if case.cpu_budget_ms is not None and own_budget is not None:
            # issue 27: the whole request within its CPU budget, its own part within a smaller one
            rows.append((f"warm CPU, all (DynamoDB client included): {case.label}",
                         f"{total:.2f} ms (own {own:.2f})", f"≤ {case.cpu_budget_ms:g} ms",
                         _verdict(total, case.cpu_budget_ms)))
        elif case.cpu_budget_ms is not None:
            # SPEC §9: "CPU in the API process per warm request, DynamoDB excluded"
            rows.append((f"warm CPU, DynamoDB client excluded: {case.label}",
                         f"{own:.2f} ms (all {total:.2f})", f"≤ {case.cpu_budget_ms:g} ms",
                         _verdict(own, case.cpu_budget_ms)))
        if own_budget is not None:
            rows.append((f"warm CPU, DynamoDB client excluded: {case.label}",
                         f"{own:.2f} ms (all {total:.2f})", f"≤ {own_budget:g} ms",
                         _verdict(own, own_budget)))
    pw = cpu.get("password_grant", {})
    if "companion_ms" in pw:
        share = pw["companion_ms"]["median"] / pw["cpu_ms"]["median"]
        rows.append(("warm CPU: password grant, share of the scrypt hash", f"{share:.0%}", "≥ 90%",
                     PASS if share >= 0.9 else MISS))
    if "peer" in results:
        from bench.peer import budget_rows

        rows += budget_rows(results)
    if "runner" in results:
        from bench import runner_load

        rows += runner_load.budget_rows(results)
    return rows


def budget_table(results: dict[str, Any], cases: list[Any]) -> list[str]:
    rows = budgets(results, cases)
    if not rows:
        return []
    missed = sum(1 for r in rows if r[3] != PASS)
    lines = [f"### Budgets (SPEC §9, issue 16): {len(rows) - missed} of {len(rows)} met", "",
             "| what | measured | budget | |", "|---|---:|---|---|"]
    lines += [f"| {what} | {measured} | {budget} | {verdict} |" for what, measured, budget, verdict in rows]
    lines.append("")
    return lines


def markdown(results: dict[str, Any], cases: list[Any]) -> str:
    m = results["machine"]
    lines = [f"Run {results['date']} on {m['cpu']}, {m['cores']} cores ({m['arch']}, {m['os']}), "
             f"Python {m['python']}; {results['elapsed_s']:.0f} s.", ""]
    for phase, why in results.get("skipped", {}).items():
        lines += [f"**Skipped: the {phase} phase.** {why}", ""]
    lines += budget_table(results, cases)
    if "cold" in results:
        lines += cold_table(results["cold"])
    if "cpu" in results:
        lines += endpoint_table(results, cases)
        lines += cost_table(results, cases, results["prices"])
    # The peer, side by side (issue 16 goal 4): bench/peer.py renders its own table.
    if "peer" in results:
        from bench.peer import peer_table

        lines += peer_table(results)
    if "purge" in results:
        lines += purge_table(results["purge"])
    # The local runner under concurrent clients (issue 27 item 5): bench/runner_load.py's table.
    if "runner" in results:
        from bench import runner_load

        lines += runner_load.runner_table(results)
    return "\n".join(lines).rstrip() + "\n"
