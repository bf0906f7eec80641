"""Ingest: the same rows into the same table, four ways, truncating in between.

* ``insert_many`` above 64 rows is one binary ``COPY`` (``repositories/_base.py``);
* ``executemany`` is the same ``INSERT`` asyncpg pipelines for a whole batch;
* ``insert()`` per row inside one transaction: one round trip per row, one commit;
* ``insert()`` per row in autocommit: one round trip and one WAL flush per row, which is
  what a loop over ``repository.insert`` outside a transaction costs.

The write models are built before the clock starts (validation is the caller's cost
whatever the method); turning them into column values (``to_db``) is inside it, since
every method needs it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

import codeatlas

from .tables import TableSpec

__all__ = ["METHODS", "ingest"]

METHODS = (
    "insert_many (binary COPY)",
    "executemany",
    "insert() per row, one transaction",
    "insert() per row, autocommit",
)


async def _truncate(atlas: codeatlas.Atlas, spec: TableSpec) -> None:
    # CASCADE: rag_feedback references rag_documents (empty here, but it must be named)
    await atlas.executor.execute(f"TRUNCATE {spec.table} RESTART IDENTITY CASCADE")


def _methods(
    atlas: codeatlas.Atlas, spec: TableSpec, items: Sequence[Any]
) -> dict[str, Callable[[], Awaitable[None]]]:
    repository = spec.repository(atlas)

    async def copy() -> None:
        await repository.insert_many(items)

    async def executemany() -> None:
        rows = [tuple(item.to_db()[name] for name in spec.insert_columns) for item in items]
        await atlas.executor.executemany(spec.insert_sql, rows)

    async def one_transaction() -> None:
        async with atlas.transaction() as tx:
            scoped = spec.repository(tx)
            for item in items:
                await scoped.insert(item)

    async def autocommit() -> None:
        for item in items:
            await repository.insert(item)

    return dict(zip(METHODS, (copy, executemany, one_transaction, autocommit), strict=True))


async def ingest(
    atlas: codeatlas.Atlas,
    spec: TableSpec,
    vectors: npt.NDArray[np.float32],
    *,
    rounds: int,
    advance: Callable[[], None],
) -> dict[str, Any]:
    """Return rows/s per method (each round, and their mean) for ``len(vectors)`` rows."""
    items = [spec.make_row(number, vector) for number, vector in enumerate(vectors)]
    methods = _methods(atlas, spec, items)
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in [*names[shift:], *names[:shift]]:
            await _truncate(atlas, spec)
            started = time.perf_counter()
            await methods[name]()
            seconds[name].append(time.perf_counter() - started)
            stored = await atlas.executor.fetchval(f"SELECT count(*) FROM {spec.table}")
            if stored != len(items):
                raise RuntimeError(f"{name} stored {stored} of {len(items)} rows")
            advance()
    await _truncate(atlas, spec)
    rates = {name: float(np.mean([len(items) / s for s in runs])) for name, runs in seconds.items()}
    figures = {
        name: {
            "seconds": seconds[name],
            "rows_per_s": rate,
            "speedup_vs_autocommit": rate / rates[METHODS[-1]],
        }
        for name, rate in rates.items()
    }
    return {"table": spec.table, "dimensions": spec.dimensions, "rows": len(items), **figures}
