"""``codeatlas index-tree PATH``: index a source tree (incrementally) and summarise the run."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

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

from .._server import data_usage
from ..atlas import connect
from ..embedders import embedder
from ..indexer import DEFAULT_EXCLUDE_DIRS, Indexer, IndexReport
from ..indexer import Progress as IndexProgress
from ._console import Target, out, resolve_target, shorten_path, where
from .data import describe_usage

__all__ = ["index_tree", "print_report", "progress_view", "storage_lines"]

#: skipped / sanitised files listed by name before "... and N more"
_LISTED: Final = 12
_LABEL: Final = 24


async def index_tree(args: argparse.Namespace) -> int:
    target = await resolve_target(args)
    exclude = (*DEFAULT_EXCLUDE_DIRS, *(args.exclude or ()))
    async with connect(target.dsn, settings=target.settings) as atlas:
        with progress_view(out) as on_progress:
            indexer = Indexer(
                atlas,
                workers=args.workers,
                exclude_dirs=exclude,
                max_file_size=args.max_file_size,
                embedder=embedder(args.embedder, 768),
                file_embedder=embedder(args.embedder, 1536),
                lock_timeout=args.lock_timeout,
                on_progress=on_progress,
            )
            report = await indexer.index(Path(args.path), codebase_id=args.codebase_id)
        print_report(out, report)
        for line in storage_lines(target):
            out.print(line, markup=False, overflow="fold")
    return 0


@contextmanager
def progress_view(console: Console) -> Iterator[Callable[[IndexProgress], None]]:
    """Show a bar per stage (and per index build) while the indexer reports progress."""
    progress = Progress(
        TextColumn(f"{{task.description:<{_LABEL}}}"),
        BarColumn(bar_width=30),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        expand=False,
    )
    tasks: dict[str, TaskID] = {}

    def update(event: IndexProgress) -> None:
        if event.stage == "lock":
            label = "wait: another indexer"  # it holds this codebase; the run starts after
        elif event.stage == "maintenance" and event.detail:
            label = event.detail if event.detail.startswith("vacuum") else f"index {event.detail}"
        elif event.stage == "parse" and event.detail:
            label = f"parse {event.detail}"
        else:
            label = event.stage
        label = label[:_LABEL]
        task = tasks.get(label)
        if task is None:
            task = tasks[label] = progress.add_task(label, total=event.total)
        progress.update(task, completed=event.done, total=event.total)

    with progress:
        yield update


def print_report(console: Console, report: IndexReport) -> None:
    """Print what *report* says: files per outcome, named problems, rows, seconds per stage."""
    width = min(console.width, 80) if console.width else 80
    console.print(
        f"files: {report.files_scanned} scanned, {report.files_indexed} indexed, "
        f"{report.files_unchanged} unchanged, {report.files_skipped} skipped, "
        f"{report.files_removed} removed; {len(report.sanitised)} made storable, "
        f"{len(report.parse_errors)} with parse errors",
        markup=False,
    )
    if report.module_prefix:
        console.print(f"root is package {report.module_prefix}", markup=False)
    for title, items in (
        ("skipped", [(s.path, s.reason) for s in report.skipped]),
        ("made storable", [(n.path, n.note) for n in report.sanitised]),
        ("parse errors", [(n.path, n.note) for n in report.parse_errors]),
    ):
        if not items:
            continue
        console.print(f"{title}:", markup=False)
        for path, reason in items[:_LISTED]:
            console.print(f"  {shorten_path(path, width - 4)}", markup=False)
            wrapped = textwrap.fill(
                reason,
                width,
                initial_indent="    ",
                subsequent_indent="    ",
                break_long_words=True,
            )
            console.print(wrapped, markup=False, overflow="fold")
        if len(items) > _LISTED:
            console.print(f"  ... and {len(items) - _LISTED} more", markup=False)
    if report.graph_rebuilt:
        skipped = ", ".join(f"{t} {n}" for t, n in report.cycle_edges_skipped.items())
        console.print(f"graph rebuilt; cycle-closing edges left out: {skipped}", markup=False)
    else:
        console.print("graph unchanged", markup=False)
    for line in report.indexes_rebuilt:
        console.print(f"rebuilt vector index on {line}", markup=False)
    rows = Table(title="rows", title_justify="left")
    rows.add_column("table")
    for column in ("written", "deleted", "stored"):
        rows.add_column(column, justify="right")
    for name in sorted(set(report.rows_written) | set(report.rows_stored)):
        rows.add_row(
            name,
            str(report.rows_written.get(name, 0)),
            str(report.rows_deleted.get(name, 0)),
            str(report.rows_stored.get(name, "")),
        )
    console.print(rows)
    stages = Table(title="seconds per stage", title_justify="left")
    stages.add_column("stage")
    stages.add_column("seconds", justify="right")
    for name, seconds in report.seconds.items():
        stages.add_row(name, f"{seconds:.2f}")
    stages.add_row("total", f"{report.total_seconds:.2f}")
    console.print(stages)


def storage_lines(target: Target) -> list[str]:
    """Return where the data lives, how large it is and how to remove it."""
    if not target.embedded:
        return [
            f"data: in the database at {where(target)}",
            "  to remove a codebase's rows, delete them through the library; "
            "`codeatlas rollback --to 0 --allow-data-loss` drops every table",
        ]
    return describe_usage(data_usage(target.settings.data_dir))
