"""Stage 8, index maintenance: VACUUM (ANALYZE) bulk-loaded tables, rebuild vector indexes.

A table is vacuumed (``VACUUM (ANALYZE)``) when the run changed at least ``VACUUM_MIN_ROWS``
of its rows, or at least half as many rows as its statistics count (or it has none yet): a
few changed rows of a large table are autovacuum's job, but a small table that was mostly
rewritten must not wait for it. Autovacuum analyses a table only past 50 rows plus 10%, at
a time nobody chooses, and searches read the statistics (the full-text weighing of
``search_hybrid`` among them), so without this the first searches of a small tree ranked
differently from the later ones. A vector index is rebuilt when its table received rows
and ``atlas.indexes.status()`` advises a rebuild or its lists differ from the advice for its
rows: on a first run that is every one (built on an empty table), later runs rebuild only
when the row count moved far enough.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from ..atlas import Atlas
from ..indexes import IndexProgress

__all__ = ["VACUUM_MIN_ROWS", "rebuild_indexes", "vacuum"]

VACUUM_MIN_ROWS: Final = 1000


def _repositories(atlas: Atlas) -> dict[str, Any]:
    return {
        "codebase_metadata": atlas.codebases,
        "code_files": atlas.code,
        "code_embeddings": atlas.code.embeddings,
        "code_locations": atlas.code.locations,
        "graph_nodes": atlas.graph,
        "graph_edges": atlas.graph.edges,
    }


#: Each table's row count as its statistics last counted it (-1: never analysed).
_COUNTED_ROWS: Final = """
SELECT name, (SELECT reltuples FROM pg_class WHERE oid = to_regclass(name)) AS counted
  FROM unnest($1::text[]) AS name"""


async def vacuum(atlas: Atlas, changed: Mapping[str, int]) -> list[str]:
    """VACUUM (ANALYZE) the tables the run changed enough (see the module docstring); name them."""
    repositories = _repositories(atlas)
    touched = [table for table in repositories if changed.get(table, 0) > 0]
    if not touched:
        return []
    counted = {
        row["name"]: row["counted"]
        for row in await atlas.executor.on_primary().fetch(_COUNTED_ROWS, touched)
    }
    done: list[str] = []
    for table in touched:
        rows = changed[table]
        known = counted.get(table)
        if rows >= VACUUM_MIN_ROWS or known is None or known < 0 or rows >= known / 2:
            await repositories[table].vacuum_analyze()
            done.append(table)
    return done


async def rebuild_indexes(
    atlas: Atlas,
    written: Mapping[str, int],
    on_progress: Callable[[str, int, int | None], None] | None = None,
) -> list[str]:
    """Rebuild the vector indexes of tables that received rows, where advised; describe them."""
    statuses = await atlas.indexes.status()
    targets = [
        s.table
        for s in statuses
        if written.get(s.table, 0) and (s.rebuild_advised or s.lists != s.recommended_lists)
    ]

    def report(update: IndexProgress) -> None:
        if on_progress is not None:
            on_progress(update.table, update.done, update.total or None)

    rebuilt: list[str] = []
    for table in targets:
        for result in await atlas.indexes.rebuild(table, on_progress=report):
            rebuilt.append(
                f"{result.table} ({result.rows} rows, {result.lists} lists, {result.seconds:.1f} s)"
            )
            if on_progress is not None:
                on_progress(result.table, 1, 1)
    return rebuilt
