"""code_files, code_embeddings (768-d chunks of a file) and code_locations (symbols)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, Field

from ._base import CreateModel, RowModel, UpdateModel
from ._table import TableSpec
from ._types import Int32, NonNull, Str255, Vector768

__all__ = [
    "CodeEmbedding",
    "CodeEmbeddingCreate",
    "CodeEmbeddingUpdate",
    "CodeFile",
    "CodeFileCreate",
    "CodeFileUpdate",
    "CodeLocation",
    "CodeLocationCreate",
    "CodeLocationUpdate",
]


class CodeFile(RowModel):
    """A code_files row: a source file of a project (unique per project_name, file_path)."""

    __table_spec__ = TableSpec("code_files", natural_key=("project_name", "file_path"))

    id: UUID
    file_path: str
    project_name: str
    content: str | None
    language: str | None
    size_bytes: int | None
    line_count: int | None
    hash: str | None
    metadata: dict[str, Any] | None
    inserted_at: AwareDatetime
    updated_at: AwareDatetime


class CodeFileCreate(CreateModel):
    """A code_files row to insert (``file_path`` is varchar(255) in this legacy table)."""

    id: UUID | None = None
    file_path: Str255
    project_name: Str255
    content: str | None = None
    language: Str255 | None = None
    size_bytes: Int32 | None = None
    line_count: Int32 | None = None
    hash: Str255 | None = None
    metadata: dict[str, Any] | None = Field(default_factory=dict)


class CodeFileUpdate(UpdateModel):
    """A partial update of a code_files row."""

    file_path: NonNull[Str255] = None
    project_name: NonNull[Str255] = None
    content: str | None = None
    language: Str255 | None = None
    size_bytes: Int32 | None = None
    line_count: Int32 | None = None
    hash: Str255 | None = None
    metadata: dict[str, Any] | None = None


class CodeEmbedding(RowModel):
    """A code_embeddings row: one embedded chunk of a code file."""

    __table_spec__ = TableSpec(
        "code_embeddings",
        vector_index="idx_code_embeddings_embedding_vector",
        text_index="idx_code_embeddings_search_tsv",
    )

    id: UUID
    code_file_id: UUID | None
    chunk_index: int
    chunk_text: str
    embedding: Vector768 | None = None
    metadata: dict[str, Any] | None
    inserted_at: AwareDatetime
    updated_at: AwareDatetime


class CodeEmbeddingCreate(CreateModel):
    """A code_embeddings row to insert."""

    id: UUID | None = None
    code_file_id: UUID | None = None
    chunk_index: Int32
    chunk_text: str
    embedding: Vector768 | None = None
    metadata: dict[str, Any] | None = Field(default_factory=dict)


class CodeEmbeddingUpdate(UpdateModel):
    """A partial update of a code_embeddings row."""

    code_file_id: UUID | None = None
    chunk_index: NonNull[Int32] = None
    chunk_text: NonNull[str] = None
    embedding: Vector768 | None = None
    metadata: dict[str, Any] | None = None


class CodeLocation(RowModel):
    """A code_locations row: where a symbol is defined, with its signature and docs."""

    __table_spec__ = TableSpec(
        "code_locations",
        vector_index="idx_code_locations_embedding_vector",
        text_index="idx_code_locations_search_tsv",
    )

    id: UUID
    project: str
    file_path: str
    line_start: int
    line_end: int
    column_start: int | None
    column_end: int | None
    symbol_type: str
    symbol_name: str
    parent_symbol: str | None
    signature: str | None
    documentation: str | None
    metadata: dict[str, Any] | None
    embedding: Vector768 | None = None
    inserted_at: AwareDatetime
    updated_at: AwareDatetime


class CodeLocationCreate(CreateModel):
    """A code_locations row to insert."""

    id: UUID | None = None
    project: Str255
    file_path: Str255
    line_start: Int32
    line_end: Int32
    column_start: Int32 | None = None
    column_end: Int32 | None = None
    symbol_type: Str255
    symbol_name: Str255
    parent_symbol: Str255 | None = None
    signature: str | None = None
    documentation: str | None = None
    metadata: dict[str, Any] | None = Field(default_factory=dict)
    embedding: Vector768 | None = None


class CodeLocationUpdate(UpdateModel):
    """A partial update of a code_locations row."""

    project: NonNull[Str255] = None
    file_path: NonNull[Str255] = None
    line_start: NonNull[Int32] = None
    line_end: NonNull[Int32] = None
    column_start: Int32 | None = None
    column_end: Int32 | None = None
    symbol_type: NonNull[Str255] = None
    symbol_name: NonNull[Str255] = None
    parent_symbol: Str255 | None = None
    signature: str | None = None
    documentation: str | None = None
    metadata: dict[str, Any] | None = None
    embedding: Vector768 | None = None
