"""codebase_snapshots: detected-technology snapshots (append-only: no Update model)."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, Field

from ._base import CreateModel, RowModel
from ._table import TableSpec
from ._types import Int32, Str255

__all__ = [
    "CodebaseSnapshot",
    "CodebaseSnapshotCreate",
]


class CodebaseSnapshot(RowModel):
    """A codebase_snapshots row: what was detected in a codebase at one snapshot."""

    __table_spec__ = TableSpec("codebase_snapshots", natural_key=("codebase_id", "snapshot_id"))

    id: int
    codebase_id: str
    snapshot_id: int
    metadata: dict[str, Any] | None
    summary: dict[str, Any] | None
    detected_technologies: list[str] | None
    features: dict[str, Any] | None
    inserted_at: AwareDatetime | None


class CodebaseSnapshotCreate(CreateModel):
    """A codebase_snapshots row to insert (the JSONB columns have no DB default: None)."""

    codebase_id: Str255
    snapshot_id: Int32
    metadata: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    detected_technologies: list[Str255] | None = Field(default_factory=list)
    features: dict[str, Any] | None = None
