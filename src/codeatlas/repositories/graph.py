"""``atlas.graph``: graph types, nodes (graph_nodes, 1536-d) and edges of each codebase."""

from __future__ import annotations

from .._db import Executor
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
from ..search import SearchableRepository
from ._base import Repository

__all__ = ["GraphEdgesRepository", "GraphRepository", "GraphTypesRepository"]


class GraphTypesRepository(Repository[GraphType, GraphTypeCreate, GraphTypeUpdate]):
    """``atlas.graph.types``: the kinds of graph (CallGraph, ImportGraph, ...)."""

    table = "graph_types"
    row_model = GraphType
    create_model = GraphTypeCreate
    update_model = GraphTypeUpdate
    natural_key = ("graph_type",)


class GraphEdgesRepository(Repository[GraphEdge, GraphEdgeCreate, GraphEdgeUpdate]):
    """``atlas.graph.edges``: directed, typed, weighted edges keyed by (codebase_id, edge_id)."""

    table = "graph_edges"
    row_model = GraphEdge
    create_model = GraphEdgeCreate
    update_model = GraphEdgeUpdate
    natural_key = ("codebase_id", "edge_id")


class GraphRepository(SearchableRepository[GraphNode, GraphNodeCreate, GraphNodeUpdate]):
    """Graph nodes (searchable), with ``.edges`` and ``.types``."""

    table = "graph_nodes"
    row_model = GraphNode
    create_model = GraphNodeCreate
    update_model = GraphNodeUpdate
    natural_key = ("codebase_id", "node_id")
    vector_column = "vector_embedding"
    dimensions = 1536
    vector_index = "idx_graph_nodes_vector"

    def __init__(self, executor: Executor) -> None:
        super().__init__(executor)
        self.edges = GraphEdgesRepository(executor)
        self.types = GraphTypesRepository(executor)
