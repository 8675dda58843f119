"""The deploy package: one ``chalice package`` output holds the whole stack (SPEC §7).

Everything here builds offline: Chalice gets an empty requirements set and the
layer is the stub (``layer-stub.zip``), so neither PyPI nor AWS is needed. The
template is built once per module for the real app, and once for a copy of the
app with one extra ``@app.schedule`` so the schedule path is exercised even
before the purge lands in app.py.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.app import ScheduledEventConfig

from chalicelayer import build as layer_build
from chalicelib.storage.schema import TABLES, TTL_ATTRIBUTE
from chalicelib.web import api_docs
from deploy import gateway, iam
from deploy.package import Package, PackagingError, build, find_runtime_python
from deploy.stages import PROJECT_DIR, load_stage, stage_names

PROBE_SCHEDULE = '''

from chalice import Rate as _ProbeRate


@app.schedule(_ProbeRate(15, unit=_ProbeRate.MINUTES), name="deploy_probe")
def deploy_probe(event: object) -> None:
    return None
'''


RUNTIME_PYTHON = find_runtime_python()


def _runtime_magic() -> bytes:
    """The byte code magic number of the functions' Python (3.12), from that Python."""
    if RUNTIME_PYTHON is None:
        return importlib.util.MAGIC_NUMBER
    done = subprocess.run([RUNTIME_PYTHON, "-c", "import importlib.util as u; print(u.MAGIC_NUMBER.hex())"],
                          capture_output=True, text=True, check=True, timeout=60)
    return bytes.fromhex(done.stdout.strip())


RUNTIME_MAGIC = _runtime_magic()


def test_a_prod_package_without_a_runtime_python_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PackagingError, match=r"Python 3\.12"):
        build("prod", tmp_path / "out", stub_layer=True, runtime_python=str(tmp_path / "no-python"))


def _copy_project(dst: Path) -> Path:
    dst.mkdir(parents=True)
    shutil.copy2(PROJECT_DIR / "app.py", dst / "app.py")
    shutil.copytree(PROJECT_DIR / "chalicelib", dst / "chalicelib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PROJECT_DIR / ".chalice", dst / ".chalice",
                    ignore=shutil.ignore_patterns("deployments", "venv"))
    # Swagger UI's files for /docs, as `make docs-deps` installs them.
    swagger = Path("docs/api/node_modules/swagger-ui-dist")
    (dst / swagger).mkdir(parents=True)
    for name in api_docs.VENDOR_FILES:
        shutil.copy2(PROJECT_DIR / swagger / name, dst / swagger / name)
    return dst


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Package:
    return build("dev", tmp_path_factory.mktemp("dev"), stub_layer=True)


@pytest.fixture(scope="module")
def template(dev: Package) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(dev.template.read_text())
    return data


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    project = _copy_project(tmp_path_factory.mktemp("probe") / "project")
    with (project / "app.py").open("a") as f:
        f.write(PROBE_SCHEDULE)
    # What a developer adding a scheduled function runs: its policy file and config entry.
    assert iam.stale_files(load_stage("dev", project), write=True)
    pkg = build("dev", project.parent / "out", stub_layer=True, project_dir=project)
    data: dict[str, Any] = json.loads(pkg.template.read_text())
    return data


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Package:
    return build("prod", tmp_path_factory.mktemp("prod"), stub_layer=True)


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return _of_type(template, "AWS::Serverless::Function")


def _statements(template: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for role in _of_type(template, "AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            yield from policy["PolicyDocument"]["Statement"]
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for res in _of_type(template, kind).values():
            yield from res["Properties"]["PolicyDocument"]["Statement"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_document(template: dict[str, Any], fn: dict[str, Any]) -> dict[str, Any]:
    role = template["Resources"][fn["Properties"]["Role"]["Fn::GetAtt"][0]]
    (policy,) = role["Properties"]["Policies"]
    doc: dict[str, Any] = policy["PolicyDocument"]
    return doc


# -- tables -----------------------------------------------------------------

def test_every_schema_table_is_in_the_stack_with_its_keys_indexes_and_ttl(template: dict[str, Any]) -> None:
    prefix = load_stage("dev").table_prefix
    by_name = {r["Properties"]["TableName"]: r for r in _of_type(template, "AWS::DynamoDB::Table").values()}
    assert set(by_name) == {prefix + kind for kind in TABLES}
    for kind, spec in TABLES.items():
        props = by_name[prefix + kind]["Properties"]
        assert props["KeySchema"] == spec["KeySchema"]
        assert props["AttributeDefinitions"] == spec["AttributeDefinitions"]
        assert props.get("GlobalSecondaryIndexes") == spec.get("GlobalSecondaryIndexes")
        assert props["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"]["SSEEnabled"] is True


def test_functions_find_the_tables_through_their_table_prefix(template: dict[str, Any]) -> None:
    names = {r["Properties"]["TableName"] for r in _of_type(template, "AWS::DynamoDB::Table").values()}
    for fn in _functions(template).values():
        prefix = fn["Properties"]["Environment"]["Variables"]["TESSERA_TABLE_PREFIX"]
        assert {prefix + kind for kind in TABLES} == names


def test_prod_gets_its_own_tables_and_secret(prod: Package) -> None:
    template = json.loads(prod.template.read_text())
    names = {r["Properties"]["TableName"] for r in _of_type(template, "AWS::DynamoDB::Table").values()}
    assert names == {f"tessera-prod-{kind}" for kind in TABLES}
    (secret,) = _of_type(template, "AWS::SecretsManager::Secret").values()
    assert secret["Properties"]["Name"] == "tessera-prod/signing-keys"
    assert "tessera-dev" not in json.dumps(list(_statements(template)))


def test_prod_turns_the_pat_query_parameter_off() -> None:
    assert load_stage("prod").environment["TESSERA_PAT_QUERY_PARAM"] == "false"
    assert load_stage("dev").environment["TESSERA_PAT_QUERY_PARAM"] == "true"


# -- schedules ----------------------------------------------------------------

def _schedule_events(template: dict[str, Any]) -> dict[str, str]:
    """Handler -> schedule expression of every SAM Schedule event."""
    out = {}
    for fn in _functions(template).values():
        for event in fn["Properties"].get("Events", {}).values():
            if event["Type"] == "Schedule":
                out[fn["Properties"]["Handler"]] = event["Properties"]["Schedule"]
    return out


def _expression(source: ScheduledEventConfig) -> str:
    expr = source.schedule_expression
    return expr if isinstance(expr, str) else expr.to_string()


def test_every_schedule_of_the_app_is_a_schedule_event(template: dict[str, Any]) -> None:
    # Computed from app.py, so it holds as schedules land; while app.py declares
    # none this checks that none appear, and the probe below covers the mechanism.
    from app import app

    wanted = {s.handler_string: _expression(s)
              for s in app.event_sources if isinstance(s, ScheduledEventConfig)}
    assert _schedule_events(template) == wanted


def test_a_scheduled_function_is_packaged_with_the_same_layer_its_own_policy_and_logs(
        probed: dict[str, Any]) -> None:
    assert _schedule_events(probed)["app.deploy_probe"] == "rate(15 minutes)"
    (fn,) = [f for f in _functions(probed).values() if f["Properties"]["Handler"] == "app.deploy_probe"]
    props = fn["Properties"]
    assert props["FunctionName"] == "tessera-dev-deploy_probe"
    assert {"Ref": "DependenciesLayer"} in props["Layers"]
    # The probe calls nothing: its role may only report a failure and write its logs.
    sids = [st["Sid"] for st in _role_document(probed, fn)["Statement"]]
    assert sids == ["FailureQueue", "FunctionLogs"]
    groups = {r["Properties"]["LogGroupName"] for r in _of_type(probed, "AWS::Logs::LogGroup").values()}
    assert "/aws/lambda/tessera-dev-deploy_probe" in groups


# -- IAM ------------------------------------------------------------------------

def _by_name(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Chalice function name -> the function, from its handler (app.<name>) or APIHandler."""
    return {("api_handler" if fid == "APIHandler" else fn["Properties"]["Handler"].split(".", 1)[1]): fn
            for fid, fn in _functions(template).items()}


def test_every_function_has_its_own_role_with_the_policy_derived_from_its_code(
        template: dict[str, Any]) -> None:
    stage = load_stage("dev")
    functions = _by_name(template)
    assert set(functions) == set(iam.entry_points())
    roles = {fn["Properties"]["Role"]["Fn::GetAtt"][0] for fn in functions.values()}
    assert len(roles) == len(functions)
    for name, fn in functions.items():
        assert _role_document(template, fn) == iam.policy_document(stage, name), name


def test_the_purge_cannot_touch_keys_users_clients_or_tokens(template: dict[str, Any]) -> None:
    purge = json.dumps(_role_document(template, _by_name(template)["purge_idle_sessions"]))
    assert "secretsmanager:" not in purge and "kms:" not in purge
    assert "table/tessera-dev-sessions" in purge
    for other in ("users", "clients", "tokens", "throttle", "devices", "roles", "keys"):
        assert f"table/tessera-dev-{other}" not in purge
    # The rotation publishes the public keys (``storage/public_keys.py``): of the
    # tables, it reaches that one only, and only to read and write its one item.
    rotate = _role_document(template, _by_name(template)["rotate_signing_keys"])
    tables = [st for st in rotate["Statement"]
              if any(a.startswith("dynamodb:") for a in st["Action"])]
    assert tables and all("table/tessera-dev-keys" in json.dumps(st["Resource"]) for st in tables)
    assert "table/tessera-dev-sessions" not in json.dumps(rotate)
    assert {a for st in tables for a in st["Action"]} <= {"dynamodb:GetItem", "dynamodb:PutItem"}


def test_no_iam_statement_grants_a_wildcard_action_or_resource(
        template: dict[str, Any], probed: dict[str, Any]) -> None:
    for tpl in (template, probed):
        for fn in _functions(tpl).values():
            for st in _role_document(tpl, fn)["Statement"]:
                for action in _as_list(st["Action"]):
                    assert "*" not in action and "?" not in action, action
                for resource in _as_list(st["Resource"]):
                    assert resource != "*"


def _sub_strings(values: list[Any]) -> list[str]:
    return [v["Fn::Sub"] if isinstance(v, dict) else v for v in values]


def test_dynamodb_is_granted_only_on_our_tables_and_their_indexes(template: dict[str, Any]) -> None:
    names = {r["Properties"]["TableName"] for r in _of_type(template, "AWS::DynamoDB::Table").values()}
    arn = re.compile(r"^arn:\$\{AWS::Partition\}:dynamodb:\$\{AWS::Region\}:\$\{AWS::AccountId\}"
                     r":table/([A-Za-z0-9_.-]+)(/index/\*)?$")
    seen = 0
    for st in _statements(template):
        if not any(a.startswith("dynamodb:") for a in _as_list(st["Action"])):
            continue
        assert all(a.startswith("dynamodb:") for a in _as_list(st["Action"]))
        for resource in _sub_strings(_as_list(st["Resource"])):
            match = arn.match(resource)
            assert match and match.group(1) in names, resource
            seen += 1
    assert seen


def _granted_per_table(document: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for st in document["Statement"]:
        for value in _as_list(st["Resource"]):
            resource = value.get("Fn::Sub", "") if isinstance(value, dict) else value
            if ":table/" in resource and "/index/" not in resource:
                table = resource.rsplit(":table/", 1)[1]
                out.setdefault(table, set()).update(a for a in _as_list(st["Action"]) if a.startswith("dynamodb:"))
    return out


def test_dynamodb_actions_are_exactly_what_each_functions_code_calls_on_each_table(
        template: dict[str, Any]) -> None:
    granted_any: set[str] = set()
    prefix = load_stage("dev").table_prefix
    for name, fn in _by_name(template).items():
        use = iam.function_use(iam.entry_points()[name])
        wanted = {prefix + kind: {f"dynamodb:{a}" for a in actions} for kind, actions in use.table_actions.items()}
        granted = _granted_per_table(_role_document(template, fn))
        assert granted == wanted, name
        granted_any |= set().union(*granted.values()) if granted else set()
        # Per table, never more than the function's code calls at all.
        every = {f"dynamodb:{a}" for a in iam.dynamodb_actions(use.operations.get("dynamodb", set()),
                                                                use.dict_keys)} | {"dynamodb:BatchGetItem"}
        assert set().union(*granted.values()) <= every if granted else True, name
    # The storage layer reads by key; a scanner that found nothing would pass the
    # equality above vacuously.
    assert "dynamodb:GetItem" in granted_any and "dynamodb:Scan" not in granted_any


def test_the_api_reads_clients_but_cannot_write_them(template: dict[str, Any]) -> None:
    """Least privilege per table (issue 26): clients are registered by the operator's
    admin command, never by the API; the purge only reads and deletes sessions."""
    api = _granted_per_table(_role_document(template, _by_name(template)["api_handler"]))
    assert "dynamodb:GetItem" in api["tessera-dev-clients"]
    assert api["tessera-dev-clients"] & {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} == set()
    assert "dynamodb:PutItem" in api["tessera-dev-sessions"]
    purge = _granted_per_table(_role_document(template, _by_name(template)["purge_idle_sessions"]))
    assert purge == {"tessera-dev-sessions": {"dynamodb:Query", "dynamodb:GetItem", "dynamodb:DeleteItem"}}


def test_signing_keys_are_reachable_only_through_the_stacks_secret(template: dict[str, Any]) -> None:
    found = {name: [s for s in _role_document(template, fn)["Statement"]
                    if any(a.startswith(("secretsmanager:", "kms:")) for a in _as_list(s["Action"]))]
             for name, fn in _by_name(template).items()}
    assert found["purge_idle_sessions"] == []
    for name in ("api_handler", "rotate_signing_keys"):
        secret, key = found[name]
        # Read and update: the stack creates the secret, the functions never do.
        assert set(secret["Action"]) == {"secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"}
        assert secret["Resource"] == {"Ref": "SigningKeysSecret"}
        assert key["Resource"] == {"Fn::GetAtt": ["SigningKeysKey", "Arn"]}
        assert "kms:ViaService" in key["Condition"]["StringEquals"]
    (res,) = _of_type(template, "AWS::SecretsManager::Secret").values()
    assert "SecretString" not in res["Properties"] and "GenerateSecretString" not in res["Properties"]
    assert res["Properties"]["KmsKeyId"] == {"Ref": "SigningKeysKey"}


def test_policy_files_are_what_the_code_needs() -> None:
    for name in stage_names():
        assert iam.stale_files(load_stage(name)) == [], "run python -m deploy.iam --write"


def test_packaging_stops_when_a_function_calls_something_its_policy_lacks(tmp_path: Path) -> None:
    project = _copy_project(tmp_path / "project")
    purge = project / "chalicelib" / "jobs" / "purge.py"
    purge.write_text(purge.read_text() + "\n\ndef sweep(client):\n    return client.scan(TableName='x')\n")
    with pytest.raises(PackagingError, match=r"deploy\.iam --write"):
        build("dev", tmp_path / "out", stub_layer=True, project_dir=project)
    documents = iam.policy_documents(load_stage("dev", project))
    assert "dynamodb:Scan" in json.dumps(documents["purge_idle_sessions"])
    # Only the function whose code path has the call gets it.
    assert "dynamodb:Scan" not in json.dumps(documents["rotate_signing_keys"])


def test_packaging_stops_when_a_policy_allows_a_call_no_code_makes(tmp_path: Path) -> None:
    project = _copy_project(tmp_path / "project")
    path = project / ".chalice" / "policy-dev-rotate-signing-keys.json"
    document = json.loads(path.read_text())
    document["Statement"][0]["Action"].append("secretsmanager:DeleteSecret")
    path.write_text(json.dumps(document, indent=2) + "\n")
    with pytest.raises(PackagingError, match=r"deploy\.iam --write"):
        build("dev", tmp_path / "out", stub_layer=True, project_dir=project)


def test_a_call_reached_only_by_the_api_does_not_widen_the_jobs(tmp_path: Path) -> None:
    project = _copy_project(tmp_path / "project")
    route = project / "chalicelib" / "routes" / "account.py"
    route.write_text(route.read_text() + "\n\ndef _sweep(client):\n    return client.scan(TableName='x')\n")
    documents = iam.policy_documents(load_stage("dev", project))
    assert "dynamodb:Scan" in json.dumps(documents["api_handler"])
    assert "dynamodb:Scan" not in json.dumps(documents["purge_idle_sessions"])


def test_scanner_maps_calls_to_actions_and_skips_table_provisioning() -> None:
    source = (
        "def handler(c):\n"
        "    c = aws_client('dynamodb')\n"
        "    c.get_item(TableName='t')\n"
        "    c.transact_write_items(TransactItems=[{'ConditionCheck': {}}, {'Put': {}}])\n"
        "def create_tables(client):\n"
        "    client.create_table(TableName='t')\n"
    )
    use = iam.scan_sources([("storage/schema.py", source)])
    assert iam.dynamodb_actions(use.operations["dynamodb"], use.dict_keys) == [
        "ConditionCheckItem", "GetItem", "PutItem"]


def test_a_service_without_a_resource_rule_stops_the_policy() -> None:
    scanned = iam.scan_sources([("x.py", "s = aws_client('kms')\ns.decrypt(CiphertextBlob=b'')\n")])
    use = iam.FunctionUse(operations=scanned.operations, dict_keys=scanned.dict_keys)
    with pytest.raises(ValueError, match="kms"):
        iam.policy_document(load_stage("dev"), "api_handler", use)


# -- API Gateway ------------------------------------------------------------------

def _render(body_template: str) -> dict[str, Any]:
    """What API Gateway sends: the template with its variables substituted."""
    data: dict[str, Any] = json.loads(body_template.replace("$context.error.messageString", '"message"'))
    return data


def test_unknown_routes_get_a_problem_json_404(template: dict[str, Any]) -> None:
    responses = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"][
        "x-amazon-apigateway-gateway-responses"]
    missing = responses["MISSING_AUTHENTICATION_TOKEN"]
    assert missing["statusCode"] == "404"
    assert missing["responseParameters"]["gatewayresponse.header.Content-Type"] == "'application/problem+json'"
    assert json.loads(missing["responseTemplates"]["application/json"]) == {
        "type": "about:blank", "title": "Not Found", "status": 404, "detail": "No such resource"}


def test_every_gateway_error_is_problem_json(template: dict[str, Any]) -> None:
    responses = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"][
        "x-amazon-apigateway-gateway-responses"]
    assert {"DEFAULT_4XX", "DEFAULT_5XX", "THROTTLED", "MISSING_AUTHENTICATION_TOKEN"} <= set(responses)
    assert responses["THROTTLED"]["statusCode"] == "429"
    for kind, response in responses.items():
        assert response["responseParameters"]["gatewayresponse.header.Content-Type"] == \
            f"'{gateway.PROBLEM}'", kind
        body = _render(response["responseTemplates"]["application/json"])
        assert body["type"] == "about:blank" and body["title"] and body["detail"], kind
        if "statusCode" in response:
            assert body["status"] == int(response["statusCode"]), kind
        else:
            assert "status" not in body, kind


# -- code and layer ----------------------------------------------------------------

def test_function_zip_holds_only_the_app_and_chalice_runtime(dev: Package) -> None:
    with zipfile.ZipFile(dev.function_zip) as zf:
        names = set(zf.namelist())
    # Every source file of chalicelib ships, the dashboard's CSS and JS included;
    # no dependency's site-packages do.
    app_files = {"app.py"} | {p.relative_to(PROJECT_DIR).as_posix()
                              for p in (PROJECT_DIR / "chalicelib").rglob("*")
                              if p.is_file() and "__pycache__" not in p.parts}
    # Swagger UI's files for GET /docs, copied from the npm package (issue 22).
    vendor = {f"chalicelib/web/vendor/swagger-ui/{name}" for name in api_docs.VENDOR_FILES}
    sources = app_files | vendor | {"chalice/__init__.py", "chalice/app.py"}
    assert {n for n in names if "__pycache__" not in n} == sources
    byte_code = {n for n in names if "__pycache__" in n}
    if RUNTIME_PYTHON is not None:
        # Byte code of the runtime's version for every module, whatever Python packages
        # (a python3.12 is found and used), so a cold start compiles nothing.
        assert {n for n in byte_code if not n.endswith(".cpython-312.pyc")} == set()
        assert {n.replace(".cpython-312.pyc", ".py").replace("__pycache__/", "") for n in byte_code} == \
            {n for n in sources if n.endswith(".py")}
    else:
        # No Python of the runtime's version here: dev ships source only (prod is refused).
        assert byte_code == set()


def test_the_function_zip_carries_no_operator_tool(dev: Package) -> None:
    """The admin command and the seed loader are the operator's (tessera_admin, issue 23):
    no function runs them, so no function package carries them."""
    with zipfile.ZipFile(dev.function_zip) as zf:
        modules = {n for n in zf.namelist() if n.endswith(".py")}
    assert "chalicelib/container.py" in modules and "app.py" in modules
    assert [n for n in modules if n.startswith("tessera_admin/")
            or Path(n).stem in ("admin", "seed", "cli")] == []


def test_the_function_zip_carries_swagger_ui_as_installed(dev: Package) -> None:
    """GET /docs serves the pinned swagger-ui-dist's files from the package itself."""
    installed = PROJECT_DIR / "docs" / "api" / "node_modules" / "swagger-ui-dist"
    with zipfile.ZipFile(dev.function_zip) as zf:
        for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
            assert zf.read(f"chalicelib/web/vendor/swagger-ui/{name}") == (installed / name).read_bytes()
        assert zf.read("chalicelib/web/static/docs-init.js")


def test_the_packaged_function_serves_docs_from_its_own_files(dev: Package, tmp_path: Path) -> None:
    """Unzipped where no npm package is installed, the code finds Swagger UI in the package."""
    with zipfile.ZipFile(dev.function_zip) as zf:
        zf.extractall(tmp_path / "task")
    probe = ("import json; from chalicelib.web import api_docs as d; "
             "print(json.dumps([str(d.vendor_dir()), [d.asset(n).content_type "
             "for n in ('swagger-ui-bundle.js', 'swagger-ui.css', 'docs-init.js')], "
             "'/docs/assets/swagger-ui-bundle.js?v=' in d.page()]))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path / "task", capture_output=True,
                          text=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "task")})
    assert done.returncode == 0, done.stderr[-2000:]
    found, types, linked = json.loads(done.stdout)
    assert found == str(tmp_path / "task" / "chalicelib" / "web" / "vendor" / "swagger-ui")
    assert types == ["text/javascript; charset=utf-8", "text/css; charset=utf-8",
                     "text/javascript; charset=utf-8"] and linked


def test_packaging_stops_without_swagger_ui(tmp_path: Path) -> None:
    project = _copy_project(tmp_path / "project")
    shutil.rmtree(project / "docs")
    with pytest.raises(PackagingError, match=r"make docs-deps"):
        build("dev", tmp_path / "out", stub_layer=True, project_dir=project)


# Run by the runtime's Python: the source hash is keyed by the interpreter's magic number.
_HASH_CHECK = (
    "import importlib.util as u, json, sys, zipfile\n"
    "z = zipfile.ZipFile(sys.argv[1])\n"
    "pycs = [n for n in z.namelist() if n.endswith('.pyc')]\n"
    "src = lambda n: z.read(n.replace('.cpython-312.pyc', '.py').replace('__pycache__/', ''))\n"
    "print(json.dumps([len(pycs), [n for n in pycs if z.read(n)[8:16] != u.source_hash(src(n))]]))\n")


def test_function_byte_code_is_hash_checked_and_matches_its_source(dev: Package) -> None:
    with zipfile.ZipFile(dev.function_zip) as zf:
        pycs = {name: zf.read(name) for name in zf.namelist() if name.endswith(".pyc")}
    for name, pyc in pycs.items():
        assert pyc[:4] == RUNTIME_MAGIC, name
        assert int.from_bytes(pyc[4:8], "little") == 0b01, name   # PEP 552 unchecked hash
    if RUNTIME_PYTHON is not None:
        done = subprocess.run([RUNTIME_PYTHON, "-c", _HASH_CHECK, str(dev.function_zip)], capture_output=True,
                              text=True, check=True, timeout=120)
        count, stale = json.loads(done.stdout)
        assert count == len(pycs) > 0 and stale == []


def test_functions_run_on_the_layer_built_for_their_runtime_and_architecture(
        dev: Package, template: dict[str, Any]) -> None:
    stage = load_stage("dev")
    (layer,) = _of_type(template, "AWS::Lambda::LayerVersion").values()
    assert layer["Properties"]["CompatibleRuntimes"] == [layer_build.RUNTIME]
    assert layer["Properties"]["CompatibleArchitectures"] == [stage.architecture]
    for fn in _functions(template).values():
        props = fn["Properties"]
        assert props["Layers"][0] == {"Ref": "DependenciesLayer"}
        assert props["Runtime"] == layer_build.RUNTIME
        assert props["Architectures"] == [stage.architecture]


def test_the_offline_build_names_its_layer_a_stub(dev: Package, template: dict[str, Any]) -> None:
    (layer,) = _of_type(template, "AWS::Lambda::LayerVersion").values()
    assert layer["Properties"]["Content"] == "./layer-stub.zip"
    assert dev.layer_zip.name == "layer-stub.zip"
    assert layer_build.read_manifest(dev.layer_zip)["stub"] is True


def test_a_layer_built_for_another_architecture_is_refused(tmp_path: Path) -> None:
    other = "x86_64" if load_stage("dev").architecture == "arm64" else "arm64"
    wrong = layer_build.build_stub_layer(tmp_path / "layer.zip", other)
    with pytest.raises(PackagingError, match="architecture"):
        build("dev", tmp_path / "out", layer_zip=wrong)


def test_layer_pins_the_same_versions_as_requirements() -> None:
    def pins(path: Path) -> dict[str, str]:
        out = {}
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                name, sep, version = line.partition("==")
                assert sep and version, f"{path.name}: {line} is not pinned"
                out[name.lower()] = version
        return out

    top = pins(PROJECT_DIR / "requirements.txt")
    layer = pins(layer_build.REQUIREMENTS)
    assert {name: layer.get(name) for name in top} == top


# -- settings and lint ---------------------------------------------------------------

def test_every_setting_is_set_for_every_stage() -> None:
    settings = set(re.findall(r"TESSERA_[A-Z_]+", (PROJECT_DIR / "chalicelib" / "config.py").read_text()))
    for name in stage_names():
        assert settings <= set(load_stage(name).environment), name


def test_templates_pass_cfn_lint(dev: Package, prod: Package, probed: dict[str, Any],
                                 tmp_path: Path) -> None:
    probed_file = tmp_path / "probed.json"
    probed_file.write_text(json.dumps(probed))
    exe = Path(sys.executable).parent / "cfn-lint"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "cfnlint"]
    done = subprocess.run([*cmd, "--", str(dev.template), str(prod.template), str(probed_file)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


# -- stage defaults ---------------------------------------------------------------------

def test_prod_defaults_turn_on_the_waf_and_reserve_concurrency(prod: Package, template: dict[str, Any]) -> None:
    prod_params = json.loads(prod.template.read_text())["Parameters"]
    dev_params = template["Parameters"]
    assert prod_params["WafRateLimit"]["Default"] > 0 and dev_params["WafRateLimit"]["Default"] == 0
    assert prod_params["ApiReservedConcurrency"]["Default"] > 0
    for fn in _functions(template).values():
        reserved = fn["Properties"]["ReservedConcurrentExecutions"]
        assert reserved["Fn::If"][0] in ("ReserveApi", "ReserveJobs")
        assert reserved["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    # A scheduled job never runs twice at once by default.
    assert dev_params["JobsReservedConcurrency"]["Default"] == 1


def test_throttling_is_sized_from_the_stages_design_peak(tmp_path: Path) -> None:
    """Issue 26: the token endpoint throttled everyone at 50/s against a design peak of
    3,000 refreshes per second. Its defaults come from TESSERA_PEAK_REFRESHES_PER_SECOND."""
    from deploy import stack

    assert stack.throttle_defaults(3000)["token_rate"] == 3750
    assert stack.throttle_defaults(3000)["token_burst"] == 5000
    assert stack.throttle_defaults(100_000)["token_rate"] == stack.ACCOUNT_RATE
    project = _copy_project(tmp_path / "project")
    config = json.loads((project / ".chalice" / "config.json").read_text())
    config["stages"]["dev"]["environment_variables"]["TESSERA_PEAK_REFRESHES_PER_SECOND"] = "800"
    (project / ".chalice" / "config.json").write_text(json.dumps(config))
    params = stack.parameters(load_stage("dev", project))
    assert params["TokenRateLimit"]["Default"] == 1000 and params["TokenBurstLimit"]["Default"] == 1600
    assert params["ApiRateLimit"]["Default"] == 800 and params["SensitiveRateLimit"]["Default"] == 80


def test_sam_adds_no_stage_named_stage(template: dict[str, Any]) -> None:
    (api,) = _of_type(template, "AWS::Serverless::Api").values()
    assert api["Properties"]["OpenApiVersion"].startswith("3.")
    assert api["Properties"]["StageName"] == "api"


def test_method_settings_name_only_methods_the_api_serves(template: dict[str, Any]) -> None:
    (api,) = _of_type(template, "AWS::Serverless::Api").values()
    paths = api["Properties"]["DefinitionBody"]["paths"]
    settings = api["Properties"]["MethodSettings"]
    assert settings[0]["ResourcePath"] == "/*"
    for setting in settings[1:]:
        path = setting["ResourcePath"][1:].replace("~1", "/")
        assert setting["HttpMethod"].lower() in paths[path], path
    assert ("/~1oauth~1token", "POST") in {(s["ResourcePath"], s["HttpMethod"]) for s in settings}
