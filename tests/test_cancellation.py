"""Cancellation fuzz: cancel searches, bulk inserts and transactions at random points.

Afterwards every pooled connection must be idle, outside a transaction, with default
settings; cancellation must surface as cancellation (never another error); and nothing
may be half-written. Run with ``-s`` to see the counts.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import numpy.typing as npt

import codeatlas
from codeatlas.models import VectorSearchCreate

DIM = 1536
BATCH = 70  # above the COPY threshold (64): insert_many goes through binary COPY
POOL = 4


def vectors(n: int, seed: int) -> npt.NDArray[np.float32]:
    data = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    unit: npt.NDArray[np.float32] = data / np.linalg.norm(data, axis=1, keepdims=True)
    return unit


def rows(prefix: str, n: int, seed: int) -> list[VectorSearchCreate]:
    return [
        VectorSearchCreate(
            codebase_id="cb",
            file_path=f"{prefix}/{i}",
            content_type="code",
            content=prefix,
            vector_embedding=v,
        )
        for i, v in enumerate(vectors(n, seed))
    ]


async def settle(
    call: Callable[[], Awaitable[Any]], rng: random.Random, outcomes: Counter[str]
) -> bool:
    """Run *call*, cancelled after a random delay; return True if it completed."""
    delay = rng.choice([0.0, rng.uniform(0, 0.003), rng.uniform(0, 0.01), rng.uniform(0, 0.03)])
    if rng.random() < 0.5:
        try:
            await asyncio.wait_for(call(), delay)
        except TimeoutError:
            outcomes["timeout"] += 1
            return False
    else:
        task = asyncio.ensure_future(call())
        await asyncio.sleep(delay)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            outcomes["cancelled"] += 1
            return False
    outcomes["completed"] += 1
    return True


async def assert_pool_clean(atlas: codeatlas.Atlas) -> None:
    """Every pooled connection: idle, outside a transaction, default settings."""
    names = [
        "ivfflat.probes",
        "ivfflat.iterative_scan",
        "enable_indexscan",
        "enable_seqscan",
        "synchronous_commit",
    ]
    query = "SELECT " + ", ".join(f"current_setting('{n}', true)" for n in names)
    defaults = {(None, None, "on", "on", "on"), ("1", "off", "on", "on", "on")}
    pool = atlas.pool
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        pids = []
        for connection in held:
            assert not connection.is_in_transaction()
            record = await connection.fetchrow(query)
            assert record is not None and tuple(record) in defaults
            pids.append(connection.get_server_pid())
        states = await held[0].fetch(
            "SELECT pid, state, backend_xid FROM pg_stat_activity WHERE pid = ANY($1::int[])",
            pids,
        )
        by_pid = {r["pid"]: r for r in states}
        for pid in pids[1:]:
            assert by_pid[pid]["state"] == "idle", by_pid[pid]
            assert by_pid[pid]["backend_xid"] is None
    finally:
        for connection in held:
            await pool.release(connection)


async def test_cancellation_fuzz_leaves_nothing_behind(migrated_dsn: str) -> None:
    rng = random.Random(20261201)
    outcomes: Counter[str] = Counter()
    other_errors: list[BaseException] = []
    async with codeatlas.connect(
        migrated_dsn, migrate=False, min_size=POOL, max_size=POOL
    ) as atlas:
        await atlas.vector_search.insert_many(rows("seed", 300, 0))
        queries = vectors(20, 1)
        batches: list[str] = []
        pairs: list[str] = []

        async def search() -> None:
            q = queries[rng.randrange(len(queries))]
            await atlas.vector_search.search_similar(q, 20, probes=rng.choice([3, 77]))

        async def bulk(prefix: str) -> None:
            await atlas.vector_search.insert_many(rows(prefix, BATCH, len(batches)))

        async def pair(prefix: str) -> None:
            async with atlas.transaction() as tx:
                await tx.vector_search.insert_many(rows(prefix, 2, 7))
                await tx.vector_search.search_similar(queries[0], 10, probes=77)
                await tx.vector_search.insert(rows(prefix, 3, 8)[2])

        async def guarded(call: Callable[[], Awaitable[Any]]) -> None:
            try:
                await settle(call, rng, outcomes)
            except Exception as exc:  # anything but cancellation is a failure of the contract
                other_errors.append(exc)

        for round_ in range(180):
            kind = round_ % 3
            if kind == 0:
                await guarded(search)
            elif kind == 1:
                prefix = f"bulk{round_}"
                batches.append(prefix)
                await guarded(lambda p=prefix: bulk(p))  # type: ignore[misc]
            else:
                prefix = f"pair{round_}"
                pairs.append(prefix)
                await guarded(lambda p=prefix: pair(p))  # type: ignore[misc]

        # inside one caller's transaction: cancelled searches never leak their knobs, never
        # turn into another error, and never undo the caller's own earlier work
        caller_rows = 0
        in_tx_cancelled = 0
        async with atlas.transaction() as tx:
            await tx.executor.execute("SET LOCAL ivfflat.probes = 3")
            await tx.executor.execute("SET LOCAL enable_seqscan = off")
            for i in range(200):
                query = queries[i % len(queries)]
                try:
                    completed = await settle(
                        lambda q=query: tx.vector_search.search_similar(q, 50, probes=77),  # type: ignore[misc]
                        rng,
                        outcomes,
                    )
                    in_tx_cancelled += not completed
                except Exception as exc:
                    other_errors.append(exc)
                settings = await tx.executor.fetchrow(
                    "SELECT current_setting('ivfflat.probes'), "
                    "current_setting('ivfflat.iterative_scan'), current_setting('enable_seqscan')"
                )
                assert settings is not None
                assert tuple(settings) == ("3", "off", "off"), (i, tuple(settings))
                if i % 10 == 0:
                    await tx.vector_search.insert(rows(f"caller{i}", 1, i)[0])
                    caller_rows += 1

        # a cancelled transaction block rolls back, a cancelled COMMIT finishes first
        for _ in range(30):
            prefix = f"pair-late{_}"
            pairs.append(prefix)
            await guarded(lambda p=prefix: pair(p))  # type: ignore[misc]

        assert other_errors == [], other_errors[:5]
        await assert_pool_clean(atlas)
        counts = {
            r["prefix"]: r["n"]
            for r in await atlas.executor.fetch(
                "SELECT split_part(file_path, '/', 1) AS prefix, count(*) AS n "
                "FROM vector_search GROUP BY 1"
            )
        }
        assert counts.pop("seed") == 300
        half_written = {p: n for p, n in counts.items() if p.startswith("bulk") and n != BATCH}
        half_written |= {p: n for p, n in counts.items() if p.startswith("pair") and n != 3}
        assert half_written == {}
        assert sum(1 for p in counts if p.startswith("caller")) == caller_rows
        cancelled = outcomes["timeout"] + outcomes["cancelled"]
        print(
            f"\ncancellation fuzz: {cancelled} cancellations "
            f"({outcomes['timeout']} by wait_for, {outcomes['cancelled']} by task.cancel; "
            f"{in_tx_cancelled} inside a caller's transaction), {outcomes['completed']} "
            f"completed; bulk batches written {sum(p.startswith('bulk') for p in counts)}"
            f"/{len(batches)}, transactions committed {sum(p.startswith('pair') for p in counts)}"
            f"/{len(pairs)}; other errors {len(other_errors)}, half-written 0"
        )
        assert cancelled >= 200
