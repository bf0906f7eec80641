"""Stage 7, snapshot: one codebase_snapshots row describing the codebase after the run."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..atlas import Atlas

__all__ = ["take_snapshot"]


async def take_snapshot(
    atlas: Atlas, codebase_id: str, *, languages: Counter[str], metadata: dict[str, Any]
) -> int:
    """Record a snapshot of *codebase_id* (files per language, symbols, graph size)."""
    summary = {
        "files": sum(languages.values()),
        "python_files": languages.get("python", 0),
        "functions": await atlas.code.locations.count(
            {"project": codebase_id, "symbol_type": ["function", "method"]}
        ),
        "classes": await atlas.code.locations.count(
            {"project": codebase_id, "symbol_type": "class"}
        ),
        "graph_nodes": await atlas.graph.count({"codebase_id": codebase_id}),
        "graph_edges": await atlas.graph.edges.count({"codebase_id": codebase_id}),
    }
    snapshot = await atlas.snapshots.take(
        codebase_id,
        metadata=metadata,
        summary=summary,
        detected_technologies=[lang for lang, _ in languages.most_common() if lang],
        features={"languages": dict(languages.most_common())},
    )
    return snapshot.snapshot_id
