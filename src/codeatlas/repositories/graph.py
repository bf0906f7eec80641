"""``atlas.graph``: graph types, nodes (graph_nodes, 1536-d) and edges of each codebase.

graph_edges has no graph-type column (the Elixir schema's shape), so ``add_edges`` stores
an edge's graph type in its JSONB metadata under ``"graph_type"``; ``compute_pagerank``
reads it back from there. Graph types whose description contains ``"(DAG)"`` (CallGraph,
ImportGraph, DataFlowGraph in the seed rows) must stay acyclic: ``add_edges`` refuses, or
skips, an edge that would close a cycle among that codebase's edges of the same type.
Edges written through ``atlas.graph.edges`` directly bypass that check.
"""

from __future__ import annotations

import builtins
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, Literal

from .._db import Executor
from ..errors import CycleError, ForeignKeyViolationError, InvalidInputError, NotFoundError
from ..models import (
    GraphEdge,
    GraphEdgeCreate,
    GraphEdgeUpdate,
    GraphNode,
    GraphNodeCreate,
    GraphNodeUpdate,
    GraphType,
    GraphTypeCreate,
    GraphTypeUpdate,
)
from ..models._types import check_text
from ..search import SearchableRepository
from ._base import Repository, check_flag
from ._maintenance import Vacuumable

__all__ = [
    "GRAPH_TYPE_KEY",
    "Direction",
    "EdgeWriteResult",
    "GraphEdgesRepository",
    "GraphRepository",
    "GraphTypesRepository",
    "Neighbour",
    "TraversalStep",
]

#: The key of graph_edges.metadata that holds the edge's graph type.
GRAPH_TYPE_KEY: Final = "graph_type"
#: Marker in graph_types.description of the graph types that must stay acyclic.
DAG_MARKER: Final = "(DAG)"
MAX_TRAVERSAL_LIMIT: Final = 100_000

Direction = Literal["out", "in", "both"]

_GRAPH_TYPE_DESCRIPTION: Final = "SELECT description FROM graph_types WHERE graph_type = $1"


@dataclass(frozen=True, slots=True)
class EdgeWriteResult:
    """What ``add_edges`` did: how many edges it upserted, and the ones it skipped."""

    written: int
    #: edges left out because they would have closed a cycle (``on_cycle="skip"``)
    skipped: tuple[GraphEdgeCreate, ...] = ()


@dataclass(frozen=True, slots=True)
class Neighbour:
    """An edge at a node, and the node at its other end (None if it has no graph_nodes row)."""

    edge: GraphEdge
    node: GraphNode | None
    #: "out" when the edge leaves the queried node, "in" when it arrives there
    direction: Literal["out", "in"]


@dataclass(frozen=True, slots=True)
class TraversalStep:
    """A node reached by ``traverse``: its depth and one shortest path from the start."""

    node_id: str
    depth: int
    #: node ids from the start node to this one, both included
    path: builtins.list[str]
    #: the node's row (without its embedding), None if it has no graph_nodes row
    node: GraphNode | None


class GraphTypesRepository(Repository[GraphType, GraphTypeCreate, GraphTypeUpdate]):
    """``atlas.graph.types``: the kinds of graph (CallGraph, ImportGraph, ...)."""

    row_model = GraphType
    create_model = GraphTypeCreate
    update_model = GraphTypeUpdate

    async def is_dag(self, name: str) -> bool:
        """Return whether graph type *name* must stay acyclic; NotFoundError if unknown."""
        found, dag = await _graph_type_is_dag(self._executor, name)
        if not found:
            raise NotFoundError(f"no graph type {name!r} in graph_types")
        return dag


def _graph_type_name(name: object) -> str:
    """Return graph type *name* (a GraphTypeName or a string) as text, or raise."""
    return check_text(name.value if isinstance(name, Enum) else name, field="graph_type")


async def _graph_type_is_dag(executor: Executor, name: str) -> tuple[bool, bool]:
    """Return (whether graph type *name* exists, whether it is a DAG type)."""
    record = await executor.fetchrow(_GRAPH_TYPE_DESCRIPTION, _graph_type_name(name))
    if record is None:
        return False, False
    return True, DAG_MARKER in (record["description"] or "")


class GraphEdgesRepository(Vacuumable, Repository[GraphEdge, GraphEdgeCreate, GraphEdgeUpdate]):
    """``atlas.graph.edges``: directed, typed, weighted edges keyed by (codebase_id, edge_id)."""

    row_model = GraphEdge
    create_model = GraphEdgeCreate
    update_model = GraphEdgeUpdate


# Writers of one (codebase, graph type) queue here; the key is hashed into the 64-bit
# advisory lock space (a collision only makes two unrelated writers wait for each other).
_LOCK_GRAPH: Final = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
_GRAPH_EDGES: Final = """
SELECT edge_id, from_node_id, to_node_id
  FROM graph_edges
 WHERE codebase_id = $1 AND metadata ->> 'graph_type' = $2"""

_NODE_COLUMNS: Final = (
    "id", "codebase_id", "node_id", "node_type", "name", "file_path", "line_number",
    "vector_magnitude", "metadata", "created_at",
)  # fmt: skip
_EDGE_COLUMNS: Final = (
    "id", "codebase_id", "edge_id", "from_node_id", "to_node_id", "edge_type", "weight",
    "metadata", "created_at",
)  # fmt: skip

# $1 codebase, $2 node, $3 edge types (NULL: all), $4 outgoing wanted, $5 incoming wanted.
# The node at the other end may be missing: graph_edges has no foreign keys (as in the
# Elixir schema). Node rows come without their embedding.
_NEIGHBOURS: Final = """
SELECT hit.direction,
       e.id AS e_id, e.codebase_id AS e_codebase_id, e.edge_id AS e_edge_id,
       e.from_node_id AS e_from_node_id, e.to_node_id AS e_to_node_id,
       e.edge_type AS e_edge_type, e.weight AS e_weight, e.metadata AS e_metadata,
       e.created_at AS e_created_at,
       n.id IS NOT NULL AS has_node,
       n.id AS n_id, n.codebase_id AS n_codebase_id, n.node_id AS n_node_id,
       n.node_type AS n_node_type, n.name AS n_name, n.file_path AS n_file_path,
       n.line_number AS n_line_number, n.vector_magnitude AS n_vector_magnitude,
       n.metadata AS n_metadata, n.created_at AS n_created_at
  FROM (SELECT 'out' AS direction, id, to_node_id AS other_id
          FROM graph_edges
         WHERE $4 AND codebase_id = $1 AND from_node_id = $2
           AND ($3::text[] IS NULL OR edge_type = ANY ($3))
        UNION ALL
        SELECT 'in', id, from_node_id
          FROM graph_edges
         WHERE $5 AND codebase_id = $1 AND to_node_id = $2
           AND ($3::text[] IS NULL OR edge_type = ANY ($3))) AS hit
  JOIN graph_edges e ON e.id = hit.id
  LEFT JOIN graph_nodes n ON n.codebase_id = $1 AND n.node_id = hit.other_id
 ORDER BY hit.direction DESC, e.edge_type, hit.other_id, e.edge_id"""

# Breadth-first, bounded by depth ($3) in SQL. The path array makes it cycle-safe (a walk
# never re-enters a node on its own path), and DISTINCT ON keeps one row per node and level,
# so the work grows with nodes x depth rather than with the number of paths. Each step is an
# index lookup on the edge's end; codebase_id is compared under "C" so the planner cannot AND
# in the codebase_id index, which matches every edge of the codebase: right after a bulk
# load, before ANALYZE, it underestimates that and reads the whole index at every step
# (25 s instead of 0.5 s for 5000 nodes and 20000 edges at depth 6).
# $1 codebase, $2 start, $3 max depth, $4 edge types (NULL: all), $5 limit,
# $6 follow outgoing edges, $7 follow incoming edges.
_TRAVERSE: Final = """
WITH RECURSIVE walk (node_id, depth, path) AS (
    SELECT $2::text, 0, ARRAY[$2::text]
  UNION ALL
    SELECT DISTINCT ON (step.next_id) step.next_id, w.depth + 1, w.path || step.next_id
      FROM walk w
     CROSS JOIN LATERAL (
            SELECT e.to_node_id::text AS next_id
              FROM graph_edges e
             WHERE $6 AND e.from_node_id = w.node_id AND e.codebase_id COLLATE "C" = $1
               AND ($4::text[] IS NULL OR e.edge_type = ANY ($4))
            UNION ALL
            SELECT e.from_node_id::text
              FROM graph_edges e
             WHERE $7 AND e.to_node_id = w.node_id AND e.codebase_id COLLATE "C" = $1
               AND ($4::text[] IS NULL OR e.edge_type = ANY ($4))) AS step
     WHERE w.depth < $3 AND step.next_id <> ALL (w.path)
), reached AS (
    SELECT DISTINCT ON (node_id) node_id, depth, path
      FROM walk
     WHERE depth > 0
     ORDER BY node_id, depth
)
SELECT r.node_id AS r_node_id, r.depth AS r_depth, r.path AS r_path,
       n.id IS NOT NULL AS has_node,
       n.id AS n_id, n.codebase_id AS n_codebase_id, n.node_id AS n_node_id,
       n.node_type AS n_node_type, n.name AS n_name, n.file_path AS n_file_path,
       n.line_number AS n_line_number, n.vector_magnitude AS n_vector_magnitude,
       n.metadata AS n_metadata, n.created_at AS n_created_at
  FROM reached r
  LEFT JOIN graph_nodes n ON n.codebase_id = $1 AND n.node_id = r.node_id
 ORDER BY r.depth, r.node_id
 LIMIT $5"""
_DIRECTIONS: Final[dict[str, tuple[bool, bool]]] = {
    "out": (True, False),
    "in": (False, True),
    "both": (True, True),
}

_PAGERANK_NODES: Final = """
SELECT node_id, file_path FROM graph_nodes WHERE codebase_id = $1 ORDER BY node_id"""
_PAGERANK_EDGES: Final = """
SELECT from_node_id, to_node_id, weight
  FROM graph_edges
 WHERE codebase_id = $1 AND ($2::text IS NULL OR metadata ->> 'graph_type' = $2)"""
_STORE_NODE_SCORES: Final = """
UPDATE graph_nodes n
   SET metadata = coalesce(n.metadata, '{}'::jsonb) || jsonb_build_object('pagerank', s.score)
  FROM unnest($1::text[], $2::float8[]) AS s (node_id, score)
 WHERE n.codebase_id = $3 AND n.node_id = s.node_id"""
_STORE_FILE_SCORES: Final = """
UPDATE codebase_metadata m
   SET pagerank_score = s.score, updated_at = (now() AT TIME ZONE 'utc')
  FROM unnest($1::text[], $2::float8[]) AS s (path, score)
 WHERE m.codebase_id = $3 AND m.path = s.path"""


def _direction(direction: str) -> tuple[bool, bool]:
    """Return (follow outgoing edges, follow incoming edges) for *direction*."""
    try:
        return _DIRECTIONS[direction]
    except KeyError:
        raise InvalidInputError(
            f"direction must be 'out', 'in' or 'both', got {direction!r}"
        ) from None


def _edge_types(edge_types: Sequence[str] | None) -> builtins.list[str] | None:
    if isinstance(edge_types, str):
        raise InvalidInputError("edge_types takes a sequence of edge types, not one string")
    if edge_types is not None and not isinstance(edge_types, Iterable):
        raise InvalidInputError(f"edge_types must be a sequence, got {type(edge_types).__name__}")
    return (
        None if edge_types is None else [check_text(str(t), field="edge_types") for t in edge_types]
    )


def _split(record: Any, prefix: str, columns: Sequence[str]) -> dict[str, Any]:
    return {column: record[prefix + column] for column in columns}


class GraphRepository(
    Vacuumable, SearchableRepository[GraphNode, GraphNodeCreate, GraphNodeUpdate]
):
    """Graph nodes (searchable), with ``.edges`` and ``.types``."""

    row_model = GraphNode
    create_model = GraphNodeCreate
    update_model = GraphNodeUpdate

    def __init__(self, executor: Executor) -> None:
        super().__init__(executor)
        self.edges = GraphEdgesRepository(executor)
        self.types = GraphTypesRepository(executor)

    # -- writes ---------------------------------------------------------------------------

    async def add_nodes(self, nodes: Iterable[GraphNodeCreate]) -> int:
        """Upsert *nodes* on (codebase_id, node_id) atomically; return how many were written."""
        if not isinstance(nodes, Iterable):
            raise InvalidInputError(
                f"nodes must be GraphNodeCreate rows, not {type(nodes).__name__}"
            )
        return await self.upsert_many(builtins.list(nodes))

    async def add_edges(
        self,
        edges: Iterable[GraphEdgeCreate],
        *,
        graph_type: str,
        on_cycle: Literal["raise", "skip"] = "raise",
    ) -> EdgeWriteResult:
        """Upsert *edges* of *graph_type* on (codebase_id, edge_id) atomically.

        The graph type is stored in each edge's metadata under ``"graph_type"``; it must
        exist in graph_types (else ForeignKeyViolationError). For a DAG graph type an edge
        that would close a cycle among the codebase's edges of that type raises CycleError
        (nothing is written), or with ``on_cycle="skip"`` is left out and reported in
        ``skipped``. Writers of one codebase and graph type are serialised, so concurrent
        batches cannot close a cycle between them.
        """
        graph_type = _graph_type_name(graph_type)
        if not isinstance(edges, Iterable):
            raise InvalidInputError(
                f"edges must be GraphEdgeCreate rows, not {type(edges).__name__}"
            )
        if on_cycle not in ("raise", "skip"):
            raise InvalidInputError(f"on_cycle must be 'raise' or 'skip', got {on_cycle!r}")
        batch = [self._typed_edge(edge, graph_type) for edge in edges]
        if not batch:
            return EdgeWriteResult(0)
        async with self._executor.transaction() as tx:
            found, dag = await _graph_type_is_dag(tx, graph_type)
            if not found:
                raise ForeignKeyViolationError(
                    f"graph type {graph_type!r} does not exist in graph_types",
                    table="graph_types",
                )
            skipped: builtins.list[GraphEdgeCreate] = []
            if dag:
                batch, skipped = await self._refuse_cycles(tx, batch, graph_type, on_cycle)
            written = await GraphEdgesRepository(tx).upsert_many(batch)
        return EdgeWriteResult(written, tuple(skipped))

    @staticmethod
    def _typed_edge(edge: GraphEdgeCreate, graph_type: str) -> GraphEdgeCreate:
        if not isinstance(edge, GraphEdgeCreate):
            raise InvalidInputError(f"add_edges writes GraphEdgeCreate, got {type(edge).__name__}")
        metadata = dict(edge.metadata or {})
        stated = metadata.setdefault(GRAPH_TYPE_KEY, str(graph_type))
        if stated != str(graph_type):
            raise InvalidInputError(
                f"edge {edge.edge_id!r} has metadata graph_type {stated!r}, "
                f"but is written as {graph_type!r}"
            )
        return edge.model_copy(update={"metadata": metadata})

    @staticmethod
    async def _refuse_cycles(
        tx: Executor,
        batch: builtins.list[GraphEdgeCreate],
        graph_type: str,
        on_cycle: Literal["raise", "skip"],
    ) -> tuple[builtins.list[GraphEdgeCreate], builtins.list[GraphEdgeCreate]]:
        """Return the edges of *batch* that keep each codebase's graph acyclic, and the rest."""
        accepted: builtins.list[GraphEdgeCreate] = []
        skipped: builtins.list[GraphEdgeCreate] = []
        by_codebase: dict[str, builtins.list[GraphEdgeCreate]] = defaultdict(builtins.list)
        for edge in batch:
            by_codebase[edge.codebase_id].append(edge)
        # one fixed lock order, so two multi-codebase batches cannot deadlock
        for codebase_id in sorted(by_codebase):
            await tx.execute(_LOCK_GRAPH, f"graph_edges\x1f{codebase_id}\x1f{graph_type}")
        # imported here: the data layer loads the analysis code only when it needs it
        from ..analysis.dag import CycleGuard

        for codebase_id in sorted(by_codebase):
            # Loaded after the lock: the previous writer has committed or rolled back.
            records = await tx.fetch(_GRAPH_EDGES, codebase_id, str(graph_type))
            current = {r["edge_id"]: (r["from_node_id"], r["to_node_id"]) for r in records}
            edges = by_codebase[codebase_id]
            graph = CycleGuard(
                builtins.list(current.values()), [(e.from_node_id, e.to_node_id) for e in edges]
            )
            for edge in edges:
                replaced = current.pop(edge.edge_id, None)
                if replaced is not None:  # an upsert moves the edge: drop its old ends first
                    graph.remove(*replaced)
                if graph.add(edge.from_node_id, edge.to_node_id):
                    current[edge.edge_id] = (edge.from_node_id, edge.to_node_id)
                    accepted.append(edge)
                    continue
                if replaced is not None:
                    graph.add(*replaced)
                    current[edge.edge_id] = replaced
                if on_cycle == "raise":
                    raise CycleError(
                        f"edge {edge.edge_id!r} ({edge.from_node_id!r} -> {edge.to_node_id!r}) "
                        f"would close a cycle in the {graph_type} graph of codebase "
                        f"{codebase_id!r}",
                        codebase_id=codebase_id,
                        graph_type=str(graph_type),
                        edge_id=edge.edge_id,
                        from_node_id=edge.from_node_id,
                        to_node_id=edge.to_node_id,
                    )
                skipped.append(edge)
        return accepted, skipped

    # -- reads ----------------------------------------------------------------------------

    async def neighbours(
        self,
        codebase_id: str,
        node_id: str,
        *,
        direction: Direction = "out",
        edge_types: Sequence[str] | None = None,
    ) -> builtins.list[Neighbour]:
        """Return the edges at *node_id* with the node at each other end, outgoing first.

        *direction* is "out", "in" or "both"; *edge_types* keeps only edges of those types.
        Node rows come without their embedding.
        """
        codebase_id = self._value("codebase_id", codebase_id)
        node_id = self._value("node_id", node_id)
        outgoing, incoming = _direction(direction)
        records = await self._executor.fetch(
            _NEIGHBOURS, codebase_id, node_id, _edge_types(edge_types), outgoing, incoming
        )
        return [
            Neighbour(
                edge=GraphEdge.from_record(_split(r, "e_", _EDGE_COLUMNS)),
                node=GraphNode.from_record(_split(r, "n_", _NODE_COLUMNS))
                if r["has_node"]
                else None,
                direction=r["direction"],
            )
            for r in records
        ]

    async def traverse(
        self,
        codebase_id: str,
        start_node_id: str,
        *,
        max_depth: int = 3,
        direction: Direction = "out",
        edge_types: Sequence[str] | None = None,
        limit: int = 10_000,
    ) -> builtins.list[TraversalStep]:
        """Return the nodes within *max_depth* edges of *start_node_id*, nearest first.

        Each node appears once, at its shortest distance, with one shortest path; cycles
        are safe. The start node itself is not included.
        """
        codebase_id = self._value("codebase_id", codebase_id)
        start_node_id = self._value("node_id", start_node_id)
        outgoing, incoming = _direction(direction)
        for name, value, top in (
            ("max_depth", max_depth, 1_000),
            ("limit", limit, MAX_TRAVERSAL_LIMIT),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                raise InvalidInputError(f"{name} must be an integer within 1..{top}, got {value!r}")
        records = await self._executor.fetch(
            _TRAVERSE,
            codebase_id,
            start_node_id,
            max_depth,
            _edge_types(edge_types),
            limit,
            outgoing,
            incoming,
        )
        return [
            TraversalStep(
                node_id=r["r_node_id"],
                depth=r["r_depth"],
                path=builtins.list(r["r_path"]),
                node=GraphNode.from_record(_split(r, "n_", _NODE_COLUMNS))
                if r["has_node"]
                else None,
            )
            for r in records
        ]

    # -- analysis -------------------------------------------------------------------------

    async def compute_pagerank(
        self,
        codebase_id: str,
        *,
        graph_type: str | None = None,
        damping: float = 0.85,
        update_files: bool = True,
    ) -> dict[str, float]:
        """Compute PageRank over the codebase's nodes and its edges (of *graph_type*, else all).

        Stores each score in graph_nodes.metadata["pagerank"] and, with *update_files*, the
        sum of a file's node scores in codebase_metadata.pagerank_score (matched on path).
        Edges with an end that has no graph_nodes row are ignored. Returns node_id -> score.
        """
        codebase_id = self._value("codebase_id", codebase_id)
        check_flag(update_files, field="update_files")
        if isinstance(damping, bool) or not isinstance(damping, int | float) or not 0 < damping < 1:
            raise InvalidInputError(f"damping must be a number within 0..1, got {damping!r:.40}")
        if graph_type is not None:
            found, _ = await _graph_type_is_dag(self._executor, graph_type)
            if not found:
                raise NotFoundError(f"no graph type {graph_type!r} in graph_types")
        async with self._executor.transaction() as tx:
            node_rows = await tx.fetch(_PAGERANK_NODES, codebase_id)
            files = {r["node_id"]: r["file_path"] for r in node_rows}
            edge_rows = await tx.fetch(
                _PAGERANK_EDGES, codebase_id, None if graph_type is None else str(graph_type)
            )
            from ..analysis.pagerank import pagerank

            # pagerank() ignores edges whose ends are not nodes
            edges = [(r["from_node_id"], r["to_node_id"], float(r["weight"])) for r in edge_rows]
            scores = pagerank(builtins.list(files), edges, damping=damping)
            if not scores:
                return {}
            node_ids, node_scores = builtins.list(scores), builtins.list(scores.values())
            await tx.execute(_STORE_NODE_SCORES, node_ids, node_scores, codebase_id)
            if update_files:
                per_file: dict[str, float] = defaultdict(float)
                for node_id, score in scores.items():
                    per_file[files[node_id]] += score
                await tx.execute(
                    _STORE_FILE_SCORES,
                    builtins.list(per_file),
                    builtins.list(per_file.values()),
                    codebase_id,
                )
        return scores
