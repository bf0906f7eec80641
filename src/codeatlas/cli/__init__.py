"""The ``codeatlas`` command: migrate, status, rollback, doctor, index, data, search, demo.

Each command lives in its own module, imported only when that command runs, so
``codeatlas migrate`` loads neither the indexer nor the analysis code. ``main()`` decides
what reaches the terminal when a command fails: one line saying what happened (never a
driver's class name, never a password) and exit code 1. Ctrl-C (SIGINT) and SIGTERM stop
a command cleanly: the running work is cancelled (what committed stays, transactions roll
back), connections close, the embedded server stops if no other process uses it, and the
exit code is 130 or 143 (128 + the signal's number), with one line and no traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import re
import signal
import sys
import traceback
from collections.abc import Coroutine, Sequence
from typing import Any, Final, NoReturn

from .. import __version__

__all__ = ["main"]

_PASSWORD_ITEM: Final = re.compile(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'?|\S+)")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose error messages never echo a DSN's password."""

    def error(self, message: str) -> NoReturn:
        from ..config import redact_dsn

        # "unrecognized arguments: --dns postgresql://u:pw@h/db" quotes the arguments
        message = " ".join(
            redact_dsn(word) if "://" in word else word for word in message.split(" ")
        )
        super().error(_PASSWORD_ITEM.sub(r"\1***", message))


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="codeatlas",
        description="PostgreSQL + pgvector data layer for code-intelligence agents.",
    )
    parser.add_argument("--version", action="version", version=f"codeatlas {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--dsn",
            help="PostgreSQL DSN (default: $CODEATLAS_DSN, else the embedded server)",
        )
        return sub

    migrate = command("migrate", "apply pending migrations")
    migrate.add_argument("--to", type=int, help="stop after this version (one of the chain)")
    command("status", "list migrations: applied, pending, changed, missing, ahead")
    rollback = command("rollback", "revert migrations newer than --to, newest first")
    rollback.add_argument(
        "--to", type=int, required=True, help="version to keep (one of the chain; 0: revert all)"
    )
    rollback.add_argument(
        "--allow-data-loss",
        action="store_true",
        help="drop tables even when they hold rows",
    )
    command("doctor", "check server, pgvector, ledger, invalid indexes and legacy tables")
    index = command("index", "vector indexes: status, rebuild, tune, compare")
    index.add_argument("action", choices=("status", "rebuild", "tune", "compare"))
    index.add_argument("--table", help="one table (default: every table with a vector index)")
    index.add_argument(
        "--kind",
        choices=("ivfflat", "hnsw", "ivfflat_halfvec", "hnsw_halfvec", "hnsw_binary"),
        help="rebuild: the index strategy (default: the current one)",
    )
    index.add_argument(
        "--kinds", help="compare: comma-separated strategies (default: every strategy)"
    )
    index.add_argument("--m", type=int, help="rebuild: HNSW m (default 16)")
    index.add_argument(
        "--ef-construction", type=int, help="rebuild: HNSW ef_construction (default 64)"
    )
    index.add_argument("--max-rows", type=int, help="compare: rows copied (default: all)")
    index.add_argument(
        "--apply", action="store_true", help="compare: build the fastest that meets --target"
    )
    index.add_argument("--lists", type=int, help="rebuild: IVFFlat lists (default: advised)")
    index.add_argument(
        "--blocking", action="store_true", help="rebuild: in one transaction, not CONCURRENTLY"
    )
    index.add_argument("--target", type=float, default=0.95, help="tune: recall@10 target")
    index.add_argument("--sample", type=int, default=200, help="tune: query vectors sampled")
    data = commands.add_parser(
        "data",
        help="where the embedded server keeps its data, its size, how to remove it",
        description="Show the embedded server's data directory, its size on disk (and the "
        "WAL's), which processes use it, and how to remove it.",
    )
    data.add_argument(
        "--data-dir", help="the directory (default: $CODEATLAS_DATA_DIR, else the per-user one)"
    )
    data.add_argument(
        "--remove",
        action="store_true",
        help="delete the directory (refused while a server or process uses it)",
    )
    tree = command("index-tree", "index a source tree into the atlas (incrementally)")
    tree.add_argument("path", help="directory to index")
    tree.add_argument("--codebase-id", help="registry id (default: derived from the path)")
    tree.add_argument("--workers", type=int, default=2, help="parser processes (default: 2)")
    tree.add_argument(
        "--exclude", action="append", metavar="DIR", help="a directory name to skip (repeatable)"
    )
    tree.add_argument(
        "--max-file-size",
        type=int,
        default=4 * 1024 * 1024,
        metavar="BYTES",
        help="skip larger files (default: 4 MiB)",
    )
    tree.add_argument(
        "--embedder",
        choices=("hashing", "local"),
        default="hashing",
        help="hashing (default, no model) or local (the wordllama model: extra 'local')",
    )
    tree.add_argument(
        "--lock-timeout",
        type=float,
        metavar="SECONDS",
        help="while another run indexes the same codebase, wait at most this long "
        "(default: wait until it ends; 0: do not wait)",
    )
    find = command("search", "answer a question from an indexed codebase (no re-indexing)")
    find.add_argument("query", help="the question, in words or identifiers")
    find.add_argument(
        "--codebase", help="codebase id (default: the most recently indexed, or --path's)"
    )
    find.add_argument("--path", help="the indexed directory whose codebase to search")
    find.add_argument("--k", type=int, default=10, help="files and functions shown (default 10)")
    find.add_argument(
        "--mode", choices=("hybrid", "vector", "text"), default="hybrid", help="default: hybrid"
    )
    find.add_argument(
        "--embedder",
        choices=("hashing", "local"),
        help="the embedder the index was built with (default: the one its rows record)",
    )
    find.add_argument("--json", action="store_true", help="print one JSON object")
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


#: command -> (module of this package, coroutine function in it)
_COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "migrate": ("migrations", "migrate"),
    "status": ("migrations", "status"),
    "rollback": ("migrations", "rollback"),
    "doctor": ("migrations", "doctor"),
    "index": ("indexes", "index"),
    "data": ("data", "data"),
    "demo": ("demo", "demo"),
    "index-tree": ("index_tree", "index_tree"),
    "search": ("search", "search_command"),
}


class _Terminated(Exception):
    """The command was cancelled because the process received SIGTERM."""


async def _terminable(work: Coroutine[Any, Any, int]) -> int:
    """Await *work*; on SIGTERM cancel it and raise ``_Terminated`` once it has unwound.

    Python's default SIGTERM action ends the process on the spot: no ``finally``, no
    ``atexit``, so the embedded server (stopped by the exit hook of the last process that
    uses it) would keep running. Cancelling instead runs the same path as Ctrl-C.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    terminated = False

    def on_sigterm() -> None:
        nonlocal terminated
        terminated = True
        if task is not None:
            task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    except (NotImplementedError, RuntimeError, ValueError):  # no signals here: run as is
        return await work
    # left installed until the loop closes: a SIGTERM during asyncio.run's own clean-up
    # (cancelling leftover tasks, joining the executor) then changes nothing
    try:
        return await work
    except asyncio.CancelledError:
        if terminated:
            raise _Terminated from None
        raise


def _stopped(name: str) -> None:
    from ._console import err

    err.print(f"stopped ({name})", markup=False, highlight=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    dsns = (getattr(args, "dsn", None), os.environ.get("CODEATLAS_DSN"))
    try:
        module_name, function_name = _COMMANDS[args.command]
        module = importlib.import_module(f".{module_name}", __name__)
        run = getattr(module, function_name)
        return int(asyncio.run(_terminable(run(args))))
    except KeyboardInterrupt:
        _stopped("SIGINT")
        return 128 + signal.SIGINT
    except (_Terminated, asyncio.CancelledError):
        # CancelledError: SIGTERM came as the command returned, too late to raise inside it
        _stopped("SIGTERM")
        return 128 + signal.SIGTERM
    except Exception as exc:
        import asyncpg
        import pydantic

        from ..errors import CodeAtlasError
        from ._console import describe_error, err, scrub

        expected = isinstance(
            exc,
            CodeAtlasError
            | OSError
            | asyncpg.PostgresError
            | asyncpg.InterfaceError
            | pydantic.ValidationError,
        )
        if not expected:
            # a bug: the traceback is what a report needs (secrets scrubbed all the same)
            text = "".join(traceback.format_exception(exc))
            err.print(scrub(text, dsns), markup=False, highlight=False, end="")
        line = scrub(describe_error(exc, dsns[0] or dsns[1]), dsns)
        err.print("[red]error:[/] ", end="")
        err.print(line, markup=False, highlight=False, soft_wrap=True)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
