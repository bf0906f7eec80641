"""``atlas.snapshots``: append-only codebase snapshots (codebase_snapshots)."""

from __future__ import annotations

from ..models import CodebaseSnapshot, CodebaseSnapshotCreate
from ..models._base import UpdateModel
from ._base import Repository

__all__ = ["SnapshotsRepository"]


class SnapshotsRepository(Repository[CodebaseSnapshot, CodebaseSnapshotCreate, UpdateModel]):
    """Snapshots of a codebase's detected technologies and features; never updated."""

    table = "codebase_snapshots"
    row_model = CodebaseSnapshot
    create_model = CodebaseSnapshotCreate
    natural_key = ("codebase_id", "snapshot_id")
