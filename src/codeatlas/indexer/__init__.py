"""The indexing pipeline: source trees into codeatlas' tables, incrementally and robustly.

``Indexer(atlas, ...)`` runs the stages in order, each a module of this package::

    lock -> scan -> changes -> parse -> embed -> write -> graph -> snapshot -> maintenance

and ``await indexer.index(path, codebase_id=...)`` returns an ``IndexReport``. One run per
codebase at a time: a second run waits for the first (``lock_timeout`` bounds the wait). No single
file can fail a run: each file is stored (its text made storable: NUL and lone surrogates
become U+FFFD, undecodable bytes too) or skipped with a reason. A file's rows commit in one
transaction with its change-detection stamp, so an interrupted run followed by a new one
ends with exactly the rows of a clean run. See docs/indexer.md.
"""

from __future__ import annotations

from .pipeline import DEFAULT_BATCH_FILES, Indexer, default_codebase_id, stdlib_path
from .report import STAGES, FileNote, IndexReport, Progress, ProgressCallback, SkippedFile
from .scan import DEFAULT_EXCLUDE_DIRS, DEFAULT_INCLUDE, DEFAULT_MAX_FILE_SIZE

__all__ = [
    "DEFAULT_BATCH_FILES",
    "DEFAULT_EXCLUDE_DIRS",
    "DEFAULT_INCLUDE",
    "DEFAULT_MAX_FILE_SIZE",
    "STAGES",
    "FileNote",
    "IndexReport",
    "Indexer",
    "Progress",
    "ProgressCallback",
    "SkippedFile",
    "default_codebase_id",
    "stdlib_path",
]
