"""The benchmark's results as markdown tables (what the README shows)."""

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


def cold_table(cold: dict[str, Any]) -> list[str]:
    lines = [f"### Cold start ({cold['runs']} fresh interpreters each, wall time in ms)", "",
             "| what | median | p25–p75 | min–max | import | first request | CPU | × floor | × floor (min) "
             "| max RSS MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for v in cold["variants"].values():
        t = v["total_s"]
        ratio = v["ratio_to_floor"]
        verdict = "" if v["label"].startswith("floor") else f" {_verdict(ratio, 1.25)}"
        lines.append(f"| {v['label']} | {_ms(t['median'])} | {_ms(t['p25'])}–{_ms(t['p75'])} | "
                     f"{_ms(t['min'])}–{_ms(t['max'])} | {_ms(v['import_s']['median'])} | "
                     f"{_ms(v['request_s']['median'])} | {_ms(v['cpu_s']['median'])} | "
                     f"{ratio:.2f}{verdict} | {v['ratio_of_minimums']:.2f} | "
                     f"{v['max_rss_mb']['median']:.0f} |")
    lines += ["", "Budget: ≤ 1.25 × floor (SPEC §9), on medians. Import, first request and CPU are "
              "medians too. The first request's wall time includes its round trips to moto "
              "(Secrets Manager, DynamoDB) over plain HTTP on 127.0.0.1: no TLS handshake, which "
              "the first call to AWS would add.", ""]
    it = cold["importtime"]
    lines += [f"### Import time of {cold['importtime_of']} (`-X importtime`, top ten)", "",
              "| module | self ms | cumulative ms | | package | self ms (sum) |",
              "|---|---:|---:|---|---|---:|"]
    for mod, pkg in zip(it["modules"], it["packages"], strict=False):
        lines.append(f"| {mod['module']} | {mod['self_ms']:.1f} | {mod['cumulative_ms']:.1f} | | "
                     f"{pkg['package']} | {pkg['self_ms']:.1f} |")
    lines.append("")
    return lines


def endpoint_table(results: dict[str, Any], cases: list[Any]) -> list[str]:
    cpu, work, cost = results["cpu"], results.get("work", {}), results.get("cost", {})
    lines = ["### Per warm request", "",
             "CPU of the API process per request (median of the samples, ms): all of it, the part "
             "inside the DynamoDB client (botocore building, signing, sending and parsing), and "
             "the rest, the service's own. DynamoDB calls per request and the request units "
             "they consume; modeled cost per million requests (arm64, Lambda + API Gateway + "
             "DynamoDB).", "",
             "| endpoint | CPU | p10–p90 | in DynamoDB client | own | budget (CPU) | DynamoDB calls "
             "| RRU | WRU | $/million |",
             "|---|---:|---:|---:|---:|---|---|---:|---:|---:|"]
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
        if "companion_ms" in c:
            share = c["companion_ms"]["median"] / total
            budget = f"hash {share:.0%} of it: {PASS if share >= 0.9 else MISS}"
        calls = _calls(w["calls"]) if w else ""
        units = (_units(w["rru"]), _units(w["wru"])) if w else ("", "")
        lines.append(f"| {case.label} | {total:.2f} | {c['cpu_ms']['p10']:.2f}–{c['cpu_ms']['p90']:.2f} | "
                     f"{c['botocore_ms']['median']:.2f} | {own:.2f} | {budget} | {calls} | {units[0]} | "
                     f"{units[1]} | {k['total_arm64']:.2f} |" if k else
                     f"| {case.label} | {total:.2f} | {c['cpu_ms']['p10']:.2f}–{c['cpu_ms']['p90']:.2f} | "
                     f"{c['botocore_ms']['median']:.2f} | {own:.2f} | {budget} | {calls} | {units[0]} | "
                     f"{units[1]} | |")
    pw = cpu.get("password_grant", {}).get("companion_ms")
    if pw:
        lines.append(f"| one scrypt verification alone (interleaved) | {pw['median']:.2f} | "
                     f"{pw['p10']:.2f}–{pw['p90']:.2f} | | | | | | | |")
    floor = results.get("botocore_floor")
    if floor:
        for key, label in (("get_item_ms", "GetItem of a missing item, botocore alone"),
                           ("update_item_ms", "UpdateItem of a tiny item, botocore alone")):
            f = floor[key]
            lines.append(f"| {label} | {f['median']:.2f} | {f['p10']:.2f}–{f['p90']:.2f} | "
                         f"{f['median']:.2f} | | | 1 | | | |")
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
    return lines


def markdown(results: dict[str, Any], cases: list[Any]) -> str:
    m = results["machine"]
    lines = [f"Run {results['date']} on {m['cpu']}, {m['cores']} cores ({m['arch']}, {m['os']}), "
             f"Python {m['python']}; {results['elapsed_s']:.0f} s.", ""]
    if "cold" in results:
        lines += cold_table(results["cold"])
    if "cpu" in results:
        lines += endpoint_table(results, cases)
        lines += cost_table(results, cases, results["prices"])
    if "purge" in results:
        lines += purge_table(results["purge"])
    return "\n".join(lines).rstrip() + "\n"
