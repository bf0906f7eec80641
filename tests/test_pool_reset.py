"""The pool's reset: skipped after codeatlas' own statements, full after anything a caller ran.

Each test runs on a pool of one connection, so the next borrower gets the same backend
(checked with ``pg_backend_pid()``). Whether a release reset the connection is read from the
server: a custom setting set with ``set_config(..., false)`` survives only when no
``RESET ALL`` ran in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import anyio
import asyncpg
import numpy as np
import pytest

import codeatlas
from fixtures.pgbouncer import Bouncer

_PROBE = "SELECT current_setting('codeatlas_test.probe', true)"
_SET_PROBE = "SELECT set_config('codeatlas_test.probe', 'left', false)"
_ADVISORY_LOCKS = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
)


@pytest.fixture
async def single(migrated_dsn: str) -> AsyncIterator[codeatlas.Atlas]:
    """An Atlas whose pool holds exactly one connection."""
    async with codeatlas.connect(migrated_dsn, migrate=False, min_size=1, max_size=1) as atlas:
        yield atlas


async def _pid(atlas: codeatlas.Atlas) -> int:
    return int(await atlas.executor.fetchval("SELECT pg_backend_pid()"))


async def _probe_left_by_internal_call(atlas: codeatlas.Atlas) -> None:
    """Leave the probe setting through codeatlas' own executor (which vouches for it)."""
    internal = atlas._executor  # the repositories' executor: its releases skip the reset
    assert await internal.fetchval(_SET_PROBE) == "left"


async def test_internal_statement_skips_the_reset(single: codeatlas.Atlas) -> None:
    pid = await _pid(single)
    await _probe_left_by_internal_call(single)
    # the setting survived the release: no RESET ALL was sent; the caller's view resets
    assert await single.executor.fetchval(_PROBE) == "left"
    assert await single.executor.fetchval(_PROBE) in (None, "")
    assert await _pid(single) == pid


async def test_search_and_cache_lookup_send_no_reset(single: codeatlas.Atlas) -> None:
    rng = np.random.default_rng(7)
    vector = rng.standard_normal(768).astype(np.float32)
    await single.semantic_cache.store("q", vector, "a")
    pid = await _pid(single)
    await _probe_left_by_internal_call(single)
    assert await single.semantic_cache.lookup(vector) is not None
    assert await single.semantic_cache.lookup(-vector) is None
    await single.vector_search.search_similar(rng.standard_normal(1536), 5)
    async with single.executor.acquire() as connection:
        assert await connection.fetchval("SELECT pg_backend_pid()") == pid
        assert await connection.fetchval(_PROBE) == "left"


async def test_internal_release_runs_without_a_shield_task(single: codeatlas.Atlas) -> None:
    # asyncpg's Pool.release shields the holder's release in a task of its own; a release
    # codeatlas vouched for awaits nothing, so it runs without one (codeatlas._db._released).
    # Should asyncpg's internals change, the shielded way comes back and this fails.
    loop = asyncio.get_running_loop()
    created: list[str] = []
    previous = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        created.append(getattr(coro, "__qualname__", repr(coro)))
        return asyncio.Task(coro, loop=loop, **kwargs)

    internal = single._executor
    await internal.fetchval("SELECT 1")  # warm: the statement prepared
    loop.set_task_factory(counting)
    try:
        assert await internal.fetchval("SELECT 2") == 2
        internal_tasks = list(created)
        assert await single.executor.fetchval("SELECT 3") == 3  # the caller's view: reset
    finally:
        loop.set_task_factory(previous)
    assert internal_tasks == []
    assert any("release" in name for name in created[len(internal_tasks) :])


@pytest.mark.parametrize(
    "statement",
    [
        "SET work_mem = '7MB'",
        "SET SESSION work_mem = '7MB'",
        "SELECT set_config('work_mem', '7MB', false)",
    ],
)
async def test_caller_setting_is_gone_for_the_next_borrower(
    single: codeatlas.Atlas, statement: str
) -> None:
    pid = await _pid(single)
    default = await single.executor.fetchval("SHOW work_mem")
    assert default != "7MB"
    await single.executor.execute(statement)
    # the next borrower is codeatlas itself (an internal read), then the caller again
    assert await single._executor.fetchval("SHOW work_mem") == default
    assert await _pid(single) == pid


async def test_setting_in_a_caller_transaction_is_gone(single: codeatlas.Atlas) -> None:
    pid = await _pid(single)
    async with single.transaction() as tx:
        await tx.executor.execute("SET SESSION work_mem = '7MB'")
        await tx.executor.fetchval("SELECT pg_advisory_lock(4242)")
    assert await single._executor.fetchval("SHOW work_mem") != "7MB"
    assert await single._executor.fetchval(_ADVISORY_LOCKS) == 0
    assert await _pid(single) == pid


async def test_caller_advisory_lock_is_released(single: codeatlas.Atlas) -> None:
    pid = await _pid(single)
    assert await single.executor.fetchval("SELECT pg_try_advisory_lock(4243)") is True
    assert await single._executor.fetchval(_ADVISORY_LOCKS) == 0
    assert await _pid(single) == pid


async def test_caller_listen_is_gone(single: codeatlas.Atlas) -> None:
    pid = await _pid(single)
    await single.executor.execute("LISTEN codeatlas_test_channel")
    assert await single._executor.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0
    assert await _pid(single) == pid


async def test_connection_handed_out_by_acquire_is_reset(single: codeatlas.Atlas) -> None:
    # acquire() (how the indexer lock holds its session lock) never vouches, even internally
    pid = await _pid(single)
    async with single._executor.acquire() as connection:
        assert await connection.fetchval("SELECT pg_try_advisory_lock(4245)") is True
        await connection.execute("SET work_mem = '7MB'")
    assert await single._executor.fetchval(_ADVISORY_LOCKS) == 0
    assert await single._executor.fetchval("SHOW work_mem") != "7MB"
    assert await _pid(single) == pid


async def test_direct_pool_use_is_reset(single: codeatlas.Atlas) -> None:
    pid = await _pid(single)
    async with single.pool.acquire() as connection:
        await connection.execute("SET work_mem = '7MB'")
    assert await single._executor.fetchval("SHOW work_mem") != "7MB"
    assert await _pid(single) == pid


async def test_transaction_left_open_by_a_cancelled_call_is_rolled_back(
    single: codeatlas.Atlas,
) -> None:
    pid = await _pid(single)
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.5):
            async with single.executor.acquire() as connection:
                await connection.execute("SELECT pg_advisory_lock(4244)")
                await connection.execute("BEGIN")
                await connection.execute("SET SESSION work_mem = '7MB'")
                await connection.execute(
                    "CREATE TEMP TABLE codeatlas_left_open (x int) ON COMMIT DROP"
                )
                await connection.execute("SELECT pg_sleep(10)")
    internal = single._executor
    assert await internal.fetchval(_ADVISORY_LOCKS) == 0
    assert await internal.fetchval("SHOW work_mem") != "7MB"
    assert await internal.fetchval("SELECT to_regclass('pg_temp.codeatlas_left_open')") is None
    async with single.executor.acquire() as connection:
        assert not connection.is_in_transaction()
    assert await _pid(single) == pid


async def test_failed_internal_statement_gets_the_full_reset(single: codeatlas.Atlas) -> None:
    await _probe_left_by_internal_call(single)
    with pytest.raises(codeatlas.errors.CodeAtlasError):
        await single._executor.fetchval("SELECT 1 / 0")
    assert await single._executor.fetchval(_PROBE) in (None, "")


async def test_indexer_lock_is_released_with_the_pool_reset(migrated_dsn: str) -> None:
    from codeatlas.indexer.lock import codebase_lock

    async with codeatlas.connect(migrated_dsn, migrate=False, min_size=2, max_size=2) as atlas:
        async with codebase_lock(atlas, "reset"):
            assert (
                await atlas._executor.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                )
                == 1
            )
        for _ in range(3):  # whichever connection serves, it holds no advisory lock
            assert await atlas._executor.fetchval(_ADVISORY_LOCKS) == 0


async def test_explicit_reset_option_wins(migrated_dsn: str) -> None:
    calls: list[Any] = []

    async def reset(connection: asyncpg.Connection) -> None:
        calls.append(connection)
        await connection.execute("RESET ALL")

    async with codeatlas.connect(
        migrated_dsn, migrate=False, min_size=1, max_size=1, reset=reset
    ) as atlas:
        calls.clear()
        await _probe_left_by_internal_call(atlas)
        assert len(calls) == 1  # called even where codeatlas' own reset would skip
        assert await atlas._executor.fetchval(_PROBE) in (None, "")


class _CallerConnection(asyncpg.Connection):
    """A caller's own connection class, with slots of its own (asyncpg pools accept one)."""

    __slots__ = ("_caller_state",)

    def caller_name(self) -> str:
        return "caller"


async def test_caller_connection_class_is_kept_and_the_reset_still_skipped(
    migrated_dsn: str,
) -> None:
    # codeatlas keeps its bookkeeping on the pooled connections: a caller's
    # connection_class gets it too (a subclass), instead of losing the skipped reset
    async with codeatlas.connect(
        migrated_dsn, migrate=False, min_size=1, max_size=1, connection_class=_CallerConnection
    ) as atlas:
        async with atlas.executor.acquire() as connection:
            assert connection.caller_name() == "caller"
        await _probe_left_by_internal_call(atlas)
        assert await atlas.executor.fetchval(_PROBE) == "left"  # no RESET ALL in between
        assert await atlas.executor.fetchval(_PROBE) in (None, "")  # the caller's view: reset


async def test_through_pgbouncer_in_transaction_mode(
    start_pgbouncer: Callable[[int], Bouncer], migrated_dsn: str
) -> None:
    # one server connection, so every transaction lands on the same backend
    bouncer = start_pgbouncer(1)
    settings = codeatlas.Settings(pooler="transaction", migration_dsn=migrated_dsn)
    dsn = bouncer.dsn_for(urlsplit(migrated_dsn).path.lstrip("/"))
    async with codeatlas.connect(
        dsn, migrate=False, settings=settings, min_size=1, max_size=1
    ) as atlas:
        rng = np.random.default_rng(8)
        vector = rng.standard_normal(768).astype(np.float32)
        await atlas.semantic_cache.store("q", vector, "a")
        await _probe_left_by_internal_call(atlas)
        assert await atlas.semantic_cache.lookup(vector) is not None
        assert await atlas.executor.fetchval(_PROBE) == "left"  # no reset sent in between
        await atlas.executor.execute("SET work_mem = '7MB'")
        assert await atlas._executor.fetchval("SHOW work_mem") != "7MB"
