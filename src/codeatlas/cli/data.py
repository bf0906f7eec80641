"""``codeatlas data [--remove]``: where the embedded server's data lives, and removing it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.markup import escape

from .._server import DataUsage, data_usage, remove_data_dir
from ..config import Settings
from ._console import human_bytes, out

__all__ = ["data", "describe_usage"]


async def data(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir) if args.data_dir else Settings().data_dir
    if os.environ.get("CODEATLAS_DSN"):
        out.print(
            "[yellow]CODEATLAS_DSN is set:[/] codeatlas uses that server, not the embedded one"
        )
    if args.remove:
        usage = await remove_data_dir(data_dir)
        out.print(
            f"[green]removed[/] {escape(str(usage.data_dir))} "
            f"({human_bytes(usage.total_bytes)} freed)",
            soft_wrap=True,
        )
        return 0
    for line in describe_usage(data_usage(data_dir)):
        # never folded: a path must survive copy and paste whole
        out.print(line, markup=False, soft_wrap=True)
    return 0


def describe_usage(usage: DataUsage) -> list[str]:
    """Return the lines that tell a user where the data is, its size, and how to remove it."""
    if not usage.exists:
        return [
            f"embedded server data: {usage.data_dir}",
            "  nothing there yet (created when codeatlas first starts the embedded server)",
        ]
    lines = [
        f"embedded server data: {usage.data_dir}",
        f"  size on disk: {human_bytes(usage.total_bytes)} "
        f"(write-ahead log {human_bytes(usage.wal_bytes)})",
    ]
    if usage.server_pid is not None and usage.attached_pids:
        lines.append(
            f"  server: running (pid {usage.server_pid}), "
            f"{len(usage.attached_pids)} codeatlas process(es) attached"
        )
        lines.append("  to remove: stop the processes that use it (the server stops with")
        lines.append("  the last one), then run `codeatlas data --remove`")
    elif usage.server_pid is not None:
        lines.append(f"  server: running (pid {usage.server_pid}), no codeatlas process attached")
        lines.append("  to remove: `codeatlas data --remove` (stops the server first,")
        lines.append("  refused while a client is connected)")
    else:
        lines.append("  server: stopped")
        lines.append(f"  to remove: `codeatlas data --remove` (or delete {usage.data_dir})")
    return lines
