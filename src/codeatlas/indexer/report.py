"""What an indexing run reports: files per outcome, rows per table, seconds per stage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "STAGES",
    "FileNote",
    "IndexReport",
    "Progress",
    "ProgressCallback",
    "SkippedFile",
]

#: The pipeline's stages, in run order (``IndexReport.seconds`` keys, ``Progress.stage``).
STAGES: Final = (
    "lock",
    "scan",
    "changes",
    "parse",
    "embed",
    "write",
    "graph",
    "snapshot",
    "maintenance",
)


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file the run did not store, and why."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class FileNote:
    """A file stored with something said about it (text made storable, a parse error)."""

    path: str
    note: str


@dataclass(frozen=True, slots=True)
class Progress:
    """One progress update: *done* of *total* (None: unknown) items of *stage*.

    *detail* names the part of the stage (a table for ``write`` and ``maintenance``; for
    ``lock``, reported only when another run holds the codebase, who holds it).
    """

    stage: str
    done: int
    total: int | None
    detail: str | None = None


#: ``on_progress(update)``: called from the event loop; should return quickly.
ProgressCallback = Callable[[Progress], Any]


@dataclass(frozen=True, slots=True)
class IndexReport:
    """What ``Indexer.index`` did to one codebase.

    Every file the scan found is counted once: ``files_scanned == files_indexed +
    files_unchanged + len(skipped)``. ``sanitised`` and ``parse_errors`` name indexed files
    whose text was changed to be storable, or whose Python did not parse.
    """

    codebase_id: str
    root: str
    #: the dotted package the root directory is ("" when it is no package)
    module_prefix: str
    files_scanned: int
    files_indexed: int
    files_unchanged: int
    files_removed: int
    skipped: tuple[SkippedFile, ...]
    sanitised: tuple[FileNote, ...]
    parse_errors: tuple[FileNote, ...]
    #: rows inserted or updated per table by this run
    rows_written: dict[str, int]
    #: rows deleted per table by this run (replaced chunks, vanished files, stale graph)
    rows_deleted: dict[str, int]
    #: rows the codebase holds per table after the run
    rows_stored: dict[str, int]
    #: edges left out because they would close a cycle, per graph type
    cycle_edges_skipped: dict[str, int]
    graph_rebuilt: bool
    #: "table (rows, lists, seconds)" per vector index rebuilt
    indexes_rebuilt: tuple[str, ...]
    snapshot_id: int | None
    #: seconds per stage, in run order
    seconds: dict[str, float] = field(default_factory=dict)
    total_seconds: float = 0.0

    @property
    def files_skipped(self) -> int:
        """Return how many scanned files were not stored."""
        return len(self.skipped)
