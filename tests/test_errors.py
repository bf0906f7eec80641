"""The runtime error contract: server states, lost connections and connect failures, for real.

Each error is produced on the server (two SERIALIZABLE transactions, a deadlock, a
terminated backend, a read-only transaction...), never simulated.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import numpy as np
import numpy.typing as npt
import pytest

import codeatlas
from codeatlas._pool import create_pool
from codeatlas.config import Settings
from codeatlas.errors import (
    CodeAtlasError,
    ConfigurationError,
    ConnectionLostError,
    DatabaseError,
    DeadlockDetectedError,
    InsufficientResourcesError,
    InvalidInputError,
    LockNotAvailableError,
    OutcomeUnknownError,
    QueryCanceledError,
    ReadOnlyServerError,
    SerializationFailureError,
    ServerUnreachableError,
    StatementTimeoutError,
    TransactionAbortedError,
    TransactionConflictError,
    translate_db_error,
)
from codeatlas.models import VectorSearchCreate
from fixtures.server import PgServer

DIM = 1536


def vector(seed: int) -> npt.NDArray[np.float32]:
    data = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    unit: npt.NDArray[np.float32] = data / np.linalg.norm(data)
    return unit


def chunk(path: str, seed: int = 0) -> VectorSearchCreate:
    return VectorSearchCreate(
        codebase_id="cb",
        file_path=path,
        content_type="code",
        content=path,
        vector_embedding=vector(seed),
    )


@pytest.fixture
async def admin(pg: PgServer) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(pg.admin_dsn)
    yield connection
    await connection.close()


async def terminate_when(
    admin: asyncpg.Connection, condition: str, *args: Any, attempts: int = 200
) -> int:
    """Terminate the backends matching *condition* (on pg_stat_activity) once one shows up."""
    for _ in range(attempts):
        killed: int = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE pid <> pg_backend_pid() AND {condition}",
            *args,
        )
        if killed:
            return killed
        await asyncio.sleep(0.02)
    raise AssertionError(f"no backend matched {condition}")


# -- server states ---------------------------------------------------------------------------


async def test_write_in_a_read_only_transaction_is_read_only_server_error(
    atlas: codeatlas.Atlas,
) -> None:
    with pytest.raises(ReadOnlyServerError) as caught:
        async with atlas.transaction() as tx:
            await tx.executor.execute("SET TRANSACTION READ ONLY")
            await tx.vector_search.insert(chunk("ro.py"))
    assert caught.value.retryable
    assert isinstance(caught.value.__cause__, asyncpg.ReadOnlySQLTransactionError)
    assert await atlas.vector_search.count() == 0


async def test_default_read_only_session_maps_the_same(migrated_dsn: str) -> None:
    async with codeatlas.connect(
        migrated_dsn, migrate=False, server_settings={"default_transaction_read_only": "on"}
    ) as read_only:
        with pytest.raises(ReadOnlyServerError):
            await read_only.vector_search.insert(chunk("standby.py"))
        assert await read_only.vector_search.count() == 0  # reads still work


async def test_serialization_failure_of_two_serializable_transactions(
    atlas: codeatlas.Atlas,
) -> None:
    await atlas.vector_search.insert(chunk("seed.py"))
    first_read = asyncio.Event()
    second_read = asyncio.Event()
    first_committed = asyncio.Event()

    async def writer(name: str, mine: asyncio.Event, other: asyncio.Event) -> None:
        async with atlas.transaction() as tx:
            await tx.executor.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            await tx.vector_search.count()  # both read what the other writes: write skew
            mine.set()
            await other.wait()
            await tx.vector_search.insert(chunk(f"{name}.py"))
            if name == "second":
                await first_committed.wait()
        if name == "first":
            first_committed.set()

    results = await asyncio.gather(
        writer("first", first_read, second_read),
        writer("second", second_read, first_read),
        return_exceptions=True,
    )
    assert results[0] is None
    assert isinstance(results[1], SerializationFailureError), results[1]
    assert isinstance(results[1], TransactionConflictError) and results[1].retryable
    paths = {r.file_path for r in (await atlas.vector_search.list()).items}
    assert paths == {"seed.py", "first.py"}


async def test_deadlock_between_two_connections(atlas: codeatlas.Atlas) -> None:
    a = await atlas.vector_search.insert(chunk("a.py"))
    b = await atlas.vector_search.insert(chunk("b.py"))
    locked = [asyncio.Event(), asyncio.Event()]
    lock_sql = "SELECT id FROM vector_search WHERE id = $1 FOR UPDATE"

    async def locker(index: int, first: int, second: int) -> None:
        async with atlas.transaction() as tx:
            await tx.executor.execute("SET LOCAL deadlock_timeout = '50ms'")
            await tx.executor.fetchval(lock_sql, first)
            locked[index].set()
            await locked[1 - index].wait()
            await tx.executor.fetchval(lock_sql, second)

    results = await asyncio.wait_for(
        asyncio.gather(locker(0, a.id, b.id), locker(1, b.id, a.id), return_exceptions=True), 30
    )
    failed = [r for r in results if r is not None]
    assert len(failed) == 1, results
    assert isinstance(failed[0], DeadlockDetectedError) and failed[0].retryable


async def test_lock_not_available_with_nowait(atlas: codeatlas.Atlas) -> None:
    row = await atlas.vector_search.insert(chunk("locked.py"))
    async with atlas.transaction() as holder:
        await holder.executor.fetchval(
            "SELECT id FROM vector_search WHERE id = $1 FOR UPDATE", row.id
        )
        with pytest.raises(LockNotAvailableError) as caught:
            await atlas.executor.fetchval(
                "SELECT id FROM vector_search WHERE id = $1 FOR UPDATE NOWAIT", row.id
            )
        assert caught.value.retryable


async def test_statement_timeout_is_query_canceled(atlas: codeatlas.Atlas) -> None:
    with pytest.raises(QueryCanceledError) as caught:
        async with atlas.transaction() as tx:
            await tx.executor.execute("SET LOCAL statement_timeout = '50ms'")
            await tx.executor.execute("SELECT pg_sleep(5)")
    assert isinstance(caught.value.__cause__, asyncpg.QueryCanceledError)
    assert not caught.value.retryable


async def test_client_timeout_on_a_read_is_statement_timeout(atlas: codeatlas.Atlas) -> None:
    with pytest.raises(StatementTimeoutError):
        await atlas.executor.fetchval("SELECT pg_sleep(5)", timeout=0.1)
    assert await atlas.executor.fetchval("SELECT 1") == 1


async def test_client_timeout_on_a_sent_write_is_outcome_unknown(atlas: codeatlas.Atlas) -> None:
    with pytest.raises(OutcomeUnknownError) as caught:
        await atlas.executor.execute(
            "INSERT INTO vector_search (codebase_id, file_path, content_type, content, "
            "vector_embedding) SELECT 'cb', 'slow.py', 'code', '', $1 FROM pg_sleep(5)",
            vector(1),
            timeout=0.1,
        )
    assert not caught.value.retryable
    assert "may" in str(caught.value)


async def test_too_many_connections_is_insufficient_resources(
    pg: PgServer, migrated_dsn: str, admin: asyncpg.Connection
) -> None:
    role = f"ca_limited_{uuid.uuid4().hex[:8]}"
    await admin.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")
    try:
        dsn = migrated_dsn.replace("postgres:@", f"{role}:@")
        with pytest.raises(InsufficientResourcesError) as caught:
            await codeatlas.connect(dsn, migrate=False)
        assert caught.value.retryable
    finally:
        await admin.execute(f"DROP ROLE {role}")


async def test_aborted_transaction_and_unknown_function_are_typed(atlas: codeatlas.Atlas) -> None:
    with pytest.raises(DatabaseError) as caught:
        await atlas.executor.fetchval("SELECT codeatlas_no_such_function()")
    assert caught.value.sqlstate == "42883"
    # a block that swallows its failed statement does not commit, and is told so
    with pytest.raises(TransactionAbortedError, match="nothing was committed"):
        async with atlas.transaction() as tx:
            await tx.vector_search.insert(chunk("lost.py"))
            with pytest.raises(DatabaseError):
                await tx.executor.fetchval("SELECT codeatlas_no_such_function()")
            with pytest.raises(TransactionAbortedError):
                await tx.executor.fetchval("SELECT 1")
    assert await atlas.vector_search.count() == 0


async def test_argument_the_driver_cannot_encode_is_invalid_input(atlas: codeatlas.Atlas) -> None:
    with pytest.raises(InvalidInputError):
        await atlas.executor.fetchval("SELECT $1::int", "not a number")
    with pytest.raises(InvalidInputError):
        await atlas.executor.fetchval("SELECT $1::text", "\udcff")
    assert await atlas.executor.fetchval("SELECT 1") == 1


# -- lost connections and outcomes -----------------------------------------------------------


async def test_backend_terminated_inside_a_transaction(
    atlas: codeatlas.Atlas, admin: asyncpg.Connection
) -> None:
    with pytest.raises(ConnectionLostError) as caught:
        async with atlas.transaction() as tx:
            await tx.vector_search.insert(chunk("doomed.py"))
            pid = await tx.executor.fetchval("SELECT pg_backend_pid()")
            await terminate_when(admin, "pid = $1", pid)
            await asyncio.sleep(0.1)
            await tx.vector_search.search_similar(vector(2), 5)
    assert type(caught.value) is ConnectionLostError and caught.value.retryable
    # nothing committed, and the same Atlas goes on
    assert await atlas.vector_search.count() == 0
    await atlas.vector_search.insert(chunk("after.py"))
    assert await atlas.vector_search.count() == 1


async def test_backend_terminated_during_search_similar_on_the_pool(
    atlas: codeatlas.Atlas, admin: asyncpg.Connection, migrated_dsn: str
) -> None:
    await atlas.vector_search.insert(chunk("x.py"))
    database = urlsplit(migrated_dsn).path.lstrip("/")
    blocker = await asyncpg.connect(migrated_dsn)
    try:
        # an exclusive lock makes the search wait, so it can be terminated mid-statement
        await blocker.execute("BEGIN; LOCK TABLE vector_search IN ACCESS EXCLUSIVE MODE")
        search = asyncio.create_task(atlas.vector_search.search_similar(vector(3), 5))
        await terminate_when(
            admin,
            "datname = $1 AND wait_event_type = 'Lock' AND query LIKE 'SELECT%vector_search%'",
            database,
        )
        with pytest.raises(ConnectionLostError) as caught:
            await asyncio.wait_for(search, 30)
        assert caught.value.retryable
    finally:
        await blocker.close()
    assert len(await atlas.vector_search.search_similar(vector(3), 5)) == 1


async def test_write_whose_connection_dies_in_flight_is_outcome_unknown(
    atlas: codeatlas.Atlas, admin: asyncpg.Connection
) -> None:
    write = asyncio.create_task(
        atlas.executor.execute(
            "INSERT INTO vector_search (codebase_id, file_path, content_type, content, "
            "vector_embedding) SELECT 'cb', 'inflight.py', 'code', '', $1 FROM pg_sleep(30)",
            vector(4),
        )
    )
    await terminate_when(admin, "query LIKE 'INSERT INTO vector_search%pg_sleep(30)'")
    with pytest.raises(OutcomeUnknownError):
        await asyncio.wait_for(write, 30)
    read = asyncio.create_task(atlas.executor.fetchval("SELECT 1 FROM pg_sleep(30)"))
    await terminate_when(admin, "query = 'SELECT 1 FROM pg_sleep(30)'")
    with pytest.raises(ConnectionLostError) as caught:
        await asyncio.wait_for(read, 30)
    assert type(caught.value) is ConnectionLostError


async def test_commit_without_reply_is_outcome_unknown(
    atlas: codeatlas.Atlas, admin: asyncpg.Connection
) -> None:
    # a deferred constraint trigger that sleeps makes COMMIT itself take a while
    await atlas.executor.execute(
        "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$"
    )
    await atlas.executor.execute(
        "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON vector_search "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()"
    )

    async def write() -> None:
        async with atlas.transaction() as tx:
            await tx.vector_search.insert(chunk("commit.py"))

    task = asyncio.create_task(write())
    await terminate_when(admin, "query = 'COMMIT' AND state = 'active'")
    with pytest.raises(OutcomeUnknownError) as caught:
        await asyncio.wait_for(task, 30)
    assert not caught.value.retryable


async def test_failure_after_commit_at_release_reports_success(migrated_dsn: str) -> None:
    async def dying_reset(connection: asyncpg.Connection) -> None:
        # the server ends the session while the pool resets it: after the work committed
        await connection.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    async with codeatlas.connect(
        migrated_dsn, migrate=False, min_size=1, max_size=2, reset=dying_reset
    ) as atlas:
        stored = await atlas.vector_search.insert(chunk("kept.py"))
        async with atlas.transaction() as tx:
            await tx.vector_search.insert(chunk("kept-too.py"))
        assert await atlas.vector_search.insert_many([chunk(f"m{i}.py") for i in range(3)]) == 3
        assert stored.file_path == "kept.py"
        paths = {r.file_path for r in (await atlas.vector_search.list()).items}
        assert paths == {"kept.py", "kept-too.py", "m0.py", "m1.py", "m2.py"}


async def test_idle_connections_killed_unseen_cost_the_next_call_nothing(
    migrated_dsn: str, pg: PgServer
) -> None:
    database = urlsplit(migrated_dsn).path.lstrip("/")

    def kill_idle_blocking() -> None:
        # run on another thread while the event loop is blocked: the driver cannot see the
        # connections end before the next call sends on them
        async def kill() -> None:
            admin = await asyncpg.connect(pg.admin_dsn)
            try:
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = $1 AND pid <> pg_backend_pid()",
                    database,
                )
            finally:
                await admin.close()

        asyncio.run(kill())

    async with codeatlas.connect(migrated_dsn, migrate=False, min_size=2, max_size=2) as atlas:

        async def use_both() -> None:
            async with atlas.executor.acquire() as c1, atlas.executor.acquire() as c2:
                assert await c1.fetchval("SELECT 1") == await c2.fetchval("SELECT 1") == 1

        atlas.executor.state.pre_ping_after = 0.0
        await use_both()
        thread = threading.Thread(target=kill_idle_blocking)
        thread.start()
        thread.join()  # deliberately blocking: no loop iteration sees the sockets close
        assert await atlas.vector_search.count() == 0
        await atlas.vector_search.insert(chunk("after-kill.py"))  # a write is not lost either
        assert await atlas.vector_search.count() == 1
        # without the ping the same situation fails a read (typed, retryable): the ping matters
        atlas.executor.state.pre_ping_after = float("inf")
        await use_both()
        thread = threading.Thread(target=kill_idle_blocking)
        thread.start()
        thread.join()
        with pytest.raises(ConnectionLostError):
            await atlas.vector_search.count()


# -- connecting --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "error", "message"),
    [
        (
            "postgresql://agent:hunter2secret@codeatlas-no-such-host.invalid:5432/db",
            ServerUnreachableError,
            "host not found: codeatlas-no-such-host.invalid",
        ),
        (
            "postgresql://agent:hunter2secret@127.0.0.1:1/db",
            ServerUnreachableError,
            "nothing listens on 127.0.0.1:1",
        ),
        (
            "postgresql://agent:hunter2secret@/db?host=/nonexistent/codeatlas&port=5999",
            ServerUnreachableError,
            "nothing listens on /nonexistent/codeatlas/.s.PGSQL.5999",
        ),
    ],
)
async def test_connect_errors_say_what_happened_without_the_password(
    dsn: str, error: type[CodeAtlasError], message: str
) -> None:
    with pytest.raises(error) as caught:
        await codeatlas.connect(dsn, migrate=False)
    assert message in str(caught.value)
    assert caught.value.retryable
    rendered = (
        f"{caught.value} {caught.value!r} {caught.value.__cause__!r} {caught.value.__context__!r}"
    )
    assert "hunter2secret" not in rendered


async def test_missing_database_is_a_configuration_error(pg: PgServer) -> None:
    with pytest.raises(ConfigurationError, match="database does not exist"):
        await codeatlas.connect(pg.dsn_for("codeatlas_no_such_db"), migrate=False)


async def test_connect_timeout_is_unreachable() -> None:
    # a listening socket that never answers the startup packet
    accepted: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(lambda r, w: accepted.append(w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(
            ServerUnreachableError, match=f"connecting to 127.0.0.1:{port} timed out"
        ) as caught:
            await create_pool(f"postgresql://u:pw@127.0.0.1:{port}/db", Settings(), timeout=0.3)
        assert caught.value.retryable
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_cancellation_is_never_translated(atlas: codeatlas.Atlas, migrated_dsn: str) -> None:
    blocker = await asyncpg.connect(migrated_dsn)
    try:
        # the lock makes the search wait on the server, so the cancel lands mid-statement
        await blocker.execute("BEGIN; LOCK TABLE vector_search IN ACCESS EXCLUSIVE MODE")
        calls: list[Callable[[], Coroutine[Any, Any, Any]]] = [
            lambda: atlas.executor.fetchval("SELECT pg_sleep(5)"),
            lambda: atlas.vector_search.search_similar(vector(5), 5, probes=7),
            lambda: atlas.vector_search.insert(chunk("cancelled.py")),
        ]
        for call in calls:
            task = asyncio.create_task(call())
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    finally:
        await blocker.close()
    assert await atlas.vector_search.count() == 0
    async with atlas.executor.acquire() as connection:
        assert not connection.is_in_transaction()
        assert await connection.fetchval("SELECT current_setting('ivfflat.probes', true)") in (
            None,
            "1",
        )


async def test_a_closed_atlas_says_so(migrated_dsn: str) -> None:
    atlas = await codeatlas.connect(migrated_dsn, migrate=False)
    await atlas.close()
    with pytest.raises(ConnectionLostError, match="closed") as caught:
        await atlas.vector_search.count()
    assert not caught.value.retryable


async def test_a_refused_setting_leaves_the_transaction_usable(atlas: codeatlas.Atlas) -> None:
    async with atlas.transaction() as tx:
        await tx.vector_search.insert(chunk("kept.py"))
        with pytest.raises(InvalidInputError, match="22023"):
            async with tx.executor.with_settings({"ivfflat.probes": "40000"}):
                raise AssertionError("the setting was refused: the block must not run")
        assert await tx.executor.fetchval("SELECT 1") == 1  # not aborted
    assert await atlas.vector_search.count() == 1
    with pytest.raises(InvalidInputError):
        async with atlas.executor.with_settings({"ivfflat.probes": "40000"}):
            raise AssertionError("unreachable")
    async with atlas.executor.acquire() as connection:
        assert not connection.is_in_transaction()


def _driver_exception_classes() -> list[type[Exception]]:
    seen: list[type[Exception]] = []
    for module in (asyncpg.exceptions, asyncpg.exceptions._base):
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Exception)
                and not issubclass(value, Warning)
                and value.__module__.startswith("asyncpg")
                and value not in seen
            ):
                seen.append(value)
    return seen


@pytest.mark.parametrize("write_in_flight", [False, True])
def test_every_driver_and_socket_exception_class_has_a_translation(write_in_flight: bool) -> None:
    classes = _driver_exception_classes()
    assert len(classes) > 200  # every SQLSTATE class asyncpg knows, plus its client errors
    instances: list[Exception] = [cls("message") for cls in classes]
    instances += [
        ConnectionResetError(104, "reset"),
        BrokenPipeError(32, "pipe"),
        OSError(113, "No route to host"),
        TimeoutError(),
    ]
    untranslated = [
        type(e).__name__
        for e in instances
        if not isinstance(translate_db_error(e, write_in_flight=write_in_flight), CodeAtlasError)
    ]
    assert untranslated == []
    for interrupt in (asyncio.CancelledError(), KeyboardInterrupt(), SystemExit(0)):
        assert translate_db_error(interrupt) is None


def test_sqlstate_classes_map_to_their_meaning() -> None:
    def of(cls: type[Exception], **flags: bool) -> CodeAtlasError | None:
        return translate_db_error(cls("message"), **flags)

    assert isinstance(of(asyncpg.ReadOnlySQLTransactionError), ReadOnlyServerError)
    assert isinstance(of(asyncpg.SerializationError), SerializationFailureError)
    assert isinstance(of(asyncpg.DeadlockDetectedError), DeadlockDetectedError)
    assert isinstance(of(asyncpg.LockNotAvailableError), LockNotAvailableError)
    assert isinstance(of(asyncpg.QueryCanceledError), QueryCanceledError)
    disk = of(asyncpg.DiskFullError)
    assert isinstance(disk, InsufficientResourcesError) and not disk.retryable
    crowded = of(asyncpg.TooManyConnectionsError)
    assert isinstance(crowded, InsufficientResourcesError) and crowded.retryable
    assert type(of(asyncpg.AdminShutdownError)) is ConnectionLostError
    assert isinstance(of(asyncpg.AdminShutdownError, write_in_flight=True), OutcomeUnknownError)
    assert isinstance(of(asyncpg.InternalClientError, write_in_flight=True), OutcomeUnknownError)
    assert type(of(asyncpg.InterfaceError)) is ConnectionLostError  # raised before sending
    assert isinstance(of(asyncpg.exceptions._base.DataError), InvalidInputError)
    assert isinstance(of(asyncpg.CharacterNotInRepertoireError), InvalidInputError)
    assert isinstance(of(asyncpg.InFailedSQLTransactionError), TransactionAbortedError)
    catch_all = of(asyncpg.InternalServerError)
    assert isinstance(catch_all, DatabaseError) and catch_all.sqlstate == "XX000"


async def test_connections_ended_by_idle_session_timeout_cost_nothing(migrated_dsn: str) -> None:
    async with codeatlas.connect(
        migrated_dsn,
        migrate=False,
        min_size=3,
        max_size=3,
        server_settings={"idle_session_timeout": "200ms"},
    ) as atlas:
        first = await atlas.executor.fetchval("SELECT pg_backend_pid()")
        await asyncio.sleep(0.6)  # the server ends every idle session meanwhile (57P05)
        for _ in range(6):
            assert await atlas.vector_search.count() == 0
        await atlas.vector_search.insert(chunk("after-idle.py"))
        assert await atlas.executor.fetchval("SELECT pg_backend_pid()") != first


async def test_backend_terminated_mid_statement_inside_a_transaction(
    atlas: codeatlas.Atlas, admin: asyncpg.Connection
) -> None:
    async def work() -> None:
        async with atlas.transaction() as tx:
            await tx.vector_search.insert(chunk("mid.py"))
            await tx.executor.execute("SELECT pg_sleep(30)")

    task = asyncio.create_task(work())
    await terminate_when(admin, "query = 'SELECT pg_sleep(30)'")
    with pytest.raises(ConnectionLostError) as caught:
        await asyncio.wait_for(task, 30)
    assert type(caught.value) is ConnectionLostError  # nothing committed: not "unknown"
    assert await atlas.vector_search.count() == 0
