"""Checks the package's layering: no import cycle, each layer imports only what it may, and
importing a core module loads neither Flask nor SQLAlchemy.

The layers (README "How the package is laid out"), by path under ``flask_sentry_api/``:

* core: ``errors``, ``config``, ``storage``, ``pagination``, ``search``, ``stats``, ``apidoc``,
  ``schemas``, ``ratelimits``, ``ingest/``. Imports only the core, the standard library,
  marshmallow, limits (``ratelimits``' counters) and brotli (``ingest/body.py``'s decoder).
* glue (layer 1): ``state``, ``http``, ``auth``, ``throttling``, ``csrf``, ``queue``,
  ``links``. Imports the core, the glue and Flask.
* views (layer 2): ``views/`` and ``openapi``. Never import the wiring; a view module never
  imports another view module except ``views.base`` (``views/__init__`` may re-export).
* dashboard (layer 2½): ``dashboard/``. Imports the core, the glue and the views (never
  the wiring); the wiring imports it.
* wiring (layer 3): ``__init__``, ``blueprint``, ``extension``, ``cli``. Imports anything;
  nothing outside the wiring imports it.
* storages: ``sqlalchemy_storage/``, ``models``, ``migrate``, ``migrations/``,
  ``memory_storage``, ``seed``, ``testing``. Import the core and the storages (and SQLAlchemy,
  Alembic, pytest), never the glue, the views, the wiring or Flask.

Membership comes from the path globs below, so a new file is covered without an edit here
(a file that matches none fails :func:`test_every_module_has_a_layer`). The same globs are in
``pyproject.toml``'s ruff ``per-file-ignores``, whose banned-api rule (TID251) reports a core
module importing Flask/SQLAlchemy in the editor already.

Every import counts: at module level and inside functions or classes (a function-level import
that only dodges a cycle is still a cycle); imports under ``if TYPE_CHECKING:`` do not. The
cycle rule is the one of the team's hook ``shared/hooks/import_cycles.py``: see
:func:`find_cycles`.

The first half of this file is the checker, the second half its own tests on small synthetic
packages, then the checks of the real package.
"""

from __future__ import annotations

import ast
import dataclasses
import fnmatch
import subprocess
import sys
import textwrap
from collections import deque
from collections.abc import Iterable
from collections.abc import Mapping
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "flask_sentry_api"

# Layers, as globs of paths relative to the package directory (fnmatch: ``*`` also matches
# ``/``). The first layer whose globs match a path is the module's layer. The entries after
# "before the move" are the modules as they are before the views/ and sqlalchemy_storage/
# packages exist; they can go once the move has landed.
LAYERS: dict[str, tuple[str, ...]] = {
    "core": (
        "errors.py",
        "config.py",
        "storage.py",
        "pagination.py",
        "search.py",
        "stats.py",
        "tokens.py",
        "apidoc.py",
        "schemas.py",
        "ratelimits.py",
        "signals.py",
        "ingest/*",
    ),
    "glue": ("state.py", "http.py", "auth.py", "throttling.py", "csrf.py", "queue.py", "links.py"),
    "views": (
        "views/*",
        "openapi.py",
        # before the move
        "views.py",
        "*_views.py",
        "openapi_view.py",
    ),
    # The optional dashboard (flask_sentry_api.dashboard): HTML pages over the same storage.
    "dashboard": ("dashboard/*",),
    "wiring": (
        "__init__.py",
        "blueprint.py",
        "extension.py",
        "cli.py",
        "pytest_plugin.py",
        "worker.py",
    ),
    "storages": (
        "sqlalchemy_storage/*",
        "models.py",
        "migrate.py",
        "migrations/*",
        "memory_storage.py",
        "seed.py",
        "testing.py",
        # before the move
        "sqlalchemy_storage.py",
    ),
}
# The layer-2 modules that are view modules (the sibling rule applies to them; openapi.py is
# layer 2 but builds the document from the views, so it may import them).
VIEW_MODULES = ("views/*", "views.py", "*_views.py", "openapi_view.py")
# Which layers' modules a layer may import (its own included unless said otherwise).
MAY_IMPORT: dict[str, frozenset[str]] = {
    "core": frozenset({"core"}),
    # Glue builds the default storage when the host names none.
    "glue": frozenset({"core", "glue", "storages"}),
    "views": frozenset({"core", "glue", "views"}),
    # The dashboard's pages reuse views.groups' resolve_reporting/send_resolved, so a
    # host's issue_resolved receivers hear of a resolve made in the dashboard too.
    "dashboard": frozenset({"core", "glue", "views", "dashboard"}),
    "wiring": frozenset(LAYERS),
    "storages": frozenset({"core", "storages"}),
}
# Third-party top-level packages a layer may import; None: any.
CORE_THIRD_PARTY = frozenset({"marshmallow", "brotli", "limits", "blinker"})
# Third-party packages the storages never import (the Flask side: the ruff ban exempts the
# storages because they use SQLAlchemy and Alembic, so this is checked here).
STORAGE_BANNED = frozenset({"flask", "werkzeug", "flask_httpauth", "flask_sqlalchemy"})
# What importing a core module must not load.
HEAVY = ("flask", "werkzeug", "sqlalchemy", "flask_sqlalchemy", "flask_httpauth", "alembic")


# --- the checker -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. "flask_sentry_api.ingest.body"; a package is named without __init__
    path: Path
    rel: str  # path relative to the package directory, with "/"
    is_package: bool  # an __init__.py


@dataclasses.dataclass
class Imports:
    """What one module imports: the package's modules, and other top-level packages."""

    internal: set[str] = dataclasses.field(default_factory=set)
    external: set[str] = dataclasses.field(default_factory=set)


def find_modules(package_dir: Path) -> dict[str, Module]:
    """Every ``.py`` file under ``package_dir``, by dotted module name."""
    modules: dict[str, Module] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        rel = path.relative_to(package_dir).as_posix()
        modules[name] = Module(name, path, rel, is_package)
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    # `if TYPE_CHECKING:`, `if t.TYPE_CHECKING:`, `if typing.TYPE_CHECKING:` (as the hook).
    return "TYPE_CHECKING" in ast.unparse(test)


def imported_names(tree: ast.Module, module: Module) -> set[str]:
    """The dotted names ``module`` imports, anywhere but under ``if TYPE_CHECKING:``.

    ``import a.b`` gives ``a.b``; ``from a import x`` gives ``a.x`` (``x`` may be a module or a
    name in ``a``); relative imports are resolved against ``module``.
    """
    base = module.name if module.is_package else module.name.rpartition(".")[0]
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.orelse:  # the `else:` of a TYPE_CHECKING test runs
                visit(statement)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                target = ".".join(parts + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names.update(f"{target}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def module_imports(modules: Mapping[str, Module]) -> dict[str, Imports]:
    """What each module imports; an internal import is the longest module name it starts with
    (``from . import x`` names module ``x`` when there is one, else the package).

    A submodule's implicit import of its parent packages (Python runs ``pkg/__init__`` before
    ``pkg.sub``) is not an edge, as in the hook.
    """
    roots = {name.partition(".")[0] for name in modules}
    result: dict[str, Imports] = {}
    for name, module in modules.items():
        tree = ast.parse(module.path.read_text(encoding="utf-8"), filename=str(module.path))
        imports = Imports()
        for target in imported_names(tree, module):
            top = target.partition(".")[0]
            if top not in roots:
                imports.external.add(top)
                continue
            parts = target.split(".")
            for end in range(len(parts), 0, -1):
                candidate = ".".join(parts[:end])
                if candidate in modules:
                    if candidate != name:
                        imports.internal.add(candidate)
                    break
        result[name] = imports
    return result


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Edges between the package's modules (module -> the modules it imports)."""
    return {
        name: imports.internal
        for name, imports in module_imports(find_modules(package_dir)).items()
    }


def _strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, pending = work[-1]
            if pending:
                child = pending.pop()
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, sorted(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def _shortest_cycle(
    graph: Mapping[str, Iterable[str]], component: set[str], start: str
) -> list[str]:
    """The shortest path start -> ... -> start inside ``component`` (breadth-first)."""
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node]):
            if child not in component:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    raise AssertionError(f"{start} is on no cycle")  # pragma: no cover - start is in an SCC


def cyclic_components(
    graph: Mapping[str, Iterable[str]], packages: Iterable[str]
) -> list[list[str]]:
    """The strongly connected components of ``graph`` that are import cycles.

    The rule of ``shared/hooks/import_cycles.py``: a component counts only when it holds at
    least two modules that are not a package ``__init__`` (``packages``). So a package's
    ``__init__`` re-exporting its children, and a child importing a name from its package's
    ``__init__``, is not by itself a cycle; two modules that reach each other, directly or
    through an ``__init__``, are.
    """
    package_set = set(packages)
    return [
        component
        for component in _strongly_connected(graph)
        if sum(name not in package_set for name in component) >= 2
    ]


def find_cycles(graph: Mapping[str, Iterable[str]], packages: Iterable[str]) -> list[list[str]]:
    """One cycle per component of :func:`cyclic_components`, as a path ``[a, b, ..., a]``: the
    shortest cycle through a module of the component that is not a package ``__init__``."""
    package_set = set(packages)
    cycles: list[list[str]] = []
    for component in cyclic_components(graph, package_set):
        members = set(component)
        candidates = [
            _shortest_cycle(graph, members, name) for name in component if name not in package_set
        ]
        cycles.append(min(candidates, key=lambda cycle: (len(cycle), cycle)))
    return cycles


def layer_of(rel: str, layers: Mapping[str, Iterable[str]] = LAYERS) -> str | None:
    for layer, patterns in layers.items():
        if any(fnmatch.fnmatchcase(rel, pattern) for pattern in patterns):
            return layer
    return None


def _is_view_module(module: Module) -> bool:
    return any(fnmatch.fnmatchcase(module.rel, pattern) for pattern in VIEW_MODULES)


def _may_import_view(importer: Module, target: Module, package: str) -> bool:
    """The sibling rule: a view module imports no other view module but ``views.base``."""
    if not (_is_view_module(importer) and _is_view_module(target)):
        return True
    if target.name == f"{package}.views.base":
        return True
    # Before the move, views.py is what views/base.py will be.
    if target.name == f"{package}.views" and not target.is_package:
        return True
    # views/__init__.py may re-export its own children.
    return importer.is_package and target.name.startswith(importer.name + ".")


def layer_violations(package_dir: Path) -> list[str]:
    """Every import that goes against the layer rules, as ``importer -> imported: why``."""
    package = package_dir.name
    modules = find_modules(package_dir)
    stdlib = sys.stdlib_module_names
    problems: list[str] = []
    for name, imports in sorted(module_imports(modules).items()):
        module = modules[name]
        layer = layer_of(module.rel)
        if layer is None:
            continue  # test_every_module_has_a_layer reports it
        for target_name in sorted(imports.internal):
            target = modules[target_name]
            target_layer = layer_of(target.rel)
            if target_layer is not None and target_layer not in MAY_IMPORT[layer]:
                problems.append(
                    f"{name} ({layer}) -> {target_name} ({target_layer}): "
                    f"{layer} may import only {', '.join(sorted(MAY_IMPORT[layer]))}"
                )
            elif not _may_import_view(module, target, package):
                problems.append(
                    f"{name} -> {target_name}: a view module imports no other view module "
                    "but views.base"
                )
        third_party = sorted(imports.external - stdlib - {"__future__"})
        if layer == "core":
            for top in third_party:
                if top not in CORE_THIRD_PARTY:
                    problems.append(
                        f"{name} (core) -> {top}: the core imports only the standard library "
                        f"and {', '.join(sorted(CORE_THIRD_PARTY))}"
                    )
        elif layer == "storages":
            for top in third_party:
                if top in STORAGE_BANNED:
                    problems.append(f"{name} (storages) -> {top}: a storage imports no Flask")
    return problems


def core_modules(package_dir: Path = PACKAGE_DIR) -> list[str]:
    return sorted(
        name for name, module in find_modules(package_dir).items() if layer_of(module.rel) == "core"
    )


def describe_cycles(package_dir: Path) -> str:
    """The import cycles of the package at ``package_dir``, one paragraph each ("" if none)."""
    modules = find_modules(package_dir)
    packages = {name for name, module in modules.items() if module.is_package}
    graph = import_graph(package_dir)
    paragraphs = []
    for cycle, component in zip(
        find_cycles(graph, packages), cyclic_components(graph, packages), strict=True
    ):
        paragraphs.append(
            "import cycle: "
            + " -> ".join(cycle)
            + f"\n  all {len(component)} modules tied in it: "
            + ", ".join(component)
        )
    return "\n".join(paragraphs)


# --- the checker's own tests, on synthetic packages --------------------------------------------


def make_package(root: Path, files: Mapping[str, str], name: str = "pkg") -> Path:
    """A package ``name`` under ``root`` with ``files`` (relative path -> source)."""
    package_dir = root / name
    for rel, source in {"__init__.py": "", **files}.items():
        path = package_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    return package_dir


def cycles_in(package_dir: Path) -> list[list[str]]:
    modules = find_modules(package_dir)
    packages = {name for name, module in modules.items() if module.is_package}
    return find_cycles(import_graph(package_dir), packages)


def test_no_cycle_in_a_layered_package(tmp_path: Path) -> None:
    package_dir = make_package(
        tmp_path,
        {
            "a.py": "from . import b\nimport os\n",
            "b.py": "from .c import VALUE\n",
            "c.py": "VALUE = 1\n",
        },
    )
    assert import_graph(package_dir) == {
        "pkg": set(),
        "pkg.a": {"pkg.b"},
        "pkg.b": {"pkg.c"},
        "pkg.c": set(),
    }
    assert cycles_in(package_dir) == []


def test_module_level_cycle(tmp_path: Path) -> None:
    package_dir = make_package(
        tmp_path,
        {
            "a.py": "from .b import B\nA = 1\n",
            "b.py": "from pkg.c import C\nB = 1\n",
            "c.py": "import pkg.a\nC = 1\n",
        },
    )
    assert cycles_in(package_dir) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]
    assert describe_cycles(package_dir) == (
        "import cycle: pkg.a -> pkg.b -> pkg.c -> pkg.a\n"
        "  all 3 modules tied in it: pkg.a, pkg.b, pkg.c"
    )


def test_function_level_import_is_still_a_cycle(tmp_path: Path) -> None:
    package_dir = make_package(
        tmp_path,
        {
            "a.py": "from .b import helper\n",
            "b.py": """
                def helper():
                    from .a import something  # dodges the cycle at import time only
                    return something

                class C:
                    def method(self):
                        if True:
                            try:
                                import pkg.a
                            except ImportError:
                                pass
            """,
        },
    )
    assert cycles_in(package_dir) == [["pkg.a", "pkg.b", "pkg.a"]]


def test_type_checking_imports_do_not_count(tmp_path: Path) -> None:
    package_dir = make_package(
        tmp_path,
        {
            "a.py": "from .b import B\n",
            "b.py": """
                import typing as t
                from typing import TYPE_CHECKING

                if TYPE_CHECKING:
                    from .a import A
                if t.TYPE_CHECKING:
                    import pkg.a
                else:  # runs: counts
                    from . import c
                B = 1
            """,
            "c.py": "",
        },
    )
    assert import_graph(package_dir)["pkg.b"] == {"pkg.c"}
    assert cycles_in(package_dir) == []


def test_init_reexporting_its_children_is_not_a_cycle(tmp_path: Path) -> None:
    package_dir = make_package(
        tmp_path,
        {
            "__init__.py": "from .a import A\nfrom .b import B\nVERSION = 1\n",
            "a.py": "from . import VERSION\nfrom .b import B\nA = 1\n",
            "b.py": "B = 1\n",
            "sub/__init__.py": "from .x import X\n",
            "sub/x.py": "from .. import VERSION\nX = 1\n",
        },
    )
    graph = import_graph(package_dir)
    assert graph["pkg"] == {"pkg.a", "pkg.b"}
    assert graph["pkg.a"] == {"pkg", "pkg.b"}  # `from . import VERSION` is a name of pkg
    assert graph["pkg.sub.x"] == {"pkg"}
    assert cycles_in(package_dir) == []


def test_cycle_through_a_package_init(tmp_path: Path) -> None:
    package_dir = make_package(
        tmp_path,
        {
            "a.py": "from .views import view\n",
            "views/__init__.py": "from .groups import view\n",
            "views/groups.py": "from ..a import helper\nview = 1\n",
        },
    )
    assert cycles_in(package_dir) == [["pkg.a", "pkg.views", "pkg.views.groups", "pkg.a"]]


def test_relative_imports_resolve(tmp_path: Path) -> None:
    package_dir = make_package(
        tmp_path,
        {
            "errors.py": "",
            "ingest/__init__.py": "from . import body\n",
            "ingest/body.py": "from ..errors import E\nfrom . import envelope\n",
            "ingest/envelope.py": "from .body import load\nfrom ... import outside\n",
        },
    )
    graph = import_graph(package_dir)
    assert graph["pkg.ingest"] == {"pkg.ingest.body"}
    assert graph["pkg.ingest.body"] == {"pkg.errors", "pkg.ingest.envelope"}
    # `from ... import x` leaves the package: not an edge.
    assert graph["pkg.ingest.envelope"] == {"pkg.ingest.body"}
    assert cycles_in(package_dir) == [["pkg.ingest.body", "pkg.ingest.envelope", "pkg.ingest.body"]]


def test_layer_rules_on_a_synthetic_package(tmp_path: Path) -> None:
    package_dir = make_package(
        tmp_path,
        {
            "__init__.py": "from .blueprint import blueprint\nfrom .errors import E\n",
            "errors.py": "import re\nimport marshmallow\nE = 1\n",
            "search.py": "from flask import request\nfrom .errors import E\n",
            "pagination.py": "def f():\n    from .auth import g\n",
            "auth.py": "import flask\nfrom .errors import E\n",
            "blueprint.py": "from .views import groups\nblueprint = 1\n",
            "views/__init__.py": "from .groups import GroupView\n",
            "views/base.py": "from ..auth import g\nfrom ..storage import S\n",
            "views/groups.py": "from .base import APIView\nfrom .projects import P\n",
            "views/projects.py": "from ..extension import get_state\n",
            "extension.py": "",
            "storage.py": "",
            "openapi.py": "from .views import groups\n",
            "memory_storage.py": "from .storage import S\nfrom .blueprint import x\n",
            "sqlalchemy_storage/__init__.py": "import sqlalchemy\nfrom .base import X\n",
            "sqlalchemy_storage/base.py": "import flask_sqlalchemy\nfrom ..pagination import W\n",
        },
        name="flask_sentry_api",
    )
    assert layer_violations(package_dir) == [
        "flask_sentry_api.memory_storage (storages) -> flask_sentry_api.blueprint (wiring): "
        "storages may import only core, storages",
        "flask_sentry_api.pagination (core) -> flask_sentry_api.auth (glue): "
        "core may import only core",
        "flask_sentry_api.search (core) -> flask: the core imports only the standard library "
        "and blinker, brotli, limits, marshmallow",
        "flask_sentry_api.sqlalchemy_storage.base (storages) -> flask_sqlalchemy: "
        "a storage imports no Flask",
        "flask_sentry_api.views.groups -> flask_sentry_api.views.projects: a view module "
        "imports no other view module but views.base",
        "flask_sentry_api.views.projects (views) -> flask_sentry_api.extension (wiring): "
        "views may import only core, glue, views",
    ]
    assert core_modules(package_dir) == [
        "flask_sentry_api.errors",
        "flask_sentry_api.pagination",
        "flask_sentry_api.search",
        "flask_sentry_api.storage",
    ]


def test_layers_by_path() -> None:
    assert layer_of("ingest/__init__.py") == "core"
    assert layer_of("ingest/envelope.py") == "core"
    assert layer_of("views/__init__.py") == "views"
    assert layer_of("views/groups.py") == "views"
    assert layer_of("group_views.py") == "views"
    assert layer_of("__init__.py") == "wiring"
    assert layer_of("migrations/versions/0001_initial.py") == "storages"
    assert layer_of("sqlalchemy_storage/statements.py") == "storages"
    assert layer_of("something_new.py") is None


# --- the package -------------------------------------------------------------------------------


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(
        module.rel for module in find_modules(PACKAGE_DIR).values() if layer_of(module.rel) is None
    )
    assert not unplaced, (
        f"modules in no layer: {', '.join(unplaced)}; add their path to LAYERS in "
        "tests/test_layers.py (and to pyproject.toml's ruff per-file-ignores if not core)"
    )


def test_no_import_cycle() -> None:
    cycles = describe_cycles(PACKAGE_DIR)
    assert not cycles, "\n" + cycles


def test_layer_direction() -> None:
    problems = layer_violations(PACKAGE_DIR)
    assert not problems, "\n" + "\n".join(problems)


def _assert_imports_light(modules: Iterable[str]) -> None:
    """Importing ``modules`` in a fresh interpreter loads none of HEAVY."""
    code = (
        "import importlib, sys\n"
        f"for name in {sorted(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        f"loaded = [name for name in {HEAVY!r} if name in sys.modules]\n"
        "assert not loaded, f'importing loaded {loaded}'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PACKAGE_DIR.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_core_imports_no_flask_or_sqlalchemy() -> None:
    # The one-liner to run by hand, verbatim.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, flask_sentry_api.pagination, flask_sentry_api.search, "
            "flask_sentry_api.ingest.envelope; "
            "assert 'flask' not in sys.modules and 'sqlalchemy' not in sys.modules",
        ],
        cwd=PACKAGE_DIR.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("module", core_modules())
def test_each_core_module_imports_no_flask_or_sqlalchemy(module: str) -> None:
    _assert_imports_light([module])
