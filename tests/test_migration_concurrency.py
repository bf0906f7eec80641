"""Many OS processes starting at once against an empty database migrate it exactly once."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from multiprocessing.synchronize import Barrier
from typing import Any

import asyncpg
import pytest

from fixtures.server import PgServer

PROCESSES = 16
ROUNDS = 2


def _worker(dsn: str, barrier: Barrier, results: Any) -> None:
    # Import before the barrier so the race is between migrations, not interpreter start-up.
    from codeatlas.config import Settings
    from codeatlas.migrations import Migrator

    migrator = Migrator(dsn, settings=Settings(migration_lock_timeout=120))
    migrator.migrations  # noqa: B018 - read the files before the race too
    barrier.wait()
    started = time.perf_counter()
    try:
        result = asyncio.run(migrator.apply())
        results.put(("ok", result.applied, time.perf_counter() - started))
    except BaseException as exc:  # report every failure, whatever it is
        results.put(("error", f"{type(exc).__name__}: {exc}", time.perf_counter() - started))


@pytest.mark.slow
async def test_sixteen_processes_migrate_an_empty_database_once(pg: PgServer) -> None:
    context = multiprocessing.get_context("spawn")
    from codeatlas.migrations import load_migrations

    expected = [m.version for m in load_migrations()]
    walls: list[float] = []
    for _round in range(ROUNDS):
        name = await pg.create_database()
        dsn = pg.dsn_for(name)
        try:
            barrier = context.Barrier(PROCESSES)
            results = context.Queue()
            processes = [
                context.Process(target=_worker, args=(dsn, barrier, results))
                for _ in range(PROCESSES)
            ]
            for process in processes:
                process.start()
            outcomes = [results.get(timeout=180) for _ in processes]
            for process in processes:
                process.join(timeout=60)
            walls.append(max(elapsed for _, _, elapsed in outcomes))

            errors = [detail for kind, detail, _ in outcomes if kind == "error"]
            assert errors == []
            appliers = [detail for kind, detail, _ in outcomes if detail]
            assert appliers == [expected], "exactly one process applies every migration"

            connection = await asyncpg.connect(dsn)
            try:
                rows = await connection.fetch(
                    "SELECT version, count(*) AS n FROM codeatlas_schema_migrations "
                    "GROUP BY version ORDER BY version"
                )
            finally:
                await connection.close()
            assert [row["version"] for row in rows] == expected
            assert all(row["n"] == 1 for row in rows)
        finally:
            await pg.drop_database(name)
    print(f"\n{PROCESSES} processes x {ROUNDS} rounds, slowest process per round (s): {walls}")
