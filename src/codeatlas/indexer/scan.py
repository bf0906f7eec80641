"""Stage 1, scan: the files under a root, and every candidate left out with its reason."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ..analysis.scan import DEFAULT_EXCLUDE_DIRS, DEFAULT_INCLUDE, DEFAULT_MAX_SIZE, SourceFile
from .report import SkippedFile

__all__ = [
    "DEFAULT_EXCLUDE_DIRS",
    "DEFAULT_INCLUDE",
    "DEFAULT_MAX_FILE_SIZE",
    "MAX_PATH_LENGTH",
    "Scan",
    "scan",
]

#: Files larger than this many bytes are skipped (generated data, not code to read).
DEFAULT_MAX_FILE_SIZE: Final = DEFAULT_MAX_SIZE
#: codebase_metadata.path is varchar(500): longer relative paths cannot be stored.
MAX_PATH_LENGTH: Final = 500


@dataclass(frozen=True, slots=True)
class Scan:
    """The regular files to index (sorted by path) and the candidates skipped."""

    files: tuple[SourceFile, ...]
    skipped: tuple[SkippedFile, ...]


def scan(
    root: Path,
    *,
    include: Collection[str] | None = DEFAULT_INCLUDE,
    exclude_dirs: Collection[str] = DEFAULT_EXCLUDE_DIRS,
    max_file_size: int | None = DEFAULT_MAX_FILE_SIZE,
    follow_symlinks: bool = False,
) -> Scan:
    """Return the files under *root* whose names match *include*, and those left out.

    A candidate is any non-directory entry whose name matches (extension, case-insensitive,
    or whole name; *include* None takes every name). It is skipped with a reason when it is
    a symlink not followed, a broken or looping symlink, not a regular file (a FIFO is never
    opened), larger than *max_file_size*, or its path is too long to store. Directories
    named in *exclude_dirs*, unreadable ones and symlinked ones already seen are not entered.
    """
    suffixes = {i.lower() for i in include or () if i.startswith(".")}
    names = {i for i in include or () if not i.startswith(".")}
    excluded = set(exclude_dirs)
    files: list[SourceFile] = []
    skipped: list[SkippedFile] = []
    top = os.stat(root)
    seen = {(top.st_dev, top.st_ino)}
    stack: list[tuple[str, str]] = [(str(root), "")]

    def wanted(name: str) -> bool:
        if include is None:
            return True
        dot = name.rfind(".")
        return (name[dot:].lower() if dot > 0 else "") in suffixes or name in names

    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue  # unreadable or vanished directory: nothing in it is a candidate
        subdirs: list[tuple[str, str]] = []
        for entry in entries:
            relative = f"{prefix}{entry.name}"
            try:
                is_link = entry.is_symlink()
                info = entry.stat(follow_symlinks=follow_symlinks)
            except OSError as exc:
                if wanted(entry.name):
                    skipped.append(SkippedFile(relative, _link_error(exc)))
                continue
            if stat.S_ISDIR(info.st_mode):
                key = (info.st_dev, info.st_ino)
                if entry.name not in excluded and key not in seen:
                    seen.add(key)
                    subdirs.append((entry.path, relative + "/"))
                continue
            if not wanted(entry.name):
                continue
            if is_link and not follow_symlinks:
                skipped.append(SkippedFile(relative, "symbolic link (not followed)"))
            elif not stat.S_ISREG(info.st_mode):
                skipped.append(SkippedFile(relative, "not a regular file (FIFO, socket or device)"))
            elif max_file_size is not None and info.st_size > max_file_size:
                skipped.append(
                    SkippedFile(
                        relative, f"larger than {max_file_size} bytes ({info.st_size} bytes)"
                    )
                )
            elif len(relative) > MAX_PATH_LENGTH:
                skipped.append(
                    SkippedFile(relative, f"path longer than {MAX_PATH_LENGTH} characters")
                )
            else:
                files.append(SourceFile(relative, Path(entry.path), info.st_size, info.st_mtime_ns))
        stack.extend(reversed(subdirs))
    files.sort(key=lambda f: f.path)
    skipped.sort(key=lambda s: s.path)
    return Scan(tuple(files), tuple(skipped))


def _link_error(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if isinstance(exc, FileNotFoundError):
        return "broken symbolic link or vanished entry"
    return f"unreadable: {exc.strerror or exc}"
