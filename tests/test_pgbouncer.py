"""codeatlas through pgbouncer in transaction mode (Debian's pgbouncer, started by the fixture).

Each area runs through it here: repositories (CRUD, batches, keyset lists), search (with
knobs, batched, exact), both caches, transactions (commit, rollback, savepoints), and
migrations (refused through the pooler, run over ``migration_dsn``). Search knobs are shown
not to leak between two clients sharing pgbouncer's one server connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import pytest

import codeatlas
from codeatlas.errors import ConfigurationError, NotFoundError
from fixtures.data import chunk, unit_rows
from fixtures.pgbouncer import Bouncer


def database_of(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


def pooled_settings(direct_dsn: str | None = None) -> codeatlas.Settings:
    if direct_dsn is None:
        return codeatlas.Settings(pooler="transaction")
    return codeatlas.Settings(pooler="transaction", migration_dsn=direct_dsn)


@pytest.fixture
async def bounced(pgbouncer: Bouncer, migrated_dsn: str) -> AsyncIterator[codeatlas.Atlas]:
    """An Atlas on a fresh migrated database, through pgbouncer (transaction mode)."""
    async with codeatlas.connect(
        pgbouncer.dsn_for(database_of(migrated_dsn)),
        migrate=False,
        settings=pooled_settings(migrated_dsn),
    ) as atlas:
        yield atlas


async def test_the_atlas_really_goes_through_pgbouncer(
    bounced: codeatlas.Atlas, migrated_dsn: str
) -> None:
    async with bounced.pool.acquire() as connection:
        announced = connection.get_server_pid()
        backend = await connection.fetchval("SELECT pg_backend_pid()")
        # no prepared statement is cached: the pooler hands transactions to any backend
        assert connection._stmt_cache.get_max_size() == 0  # type: ignore[attr-defined]
    assert announced != backend  # pgbouncer's own cancel key, not the backend's pid
    direct = await codeatlas.connect(migrated_dsn, migrate=False)
    try:
        async with direct.pool.acquire() as connection:
            assert connection.get_server_pid() == await connection.fetchval(
                "SELECT pg_backend_pid()"
            )
    finally:
        await direct.close()


async def test_repository_reads_and_writes(bounced: codeatlas.Atlas) -> None:
    vectors = unit_rows(40, 1536, seed=3)
    assert (
        await bounced.vector_search.insert_many([chunk("a", i, v) for i, v in enumerate(vectors)])
        == 40
    )
    assert await bounced.vector_search.count() == 40
    assert await bounced.vector_search.count({"codebase_id": "a"}) == 40
    assert await bounced.vector_search.exists({"file_path": "src/file_7.py"})
    page = await bounced.vector_search.list(limit=15, include_vectors=False)
    assert len(page.items) == 15 and page.next_cursor is not None
    rest = await bounced.vector_search.list(limit=50, cursor=page.next_cursor)
    assert len(rest.items) == 25 and rest.next_cursor is None
    row = await bounced.vector_search.get(page.items[0].id)
    assert row.file_path == page.items[0].file_path
    assert await bounced.vector_search.delete(row.id)
    with pytest.raises(NotFoundError):
        await bounced.vector_search.get(row.id)
    assert await bounced.vector_search.delete_where({"codebase_id": "a"}) == 39


async def test_search_with_knobs_batched_and_exact(bounced: codeatlas.Atlas) -> None:
    vectors = unit_rows(200, 1536, seed=4)
    await bounced.vector_search.insert_many([chunk("a", i, v) for i, v in enumerate(vectors)])
    hits = await bounced.vector_search.search_similar(vectors[5], 5, probes=3)
    exact = await bounced.vector_search.search_similar(vectors[5], 5, exact=True)
    assert exact[0].item.file_path == "src/file_5.py"
    assert exact[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert hits[0].item.file_path == "src/file_5.py"
    many = await bounced.vector_search.search_similar_many([vectors[1], vectors[2]], 3)
    assert [m[0].item.file_path for m in many] == ["src/file_1.py", "src/file_2.py"]


async def test_both_caches(bounced: codeatlas.Atlas) -> None:
    vectors = unit_rows(50, 1536, seed=5)
    await bounced.vector_search.insert_many([chunk("a", i, v) for i, v in enumerate(vectors)])
    where = {"codebase_id": "a"}
    miss = await bounced.vector_search.search_similar(vectors[3], 4, where=where, cache=True)
    stored = await bounced.executor.fetchval("SELECT count(*) FROM vector_similarity_cache")
    assert stored == 4
    hit = await bounced.vector_search.search_similar(vectors[3], 4, where=where, cache=True)
    assert [m.item.id for m in hit] == [m.item.id for m in miss]

    question = unit_rows(1, 768, seed=6)[0]
    await bounced.semantic_cache.store("what is x?", question, "x is y", model="m")
    found = await bounced.semantic_cache.lookup(question, 0.99, model="m")
    assert found is not None and found.item.response == "x is y"
    assert found.item.hit_count == 1
    assert await bounced.semantic_cache.lookup(-question, 0.99) is None


async def test_transactions_commit_roll_back_and_nest(bounced: codeatlas.Atlas) -> None:
    vectors = unit_rows(4, 1536, seed=7)
    async with bounced.transaction() as tx:
        await tx.vector_search.insert(chunk("t", 0, vectors[0]))
        with pytest.raises(RuntimeError):
            async with tx.transaction() as inner:  # a savepoint, on the same backend
                await inner.vector_search.insert(chunk("t", 1, vectors[1]))
                raise RuntimeError("undo the savepoint only")
        await tx.vector_search.insert(chunk("t", 2, vectors[2]))
    with pytest.raises(RuntimeError):
        async with bounced.transaction() as tx:
            await tx.vector_search.insert(chunk("t", 3, vectors[3]))
            raise RuntimeError("roll it all back")
    paths = sorted(row.file_path for row in (await bounced.vector_search.list(limit=10)).items)
    assert paths == ["src/file_0.py", "src/file_2.py"]


async def test_search_knobs_never_reach_another_client_on_the_shared_backend(
    start_pgbouncer: Callable[[int], Bouncer], migrated_dsn: str
) -> None:
    single = start_pgbouncer(1)  # one server connection: both clients share its backend
    dsn = single.dsn_for(database_of(migrated_dsn))
    settings = pooled_settings(migrated_dsn)
    async with (
        codeatlas.connect(dsn, migrate=False, settings=settings) as searcher,
        codeatlas.connect(dsn, migrate=False, settings=settings) as reader,
    ):
        vectors = unit_rows(100, 1536, seed=8)
        await searcher.vector_search.insert_many([chunk("a", i, v) for i, v in enumerate(vectors)])
        backends = {
            await searcher.executor.fetchval("SELECT pg_backend_pid()"),
            await reader.executor.fetchval("SELECT pg_backend_pid()"),
        }
        assert len(backends) == 1
        seen: list[str] = []

        async def search() -> None:
            for i in range(40):
                await searcher.vector_search.search_similar(vectors[i], 3, probes=77)

        async def read() -> None:
            for _ in range(80):
                seen.append(
                    await reader.executor.fetchval("SELECT current_setting('ivfflat.probes', true)")
                )
                await asyncio.sleep(0)

        await asyncio.gather(search(), read(), search(), read())
        # what the searches ran with, seen from inside one of their transactions
        async with searcher.executor.with_settings({"ivfflat.probes": "77"}) as tx:
            assert await tx.fetchval("SELECT current_setting('ivfflat.probes')") == "77"
    assert len(seen) == 160
    # the server's default (None before the backend loaded pgvector): never the searches' 77
    assert set(seen) <= {"1", None} and "1" in seen


async def test_migrations_through_the_pooler_are_refused(
    pgbouncer: Bouncer, empty_dsn: str
) -> None:
    dsn = pgbouncer.dsn_for(database_of(empty_dsn))
    # declared: refused before connecting anywhere
    with pytest.raises(ConfigurationError, match="migration_dsn"):
        await codeatlas.connect(dsn, settings=pooled_settings())
    # not declared: the pooler is found (its cancel key is not the backend's pid)
    with pytest.raises(ConfigurationError, match="through a pooler"):
        await codeatlas.connect(dsn)
    # migration_dsn straight to the server: migrated there, served through the pooler
    async with codeatlas.connect(dsn, settings=pooled_settings(empty_dsn)) as atlas:
        statuses = await atlas.migrations.status()
        assert statuses and all(s.state == "applied" for s in statuses)
        assert await atlas.vector_search.count() == 0
        assert (await atlas.migrations.apply()).applied == []


async def test_migrations_api_without_a_session_dsn_is_refused(
    pgbouncer: Bouncer, migrated_dsn: str
) -> None:
    dsn = pgbouncer.dsn_for(database_of(migrated_dsn))
    async with codeatlas.connect(dsn, migrate=False, settings=pooled_settings()) as atlas:
        with pytest.raises(ConfigurationError, match="migration_dsn"):
            await atlas.migrations.apply()
        assert await atlas.vector_search.count() == 0
