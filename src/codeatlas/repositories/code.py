"""``atlas.code``: code files, with their embedded chunks (768-d) and symbol locations (768-d)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

from .._db import Executor
from ..errors import InvalidInputError, NotFoundError
from ..models import (
    CodeEmbedding,
    CodeEmbeddingCreate,
    CodeEmbeddingUpdate,
    CodeFile,
    CodeFileCreate,
    CodeFileUpdate,
    CodeLocation,
    CodeLocationCreate,
    CodeLocationUpdate,
)
from ..text_search import TextSearchableRepository
from ._base import Repository, check_items
from ._maintenance import Vacuumable

__all__ = [
    "CodeEmbeddingsRepository",
    "CodeLocationsRepository",
    "CodeRepository",
    "StoredCodeFile",
]


# Locks the file row against a concurrent replace_chunks (NO KEY: inserts of chunks, whose
# foreign-key checks take KEY SHARE on it, still pass).
_LOCK_FILE: Final = "SELECT id FROM code_files WHERE id = $1 FOR NO KEY UPDATE"
_DELETE_CHUNKS: Final = "DELETE FROM code_embeddings WHERE code_file_id = $1"
# code_locations has no row to lock per file: writers of one (project, file) queue on an
# advisory lock instead (hashed into 64 bits; a collision only makes two writers wait).
_LOCK_LOCATIONS: Final = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
_DELETE_LOCATIONS: Final = "DELETE FROM code_locations WHERE project = $1 AND file_path = $2"
_CHUNKS_OF: Final = """
SELECT id, code_file_id, chunk_index, chunk_text, embedding, metadata, inserted_at, updated_at
  FROM code_embeddings
 WHERE code_file_id = $1
 ORDER BY chunk_index, id"""
# Without the embedding: listings of symbols rarely need 768 floats per row.
_SYMBOLS: Final = """
SELECT id, project, file_path, line_start, line_end, column_start, column_end, symbol_type,
       symbol_name, parent_symbol, signature, documentation, metadata, inserted_at, updated_at
  FROM code_locations
 WHERE project = $1
   AND ($2::text IS NULL OR file_path = $2)
   AND ($3::text IS NULL OR symbol_type = $3)
   AND ($4::text IS NULL OR symbol_name = $4)
 ORDER BY file_path, line_start, column_start NULLS FIRST, id"""


# One row per file of a project, without its content, with the rows that belong to it
# counted (an indexer compares these with what it wrote to tell a complete file).
_INVENTORY: Final = """
SELECT f.file_path, f.id, f.hash, f.metadata,
       coalesce(e.chunks, 0) AS chunks, coalesce(l.locations, 0) AS locations
  FROM code_files f
  LEFT JOIN (SELECT code_file_id, count(*) AS chunks
               FROM code_embeddings
              WHERE code_file_id IN (SELECT id FROM code_files WHERE project_name = $1)
              GROUP BY code_file_id) e ON e.code_file_id = f.id
  LEFT JOIN (SELECT file_path, count(*) AS locations
               FROM code_locations
              WHERE project = $1
              GROUP BY file_path) l ON l.file_path = f.file_path
 WHERE f.project_name = $1"""


@dataclass(frozen=True, slots=True)
class StoredCodeFile:
    """A code_files row without its content, and how many chunks and locations it has."""

    file_path: str
    id: UUID
    hash: str | None
    metadata: dict[str, Any]
    chunks: int
    locations: int


class CodeEmbeddingsRepository(
    Vacuumable,
    TextSearchableRepository[CodeEmbedding, CodeEmbeddingCreate, CodeEmbeddingUpdate],
):
    """``atlas.code.embeddings``: a file's chunks with their embeddings."""

    row_model = CodeEmbedding
    create_model = CodeEmbeddingCreate
    update_model = CodeEmbeddingUpdate


class CodeLocationsRepository(
    Vacuumable,
    TextSearchableRepository[CodeLocation, CodeLocationCreate, CodeLocationUpdate],
):
    """``atlas.code.locations``: symbol locations (functions, classes, ...) per file."""

    row_model = CodeLocation
    create_model = CodeLocationCreate
    update_model = CodeLocationUpdate

    async def replace_locations(
        self, project: str, file_path: str, locations: Sequence[CodeLocationCreate]
    ) -> int:
        """Replace every location of (*project*, *file_path*) with *locations* atomically."""
        project = self._value("project", project)
        file_path = self._value("file_path", file_path)
        check_items(locations, field="locations")
        for location in locations:
            self._check_create(location)
            if (location.project, location.file_path) != (project, file_path):
                raise InvalidInputError(
                    f"location {location.symbol_name!r} belongs to "
                    f"{location.project!r}:{location.file_path!r}, not {project!r}:{file_path!r}"
                )
        async with self._executor.transaction() as tx:
            await tx.execute(_LOCK_LOCATIONS, f"code_locations\x1f{project}\x1f{file_path}")
            await tx.execute(_DELETE_LOCATIONS, project, file_path)
            return await CodeLocationsRepository(tx).insert_many(locations)

    async def symbols(
        self,
        project: str,
        *,
        file_path: str | None = None,
        symbol_type: str | None = None,
        name: str | None = None,
    ) -> builtins.list[CodeLocation]:
        """Return the symbols of *project* in file and line order, without embeddings.

        *file_path*, *symbol_type* and *name* (the symbol_name) narrow the result.
        """
        project = self._value("project", project)
        file_path, symbol_type, name = (
            None if value is None else self._value(column, value)
            for column, value in (
                ("file_path", file_path), ("symbol_type", symbol_type), ("symbol_name", name)
            )
        )  # fmt: skip
        records = await self._executor.fetch(_SYMBOLS, project, file_path, symbol_type, name)
        return self._rows(records)


class CodeRepository(Vacuumable, Repository[CodeFile, CodeFileCreate, CodeFileUpdate]):
    """``atlas.code``: source files keyed by (project_name, file_path), with their chunks
    (``.embeddings``) and symbol locations (``.locations``)."""

    row_model = CodeFile
    create_model = CodeFileCreate
    update_model = CodeFileUpdate

    def __init__(self, executor: Executor) -> None:
        super().__init__(executor)
        self.embeddings = CodeEmbeddingsRepository(executor)
        self.locations = CodeLocationsRepository(executor)

    async def replace_chunks(
        self, code_file_id: UUID, chunks: Sequence[CodeEmbeddingCreate]
    ) -> int:
        """Replace the chunks of file *code_file_id* with *chunks* atomically; return the count.

        A chunk's code_file_id may be left unset (it is filled in) but not name another file.
        Raises NotFoundError if the file does not exist.
        """
        code_file_id = self._key(code_file_id)
        check_items(chunks, field="chunks")
        owned: builtins.list[CodeEmbeddingCreate] = []
        for chunk in chunks:
            self.embeddings._check_create(chunk)
            if chunk.code_file_id not in (None, code_file_id):
                raise InvalidInputError(
                    f"chunk {chunk.chunk_index} belongs to file {chunk.code_file_id}, "
                    f"not {code_file_id}"
                )
            owned.append(chunk.model_copy(update={"code_file_id": code_file_id}))
        async with self._executor.transaction() as tx:
            if await tx.fetchval(_LOCK_FILE, code_file_id) is None:
                raise NotFoundError(f"no code_files row with id = {code_file_id!r}")
            await tx.execute(_DELETE_CHUNKS, code_file_id)
            return await CodeEmbeddingsRepository(tx).insert_many(owned)

    async def chunks_of(self, code_file_id: UUID) -> builtins.list[CodeEmbedding]:
        """Return the chunks of file *code_file_id* (with embeddings) in chunk_index order."""
        code_file_id = self._key(code_file_id)
        return self.embeddings._rows(await self._executor.fetch(_CHUNKS_OF, code_file_id))

    async def inventory(self, project: str) -> dict[str, StoredCodeFile]:
        """Return file path -> its row (without content) and row counts, for *project*."""
        project = self._value("project_name", project)
        records = await self._executor.fetch(_INVENTORY, project)
        return {
            r["file_path"]: StoredCodeFile(
                r["file_path"], r["id"], r["hash"], r["metadata"] or {}, r["chunks"], r["locations"]
            )
            for r in records
        }
