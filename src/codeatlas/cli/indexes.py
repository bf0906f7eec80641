"""``codeatlas index status|rebuild|tune``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..atlas import Atlas, connect
from ..indexes import IndexProgress, IndexStatus
from ._console import out, resolve_target

__all__ = ["index"]


async def index(args: argparse.Namespace) -> int:
    target = await resolve_target(args)
    async with connect(target.dsn, migrate=False, settings=target.settings) as atlas:
        if args.action == "status":
            _print_index_status(await atlas.indexes.status())
        elif args.action == "rebuild":
            await _rebuild(atlas, args)
        else:
            results = await atlas.indexes.tune(
                args.table, target_recall=args.target, sample=args.sample
            )
            table = Table()
            for column in ("table", "probes", "recall@10", "tried (probes: recall)"):
                table.add_column(column)
            for result in results:
                tried = ", ".join(f"{p}: {r:.3f}" for p, r in result.tried.items())
                table.add_row(result.table, str(result.probes), f"{result.recall:.3f}", tried)
            out.print(table)
            if not results:
                out.print("no table with vectors to tune")
    return 0


def _print_index_status(statuses: Sequence[IndexStatus]) -> None:
    table = Table()
    for column in (
        "table",
        "index",
        "rows",
        "lists",
        "advised lists",
        "built on",
        "valid",
        "size",
        "probes",
        "rebuild?",
    ):
        table.add_column(column, justify="right" if column in {"rows", "lists"} else "left")
    for status in statuses:
        table.add_row(
            status.table,
            status.index,
            str(status.rows),
            str(status.lists),
            str(status.recommended_lists),
            "" if status.rows_at_build is None else str(status.rows_at_build),
            "yes" if status.valid else "[red]NO[/]",
            f"{status.size_bytes / 1024:.0f} KiB",
            "" if status.default_probes is None else str(status.default_probes),
            f"[yellow]yes[/]: {status.reason}" if status.rebuild_advised else "no",
        )
    out.print(table)


async def _rebuild(atlas: Atlas, args: argparse.Namespace) -> None:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[phase]}"),
        TimeElapsedColumn(),
        console=out,
        transient=False,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def report(update: IndexProgress) -> None:
            task = tasks.get(update.table)
            if task is None:
                task = tasks[update.table] = progress.add_task(update.table, phase="", total=None)
            progress.update(
                task, completed=update.done, total=update.total or None, phase=update.phase
            )

        results = await atlas.indexes.rebuild(
            args.table,
            lists=args.lists,
            concurrently=not args.blocking,
            on_progress=report,
        )
    for result in results:
        out.print(
            f"rebuilt {result.index} on {result.rows} rows with {result.lists} lists "
            f"in {result.seconds:.1f} s"
        )
