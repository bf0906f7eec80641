"""The two tables the benchmark loads: what a row looks like and the search SQL, written out.

``SEARCH_SQL`` is the statement ``search_similar`` sends for an unfiltered search without
embeddings (``run.py`` checks that it still is, so the baselines measure the same query).
The row number of the generated data is kept in a text column of each row (``file_path``,
``source_id``) so that recall can be computed from any implementation's primary keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from codeatlas.atlas import Scope
from codeatlas.models import RagDocumentCreate, VectorSearchCreate
from codeatlas.search import SearchableRepository

__all__ = ["RAG_DOCUMENTS", "TABLES", "VECTOR_SEARCH", "TableSpec", "insert_rows"]

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class TableSpec:
    """One benchmarked table: its repository, rows, and the SQL the baselines run."""

    table: str
    dimensions: int
    repository: Callable[[Scope], SearchableRepository[Any, Any, Any]]
    make_row: Callable[[int, Vector], Any]
    #: the written columns, in the order ``insert_sql`` binds them
    insert_columns: tuple[str, ...]
    insert_sql: str
    #: the statement ``search_similar(query, k)`` sends ($1 query vector, $2 k)
    search_sql: str
    #: returns (primary key, row number) for every row
    keys_sql: str

    @property
    def psycopg_search_sql(self) -> str:
        """Return ``search_sql`` with psycopg placeholders (the vector bound in binary)."""
        return self.search_sql.replace("$1", "%(query)b").replace("$2", "%(k)s")

    def row_number(self, key: str) -> int:
        """Return the data row number stored in the row's key column."""
        return int(key.rsplit("_", 1)[1].split(".", 1)[0])


_VECTOR_SEARCH_INSERT: Final = """
INSERT INTO vector_search (codebase_id, file_path, content_type, content, vector_embedding,
                           metadata)
VALUES ($1, $2, $3, $4, $5, $6)"""
_VECTOR_SEARCH_SEARCH: Final = """
SELECT id, codebase_id, file_path, content_type, content, metadata, created_at,
       vector_embedding <=> $1 AS _distance
  FROM vector_search
 WHERE vector_embedding IS NOT NULL
 ORDER BY vector_embedding <=> $1
 LIMIT $2"""
_VECTOR_SEARCH_KEYS: Final = "SELECT id, file_path AS key FROM vector_search"


def _vector_search_row(number: int, vector: Vector) -> VectorSearchCreate:
    return VectorSearchCreate(
        codebase_id=f"repo-{number % 10}",
        file_path=f"src/pkg{number % 97}/module_{number:06d}.py",
        content_type="function",
        content=f"def function_{number}(x):\n    return x * {number}\n",
        vector_embedding=vector,
        metadata={"language": "python", "lines": 2},
    )


_RAG_INSERT: Final = """
INSERT INTO rag_documents (source_type, source_id, content, embedding, metadata, token_count,
                           access_count)
VALUES ($1, $2, $3, $4, $5, $6, $7)"""
_RAG_SEARCH: Final = """
SELECT id, source_type, source_id, content, metadata, token_count, last_accessed,
       access_count, inserted_at, updated_at, embedding <=> $1 AS _distance
  FROM rag_documents
 WHERE embedding IS NOT NULL
 ORDER BY embedding <=> $1
 LIMIT $2"""
_RAG_KEYS: Final = "SELECT id, source_id AS key FROM rag_documents"


def _rag_row(number: int, vector: Vector) -> RagDocumentCreate:
    return RagDocumentCreate(
        source_type="doc",
        source_id=f"doc_{number:06d}",
        content=f"Section {number} of the design notes: how module {number % 97} works.",
        embedding=vector,
        metadata={"source": "synthetic"},
        token_count=16,
        access_count=0,
    )


VECTOR_SEARCH: Final = TableSpec(
    table="vector_search",
    dimensions=1536,
    repository=lambda atlas: atlas.vector_search,
    make_row=_vector_search_row,
    insert_columns=(
        "codebase_id",
        "file_path",
        "content_type",
        "content",
        "vector_embedding",
        "metadata",
    ),
    insert_sql=_VECTOR_SEARCH_INSERT,
    search_sql=_VECTOR_SEARCH_SEARCH,
    keys_sql=_VECTOR_SEARCH_KEYS,
)

RAG_DOCUMENTS: Final = TableSpec(
    table="rag_documents",
    dimensions=768,
    repository=lambda atlas: atlas.rag,
    make_row=_rag_row,
    insert_columns=(
        "source_type",
        "source_id",
        "content",
        "embedding",
        "metadata",
        "token_count",
        "access_count",
    ),
    insert_sql=_RAG_INSERT,
    search_sql=_RAG_SEARCH,
    keys_sql=_RAG_KEYS,
)

#: By dimension, smallest first.
TABLES: Final = {768: RAG_DOCUMENTS, 1536: VECTOR_SEARCH}


async def insert_rows(
    atlas: Scope,
    spec: TableSpec,
    vectors: Vector,
    *,
    chunk: int = 10_000,
    advance: Callable[[], None] | None = None,
) -> None:
    """Insert one generated row of *spec* per vector (its row number is its position), with
    ``insert_many`` (binary COPY) *chunk* rows at a time; *advance* after each chunk."""
    repository = spec.repository(atlas)
    for start in range(0, len(vectors), chunk):
        stop = min(start + chunk, len(vectors))
        await repository.insert_many([spec.make_row(n, vectors[n]) for n in range(start, stop)])
        if advance is not None:
            advance()
