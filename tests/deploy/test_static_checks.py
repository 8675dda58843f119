"""The audit's static checks of the templates (issue 26): checkov 3.3.30 with the
accepted findings of ``deploy/audit-baseline.json``, and cfn-lint 1.58, both run
from their own virtual environment (``make audit-venv``: ``build/audit-venv``,
pinned in ``deploy/audit-requirements.txt``), never the app's: their dependencies
would clash with the app's pins. ``make test`` builds it first; a missing tool
fails here, it is never skipped.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from deploy.package import Package, build
from deploy.stages import PROJECT_DIR

AUDIT_VENV = Path(os.environ.get("TESSERA_AUDIT_VENV") or PROJECT_DIR / "build" / "audit-venv")
BASELINE = PROJECT_DIR / "deploy" / "audit-baseline.json"


def _tool(name: str) -> str:
    exe = AUDIT_VENV / "bin" / name
    assert exe.exists(), f"{exe} is missing: run `make audit-venv` (make test does)"
    return str(exe)


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Package]:
    return {stage: build(stage, tmp_path_factory.mktemp(stage), stub_layer=True) for stage in ("dev", "prod")}


def checkov_failures(template: Path) -> set[tuple[str, str]]:
    """(check id, ``Type.LogicalId``) of every failed check."""
    done = subprocess.run(
        [_tool("checkov"), "-f", str(template), "--framework", "cloudformation", "-o", "json", "--quiet",
         "--skip-download"], capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"})
    report: Any = json.loads(done.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["summary"]["parsing_errors"] == 0, report["summary"]
    assert report["summary"]["passed"] > 0, report["summary"]
    return {(f["check_id"], f["resource"]) for f in report["results"]["failed_checks"]}


def accepted(failure: tuple[str, str], baseline: list[dict[str, str]]) -> dict[str, str] | None:
    check, resource = failure
    return next((e for e in baseline if e["check"] == check and fnmatch.fnmatchcase(resource, e["resource"])),
                None)


def test_every_accepted_finding_says_why() -> None:
    entries = json.loads(BASELINE.read_text())["accepted"]
    for entry in entries:
        reason = entry["reason"]
        assert reason.split(":", 1)[0] in ("trade-off", "false positive"), entry
        assert "\n" not in reason and len(reason) > 40, entry


def test_checkov_finds_nothing_beyond_the_accepted_findings(packages: dict[str, Package]) -> None:
    baseline = json.loads(BASELINE.read_text())["accepted"]
    failures = set().union(*(checkov_failures(p.template) for p in packages.values()))
    new = sorted(f for f in failures if accepted(f, baseline) is None)
    assert new == [], f"new checkov findings (fix them, or accept each in {BASELINE.name} with a reason)"
    used = {json.dumps(accepted(f, baseline), sort_keys=True) for f in failures}
    stale = [e for e in baseline if json.dumps(e, sort_keys=True) not in used]
    assert stale == [], "accepted findings checkov no longer reports: remove them from the baseline"


def test_the_baseline_does_not_hide_a_new_finding() -> None:
    """The matcher itself: a finding no entry names is new."""
    baseline = json.loads(BASELINE.read_text())["accepted"]
    assert accepted(("CKV_AWS_158", "AWS::Logs::LogGroup.EventsLogGroup"), baseline) is not None
    assert accepted(("CKV_AWS_111", "AWS::IAM::Role.APIHandlerRole"), baseline) is None
    assert accepted(("CKV_AWS_27", "AWS::SQS::Queue.OtherQueue"), baseline) is None


def test_cfn_lint_from_the_audit_environment_is_clean(packages: dict[str, Package]) -> None:
    done = subprocess.run([_tool("cfn-lint"), "--", *(str(p.template) for p in packages.values())],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
