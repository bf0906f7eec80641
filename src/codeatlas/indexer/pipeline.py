"""``Indexer``: the stages of an indexing run, in order, sharing one report.

lock -> scan -> changes -> parse -> embed -> write -> graph -> snapshot -> maintenance. Each
stage is a function of its own module with plain inputs and outputs; this module only
sequences them, times them and reports progress. The lock (``lock.py``) is held from before
the scan until the run ends, so two runs on one codebase never interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import sysconfig
import time
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final
from uuid import UUID, uuid4

import numpy as np
import numpy.typing as npt

from ..analysis.metrics import detect_language
from ..analysis.python import PythonAnalysis, package_prefix
from ..analysis.scan import FileAnalysis, SourceFile
from ..atlas import Atlas
from ..embedders import Embedder, HashingEmbedder, embedder_stamp
from ..errors import InvalidInputError
from ..models import AnalysisStatus, CodebaseMetadata
from ..models._types import check_text
from .changes import Changes, detect_changes
from .embed import check_embedder, embed_batch
from .graph import Graphs, _all, build_graphs, dependency_counts, graph_stamp, write_graphs
from .lock import CodebaseLock, check_lock_timeout, codebase_lock
from .maintenance import rebuild_indexes, vacuum
from .parse import parse
from .report import STAGES, FileNote, IndexReport, Progress, ProgressCallback, SkippedFile
from .rows import FileRows, analysis_from_row, file_rows
from .scan import DEFAULT_EXCLUDE_DIRS, DEFAULT_INCLUDE, DEFAULT_MAX_FILE_SIZE, scan
from .snapshot import take_snapshot
from .write import Written, remove_files, write_batch

__all__ = ["Indexer", "default_codebase_id", "stdlib_path"]

#: Files per write transaction (and per embedding pass).
DEFAULT_BATCH_FILES: Final = 100


def stdlib_path() -> Path:
    """Return the directory of the running Python's standard library source."""
    return Path(sysconfig.get_paths()["stdlib"])


def default_codebase_id(root: Path) -> str:
    """Return ``stdlib-3.X`` for the standard library, else a slug of the directory name."""
    root = Path(root).resolve()
    if root == stdlib_path().resolve():
        return f"stdlib-{sys.version_info.major}.{sys.version_info.minor}"
    slug = re.sub(r"[^a-z0-9]+", "-", root.name.lower()).strip("-")
    return slug or "codebase"


def _directory(path: Path) -> Path:
    resolved = Path(path).resolve()
    if not resolved.is_dir():
        raise InvalidInputError(f"not a directory: {path}")
    return resolved


class Indexer:
    """Index source trees into an atlas, incrementally: only what changed is re-analysed.

    *embedder* (768-d) embeds chunks and symbols, *file_embedder* (1536-d) file summaries;
    both default to ``HashingEmbedder``. *workers* processes parse (0 or 1: this process).
    *exclude_dirs* are directory names never entered; files larger than *max_file_size*
    bytes are skipped. *on_progress* receives a ``Progress`` for every step.

    One run per codebase at a time: a run that finds another indexing the same codebase
    (in any process) waits for it to finish, then indexes what is still out of date;
    *lock_timeout* bounds that wait in seconds (None, the default: no bound; 0: do not
    wait), after which ``LockNotAvailableError`` (retryable) is raised. A run holds one
    pool connection for its whole duration, so the pool needs at least two.
    """

    def __init__(
        self,
        atlas: Atlas,
        *,
        embedder: Embedder | None = None,
        file_embedder: Embedder | None = None,
        workers: int = 2,
        exclude_dirs: Collection[str] = DEFAULT_EXCLUDE_DIRS,
        include: Collection[str] | None = DEFAULT_INCLUDE,
        max_file_size: int | None = DEFAULT_MAX_FILE_SIZE,
        follow_symlinks: bool = False,
        batch_files: int = DEFAULT_BATCH_FILES,
        maintain_indexes: bool = True,
        lock_timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        if isinstance(exclude_dirs, str) or isinstance(include, str):
            raise InvalidInputError("exclude_dirs and include take collections, not one string")
        if batch_files < 1:
            raise InvalidInputError(f"batch_files must be positive, got {batch_files!r}")
        self.atlas = atlas
        self.embedder = embedder if embedder is not None else HashingEmbedder(768)
        self.file_embedder = file_embedder if file_embedder is not None else HashingEmbedder(1536)
        check_embedder(self.embedder, 768, "embedder")
        check_embedder(self.file_embedder, 1536, "file_embedder")
        self.workers = max(0, int(workers))
        self.exclude_dirs = tuple(exclude_dirs)
        self.include = None if include is None else tuple(include)
        self.max_file_size = max_file_size
        self.follow_symlinks = follow_symlinks
        self.batch_files = batch_files
        self.maintain_indexes = maintain_indexes
        self.lock_timeout = check_lock_timeout(lock_timeout)
        self.on_progress = on_progress

    async def index(self, path: Path | str, *, codebase_id: str | None = None) -> IndexReport:
        """Index the tree at *path* as *codebase_id* (default: derived from the path)."""
        root = await asyncio.to_thread(_directory, Path(path))
        cid = codebase_id or default_codebase_id(root)
        check_text(cid, field="codebase_id")
        if len(cid) > 255:
            raise InvalidInputError(f"codebase_id: at most 255 characters, got {len(cid)}")
        run = _Run(self, root, cid)
        started = time.perf_counter()
        waited = False

        def waiting(holder: str) -> None:
            nonlocal waited
            waited = True
            run.emit("lock", 0, 1, f"waiting for another indexer ({holder})")

        async with codebase_lock(
            self.atlas, cid, timeout=self.lock_timeout, on_wait=waiting
        ) as lock:
            run.lock = lock
            run.seconds["lock"] = time.perf_counter() - started
            if waited:
                run.emit("lock", 1, 1)
            return await run.execute()


class _Run:
    """One ``Indexer.index`` call: the stages, in order, and what they found."""

    def __init__(self, indexer: Indexer, root: Path, codebase_id: str) -> None:
        self.indexer = indexer
        self.atlas = indexer.atlas
        self.root = root
        self.codebase_id = codebase_id
        self.seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self.done = Written()
        self.lock: CodebaseLock | None = None
        # which embedders make this run's vectors: recorded per row, compared per file
        self.stamps = {
            "embedder": embedder_stamp(indexer.embedder),
            "file_embedder": embedder_stamp(indexer.file_embedder),
        }

    def emit(self, stage: str, done: int, total: int | None, detail: str | None = None) -> None:
        if self.indexer.on_progress is not None:
            self.indexer.on_progress(Progress(stage, done, total, detail))

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    async def held(self) -> None:
        """Stop the run if its codebase lock was lost (see ``CodebaseLock.check``)."""
        if self.lock is not None:
            await self.lock.check()

    async def execute(self) -> IndexReport:
        started = time.perf_counter()
        atlas, cid, ix = self.atlas, self.codebase_id, self.indexer
        with self.stage("scan"):
            self.emit("scan", 0, None)
            try:
                found = await asyncio.to_thread(
                    scan,
                    self.root,
                    include=ix.include,
                    exclude_dirs=ix.exclude_dirs,
                    max_file_size=ix.max_file_size,
                    follow_symlinks=ix.follow_symlinks,
                )
                prefix = await asyncio.to_thread(package_prefix, self.root)
            except OSError as exc:  # the root itself vanished or became unreadable
                raise InvalidInputError(f"cannot scan {self.root}: {exc.strerror or exc}") from exc
            self.emit("scan", len(found.files), len(found.files))
        languages = Counter(detect_language(f.path) or "unknown" for f in found.files)
        await atlas.codebases.register(
            cid,
            str(self.root),
            self.root.name or str(self.root),
            description="indexed by codeatlas",
            language=languages.most_common(1)[0][0] if found.files else None,
        )
        self.done.written["codebase_registry"] += 1
        await atlas.codebases.set_status(cid, AnalysisStatus.ANALYZING)
        try:
            report = await self._index(found.files, found.skipped, prefix, languages)
        except BaseException:
            with contextlib.suppress(Exception):  # the database may be what failed
                await atlas.codebases.set_status(cid, AnalysisStatus.FAILED)
            raise
        return IndexReport(
            **report, seconds=dict(self.seconds), total_seconds=time.perf_counter() - started
        )

    async def _index(
        self,
        files: Sequence[SourceFile],
        scan_skipped: Sequence[SkippedFile],
        prefix: str,
        languages: Counter[str],
    ) -> dict[str, Any]:
        atlas, cid, ix = self.atlas, self.codebase_id, self.indexer
        with self.stage("changes"):
            self.emit("changes", 0, len(files))
            stamps = await atlas.codebases.file_stamps(cid)
            stored = await atlas.code.inventory(cid)
            state = await atlas.codebases.index_state(cid) or {}
            stored_prefix = state.get("module_prefix", "")
            changes: Changes = await asyncio.to_thread(
                detect_changes,
                files,
                stamps,
                stored,
                reindex_python=stored_prefix != prefix,
                embedders=self.stamps,
            )
            self.emit("changes", len(files), len(files))

        with self.stage("parse"):
            self.emit("parse", 0, len(changes.changed))
            parsed = await parse(
                changes.changed,
                module_prefix=prefix,
                workers=ix.workers,
                on_progress=lambda n: self.emit("parse", n, len(changes.changed)),
            )
        known = set(stamps) | set(stored)
        removed = sorted({*changes.removed, *(s.path for s in parsed.skipped if s.path in known)})
        with self.stage("write"):
            await self.held()
            keep = sorted(set(stamps) - set(removed))
            self.done.add(await remove_files(atlas, cid, removed, keep=keep))

        prebuilt: Graphs | None = None
        if parsed.analyses or removed or stored_prefix != prefix:
            # built before the writes (analysis, timed with the parse), so each file's row
            # carries its dependency counts
            with self.stage("parse"):
                self.emit("parse", 0, None, "graphs")
                present = (set(stamps) - set(removed)) | {a.path for a in parsed.analyses}
                prebuilt = await self._build(prefix, parsed.analyses, present)
                self.emit("parse", 1, 1, "graphs")
        counts = dependency_counts(prebuilt.imports) if prebuilt is not None else {}
        # a first index of a large tree loads with the vector indexes out of the way
        loads = {"codebase_metadata": len(parsed.analyses)}
        loads["code_embeddings"] = sum(len(a.chunks) for a in parsed.analyses)
        async with atlas.indexes.loading(loads):
            fresh = await self._write_files(changes.changed, parsed.analyses, stored, counts)
        if self.done.skipped:
            prebuilt = None  # files the database refused are not in the graph
        graph_rebuilt, cycles = await self._graph(prefix, state, fresh, parsed.analyses, prebuilt)

        await atlas.codebases.set_status(cid, AnalysisStatus.COMPLETED)
        skipped = (*scan_skipped, *parsed.skipped, *self.done.skipped)
        indexed = len(self.done.paths)
        with self.stage("snapshot"):
            self.emit("snapshot", 0, 1)
            snapshot_id = await take_snapshot(
                atlas,
                cid,
                languages=languages,
                metadata={
                    "root": str(self.root),
                    "files_indexed": indexed,
                    "files_unchanged": len(changes.unchanged),
                    "files_skipped": len(skipped),
                    "files_removed": len(removed),
                    "graph_rebuilt": graph_rebuilt,
                },
            )
            self.done.written["codebase_snapshots"] += 1
            self.emit("snapshot", 1, 1)
        rebuilt: list[str] = []
        if ix.maintain_indexes:
            with self.stage("maintenance"):
                self.emit("maintenance", 0, None)
                changed = self.done.written + self.done.deleted
                for table in await vacuum(atlas, changed):
                    self.emit("maintenance", 1, 1, f"vacuum {table}")
                rebuilt = await rebuild_indexes(
                    atlas,
                    self.done.written,
                    lambda table, done, total: self.emit("maintenance", done, total, table),
                )
                self.emit("maintenance", 1, 1)
        written_paths = set(self.done.paths)
        analyses = [a for a in parsed.analyses if a.path in written_paths]
        return {
            "codebase_id": cid,
            "root": str(self.root),
            "module_prefix": prefix,
            "files_scanned": len(files) + len(scan_skipped),
            "files_indexed": indexed,
            "files_unchanged": len(changes.unchanged),
            "files_removed": len(removed),
            "skipped": tuple(sorted(skipped, key=lambda s: s.path)),
            "sanitised": tuple(sorted(self.done.notes, key=lambda n: n.path)),
            "parse_errors": tuple(
                FileNote(a.path, a.python.parse_error)
                for a in analyses
                if a.python is not None and a.python.parse_error
            ),
            "rows_written": dict(sorted(self.done.written.items())),
            "rows_deleted": dict(sorted(self.done.deleted.items())),
            "rows_stored": await self._stored_counts(),
            "cycle_edges_skipped": cycles,
            "graph_rebuilt": graph_rebuilt,
            "indexes_rebuilt": tuple(rebuilt),
            "snapshot_id": snapshot_id,
        }

    async def _write_files(
        self,
        changed: Sequence[SourceFile],
        analyses: Sequence[FileAnalysis],
        stored: dict[str, Any],
        counts: dict[str, tuple[int, int]],
    ) -> dict[str, npt.NDArray[np.float32]]:
        """Embed and write *analyses* batch by batch; return path -> summary of those written."""
        atlas, cid, ix = self.atlas, self.codebase_id, self.indexer
        sources = {f.path: f for f in changed}
        summaries: dict[str, npt.NDArray[np.float32]] = {}
        total = len(analyses)
        self.emit("write", 0, total, "files")
        for start in range(0, total, ix.batch_files):
            batch = analyses[start : start + ix.batch_files]
            with self.stage("embed"):
                vectors = await embed_batch(batch, small=ix.embedder, large=ix.file_embedder)
            with self.stage("write"):
                await self.held()
                rows: list[FileRows] = []
                for i, a in enumerate(batch):
                    file_id: UUID = stored[a.path].id if a.path in stored else uuid4()
                    rows.append(
                        file_rows(
                            cid,
                            str(self.root),
                            sources[a.path],
                            a,
                            file_id,
                            vectors.summaries[i],
                            vectors.chunks[i],
                            vectors.symbols[i],
                            counts.get(a.path),
                            self.stamps,
                        )
                    )
                done = await write_batch(atlas, cid, rows, set(stored))
                self.done.add(done)
                stored_now = set(done.paths)
                for i, a in enumerate(batch):
                    if a.path in stored_now:
                        summaries[a.path] = vectors.summaries[i]
            self.emit("write", min(start + ix.batch_files, total), total, "files")
        return summaries

    async def _build(
        self, prefix: str, analyses: Sequence[FileAnalysis], paths: set[str]
    ) -> Graphs:
        """Return the graphs of *paths*: fresh *analyses*, stored facts for the others."""
        atlas, cid = self.atlas, self.codebase_id
        python: dict[str, PythonAnalysis] = {
            a.path: a.python for a in analyses if a.path in paths and a.python is not None
        }
        wanted = {p for p in paths if detect_language(p) == "python"} - set(python)
        if wanted:
            rows: list[CodebaseMetadata] = await _all(
                atlas.codebases, {"codebase_id": cid, "language": "python"}
            )
            for row in rows:
                if row.path in wanted:
                    python[row.path] = analysis_from_row(row, prefix)
        return await asyncio.to_thread(build_graphs, python)

    async def _graph(
        self,
        prefix: str,
        state: dict[str, Any],
        fresh: dict[str, npt.NDArray[np.float32]],
        analyses: Sequence[FileAnalysis],
        prebuilt: Graphs | None,
    ) -> tuple[bool, dict[str, int]]:
        """Rebuild the graph unless its stamp says it was built from the files as they are."""
        atlas, cid = self.atlas, self.codebase_id
        with self.stage("graph"):
            await self.held()
            stamps = await atlas.codebases.file_stamps(cid)
            digest = graph_stamp(stamps, prefix)
            if state.get("graph") == digest and state.get("module_prefix") == prefix:
                return False, {}
            if prebuilt is None:
                self.emit("graph", 0, None, "build")
                written = [a for a in analyses if a.path in fresh]
                prebuilt = await self._build(prefix, written, set(stamps))
            self.emit("graph", 0, None, "write")
            done, cycles = await write_graphs(
                atlas,
                cid,
                prebuilt,
                fresh=fresh,
                state={**state, "module_prefix": prefix, "graph": digest},
            )
            self.done.add(done)
            self.emit("graph", 1, 1, "write")
        return True, cycles

    async def _stored_counts(self) -> dict[str, int]:
        atlas, cid = self.atlas, self.codebase_id
        files = await atlas.code.inventory(cid)
        return {
            "code_embeddings": sum(f.chunks for f in files.values()),
            "code_files": len(files),
            "code_locations": await atlas.code.locations.count({"project": cid}),
            "codebase_metadata": await atlas.codebases.count({"codebase_id": cid}),
            "codebase_snapshots": await atlas.snapshots.count({"codebase_id": cid}),
            "graph_edges": await atlas.graph.edges.count({"codebase_id": cid}),
            "graph_nodes": await atlas.graph.count({"codebase_id": cid}),
        }
