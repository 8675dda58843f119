"""Each function's IAM policy, derived from its code so that it stays true (SPEC §7).

``chalicelib`` is read (not imported) with ``ast``. A Lambda function of the app
(``entry_points``: the API handler, every ``@app.schedule``) reaches code: the
API handler is ``app.py`` without the other functions' bodies, a scheduled
function is its body; from there every imported ``chalicelib`` module counts,
except that of the composition root (``chalicelib/container.py``) only the
properties the code reads count, and the thin DynamoDB layer
(``storage/dynamo.py``, ``storage/tables.py``) counts only through the wrapper
functions called (``self.table.get`` -> ``get_item``). In that code every AWS
client built (``aws_client("dynamodb")``, ``client_factory("secretsmanager")``)
names a service, and every attribute named like one of its operations is an
operation called; tables are those named (``self.table("sessions")``, the keys
of a ``batch_get``). Each operation becomes the IAM action of the same name,
scoped to the function's tables, the stack's signing-key secret and KMS key, and
the function's own log group. Nothing is granted on ``*``.

    python -m deploy.iam            # check .chalice/policy-<stage>-<function>.json
    python -m deploy.iam --write    # rewrite them (and config entries) after the code changed

Chalice embeds ``.chalice/policy-<stage>-<function>.json`` in that function's
role (``lambda_functions.<function>.iam_policy_file``, ``autogen_policy: false``);
``deploy.package`` refuses to package a stage whose files differ from what the
code needs.
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

from deploy.stages import PROJECT_DIR, Stage, load_config, load_stage, stage_names
from deploy.tables import has_indexes, table_name

CODE_DIR = PROJECT_DIR / "chalicelib"

# Helpers that create tables and the signing-key secret for the local runner and
# the tests. In AWS the template creates both, so the functions are not allowed to.
PROVISIONING_ONLY = frozenset({("storage/schema.py", "create_tables"),
                               ("storage/keystore.py", "_create_secret_locally")})

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
    return scan_nodes((rel_path, ast.parse(text, filename=rel_path)) for rel_path, text in sources)


def scan_nodes(nodes: Iterable[tuple[str, ast.AST]]) -> CodeUse:
    """Scan ``(relative path or module, syntax tree)`` pairs."""
    services: set[str] = set()
    names: set[str] = set()
    use = CodeUse()
    for rel_path, tree in nodes:
        scanner = _Scanner(rel_path)
        scanner.visit(tree)
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


# --------------------------------------------------------------------------
# per function: what each function's code path reaches
# --------------------------------------------------------------------------

API_HANDLER = "api_handler"
CONTAINER_MODULE = "chalicelib.container"
# Defines every table (a dict keyed by their names) and uses none: not a table reference.
TABLE_DEFINITIONS = "chalicelib.storage.schema"
# The thin layer over the DynamoDB client: its functions are followed from their
# callers (``self.table.get`` -> ``Table.get`` -> ``get_item``) instead of counting
# every operation it wraps for every function that imports it.
WRAPPER_MODULES = ("chalicelib.storage.dynamo", "chalicelib.storage.tables")
# Wrapper names too common to count on any receiver (``dict.get``): counted only
# on an expression that names a table (``self.table.get``, ``table.update``).
_GENERIC = frozenset({"get", "put", "update", "delete", "query"})
# The Lambda service principal of each secret operation needs this of the
# secret's KMS key (Secrets Manager user guide, "Secret encryption and decryption").
SECRET_KMS_ACTIONS = {"GetSecretValue": ("kms:Decrypt",),
                      "PutSecretValue": ("kms:GenerateDataKey", "kms:Decrypt")}
# Template resources the policy names (deploy.package creates them).
SECRET_ID = "SigningKeysSecret"
SECRET_KEY_ID = "SigningKeysKey"
FAILURE_QUEUE_ID = "JobsFailureQueue"


@dataclass(frozen=True)
class EntryPoint:
    """A Lambda function of the app: Chalice's name and the code it starts in."""

    name: str
    nodes: tuple[ast.AST, ...]


def _module_file(project_dir: Path, module: str) -> Path | None:
    base = project_dir.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _decorator_call(dec: ast.expr) -> tuple[str, ast.Call] | None:
    if isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute) \
            and isinstance(dec.func.value, ast.Name) and dec.func.value.id == "app":
        return dec.func.attr, dec
    return None


_FUNCTION_DECORATORS = frozenset({"schedule", "lambda_function", "on_s3_event", "on_sns_message",
                                  "on_sqs_message", "on_cw_event", "on_dynamodb_record"})


def entry_points(project_dir: Path = PROJECT_DIR) -> dict[str, EntryPoint]:
    """Chalice function name -> its code: the API handler is ``app.py`` minus the
    other functions' bodies; every ``@app.schedule`` (and the like) is its body."""
    tree = ast.parse((project_dir / "app.py").read_text(), filename="app.py")
    api_nodes: list[ast.AST] = []
    out: dict[str, EntryPoint] = {}
    for node in tree.body:
        found = None
        if isinstance(node, ast.FunctionDef):
            for dec in node.decorator_list:
                call = _decorator_call(dec)
                if call and call[0] in _FUNCTION_DECORATORS:
                    found = call[1]
        if found is None or not isinstance(node, ast.FunctionDef):
            api_nodes.append(node)
            continue
        name = node.name
        for kw in found.keywords:
            if kw.arg == "name" and isinstance(kw.value, ast.Constant):
                name = str(kw.value.value)
        out[name] = EntryPoint(name, (node,))
    out[API_HANDLER] = EntryPoint(API_HANDLER, tuple(api_nodes))
    return out


def _imports(node: ast.AST, module: str) -> set[str]:
    """chalicelib modules imported anywhere under ``node`` (function-local imports too)."""
    out: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Import):
            out |= {a.name for a in sub.names if a.name.startswith("chalicelib")}
        elif isinstance(sub, ast.ImportFrom):
            base = sub.module or ""
            if sub.level:
                parts = module.split(".")
                base = ".".join(parts[: len(parts) - sub.level] + ([base] if base else []))
            if base.startswith("chalicelib"):
                out.add(base)
                out |= {f"{base}.{a.name}" for a in sub.names}
    return out


def _dynamic_imports(project: _Project, node: ast.AST) -> set[str]:
    """``importlib.import_module(f"chalicelib.grants.{name}")``: every module of that
    package may be imported (the grants are loaded by name, one per request)."""
    out: set[str] = set()
    for sub in ast.walk(node):
        if not (isinstance(sub, ast.Call) and _callee_name(sub) == "import_module" and sub.args):
            continue
        arg = sub.args[0]
        head = arg.value if isinstance(arg, ast.Constant) else (
            arg.values[0].value if isinstance(arg, ast.JoinedStr) and arg.values
            and isinstance(arg.values[0], ast.Constant) else None)
        if isinstance(head, str) and head.startswith("chalicelib."):
            if isinstance(arg, ast.Constant):
                out.add(head)
                continue
            package = head.rsplit(".", 1)[0]
            folder = project.project_dir.joinpath(*package.split("."))
            out |= {f"{package}.{p.stem}" for p in folder.glob("*.py") if p.stem != "__init__"}
    return out


class _Project:
    """The parsed modules of one project, and the container's properties."""

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = project_dir
        self._trees: dict[str, ast.Module | None] = {}
        container = self.tree(CONTAINER_MODULE)
        self.container_defs: dict[str, ast.FunctionDef] = {}
        self.container_top: list[ast.AST] = []
        for node in container.body if container else []:
            if isinstance(node, ast.ClassDef) and node.name == "Container":
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and item.name != "__init__":
                        self.container_defs[item.name] = item
                    elif isinstance(item, ast.FunctionDef):
                        self.container_top.append(item)
            elif not isinstance(node, ast.If):   # ``if TYPE_CHECKING:`` imports nothing at run time
                self.container_top.append(node)
        self.wrappers: dict[str, list[ast.FunctionDef]] = {}
        for module in WRAPPER_MODULES:
            tree = self.tree(module)
            for sub in ast.walk(tree) if tree else []:
                if isinstance(sub, ast.FunctionDef):
                    self.wrappers.setdefault(sub.name, []).append(sub)

    def tree(self, module: str) -> ast.Module | None:
        if module not in self._trees:
            path = _module_file(self.project_dir, module)
            self._trees[module] = ast.parse(path.read_text(), filename=str(path)) if path else None
        return self._trees[module]


def reached_code(project: _Project, entry: EntryPoint) -> list[tuple[str, ast.AST]]:
    """(module, node) pairs of the code ``entry`` may run: the modules it imports,
    transitively, and of the container only the properties it reads."""
    out: list[tuple[str, ast.AST]] = []
    seen_modules: set[str] = set()
    seen_defs: set[str] = set()
    work: list[tuple[str, ast.AST]] = [("app", n) for n in entry.nodes]
    while work:
        module, node = work.pop()
        out.append((module, node))
        for imported in sorted(_imports(node, module) | _dynamic_imports(project, node)):
            if imported in seen_modules or imported in WRAPPER_MODULES:
                continue
            seen_modules.add(imported)
            if imported == CONTAINER_MODULE:
                work += [(CONTAINER_MODULE, n) for n in project.container_top]
                continue
            tree = project.tree(imported)
            if tree is not None:
                work.append((imported, tree))
        for sub in ast.walk(node):
            if isinstance(sub, ast.Attribute) and sub.attr in project.container_defs \
                    and sub.attr not in seen_defs:
                seen_defs.add(sub.attr)
                work.append((CONTAINER_MODULE, project.container_defs[sub.attr]))
    return out


def _names_a_table(expr: ast.expr) -> bool:
    name = expr.attr if isinstance(expr, ast.Attribute) else expr.id if isinstance(expr, ast.Name) else ""
    return "table" in name.lower()


def _wrapper_calls(node: ast.AST, wrappers: dict[str, list[ast.FunctionDef]]) -> set[str]:
    names: set[str] = set()
    for sub in ast.walk(node):
        if not isinstance(sub, ast.Call):
            continue
        func = sub.func
        if isinstance(func, ast.Attribute) and func.attr in wrappers:
            if func.attr not in _GENERIC or _names_a_table(func.value):
                names.add(func.attr)
        elif isinstance(func, ast.Name) and func.id in wrappers and func.id not in _GENERIC:
            names.add(func.id)
    return names


def _wrapper_use(project: _Project, names: set[str]) -> tuple[set[str], set[str]]:
    """Operations and dict keys of the wrapper functions ``names``, through the
    wrapper functions they call in turn."""
    ops = _operation_names("dynamodb")
    operations: set[str] = set()
    keys: set[str] = set()
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for fn in project.wrappers.get(name, []):
            for sub in ast.walk(fn):
                if isinstance(sub, ast.Attribute) and sub.attr in ops:
                    operations.add(ops[sub.attr])
                elif isinstance(sub, ast.Dict):
                    keys |= {k.value for k in sub.keys
                             if isinstance(k, ast.Constant) and isinstance(k.value, str)}
            todo += sorted(_wrapper_calls(fn, project.wrappers) | {
                sub.attr for sub in ast.walk(fn)
                if isinstance(sub, ast.Attribute) and sub.attr in project.wrappers
                and sub.attr not in _GENERIC})
    return operations, keys


@dataclass
class FunctionUse(CodeUse):
    """What one function's code path asks of AWS, and which tables it names;
    ``table_actions``: table -> the DynamoDB actions its code may perform on it."""

    tables: set[str] = field(default_factory=set)
    table_actions: dict[str, set[str]] = field(default_factory=dict)


# --------------------------------------------------------------------------
# per table: which repository methods a function's code may run
# --------------------------------------------------------------------------

# Wrapper methods that read several tables at once: a function that calls them
# may read (BatchGetItem) each table it may read by key.
_BATCH_READ = "BatchGetItem"


def _repositories(project: _Project) -> dict[str, tuple[str, str]]:
    """Container property -> (repository class, table) for ``X(self.table("kind"), ...)``."""
    from chalicelib.storage.schema import TABLES

    out: dict[str, tuple[str, str]] = {}
    for prop, node in project.container_defs.items():
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.args:
                arg = sub.args[0]
                if isinstance(arg, ast.Call) and _callee_name(arg) == "table" and arg.args \
                        and isinstance(arg.args[0], ast.Constant) and arg.args[0].value in TABLES:
                    out[prop] = (sub.func.id, str(arg.args[0].value))
    return out


def _referenced(node: ast.AST) -> set[str]:
    """Names a piece of code may call or hand on: every name and attribute it mentions."""
    out: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            out.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            out.add(sub.attr)
        elif isinstance(sub, ast.alias):
            out.add(sub.name.rsplit(".", 1)[-1])   # ``import f as g``: g() runs f
    return out


def _roots(code: list[tuple[str, ast.AST]]) -> list[ast.AST]:
    """What runs without being called by name: the entry's own code, module-level
    statements, and decorated functions (routes, middleware, schedules)."""
    roots: list[ast.AST] = []
    for module, node in code:
        if module == "app" or not isinstance(node, ast.Module):
            roots.append(node)
            continue
        for stmt in node.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                if stmt.decorator_list:
                    roots.append(stmt)
            elif not isinstance(stmt, ast.ClassDef):
                roots.append(stmt)
    return roots


def _defs(project: _Project, code: list[tuple[str, ast.AST]]) -> tuple[
        dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]], dict[str, list[ast.ClassDef]]]:
    functions: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
    classes: dict[str, list[ast.ClassDef]] = {}
    # Not the wrapper modules: their functions count through the wrapper calls.
    trees = [n for m, n in code if isinstance(n, ast.Module) and m not in WRAPPER_MODULES]
    trees += [t for t in (project.tree(m) for m in _storage_modules(project)) if t is not None]
    for tree in trees:
        for sub in ast.walk(tree):
            if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef):
                functions.setdefault(sub.name, []).append(sub)
            elif isinstance(sub, ast.ClassDef):
                classes.setdefault(sub.name, []).append(sub)
    return functions, classes


def _storage_modules(project: _Project) -> list[str]:
    folder = project.project_dir / "chalicelib" / "storage"
    return [f"chalicelib.storage.{p.stem}" for p in sorted(folder.glob("*.py"))
            if p.stem != "__init__" and f"chalicelib.storage.{p.stem}" not in WRAPPER_MODULES]


def _module_names(project: _Project, code: list[tuple[str, ast.AST]]) -> dict[int, set[str]]:
    """id of every definition -> the names its module mentions (its imports included)."""
    out: dict[int, set[str]] = {}
    trees = [n for m, n in code if isinstance(n, ast.Module) and m not in WRAPPER_MODULES]
    trees += [t for t in (project.tree(m) for m in _storage_modules(project)) if t is not None]
    for tree in trees:
        names = _referenced(tree)
        for sub in ast.walk(tree):
            if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef):
                out[id(sub)] = names
    return out


def _reachable(project: _Project, code: list[tuple[str, ast.AST]]) -> list[ast.AST]:
    """The code a function may run: its roots and every function or method it names,
    by name, transitively (a name shared by several definitions reaches all of them:
    the approximation errs wide)."""
    functions, classes = _defs(project, code)
    roots = _roots(code)
    nodes: list[ast.AST] = list(roots)
    names: set[str] = set()
    todo = set().union(*(_referenced(r) for r in roots))
    while todo:
        name = todo.pop()
        if name in names:
            continue
        names.add(name)
        for fn in functions.get(name, []):
            nodes.append(fn)
            todo |= _referenced(fn) - names
        for cls in classes.get(name, []):
            # Construction and protocols run dunder methods without naming them.
            for item in cls.body:
                if isinstance(item, ast.FunctionDef) and item.name.startswith("__"):
                    nodes.append(item)
                    todo |= ({item.name} | _referenced(item)) - names
    return nodes


def _terminal(expr: ast.expr) -> str:
    """``c.clients`` -> ``clients``; ``repo`` -> ``repo``; anything else -> ``""``."""
    if isinstance(expr, ast.Attribute):
        return expr.attr
    if isinstance(expr, ast.Name):
        return expr.id
    return ""


def _repositories_named(name: str, aliases: dict[str, set[str]]) -> set[str]:
    """Repositories a receiver's name names: equal to, or (four letters at least) the
    start of, one of their names (``public`` -> ``publickeys``)."""
    if name in aliases:
        return aliases[name]
    if len(name) < 4:
        return set()
    return set().union(*(classes for alias, classes in aliases.items() if alias.startswith(name)))


def _normal(name: str) -> str:
    return name.lower().strip("_").removesuffix("_repo").removesuffix("repo").replace("_", "")


def _wrapper_actions(project: _Project, name: str) -> set[str]:
    """IAM actions of one wrapper method (``get`` -> GetItem, ``op_put`` -> PutItem)."""
    operations, keys = _wrapper_use(project, {name})
    actions = set(operations) - {"TransactWriteItems", "TransactGetItems"}
    actions |= {a for k, a in TRANSACT_WRITE_ENTRIES.items() if k in keys}
    return actions


def table_actions(project: _Project, code: list[tuple[str, ast.AST]],
                  batch_tables: set[str]) -> dict[str, set[str]]:
    """Table -> actions: the wrapper calls on a repository's table in the methods of it
    the path may call. A call ``x.clients.create()`` reaches ``ClientsRepo.create``
    only (the receiver names the repository: its container property, its table or
    its class); a receiver named otherwise (``self.repo``) reaches that method of
    every repository its module names."""
    repositories = _repositories(project)
    _, classes = _defs(project, code)
    read_props = {sub.attr for _, node in code for sub in ast.walk(node) if isinstance(sub, ast.Attribute)}
    bound = {cls: kind for prop, (cls, kind) in repositories.items() if prop in read_props}
    methods = {cls: {item.name: item for c in classes.get(cls, []) for item in c.body
                     if isinstance(item, ast.FunctionDef)} for cls in bound}
    aliases: dict[str, set[str]] = {}
    for prop, (cls, kind) in repositories.items():
        if cls in bound:
            for name in (prop, kind, cls):
                aliases.setdefault(_normal(name), set()).add(cls)
    nodes = _reachable(project, code)
    module_names = _module_names(project, code)
    included: set[tuple[str, str]] = set()
    for node in nodes:
        # A receiver of no known name may hold any repository its module names
        # (``repo: DevicesRepo``); code outside a module (app.py's), any at all.
        known = module_names.get(id(node))
        fallback = {cls for cls in bound if known is None or cls in known}
        by_name: dict[str, set[str]] = {}
        for sub in ast.walk(node):
            if not isinstance(sub, ast.Attribute):
                continue
            receiver = _terminal(sub.value)
            if receiver == "self":
                continue    # within a repository: followed below
            if receiver not in by_name:
                by_name[receiver] = _repositories_named(_normal(receiver), aliases) or fallback
            for cls in by_name[receiver]:
                if sub.attr in methods[cls]:
                    included.add((cls, sub.attr))
    included |= {(cls, name) for cls in bound for name in methods[cls] if name.startswith("__")}
    todo = list(included)
    while todo:
        cls, name = todo.pop()
        for sub in ast.walk(methods[cls][name]):
            if isinstance(sub, ast.Attribute) and _terminal(sub.value) == "self" \
                    and sub.attr in methods[cls] and (cls, sub.attr) not in included:
                included.add((cls, sub.attr))
                todo.append((cls, sub.attr))
    out: dict[str, set[str]] = {}
    for cls, name in included:
        for wrapper in _wrapper_calls(methods[cls][name], project.wrappers):
            out.setdefault(bound[cls], set()).update(_wrapper_actions(project, wrapper))
    if any(isinstance(sub, ast.Attribute) and sub.attr == "batch_get" for n in nodes for sub in ast.walk(n)):
        for kind in batch_tables:
            out.setdefault(kind, set()).add("GetItem")
        for actions in out.values():
            if "GetItem" in actions:
                actions.add(_BATCH_READ)
    return {k: v for k, v in out.items() if v}


def function_use(entry: EntryPoint, project_dir: Path = PROJECT_DIR,
                 project: _Project | None = None) -> FunctionUse:
    from chalicelib.storage.schema import TABLES

    project = project or _Project(project_dir)
    code = reached_code(project, entry)
    direct = scan_nodes((_rel_path(m), n) for m, n in code)
    use = FunctionUse(operations=direct.operations, dict_keys=direct.dict_keys)
    wrapper_ops, wrapper_keys = _wrapper_use(
        project, set().union(*(_wrapper_calls(n, project.wrappers) for _, n in code)))
    if wrapper_ops:
        use.operations.setdefault("dynamodb", set()).update(wrapper_ops)
        use.dict_keys |= wrapper_keys
    for module, node in code:
        if module == TABLE_DEFINITIONS:
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and _callee_name(sub) == "table" and sub.args \
                    and isinstance(sub.args[0], ast.Constant) and sub.args[0].value in TABLES:
                use.tables.add(str(sub.args[0].value))
            elif isinstance(sub, ast.Dict):
                use.tables |= {str(k.value) for k in sub.keys
                               if isinstance(k, ast.Constant) and k.value in TABLES}
    if use.operations.get("dynamodb") and not use.tables:
        raise ValueError(f"{entry.name}: DynamoDB calls but no table found on its code path")
    if use.operations.get("dynamodb"):
        batch_tables = {str(k.value) for _, node in code for sub in ast.walk(node)
                        if isinstance(sub, ast.Dict)
                        for k in sub.keys if isinstance(k, ast.Constant) and k.value in TABLES}
        use.table_actions = table_actions(project, code, batch_tables)
        # A client call outside the storage layer names no repository: it is granted
        # on every table the function names (the module-level rule, wide but never short).
        raw = _raw_dynamodb_actions(code)
        for kind in use.tables if raw else ():
            use.table_actions.setdefault(kind, set()).update(raw)
    return use


def _raw_dynamodb_actions(code: list[tuple[str, ast.AST]]) -> set[str]:
    """Actions of DynamoDB client calls (``client.scan(...)``) outside ``storage/``."""
    ops = _operation_names("dynamodb")
    names: set[str] = set()
    keys: set[str] = set()
    for module, node in code:
        if module.startswith("chalicelib.storage") or module == CONTAINER_MODULE:
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr in ops:
                names.add(ops[sub.func.attr])
            elif isinstance(sub, ast.Dict):
                keys |= {k.value for k in sub.keys
                         if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    return set(dynamodb_actions(names, keys))


def _rel_path(module: str) -> str:
    """``chalicelib.storage.schema`` -> ``storage/schema.py`` (PROVISIONING_ONLY's spelling)."""
    return module.removeprefix("chalicelib.").replace(".", "/") + ".py"


def function_name(stage: Stage, function: str) -> str:
    """Chalice's name: ``<app>-<stage>`` for the API handler, else ``<app>-<stage>-<name>``."""
    return stage.function_prefix if function == API_HANDLER else f"{stage.function_prefix}-{function}"


def policy_file_name(stage: Stage, function: str) -> str:
    return f"policy-{stage.name}-{function.replace('_', '-')}.json"


def _dynamodb_statements(stage: Stage, use: FunctionUse) -> list[dict[str, Any]]:
    from chalicelib.storage.schema import TABLES

    if not dynamodb_actions(use.operations.get("dynamodb", set()), use.dict_keys):
        return []
    # One statement per set of actions, naming the tables that get exactly those
    # (least privilege per table and action: the API cannot write a table it only reads).
    by_actions: dict[tuple[str, ...], list[str]] = {}
    for kind in TABLES:
        actions = tuple(sorted(use.table_actions.get(kind, ())))
        if actions:
            by_actions.setdefault(actions, []).append(kind)
    statements: list[dict[str, Any]] = []
    for actions, kinds in sorted(by_actions.items(), key=lambda item: list(TABLES).index(item[1][0])):
        resources = [_arn("dynamodb", f"table/{table_name(stage.table_prefix, kind)}") for kind in kinds]
        on_index = sorted(INDEX_OPERATIONS & set(actions))
        resources += [_arn("dynamodb", f"table/{table_name(stage.table_prefix, kind)}/index/*")
                      for kind in kinds if on_index and has_indexes(kind)]
        statements.append({
            "Sid": "Tables" + "".join(k.replace("_", " ").title().replace(" ", "") for k in kinds)[:100],
            "Effect": "Allow",
            "Action": [f"dynamodb:{a}" for a in actions],
            "Resource": resources,
        })
    return statements


def _secretsmanager_statements(stage: Stage, use: FunctionUse) -> list[dict[str, Any]]:
    operations = use.operations.get("secretsmanager", set())
    if not operations:
        return []
    unsupported = sorted(operations - set(SECRET_KMS_ACTIONS))
    if unsupported:
        # The secret is a stack resource: the functions read and update it only.
        raise ValueError(f"the code calls secretsmanager {unsupported}: the stack owns the secret")
    kms = sorted({a for op in operations for a in SECRET_KMS_ACTIONS[op]})
    return [{
        "Sid": "SigningKeys",
        "Effect": "Allow",
        "Action": [f"secretsmanager:{a}" for a in sorted(operations)],
        # The secret's ARN: its name, "-" and six random characters.
        "Resource": {"Ref": SECRET_ID},
    }, {
        "Sid": "SigningKeysKey",
        "Effect": "Allow",
        "Action": kms,
        "Resource": {"Fn::GetAtt": [SECRET_KEY_ID, "Arn"]},
        "Condition": {"StringEquals": {
            "kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.${AWS::URLSuffix}"}}},
    }]


def _sesv2_statements(stage: Stage, use: FunctionUse) -> list[dict[str, Any]]:
    """Mail (SPEC §11): SendEmail from the stage's verified identity only (its ARN:
    the domain or address of ``TESSERA_MAIL_FROM``, the stack's ``MailIdentity``)."""
    operations = use.operations.get("sesv2", set())
    if not operations:
        return []
    unsupported = sorted(operations - {"SendEmail"})
    if unsupported:
        raise ValueError(f"the code calls sesv2 {unsupported}: only SendEmail is granted")
    return [{
        "Sid": "Mail",
        "Effect": "Allow",
        "Action": ["ses:SendEmail", "ses:SendRawEmail"],
        "Resource": [_arn("ses", "identity/*")],
        "Condition": {"StringEquals": {"ses:FromAddress": {"Ref": "MailFrom"}}},
    }]


# Service -> how its operations are scoped. A service the code starts using
# without a rule here stops the build rather than being granted on "*".
_RULES = {
    "dynamodb": _dynamodb_statements,
    "secretsmanager": _secretsmanager_statements,
    "sesv2": _sesv2_statements,
}


def policy_document(stage: Stage, function: str = API_HANDLER,
                    use: FunctionUse | None = None) -> dict[str, Any]:
    """The policy of ``function``'s role in ``stage``: the calls its code path makes."""
    if use is None:
        entries = entry_points(stage.project_dir)
        if function not in entries:
            raise ValueError(f"app.py defines no Lambda function {function!r}")
        use = function_use(entries[function], stage.project_dir)
    unknown = sorted(set(use.operations) - set(_RULES))
    if unknown:
        raise ValueError(f"the code uses {unknown}: add a resource rule to deploy/iam.py")
    statements: list[dict[str, Any]] = []
    for service in sorted(use.operations):
        statements += _RULES[service](stage, use)
    if function != API_HANDLER:
        # Lambda sends a failed asynchronous (scheduled) invocation to the
        # stack's failure queue with the function's own role.
        statements.append({
            "Sid": "FailureQueue",
            "Effect": "Allow",
            "Action": ["sqs:SendMessage"],
            "Resource": {"Fn::GetAtt": [FAILURE_QUEUE_ID, "Arn"]},
        })
    # The template creates the log group; the function only writes into its own.
    statements.append({
        "Sid": "FunctionLogs",
        "Effect": "Allow",
        "Action": list(LOG_ACTIONS),
        "Resource": _arn("logs", f"log-group:/aws/lambda/{function_name(stage, function)}:*"),
    })
    return {"Version": "2012-10-17", "Statement": statements}


def policy_documents(stage: Stage) -> dict[str, dict[str, Any]]:
    """Function -> policy, for every Lambda function of the app."""
    project = _Project(stage.project_dir)
    return {name: policy_document(stage, name, function_use(entry, stage.project_dir, project))
            for name, entry in sorted(entry_points(stage.project_dir).items())}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def _config_entries(project_dir: Path, stage: Stage) -> dict[str, str]:
    """Function -> the policy file .chalice/config.json gives it in ``stage``."""
    functions = load_config(project_dir)["stages"][stage.name].get("lambda_functions", {})
    return {fn: cfg.get("iam_policy_file", "") for fn, cfg in functions.items()}


def stale_files(stage: Stage, *, write: bool = False) -> list[str]:
    """The policy files (and config entries) of ``stage`` that differ from the code;
    with ``write``, brings them up to date and removes files of gone functions."""
    project_dir = stage.project_dir
    chalice_dir = project_dir / ".chalice"
    documents = policy_documents(stage)
    stale: list[str] = []
    wanted_entries = {fn: policy_file_name(stage, fn) for fn in documents}
    if _config_entries(project_dir, stage) != wanted_entries:
        stale.append(f".chalice/config.json (stages.{stage.name}.lambda_functions)")
        if write:
            config = load_config(project_dir)
            functions = config["stages"][stage.name].setdefault("lambda_functions", {})
            for fn in list(functions):
                functions[fn].pop("iam_policy_file", None)
                if fn not in documents and not functions[fn]:
                    del functions[fn]
            for fn, file_name in sorted(wanted_entries.items()):
                functions.setdefault(fn, {})["iam_policy_file"] = file_name
            (chalice_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for fn, document in documents.items():
        path = chalice_dir / wanted_entries[fn]
        text = render(document)
        if not path.exists() or path.read_text() != text:
            stale.append(f".chalice/{path.name}")
            if write:
                path.write_text(text)
    for path in sorted(chalice_dir.glob(f"policy-{stage.name}*.json")):
        if path.name not in wanted_entries.values():
            stale.append(f".chalice/{path.name} (no such function)")
            if write:
                path.unlink()
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.iam", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="rewrite stale policy files")
    parser.add_argument("--stage", action="append", help="only these stages (default: all)")
    args = parser.parse_args(argv)
    stale = []
    for name in args.stage or stage_names():
        changed = stale_files(load_stage(name), write=args.write)
        if args.write:
            for item in changed:
                print(f"wrote {item}")
        stale += changed
    if stale and not args.write:
        print(f"out of date (run python -m deploy.iam --write): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
