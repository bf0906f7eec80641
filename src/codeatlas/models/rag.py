"""rag_documents, rag_queries and rag_feedback: retrieval-augmented generation records."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, Field

from ._base import CreateModel, RowModel, UpdateModel
from ._table import TableSpec
from ._types import Int32, NonNull, Str255, Vector768

__all__ = [
    "RagDocument",
    "RagDocumentCreate",
    "RagDocumentUpdate",
    "RagFeedback",
    "RagFeedbackCreate",
    "RagFeedbackUpdate",
    "RagQuery",
    "RagQueryCreate",
    "RagQueryUpdate",
]


class RagDocument(RowModel):
    """A rag_documents row: retrievable content (unique per source_type, source_id)."""

    __table_spec__ = TableSpec(
        "rag_documents",
        natural_key=("source_type", "source_id"),
        vector_index="idx_rag_documents_embedding_vector",
        text_index="idx_rag_documents_search_tsv",
    )

    id: UUID
    source_type: str
    source_id: str
    content: str
    embedding: Vector768 | None = None
    metadata: dict[str, Any] | None
    token_count: int | None
    last_accessed: AwareDatetime | None
    access_count: int | None
    inserted_at: AwareDatetime
    updated_at: AwareDatetime


class RagDocumentCreate(CreateModel):
    """A rag_documents row to insert."""

    id: UUID | None = None
    source_type: Str255
    source_id: Str255
    content: str
    embedding: Vector768 | None = None
    metadata: dict[str, Any] | None = Field(default_factory=dict)
    token_count: Int32 | None = None
    last_accessed: AwareDatetime | None = None
    access_count: Int32 | None = 0


class RagDocumentUpdate(UpdateModel):
    """A partial update of a rag_documents row."""

    source_type: NonNull[Str255] = None
    source_id: NonNull[Str255] = None
    content: NonNull[str] = None
    embedding: Vector768 | None = None
    metadata: dict[str, Any] | None = None
    token_count: Int32 | None = None
    last_accessed: AwareDatetime | None = None
    access_count: Int32 | None = None


class RagQuery(RowModel):
    """A rag_queries row: a question, what was retrieved and the answer."""

    __table_spec__ = TableSpec("rag_queries", vector_index="idx_rag_queries_query_embedding_vector")

    id: UUID
    query_text: str
    query_embedding: Vector768 | None = None
    result_ids: list[UUID] | None
    response: str | None
    model_used: str | None
    tokens_used: int | None
    latency_ms: int | None
    metadata: dict[str, Any] | None
    inserted_at: AwareDatetime
    updated_at: AwareDatetime


class RagQueryCreate(CreateModel):
    """A rag_queries row to insert."""

    id: UUID | None = None
    query_text: str
    query_embedding: Vector768 | None = None
    result_ids: list[UUID] | None = Field(default_factory=list)
    response: str | None = None
    model_used: Str255 | None = None
    tokens_used: Int32 | None = None
    latency_ms: Int32 | None = None
    metadata: dict[str, Any] | None = Field(default_factory=dict)


class RagQueryUpdate(UpdateModel):
    """A partial update of a rag_queries row."""

    query_text: NonNull[str] = None
    query_embedding: Vector768 | None = None
    result_ids: list[UUID] | None = None
    response: str | None = None
    model_used: Str255 | None = None
    tokens_used: Int32 | None = None
    latency_ms: Int32 | None = None
    metadata: dict[str, Any] | None = None


class RagFeedback(RowModel):
    """A rag_feedback row: how relevant a document was to a query."""

    __table_spec__ = TableSpec("rag_feedback")

    id: UUID
    query_id: UUID | None
    document_id: UUID | None
    relevance_score: float | None
    user_rating: int | None
    metadata: dict[str, Any] | None
    inserted_at: AwareDatetime
    updated_at: AwareDatetime


class RagFeedbackCreate(CreateModel):
    """A rag_feedback row to insert."""

    id: UUID | None = None
    query_id: UUID | None = None
    document_id: UUID | None = None
    relevance_score: float | None = None
    user_rating: Int32 | None = None
    metadata: dict[str, Any] | None = Field(default_factory=dict)


class RagFeedbackUpdate(UpdateModel):
    """A partial update of a rag_feedback row."""

    query_id: UUID | None = None
    document_id: UUID | None = None
    relevance_score: float | None = None
    user_rating: Int32 | None = None
    metadata: dict[str, Any] | None = None
