"""Read replicas: a real primary and a streaming hot standby (fixtures/replication.py).

Reads a standby can serve go there (its own pg_stat_activity shows them), writes and
migrations never do, read-your-writes holds under a deliberately delayed standby, and a
standby stopped in the middle of a search-heavy load costs the callers nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import asyncpg
import numpy as np
import pytest

import codeatlas
from codeatlas._routing import parse_lsn
from codeatlas.errors import ConfigurationError, ReadOnlyServerError
from fixtures.data import chunk, unit_rows
from fixtures.replication import DATABASE, Replicated
from fixtures.telemetry import Telemetry


async def caught_up(pair: Replicated) -> None:
    """Wait until the standby has replayed everything the primary wrote so far."""
    primary = await asyncpg.connect(pair.primary_dsn("postgres"))
    standby = await asyncpg.connect(pair.standby.dsn("postgres"))
    try:
        target = parse_lsn(await primary.fetchval("SELECT pg_current_wal_lsn()::text"))
        for _ in range(600):
            if parse_lsn(await standby.fetchval("SELECT pg_last_wal_replay_lsn()::text")) >= target:
                return
            await asyncio.sleep(0.05)
        raise TimeoutError("the standby did not catch up in 30 s")
    finally:
        await primary.close()
        await standby.close()


@pytest.fixture(scope="module")
async def pair(replicated: Replicated) -> Replicated:
    """The primary with a migrated database, replayed by the standby."""
    admin = await asyncpg.connect(replicated.primary_dsn("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    async with codeatlas.connect(replicated.primary_dsn()):
        pass  # migrated on the primary
    await caught_up(replicated)
    return replicated


@pytest.fixture
async def atlas(pair: Replicated) -> AsyncIterator[codeatlas.Atlas]:
    """An Atlas on the primary with the standby as its replica."""
    settings = codeatlas.Settings(replica_wait=1.0)
    async with codeatlas.connect(
        pair.primary_dsn(), replicas=[pair.standby.dsn()], migrate=False, settings=settings
    ) as connected:
        yield connected


async def test_reads_and_searches_are_served_by_the_standby(
    atlas: codeatlas.Atlas, pair: Replicated
) -> None:
    vectors = unit_rows(100, 1536, seed=1)
    await atlas.vector_search.insert_many([chunk("route", i, v) for i, v in enumerate(vectors)])
    assert await atlas.executor.fetchval("SELECT pg_is_in_recovery()") is True
    assert await atlas.executor.fetchval("SELECT count(*) FROM vector_search") >= 100
    # the standby's own view: a read of the Atlas shows in its pg_stat_activity
    marker = "codeatlas-routing-probe"
    probe = asyncio.create_task(
        atlas.executor.fetchval(f"SELECT pg_sleep(0.5)::text || '{marker}'")
    )
    standby = await asyncpg.connect(pair.standby.dsn())
    try:
        seen = None
        for _ in range(100):
            seen = await standby.fetchrow(
                "SELECT application_name, backend_type FROM pg_stat_activity "
                "WHERE query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
                marker,
            )
            if seen is not None:
                break
            await asyncio.sleep(0.01)
        assert seen is not None
        assert seen["application_name"] == "codeatlas"
    finally:
        await standby.close()
        await probe
    before = atlas.routing.replica_reads
    hits = await atlas.vector_search.search_similar(vectors[3], 5, where={"codebase_id": "route"})
    assert hits[0].item.file_path == "src/file_3.py"
    many = await atlas.vector_search.search_similar_many([vectors[1], vectors[2]], 2)
    assert [m[0].item.file_path for m in many] == ["src/file_1.py", "src/file_2.py"]
    exact = await atlas.vector_search.search_similar(vectors[4], 3, exact=True)
    assert exact[0].item.file_path == "src/file_4.py"
    assert await atlas.vector_search.count({"codebase_id": "route"}) == 100
    page = await atlas.vector_search.list({"codebase_id": "route"}, limit=10)
    assert len(page.items) == 10
    assert (await atlas.vector_search.get(page.items[0].id)).id == page.items[0].id
    assert await atlas.vector_search.exists({"codebase_id": "route"})
    hybrid = await atlas.vector_search.search_hybrid("src/file_3.py", vectors[3], 5)
    assert hybrid[0].item.file_path == "src/file_3.py"
    await atlas.vector_search.search_text("src/file_3.py", 5)
    assert atlas.routing.replica_reads == before + 10
    assert atlas.routing.fallbacks == 0


async def test_spans_say_which_pool_served_the_search(
    atlas: codeatlas.Atlas, telemetry: Telemetry
) -> None:
    vectors = unit_rows(20, 1536, seed=9)
    await atlas.vector_search.insert_many([chunk("spans", i, v) for i, v in enumerate(vectors)])
    await atlas.vector_search.search_similar(vectors[0], 3, where={"codebase_id": "spans"})
    async with atlas.transaction() as tx:
        await tx.vector_search.search_similar(vectors[0], 3)
    pools = [
        span.attributes["codeatlas.pool"]
        for span in telemetry.finished("search_similar vector_search")
    ]
    assert pools == ["replica", "primary"]


async def test_writes_and_cache_fills_go_to_the_primary(atlas: codeatlas.Atlas) -> None:
    vectors = unit_rows(30, 1536, seed=2)
    await atlas.vector_search.insert_many([chunk("cache", i, v) for i, v in enumerate(vectors)])
    where = {"codebase_id": "cache"}
    miss = await atlas.vector_search.search_similar(vectors[0], 3, where=where, cache=True)
    hit = await atlas.vector_search.search_similar(vectors[0], 3, where=where, cache=True)
    assert [m.item.id for m in hit] == [m.item.id for m in miss]
    # the semantic cache lookup counts its hit in the same statement: on the primary
    question = unit_rows(1, 768, seed=3)[0]
    await atlas.semantic_cache.store("q?", question, "a.", model="m")
    found = await atlas.semantic_cache.lookup(question, 0.99)
    assert found is not None and found.item.hit_count == 1
    async with atlas.transaction() as tx:
        row = await tx.vector_search.insert(chunk("cache", 99, vectors[1]))
        assert await tx.executor.fetchval("SELECT pg_is_in_recovery()") is False
    assert (await atlas.vector_search.get(row.id)).file_path == "src/file_99.py"
    # index maintenance reads the primary's catalog and progress, never a replica's
    served = atlas.routing.replica_reads
    assert await atlas.indexes.status()
    assert atlas.routing.replica_reads == served
    assert atlas.routing.fallbacks == 0


async def test_read_your_writes_under_a_delayed_standby(pair: Replicated) -> None:
    standby = await asyncpg.connect(pair.standby.dsn("postgres"))
    await standby.execute("ALTER SYSTEM SET recovery_min_apply_delay = '2s'")
    await standby.execute("SELECT pg_reload_conf()")
    session = codeatlas.Settings(replica_wait=0.05, max_replica_lag=120)
    eventual = codeatlas.Settings(consistency="eventual", max_replica_lag=120)
    replicas = [pair.standby.dsn()]
    try:
        async with (
            codeatlas.connect(
                pair.primary_dsn(), replicas=replicas, migrate=False, settings=session
            ) as writer,
            codeatlas.connect(
                pair.primary_dsn(), replicas=replicas, migrate=False, settings=eventual
            ) as careless,
        ):
            vectors = unit_rows(6, 1536, seed=4)
            for i in range(3):
                row = await writer.vector_search.insert(chunk("ryw", i, vectors[i]))
                assert (await writer.vector_search.get(row.id)).id == row.id
                found = await writer.vector_search.search_similar(
                    vectors[i], 1, where={"codebase_id": "ryw"}, exact=True
                )
                assert found[0].item.id == row.id
            # each read waited its 50 ms, then the primary served it
            assert writer.routing.replica_reads == 0
            assert writer.routing.behind == writer.routing.primary_reads >= 6
            # without session consistency the delayed standby answers: the row is not there
            row = await careless.vector_search.insert(chunk("ryw", 5, vectors[5]))
            assert await careless.vector_search.find(row.id) is None
            assert careless.routing.replica_reads == 1
            # once the standby applied the writes, it serves the writer's reads again
            await asyncio.sleep(2.5)
            before = writer.routing.replica_reads
            assert (await writer.vector_search.get(row.id)).id == row.id
            assert writer.routing.replica_reads == before + 1
    finally:
        await standby.execute("ALTER SYSTEM RESET recovery_min_apply_delay")
        await standby.execute("SELECT pg_reload_conf()")
        await standby.close()
    await caught_up(pair)


async def test_writes_of_a_callers_own_sql_on_a_standby_are_a_typed_error(
    pair: Replicated,
) -> None:
    async with codeatlas.connect(pair.standby.dsn(), migrate=False) as atlas:
        with pytest.raises(ReadOnlyServerError):
            await atlas.executor.execute(
                "DELETE FROM vector_search WHERE codebase_id = $1", "nothing"
            )
        with pytest.raises(ReadOnlyServerError):
            await atlas.vector_search.insert(chunk("ro", 0, unit_rows(1, 1536, seed=5)[0]))


async def test_migrations_never_run_on_a_standby(pair: Replicated) -> None:
    with pytest.raises(ConfigurationError, match="read-only standby"):
        await codeatlas.connect(pair.standby.dsn())
    with pytest.raises(ConfigurationError, match="read-only standby"):
        await codeatlas.connect(pair.primary_dsn(), migration_dsn=pair.standby.dsn())
    # with replicas, migrations run on the primary (the standby only replays them)
    async with codeatlas.connect(pair.primary_dsn(), replicas=[pair.standby.dsn()]) as atlas:
        assert (await atlas.migrations.apply()).applied == []
        assert all(s.state == "applied" for s in await atlas.migrations.status())


async def test_a_standby_stopped_mid_load_costs_the_callers_nothing(
    pair: Replicated, caplog: pytest.LogCaptureFixture
) -> None:
    settings = codeatlas.Settings(replica_wait=0.5, replica_retry_after=30)
    async with codeatlas.connect(
        pair.primary_dsn(), replicas=[pair.standby.dsn()], migrate=False, settings=settings
    ) as atlas:
        vectors = unit_rows(200, 1536, seed=6)
        await atlas.vector_search.insert_many([chunk("load", i, v) for i, v in enumerate(vectors)])
        stop_at = asyncio.Event()
        searches = 0
        written: list[int] = []

        async def searcher(seed: int) -> None:
            nonlocal searches
            rng = np.random.default_rng(seed)
            for round_ in range(30):
                if round_ == 10:
                    stop_at.set()
                query = vectors[int(rng.integers(200))]
                hits = await atlas.vector_search.search_similar(query, 5)
                assert len(hits) == 5
                searches += 1

        async def writer() -> None:
            for i in range(15):
                row = await atlas.vector_search.insert(chunk("load-w", i, vectors[i]))
                assert (await atlas.vector_search.get(row.id)).id == row.id
                written.append(row.id)

        async def stopper() -> None:
            await stop_at.wait()
            await asyncio.to_thread(pair.standby.stop, "immediate")

        with caplog.at_level(logging.WARNING, logger="codeatlas.routing"):
            await asyncio.gather(*(searcher(s) for s in range(8)), writer(), stopper())
        assert searches == 240 and len(written) == 15
        stats = atlas.routing
        assert stats.replica_reads > 0  # before the stop
        assert stats.removals >= 1 and stats.primary_reads > 0
        assert "taken out of rotation" in caplog.text
        # a replica that is down when connecting costs nothing either
        async with codeatlas.connect(
            pair.primary_dsn(), replicas=[pair.standby.dsn()], migrate=False
        ) as late:
            assert await late.vector_search.count({"codebase_id": "load"}) == 200
            assert late.routing.removals == 1 and late.routing.primary_reads == 1


async def test_a_promoted_standby_is_taken_out_of_rotation(
    pair: Replicated, caplog: pytest.LogCaptureFixture
) -> None:
    # runs after the standby was stopped: it starts again, catches up, then is promoted
    await asyncio.to_thread(pair.standby.start)
    await caught_up(pair)
    settings = codeatlas.Settings(replica_check_interval=0.05, replica_retry_after=30)
    async with codeatlas.connect(
        pair.primary_dsn(), replicas=[pair.standby.dsn()], migrate=False, settings=settings
    ) as atlas:
        assert await atlas.vector_search.count({"codebase_id": "load"}) == 200
        assert atlas.routing.replica_reads == 1
        await asyncio.to_thread(pair.standby.promote)
        await asyncio.sleep(0.1)  # past the check interval: the next read checks again
        with caplog.at_level(logging.WARNING, logger="codeatlas.routing"):
            assert await atlas.vector_search.count({"codebase_id": "load"}) == 200
            await atlas.vector_search.insert(chunk("promoted", 0, unit_rows(1, 1536, seed=10)[0]))
            assert await atlas.vector_search.count({"codebase_id": "promoted"}) == 1
        assert "no longer in recovery" in caplog.text
        assert atlas.routing.removals == 1 and atlas.routing.replica_reads == 1
