"""``codeatlas index status|rebuild|tune|compare``."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from rich import box
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..atlas import Atlas, connect
from ..errors import InvalidInputError
from ..indexes import CompareResult, IndexProgress, IndexStatus, TuneProgress, TuneResult
from ._console import NARROW, human_bytes, out, resolve_target

__all__ = ["index"]


async def index(args: argparse.Namespace) -> int:
    target = await resolve_target(args)
    async with connect(target.dsn, migrate=False, settings=target.settings) as atlas:
        if args.action == "status":
            statuses = await atlas.indexes.status()
            if args.table is not None:
                chosen = [s for s in statuses if s.table == args.table]
                if not chosen:
                    raise InvalidInputError(
                        f"--table: {args.table!r} has no vector index; tables with one: "
                        + ", ".join(s.table for s in statuses)
                    )
                statuses = chosen
            _print_index_status(statuses)
        elif args.action == "rebuild":
            await _rebuild(atlas, args)
        elif args.action == "compare":
            _print_compare(await _compare(atlas, args))
        else:
            _print_tune_results(await _tune(atlas, args))
    return 0


def _print_index_status(statuses: Sequence[IndexStatus]) -> None:
    if out.width < NARROW:
        # one block per index: ten columns do not fit in 80
        for status in statuses:
            out.print(f"[bold]{status.table}[/]  {status.index}", overflow="fold")
            built = (
                "no build recorded"
                if status.rows_at_build is None
                else (f"built on {status.rows_at_build} rows")
            )
            probes = "" if status.default_probes is None else f", probes {status.default_probes}"
            out.print(
                f"  {status.strategy}, rows {status.rows}, lists {status.lists} (advised "
                f"{status.recommended_lists}), {built}, "
                f"{'valid' if status.valid else '[red]INVALID[/]'}, "
                f"{human_bytes(status.size_bytes)}{probes}"
            )
            advice = f"[yellow]yes[/]: {status.reason}" if status.rebuild_advised else "no"
            out.print(f"  rebuild: {advice}")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in ("table", "index", "rows", "lists", "advised", "built on", "valid", "size"):
        table.add_column(
            column, justify="right" if column in {"rows", "lists"} else "left", no_wrap=True
        )
    table.add_column("kind", no_wrap=True)
    table.add_column("probes", no_wrap=True)
    table.add_column("rebuild", overflow="fold", min_width=10)
    for status in statuses:
        table.add_row(
            status.table,
            status.index,
            str(status.rows),
            str(status.lists),
            str(status.recommended_lists),
            "" if status.rows_at_build is None else str(status.rows_at_build),
            "yes" if status.valid else "[red]NO[/]",
            human_bytes(status.size_bytes),
            status.strategy,
            "" if status.default_probes is None else str(status.default_probes),
            f"[yellow]yes[/]: {status.reason}" if status.rebuild_advised else "no",
        )
    out.print(table)


async def _tune(atlas: Atlas, args: argparse.Namespace) -> list[TuneResult]:
    """Tune with live progress on a terminal, one line per table elsewhere (piped, CI)."""
    started: dict[str, float] = {}
    if not out.is_terminal:

        def log(step: TuneProgress) -> None:
            where = f"{step.table} ({step.table_number}/{step.tables})"
            if step.step == "sampling":
                started[step.table] = time.perf_counter()
                out.print(f"tuning {where}: {args.sample} queries, lists {step.lists}")
            elif step.step == "done":
                seconds = time.perf_counter() - started.get(step.table, time.perf_counter())
                out.print(
                    f"tuned {where}: {step.knob} {step.probes}, recall {step.recall:.3f} "
                    f"({step.tried} {step.knob} values tried, {seconds:.1f} s)"
                )

        return await atlas.indexes.tune(
            args.table, target_recall=args.target, sample=args.sample, on_progress=log
        )

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(),
        console=out,
        transient=False,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def show(step: TuneProgress) -> None:
            task = tasks.get(step.table)
            if task is None:
                description = f"{step.table} ({step.table_number}/{step.tables})"
                task = tasks[step.table] = progress.add_task(description, state="", total=None)
            if step.step == "sampling":
                state = "sampling query vectors"
            elif step.step == "exact":
                state = "exact neighbours (ground truth)"
            elif step.step == "probes":
                state = f"{step.knob} {step.probes}: recall {step.recall:.3f} ({step.tried} tried)"
            else:
                state = f"[green]{step.knob} {step.probes}[/], recall {step.recall:.3f}"
                progress.update(task, total=1, completed=1)
            progress.update(task, state=state)

        return await atlas.indexes.tune(
            args.table, target_recall=args.target, sample=args.sample, on_progress=show
        )


def _print_tune_results(results: Sequence[TuneResult]) -> None:
    if not results:
        out.print("no table with vectors to tune")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("table", no_wrap=True)
    table.add_column("knob", justify="right", no_wrap=True)
    table.add_column("recall@10", justify="right", no_wrap=True)
    table.add_column("tried (value: recall)", overflow="fold", min_width=16)
    for result in results:
        tried = ", ".join(f"{p}: {r:.3f}" for p, r in result.tried.items())
        knob = f"{result.knob} {result.probes}"
        table.add_row(result.table, knob, f"{result.recall:.3f}", tried)
    out.print(table)
    for result in results:
        out.print(f"{result.table}: measured on {result.sample} queries ({result.sample_source})")


async def _rebuild(atlas: Atlas, args: argparse.Namespace) -> None:
    if not out.is_terminal:
        seen: set[str] = set()

        def log(update: IndexProgress) -> None:
            if update.table not in seen:
                seen.add(update.table)
                out.print(f"rebuilding the index of {update.table}…")

        results = await atlas.indexes.rebuild(
            args.table,
            kind=args.kind,
            lists=args.lists,
            m=args.m,
            ef_construction=args.ef_construction,
            concurrently=not args.blocking,
            on_progress=log,
        )
    else:
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
                    task = tasks[update.table] = progress.add_task(
                        update.table, phase="", total=None
                    )
                progress.update(
                    task, completed=update.done, total=update.total or None, phase=update.phase
                )

            results = await atlas.indexes.rebuild(
                args.table,
                kind=args.kind,
                lists=args.lists,
                m=args.m,
                ef_construction=args.ef_construction,
                concurrently=not args.blocking,
                on_progress=report,
            )
    for result in results:
        params = ", ".join(f"{name}={value}" for name, value in result.params.items())
        out.print(
            f"rebuilt {result.index} as {result.strategy} ({params}) on {result.rows} rows "
            f"in {result.seconds:.1f} s"
        )


async def _compare(atlas: Atlas, args: argparse.Namespace) -> CompareResult:
    if args.table is None:
        raise InvalidInputError("--table: compare measures one table's strategies; name it")
    kinds = None if args.kinds is None else [k.strip() for k in args.kinds.split(",") if k.strip()]
    return await atlas.indexes.compare(
        args.table,
        strategies=kinds,
        target_recall=args.target,
        sample=args.sample,
        max_rows=args.max_rows,
        apply=args.apply,
        on_progress=lambda line: out.print(line, markup=False),
    )


def _print_compare(result: CompareResult) -> None:
    out.print(
        f"{result.table}: {result.rows} rows, {result.sample} queries ({result.sample_source}), "
        f"target recall@10 {result.target}"
    )
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in ("strategy", "knob", "recall", "p50 ms", "build s", "size", "frontier"):
        table.add_column(column, justify="left" if column == "strategy" else "right")
    for entry in result.entries:
        table.add_row(
            entry.strategy,
            f"{entry.knob} {entry.value}",
            f"{entry.recall:.3f}" + ("" if entry.meets_target else " [yellow](below)[/]"),
            f"{entry.p50_ms:.2f}",
            f"{entry.build_seconds:.1f}",
            human_bytes(entry.size_bytes),
            "yes" if entry.on_frontier else "",
        )
    out.print(table)
    if result.chosen is None:
        out.print("no strategy met the target")
    elif result.applied is not None:
        out.print(f"applied {result.chosen} to {result.table}")
    else:
        out.print(f"fastest meeting the target: {result.chosen} (--apply builds it)")
