"""semantic_cache: LLM responses cached by key and by query embedding (768-d)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, Field

from ._base import CreateModel, RowModel, UpdateModel
from ._table import TableSpec
from ._types import Int32, NonNull, Str255, Vector768

__all__ = [
    "SemanticCacheEntry",
    "SemanticCacheEntryCreate",
    "SemanticCacheEntryUpdate",
]


class SemanticCacheEntry(RowModel):
    """A semantic_cache row: one cached response (unique per cache_key)."""

    __table_spec__ = TableSpec(
        "semantic_cache",
        natural_key=("cache_key",),
        vector_index="idx_semantic_cache_query_embedding_vector",
    )

    id: UUID
    cache_key: str
    query: str
    query_embedding: Vector768 | None = None
    response: str
    model: str | None
    template_id: str | None
    tokens_used: int | None
    cost_cents: int | None
    hit_count: int | None
    last_accessed: AwareDatetime | None
    ttl_seconds: int | None
    metadata: dict[str, Any] | None
    inserted_at: AwareDatetime
    updated_at: AwareDatetime


class SemanticCacheEntryCreate(CreateModel):
    """A semantic_cache row to insert."""

    id: UUID | None = None
    cache_key: Str255
    query: str
    query_embedding: Vector768 | None = None
    response: str
    model: Str255 | None = None
    template_id: Str255 | None = None
    tokens_used: Int32 | None = None
    cost_cents: Int32 | None = None
    hit_count: Int32 | None = 0
    last_accessed: AwareDatetime | None = None
    ttl_seconds: Int32 | None = None
    metadata: dict[str, Any] | None = Field(default_factory=dict)


class SemanticCacheEntryUpdate(UpdateModel):
    """A partial update of a semantic_cache row."""

    cache_key: NonNull[Str255] = None
    query: NonNull[str] = None
    query_embedding: Vector768 | None = None
    response: NonNull[str] = None
    model: Str255 | None = None
    template_id: Str255 | None = None
    tokens_used: Int32 | None = None
    cost_cents: Int32 | None = None
    hit_count: Int32 | None = None
    last_accessed: AwareDatetime | None = None
    ttl_seconds: Int32 | None = None
    metadata: dict[str, Any] | None = None
