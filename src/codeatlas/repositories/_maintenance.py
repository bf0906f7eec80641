"""``vacuum_analyze()`` for the tables a bulk load fills (the indexer's tables)."""

from __future__ import annotations

from typing import ClassVar, Final

from .._db import Executor
from ..errors import InvalidInputError

__all__ = ["Vacuumable"]

# VACUUM takes no parameters: one complete statement per table, from this closed set.
_VACUUM: Final[dict[str, str]] = {
    "codebase_metadata": "VACUUM (ANALYZE) codebase_metadata",
    "code_files": "VACUUM (ANALYZE) code_files",
    "code_embeddings": "VACUUM (ANALYZE) code_embeddings",
    "code_locations": "VACUUM (ANALYZE) code_locations",
    "graph_nodes": "VACUUM (ANALYZE) graph_nodes",
    "graph_edges": "VACUUM (ANALYZE) graph_edges",
    "vector_search": "VACUUM (ANALYZE) vector_search",
}


class Vacuumable:
    """Adds ``vacuum_analyze()`` to a repository whose table is in the closed set above."""

    table: ClassVar[str]
    _executor: Executor

    async def vacuum_analyze(self) -> None:
        """Run ``VACUUM (ANALYZE)`` on this table (outside any transaction: on the pool).

        After a bulk load, fresh statistics keep the first searches on index plans, and the
        vacuum sets the hint bits of the new rows, which an index build would otherwise set
        while reading them (several times slower on a freshly loaded table).
        """
        statement = _VACUUM.get(self.table)
        if statement is None:
            raise InvalidInputError(f"vacuum_analyze() does not run on {self.table}")
        await self._executor.execute(statement)
