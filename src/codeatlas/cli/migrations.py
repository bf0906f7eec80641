"""``codeatlas migrate``, ``status``, ``rollback`` and ``doctor``."""

from __future__ import annotations

import argparse
import contextlib
from typing import Final

from rich import box
from rich.markup import escape
from rich.table import Table

from .._pool import open_connection
from ..migrations import Migration, Migrator, check_target, load_migrations
from ._console import NARROW, err, out, resolve_target, where

__all__ = ["doctor", "migrate", "rollback", "status"]


#: state -> (style, how the table says it)
_STATES: Final = {
    "applied": ("green", "applied"),
    "pending": ("yellow", "pending"),
    "changed": ("red", "changed"),
    "missing": ("red", "missing"),
    "ahead": ("red", "ahead"),
}
_PROBLEMS: Final = {
    "changed": "was edited after it was applied (checksum differs)",
    "missing": "is applied but its file is missing from this code",
    "ahead": "is applied, not in this code (the database was migrated by a newer codeatlas)",
}


async def migrate(args: argparse.Namespace) -> int:
    check_target(load_migrations(), args.to, field="--to")
    target = await resolve_target(args)

    # On a terminal a spinner names the running migration (an index build can take
    # minutes); piped output gets the line after each one.
    live = (
        out.status("reading the ledger", spinner="dots")
        if out.is_terminal
        else contextlib.nullcontext()
    )
    with live as spinner:

        def start(migration: Migration) -> None:
            if spinner is not None:
                spinner.update(f"applying {migration.version}_{migration.name}")

        def report(migration: Migration, elapsed_ms: float) -> None:
            out.print(f"  applied {migration.version}_{migration.name} in {elapsed_ms:.1f} ms")

        migrator = Migrator(target.dsn, settings=target.settings, on_applied=report, on_start=start)
        result = await migrator.apply(to=args.to)
    for version in result.resumed:
        out.print(f"  {version}: completed what an interrupted run had built")
    pending = sum(not s.applied for s in await migrator.status())
    left = f"; {pending} pending after --to {args.to}" if pending else ""
    if result.applied:
        out.print(
            f"[green]migrated[/] {where(target)}: {len(result.applied)} applied "
            f"in {result.elapsed_ms:.0f} ms{left}"
        )
    else:
        out.print(f"[green]up to date[/] {where(target)}{left}")
    return 0


async def status(args: argparse.Namespace) -> int:
    target = await resolve_target(args)
    statuses = await Migrator(target.dsn, settings=target.settings).status()
    out.print(f"migrations on {where(target)}")
    wide = out.width >= NARROW
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("state", no_wrap=True)
    table.add_column("version", no_wrap=True)
    table.add_column("name", overflow="fold", min_width=12)
    table.add_column("applied (UTC)", no_wrap=True)
    if wide:
        table.add_column("took", justify="right", no_wrap=True)
    when = "%Y-%m-%d %H:%M:%S" if wide else "%Y-%m-%d %H:%M"
    for status in statuses:
        style, label = _STATES[status.state]
        row = [
            f"[{style}]{label}[/]",
            str(status.version),
            status.name,
            status.applied_at.strftime(when) if status.applied_at else "",
        ]
        if wide:
            row.append(f"{status.execution_ms:.1f} ms" if status.execution_ms is not None else "")
        table.add_row(*row)
    out.print(table)
    counts = {state: sum(s.state == state for s in statuses) for state in _STATES}
    out.print(", ".join(f"{n} {state}" for state, n in counts.items() if n))
    problems = [s for s in statuses if s.state in _PROBLEMS]
    for problem in problems:
        err.print(
            f"[red]migration {problem.version}_{problem.name} {_PROBLEMS[problem.state]}[/]"
            " (startup will refuse until fixed)"
        )
    return 1 if problems else 0


async def rollback(args: argparse.Namespace) -> int:
    check_target(load_migrations(), args.to, rollback=True, field="--to")
    target = await resolve_target(args)
    result = await Migrator(target.dsn, settings=target.settings).rollback(
        to=args.to, allow_data_loss=args.allow_data_loss
    )
    if result.reverted:
        for version in result.reverted:
            out.print(f"  reverted {version}")
        out.print(f"[green]rolled back[/] {len(result.reverted)} migration(s) to {args.to}")
    else:
        out.print(f"nothing to roll back: no applied migration is newer than {args.to}")
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


async def doctor(args: argparse.Namespace) -> int:
    target = await resolve_target(args)
    problems: list[str] = []
    connection = await open_connection(target.dsn, target.settings)
    try:
        out.print(f"doctor: {where(target)}")
        facts = Table(show_header=False, box=box.SIMPLE, pad_edge=False, show_edge=False)
        facts.add_column("what", no_wrap=True)
        facts.add_column("value", overflow="fold")
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
        out.print(facts)
    finally:
        await connection.close()

    statuses = await Migrator(target.dsn, settings=target.settings).status()
    counts = {state: sum(s.state == state for s in statuses) for state in _STATES}
    out.print("ledger: " + ", ".join(f"{n} {state}" for state, n in counts.items()))
    for status in statuses:
        if status.state in _PROBLEMS:
            problems.append(f"migration {status.version}_{status.name} {_PROBLEMS[status.state]}")
    if counts["pending"]:
        out.print(f"[yellow]{counts['pending']} pending migration(s): run codeatlas migrate[/]")
    for problem in problems:
        err.print(f"[red]problem:[/] {escape(problem)}")
    if not problems:
        out.print("[green]no problems found[/]")
    return 1 if problems else 0
