"""Build the deployable stack of one stage: ``template.json`` plus its zips (SPEC §7).

    python -m chalicelayer.build --architecture arm64 --out build/layer/layer.zip
    python -m deploy.package --stage dev --out build/deploy --layer-zip build/layer/layer.zip

``chalice package`` runs on a scratch copy of the project (``app.py``,
``chalicelib/``, ``.chalice/*.json``) whose ``requirements.txt`` is empty: the
dependencies ship in the layer, so Chalice downloads nothing, needs no network
and no AWS credentials, and the function zip holds only ``app.py``,
``chalicelib/`` and Chalice's two runtime modules. Its SAM template is then
completed with what Chalice does not model:

* one ``AWS::DynamoDB::Table`` per entry of ``chalicelib.storage.schema.TABLES``
  named ``<TESSERA_TABLE_PREFIX><kind>`` (TTL on ``ttl``, on-demand, PITR, SSE);
* the dependency layer (``AWS::Lambda::LayerVersion``) on every function;
* fixed function names and log group names (the IAM policy is scoped to them);
* API Gateway's own errors as problem JSON (``deploy.gateway``).

Every function has a role of its own carrying
``.chalice/policy-<stage>-<function>.json``, derived from that function's code path
by ``deploy.iam``; packaging stops if a file is not what the code needs. The
production resources around the functions (secret, alarms, throttling, WAF,
domain, SnapStart) come from ``deploy.stack``. Scheduled functions
(``@app.schedule``) come from Chalice as SAM ``Schedule`` events and are kept.

``--stub-layer`` packages offline with a placeholder layer named
``layer-stub.zip`` that carries no dependencies: for tests and template checks,
never for a deployment.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelayer import build as layer_build
from deploy import gateway, iam, stack, tables
from deploy.stages import PROJECT_DIR, Stage, load_stage

TEMPLATE = "template.json"
FUNCTION_ZIP = "deployment.zip"
LAYER_ZIP = "layer.zip"
STUB_LAYER_ZIP = "layer-stub.zip"
LAYER_ID = "DependenciesLayer"
_OUTPUTS = (TEMPLATE, FUNCTION_ZIP, LAYER_ZIP, STUB_LAYER_ZIP)

FUNCTION = "AWS::Serverless::Function"
LOG_GROUP = "AWS::Logs::LogGroup"


class PackagingError(Exception):
    """The stage cannot be packaged as configured."""


@dataclass(frozen=True)
class Package:
    template: Path
    function_zip: Path
    layer_zip: Path


# --------------------------------------------------------------------------
# chalice package
# --------------------------------------------------------------------------

def _copy_project(src: Path, dst: Path) -> None:
    """The files Chalice packages, without byte code and without dependencies."""
    dst.mkdir(parents=True)
    shutil.copy2(src / "app.py", dst / "app.py")
    shutil.copytree(src / "chalicelib", dst / "chalicelib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (dst / ".chalice").mkdir()
    for path in (src / ".chalice").glob("*.json"):
        shutil.copy2(path, dst / ".chalice" / path.name)
    (dst / "requirements.txt").write_text(
        "# Empty on purpose: the dependencies ship in the layer built from chalicelayer/.\n")
    _copy_docs_assets(src, dst)


def _copy_docs_assets(src: Path, dst: Path) -> None:
    """Swagger UI's files for ``GET /docs`` (``chalicelib.web.api_docs``), from the npm
    package that ``make docs-deps`` installs, into the package's
    ``chalicelib/web/vendor/swagger-ui/``: the function serves them itself."""
    from chalicelib.web import api_docs

    installed = src / api_docs.INSTALLED.relative_to(api_docs.HERE.parents[1])
    target = dst / api_docs.PACKAGED.relative_to(api_docs.HERE.parents[1])
    missing = [name for name in api_docs.VENDOR_FILES if not (installed / name).is_file()]
    if missing:
        raise PackagingError(f"swagger-ui-dist is not installed ({', '.join(missing)} missing "
                             f"in {installed}): run `make docs-deps`")
    target.mkdir(parents=True, exist_ok=True)
    for name in api_docs.VENDOR_FILES:
        shutil.copyfile(installed / name, target / name)


def run_chalice_package(project: Path, stage: str, out: Path, region: str) -> dict[str, Any]:
    """``chalice package --pkg-format cloudformation`` in ``project``; returns the SAM template."""
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")}
    # The region only picks the service principals' DNS suffix; nothing calls AWS.
    env.update(AWS_DEFAULT_REGION=region, AWS_EC2_METADATA_DISABLED="true")
    cmd = [sys.executable, "-c", "import sys; from chalice.cli import main; sys.exit(main())",
           "package", "--pkg-format", "cloudformation", "--stage", stage, str(out)]
    done = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise PackagingError(f"chalice package failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    template: dict[str, Any] = json.loads((out / "sam.json").read_text())
    return template


# --------------------------------------------------------------------------
# merge
# --------------------------------------------------------------------------

def _role_policy(resources: dict[str, Any], logical_id: str, fn: dict[str, Any]) -> dict[str, Any]:
    role_ref = fn["Properties"].get("Role")
    if not (isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref):
        raise PackagingError(f"{logical_id}: expected a role managed by the stack, got {role_ref!r}")
    role = resources[role_ref["Fn::GetAtt"][0]]
    policies = role["Properties"].get("Policies", [])
    if len(policies) != 1:
        raise PackagingError(f"{logical_id}: expected one inline policy on its role")
    document: dict[str, Any] = policies[0]["PolicyDocument"]
    return document


def _check_policies(resources: dict[str, Any], chalice_names: dict[str, str], stage: Stage) -> None:
    """Every function's role carries exactly the policy its code path needs."""
    wanted = iam.policy_documents(stage)
    if set(chalice_names.values()) != set(wanted):
        raise PackagingError(f"functions in the template {sorted(chalice_names.values())} "
                             f"are not those of app.py {sorted(wanted)}")
    for logical_id, name in chalice_names.items():
        if _role_policy(resources, logical_id, resources[logical_id]) != wanted[name]:
            raise PackagingError(
                f"the policy of {name} in .chalice/ is not what its code needs; "
                "run `python -m deploy.iam --write` and review the diff")


def chalice_names(stage: Stage, functions: dict[str, Any]) -> dict[str, str]:
    """Logical id -> Chalice's function name (``api_handler``, ``purge_idle_sessions``, ...)."""
    by_handler = {}
    for name, entry in iam.entry_points(stage.project_dir).items():
        if name != iam.API_HANDLER:
            (node,) = entry.nodes
            by_handler[f"app.{getattr(node, 'name', name)}"] = name
    out = {}
    for fid, fn in functions.items():
        handler = fn["Properties"]["Handler"]
        out[fid] = (iam.API_HANDLER if fid == "APIHandler"
                    else by_handler.get(handler, handler.rsplit(".", 1)[-1]))
    return out


def _fix_log_groups(resources: dict[str, Any], names: dict[str, str]) -> dict[str, str]:
    """Give each function's log group its literal name; returns function -> log group id.

    Chalice writes ``/aws/lambda/${<function id>}``, but for the API handler it
    uses a spelling (``ApiHandler``) of an id it has renamed (``APIHandler``), which
    CloudFormation rejects. A literal name also lets the function depend on its
    log group, so the group exists before the first invocation.
    """
    by_lower = {fid.lower(): fid for fid in names}
    groups: dict[str, str] = {}
    for gid, res in resources.items():
        if res["Type"] != LOG_GROUP:
            continue
        sub = res["Properties"].get("LogGroupName", {})
        ref = sub.get("Fn::Sub", "") if isinstance(sub, dict) else ""
        if not (ref.startswith("/aws/lambda/${") and ref.endswith("}")):
            continue
        fid = by_lower.get(ref[len("/aws/lambda/${"):-1].lower())
        if fid is None:
            raise PackagingError(f"log group {gid} names no function of the template: {ref}")
        res["Properties"]["LogGroupName"] = f"/aws/lambda/{names[fid]}"
        # Logs go with the stack (a retained group would block re-creating it).
        res["DeletionPolicy"] = res["UpdateReplacePolicy"] = "Delete"
        groups[fid] = gid
    return groups


def _depends_on(resource: dict[str, Any], ids: list[str]) -> None:
    current = resource.get("DependsOn", [])
    current = [current] if isinstance(current, str) else list(current)
    resource["DependsOn"] = current + [i for i in ids if i not in current]


def merge(template: dict[str, Any], stage: Stage, layer_file: str) -> dict[str, Any]:
    """Complete Chalice's SAM template in place (see the module docstring)."""
    resources: dict[str, Any] = template["Resources"]
    functions = {k: r for k, r in resources.items() if r["Type"] == FUNCTION}
    if "APIHandler" not in functions:
        raise PackagingError("the app declares no routes: no API handler in the template")
    names_in_app = chalice_names(stage, functions)
    _check_policies(resources, names_in_app, stage)

    table_resources = tables.table_resources(stage.table_prefix)
    clash = set(table_resources) & set(resources)
    if clash:
        raise PackagingError(f"resource ids already used by Chalice: {sorted(clash)}")
    resources.update(table_resources)

    resources[LAYER_ID] = {
        "Type": "AWS::Lambda::LayerVersion",
        "Properties": {
            "LayerName": f"{stage.function_prefix}-dependencies",
            "Description": "Tessera runtime dependencies (chalicelayer/requirements.txt)",
            "Content": f"./{layer_file}",
            "CompatibleRuntimes": [layer_build.RUNTIME],
            "CompatibleArchitectures": [stage.architecture],
        },
    }

    names = {fid: iam.function_name(stage, names_in_app[fid]) for fid in functions}
    log_groups = _fix_log_groups(resources, names)
    for fid, fn in functions.items():
        props = fn["Properties"]
        env = props.get("Environment", {}).get("Variables", {})
        if env.get("TESSERA_TABLE_PREFIX") != stage.table_prefix:
            raise PackagingError(f"{fid}: TESSERA_TABLE_PREFIX differs from the stage's tables")
        if props.get("Architectures") != [stage.architecture]:
            raise PackagingError(f"{fid}: architecture differs from the stage's layer")
        if fid not in log_groups:
            raise PackagingError(f"{fid} has no log group: set log_retention_in_days for the stage")
        props["FunctionName"] = names[fid]
        # Chalice takes the runtime from the interpreter it runs in; the layer
        # fixes it (compiled extensions are built for one CPython version).
        props["Runtime"] = layer_build.RUNTIME
        props["Layers"] = [{"Ref": LAYER_ID}, *[x for x in props.get("Layers", []) if x != {"Ref": LAYER_ID}]]
        # Tables before functions: a schedule may fire as soon as it exists.
        _depends_on(fn, [log_groups[fid], *table_resources])

    api = resources["RestAPI"]["Properties"]["DefinitionBody"]
    gateway.add_gateway_responses(api)
    stack.add_production_resources(template, stage, names_in_app, list(table_resources), log_groups)

    template["Description"] = (f"Tessera {stage.name}: API, functions, schedules, DynamoDB tables, "
                               "signing-key secret, alarms and a least-privilege role per function "
                               "(built by deploy/package.py)")
    outputs = template.setdefault("Outputs", {})
    for tid in table_resources:
        outputs[f"{tid}Name"] = {"Value": {"Ref": tid}}
    outputs["DependenciesLayerArn"] = {"Value": {"Ref": LAYER_ID}}
    return template


# --------------------------------------------------------------------------
# the layer
# --------------------------------------------------------------------------

def check_layer(layer_zip: Path, stage: Stage) -> None:
    manifest = layer_build.read_manifest(layer_zip)
    wanted = layer_build.manifest_for(stage.architecture)
    for key in ("runtime", "architecture", "requirements_sha256", "stub"):
        if manifest.get(key) != wanted[key]:
            raise PackagingError(
                f"{layer_zip}: {key} is {manifest.get(key)!r}, stage {stage.name} needs {wanted[key]!r}; "
                f"rebuild it with python -m chalicelayer.build --architecture {stage.architecture}")


# --------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------

RUNTIME_VERSION = layer_build.RUNTIME.removeprefix("python")          # "3.12"
BYTECODE_SCRIPT = Path(__file__).resolve().parent / "bytecode.py"
# Stages whose function zip must carry byte code (a cold start compiles nothing).
BYTE_CODE_REQUIRED = frozenset({"prod"})


def _reports_runtime_version(python: str) -> bool:
    try:
        done = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],  # noqa: S603
                              capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return False
    return done.returncode == 0 and done.stdout.strip() == RUNTIME_VERSION


def find_runtime_python() -> str | None:
    """An interpreter of the functions' runtime version: ``TESSERA_RUNTIME_PYTHON``,
    ``python3.12`` on PATH, or a pyenv installation of it."""
    exe = f"python{RUNTIME_VERSION}"
    candidates = [os.environ.get("TESSERA_RUNTIME_PYTHON", ""), shutil.which(exe) or ""]
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates += [str(p) for p in sorted(pyenv.glob(f"versions/{RUNTIME_VERSION}*/bin/{exe}"), reverse=True)]
    return next((c for c in candidates if c and _reports_runtime_version(c)), None)


def add_byte_code(source_zip: Path, target_zip: Path, *, stage: str = "dev",
                  runtime_python: str | None = None) -> bool:
    """Copy the function zip, adding byte code for the runtime's Python version
    (``deploy/bytecode.py``); returns whether it did. In-process when this is the
    runtime's version, else with ``runtime_python`` (found if not given). Without
    one, a stage of ``BYTE_CODE_REQUIRED`` is refused; another gets source only."""
    if f"python{sys.version_info.major}.{sys.version_info.minor}" == layer_build.RUNTIME:
        from deploy.bytecode import add_byte_code as compile_in_process

        compile_in_process(source_zip, target_zip)
        return True
    python = runtime_python if runtime_python is not None else find_runtime_python()
    if python and _reports_runtime_version(python):
        done = subprocess.run([python, str(BYTECODE_SCRIPT), str(source_zip), str(target_zip)],  # noqa: S603
                              capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            raise PackagingError(f"compiling byte code with {python} failed:\n{done.stderr[-2000:]}")
        return True
    if stage in BYTE_CODE_REQUIRED:
        raise PackagingError(
            f"stage {stage} ships byte code for Lambda's Python {RUNTIME_VERSION}, and no Python "
            f"{RUNTIME_VERSION} was found: install one (pyenv install {RUNTIME_VERSION}, "
            f"uv python install {RUNTIME_VERSION}, or your distribution's python{RUNTIME_VERSION}) "
            "and put it on PATH or in TESSERA_RUNTIME_PYTHON")
    print(f"note: no Python {RUNTIME_VERSION} found; the function zip carries source only "
          "(each cold start compiles it)", file=sys.stderr)
    shutil.copyfile(source_zip, target_zip)
    return False


def build(stage_name: str, out: Path, *, layer_zip: Path | None = None, build_layer: bool = False,
          stub_layer: bool = False, project_dir: Path = PROJECT_DIR,
          region: str = "us-east-1", runtime_python: str | None = None) -> Package:
    """Package ``stage_name`` into ``out``; exactly one layer source must be given."""
    if sum((layer_zip is not None, build_layer, stub_layer)) != 1:
        raise PackagingError("give one of: a layer zip, build the layer, or a stub layer")
    stage = load_stage(stage_name, project_dir)
    stale = iam.stale_files(stage)
    if stale:
        # Chalice would embed the stale files (or fail on a missing one).
        raise PackagingError(f"out of date: {', '.join(stale)}; "
                             "run `python -m deploy.iam --write` and review the diff")
    out.mkdir(parents=True, exist_ok=True)
    for name in _OUTPUTS:
        (out / name).unlink(missing_ok=True)

    layer_file = STUB_LAYER_ZIP if stub_layer else LAYER_ZIP
    layer_path = out / layer_file
    if stub_layer:
        layer_build.build_stub_layer(layer_path, stage.architecture)
    elif build_layer:
        layer_build.build_layer(layer_path, stage.architecture)
    else:
        assert layer_zip is not None
        check_layer(layer_zip, stage)
        shutil.copyfile(layer_zip, layer_path)

    with tempfile.TemporaryDirectory(prefix="tessera-package-") as tmp:
        project = Path(tmp) / "project"
        _copy_project(project_dir, project)
        raw = Path(tmp) / "chalice-out"
        template = run_chalice_package(project, stage_name, raw, region)
        add_byte_code(raw / FUNCTION_ZIP, out / FUNCTION_ZIP, stage=stage_name, runtime_python=runtime_python)

    merge(template, stage, layer_file)
    (out / TEMPLATE).write_text(json.dumps(template, indent=2, sort_keys=False) + "\n")
    return Package(out / TEMPLATE, out / FUNCTION_ZIP, layer_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.package", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True, help="a stage of .chalice/config.json")
    parser.add_argument("--out", type=Path, default=Path("build/deploy"))
    parser.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                        help="only sets the service principals' DNS suffix (default: %(default)s)")
    layer = parser.add_mutually_exclusive_group(required=True)
    layer.add_argument("--layer-zip", type=Path, help="a layer built by python -m chalicelayer.build")
    layer.add_argument("--build-layer", action="store_true", help="build the layer now (needs PyPI)")
    layer.add_argument("--stub-layer", action="store_true",
                       help="offline placeholder layer-stub.zip without dependencies; not deployable")
    args = parser.parse_args(argv)
    try:
        pkg = build(args.stage, args.out, layer_zip=args.layer_zip, build_layer=args.build_layer,
                    stub_layer=args.stub_layer, region=args.region)
    except (PackagingError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{pkg.template}\n{pkg.function_zip}\n{pkg.layer_zip}")
    if args.stub_layer:
        print("note: the layer is a stub; build the real one before deploying", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
