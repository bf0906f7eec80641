"""The semantic cache's background flush of pending hits (HitFlusher), on the real tables."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import numpy as np
import numpy.typing as npt
import pytest

import codeatlas
from fixtures.data import unit_rows
from fixtures.replication import DATABASE, Replicated

FLUSH_TASK = "codeatlas-semantic-cache-flush"
#: The migration before the side table's (20261204000001).
BEFORE_HITS = 20261203000001
#: Seconds a test waits for something the flusher does every 0.2 s before failing.
PATIENCE = 60.0


def open_atlas(dsn: str, request: pytest.FixtureRequest, interval: float) -> Any:
    """connect() with *interval*, through pgbouncer when the suite runs that way."""
    if os.environ.get("CODEATLAS_TEST_PGBOUNCER") == "1":
        bouncer = request.getfixturevalue("pgbouncer")
        settings = codeatlas.Settings(
            pooler="transaction", migration_dsn=dsn, semantic_cache_flush_interval=interval
        )
        database = urlsplit(dsn).path.lstrip("/")
        return codeatlas.connect(bouncer.dsn_for(database), migrate=False, settings=settings)
    settings = codeatlas.Settings(semantic_cache_flush_interval=interval)
    return codeatlas.connect(dsn, migrate=False, settings=settings)


def flush_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == FLUSH_TASK and not t.done()]


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"{what}: not within {PATIENCE} s")
        await asyncio.sleep(0.05)


async def counters(dsn: str) -> tuple[dict[str, int], dict[str, int]]:
    """Return ({query: stored hit_count}, {query: pending hits}), on a connection of its own."""
    connection = await asyncpg.connect(dsn)
    try:
        stored = await connection.fetch("SELECT query, hit_count FROM semantic_cache")
        pending = await connection.fetch(
            "SELECT s.query, h.hits FROM codeatlas_semantic_cache_hits AS h"
            " JOIN semantic_cache AS s ON s.id = h.entry_id"
        )
    finally:
        await connection.close()
    return (
        {r["query"]: int(r["hit_count"] or 0) for r in stored},
        {r["query"]: int(r["hits"]) for r in pending},
    )


async def hit(atlas: codeatlas.Atlas, vector: npt.NDArray[np.float32], query: str) -> int:
    found = await atlas.semantic_cache.lookup(vector, 0.99)
    assert found is not None and found.item.query == query
    return int(found.item.hit_count or 0)


async def test_stored_counts_catch_up_without_flush_hits(
    migrated_dsn: str, request: pytest.FixtureRequest
) -> None:
    vectors = unit_rows(2, 768, seed=41)
    async with open_atlas(migrated_dsn, request, 0.2) as atlas:
        await atlas.semantic_cache.store("hot", vectors[0], "a")
        await atlas.semantic_cache.store("cold", vectors[1], "b")
        assert flush_tasks() == []  # nothing runs before the first hit
        for _ in range(3):
            await hit(atlas, vectors[0], "hot")
        assert len(flush_tasks()) == 1

        async def caught_up(expected: int) -> bool:
            stored, pending = await counters(migrated_dsn)
            return stored == {"hot": expected, "cold": 0} and pending == {}

        await eventually(lambda: caught_up(3), "the stored count catching up")
        # with nothing pending it stops on its own, and the next hit starts it again
        await eventually(lambda: asyncio.sleep(0, not flush_tasks()), "the flusher stopping")
        assert await hit(atlas, vectors[0], "hot") == 4
        assert len(flush_tasks()) == 1
        await eventually(lambda: caught_up(4), "the next hit's flush")
        # a hit counted inside a transaction is flushed once it commits
        async with atlas.transaction() as tx:
            found = await tx.semantic_cache.lookup(vectors[1], 0.99)
            assert found is not None and found.item.hit_count == 1

        async def both() -> bool:
            stored, pending = await counters(migrated_dsn)
            return stored == {"hot": 4, "cold": 1} and pending == {}

        await eventually(both, "the transaction's hit being flushed")
    assert flush_tasks() == []


async def test_close_flushes_what_is_pending_and_leaves_no_task(
    migrated_dsn: str, request: pytest.FixtureRequest
) -> None:
    vectors = unit_rows(2, 768, seed=42)
    before = asyncio.all_tasks()
    atlas = await open_atlas(migrated_dsn, request, 3600.0)  # no background flush meanwhile
    await atlas.semantic_cache.store("one", vectors[0], "a")
    await atlas.semantic_cache.store("two", vectors[1], "b")
    for _ in range(2):
        await hit(atlas, vectors[0], "one")
    await hit(atlas, vectors[1], "two")
    # counted in the Atlas: nothing written yet
    assert await counters(migrated_dsn) == ({"one": 0, "two": 0}, {})
    assert atlas.semantic_cache.pending_hits == 3
    assert len(flush_tasks()) == 1
    await atlas.close()
    assert await counters(migrated_dsn) == ({"one": 2, "two": 1}, {})
    assert flush_tasks() == []
    assert asyncio.all_tasks() - before - {asyncio.current_task()} == set()
    await atlas.close()  # a second close does nothing


async def test_interval_zero_disables_the_flush(
    migrated_dsn: str, request: pytest.FixtureRequest
) -> None:
    vectors = unit_rows(1, 768, seed=43)
    async with open_atlas(migrated_dsn, request, 0) as atlas:
        await atlas.semantic_cache.store("manual", vectors[0], "a")
        assert await hit(atlas, vectors[0], "manual") == 1
        assert flush_tasks() == []
    assert flush_tasks() == []
    # not folded, neither in the background nor at close: close() writes the hit to the
    # side table (lost otherwise), where it stays pending
    assert await counters(migrated_dsn) == ({"manual": 0}, {"manual": 1})


async def test_a_failing_flush_spares_lookups_and_is_retried(
    migrated_dsn: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="codeatlas.cache")
    vectors = unit_rows(1, 768, seed=44)
    admin = await asyncpg.connect(migrated_dsn)
    try:
        async with open_atlas(migrated_dsn, request, 0.2) as atlas:
            await atlas.semantic_cache.store("contended", vectors[0], "a")
            # every update of an entry fails as a NOWAIT lock would (55P03): so does the flush
            await admin.execute(
                """
                CREATE FUNCTION test_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION 'entry locked' USING ERRCODE = '55P03'; END $$;
                CREATE TRIGGER test_refuse_update BEFORE UPDATE ON semantic_cache
                    FOR EACH ROW EXECUTE FUNCTION test_refuse_update();
                """
            )
            assert await hit(atlas, vectors[0], "contended") == 1

            def failures() -> list[logging.LogRecord]:
                return [
                    r
                    for r in caplog.records
                    if r.name == "codeatlas.cache" and "failed" in r.getMessage()
                ]

            await eventually(lambda: asyncio.sleep(0, len(failures()) >= 2), "two failed flushes")
            # logged once as a warning (then quietly), naming the error, and never raised
            assert [r.levelno for r in failures()][:2] == [logging.WARNING, logging.DEBUG]
            assert "LockNotAvailableError" in failures()[0].getMessage()
            # lookups go on, and the hits stay pending (written, not folded), none lost
            assert await hit(atlas, vectors[0], "contended") == 2

            async def written() -> bool:
                return await counters(migrated_dsn) == ({"contended": 0}, {"contended": 2})

            await eventually(written, "the second hit written")
            await admin.execute("DROP TRIGGER test_refuse_update ON semantic_cache")

            async def recovered() -> bool:
                return await counters(migrated_dsn) == ({"contended": 2}, {})

            await eventually(recovered, "the retried flush")
            assert any("works again" in r.getMessage() for r in caplog.records)
    finally:
        await admin.close()
    assert flush_tasks() == []


async def test_several_atlases_flush_together_without_losing_hits(
    migrated_dsn: str, request: pytest.FixtureRequest
) -> None:
    vectors = unit_rows(3, 768, seed=45)
    async with (
        open_atlas(migrated_dsn, request, 0.2) as first,
        open_atlas(migrated_dsn, request, 0.2) as second,
    ):
        for i, vector in enumerate(vectors):
            await first.semantic_cache.store(f"q{i}", vector, "a")

        async def hits(atlas: codeatlas.Atlas, rounds: int) -> None:
            for _ in range(rounds):
                for i, vector in enumerate(vectors):
                    await hit(atlas, vector, f"q{i}")
                await asyncio.sleep(0.05)  # spread over several flush intervals

        await asyncio.gather(hits(first, 10), hits(second, 7))
        assert len(flush_tasks()) <= 2  # at most one per Atlas
    assert flush_tasks() == []
    assert await counters(migrated_dsn) == ({"q0": 17, "q1": 17, "q2": 17}, {})


async def test_rollback_folds_pending_hits_into_their_entries(
    migrated_dsn: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="codeatlas.cache")
    vectors = unit_rows(2, 768, seed=46)
    async with open_atlas(migrated_dsn, request, 3600.0) as atlas:
        await atlas.semantic_cache.store("counted", vectors[0], "a")
        await atlas.semantic_cache.store("gone", vectors[1], "b")
        # an Atlas that does not fold (interval 0) writes its hits to the side table at close
        async with open_atlas(migrated_dsn, request, 0) as writer:
            assert await hit(writer, vectors[0], "counted") == 1
            assert await hit(writer, vectors[0], "counted") == 2
            assert await hit(writer, vectors[1], "gone") == 1
        assert await counters(migrated_dsn) == (
            {"counted": 0, "gone": 0},
            {"counted": 2, "gone": 1},
        )
        assert await hit(atlas, vectors[0], "counted") == 3  # pending in this Atlas' memory
        await atlas.executor.execute("DELETE FROM semantic_cache WHERE query = 'gone'")
        # the side table's down section folds the pending hits before it drops the table,
        # so the engine's data-loss check lets it go and no written count is lost
        result = await atlas.migrations.rollback(to=BEFORE_HITS)
        assert result.reverted == [20261204000002, 20261204000001]
    # close() tried to write its one hit to the dropped table: logged, not raised (that
    # hit, never written, is lost)
    assert any("1 hits not written are lost" in r.getMessage() for r in caplog.records)
    stored = await asyncpg.connect(migrated_dsn)
    try:
        rows = await stored.fetch("SELECT query, hit_count FROM semantic_cache")
        assert {r["query"]: r["hit_count"] for r in rows} == {"counted": 2}
        assert await stored.fetchval("SELECT to_regclass('codeatlas_semantic_cache_hits')") is None
    finally:
        await stored.close()


async def test_with_a_replica_the_flush_runs_on_the_primary(
    replicated: Replicated, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="codeatlas.cache")
    admin = await asyncpg.connect(replicated.primary_dsn("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    settings = codeatlas.Settings(semantic_cache_flush_interval=0.2)
    vectors = unit_rows(1, 768, seed=47)
    async with codeatlas.connect(
        replicated.primary_dsn(), replicas=[replicated.standby.dsn()], settings=settings
    ) as atlas:
        await atlas.semantic_cache.store("replicated", vectors[0], "a")
        for _ in range(2):
            await hit(atlas, vectors[0], "replicated")

        async def flushed() -> bool:
            return await counters(replicated.primary_dsn()) == ({"replicated": 2}, {})

        await eventually(flushed, "the flush on the primary")
    assert not [r for r in caplog.records if r.name == "codeatlas.cache"]  # nothing failed
