"""Stage 6, graph: the import and call graphs, reconciled with the stored graph in one
transaction together with dependency counts, PageRank and the graph's stamp.

The graphs are built from every Python file's analysis (fresh for files indexed by this
run, the stored JSON facts of codebase_metadata for the others) and only the difference
with the stored graph is written. The stamp (a digest of the codebase's file stamps and
module prefix) commits with the graph: a run killed before it leaves the old stamp, and the
next run rebuilds the graph even if no file changed.

``pagerank_score`` of a file is the sum of the PageRank of its nodes (its module and its
functions) over the combined import and call graph; the two subgraphs are disjoint, so the
module nodes rank exactly as in the import graph alone. ``dependency_count`` /
``dependent_count`` count the in-tree modules a module imports and is imported by.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ..analysis.graphs import Graph, build_call_graph, build_import_graph
from ..analysis.python import PythonAnalysis
from ..atlas import Atlas, Transaction
from ..models import GraphEdge, GraphEdgeCreate, GraphNode, GraphNodeCreate
from .write import Written

__all__ = [
    "GRAPH_TYPES",
    "Graphs",
    "build_graphs",
    "dependency_counts",
    "graph_stamp",
    "write_graphs",
]

#: edge type -> the graph type its edges are stored under
GRAPH_TYPES: Final = {"imports": "ImportGraph", "calls": "CallGraph"}
MODULE_KINDS: Final = ("module", "package")
_SHORT: Final = 255
_BATCH: Final = 2000
_PAGE: Final = 10_000


@dataclass(frozen=True, slots=True)
class Graphs:
    """The import and call graphs of one codebase."""

    imports: Graph
    calls: Graph


def graph_stamp(stamps: Mapping[str, tuple[int, int]], module_prefix: str) -> str:
    """Return the digest of a codebase's file stamps that the stored graph was built from."""
    payload = json.dumps([module_prefix, sorted((p, *s) for p, s in stamps.items())])
    return hashlib.sha256(payload.encode()).hexdigest()


def build_graphs(python: Mapping[str, PythonAnalysis]) -> Graphs:
    """Return the graphs of the (path -> analysis) Python files."""
    files = sorted(python.items())
    return Graphs(build_import_graph(files), build_call_graph(files))


def dependency_counts(graph: Graph) -> dict[str, tuple[int, int]]:
    """Return file path -> (in-tree modules it imports, in-tree modules importing it)."""
    out: Counter[str] = Counter()
    into: Counter[str] = Counter()
    for edge in graph.edges:
        out[edge.source] += 1
        into[edge.target] += 1
    return {
        node.file_path: (out[node.id], into[node.id])
        for node in graph.nodes
        if node.file_path is not None
    }


async def _all(repository: Any, where: dict[str, Any], **options: Any) -> list[Any]:
    rows: list[Any] = []
    cursor: str | None = None
    while True:
        page = await repository.list(where, limit=_PAGE, cursor=cursor, **options)
        rows.extend(page.items)
        if page.next_cursor is None:
            return rows
        cursor = page.next_cursor


def _wanted(
    codebase_id: str, graphs: Graphs
) -> tuple[dict[str, GraphNodeCreate], dict[str, tuple[str, GraphEdgeCreate]]]:
    nodes: dict[str, GraphNodeCreate] = {}
    for node in (*graphs.imports.nodes, *graphs.calls.nodes):
        if len(node.id) > _SHORT or node.file_path is None:
            continue
        nodes[node.id] = GraphNodeCreate(
            codebase_id=codebase_id,
            node_id=node.id,
            node_type=node.kind,
            name=node.label[:_SHORT],
            file_path=node.file_path,
            line_number=node.line,
            metadata={"kind": node.kind},
        )
    edges: dict[str, tuple[str, GraphEdgeCreate]] = {}
    for graph in (graphs.imports, graphs.calls):
        for edge in graph.edges:
            edge_id = f"{edge.type}:{edge.source}->{edge.target}"
            if len(edge_id) > _SHORT or edge.source not in nodes or edge.target not in nodes:
                continue
            edges[edge_id] = (
                GRAPH_TYPES[edge.type],
                GraphEdgeCreate(
                    codebase_id=codebase_id,
                    edge_id=edge_id,
                    from_node_id=edge.source,
                    to_node_id=edge.target,
                    edge_type=edge.type,
                    weight=edge.weight,
                ),
            )
    return nodes, edges


async def write_graphs(
    atlas: Atlas,
    codebase_id: str,
    graphs: Graphs,
    *,
    fresh: Mapping[str, npt.NDArray[np.float32]],
    state: dict[str, Any],
) -> tuple[Written, dict[str, int]]:
    """Reconcile the stored graph with *graphs*, then counts, PageRank and *state*, atomically.

    *fresh* maps the files indexed by this run to their summary vectors (module nodes carry
    their file's). Returns the rows written and deleted, and edges skipped per graph type.
    """
    done = Written()
    nodes, edges = _wanted(codebase_id, graphs)
    stored_nodes: list[GraphNode] = await _all(atlas.graph, {"codebase_id": codebase_id})
    stored_edges: list[GraphEdge] = await _all(atlas.graph.edges, {"codebase_id": codebase_id})
    known = {n.node_id: n for n in stored_nodes}
    # A node is rewritten when new, when its file was re-indexed (lines may have moved, the
    # module's embedding is new), or when its row differs.
    write_nodes = [
        n
        for node_id, n in nodes.items()
        if node_id not in known
        or n.file_path in fresh
        or (known[node_id].node_type, known[node_id].file_path, known[node_id].line_number)
        != (n.node_type, n.file_path, n.line_number)
    ]
    stale_nodes = [node_id for node_id in known if node_id not in nodes]
    stored_ends = {e.edge_id: (e.from_node_id, e.to_node_id, e.weight) for e in stored_edges}
    stale_edges = [
        e.edge_id
        for e in stored_edges
        if e.edge_id not in edges
        or (edges[e.edge_id][1].from_node_id, edges[e.edge_id][1].to_node_id)
        != (e.from_node_id, e.to_node_id)
    ]
    write_edges: dict[str, list[GraphEdgeCreate]] = defaultdict(list)
    for edge_id, (graph_type, row) in sorted(edges.items()):
        if stored_ends.get(edge_id) != (row.from_node_id, row.to_node_id, row.weight):
            write_edges[graph_type].append(row)
    vectors = await _module_vectors(atlas, codebase_id, write_nodes, fresh)
    skipped: dict[str, int] = {}
    async with atlas.transaction() as tx:
        if stale_edges:
            done.deleted["graph_edges"] += await tx.graph.edges.delete_where(
                {"codebase_id": codebase_id, "edge_id": stale_edges}
            )
        if stale_nodes:
            done.deleted["graph_nodes"] += await tx.graph.delete_where(
                {"codebase_id": codebase_id, "node_id": stale_nodes}
            )
        await _write_nodes(tx, write_nodes, vectors, done)
        for graph_type in GRAPH_TYPES.values():
            typed = write_edges.get(graph_type, [])
            # one call per graph type: the cycle check sees the whole batch at once
            result = await tx.graph.add_edges(typed, graph_type=graph_type, on_cycle="skip")
            done.written["graph_edges"] += result.written
            skipped[graph_type] = len(result.skipped)
        changed = await tx.codebases.set_dependency_counts(
            codebase_id, dependency_counts(graphs.imports)
        )
        done.written["codebase_metadata"] += changed
        await tx.graph.compute_pagerank(codebase_id)
        await tx.codebases.set_index_state(codebase_id, state)
    return done, skipped


async def _module_vectors(
    atlas: Atlas,
    codebase_id: str,
    nodes: list[GraphNodeCreate],
    fresh: Mapping[str, npt.NDArray[np.float32]],
) -> dict[str, npt.NDArray[np.float32]]:
    """Return file path -> summary vector for the module nodes to write."""
    paths = {n.file_path for n in nodes if n.node_type in MODULE_KINDS}
    vectors = {p: fresh[p] for p in paths if p in fresh}
    missing = sorted(paths - set(vectors))
    for start in range(0, len(missing), 1000):
        rows = await _all(
            atlas.codebases,
            {"codebase_id": codebase_id, "path": missing[start : start + 1000]},
            include_vectors=True,
        )
        for row in rows:
            if row.vector_embedding is not None:
                vectors[row.path] = np.asarray(row.vector_embedding, dtype=np.float32)
    return vectors


async def _write_nodes(
    tx: Transaction,
    nodes: list[GraphNodeCreate],
    vectors: Mapping[str, npt.NDArray[np.float32]],
    done: Written,
) -> None:
    modules = [
        GraphNodeCreate.model_validate(
            {**n.model_dump(), "vector_embedding": vectors.get(n.file_path)}
        )
        for n in nodes
        if n.node_type in MODULE_KINDS
    ]
    functions = [n for n in nodes if n.node_type not in MODULE_KINDS]
    # module nodes carry embeddings, function nodes none: separate batches, so a batch's
    # column list matches its rows
    for kind in (modules, functions):
        for start in range(0, len(kind), _BATCH):
            done.written["graph_nodes"] += await tx.graph.add_nodes(kind[start : start + _BATCH])
