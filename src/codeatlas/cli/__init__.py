"""The ``codeatlas`` command: migrate, status, rollback, doctor, index, demo.

Each command lives in its own module, imported only when that command runs, so
``codeatlas migrate`` loads neither the indexer nor the analysis code.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Sequence
from typing import Any, Final

__all__ = ["main"]


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


#: command -> (module of this package, coroutine function in it)
_COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "migrate": ("migrations", "migrate"),
    "status": ("migrations", "status"),
    "rollback": ("migrations", "rollback"),
    "doctor": ("migrations", "doctor"),
    "index": ("indexes", "index"),
    "demo": ("demo", "demo"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    module_name, function_name = _COMMANDS[args.command]
    module = importlib.import_module(f".{module_name}", __name__)
    run = getattr(module, function_name)
    from ..errors import CodeAtlasError
    from ._console import err

    try:
        return int(asyncio.run(run(args)))
    except CodeAtlasError as exc:
        err.print(f"[red]error:[/] {exc}")
        return 1
    except OSError as exc:
        err.print(f"[red]error:[/] {type(exc).__name__}: {_first_line(exc)}")
        return 1
    except KeyboardInterrupt:
        return 130


def _first_line(exc: BaseException) -> str:
    text: Any = exc.args[0] if exc.args else ""
    return str(text).splitlines()[0] if text else ""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
