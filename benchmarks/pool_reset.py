"""The pool's reset on release: semantic-cache lookups with codeatlas' reset against asyncpg's.

    python -m benchmarks.pool_reset [--entries 10000] [--lookups 300]

On a throwaway embedded server, N cache entries (768-d, ``benchmarks/data.py``'s mixture,
the cache's default HNSW index, its knob tuned to recall 0.95) are loaded; then, per
question and in turn so that noise hits all alike: the raw single-row index query on one
direct connection (as in ``benchmarks.caches``), the same on an asyncpg pool of one
connection with asyncpg's default reset and with no reset (what acquire and release cost
apart from the reset), ``lookup`` on an Atlas with codeatlas' pool reset (skipped after its
own statements), and ``lookup`` on a second Atlas on the same database whose pool runs
asyncpg's full reset on every release (``reset=``: the behaviour before). Hits and misses
alternate; the order of the calls rotates from question to question (whichever comes
first reads the question's index pages cold). Prints p50s and the ratios to the raw
query, measured in the same process.

    python -m benchmarks.pool_reset --cpu [--entries 10000] [--lookups 300]

instead splits a lookup's client-side cost, the benchmark process's CPU time per call
(``time.process_time``, the kernel's share of its socket calls included; the server's
work is not in it): the lookup's statement on a direct connection, the same on an asyncpg
pool of one connection without a reset (what acquire and release cost), through the
cache's own executor (codeatlas' translation, vouching, pre-ping check), ``lookup``
without its OpenTelemetry span (validation, settings, the result model), and ``lookup``.
Each runs the same questions in a block of its own, the blocks rotating over several
rounds; the figure is the round's median.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector

import codeatlas
from codeatlas.config import Settings

from .caches import _RAW_NEAREST, _load
from .data import make_dataset, near_duplicates
from .measure import summarise

__all__ = ["main"]


async def _full_reset(connection: asyncpg.Connection) -> None:
    """asyncpg's own reset (what ``Connection.reset`` sends after its housekeeping)."""
    query = connection.get_reset_query()
    if query:
        await connection.execute(query)


async def _no_reset(connection: asyncpg.Connection) -> None:
    """No reset query (asyncpg's housekeeping before it still runs)."""


@asynccontextmanager
async def _loaded(
    entries: int, lookups: int, seed: int
) -> AsyncIterator[tuple[codeatlas.Atlas, Settings, str, dict[str, str], list[Any]]]:
    """Yield an Atlas on a throwaway server with *entries* cache entries, its knob tuned,
    and *lookups* questions: near-duplicates of stored ones (hits) and fresh ones (misses),
    alternating. Also its settings, its DSN and the knobs as server settings."""
    with tempfile.TemporaryDirectory(prefix="codeatlas-pool-reset-") as scratch:
        settings = Settings(data_dir=Path(scratch) / "pgdata", pool_min_size=1, pool_max_size=1)
        async with codeatlas.connect(settings=settings) as atlas:
            assert atlas.server is not None
            data = make_dataset(768, entries, lookups, seed=seed + 1, k=1)
            cache = atlas.semantic_cache
            await _load(cache, atlas, data.base)
            await atlas.executor.execute("ANALYZE semantic_cache")
            # the knob tuned as benchmarks.caches tunes it (recall 0.95 on its sample)
            await atlas.indexes.tune("semantic_cache", target_recall=0.95, seed=seed)
            knobs = cache._knobs(await cache._probes(None), exact=False, k=1)
            rng = np.random.default_rng([seed, 98])
            targets = rng.choice(len(data.base), size=lookups, replace=False)
            near = near_duplicates(data.base[targets], 0.98, rng)
            questions = [near[n] if n % 2 == 0 else data.queries[n] for n in range(lookups)]
            yield atlas, settings, atlas.server.dsn("codeatlas"), knobs, questions


#: The two raw pools: asyncpg's default reset, and none.
_POOL_OPTIONS: tuple[dict[str, Any], ...] = ({}, {"reset": _no_reset})


async def _run(entries: int, lookups: int, seed: int) -> dict[str, Any]:
    async with _loaded(entries, lookups, seed) as (atlas, settings, dsn, knobs, questions):
        direct = await asyncpg.connect(dsn, server_settings=knobs)
        await register_vector(direct)
        pools = [
            await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=1,
                server_settings=knobs,
                init=register_vector,
                **options,
            )
            for options in _POOL_OPTIONS
        ]

        def pooled(pool: Any) -> Any:
            async def call(query: Any) -> Any:
                async with pool.acquire() as connection:
                    return await connection.fetchrow(_RAW_NEAREST, query)

            return call

        async with codeatlas.connect(
            dsn, migrate=False, settings=settings, reset=_full_reset
        ) as before:
            calls = {
                "raw": lambda q: direct.fetchrow(_RAW_NEAREST, q),
                "raw_pool": pooled(pools[0]),
                "raw_pool_no_reset": pooled(pools[1]),
                "lookup": atlas.semantic_cache.lookup,
                "lookup_full_reset": before.semantic_cache.lookup,
            }
            for _ in range(3):  # warm: statements prepared, index pages read
                for call in calls.values():
                    await call(questions[-2])
                    await call(questions[-1])
            times: dict[str, list[float]] = {name: [] for name in calls}
            for number in range(lookups):
                question = questions[number]
                # the order rotates: the first query of a question reads its pages cold
                names = list(calls)
                shift = number % len(names)
                for name in names[shift:] + names[:shift]:
                    call = calls[name]
                    started = time.perf_counter()
                    await call(question)
                    times[name].append(time.perf_counter() - started)
        await direct.close()
        for pool in pools:
            await pool.close()
    return {name: summarise(values) for name, values in times.items()}


async def _cpu(entries: int, lookups: int, seed: int, rounds: int = 5) -> dict[str, float]:
    """Return the benchmark process's CPU time per call (us) of each step of a lookup."""
    async with _loaded(entries, lookups, seed) as (atlas, _, dsn, knobs, questions):
        cache = atlas.semantic_cache
        statement = cache._lookup_sql(cache._plan().knob, inline=tuple(knobs))
        inline = list(knobs.values())
        direct = await asyncpg.connect(dsn, server_settings=knobs)
        await register_vector(direct)
        pool = await asyncpg.create_pool(
            dsn,
            min_size=1,
            max_size=1,
            server_settings=knobs,
            init=register_vector,
            reset=_no_reset,
        )
        spanless = getattr(type(cache).lookup, "__wrapped__", type(cache).lookup)

        async def on_pool(query: Any) -> Any:
            async with pool.acquire() as connection:
                return await connection.fetchrow(statement, query, 0.05, None, *inline)

        calls: dict[str, Callable[[Any], Awaitable[Any]]] = {
            "statement_direct": lambda q: direct.fetchrow(statement, q, 0.05, None, *inline),
            "statement_pool_no_reset": on_pool,
            "statement_executor": lambda q: cache._executor.fetchrow(
                statement, q, 0.05, None, *inline
            ),
            "lookup_no_span": lambda q: spanless(cache, q),
            "lookup": cache.lookup,
        }
        per_round: dict[str, list[float]] = {name: [] for name in calls}
        try:
            for call in calls.values():  # warm: statements prepared, pages read
                for question in questions[:20]:
                    await call(question)
            names = list(calls)
            for number in range(rounds):
                shift = number % len(names)
                for name in names[shift:] + names[:shift]:
                    started = time.process_time()
                    for question in questions:
                        await calls[name](question)
                    per_round[name].append((time.process_time() - started) / len(questions))
        finally:
            await direct.close()
            await pool.close()
    return {name: float(np.median(values)) * 1e6 for name, values in per_round.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pool_reset")
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--seed", type=int, default=20250101)
    parser.add_argument(
        "--cpu", action="store_true", help="split a lookup's client-side CPU time per call"
    )
    args = parser.parse_args(argv)
    if args.cpu:
        cpu = asyncio.run(_cpu(args.entries, args.lookups, args.seed))
        print(f"{args.entries:,} entries, {args.lookups} lookups (half hits, half misses),")
        print("the benchmark process's CPU time per call, us (added by each step):")
        previous = 0.0
        for name, value in cpu.items():
            print(f"  {name:<24} {value:7.1f}  (+{value - previous:.1f})")
            previous = value
        return
    figures = asyncio.run(_run(args.entries, args.lookups, args.seed))
    raw = figures["raw"]["p50_ms"]
    print(f"{args.entries:,} entries, {args.lookups} lookups (half hits, half misses), p50 ms:")
    for name, summary in figures.items():
        print(f"  {name:<18} {summary['p50_ms']:6.2f}  {summary['p50_ms'] / raw:5.2f}x raw")


if __name__ == "__main__":
    main()
