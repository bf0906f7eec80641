"""``codeatlas demo``: index a source tree end to end, then answer questions about it.

``run_demo`` scans a tree, parses its files in a process pool, and writes every table the
code-intelligence schema has for them through the bulk paths (binary COPY): per-file
metrics and a 1536-d summary embedding in codebase_metadata, the source in code_files, its
chunks (768-d) in code_embeddings, every function and class in code_locations (768-d), the
import and call graphs in graph_nodes/graph_edges with PageRank, and a snapshot. It then
rebuilds the vector indexes that received rows, with lists sized to the data, and answers
example questions by similarity search.

A second run on the same tree is incremental: files whose size and mtime (and content hash)
match what is stored are not parsed or written again, and files that vanished are removed.
When anything changed, the graphs are rebuilt from the fresh analyses of the changed files
plus the stored facts of the others (imports, and functions with their calls, kept in
codebase_metadata's JSON columns), and only the difference is written; PageRank is then
recomputed over the whole graph. A run with no change writes nothing but its snapshot.

Measures stored per file: ``cyclomatic_complexity`` is the largest McCabe complexity of
the file's functions (the module level's when it has none); ``maintainability_index``,
the Halstead measures and the line counts come from ``codeatlas.analysis``;
``documentation_coverage`` is the share of functions and classes with a docstring;
``dependency_count`` / ``dependent_count`` count the in-tree modules a module imports and
is imported by; ``last_modified`` is the file's mtime in whole seconds since the epoch.
``pagerank_score`` is the sum of the PageRank of the file's nodes (its module and its
functions) over the combined import and call graph; the import and call subgraphs are
disjoint, so the module nodes rank exactly as in the import graph alone.
"""

from __future__ import annotations

import ast
import asyncio
import re
import sys
import sysconfig
import time
from collections import Counter, defaultdict
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Final, TypeVar
from uuid import UUID, uuid4

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from .analysis import (
    DEFAULT_EXCLUDE_DIRS,
    FileAnalysis,
    Graph,
    Import,
    PythonAnalysis,
    SourceFile,
    Symbol,
    analyse_file,
    build_call_graph,
    build_import_graph,
    detect_language,
    module_name,
    scan_tree,
)
from .atlas import Atlas
from .embedding import Embedder, HashingEmbedder
from .errors import InvalidInputError
from .indexes import IndexProgress
from .models import (
    AnalysisStatus,
    CodebaseMetadata,
    CodebaseMetadataCreate,
    CodeEmbeddingCreate,
    CodeFileCreate,
    CodeLocationCreate,
    GraphEdge,
    GraphEdgeCreate,
    GraphNode,
    GraphNodeCreate,
)
from .repositories._base import Page, Repository

__all__ = [
    "DEFAULT_QUERIES",
    "STDLIB_TEST_DIRS",
    "CentralModule",
    "DemoReport",
    "FileHit",
    "FunctionHit",
    "QueryResult",
    "default_codebase_id",
    "run_demo",
    "stdlib_path",
]

#: Questions answered when the caller gives none.
DEFAULT_QUERIES: Final = (
    "parse command line arguments",
    "read and write zip archives",
    "send an email over smtp",
)
#: Directories of the standard library's own test suites and IDE, left out of the default
#: demo run (they double its size; ``codeatlas demo --include-tests`` takes them).
STDLIB_TEST_DIRS: Final = ("test", "tests", "idlelib")

_GRAPH_TYPES: Final = {"imports": "ImportGraph", "calls": "CallGraph"}
_MODULE_KINDS: Final = ("module", "package")
# varchar limits of the legacy code_* tables and of graph ids
_SHORT: Final = 255
_LONG: Final = 500
_WRITE_BATCH: Final = 2000
_HEAD_CHARS: Final = 1500
_PAGE: Final = 10_000

# code_files of a project without their content (the base's list() would carry it).
_CODE_FILES: Final = "SELECT file_path, id, hash FROM code_files WHERE project_name = $1"
# Dependency counts move when other files change; only rows whose counts differ are touched.
_SET_DEPENDENCY_COUNTS: Final = """
UPDATE codebase_metadata m
   SET dependency_count = s.dependencies, dependent_count = s.dependents,
       updated_at = (now() AT TIME ZONE 'utc')
  FROM unnest($2::text[], $3::int[], $4::int[]) AS s (path, dependencies, dependents)
 WHERE m.codebase_id = $1 AND m.path = s.path
   AND (m.dependency_count, m.dependent_count) IS DISTINCT FROM (s.dependencies, s.dependents)"""

# VACUUM takes no parameters: one complete statement per table, chosen from this closed set.
_VACUUM: Final = {
    table: f"VACUUM (ANALYZE) {table}"
    for table in (
        "codebase_metadata",
        "code_files",
        "code_embeddings",
        "code_locations",
        "graph_nodes",
        "graph_edges",
    )
}
_VACUUMED: Final = tuple(_VACUUM)
_VACUUM_MIN_ROWS: Final = 1000

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class FileHit:
    """A file found for a question."""

    path: str
    similarity: float


@dataclass(frozen=True, slots=True)
class FunctionHit:
    """A function or method found for a question."""

    path: str
    name: str
    line: int
    similarity: float


@dataclass(frozen=True, slots=True)
class QueryResult:
    """The answer to one question: top files and functions, and each search's latency."""

    query: str
    files: list[FileHit]
    functions: list[FunctionHit]
    files_ms: float
    functions_ms: float


@dataclass(frozen=True, slots=True)
class CentralModule:
    """A module with its PageRank in the import graph."""

    module: str
    path: str
    score: float


@dataclass(slots=True)
class DemoReport:
    """What a demo run did: files, rows written per table, timings and answers."""

    codebase_id: str
    root: str
    files_scanned: int = 0
    files_indexed: int = 0
    files_skipped: int = 0
    files_removed: int = 0
    parse_errors: int = 0
    #: rows written (inserted or updated) per table by this run
    rows_written: dict[str, int] = field(default_factory=dict)
    #: rows deleted per table by this run (replaced chunks, vanished files, stale graph)
    rows_deleted: dict[str, int] = field(default_factory=dict)
    #: rows the codebase has per table after the run
    rows_stored: dict[str, int] = field(default_factory=dict)
    #: edges left out because they would close a cycle, per graph type
    cycle_edges_skipped: dict[str, int] = field(default_factory=dict)
    graph_rebuilt: bool = False
    indexes_rebuilt: list[str] = field(default_factory=list)
    snapshot_id: int | None = None
    #: seconds per phase, in run order
    phases: dict[str, float] = field(default_factory=dict)
    total_seconds: float = 0.0
    queries: list[QueryResult] = field(default_factory=list)
    central_modules: list[CentralModule] = field(default_factory=list)


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


# -- the run ---------------------------------------------------------------------------------


async def run_demo(
    atlas: Atlas,
    root: Path | str,
    *,
    codebase_id: str | None = None,
    queries: Sequence[str] = DEFAULT_QUERIES,
    console: Console | None = None,
    workers: int = 2,
    exclude_dirs: Collection[str] = DEFAULT_EXCLUDE_DIRS,
) -> DemoReport:
    """Index the tree at *root* into *atlas* (incrementally), then answer *queries*.

    *workers* processes parse the files (0 or 1: in this process); *exclude_dirs* are
    directory names never entered. Progress and results go to *console*.
    """
    root = await asyncio.to_thread(_directory, Path(root))
    if isinstance(queries, str):
        raise InvalidInputError("queries takes a sequence of questions, not one string")
    run = _Run(
        atlas,
        root,
        codebase_id or default_codebase_id(root),
        console or Console(),
        max(0, workers),
        exclude_dirs,
    )
    return await run.execute(list(queries))


@dataclass(slots=True)
class _Stored:
    """What the database holds for the codebase before the run."""

    stamps: dict[str, tuple[int, int]]
    files: dict[str, tuple[UUID, str | None]]


@dataclass(slots=True)
class _FileRows:
    """The rows of the re-analysed files, ready to write."""

    summaries: dict[str, npt.NDArray[np.float32]]
    metadata: list[CodebaseMetadataCreate]
    code_files: list[CodeFileCreate]
    #: code_files ids and paths of files indexed before, whose chunks and symbols go
    replaced: list[UUID]
    replaced_paths: list[str]
    chunks: list[CodeEmbeddingCreate]
    locations: list[CodeLocationCreate]


@dataclass(slots=True)
class _Graphs:
    imports: Graph
    calls: Graph


class _Run:
    """One demo run: the phases of ``run_demo`` sharing their inputs and the report."""

    def __init__(
        self,
        atlas: Atlas,
        root: Path,
        codebase_id: str,
        console: Console,
        workers: int,
        exclude_dirs: Collection[str],
    ) -> None:
        self.atlas = atlas
        self.root = root
        self.codebase_id = codebase_id
        self.console = console
        self.workers = workers
        self.exclude_dirs = exclude_dirs
        self.report = DemoReport(codebase_id=codebase_id, root=str(root))
        self.small = HashingEmbedder(768)
        self.large = HashingEmbedder(1536)

    @contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            phases = self.report.phases
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - started

    def _progress(self) -> Progress:
        return Progress(
            TextColumn("{task.description:<24}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
        )

    def _wrote(self, table: str, rows: int) -> None:
        self.report.rows_written[table] = self.report.rows_written.get(table, 0) + rows

    def _deleted(self, table: str, rows: int) -> None:
        self.report.rows_deleted[table] = self.report.rows_deleted.get(table, 0) + rows

    async def execute(self, queries: list[str]) -> DemoReport:
        started = time.perf_counter()
        report = self.report
        self.console.print(f"codeatlas demo: indexing [bold]{self.root}[/] as {self.codebase_id}")
        with self._phase("scan"):
            files = self._scan()
        report.files_scanned = len(files)
        languages = Counter(_language(f.path) for f in files)
        codebases = self.atlas.codebases
        await codebases.register(
            self.codebase_id,
            str(self.root),
            self.root.name or str(self.root),
            description="indexed by codeatlas demo",
            language=languages.most_common(1)[0][0] if files else None,
        )
        self._wrote("codebase_registry", 1)
        await codebases.set_status(self.codebase_id, AnalysisStatus.ANALYZING)
        try:
            await self._index(files, languages)
        except BaseException:
            await codebases.set_status(self.codebase_id, AnalysisStatus.FAILED)
            raise
        await codebases.set_status(self.codebase_id, AnalysisStatus.COMPLETED)
        with self._phase("queries"):
            for query in queries:
                report.queries.append(await self._answer(query))
            report.central_modules = await self._central_modules(10)
        await self._count_stored()
        report.total_seconds = time.perf_counter() - started
        self._print_answers()
        self._print_summary()
        return report

    def _scan(self) -> list[SourceFile]:
        files = [
            f
            for f in scan_tree(self.root, exclude_dirs=self.exclude_dirs)
            if len(f.path) <= _LONG  # codebase_metadata.path is varchar(500)
        ]
        return files

    async def _index(self, files: list[SourceFile], languages: Counter[str]) -> None:
        report = self.report
        with self._phase("scan"):
            stored = await self._stored()
            changed, unchanged = self._changes(files, stored)
            on_disk = {f.path for f in files}
            removed = sorted(set(stored.stamps) - on_disk)
        report.files_indexed = len(changed)
        report.files_skipped = len(unchanged)
        report.files_removed = len(removed)
        self.console.print(
            f"{len(files)} files: {len(changed)} to index, {len(unchanged)} unchanged "
            f"(skipped), {len(removed)} removed"
        )
        with self._phase("parse"):
            analyses = await self._parse(changed)
        report.parse_errors = sum(
            1 for a in analyses if a.error or (a.python is not None and a.python.parse_error)
        )

        graphs: _Graphs | None = None
        rebuild_graph = bool(changed or removed) or not await self.atlas.graph.exists(
            {"codebase_id": self.codebase_id}
        )
        if rebuild_graph and any(_language(f.path) == "python" for f in files):
            with self._phase("graph build"):
                fresh = {a.path: a.python for a in analyses if a.python is not None}
                kept = await self._stored_analyses(
                    [f.path for f in unchanged if _language(f.path) == "python"]
                )
                python = sorted({**kept, **fresh}.items())
                graphs = _Graphs(build_import_graph(python), build_call_graph(python))
        report.graph_rebuilt = graphs is not None
        counts = _dependency_counts(graphs.imports) if graphs is not None else {}

        with self._phase("embed"):
            rows = await self._prepare_files(changed, analyses, counts, stored)
        with self._phase("write"):
            await self._remove(removed, stored)
            await self._write_files(rows)
            if graphs is not None:
                await self._write_graphs(graphs, rows.summaries)
                await self._update_dependency_counts(graphs)
        if graphs is not None:
            with self._phase("pagerank"):
                await self.atlas.graph.compute_pagerank(self.codebase_id)
        with self._phase("vacuum analyze"):
            await self._vacuum()
        with self._phase("index builds"):
            await self._rebuild_indexes()
        with self._phase("snapshot"):
            snapshot = await self.atlas.snapshots.take(
                self.codebase_id,
                metadata={
                    "root": str(self.root),
                    "files_indexed": report.files_indexed,
                    "files_skipped": report.files_skipped,
                    "files_removed": report.files_removed,
                    "graph_rebuilt": report.graph_rebuilt,
                },
                summary=await self._summary_counts(languages),
                detected_technologies=[lang for lang, _ in languages.most_common() if lang],
                features={"languages": dict(languages.most_common())},
            )
            self._wrote("codebase_snapshots", 1)
            report.snapshot_id = snapshot.snapshot_id

    # -- what changed ----------------------------------------------------------------------

    async def _stored(self) -> _Stored:
        stamps = await self.atlas.codebases.file_stamps(self.codebase_id)
        records = await self.atlas.executor.fetch(_CODE_FILES, self.codebase_id)
        files = {r["file_path"]: (r["id"], r["hash"]) for r in records}
        return _Stored(stamps, files)

    def _changes(
        self, files: list[SourceFile], stored: _Stored
    ) -> tuple[list[SourceFile], list[SourceFile]]:
        changed: list[SourceFile] = []
        unchanged: list[SourceFile] = []
        for f in files:
            same = stored.stamps.get(f.path) == (f.size, _seconds(f.mtime_ns))
            if same and f.path in stored.files:
                # mtime has one-second resolution here: the hash catches a same-size edit
                # within the second of the previous run
                same = stored.files[f.path][1] == f.content_hash()
            (unchanged if same else changed).append(f)
        return changed, unchanged

    async def _parse(self, files: list[SourceFile]) -> list[FileAnalysis]:
        if not files:
            return []
        results: list[FileAnalysis] = []
        with self._progress() as progress:
            task = progress.add_task("parse files", total=len(files))
            if self.workers <= 1:
                for f in files:
                    results.append(analyse_file(f))
                    progress.advance(task)
                    if len(results) % 16 == 0:
                        await asyncio.sleep(0)
                return results
            loop = asyncio.get_running_loop()
            # spawn: forking a process that runs an event loop and holds sockets is unsafe
            with ProcessPoolExecutor(self.workers, mp_context=get_context("spawn")) as pool:
                batches = list(_batches(files, 8))
                futures = [loop.run_in_executor(pool, _analyse_batch, b) for b in batches]
                for future in asyncio.as_completed(futures):
                    done = await future
                    results.extend(done)
                    progress.advance(task, len(done))
        order = {f.path: i for i, f in enumerate(files)}
        results.sort(key=lambda a: order[a.path])
        return results

    async def _stored_analyses(self, paths: list[str]) -> dict[str, PythonAnalysis]:
        """Return the graph facts of unchanged Python files, from their codebase_metadata."""
        if not paths:
            return {}
        wanted = set(paths)
        rows = await _all_rows(
            self.atlas.codebases, {"codebase_id": self.codebase_id, "language": "python"}
        )
        return {row.path: _analysis_from_row(row) for row in rows if row.path in wanted}

    # -- writes ----------------------------------------------------------------------------

    async def _embed(self, embedder: Embedder, texts: list[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, embedder.dimensions), dtype=np.float32)
        parts = [await embedder.embed(batch) for batch in _batches(texts, 4096)]
        return np.concatenate(parts)

    async def _remove(self, removed: list[str], stored: _Stored) -> None:
        if not removed:
            return
        keep = set(stored.stamps) - set(removed)
        atlas = self.atlas
        async with atlas.transaction() as tx:
            self._deleted(
                "codebase_metadata", await tx.codebases.remove_missing(self.codebase_id, keep)
            )
            gone = [p for p in removed if p in stored.files]
            if gone:
                self._deleted(
                    "code_locations",
                    await tx.code.locations.delete_where(
                        {"project": self.codebase_id, "file_path": gone}
                    ),
                )
                # code_embeddings go with their file (ON DELETE CASCADE)
                self._deleted(
                    "code_files",
                    await tx.code.delete_where(
                        {"project_name": self.codebase_id, "file_path": gone}
                    ),
                )

    async def _prepare_files(
        self,
        files: list[SourceFile],
        analyses: list[FileAnalysis],
        counts: dict[str, tuple[int, int]],
        stored: _Stored,
    ) -> _FileRows:
        """Return the rows of the re-analysed files, with their embeddings."""
        summaries = await self._embed(self.large, [_summary(a) for a in analyses])
        by_path = {f.path: f for f in files}
        metadata = [
            _metadata_row(
                self.codebase_id, str(self.root), by_path[a.path], a, vector, counts.get(a.path)
            )
            for a, vector in zip(analyses, summaries, strict=True)
        ]
        # the legacy code_* tables hold paths of at most 255 characters
        coded = [a for a in analyses if len(a.path) <= _SHORT]
        ids = {
            a.path: stored.files[a.path][0] if a.path in stored.files else uuid4() for a in coded
        }
        code_files = [
            _code_file_row(self.codebase_id, ids[a.path], by_path[a.path], a) for a in coded
        ]
        pieces = [(a, chunk) for a in coded for chunk in a.chunks]
        symbols = [(a, s) for a in coded if a.python is not None for s in a.python.symbols]
        chunk_vectors = await self._embed(self.small, [chunk.text for _, chunk in pieces])
        symbol_vectors = await self._embed(self.small, [_symbol_text(a, s) for a, s in symbols])
        chunks = [
            CodeEmbeddingCreate(
                code_file_id=ids[a.path],
                chunk_index=chunk.index,
                chunk_text=chunk.text.replace("\x00", ""),
                embedding=vector,
                metadata={
                    "kind": chunk.kind,
                    "name": chunk.name,
                    "start_line": chunk.start_line,
                    "end_line": chunk.end_line,
                    "part": chunk.part,
                },
            )
            for (a, chunk), vector in zip(pieces, chunk_vectors, strict=True)
        ]
        locations = [
            _location_row(self.codebase_id, a, s, vector)
            for (a, s), vector in zip(symbols, symbol_vectors, strict=True)
        ]
        return _FileRows(
            summaries={a.path: v for a, v in zip(analyses, summaries, strict=True)},
            metadata=metadata,
            code_files=code_files,
            replaced=[ids[a.path] for a in coded if a.path in stored.files],
            replaced_paths=[a.path for a in coded if a.path in stored.files],
            chunks=chunks,
            locations=locations,
        )

    async def _write_files(self, rows: _FileRows) -> None:
        if not rows.metadata:
            return
        atlas = self.atlas
        with self._progress() as progress:
            meta_task = progress.add_task("codebase_metadata", total=len(rows.metadata))

            def on_metadata(done: int, total: int) -> None:
                progress.update(meta_task, completed=done)

            self._wrote(
                "codebase_metadata",
                await atlas.codebases.ingest(
                    rows.metadata, batch_size=500, on_progress=on_metadata
                ),
            )
            async with atlas.transaction() as tx:
                file_task = progress.add_task("code_files", total=len(rows.code_files))
                for batch in _batches(rows.code_files, 500):
                    self._wrote("code_files", await tx.code.upsert_many(batch))
                    progress.advance(file_task, len(batch))
                if rows.replaced:
                    self._deleted(
                        "code_embeddings",
                        await tx.code.embeddings.delete_where({"code_file_id": rows.replaced}),
                    )
                    self._deleted(
                        "code_locations",
                        await tx.code.locations.delete_where(
                            {"project": self.codebase_id, "file_path": rows.replaced_paths}
                        ),
                    )
                await self._insert(progress, "code_embeddings", tx.code.embeddings, rows.chunks)
                await self._insert(progress, "code_locations", tx.code.locations, rows.locations)

    async def _insert(
        self, progress: Progress, table: str, repository: Repository[Any, Any, Any], rows: list[Any]
    ) -> None:
        task = progress.add_task(table, total=len(rows))
        for batch in _batches(rows, _WRITE_BATCH):
            self._wrote(table, await repository.insert_many(batch))
            progress.advance(task, len(batch))

    async def _write_graphs(
        self, graphs: _Graphs, vectors: dict[str, npt.NDArray[np.float32]]
    ) -> None:
        """Write the difference between *graphs* and the stored graph of the codebase."""
        cid = self.codebase_id
        fresh_paths = set(vectors)
        nodes: dict[str, GraphNodeCreate] = {}
        for node in (*graphs.imports.nodes, *graphs.calls.nodes):
            if len(node.id) > _SHORT or node.file_path is None:
                continue
            nodes[node.id] = GraphNodeCreate(
                codebase_id=cid,
                node_id=node.id,
                node_type=node.kind,
                name=node.label[:_SHORT],
                file_path=node.file_path,
                line_number=node.line,
                vector_embedding=vectors.get(node.file_path)
                if node.kind in _MODULE_KINDS
                else None,
                metadata={"kind": node.kind},
            )
        edges: dict[str, tuple[str, GraphEdgeCreate]] = {}
        for graph in (graphs.imports, graphs.calls):
            for edge in graph.edges:
                edge_id = f"{edge.type}:{edge.source}->{edge.target}"
                if len(edge_id) > _SHORT or edge.source not in nodes or edge.target not in nodes:
                    continue
                edges[edge_id] = (
                    _GRAPH_TYPES[edge.type],
                    GraphEdgeCreate(
                        codebase_id=cid,
                        edge_id=edge_id,
                        from_node_id=edge.source,
                        to_node_id=edge.target,
                        edge_type=edge.type,
                        weight=edge.weight,
                    ),
                )
        stored_nodes: list[GraphNode] = await _all_rows(self.atlas.graph, {"codebase_id": cid})
        stored_edges: list[GraphEdge] = await _all_rows(
            self.atlas.graph.edges, {"codebase_id": cid}
        )
        known = {n.node_id: n for n in stored_nodes}
        # A node is rewritten when new, when its file was re-analysed (lines may have moved,
        # the module's embedding is new), or when its row differs.
        write_nodes = [
            n
            for node_id, n in nodes.items()
            if node_id not in known
            or n.file_path in fresh_paths
            or (known[node_id].node_type, known[node_id].file_path, known[node_id].line_number)
            != (n.node_type, n.file_path, n.line_number)
        ]
        stale_nodes = [node_id for node_id in known if node_id not in nodes]
        stored_weights = {e.edge_id: (e.from_node_id, e.to_node_id, e.weight) for e in stored_edges}
        stale_edges = [
            e.edge_id
            for e in stored_edges
            if e.edge_id not in edges
            or (edges[e.edge_id][1].from_node_id, edges[e.edge_id][1].to_node_id)
            != (e.from_node_id, e.to_node_id)
        ]
        write_edges: dict[str, list[GraphEdgeCreate]] = defaultdict(list)
        for edge_id, (graph_type, row) in sorted(edges.items()):
            if stored_weights.get(edge_id) != (row.from_node_id, row.to_node_id, row.weight):
                write_edges[graph_type].append(row)

        with self._progress() as progress:
            async with self.atlas.transaction() as tx:
                if stale_edges:
                    self._deleted(
                        "graph_edges",
                        await tx.graph.edges.delete_where(
                            {"codebase_id": cid, "edge_id": stale_edges}
                        ),
                    )
                if stale_nodes:
                    self._deleted(
                        "graph_nodes",
                        await tx.graph.delete_where({"codebase_id": cid, "node_id": stale_nodes}),
                    )
                node_task = progress.add_task("graph_nodes", total=len(write_nodes))
                # module nodes carry embeddings, function nodes none: separate batches, so a
                # batch's column list matches its rows
                for kinds in (True, False):
                    kind = [n for n in write_nodes if (n.node_type in _MODULE_KINDS) is kinds]
                    for batch in _batches(kind, _WRITE_BATCH):
                        self._wrote("graph_nodes", await tx.graph.add_nodes(batch))
                        progress.advance(node_task, len(batch))
                total_edges = sum(map(len, write_edges.values()))
                edge_task = progress.add_task("graph_edges", total=total_edges)
                for graph_type in _GRAPH_TYPES.values():
                    typed = write_edges.get(graph_type, [])
                    # one call per graph type: the cycle check sees the whole batch at once
                    result = await tx.graph.add_edges(typed, graph_type=graph_type, on_cycle="skip")
                    self._wrote("graph_edges", result.written)
                    progress.advance(edge_task, len(typed))
                    self.report.cycle_edges_skipped[graph_type] = len(result.skipped)

    async def _update_dependency_counts(self, graphs: _Graphs) -> None:
        counts = _dependency_counts(graphs.imports)
        paths = sorted(counts)
        await self.atlas.executor.execute(
            _SET_DEPENDENCY_COUNTS,
            self.codebase_id,
            paths,
            [counts[p][0] for p in paths],
            [counts[p][1] for p in paths],
        )

    async def _vacuum(self) -> None:
        """VACUUM (ANALYZE) the tables this run wrote many rows to.

        Fresh statistics keep the first searches on index plans, and a vacuum sets the hint
        bits of the rows just loaded, which the index builds would otherwise set while
        reading them (several times slower on a bulk-loaded table).
        """
        report = self.report
        for table in _VACUUMED:
            # a few changed rows are autovacuum's job; a bulk load is worth doing now
            changed = report.rows_written.get(table, 0) + report.rows_deleted.get(table, 0)
            if changed >= _VACUUM_MIN_ROWS:
                await self.atlas.executor.execute(_VACUUM[table])

    async def _rebuild_indexes(self) -> None:
        """Rebuild the vector indexes of tables that received rows, with lists sized to them.

        An index is rebuilt when ``status()`` advises it or its lists differ from the advice
        for its rows: on a first run that is every one (built on an empty table with 100
        lists); later runs rebuild only when the row count moved far enough.
        """
        written = {t for t, n in self.report.rows_written.items() if n}
        statuses = await self.atlas.indexes.status()
        targets = [
            s.table
            for s in statuses
            if s.table in written and (s.rebuild_advised or s.lists != s.recommended_lists)
        ]
        if not targets:
            return
        with self._progress() as progress:
            tasks: dict[str, TaskID] = {}

            def report(update: IndexProgress) -> None:
                task = tasks.get(update.table)
                if task is None:
                    task = tasks[update.table] = progress.add_task(
                        f"index {update.table}", total=None
                    )
                progress.update(task, completed=update.done, total=update.total or None)

            for table in targets:
                for result in await self.atlas.indexes.rebuild(table, on_progress=report):
                    self.report.indexes_rebuilt.append(
                        f"{result.table} ({result.rows} rows, {result.lists} lists, "
                        f"{result.seconds:.1f} s)"
                    )
                    if result.table in tasks:
                        progress.update(tasks[result.table], completed=1, total=1)

    async def _summary_counts(self, languages: Counter[str]) -> dict[str, Any]:
        cid = self.codebase_id
        return {
            "files": sum(languages.values()),
            "python_files": languages.get("python", 0),
            "functions": await self.atlas.code.locations.count(
                {"project": cid, "symbol_type": ["function", "method"]}
            ),
            "classes": await self.atlas.code.locations.count(
                {"project": cid, "symbol_type": "class"}
            ),
            "graph_nodes": await self.atlas.graph.count({"codebase_id": cid}),
            "graph_edges": await self.atlas.graph.edges.count({"codebase_id": cid}),
        }

    async def _count_stored(self) -> None:
        cid = self.codebase_id
        atlas = self.atlas
        file_ids = [r["id"] for r in await atlas.executor.fetch(_CODE_FILES, cid)]
        self.report.rows_stored = {
            "codebase_metadata": await atlas.codebases.count({"codebase_id": cid}),
            "code_files": len(file_ids),
            "code_embeddings": await atlas.code.embeddings.count({"code_file_id": file_ids})
            if file_ids
            else 0,
            "code_locations": await atlas.code.locations.count({"project": cid}),
            "graph_nodes": await atlas.graph.count({"codebase_id": cid}),
            "graph_edges": await atlas.graph.edges.count({"codebase_id": cid}),
            "codebase_snapshots": await atlas.snapshots.count({"codebase_id": cid}),
        }

    # -- questions -------------------------------------------------------------------------

    async def _answer(self, query: str) -> QueryResult:
        large = (await self.large.embed([query]))[0]
        small = (await self.small.embed([query]))[0]
        started = time.perf_counter()
        files = await self.atlas.codebases.search_similar(
            large, 5, where={"codebase_id": self.codebase_id}
        )
        files_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        functions = await self.atlas.code.locations.search_similar(
            small, 5, where={"project": self.codebase_id, "symbol_type": ["function", "method"]}
        )
        functions_ms = (time.perf_counter() - started) * 1000
        return QueryResult(
            query,
            [FileHit(m.item.path, m.similarity) for m in files],
            [
                FunctionHit(
                    m.item.file_path,
                    str((m.item.metadata or {}).get("qualname", m.item.symbol_name)),
                    m.item.line_start,
                    m.similarity,
                )
                for m in functions
            ],
            files_ms,
            functions_ms,
        )

    async def _central_modules(self, top: int) -> list[CentralModule]:
        nodes: list[GraphNode] = await _all_rows(
            self.atlas.graph, {"codebase_id": self.codebase_id, "node_type": list(_MODULE_KINDS)}
        )
        ranked = sorted(
            (
                CentralModule(n.node_id, n.file_path, float((n.metadata or {}).get("pagerank", 0)))
                for n in nodes
            ),
            key=lambda m: (-m.score, m.module),
        )
        return ranked[:top]

    # -- output ----------------------------------------------------------------------------

    def _print_answers(self) -> None:
        console = self.console
        for answer in self.report.queries:
            table = Table(title=f"[bold]{answer.query}[/]", title_justify="left")
            table.add_column(f"top files ({answer.files_ms:.1f} ms)")
            table.add_column("sim", justify="right")
            table.add_column(f"top functions ({answer.functions_ms:.1f} ms)")
            table.add_column("sim", justify="right")
            for i in range(max(len(answer.files), len(answer.functions))):
                f = answer.files[i] if i < len(answer.files) else None
                fn = answer.functions[i] if i < len(answer.functions) else None
                table.add_row(
                    f.path if f else "",
                    f"{f.similarity:.3f}" if f else "",
                    f"{fn.name}  [dim]{fn.path}:{fn.line}[/]" if fn else "",
                    f"{fn.similarity:.3f}" if fn else "",
                )
            console.print(table)
        if self.report.central_modules:
            table = Table(title="[bold]most central modules (PageRank, import graph)[/]")
            table.add_column("#", justify="right")
            table.add_column("module")
            table.add_column("file")
            table.add_column("PageRank", justify="right")
            for rank, module in enumerate(self.report.central_modules, 1):
                table.add_row(str(rank), module.module, module.path, f"{module.score:.5f}")
            console.print(table)

    def _print_summary(self) -> None:
        report = self.report
        console = self.console
        console.print(
            f"files: {report.files_scanned} scanned, {report.files_indexed} indexed, "
            f"{report.files_skipped} unchanged (skipped), {report.files_removed} removed, "
            f"{report.parse_errors} with parse errors"
        )
        if report.graph_rebuilt:
            skipped = ", ".join(f"{t} {n}" for t, n in report.cycle_edges_skipped.items())
            console.print(f"graph rebuilt; edges skipped as cycle-closing: {skipped}")
        else:
            console.print("graph unchanged (no file changed)")
        for line in report.indexes_rebuilt:
            console.print(f"rebuilt vector index on {line}")
        rows = Table(title="[bold]rows[/]", title_justify="left")
        rows.add_column("table")
        for column in ("written", "deleted", "stored"):
            rows.add_column(column, justify="right")
        tables = sorted(set(report.rows_written) | set(report.rows_stored))
        for name in tables:
            rows.add_row(
                name,
                str(report.rows_written.get(name, 0)),
                str(report.rows_deleted.get(name, 0)),
                str(report.rows_stored.get(name, "")),
            )
        phases = Table(title="[bold]elapsed[/]", title_justify="left")
        phases.add_column("phase")
        phases.add_column("seconds", justify="right")
        for name, seconds in report.phases.items():
            phases.add_row(name, f"{seconds:.2f}")
        phases.add_row("[bold]total[/]", f"[bold]{report.total_seconds:.2f}[/]")
        console.print(rows)
        console.print(phases)


# -- helpers ---------------------------------------------------------------------------------


def _analyse_batch(files: list[SourceFile]) -> list[FileAnalysis]:
    """Analyse several files in a worker process (fewer round trips than one per file)."""
    return [analyse_file(f) for f in files]


def _directory(path: Path) -> Path:
    resolved = path.resolve()
    if not resolved.is_dir():
        raise InvalidInputError(f"not a directory: {path}")
    return resolved


def _batches(items: Sequence[_T], size: int) -> Iterator[list[_T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


async def _all_rows(repository: Repository[Any, Any, Any], where: dict[str, Any]) -> list[Any]:
    """Return every row matching *where* (without vectors), page by page."""
    rows: list[Any] = []
    cursor: str | None = None
    while True:
        page: Page[Any] = await repository.list(where, limit=_PAGE, cursor=cursor)
        rows.extend(page.items)
        if page.next_cursor is None:
            return rows
        cursor = page.next_cursor


def _language(path: str) -> str:
    return detect_language(path) or "unknown"


def _seconds(mtime_ns: int) -> int:
    return mtime_ns // 1_000_000_000


def _dependency_counts(graph: Graph) -> dict[str, tuple[int, int]]:
    """Return file path -> (in-tree modules it imports, in-tree modules importing it)."""
    out: Counter[str] = Counter()
    into: Counter[str] = Counter()
    for edge in graph.edges:
        out[edge.source] += 1
        into[edge.target] += 1
    return {
        node.file_path: (out[node.id], into[node.id])
        for node in graph.nodes
        if node.file_path is not None
    }


def _summary(analysis: FileAnalysis) -> str:
    """Return the text embedded for a file: path, module docstring and top-level names.

    Methods and the rest of the header are left out: in a large module they outweigh what
    the module is about (measured on the stdlib: with them, zipfile.py ranked fifth for
    "read and write zip archives"; without, first).
    """
    head = analysis.chunks[0].text if analysis.chunks else ""
    parts = [analysis.path.replace("/", " ").removesuffix(".py")]
    docstring = _module_docstring(head) if analysis.python is not None else None
    parts.append(docstring[:_HEAD_CHARS] if docstring else head[: _HEAD_CHARS // 2])
    python = analysis.python
    if python is not None:
        top = [s for s in python.symbols if s.parent is None]
        parts.append(" ".join(s.name for s in top))
        parts.extend(
            s.docstring.strip().splitlines()[0] for s in top if s.docstring and s.docstring.strip()
        )
    return "\n".join(parts)


def _module_docstring(head: str) -> str | None:
    """Return the docstring of a module from its first chunk (None if it has none)."""
    try:
        return ast.get_docstring(ast.parse(head))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _symbol_text(analysis: FileAnalysis, symbol: Symbol) -> str:
    """Return the text embedded for a function or class: names, signature and docstring."""
    doc = (symbol.docstring or "")[:_HEAD_CHARS]
    return f"{symbol.qualname} {symbol.signature}\n{doc}\n{analysis.path}"


def _symbol_json(symbol: Symbol) -> dict[str, Any]:
    doc = (symbol.docstring or "").strip()
    return {
        "name": symbol.qualname,
        "short_name": symbol.name,
        "kind": symbol.kind,
        "async": symbol.is_async,
        "line": symbol.start_line,
        "end_line": symbol.end_line,
        "signature": symbol.signature,
        "complexity": symbol.complexity,
        "parent": symbol.parent,
        "calls": list(symbol.calls),
        "bases": list(symbol.bases),
        "doc": doc.splitlines()[0] if doc else None,
    }


def _import_json(imp: Import) -> dict[str, Any]:
    return {
        "module": imp.module,
        "name": imp.name,
        "alias": imp.alias,
        "line": imp.line,
        "target": imp.target,
    }


def _analysis_from_row(row: CodebaseMetadata) -> PythonAnalysis:
    """Rebuild the graph-relevant part of a file's analysis from its stored JSON columns."""
    module, is_package = module_name(row.path)
    symbols = tuple(
        Symbol(
            qualname=s["name"],
            name=s["short_name"],
            kind=s["kind"],
            is_async=bool(s.get("async")),
            start_line=s["line"],
            end_line=s["end_line"],
            signature=s.get("signature") or "",
            docstring=s.get("doc"),
            complexity=s.get("complexity", 1),
            calls=tuple(s.get("calls") or ()),
            bases=tuple(s.get("bases") or ()),
            parent=s.get("parent"),
        )
        for s in sorted(
            [*(row.classes or []), *(row.functions or [])], key=lambda s: (s["line"], s["name"])
        )
    )
    imports = tuple(
        Import(i["module"], i.get("name"), i.get("alias"), i.get("line", 0), i["target"])
        for i in row.imports or []
    )
    return PythonAnalysis(
        module=module,
        parse_error=None,
        symbols=symbols,
        imports=imports,
        exports=tuple(str(e) for e in row.exports or []),
        is_package=is_package,
    )


def _metadata_row(
    codebase_id: str,
    root: str,
    source: SourceFile,
    analysis: FileAnalysis,
    vector: npt.NDArray[np.float32],
    counts: tuple[int, int] | None,
) -> CodebaseMetadataCreate:
    metrics = analysis.metrics
    python = analysis.python
    values: dict[str, Any] = {}
    if python is not None and python.parse_error is None:
        halstead = python.halstead
        documented = [s for s in python.symbols if s.docstring]
        functions = [s for s in python.symbols if s.kind != "class"]
        values = {
            "function_count": python.function_count,
            "class_count": python.class_count,
            "cyclomatic_complexity": float(python.complexity_max or python.module_complexity),
            "maintainability_index": python.maintainability_index or 0.0,
            "documentation_coverage": len(documented) / len(python.symbols)
            if python.symbols
            else 0.0,
            "imports": [_import_json(i) for i in python.imports],
            "exports": list(python.exports),
            "functions": [_symbol_json(s) for s in functions],
            "classes": [_symbol_json(s) for s in python.symbols if s.kind == "class"],
            "dependencies": list(python.imported_modules),
        }
        if halstead is not None:
            values |= {
                "halstead_vocabulary": halstead.vocabulary,
                "halstead_length": halstead.length,
                "halstead_volume": halstead.volume,
                "halstead_difficulty": halstead.difficulty,
                "halstead_effort": halstead.effort,
            }
    if counts is not None:
        values["dependency_count"], values["dependent_count"] = counts
    return CodebaseMetadataCreate(
        codebase_id=codebase_id,
        codebase_path=root,
        path=analysis.path,
        size=analysis.size_bytes,
        lines=metrics.total_lines,
        total_lines=metrics.total_lines,
        code_lines=metrics.code_lines,
        comment_lines=metrics.comment_lines,
        blank_lines=metrics.blank_lines,
        language=(analysis.language or "unknown")[:50],
        file_type="binary" if analysis.binary else "source",
        last_modified=_seconds(source.mtime_ns),
        vector_embedding=vector,
        **values,
    )


def _code_file_row(
    codebase_id: str, file_id: UUID, source: SourceFile, analysis: FileAnalysis
) -> CodeFileCreate:
    content: str | None = None
    if not analysis.binary and not analysis.error:
        try:
            content = source.absolute_path.read_bytes().decode("utf-8", "replace")
        except OSError:
            content = None
    metadata: dict[str, Any] = {"chunks": len(analysis.chunks)}
    python = analysis.python
    if python is not None:
        metadata["module"] = python.module
        if python.parse_error:
            metadata["parse_error"] = python.parse_error
    if analysis.error:
        metadata["error"] = analysis.error
    return CodeFileCreate(
        id=file_id,
        file_path=analysis.path,
        project_name=codebase_id,
        # text cannot hold NUL characters
        content=content.replace("\x00", "") if content is not None else None,
        language=analysis.language,
        size_bytes=min(analysis.size_bytes, 2**31 - 1),
        line_count=analysis.metrics.total_lines,
        hash=analysis.content_hash or None,
        metadata=metadata,
    )


def _location_row(
    codebase_id: str, analysis: FileAnalysis, symbol: Symbol, vector: npt.NDArray[np.float32]
) -> CodeLocationCreate:
    python = analysis.python
    return CodeLocationCreate(
        project=codebase_id,
        file_path=analysis.path,
        line_start=symbol.start_line,
        line_end=symbol.end_line,
        symbol_type=symbol.kind,
        symbol_name=symbol.name[:_SHORT],
        parent_symbol=symbol.parent[:_SHORT] if symbol.parent else None,
        signature=symbol.signature,
        documentation=symbol.docstring,
        metadata={
            "qualname": symbol.qualname,
            "module": python.module if python is not None else None,
            "complexity": symbol.complexity,
            "async": symbol.is_async,
        },
        embedding=vector,
    )
