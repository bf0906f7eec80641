"""``codeatlas search QUERY``: files and functions of an indexed codebase, without re-indexing.

A thin presenter over ``codeatlas.indexer.query.search``: ``--json`` prints exactly one JSON
object (``SearchResult.as_json``), otherwise two tables.
"""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from ..atlas import connect
from ..indexer.query import SearchResult, latest_codebase, search
from ._console import out, resolve_target, shorten_path

__all__ = ["print_result", "search_command"]


async def search_command(args: argparse.Namespace) -> int:
    target = await resolve_target(args)
    async with connect(target.dsn, settings=target.settings) as atlas:
        codebase_id = args.codebase or await latest_codebase(atlas, args.path)
        result = await search(
            atlas,
            args.query,
            codebase_id,
            k=args.k,
            mode=args.mode,
            embedder_name=args.embedder,
        )
    if args.json:
        # print() rather than rich: the object must reach stdout byte for byte
        print(json.dumps(result.as_json(), ensure_ascii=False))
    else:
        print_result(out, result)
    return 0


def print_result(console: Console, result: SearchResult) -> None:
    """Print the files and functions of *result* within the console's width."""
    width = min(console.width or 80, 100)
    title = f"{result.query}  ({result.codebase_id}, {result.mode}, embedder {result.embedder})"
    files = Table(title=title, title_justify="left")
    files.add_column(f"files ({result.files_ms:.1f} ms)", no_wrap=True, overflow="ellipsis")
    files.add_column("score", justify="right", width=7)
    for file in result.files:
        files.add_row(shorten_path(file.path, width - 16), f"{file.score:.4f}")
    console.print(files)
    functions = Table()
    functions.add_column(f"functions ({result.functions_ms:.1f} ms)", no_wrap=True)
    functions.add_column("where", no_wrap=True)
    functions.add_column("score", justify="right", width=7)
    room = width - 20
    for hit in result.functions:
        name = hit.name if len(hit.name) <= room // 2 else "…" + hit.name[-(room // 2 - 1) :]
        where = shorten_path(f"{hit.path}:{hit.line}", room - len(name))
        functions.add_row(name, where, f"{hit.score:.4f}")
    console.print(functions)
