"""The functions' IAM policy, derived from the code so that it stays true (SPEC §7).

``chalicelib`` is read (not imported) with ``ast``: every AWS client it builds
(``aws_client("dynamodb")``, ``client_factory("secretsmanager")``) names a
service, and every attribute named like one of that service's operations
(``client.get_item``, ``_call(self.client.query, ...)``) is an operation it
calls. Each operation becomes the IAM action of the same name, scoped to this
stage's tables, signing-key secret and log groups. Nothing is granted on ``*``.

    python -m deploy.iam            # check .chalice/policy-<stage>.json is current
    python -m deploy.iam --write    # rewrite them after the code changed

Chalice embeds ``.chalice/policy-<stage>.json`` in every function's role
(``autogen_policy: false``); ``deploy.package`` refuses to package a stage whose
file differs from what the code needs.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from deploy.stages import PROJECT_DIR, Stage, load_stage, stage_names
from deploy.tables import has_indexes, table_name

CODE_DIR = PROJECT_DIR / "chalicelib"

# Helpers that create tables for the local runner and the tests. In AWS the
# template creates the tables, so the functions are not allowed to.
PROVISIONING_ONLY = frozenset({("storage/schema.py", "create_tables")})

# TransactWriteItems has no IAM action of its own: each entry is authorized as
# the item operation it performs (DynamoDB developer guide, "Using IAM with
# DynamoDB transactions"). Key of a TransactItems entry -> IAM action.
TRANSACT_WRITE_ENTRIES = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                          "ConditionCheck": "ConditionCheckItem"}
TRANSACT_GET_ENTRIES = {"Get": "GetItem"}

# Operations that may address a secondary index of a table.
INDEX_OPERATIONS = frozenset({"Query", "Scan"})

LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")

_ARN = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:%s"


@dataclass
class CodeUse:
    """What the code asks of AWS: service -> operation names (botocore spelling)."""

    operations: dict[str, set[str]] = field(default_factory=dict)
    dict_keys: set[str] = field(default_factory=set)


@cache
def _operation_names(service: str) -> dict[str, str]:
    """snake_case method name -> OperationName, from botocore's bundled models (offline)."""
    import botocore.session
    from botocore import xform_name

    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(op): op for op in model.operation_names}


@cache
def _service_names() -> frozenset[str]:
    import botocore.session

    return frozenset(botocore.session.get_session().get_available_services())


def _callee_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


class _Scanner(ast.NodeVisitor):
    def __init__(self, rel_path: str) -> None:
        self.rel_path = rel_path
        self.services: set[str] = set()
        self.attributes: set[str] = set()
        self.paginators: set[str] = set()
        self.dict_keys: set[str] = set()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if (self.rel_path, node.name) in PROVISIONING_ONLY:
            return
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Call(self, node: ast.Call) -> None:
        name = _callee_name(node)
        first = node.args[0] if node.args else None
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            if "client" in name and first.value in _service_names():
                self.services.add(first.value)
            if name == "get_paginator":
                self.paginators.add(first.value)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.attributes.add(node.attr)
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key in node.keys:
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                self.dict_keys.add(key.value)
        self.generic_visit(node)


def scan_sources(sources: Iterable[tuple[str, str]]) -> CodeUse:
    """Scan ``(relative path, source text)`` pairs; see the module docstring."""
    services: set[str] = set()
    names: set[str] = set()
    use = CodeUse()
    for rel_path, text in sources:
        scanner = _Scanner(rel_path)
        scanner.visit(ast.parse(text, filename=rel_path))
        services |= scanner.services
        names |= scanner.attributes | scanner.paginators
        use.dict_keys |= scanner.dict_keys
    for service in sorted(services):
        ops = _operation_names(service)
        use.operations[service] = {ops[n] for n in names if n in ops}
    owners: dict[str, list[str]] = {}
    for service, ops_used in use.operations.items():
        for op in ops_used:
            owners.setdefault(op, []).append(service)
    ambiguous = {op: s for op, s in owners.items() if len(s) > 1}
    if ambiguous:
        raise ValueError(f"operation names shared by several services, decide by hand: {ambiguous}")
    return use


def scan_code(code_dir: Path = CODE_DIR) -> CodeUse:
    return scan_sources((p.relative_to(code_dir).as_posix(), p.read_text())
                        for p in sorted(code_dir.rglob("*.py")))


def dynamodb_actions(operations: set[str], dict_keys: set[str]) -> list[str]:
    actions = set(operations) - {"TransactWriteItems", "TransactGetItems"}
    if "TransactWriteItems" in operations:
        actions |= {a for k, a in TRANSACT_WRITE_ENTRIES.items() if k in dict_keys}
    if "TransactGetItems" in operations:
        actions |= {a for k, a in TRANSACT_GET_ENTRIES.items() if k in dict_keys}
    return sorted(actions)


def _arn(service: str, resource: str) -> dict[str, str]:
    return {"Fn::Sub": _ARN % (service, resource)}


def _dynamodb_statements(stage: Stage, operations: set[str], dict_keys: set[str]) -> list[dict[str, Any]]:
    from chalicelib.storage.schema import TABLES

    actions = dynamodb_actions(operations, dict_keys)
    if not actions:
        return []
    statements: list[dict[str, Any]] = [{
        "Sid": "Tables",
        "Effect": "Allow",
        "Action": [f"dynamodb:{a}" for a in actions],
        "Resource": [_arn("dynamodb", f"table/{table_name(stage.table_prefix, kind)}") for kind in TABLES],
    }]
    on_index = sorted(INDEX_OPERATIONS & set(actions))
    indexed = [kind for kind in TABLES if has_indexes(kind)]
    if on_index and indexed:
        statements.append({
            "Sid": "TableIndexes",
            "Effect": "Allow",
            "Action": [f"dynamodb:{a}" for a in on_index],
            "Resource": [_arn("dynamodb", f"table/{table_name(stage.table_prefix, kind)}/index/*")
                         for kind in indexed],
        })
    return statements


def _secretsmanager_statements(stage: Stage, operations: set[str],
                               dict_keys: set[str]) -> list[dict[str, Any]]:
    if not operations:
        return []
    # The code creates the secret on first use. Once it exists, requests are
    # authorized against its ARN, the name plus "-" and six random characters
    # ("-*"). Before that, GetSecretValue by name is authorized against the bare
    # name; allowing it there makes the first read answer ResourceNotFound (which
    # the key store turns into "create the key set") instead of AccessDenied.
    return [{
        "Sid": "SigningKeys",
        "Effect": "Allow",
        "Action": [f"secretsmanager:{a}" for a in sorted(operations)],
        "Resource": [_arn("secretsmanager", f"secret:{stage.keys_secret}"),
                     _arn("secretsmanager", f"secret:{stage.keys_secret}-*")],
    }]


# Service -> how its operations are scoped. A service the code starts using
# without a rule here stops the build rather than being granted on "*".
_RULES = {
    "dynamodb": _dynamodb_statements,
    "secretsmanager": _secretsmanager_statements,
}


def policy_document(stage: Stage, use: CodeUse | None = None) -> dict[str, Any]:
    """The policy every function role of ``stage`` gets."""
    use = scan_code(stage.project_dir / "chalicelib") if use is None else use
    unknown = sorted(set(use.operations) - set(_RULES))
    if unknown:
        raise ValueError(f"the code uses {unknown}: add a resource rule to deploy/iam.py")
    statements: list[dict[str, Any]] = []
    for service in sorted(use.operations):
        statements += _RULES[service](stage, use.operations[service], use.dict_keys)
    # Log groups are created by the template (log_retention_in_days), so the
    # functions only write streams and events into their own stage's groups.
    statements.append({
        "Sid": "FunctionLogs",
        "Effect": "Allow",
        "Action": list(LOG_ACTIONS),
        "Resource": [_arn("logs", f"log-group:/aws/lambda/{stage.function_prefix}:*"),
                     _arn("logs", f"log-group:/aws/lambda/{stage.function_prefix}-*:*")],
    })
    return {"Version": "2012-10-17", "Statement": statements}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.iam", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="rewrite stale policy files")
    parser.add_argument("--stage", action="append", help="only these stages (default: all)")
    args = parser.parse_args(argv)
    stale = []
    for name in args.stage or stage_names():
        stage = load_stage(name)
        wanted = render(policy_document(stage))
        current = stage.policy_file.read_text() if stage.policy_file.exists() else ""
        if current == wanted:
            continue
        if args.write:
            stage.policy_file.write_text(wanted)
            print(f"wrote {stage.policy_file.relative_to(PROJECT_DIR)}")
        else:
            stale.append(str(stage.policy_file.relative_to(PROJECT_DIR)))
    if stale:
        print(f"out of date (run python -m deploy.iam --write): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
