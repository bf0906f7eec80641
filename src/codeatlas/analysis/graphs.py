"""Import and call graphs of a scanned tree, as plain dataclasses.

Node ids: a module's dotted name (``email.mime.text``; a package is its ``__init__``) in the
import graph, ``module:qualname`` (``json.decoder:JSONDecoder.decode``) in the call graph.
Only modules and functions inside the tree become nodes; calls are resolved best-effort:
nested and same-module functions, ``self.method``/``cls.method`` through the class and its
in-tree bases, ``Class(...)`` to ``Class.__init__``, and ``alias.func`` through the module's
imports (following one re-export hop per package ``__init__``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from .pagerank import pagerank
from .python import PythonAnalysis, Symbol

__all__ = ["Edge", "Graph", "Node", "build_call_graph", "build_import_graph"]

_MAX_HOPS: Final = 4


@dataclass(frozen=True, slots=True)
class Node:
    """A module or function of the graph."""

    id: str
    label: str
    file_path: str | None
    kind: str  # "module", "package", "function", "method"
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Edge:
    """A directed relation; ``weight`` counts import statements (import graph) or 1."""

    source: str
    target: str
    type: str  # "imports" or "calls"
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Graph:
    """Nodes and edges of one graph."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def pagerank(self, *, damping: float = 0.85) -> dict[str, float]:
        """Return the PageRank of every node (weighted by edge weight)."""
        return pagerank(
            [n.id for n in self.nodes],
            [(e.source, e.target, e.weight) for e in self.edges],
            damping=damping,
        )


@dataclass(slots=True)
class _Module:
    path: str
    analysis: PythonAnalysis
    aliases: dict[str, str]
    symbols: dict[str, Symbol]


def _index(files: Iterable[tuple[str, PythonAnalysis]]) -> dict[str, _Module]:
    modules: dict[str, _Module] = {}
    for path, analysis in files:
        if analysis.module is None or analysis.module in modules:
            continue
        symbols = {s.qualname: s for s in analysis.symbols}
        modules[analysis.module] = _Module(path, analysis, analysis.import_aliases, symbols)
    return modules


def build_import_graph(files: Iterable[tuple[str, PythonAnalysis]]) -> Graph:
    """Return module -> imported module edges among the (path, analysis) *files*.

    ``from a import b`` points at ``a.b`` when that is a module of the tree, else at ``a``;
    ``import a.b.c`` at the longest prefix that is in the tree.
    """
    modules = _index(files)
    nodes = tuple(
        Node(
            id=name,
            label=name,
            file_path=m.path,
            kind="package" if m.analysis.is_package else "module",
        )
        for name, m in sorted(modules.items())
    )
    weights: dict[tuple[str, str], float] = {}
    for name, m in modules.items():
        for imp in m.analysis.imports:
            candidates = [imp.target, imp.module] if imp.name not in (None, "*") else [imp.module]
            target = next((t for c in candidates if (t := _in_tree(c, modules))), None)
            if target is not None and target != name:
                weights[name, target] = weights.get((name, target), 0.0) + 1.0
    edges = tuple(Edge(s, t, "imports", w) for (s, t), w in sorted(weights.items()))
    return Graph(nodes, edges)


def _in_tree(dotted: str, modules: dict[str, _Module]) -> str | None:
    """Return the longest prefix of *dotted* that is a module of the tree."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def build_call_graph(files: Iterable[tuple[str, PythonAnalysis]]) -> Graph:
    """Return function -> called function edges among the (path, analysis) *files*."""
    modules = _index(files)
    nodes: list[Node] = []
    edges: set[tuple[str, str]] = set()
    for name, m in sorted(modules.items()):
        for symbol in m.analysis.symbols:
            if symbol.kind == "class":
                continue
            caller = f"{name}:{symbol.qualname}"
            nodes.append(Node(caller, symbol.qualname, m.path, symbol.kind, symbol.start_line))
            for call in symbol.calls:
                callee = _resolve_call(call, name, symbol, modules)
                if callee is not None:
                    edges.add((caller, callee))
    return Graph(tuple(nodes), tuple(Edge(s, t, "calls") for s, t in sorted(edges)))


def _resolve_call(
    call: str, module: str, caller: Symbol, modules: dict[str, _Module]
) -> str | None:
    head, _, rest = call.partition(".")
    m = modules[module]
    owner_class = _enclosing_class(caller, m)
    if head in ("self", "cls") and owner_class is not None and rest and "." not in rest:
        return _method(module, owner_class, rest, modules, set())
    if not rest:
        # Innermost scope first: functions nested in the caller and its enclosing functions.
        scope: str | None = caller.qualname
        while scope is not None:
            nested = f"{scope}.{head}"
            if nested in m.symbols and m.symbols[nested].kind != "method":
                return _callable(module, nested, modules)
            scope = m.symbols[scope].parent if scope in m.symbols else None
    if head in m.symbols and m.symbols[head].parent is None:
        return _callable(module, call, modules)
    if head in m.aliases:
        target = m.aliases[head] + (f".{rest}" if rest else "")
        return _absolute(target, modules, _MAX_HOPS)
    return None


def _enclosing_class(symbol: Symbol, m: _Module) -> str | None:
    parent = symbol.parent
    if symbol.kind == "method" and parent is not None and parent in m.symbols:
        return parent
    return None


def _callable(module: str, qualname: str, modules: dict[str, _Module]) -> str | None:
    """Return the node id for calling *qualname* in *module* (a class means its __init__)."""
    symbols = modules[module].symbols
    symbol = symbols.get(qualname)
    if symbol is None:
        head, _, attr = qualname.rpartition(".")
        # Class.method written out: look the method up through the class's bases too.
        if head in symbols and symbols[head].kind == "class":
            return _method(module, head, attr, modules, set())
        return None
    if symbol.kind == "class":
        return _method(module, qualname, "__init__", modules, set())
    return f"{module}:{qualname}"


def _method(
    module: str, cls: str, name: str, modules: dict[str, _Module], seen: set[str]
) -> str | None:
    """Return the node id of method *name* of class *cls*, searching in-tree bases."""
    key = f"{module}:{cls}"
    if key in seen:
        return None
    seen.add(key)
    m = modules[module]
    qualname = f"{cls}.{name}"
    if qualname in m.symbols and m.symbols[qualname].kind == "method":
        return f"{module}:{qualname}"
    for base in m.symbols[cls].bases:
        located = _locate(base, module, modules)
        if located is not None:
            found = _method(*located, name, modules, seen)
            if found is not None:
                return found
    return None


def _locate(name: str, module: str, modules: dict[str, _Module]) -> tuple[str, str] | None:
    """Return (module, class qualname) of the class *name* as written in *module*."""
    m = modules[module]
    if name in m.symbols and m.symbols[name].kind == "class":
        return module, name
    head, _, rest = name.partition(".")
    if head in m.aliases:
        target = _split_target(m.aliases[head] + (f".{rest}" if rest else ""), modules, 2)
        found = modules[target[0]].symbols.get(target[1]) if target is not None else None
        if found is not None and found.kind == "class":
            return target
    return None


def _absolute(target: str, modules: dict[str, _Module], hops: int) -> str | None:
    """Return the node id of the absolute dotted *target* if it is a function in the tree."""
    split = _split_target(target, modules, hops)
    if split is None:
        return None
    return _callable(split[0], split[1], modules)


def _split_target(target: str, modules: dict[str, _Module], hops: int) -> tuple[str, str] | None:
    """Return (module, qualname) for an absolute dotted name, following re-exports."""
    module = _in_tree(target, modules)
    if module is None or module == target:
        return None
    qualname = target[len(module) + 1 :]
    m = modules[module]
    head, _, rest = qualname.partition(".")
    if head not in m.symbols and head in m.aliases and hops > 0:
        # Re-exported name (``from .decoder import JSONDecoder`` in a package __init__).
        return _split_target(m.aliases[head] + (f".{rest}" if rest else ""), modules, hops - 1)
    return module, qualname
