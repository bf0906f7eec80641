"""``codeatlas demo``: index a tree (default: the standard library) and answer questions."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..analysis import DEFAULT_EXCLUDE_DIRS
from ..atlas import connect
from ..demo import DEFAULT_QUERIES, STDLIB_TEST_DIRS, run_demo, stdlib_path
from ._console import out, resolve_target

__all__ = ["demo"]


async def demo(args: argparse.Namespace) -> int:
    target = await resolve_target(args)
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
            console=out,
            workers=args.workers,
            exclude_dirs=exclude,
        )
    return 0
