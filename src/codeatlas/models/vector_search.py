"""vector_search (embedded content chunks, 1536-d) and vector_similarity_cache (scores)."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, Field

from ._base import CreateModel, RowModel, UpdateModel
from ._table import TableSpec
from ._types import NonNull, Str64, Str100, Str255, Str500, Vector1536

__all__ = [
    "VectorSearch",
    "VectorSearchCreate",
    "VectorSearchUpdate",
    "VectorSimilarityCache",
    "VectorSimilarityCacheCreate",
    "VectorSimilarityCacheUpdate",
]


class VectorSearch(RowModel):
    """A vector_search row: one embedded piece of content of a file.

    ``vector_embedding`` is NOT NULL in the table but None here when the query did not
    select it.
    """

    __table_spec__ = TableSpec(
        "vector_search",
        natural_key=("codebase_id", "file_path", "content_type"),
        vector_index="idx_vector_search_embedding",
        text_index="idx_vector_search_search_tsv",
    )

    id: int
    codebase_id: str
    file_path: str
    content_type: str
    content: str
    vector_embedding: Vector1536 | None = None
    metadata: dict[str, Any] | None
    created_at: AwareDatetime | None


class VectorSearchCreate(CreateModel):
    """A vector_search row to insert (the embedding is required)."""

    codebase_id: Str255
    file_path: Str500
    content_type: Str100
    content: str
    vector_embedding: Vector1536
    metadata: dict[str, Any] | None = Field(default_factory=dict)


class VectorSearchUpdate(UpdateModel):
    """A partial update of a vector_search row."""

    codebase_id: NonNull[Str255] = None
    file_path: NonNull[Str500] = None
    content_type: NonNull[Str100] = None
    content: NonNull[str] = None
    vector_embedding: NonNull[Vector1536] = None
    metadata: dict[str, Any] | None = None


class VectorSimilarityCache(RowModel):
    """A vector_similarity_cache row: a cached query-hash -> file similarity score."""

    __table_spec__ = TableSpec(
        "vector_similarity_cache",
        natural_key=("codebase_id", "query_vector_hash", "target_file_path"),
    )

    id: int
    codebase_id: str
    query_vector_hash: str
    target_file_path: str
    similarity_score: float
    created_at: AwareDatetime | None


class VectorSimilarityCacheCreate(CreateModel):
    """A vector_similarity_cache row to insert."""

    codebase_id: Str255
    query_vector_hash: Str64
    target_file_path: Str500
    similarity_score: float


class VectorSimilarityCacheUpdate(UpdateModel):
    """A partial update of a vector_similarity_cache row."""

    codebase_id: NonNull[Str255] = None
    query_vector_hash: NonNull[Str64] = None
    target_file_path: NonNull[Str500] = None
    similarity_score: NonNull[float] = None
