"""graph_nodes, graph_edges and graph_types: the code graph of a codebase."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, Field

from ._base import CreateModel, RowModel, UpdateModel
from ._table import TableSpec
from ._types import Int32, NonNull, OpenEnum, Str100, Str255, Str500, Vector1536

__all__ = [
    "GraphEdge",
    "GraphEdgeCreate",
    "GraphEdgeUpdate",
    "GraphNode",
    "GraphNodeCreate",
    "GraphNodeUpdate",
    "GraphType",
    "GraphTypeCreate",
    "GraphTypeName",
    "GraphTypeUpdate",
]


class GraphTypeName(StrEnum):
    """graph_types.graph_type: the four kinds the Elixir migration seeds."""

    CALL_GRAPH = "CallGraph"
    IMPORT_GRAPH = "ImportGraph"
    SEMANTIC_GRAPH = "SemanticGraph"
    DATA_FLOW_GRAPH = "DataFlowGraph"


class GraphNode(RowModel):
    """A graph_nodes row: a symbol or file in a codebase's graph."""

    __table_spec__ = TableSpec(
        "graph_nodes",
        natural_key=("codebase_id", "node_id"),
        vector_index="idx_graph_nodes_vector",
    )

    id: int
    codebase_id: str
    node_id: str
    node_type: str
    name: str
    file_path: str
    line_number: int | None
    vector_embedding: Vector1536 | None = None
    vector_magnitude: float | None
    metadata: dict[str, Any] | None
    created_at: AwareDatetime | None


class GraphNodeCreate(CreateModel):
    """A graph_nodes row to insert."""

    codebase_id: Str255
    node_id: Str255
    node_type: Str100
    name: Str255
    file_path: Str500
    line_number: Int32 | None = None
    vector_embedding: Vector1536 | None = None
    vector_magnitude: float | None = None
    metadata: dict[str, Any] | None = Field(default_factory=dict)


class GraphNodeUpdate(UpdateModel):
    """A partial update of a graph_nodes row."""

    codebase_id: NonNull[Str255] = None
    node_id: NonNull[Str255] = None
    node_type: NonNull[Str100] = None
    name: NonNull[Str255] = None
    file_path: NonNull[Str500] = None
    line_number: Int32 | None = None
    vector_embedding: Vector1536 | None = None
    vector_magnitude: float | None = None
    metadata: dict[str, Any] | None = None


class GraphEdge(RowModel):
    """A graph_edges row: a directed, weighted relation between two nodes (by node_id)."""

    __table_spec__ = TableSpec("graph_edges", natural_key=("codebase_id", "edge_id"))

    id: int
    codebase_id: str
    edge_id: str
    from_node_id: str
    to_node_id: str
    edge_type: str
    weight: float
    metadata: dict[str, Any] | None
    created_at: AwareDatetime | None


class GraphEdgeCreate(CreateModel):
    """A graph_edges row to insert."""

    codebase_id: Str255
    edge_id: Str255
    from_node_id: Str255
    to_node_id: Str255
    edge_type: Str100
    weight: float = 1.0
    metadata: dict[str, Any] | None = Field(default_factory=dict)


class GraphEdgeUpdate(UpdateModel):
    """A partial update of a graph_edges row."""

    codebase_id: NonNull[Str255] = None
    edge_id: NonNull[Str255] = None
    from_node_id: NonNull[Str255] = None
    to_node_id: NonNull[Str255] = None
    edge_type: NonNull[Str100] = None
    weight: NonNull[float] = None
    metadata: dict[str, Any] | None = None


class GraphType(RowModel):
    """A graph_types row: a named kind of graph."""

    __table_spec__ = TableSpec("graph_types", natural_key=("graph_type",))

    id: int
    graph_type: OpenEnum[GraphTypeName]
    description: str | None
    created_at: AwareDatetime | None


class GraphTypeCreate(CreateModel):
    """A graph_types row to insert."""

    graph_type: GraphTypeName
    description: str | None = None


class GraphTypeUpdate(UpdateModel):
    """A partial update of a graph_types row."""

    graph_type: NonNull[GraphTypeName] = None
    description: str | None = None
