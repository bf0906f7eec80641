"""The package's import structure: ``import codeatlas`` stays light, and no module cycles.

The data layer is what ``import codeatlas`` loads; the application code above it (the
indexer, the analysis, the embedders, the demo, the command line and its ``rich`` output)
loads only when used. The import graph of every module of the package, imports inside
functions included (a lazy import hides a cycle, it does not remove it), has no cycle.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import codeatlas

PACKAGE: Final = Path(codeatlas.__file__).parent

#: Modules (and their submodules) that ``import codeatlas`` must not load.
HEAVY: Final = (
    "rich",
    "codeatlas.analysis",
    "codeatlas.indexer",
    "codeatlas.demo",
    "codeatlas.embedding",
    "codeatlas.embedders",
    "codeatlas.cli",
    "opentelemetry",  # imported by the first connect(), and only when installed
    "wordllama",  # the local embedder reads its files, never imports it
    "tokenizers",
    "safetensors",
)


def loaded_by(statement: str) -> list[str]:
    """Return the modules loaded in a fresh interpreter after running *statement*."""
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    modules: list[str] = json.loads(result.stdout.splitlines()[-1])
    return modules


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(f"{h}.") for h in HEAVY)]


def test_import_codeatlas_loads_neither_rich_nor_the_application_code() -> None:
    modules = loaded_by("import codeatlas")
    assert "codeatlas.atlas" in modules  # the check sees what the import loaded
    assert heavy(modules) == []


def test_building_every_repository_loads_no_application_code() -> None:
    # repositories are built without I/O, so no server is needed to construct them all
    statement = (
        "import codeatlas\n"
        "scope = codeatlas.Scope(None)\n"
        "for name in dir(codeatlas.Scope):\n"
        "    if name != 'executor':  # the executor itself, not a repository\n"
        "        getattr(scope, name)\n"
        "import codeatlas.indexes, codeatlas.cache, codeatlas.search, codeatlas.filters"
    )
    modules = loaded_by(statement)
    assert "codeatlas.repositories.semantic_cache" in modules
    assert heavy(modules) == []


# -- the import graph -------------------------------------------------------------------------


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Yield every import statement that can run (not those under ``if TYPE_CHECKING:``)."""
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        if _type_checking_only(node):
            assert isinstance(node, ast.If)
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))


def import_graph(root: Path) -> dict[str, set[str]]:
    """Return module -> the package's modules its execution imports, for package *root*."""
    files = {module_name(path, root): path for path in sorted(root.rglob("*.py"))}
    graph: dict[str, set[str]] = {name: set() for name in files}
    top = root.name
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets.add(base)
            # `from pkg import sub` imports the submodule pkg.sub
            targets.update(f"{base}.{alias.name}" for alias in node.names)
        for target in targets:
            if target != top and not target.startswith(f"{top}."):
                continue
            # importing a.b.c runs a and a.b first; a module's own packages are already running
            parts = target.split(".")
            for depth in range(1, len(parts) + 1):
                module = ".".join(parts[:depth])
                own_package = name == module or name.startswith(f"{module}.")
                if module in graph and not own_package:
                    graph[name].add(module)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Return the strongly connected components of *graph* with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan; the package is small enough for recursion
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph(PACKAGE)
    assert "codeatlas.search" in graph["codeatlas.repositories.semantic_cache"]
    assert "codeatlas.cache" in graph["codeatlas.search"]
    assert cycles(graph) == []


def test_the_cache_is_storage_below_the_search_path() -> None:
    graph = import_graph(PACKAGE)
    assert graph["codeatlas.cache"].isdisjoint({"codeatlas.search", "codeatlas.indexes"})
    # the models hold the table facts and depend on no repository or search code
    for name, targets in graph.items():
        if name.startswith("codeatlas.models"):
            assert not {t for t in targets if t.startswith("codeatlas.repositories")}, name
            assert "codeatlas.search" not in targets, name


def test_the_cycle_check_sees_a_cycle_closed_by_a_lazy_import(tmp_path: Path) -> None:
    # the shape codeatlas had: cache imported search, search imported cache inside a method
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from .search import Search\n")
    (package / "search.py").write_text(
        "class Search:\n"
        "    def find(self):\n"
        "        from .cache import Cache\n"
        "        return Cache\n"
    )
    (package / "cache.py").write_text("from .search import Search\n\nclass Cache(Search): ...\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "a.py").write_text("from ..cache import Cache\nfrom . import b\n")
    (package / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import x\n"
    )
    graph = import_graph(package)
    assert graph["pkg.sub.a"] == {"pkg.cache", "pkg.sub.b"}
    assert graph["pkg.sub.b"] == set()  # typing-only imports do not run
    assert cycles(graph) == [{"pkg.cache", "pkg.search"}]


def test_the_embedders_package_loads_no_model_and_no_http_client() -> None:
    modules = loaded_by("import codeatlas.embedders")
    model = ("wordllama", "tokenizers", "safetensors")
    assert [m for m in modules if m.split(".")[0] in model] == []
    assert "codeatlas.embedders.local" not in modules
    assert "codeatlas.embedders.openai_api" not in modules
