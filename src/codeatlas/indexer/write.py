"""Stage 5, write: each batch of files in one transaction, so a file is stored whole or not.

A batch's codebase_metadata rows (the stamps change detection trusts), code_files rows,
replaced chunks and symbol locations commit together. When a batch fails on its data (a row
the database refuses), its files are written one transaction each and only the refused
files are skipped; when no file of the batch can be written the error is systemic (schema,
permissions) and propagates. Connection and resource errors always propagate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..atlas import Atlas
from ..errors import DatabaseError, IntegrityError, InvalidInputError
from .report import FileNote, SkippedFile
from .rows import FileRows

__all__ = ["Written", "remove_files", "write_batch"]

#: errors that a file's own rows can cause (and a file-by-file retry can isolate)
_DATA_ERRORS = (InvalidInputError, IntegrityError, DatabaseError)


def _about_data(exc: BaseException) -> bool:
    """Return whether *exc* is about the rows written (not the schema or the server)."""
    if isinstance(exc, DatabaseError):
        # class 22: data exceptions (a value the column's type cannot hold)
        return (exc.sqlstate or "").startswith("22")
    return isinstance(exc, InvalidInputError | IntegrityError)


@dataclass(slots=True)
class Written:
    """Rows written and deleted per table, and files whose rows the database refused."""

    written: Counter[str] = field(default_factory=Counter)
    deleted: Counter[str] = field(default_factory=Counter)
    skipped: list[SkippedFile] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    #: what was changed to make the written files storable
    notes: list[FileNote] = field(default_factory=list)

    def add(self, other: Written) -> None:
        """Add *other*'s counts and files to these."""
        self.written.update(other.written)
        self.deleted.update(other.deleted)
        self.skipped.extend(other.skipped)
        self.paths.extend(other.paths)
        self.notes.extend(other.notes)


async def _write(
    atlas: Atlas, codebase_id: str, files: Sequence[FileRows], replaced: set[str]
) -> Written:
    done = Written()
    metadata = [f.metadata for f in files]
    code_files = [f.code_file for f in files if f.code_file is not None]
    again = [f for f in files if f.path in replaced]
    async with atlas.transaction() as tx:
        if again:
            ids = [f.code_file.id for f in again if f.code_file is not None and f.code_file.id]
            if ids:
                done.deleted["code_embeddings"] += await tx.code.embeddings.delete_where(
                    {"code_file_id": ids}
                )
            paths = [f.path for f in again if f.code_file is not None]
            if paths:
                done.deleted["code_locations"] += await tx.code.locations.delete_where(
                    {"project": codebase_id, "file_path": paths}
                )
        if code_files:
            done.written["code_files"] += await tx.code.upsert_many(code_files)
        chunks = [c for f in files for c in f.chunks]
        if chunks:
            done.written["code_embeddings"] += await tx.code.embeddings.insert_many(chunks)
        locations = [loc for f in files for loc in f.locations]
        if locations:
            done.written["code_locations"] += await tx.code.locations.insert_many(locations)
        # the stamps last: nothing of a file counts as indexed before its other rows
        done.written["codebase_metadata"] += await tx.codebases.upsert_many(metadata)
    done.paths.extend(f.path for f in files)
    done.notes.extend(FileNote(f.path, note) for f in files for note in f.notes)
    return done


async def write_batch(
    atlas: Atlas, codebase_id: str, files: Sequence[FileRows], replaced: set[str]
) -> Written:
    """Write the rows of *files* (those in *replaced* had rows before) atomically.

    Falls back to one transaction per file when the batch fails on its data.
    """
    if not files:
        return Written()
    try:
        return await _write(atlas, codebase_id, files, replaced)
    except _DATA_ERRORS as batch_error:
        if not _about_data(batch_error):
            raise
        done = Written()
        for f in files:
            try:
                done.add(await _write(atlas, codebase_id, [f], replaced))
            except _DATA_ERRORS as exc:
                if not _about_data(exc):
                    raise
                done.skipped.append(SkippedFile(f.path, f"could not be stored: {exc}"[:300]))
        return done


async def remove_files(
    atlas: Atlas, codebase_id: str, paths: Sequence[str], *, keep: Sequence[str]
) -> Written:
    """Delete every row of the files at *paths* in one transaction (*keep*: the rest)."""
    done = Written()
    if not paths:
        return done
    async with atlas.transaction() as tx:
        # the stamps first: a file without its stamp is re-indexed, never trusted
        done.deleted["codebase_metadata"] += await tx.codebases.remove_missing(codebase_id, keep)
        done.deleted["code_locations"] += await tx.code.locations.delete_where(
            {"project": codebase_id, "file_path": list(paths)}
        )
        # code_embeddings go with their file (ON DELETE CASCADE)
        done.deleted["code_files"] += await tx.code.delete_where(
            {"project_name": codebase_id, "file_path": list(paths)}
        )
    return done
