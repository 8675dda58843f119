"""Cold start: fresh interpreters serving their first request, next to the floor.

The function is laid out as the deploy package lays it out: ``app.py``,
``chalicelib/`` and Chalice's ``chalice/app.py``, with unchecked-hash byte code
that ``deploy/package.py`` adds (``/var/task`` is read-only on Lambda, so code
without byte code is compiled on every cold start). Two layouts are measured:

* ``as packaged``: with byte code (what deploys), for every first request;
* ``without byte code``: the same sources only, to show what the byte code saves,
  for the first requests of ``source`` only (``/v1/me`` by default: what the byte
  code saves hardly depends on the request, and each variant costs a child per run).

Beside them, as packaged, the first requests of ``snapstart`` in a function
restored from a SnapStart snapshot (``cold_child.py``'s ``snapstart`` mode: what
it models and what it does not is said there).

Runs are interleaved, each run starting at the next variant, so that drift and a
child's place in the round hit all alike.
"""

from __future__ import annotations

import compileall
import json
import os
import py_compile
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).resolve().parent / "cold_child.py"


def function_tree(dst: Path, *, bytecode: bool, revision: str | None = None) -> Path:
    """``/var/task`` of the deployed function, optionally with byte code; of the working
    tree, or of a git ``revision`` (the same run's baseline, to compare before and after)."""
    import chalice

    dst.mkdir(parents=True)
    if revision is None:
        shutil.copy2(ROOT / "app.py", dst / "app.py")
        shutil.copytree(ROOT / "chalicelib", dst / "chalicelib",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    else:
        archive = subprocess.run(["git", "archive", revision, "app.py", "chalicelib"], cwd=ROOT,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dst)], input=archive, check=True)
    (dst / "chalice").mkdir()
    runtime = Path(chalice.__file__).parent
    for name in ("__init__.py", "app.py"):
        shutil.copy2(runtime / name, dst / "chalice" / name)
    if bytecode:
        compileall.compile_dir(str(dst), quiet=1,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    return dst


@dataclass(frozen=True)
class Variant:
    name: str              # key in JSON
    label: str
    mode: str              # floor | floor+jwt | floor+secretsmanager | app | snapstart
    tree: str              # source | bytecode | baseline
    # The first request's event, or a function making a new one per run (a refresh
    # token is single use).
    event: dict[str, Any] | Callable[[], dict[str, Any]] | None = None


def run_child(variant: Variant, trees: dict[str, Path], env: dict[str, str],
              importtime: bool = False) -> dict[str, Any]:
    cmd = [sys.executable]
    if importtime:
        cmd += ["-X", "importtime"]
    cmd += [str(CHILD), str(trees[variant.tree]), variant.mode]
    event = variant.event() if callable(variant.event) else variant.event
    done = subprocess.run(cmd, input=json.dumps({"event": event}), capture_output=True,
                          text=True, env=env, cwd=trees[variant.tree], check=False, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"cold-start child {variant.name} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if variant.mode in ("app", "snapstart") and result["status"] != 200:
        raise RuntimeError(f"cold-start child {variant.name}: first request got {result['status']}")
    if importtime:
        result["importtime"] = done.stderr
    return result


def child_environment(aws_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TESSERA_"))}
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONPYCACHEPREFIX", None)
    env.update(aws_env)
    # What the Lambda runtime sets and the function reads (chalicelib/startup.py).
    env["AWS_LAMBDA_FUNCTION_NAME"] = "tessera-bench"
    # /var/task is read-only on Lambda: nothing the interpreter compiles is kept.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median": statistics.median(ordered), "min": ordered[0], "max": ordered[-1],
            "p25": ordered[len(ordered) // 4], "p75": ordered[(3 * len(ordered)) // 4],
            "n": len(ordered)}


def parse_importtime(stderr: str, top: int = 10) -> dict[str, Any]:
    """The ``-X importtime`` report: the slowest modules by own time, and by package."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line[len("import time:"):].split("|")
        rows.append((name.strip(), int(own), int(cumulative)))
    by_package: dict[str, int] = {}
    for name, self_us, _ in rows:
        by_package[name.split(".")[0]] = by_package.get(name.split(".")[0], 0) + self_us
    slowest = sorted(rows, key=lambda r: r[1], reverse=True)[:top]
    packages = sorted(by_package.items(), key=lambda kv: kv[1], reverse=True)[:top]
    return {
        "total_ms": sum(r[1] for r in rows) / 1000,
        "modules": [{"module": n, "self_ms": s / 1000, "cumulative_ms": c / 1000}
                    for n, s, c in slowest],
        "packages": [{"package": p, "self_ms": s / 1000} for p, s in packages],
    }


def variants_of(events: dict[str, Any], *, source: tuple[str, ...] | None = ("/v1/me",),
                snapstart: tuple[str, ...] = ("/v1/me", "refresh"),
                baseline: str | None = None) -> list[Variant]:
    """The floors, then every first request as packaged, those of ``source`` without
    byte code (None: all of them), those of ``snapstart`` restored from a snapshot,
    and with ``baseline`` every first request at that revision."""
    variants = [Variant("floor", "floor: import boto3 + boto3.client('dynamodb')", "floor", "source"),
                Variant("floor+jwt", "floor + import jwt (PyJWT, cryptography)", "floor+jwt", "source"),
                Variant("floor+secretsmanager", "floor + boto3.client('secretsmanager')",
                        "floor+secretsmanager", "source")]
    for request, event in events.items():
        variants.append(Variant(f"{request}_bytecode", f"import app + first {request} (as packaged)",
                                "app", "bytecode", event))
    for request, event in events.items():
        if source is None or request in source:
            variants.append(Variant(f"{request}_source", f"import app + first {request} "
                                    "(without byte code)", "app", "source", event))
    for request in snapstart:
        variants.append(Variant(f"{request}_snapstart", f"first {request} after a SnapStart restore "
                                "(as packaged)", "snapstart", "bytecode", events[request]))
    if baseline:
        for request, event in events.items():
            variants.append(Variant(f"{request}_baseline", f"import app + first {request} "
                                    f"(as packaged, at {baseline})", "app", "baseline", event))
    return variants


def measure(aws_env: dict[str, str], events: dict[str, Any], runs: int,
            log: Any = print, baseline: str | None = None, *,
            source: tuple[str, ...] | None = ("/v1/me",),
            snapstart: tuple[str, ...] = ("/v1/me", "refresh")) -> dict[str, Any]:
    """Cold starts of every variant (``variants_of``), ``runs`` times each, interleaved."""
    variants = variants_of(events, source=source, snapstart=snapstart, baseline=baseline)
    env = child_environment(aws_env)
    results: dict[str, list[dict[str, Any]]] = {v.name: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="tessera-bench-task-") as tmp:
        trees = {"source": function_tree(Path(tmp) / "source", bytecode=False),
                 "bytecode": function_tree(Path(tmp) / "bytecode", bytecode=True)}
        if baseline:
            trees["baseline"] = function_tree(Path(tmp) / "baseline", bytecode=True, revision=baseline)
        for variant in variants:      # one unmeasured run each: the page cache is warm for all
            run_child(variant, trees, env)
        for i in range(runs):
            # Each run starts at the next variant: a child's place in the round moves its
            # time (the first of a round runs slower here), so every variant takes every place.
            shift = i % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                results[variant.name].append(run_child(variant, trees, env))
            log(f"  cold start run {i + 1}/{runs}")
        first_app = next((v for v in variants if v.mode == "app" and v.tree == "source"),
                         next(v for v in variants if v.mode == "app"))
        profile = run_child(first_app, trees, env, importtime=True)
    floor = summary([r["total_s"] for r in results["floor"]])
    out: dict[str, Any] = {"runs": runs, "variants": {}, "importtime_of": first_app.label,
                           "importtime": parse_importtime(profile["importtime"])}
    for variant in variants:
        rs = results[variant.name]
        total = summary([r["total_s"] for r in rs])
        out["variants"][variant.name] = {
            "label": variant.label,
            "mode": variant.mode,
            "tree": variant.tree,
            "total_s": total,
            "import_s": summary([r["import_s"] for r in rs]),
            "request_s": summary([r["request_s"] for r in rs]),
            "cpu_s": summary([r["cpu_s"] for r in rs]),
            "max_rss_mb": summary([r["max_rss_mb"] for r in rs]),
            "ratio_to_floor": total["median"] / floor["median"],
            "ratio_of_minimums": total["min"] / floor["min"],
        }
        if variant.mode == "snapstart":
            out["variants"][variant.name]["init_s"] = summary([r["init_s"] for r in rs])
            out["variants"][variant.name]["restore_s"] = summary([r["restore_s"] for r in rs])
    return out
