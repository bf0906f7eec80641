"""``codeatlas demo``: index a tree (default: the standard library) and answer questions.

A thin presenter: the indexing is ``codeatlas.indexer.Indexer``; the answers are
``codeatlas.indexer.query.search`` per question (hybrid: files by their 1536-d summary and
their names and docstrings, functions by their 768-d symbol embedding and name, signature
and docstring, fused by RRF), and the import graph's most central modules by PageRank.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from rich.console import Console
from rich.table import Table

from ..atlas import Atlas, connect
from ..indexer import DEFAULT_EXCLUDE_DIRS, Indexer, stdlib_path
from ..indexer.query import Mode, search
from ._console import out, resolve_target, shorten_path
from .index_tree import print_report, progress_view, storage_lines

__all__ = [
    "DEFAULT_QUERIES",
    "STDLIB_TEST_DIRS",
    "Answer",
    "CentralModule",
    "answer",
    "central_modules",
    "demo",
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
_MODULE_KINDS: Final = ("module", "package")


@dataclass(frozen=True, slots=True)
class Answer:
    """Top files (path, score) and functions (name, path:line, score) for a query."""

    query: str
    files: list[tuple[str, float]]
    functions: list[tuple[str, str, float]]
    files_ms: float
    functions_ms: float


@dataclass(frozen=True, slots=True)
class CentralModule:
    """A module with its PageRank in the import graph."""

    module: str
    path: str
    score: float


async def demo(args: argparse.Namespace) -> int:
    target = await resolve_target(args)
    root = Path(args.path) if args.path else stdlib_path()
    exclude = tuple(DEFAULT_EXCLUDE_DIRS)
    if args.path is None and not args.include_tests:
        exclude += STDLIB_TEST_DIRS
    out.print(f"codeatlas demo: indexing {root}", markup=False, overflow="fold")
    # the first command a new user runs: migrate like connect() does by default
    async with connect(target.dsn, settings=target.settings) as atlas:
        with progress_view(out) as on_progress:
            indexer = Indexer(
                atlas, workers=args.workers, exclude_dirs=exclude, on_progress=on_progress
            )
            report = await indexer.index(root, codebase_id=args.codebase_id)
        started = time.perf_counter()
        answers = [
            await answer(atlas, report.codebase_id, q) for q in args.query or DEFAULT_QUERIES
        ]
        central = await central_modules(atlas, report.codebase_id, 10)
        queries_seconds = time.perf_counter() - started
        for item in answers:
            print_answer(out, item)
        print_central(out, central)
        print_report(out, report)
        out.print(f"questions answered in {queries_seconds:.2f} s", markup=False)
        for line in storage_lines(target):
            out.print(line, markup=False, overflow="fold")
    return 0


async def answer(atlas: Atlas, codebase_id: str, query: str, mode: Mode = "hybrid") -> Answer:
    """Return the files and functions of *codebase_id* that best answer *query*.

    The same path as ``codeatlas search`` (``codeatlas.indexer.query.search``): hybrid
    search by default, the query embedded with the embedder the index recorded.
    """
    result = await search(atlas, query, codebase_id, k=5, mode=mode)
    return Answer(
        query,
        [(f.path, f.score) for f in result.files],
        [(f.name, f"{f.path}:{f.line}", f.score) for f in result.functions],
        result.files_ms,
        result.functions_ms,
    )


async def central_modules(atlas: Atlas, codebase_id: str, top: int) -> list[CentralModule]:
    """Return the *top* modules of the import graph by PageRank."""
    nodes = []
    cursor: str | None = None
    while True:
        page = await atlas.graph.list(
            {"codebase_id": codebase_id, "node_type": list(_MODULE_KINDS)},
            limit=10_000,
            cursor=cursor,
        )
        nodes.extend(page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    ranked = sorted(
        (
            CentralModule(n.node_id, n.file_path, float((n.metadata or {}).get("pagerank", 0)))
            for n in nodes
        ),
        key=lambda m: (-m.score, m.module),
    )
    return ranked[:top]


def _width(console: Console) -> int:
    return min(console.width or 80, 100)


def print_answer(console: Console, item: Answer) -> None:
    """Print one question's files and functions, each table within the console's width."""
    width = _width(console)
    files = Table(title=item.query, title_justify="left")
    files.add_column(f"top files ({item.files_ms:.1f} ms)", no_wrap=True, overflow="ellipsis")
    files.add_column("score", justify="right", width=6)
    for path, similarity in item.files:
        files.add_row(shorten_path(path, width - 15), f"{similarity:.4f}")
    console.print(files)
    functions = Table()
    functions.add_column(f"top functions ({item.functions_ms:.1f} ms)", no_wrap=True)
    functions.add_column("where", no_wrap=True)
    functions.add_column("score", justify="right", width=6)
    room = width - 19
    for name, where, similarity in item.functions:
        shown = name if len(name) <= room // 2 else "…" + name[-(room // 2 - 1) :]
        functions.add_row(shown, shorten_path(where, room - len(shown)), f"{similarity:.4f}")
    console.print(functions)


def print_central(console: Console, modules: list[CentralModule]) -> None:
    """Print the most central modules (PageRank of the import graph)."""
    if not modules:
        return
    width = _width(console)
    table = Table(title="most central modules (PageRank, import graph)", title_justify="left")
    table.add_column("#", justify="right", width=3)
    table.add_column("module", no_wrap=True, overflow="ellipsis")
    table.add_column("file", no_wrap=True)
    table.add_column("PageRank", justify="right", width=9)
    room = (width - 26) // 2
    for rank, module in enumerate(modules, 1):
        name = module.module if len(module.module) <= room else "…" + module.module[-room + 1 :]
        table.add_row(str(rank), name, shorten_path(module.path, room), f"{module.score:.5f}")
    console.print(table)
