"""``atlas.vector_search``: embedded pieces of content per file (vector_search, 1536-d)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ..errors import InvalidInputError
from ..models import VectorSearch, VectorSearchCreate, VectorSearchUpdate
from ..text_search import TextSearchableRepository
from ._base import check_items

__all__ = ["VectorSearchRepository"]

#: First key of the two-key advisory locks of ``replace_file`` (its own lock namespace).
_FILE_LOCK_CLASS: Final = 0x43410002

# Without it two concurrent replacements of one file would each delete only the rows they
# can see (not the other's uncommitted ones) and leave a mixture of both versions.
_LOCK_FILE: Final = "SELECT pg_advisory_xact_lock($1::int, hashtext($2 || '/' || $3))"
_DELETE_FILE: Final = "DELETE FROM vector_search WHERE codebase_id = $1 AND file_path = $2"


class VectorSearchRepository(
    TextSearchableRepository[VectorSearch, VectorSearchCreate, VectorSearchUpdate]
):
    """Content chunks with their 1536-d embeddings, upserted by (codebase_id, file_path,
    content_type)."""

    row_model = VectorSearch
    create_model = VectorSearchCreate
    update_model = VectorSearchUpdate

    async def replace_file(
        self, codebase_id: str, file_path: str, rows: Sequence[VectorSearchCreate]
    ) -> int:
        """Replace every content row of one file with *rows*, atomically; return the count.

        Readers see either the old rows or the new ones, and concurrent replacements of one
        file queue (the last to commit wins whole). An empty *rows* removes the file.
        """
        codebase_id = self._value("codebase_id", codebase_id)
        file_path = self._value("file_path", file_path)
        check_items(rows, field="rows")
        for row in rows:
            self._check_create(row)
            if row.codebase_id != codebase_id or row.file_path != file_path:
                raise InvalidInputError(
                    f"replace_file({codebase_id!r}, {file_path!r}) got a row of "
                    f"({row.codebase_id!r}, {row.file_path!r})"
                )
        async with self._executor.transaction() as tx:
            await tx.execute(_LOCK_FILE, _FILE_LOCK_CLASS, codebase_id, file_path)
            await tx.execute(_DELETE_FILE, codebase_id, file_path)
            return await type(self)(tx).insert_many(rows)
