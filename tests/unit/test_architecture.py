"""The shape of ``chalicelib`` (STYLE "A layout that shows the architecture").

Dependencies point one way, so the imports of ``chalicelib`` form no cycle, and
the container is the composition root: only the entry points (``routes/``, the
SnapStart hooks, and callers outside the package: app.py, devserver.py, the
operator's ``tessera_admin``) import it; services, grants, storage, jobs and pages get their
collaborators in their constructors. Every import counts, at module level or in
a function, type-only or not: a lazy import still says who knows whom.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "chalicelib"
CONTAINER = "chalicelib.container"
# Entry points: they choose the collaborators (app.py, devserver.py are outside the package).
MAY_USE_CONTAINER = ("chalicelib.routes", "chalicelib.snapstart")
# The operator's tools (issue 23): a caller of chalicelib from outside, as app.py is.
ADMIN = ROOT / "tessera_admin"


def module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The chalicelib modules ``path`` imports (``from pkg import mod`` names the module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m in known and m != name}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    files = {module_name(p, package): p for p in package.rglob("*.py")}
    return {name: imports_of(path, name, set(files)) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_chalicelib_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_only_entry_points_import_the_container():
    users = sorted(name for name, deps in import_graph().items()
                   if CONTAINER in deps and not name.startswith(MAY_USE_CONTAINER))
    assert users == []


# STYLE: routes -> grants/services -> storage; errors and config at the bottom.
BELOW_ROUTES = ("chalicelib.services", "chalicelib.grants", "chalicelib.storage", "chalicelib.jobs",
                "chalicelib.security")
EDGE = ("chalicelib.routes", "chalicelib.web", "chalicelib.http", CONTAINER)


def test_dependencies_point_one_way():
    graph = import_graph()
    upward = sorted(
        (name, dep) for name, deps in graph.items() for dep in deps
        if (name.startswith(BELOW_ROUTES) and dep.startswith(EDGE))
        or (name.startswith("chalicelib.services") and dep.startswith("chalicelib.grants"))
        or (name.startswith("chalicelib.storage")
            and dep.startswith(("chalicelib.services", "chalicelib.grants"))))
    assert upward == []


def all_imports(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports, of any package."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_chalicelib_never_imports_the_operator_tools():
    """What serves requests never needs the admin command or the seed loader (they
    stay out of the function package)."""
    assert sorted((module_name(p, PACKAGE), m) for p in PACKAGE.rglob("*.py")
                  for m in all_imports(p) if m.split(".")[0] == "tessera_admin") == []


def test_the_operator_tools_call_chalicelib_as_any_caller_does():
    """tessera_admin uses the container, services and storage; never a route or a page."""
    used = {m for p in ADMIN.rglob("*.py") for m in all_imports(p) if m.startswith("chalicelib")}
    assert CONTAINER in used      # the walk sees the imports
    assert sorted(m for m in used
                  if m.startswith(("chalicelib.routes", "chalicelib.web", "chalicelib.http"))) == []
    assert not (PACKAGE / "admin.py").exists() and not (PACKAGE / "seed.py").exists()


def test_the_walk_sees_cycles_and_container_imports(tmp_path):
    """The two rules above would pass on a walk that finds nothing: check it finds both."""
    pkg = tmp_path / "chalicelib"
    (pkg / "services").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "container.py").write_text("def build():\n    from chalicelib.services import a\n")
    (pkg / "services" / "__init__.py").write_text("")
    (pkg / "services" / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from chalicelib.container import X\n")
    (pkg / "services" / "b.py").write_text("from . import a\n")
    graph = import_graph(pkg)
    assert graph["chalicelib.services.b"] == {"chalicelib.services", "chalicelib.services.a"}
    assert cycles(graph) == [["chalicelib.container", "chalicelib.services.a"]]


def test_container_properties_are_typed():
    """mypy checks the wiring only if every property names what it builds."""
    tree = ast.parse((PACKAGE / "container.py").read_text(encoding="utf-8"))
    untyped = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Name) and d.id == "cached_property" for d in node.decorator_list):
            if node.returns is None or ast.unparse(node.returns) in ("Any", "typing.Any", "object"):
                untyped.append(node.name)
    assert untyped == []


def test_importing_the_app_builds_nothing_and_loads_no_refresh_machinery():
    """Cold start: the container imports a service when it is first used, so the
    first ``/v1/me`` does not pay for the refresh-token crypto or the grants."""
    code = ("import sys, app\n"
            "print(sorted(m for m in sys.modules if m in {'chalicelib.services.sessions',"
            " 'chalicelib.grants.password', 'chalicelib.grants.refresh_token'}))\n")
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


# Modules nothing in the package, app.py or devserver.py imports by name, on purpose:
# the grants (``grants.lookup`` imports them by grant type), the admin command (run
# as ``python -m``), and the packages whose modules are imported one by one.
NOT_IMPORTED_BY_NAME = ("chalicelib.grants.", "chalicelib.admin", "chalicelib.jobs")


def test_every_module_is_used():
    """Dead code goes: a module nothing imports is removed, not kept "for later"."""
    graph = import_graph()
    known = set(graph)
    used = set().union(*graph.values())
    for entry in ("app.py", "devserver.py"):
        used |= imports_of(ROOT / entry, Path(entry).stem, known)
    unused = sorted(m for m in known - used
                    if not m.startswith(NOT_IMPORTED_BY_NAME) and m != "chalicelib")
    assert unused == []


def test_the_routes_share_one_caller_and_one_content_types_constant():
    """Who calls the API is worked out once (``routes.caller_of``: the token, the
    issuer, the ``session`` parameter); the areas add only their scope rule. Every
    route's ``content_types`` is ``routes.ANY``."""
    repeated = []
    for path in sorted((PACKAGE / "routes").glob("*.py")):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "ANY" for t in node.targets):
                repeated.append(f"{path.name}: ANY")
            if isinstance(node, ast.Attribute) and node.attr == "authenticate" \
                    and isinstance(node.value, ast.Attribute) and node.value.attr == "principals":
                repeated.append(f"{path.name}: principals.authenticate")
    assert repeated == []
