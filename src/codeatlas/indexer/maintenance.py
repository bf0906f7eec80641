"""Stage 8, index maintenance: VACUUM (ANALYZE) bulk-loaded tables, rebuild vector indexes.

A table is vacuumed when the run changed at least ``VACUUM_MIN_ROWS`` of its rows (a few
changed rows are autovacuum's job). A vector index is rebuilt when its table received rows
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


async def vacuum(atlas: Atlas, changed: Mapping[str, int]) -> list[str]:
    """VACUUM (ANALYZE) the tables with at least VACUUM_MIN_ROWS *changed* rows; name them."""
    done: list[str] = []
    for table, repository in _repositories(atlas).items():
        if changed.get(table, 0) >= VACUUM_MIN_ROWS:
            await repository.vacuum_analyze()
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
