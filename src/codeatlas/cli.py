"""The ``codeatlas`` command: migrate, status, rollback, doctor, index, demo."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import asyncpg
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ._pool import open_connection
from .analysis import DEFAULT_EXCLUDE_DIRS
from .atlas import Atlas, connect, resolve_dsn
from .config import Settings, redact_dsn
from .demo import DEFAULT_QUERIES, STDLIB_TEST_DIRS, run_demo, stdlib_path
from .errors import CodeAtlasError
from .indexes import IndexProgress, IndexStatus
from .migrations import Migration, Migrator

__all__ = ["main"]

_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)


@dataclass(frozen=True, slots=True)
class _Target:
    dsn: str
    settings: Settings
    embedded: bool


async def _target(args: argparse.Namespace) -> _Target:
    settings = Settings()
    dsn, server = await resolve_dsn(args.dsn, settings)
    return _Target(dsn, settings, server is not None)


def _where(target: _Target) -> str:
    return f"{'embedded server ' if target.embedded else ''}{redact_dsn(target.dsn)}"


async def _migrate(args: argparse.Namespace) -> int:
    target = await _target(args)

    def report(migration: Migration, elapsed_ms: float) -> None:
        _out.print(f"  applied {migration.version}_{migration.name} in {elapsed_ms:.1f} ms")

    migrator = Migrator(target.dsn, settings=target.settings, on_applied=report)
    result = await migrator.apply(to=args.to)
    if result.applied:
        _out.print(
            f"[green]migrated[/] {_where(target)}: {len(result.applied)} applied "
            f"in {result.elapsed_ms:.0f} ms"
        )
    else:
        _out.print(f"[green]up to date[/] {_where(target)}")
    return 0


async def _status(args: argparse.Namespace) -> int:
    target = await _target(args)
    statuses = await Migrator(target.dsn, settings=target.settings).status()
    _out.print(f"migrations on {_where(target)}")
    table = Table()
    for column in ("status", "version", "name", "applied at (UTC)", "duration"):
        table.add_column(column, justify="right" if column == "duration" else "left")
    styles = {"applied": "green", "pending": "yellow", "changed": "red", "missing": "red"}
    for status in statuses:
        table.add_row(
            f"[{styles[status.state]}]{status.state}[/]",
            str(status.version),
            status.name,
            status.applied_at.strftime("%Y-%m-%d %H:%M:%S") if status.applied_at else "",
            f"{status.execution_ms:.1f} ms" if status.execution_ms is not None else "",
        )
    _out.print(table)
    problems = [s for s in statuses if s.state in {"changed", "missing"}]
    for problem in problems:
        _err.print(
            f"[red]migration {problem.version}_{problem.name} is {problem.state}[/]"
            " (startup will refuse until fixed)"
        )
    return 1 if problems else 0


async def _rollback(args: argparse.Namespace) -> int:
    target = await _target(args)
    result = await Migrator(target.dsn, settings=target.settings).rollback(
        to=args.to, allow_data_loss=args.allow_data_loss
    )
    if result.reverted:
        for version in result.reverted:
            _out.print(f"  reverted {version}")
        _out.print(f"[green]rolled back[/] {len(result.reverted)} migration(s) to {args.to}")
    else:
        _out.print(f"nothing to roll back: no applied migration is newer than {args.to}")
    return 0


_DOCTOR_SETTINGS: Final = (
    "server_version",
    "shared_buffers",
    "work_mem",
    "maintenance_work_mem",
    "max_connections",
    "effective_cache_size",
    "max_parallel_maintenance_workers",
)
_INVALID_INDEXES: Final = """
SELECT n.nspname AS schema, c.relname AS index, t.relname AS table
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE NOT i.indisvalid
 ORDER BY 1, 2"""
# The *_legacy tables, each with the query counting its rows exactly (identifiers quoted
# server-side with format('%I')). Not query_to_xml in one query: that needs a server built
# with libxml, which the embedded one is not.
_LEGACY_TABLES: Final = """
SELECT c.relname AS table, format('SELECT count(*) FROM %I.%I', n.nspname, c.relname) AS count
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname LIKE '%\\_legacy'
 ORDER BY 1"""


async def _doctor(args: argparse.Namespace) -> int:
    target = await _target(args)
    problems: list[str] = []
    connection = await open_connection(target.dsn, target.settings)
    try:
        _out.print(f"doctor: {_where(target)}")
        facts = Table(show_header=False)
        facts.add_column("what")
        facts.add_column("value")
        for name in _DOCTOR_SETTINGS:
            facts.add_row(name, str(await connection.fetchval(f"SHOW {name}")))
        vector = await connection.fetchval(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        )
        available = await connection.fetchval(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
        )
        facts.add_row("pgvector", f"{vector or 'not installed'} (available: {available or 'no'})")
        if vector is None:
            problems.append("pgvector is not installed in this database: run codeatlas migrate")
        ecto = await connection.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        facts.add_row("Ecto ledger (schema_migrations)", "present" if ecto else "absent")
        invalid = await connection.fetch(_INVALID_INDEXES)
        facts.add_row("invalid indexes", str(len(invalid)))
        for row in invalid:
            problems.append(f"index {row['schema']}.{row['index']} on {row['table']} is INVALID")
        legacy = await connection.fetch(_LEGACY_TABLES)
        for row in legacy:
            rows = await connection.fetchval(row["count"])
            facts.add_row(f"legacy table {row['table']}", f"{rows} rows kept (not dropped)")
        _out.print(facts)
    finally:
        await connection.close()

    statuses = await Migrator(target.dsn, settings=target.settings).status()
    counts = {
        state: sum(s.state == state for s in statuses)
        for state in ("applied", "pending", "changed", "missing")
    }
    _out.print("ledger: " + ", ".join(f"{n} {state}" for state, n in counts.items()))
    for status in statuses:
        if status.state in {"changed", "missing"}:
            problems.append(f"migration {status.version}_{status.name} is {status.state}")
    if counts["pending"]:
        _out.print(f"[yellow]{counts['pending']} pending migration(s): run codeatlas migrate[/]")
    for problem in problems:
        _err.print(f"[red]problem:[/] {problem}")
    if not problems:
        _out.print("[green]no problems found[/]")
    return 1 if problems else 0


async def _index(args: argparse.Namespace) -> int:
    target = await _target(args)
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
            _out.print(table)
            if not results:
                _out.print("no table with vectors to tune")
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
    _out.print(table)


async def _rebuild(atlas: Atlas, args: argparse.Namespace) -> None:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[phase]}"),
        TimeElapsedColumn(),
        console=_out,
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
        _out.print(
            f"rebuilt {result.index} on {result.rows} rows with {result.lists} lists "
            f"in {result.seconds:.1f} s"
        )


async def _demo(args: argparse.Namespace) -> int:
    target = await _target(args)
    root = Path(args.path) if args.path else stdlib_path()
    exclude = tuple(DEFAULT_EXCLUDE_DIRS)
    if args.path is None and not args.include_tests:
        exclude += STDLIB_TEST_DIRS
    # the first command a new user runs: migrate like connect() does by default
    async with connect(target.dsn, settings=target.settings) as atlas:
        await run_demo(
            atlas,
            root,
            codebase_id=args.codebase_id,
            queries=args.query or DEFAULT_QUERIES,
            console=_out,
            workers=args.workers,
            exclude_dirs=exclude,
        )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codeatlas",
        description="PostgreSQL + pgvector data layer for code-intelligence agents.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--dsn",
            help="PostgreSQL DSN (default: $CODEATLAS_DSN, else the embedded server)",
        )
        return sub

    migrate = command("migrate", "apply pending migrations")
    migrate.add_argument("--to", type=int, help="stop after this version")
    command("status", "list migrations: applied, pending, changed, missing")
    rollback = command("rollback", "revert migrations newer than --to, newest first")
    rollback.add_argument("--to", type=int, required=True, help="version to keep (0: all)")
    rollback.add_argument(
        "--allow-data-loss",
        action="store_true",
        help="drop tables even when they hold rows",
    )
    command("doctor", "check server, pgvector, ledger, invalid indexes and legacy tables")
    index = command("index", "vector indexes: status, rebuild, tune")
    index.add_argument("action", choices=("status", "rebuild", "tune"))
    index.add_argument("--table", help="one table (default: every table with a vector index)")
    index.add_argument("--lists", type=int, help="rebuild: IVFFlat lists (default: advised)")
    index.add_argument(
        "--blocking", action="store_true", help="rebuild: in one transaction, not CONCURRENTLY"
    )
    index.add_argument("--target", type=float, default=0.95, help="tune: recall@10 target")
    index.add_argument("--sample", type=int, default=200, help="tune: query vectors sampled")
    demo = command("demo", "index a source tree (default: the standard library) and query it")
    demo.add_argument(
        "path", nargs="?", help="directory to index (default: this Python's standard library)"
    )
    demo.add_argument(
        "--query",
        action="append",
        metavar="TEXT",
        help="a question to answer (repeatable; replaces the example questions)",
    )
    demo.add_argument("--codebase-id", help="registry id (default: derived from the path)")
    demo.add_argument("--workers", type=int, default=2, help="parser processes (default: 2)")
    demo.add_argument(
        "--include-tests",
        action="store_true",
        help="default path only: also index the stdlib's test/, tests/ and idlelib/ dirs",
    )
    return parser


_COMMANDS: Final[dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, int]]]] = {
    "migrate": _migrate,
    "status": _status,
    "rollback": _rollback,
    "doctor": _doctor,
    "index": _index,
    "demo": _demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_COMMANDS[args.command](args))
    except CodeAtlasError as exc:
        _err.print(f"[red]error:[/] {exc}")
        return 1
    except (asyncpg.PostgresError, OSError) as exc:
        _err.print(f"[red]error:[/] {type(exc).__name__}: {_first_line(exc)}")
        return 1
    except KeyboardInterrupt:
        return 130


def _first_line(exc: BaseException) -> str:
    text: Any = exc.args[0] if exc.args else ""
    return str(text).splitlines()[0] if text else ""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
