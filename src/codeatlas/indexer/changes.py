"""Stage 2, changes: which scanned files need indexing, which are unchanged, which are gone.

A file is unchanged only when everything that belongs to it is stored: its
codebase_metadata row with the same size and mtime (whole seconds), and (for paths the
code_* tables can hold) its code_files row with the same content hash and exactly the
chunks and symbol locations that row says were written. The indexer writes all of a file's
rows in one transaction, so a run killed at any point leaves each file complete or absent;
these checks also catch rows removed by anyone else.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ..analysis.metrics import detect_language
from ..analysis.scan import SourceFile
from ..repositories.code import StoredCodeFile

__all__ = ["CODE_PATH_LENGTH", "Changes", "detect_changes", "mtime_seconds"]

#: code_files.file_path and code_locations.file_path are varchar(255): a longer path gets
#: its codebase_metadata row only.
CODE_PATH_LENGTH: Final = 255


@dataclass(frozen=True, slots=True)
class Changes:
    """Scanned files split into those to index and those unchanged; stored paths gone."""

    changed: tuple[SourceFile, ...]
    unchanged: tuple[SourceFile, ...]
    removed: tuple[str, ...]


def mtime_seconds(mtime_ns: int) -> int:
    """Return a file's mtime as codebase_metadata.last_modified stores it (whole seconds)."""
    return mtime_ns // 1_000_000_000


def detect_changes(
    files: Sequence[SourceFile],
    stamps: Mapping[str, tuple[int, int]],
    stored: Mapping[str, StoredCodeFile],
    *,
    reindex_python: bool = False,
    gone: Collection[str] = (),
    embedders: Mapping[str, Any] | None = None,
) -> Changes:
    """Split *files* against the stored *stamps* (path -> size, mtime) and code files.

    *reindex_python* treats every Python file as changed (their module names moved);
    *gone* are stored paths to remove even if scanned. *embedders* are the stamps of the
    configured embedders (``embedder``, ``file_embedder``): a file whose code_files row
    records others (or none) is changed, so its vectors are made again.
    """
    changed: list[SourceFile] = []
    unchanged: list[SourceFile] = []
    for f in files:
        if _complete(f, stamps, stored, embedders) and not (
            reindex_python and detect_language(f.path) == "python"
        ):
            unchanged.append(f)
        else:
            changed.append(f)
    on_disk = {f.path for f in files} - set(gone)
    removed = sorted((set(stamps) | set(stored)) - on_disk)
    return Changes(tuple(changed), tuple(unchanged), tuple(removed))


def _complete(
    f: SourceFile,
    stamps: Mapping[str, tuple[int, int]],
    stored: Mapping[str, StoredCodeFile],
    embedders: Mapping[str, Any] | None,
) -> bool:
    if stamps.get(f.path) != (f.size, mtime_seconds(f.mtime_ns)):
        return False
    if len(f.path) > CODE_PATH_LENGTH:
        return True
    row = stored.get(f.path)
    if row is None:
        return False
    expected = (row.metadata.get("chunks"), row.metadata.get("symbols"))
    if expected != (row.chunks, row.locations):
        return False
    if embedders is not None and any(row.metadata.get(k) != v for k, v in embedders.items()):
        return False
    try:
        # mtime has one-second resolution here: the hash catches a same-size edit made
        # within the second of the previous run
        return row.hash == f.content_hash()
    except OSError:
        return False
