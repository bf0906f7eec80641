"""Executor: where repositories send their SQL, and where it is decided what escapes.

An executor runs either on the pool (each call acquires its own connection) or on one
connection held by a transaction. Repositories never know which; ``transaction()`` on
a pool executor starts a transaction, on a connection executor a savepoint.

What a failure means to the caller:

- A pooled connection that died idle (server restart, terminated backend) costs the caller
  nothing: the pool replaces one whose end the driver saw, a connection idle for longer
  than ``AtlasState.pre_ping_after`` is pinged before use, and a statement (or BEGIN) that
  could not be sent is tried once more on another connection.
- A statement whose connection broke after it was sent is never re-sent: a read raises
  ``ConnectionLostError`` (retryable), a write ``OutcomeUnknownError``; so does a COMMIT
  without a reply.
- Inside a transaction a broken connection is ``ConnectionLostError``: nothing committed.
- A failure after the work completed (resetting the connection on its way back to the
  pool) is not the caller's: the connection is discarded and the result returned.
- Statements that open or undo state (BEGIN, SAVEPOINT, ROLLBACK, settings) run to their
  end even when the caller is cancelled, then the cancellation propagates unchanged; if
  the undo cannot run, the connection is terminated so nothing it carried survives.

Resetting pooled connections (``reset_connection``, the pool's ``reset``): asyncpg's reset
(``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``) costs a round trip on every
release. It is skipped only for a connection codeatlas vouches for: its own statements, run
on an internal executor, that ended without error and outside a transaction (single
statements, and transactions it opened and closed itself with ``SET LOCAL`` only). Every
other release gets the full reset: ``acquire()`` (the connection handed out whole, as the
indexer lock uses it), the caller's view (``for_caller()``: ``atlas.executor`` and
``atlas.transaction()``), ``atlas.pool`` used directly, an error or cancellation, and a
connection still in a transaction (which asyncpg also rolls back).

With read replicas (``codeatlas._routing``), a pool executor sends the reads a standby can
serve (statements that cannot change data, take no lock, and run outside a transaction; and
``fetch_read``) to a replica the router picks. Whatever goes wrong there (the replica is
down, lagging, promoted, or refuses the statement) is never the caller's: the read runs on
the primary instead. A write committed on the primary records the primary's WAL position
for read-your-writes; if that cannot be read, the write is still reported as done.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager, contextmanager, suppress
from functools import lru_cache
from socket import gaierror
from typing import Any, Final, NoReturn, TypeVar

import asyncpg
from asyncpg import Record
from asyncpg.pool import Pool

from . import _spans as telemetry
from ._routing import CURRENT_LSN, Replica, Router
from ._state import AtlasState
from .errors import (
    CodeAtlasError,
    ConnectionLostError,
    InsufficientResourcesError,
    InvalidInputError,
    QueryCanceledError,
    TransactionAbortedError,
    connect_error,
    translate_db_error,
)

__all__ = [
    "Executor",
    "PooledConnection",
    "pooled_connection_class",
    "reset_connection",
    "translated",
]

logger = logging.getLogger("codeatlas.db")

T = TypeVar("T")

#: Setting names ``with_settings`` accepts (they are written into SQL, so checked strictly).
_SETTING_NAME: Final = re.compile(r"^[a-z_]+(\.[a-z_]+)?$")
#: A statement starting so, without a data-modifying word, cannot change data.
_READ_START: Final = re.compile(r"^\s*(SELECT|WITH|SHOW|VALUES|TABLE)\b", re.IGNORECASE)
_WRITE_WORD: Final = re.compile(
    r"\b(INSERT|UPDATE|DELETE|MERGE|TRUNCATE|COPY|CALL|NEXTVAL|SETVAL|LO_\w+)\b", re.IGNORECASE
)
#: A read that takes a lock, or whose answer is the primary's alone, never goes to a replica.
_PRIMARY_ONLY: Final = re.compile(
    r"\b(FOR\s+(UPDATE|SHARE|NO\s+KEY|KEY)|PG_(TRY_)?ADVISORY\w*|PG_CURRENT_\w+|TXID_\w+"
    r"|PG_STAT_PROGRESS\w*)\b",
    re.IGNORECASE,
)
#: Python errors the driver raises while encoding arguments (before anything is sent).
_ARGUMENT_ERRORS: Final = (UnicodeError, ValueError, TypeError, OverflowError, RecursionError)
#: Seconds an undo statement (ROLLBACK, settings restore) may take before the connection
#: is terminated instead.
_CLEANUP_TIMEOUT: Final = 10.0
_savepoints = itertools.count(1)


class PooledConnection(asyncpg.Connection):
    """asyncpg's connection with what the executor keeps on each pooled one.

    Attributes of the connection rather than tables keyed by it: they are read and written
    on every statement, where a lookup costs about as much as the rest of the bookkeeping.
    Unset until first written (read with ``getattr`` and a default):

    * ``_codeatlas_clean``: released by codeatlas' own code with no session state left,
      so the pool's reset (``reset_connection``) skips it, once (default False);
    * ``_codeatlas_idle_since``: monotonic time codeatlas last gave it back to the pool
      (default and while in use 0.0; see ``AtlasState.pre_ping_after``).
    """

    __slots__ = ("_codeatlas_clean", "_codeatlas_idle_since")


@lru_cache(maxsize=16)
def pooled_connection_class(base: type[asyncpg.Connection]) -> type[asyncpg.Connection]:
    """Return *base* (a caller's ``connection_class``, or asyncpg's) with the attributes of
    ``PooledConnection``, for ``asyncpg.create_pool``."""
    if base is asyncpg.Connection or issubclass(base, PooledConnection):
        return PooledConnection if base is asyncpg.Connection else base
    return type(f"Pooled{base.__name__}", (base,), {"__slots__": PooledConnection.__slots__})


def _vouch(connection: Any) -> None:
    """Mark pooled *connection* (a pool proxy) as needing no reset on this release.

    Not for one in a transaction, or one whose proxy no longer reaches it; should asyncpg's
    proxy not expose its connection as ``_con``, or the connection not be of
    ``pooled_connection_class``, nothing is marked: the full reset runs.
    """
    raw: Any = getattr(connection, "_con", None)  # None: a detached proxy
    if raw is not None and not (raw.is_closed() or raw.is_in_transaction()):
        try:  # noqa: SIM105 (per statement: suppress() would add three Python calls)
            raw._codeatlas_clean = True
        except AttributeError:  # not a PooledConnection
            pass


async def reset_connection(connection: asyncpg.Connection) -> None:
    """The pool's ``reset``: asyncpg's full reset query, unless codeatlas vouched for it.

    asyncpg itself runs before it (``Connection._reset``): it drops the Python-side
    listeners and rolls back an open transaction.
    """
    if getattr(connection, "_codeatlas_clean", False):
        connection._codeatlas_clean = False  # type: ignore[attr-defined]
        return
    query = connection.get_reset_query()
    if query:
        await connection.execute(query)


def _released(pool: Pool, connection: Any) -> Awaitable[None]:
    """Return the release of pooled *connection* (a proxy of *pool*) to await.

    asyncpg's ``Pool.release`` runs the holder's release in ``asyncio.shield`` so that a
    cancellation cannot cut its reset short; the shield's task and the loop iterations it
    takes cost ~30 us of CPU a call. For a connection codeatlas vouched for, on a pool
    whose reset is ``reset_connection``, the release sends nothing and awaits nothing
    (asyncpg's ``_reset`` awaits only to roll back a transaction, and a vouched connection
    is in none), so there is nothing to cut short: the holder's release is awaited as it
    is. Should it suspend after all (a connection at ``max_queries`` is closed), asyncpg's
    own handlers end a cancelled close by terminating the connection, which still returns
    its holder. Anything unexpected of asyncpg's internals (they are not its API) takes
    the shielded way.
    """
    try:
        raw = connection._con
        holder = connection._holder
        if (
            raw is not None
            and getattr(raw, "_codeatlas_clean", False)
            and holder._pool is pool
            and pool._reset is reset_connection
        ):
            raw._on_release()
            return holder.release(holder._timeout)  # type: ignore[no-any-return]
    except AttributeError:
        pass
    return pool.release(connection)


def _literal(value: str) -> str:
    """Quote *value* as an SQL string literal (standard_conforming_strings is always on)."""
    return "'" + value.replace("'", "''") + "'"


@lru_cache(maxsize=2048)
def _is_read(query: str) -> bool:
    """True when *query* cannot change data, so re-running it after a lost reply is safe."""
    return bool(_READ_START.match(query)) and not _WRITE_WORD.search(query)


@lru_cache(maxsize=2048)
def _replica_safe(query: str) -> bool:
    """True when a hot standby can answer *query* as the primary would (up to its lag)."""
    return _is_read(query) and not _PRIMARY_ONLY.search(query)


def _replica_down(exc: Exception) -> bool:
    """True when *exc*, raised while a replica served a read, says the replica is unusable
    (rather than refusing this one statement, like 25006 or a recovery conflict)."""
    error = exc if isinstance(exc, CodeAtlasError) else _translate(exc)
    if isinstance(error, ConnectionLostError | InsufficientResourcesError | QueryCanceledError):
        return True
    sqlstate = getattr(exc, "sqlstate", None) or ""
    return not isinstance(error, CodeAtlasError) or sqlstate[:2] in {"08", "57", "58", "XX"}


def _translate(exc: Exception, *, write_in_flight: bool = False) -> BaseException:
    """Return the codeatlas error for *exc*, raised by a driver call (or *exc* itself)."""
    mapped = translate_db_error(
        exc, write_in_flight=write_in_flight and not isinstance(exc, asyncpg.InterfaceError)
    )
    if mapped is not None:
        return mapped
    if isinstance(exc, _ARGUMENT_ERRORS):
        return InvalidInputError(f"a query argument could not be encoded: {type(exc).__name__}")
    return exc


def _assignments(settings: Mapping[str, str]) -> str:
    """Return ``; SET LOCAL name = 'value'`` for each of *settings* (names checked strictly)."""
    for name in settings:
        if not _SETTING_NAME.match(name):
            raise ValueError(f"not a setting name: {name!r}")
    return "".join(f"; SET LOCAL {name} = {_literal(value)}" for name, value in settings.items())


def _described(exc: Exception) -> str:
    """Return *exc* for a log line: its class and SQLSTATE (never its text: it may quote data)."""
    sqlstate = getattr(exc, "sqlstate", None)
    return f"{type(exc).__name__}" + (f" (SQLSTATE {sqlstate})" if sqlstate else "")


def _reraise(exc: Exception, *, write_in_flight: bool = False) -> NoReturn:
    """Raise the codeatlas error for *exc*, chained to it (or *exc* itself, if it is one)."""
    error = _translate(exc, write_in_flight=write_in_flight)
    if error is exc:
        raise exc
    raise error from exc


@contextmanager
def translated(connection: Any = None) -> Iterator[None]:
    """Re-raise driver exceptions raised in the block as codeatlas errors.

    Classification is by exception class alone: *connection* is not consulted (a pool
    proxy whose connection broke raises on every method). Cancellation passes untouched.
    """
    try:
        yield
    except Exception as exc:
        if isinstance(exc, OSError) and not isinstance(
            exc, ConnectionError | TimeoutError | gaierror
        ):
            raise  # a file or OS error of the block's own code, not the connection's
        mapped = translate_db_error(exc)
        if mapped is None or mapped is exc:
            raise
        raise mapped from exc


async def _uncancellable(awaitable: Awaitable[T]) -> T:
    """Await *awaitable* to its end even if the caller is cancelled meanwhile.

    A statement cut short by cancellation leaves unknown whether it ran; finishing it
    first keeps the connection's state known. The cancellation is re-raised afterwards.
    """
    task = asyncio.ensure_future(awaitable)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            if task.done():
                break
            cancelled = exc
        except BaseException:
            break
    if cancelled is not None:
        if not task.cancelled():
            task.exception()  # retrieved: the cancellation is what the caller gets
        raise cancelled
    return task.result()


def _discard(connection: Any) -> None:
    """Terminate *connection* so that no state it carries is ever reused."""
    with suppress(Exception):  # a proxy already detached by the broken connection raises
        connection.terminate()


async def _undo(connection: Any, statement: str) -> None:
    """Run *statement* to undo a failed or cancelled block; terminate the connection if not."""
    try:
        await _uncancellable(connection.execute(statement, timeout=_CLEANUP_TIMEOUT))
    except Exception:
        logger.debug("undo failed (%s): terminating the connection", statement, exc_info=True)
        _discard(connection)


async def _set_up(connection: Any, statement: str, undo: str) -> None:
    """Run state-opening *statement* to its end; if the caller was cancelled meanwhile, run
    *undo* too before the cancellation propagates (else nothing would undo it)."""
    try:
        # a pool proxy whose connection broke raises on the call itself
        task = asyncio.ensure_future(connection.execute(statement))
    except Exception as exc:
        _reraise(exc)
    try:
        await _uncancellable(task)
    except asyncio.CancelledError:
        if not task.cancelled() and task.exception() is None:
            await _undo(connection, undo)
        raise
    except Exception as exc:
        if isinstance(exc, asyncpg.PostgresError) and exc.sqlstate != "25P02":
            # a later part (a SET LOCAL) failed after the BEGIN or SAVEPOINT had run: undo
            # it, or the caller's transaction (or the pooled connection) stays aborted
            await _undo(connection, undo)
        _reraise(exc)


class Executor:
    """Run queries on a pool or on one connection; see the module docstring."""

    __slots__ = ("_connection", "_pool", "_replica_reads", "_router", "_vouches", "state")

    def __init__(
        self,
        *,
        pool: Pool | None = None,
        connection: asyncpg.Connection | None = None,
        state: AtlasState | None = None,
        router: Router | None = None,
        replica_reads: bool = True,
        vouches: bool = True,
    ) -> None:
        if (pool is None) == (connection is None):
            raise ValueError("Executor needs exactly one of pool or connection")
        self._pool = pool
        self._connection = connection
        #: shared by every executor of one Atlas (server facts, caches)
        self.state = state or AtlasState()
        #: the Atlas's read routing (replicas, read-your-writes); None: the pool only
        self._router = router
        self._replica_reads = replica_reads and router is not None and bool(router.replicas)
        #: False on the caller's view: its connections always get the pool's full reset
        self._vouches = vouches

    @property
    def router(self) -> Router | None:
        """The read routing of this executor's Atlas (None without replicas)."""
        return self._router

    def on_primary(self) -> Executor:
        """Return an executor on the same pool whose reads never go to a replica.

        For work whose reads must see the primary itself: index maintenance and progress,
        anything that reads what it just wrote under ``consistency="eventual"``.
        """
        if self._connection is not None:
            return self
        return Executor(
            pool=self._pool,
            state=self.state,
            router=self._router,
            replica_reads=False,
            vouches=self._vouches,
        )

    def for_caller(self) -> Executor:
        """Return this executor as handed to callers (``atlas.executor``, transactions).

        The same pool, connection and routing; but a pooled connection it used goes back
        with the pool's full reset, since caller SQL may have left session state on it
        (``SET``, advisory locks, ``LISTEN``).
        """
        if not self._vouches:
            return self
        return Executor(
            pool=self._pool,
            connection=self._connection,
            state=self.state,
            router=self._router,
            replica_reads=self._replica_reads,
            vouches=False,
        )

    @property
    def in_transaction(self) -> bool:
        """True when bound to one connection inside a transaction."""
        return self._connection is not None

    # -- connections ------------------------------------------------------------------------

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        """Yield a connection: the bound one, or one from the pool for the block's duration.

        A pooled one goes back with the pool's full reset (the block may leave any state).
        """
        if self._connection is not None:
            yield self._connection
            return
        async with self._pooled(vouch=False) as connection:
            yield connection

    @asynccontextmanager
    async def _pooled(self, pool: Pool | None = None, *, vouch: bool = True) -> AsyncIterator[Any]:
        """Yield a pooled connection; an internal executor's block that ends without error
        vouches for it, so its release skips the reset round trip (see reset_connection)."""
        pool = pool or self._pool
        assert pool is not None
        connection = await self._checked_out(pool)
        clean = False
        try:
            yield connection
            clean = vouch and self._vouches
        finally:
            await self._give_back(pool, connection, clean=clean)

    async def _give_back(self, pool: Pool, connection: Any, *, clean: bool) -> None:
        """Release *connection* to *pool*; *clean*: vouched for (see ``_vouch``)."""
        raw: Any = getattr(connection, "_con", None)  # read before the release detaches the proxy
        if clean:
            _vouch(connection)
        try:
            await _released(pool, connection)
        except Exception:
            # The block's work is done (committed, or failed with its own error): a
            # connection that cannot be reset is discarded, not reported.
            logger.debug("releasing a connection failed; discarding it", exc_info=True)
            _discard(connection)
        else:
            try:  # noqa: SIM105 (as in _vouch)
                raw._codeatlas_idle_since = time.monotonic()
            except AttributeError:  # None (broken meanwhile), or not a PooledConnection
                pass

    async def _checked_out(self, pool: Pool) -> Any:
        """Acquire a pooled connection; one idle longer than ``pre_ping_after`` is pinged first.

        A connection that died idle whose end the driver already saw is replaced by the pool
        itself; the ping catches one whose end has not arrived yet (a silent network drop).
        """
        if telemetry.ENABLED:
            telemetry.note("codeatlas.pool", "primary" if pool is self._pool else "replica")
        state = self.state
        if pool.is_closing():
            closed = ConnectionLostError("this Atlas is closed: connect again")
            closed.retryable = False
            raise closed
        for _ in range(pool.get_max_size() + 1):
            try:
                connection = await pool.acquire()
            except Exception as exc:
                error = connect_error(exc, endpoint=state.endpoint)
                connection = None
            if connection is None:
                raise error  # outside the handler: the driver's text can contain the DSN
            raw: Any = getattr(connection, "_con", None)
            since = getattr(raw, "_codeatlas_idle_since", 0.0)
            if since:
                raw._codeatlas_idle_since = 0.0
            if not since or time.monotonic() - since < state.pre_ping_after:
                return connection
            try:
                await connection.execute("SELECT 1", timeout=state.pre_ping_timeout)
            except BaseException as exc:
                _discard(connection)
                with suppress(Exception):
                    await pool.release(connection)
                if not isinstance(exc, Exception):
                    raise
                continue
            return connection
        raise ConnectionLostError("no pooled connection answered a ping")

    async def _run(
        self, query: str, call: Callable[[Any], Awaitable[T]], *, write: bool | None = None
    ) -> T:
        """Run *call* on a connection; see the module docstring for what a failure raises."""
        if self._connection is not None:
            if telemetry.ENABLED:
                telemetry.note("codeatlas.pool", "primary")  # transactions run there alone
            try:
                return await call(self._connection)
            except Exception as exc:
                if isinstance(exc, asyncpg.InternalClientError):
                    _discard(self._connection)  # its protocol state is unknown
                _reraise(exc)  # nothing commits before the COMMIT
        writes = not _is_read(query) if write is None else write
        if not writes and self._replica_reads and _replica_safe(query):
            served, result = await self._on_replica(call)
            if served:
                return result  # type: ignore[no-any-return]
        pool = self._pool
        assert pool is not None
        # _pooled written out: the hot path of every statement, where the context
        # manager's own machinery is a measurable part of a sub-millisecond call
        for attempt in (1, 2):
            connection = await self._checked_out(pool)
            clean = False
            try:
                try:
                    result = await call(connection)
                except Exception as exc:
                    if isinstance(exc, asyncpg.InternalClientError):
                        _discard(connection)  # its protocol state is unknown
                    error = _translate(exc, write_in_flight=writes)
                    if (
                        attempt == 1
                        and isinstance(exc, asyncpg.InterfaceError)
                        and type(error) is ConnectionLostError
                    ):
                        # the connection broke before anything was sent: once more on another
                        logger.debug("connection unusable before sending; retrying: %s", error)
                        _discard(connection)
                        continue
                    _reraise(exc, write_in_flight=writes)
                if writes:
                    await self._note_write(connection)
                clean = self._vouches
                return result
            finally:
                await self._give_back(pool, connection, clean=clean)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _note_write(self, connection: Any) -> None:
        """Record the primary's WAL position after a committed write (read-your-writes).

        The write is done whatever happens here: a failure leaves the position unknown, and
        the next replica read reads the primary's current position first.
        """
        router = self._router
        if router is None or not router.tracks_writes:
            return
        router.lsn_unknown = True
        try:
            lsn = await connection.fetchval(CURRENT_LSN)
        except Exception:
            logger.debug("reading the WAL position after a write failed", exc_info=True)
            return
        router.note_write(lsn)

    async def _on_replica(
        self, call: Callable[[Any], Awaitable[Any]], begin: str | None = None
    ) -> tuple[bool, Any]:
        """Serve a read on a replica: (True, its result), or (False, None) for the primary.

        *begin* (a ``BEGIN; SET LOCAL ...``) wraps the read in a transaction of its own.
        No replica failure escapes: the replica is taken out (if it is unusable) and the
        next one, or the primary, serves the read. Cancellation propagates.
        """
        router = self._router
        assert router is not None
        if router.lsn_unknown and router.consistency == "session":
            try:
                async with self._pooled() as primary:
                    router.note_write(await primary.fetchval(CURRENT_LSN))
            except Exception:
                router.stats.primary_reads += 1
                return False, None
        for replica in router.candidates():
            try:
                async with self._pooled(replica.pool) as connection:
                    if not await router.ready(replica, connection):
                        continue
                    result = await self._replica_call(replica, connection, call, begin)
            except Exception as exc:
                router.stats.fallbacks += 1
                if _replica_down(exc):
                    router.take_out(replica, _described(exc))
                else:
                    logger.debug(
                        "replica %s refused a read (%s): the primary serves it",
                        replica.name,
                        _described(exc),
                    )
                continue
            replica.served += 1
            router.stats.replica_reads += 1
            return True, result
        router.stats.primary_reads += 1
        return False, None

    async def _replica_call(
        self,
        replica: Replica,
        connection: Any,
        call: Callable[[Any], Awaitable[Any]],
        begin: str | None,
    ) -> Any:
        replica.busy += 1
        try:
            if begin is None:
                return await call(connection)
            await _set_up(connection, begin, "ROLLBACK")
            try:
                result = await call(connection)
            except BaseException:
                await _undo(connection, "ROLLBACK")
                raise
            await self._commit(connection, wrote=False)
            return result
        except asyncpg.InternalClientError:
            _discard(connection)  # its protocol state is unknown
            raise
        finally:
            replica.busy -= 1

    @asynccontextmanager
    async def _begun(self, statement: str) -> AsyncIterator[Any]:
        """Yield a pooled connection on which *statement* (a BEGIN) ran."""
        for attempt in (1, 2):
            async with self._pooled() as connection:
                try:
                    await _set_up(connection, statement, "ROLLBACK")
                except CodeAtlasError as error:
                    if attempt == 1 and type(error) is ConnectionLostError:
                        _discard(connection)  # died idle in the pool: nothing began
                        continue
                    raise
                yield connection
                return

    async def _commit(self, connection: Any, *, wrote: bool) -> None:
        try:
            status = await _uncancellable(connection.execute("COMMIT"))
        except Exception as exc:
            _reraise(exc, write_in_flight=wrote)
        if status == "ROLLBACK":
            # COMMIT of a transaction in which a statement failed rolls back, without error
            raise TransactionAbortedError(
                "a statement of this transaction failed: it was rolled back, nothing was committed",
                sqlstate="25P02",
            )

    # -- transactions and settings -----------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        """Yield an executor bound to one connection in a transaction (a savepoint if nested).

        Everything in the block commits or rolls back together. A COMMIT whose reply never
        came raises ``OutcomeUnknownError``; a cancelled COMMIT is finished before the
        cancellation propagates.
        """
        if self._connection is not None:
            async with self._savepoint(self._connection):
                yield self
            return
        async with self._begun("BEGIN") as connection:
            try:
                yield Executor(connection=connection, state=self.state)
            except BaseException:
                await _undo(connection, "ROLLBACK")
                raise
            await self._commit(connection, wrote=True)
            await self._note_write(connection)

    @asynccontextmanager
    async def _savepoint(self, connection: Any) -> AsyncIterator[None]:
        name = f"codeatlas_{next(_savepoints)}"
        # works in an aborted transaction too, and undoes SET LOCALs made since
        undo = f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}"
        await _set_up(connection, f"SAVEPOINT {name}", undo)
        try:
            yield
        except BaseException:
            await _undo(connection, undo)
            raise
        try:
            await _uncancellable(connection.execute(f"RELEASE SAVEPOINT {name}"))
        except Exception as exc:
            _reraise(exc)

    @asynccontextmanager
    async def with_settings(self, settings: Mapping[str, str]) -> AsyncIterator[Executor]:
        """Yield an executor on one connection where *settings* apply, and only there.

        On the pool: a transaction whose ``BEGIN`` and ``SET LOCAL``s travel in one round
        trip and end with it, so the connection goes back to the pool unchanged. Inside a
        caller's transaction: a savepoint taken before the ``SET LOCAL``s; on success the
        previous values are put back, on failure or cancellation the savepoint is rolled
        back (which undoes them, and keeps the caller's transaction usable). Do not open a
        transaction on the yielded executor. Its statements count as reads: a COMMIT
        without reply raises ``ConnectionLostError`` (writes there are best-effort counters).
        """
        assignments = _assignments(settings)
        if not settings:
            yield self
            return
        if self._connection is not None:
            async with self._restoring(self._connection, settings, assignments):
                yield self
            return
        async with self._begun("BEGIN" + assignments) as connection:
            try:
                yield Executor(connection=connection, state=self.state)
            except BaseException:
                await _undo(connection, "ROLLBACK")
                raise
            await self._commit(connection, wrote=False)

    @asynccontextmanager
    async def _restoring(
        self, connection: Any, settings: Mapping[str, str], assignments: str
    ) -> AsyncIterator[None]:
        names = list(settings)
        read = ", ".join(f"current_setting(${i}, true)" for i in range(1, len(names) + 1))
        try:
            previous = await _uncancellable(connection.fetchrow(f"SELECT {read}", *names))
        except Exception as exc:
            _reraise(exc)
        assert previous is not None
        savepoint = f"codeatlas_{next(_savepoints)}"
        # works in an aborted transaction too, and undoes the SET LOCALs
        undo = f"ROLLBACK TO SAVEPOINT {savepoint}; RELEASE SAVEPOINT {savepoint}"
        await _set_up(connection, f"SAVEPOINT {savepoint}{assignments}", undo)
        try:
            yield
        except BaseException:
            await _undo(connection, undo)
            raise
        # RELEASE keeps SET LOCALs, so the previous values go back first; a setting its
        # library had not defined yet reads NULL: back to its default.
        restore = "".join(
            f"SET LOCAL {name} = {_literal(value)}; "
            if value is not None
            else f"SET LOCAL {name} TO DEFAULT; "
            for name, value in zip(names, previous, strict=True)
        )
        try:
            await _uncancellable(connection.execute(f"{restore}RELEASE SAVEPOINT {savepoint}"))
        except Exception as exc:
            # whether the values went back is unknown: the transaction cannot be trusted
            _discard(connection)
            _reraise(exc)

    async def fetch_read(
        self,
        query: str,
        *args: Any,
        settings: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> list[Record]:
        """Run the read-only *query* with *settings* applied to it alone (see with_settings).

        With replicas, a replica serves it when one can (searches go this way).
        """
        settings = settings or {}
        assignments = _assignments(settings)
        if telemetry.ENABLED:
            telemetry.note_settings(settings)
        if self._connection is None and self._replica_reads and _is_read(query):
            begin = "BEGIN" + assignments if settings else None
            served, result = await self._on_replica(
                lambda c: c.fetch(query, *args, timeout=timeout), begin
            )
            if served:
                return result  # type: ignore[no-any-return]
        async with self.with_settings(settings) as tx:
            return await tx.fetch(query, *args, timeout=timeout)

    # -- statements ---------------------------------------------------------------------------

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        return await self._run(query, lambda c: c.execute(query, *args, timeout=timeout))

    async def executemany(
        self, query: str, args: Iterable[Sequence[Any]], *, timeout: float | None = None
    ) -> None:
        await self._run(query, lambda c: c.executemany(query, args, timeout=timeout), write=True)

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> list[Record]:
        return await self._run(query, lambda c: c.fetch(query, *args, timeout=timeout))

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> Record | None:
        return await self._run(query, lambda c: c.fetchrow(query, *args, timeout=timeout))

    async def fetchval(self, query: str, *args: Any, timeout: float | None = None) -> Any:
        return await self._run(query, lambda c: c.fetchval(query, *args, timeout=timeout))

    async def copy_records(
        self,
        table: str,
        records: Iterable[Sequence[Any]],
        *,
        columns: Sequence[str],
        timeout: float | None = None,
    ) -> str:
        """Bulk-load *records* into *table* with binary COPY (identifiers come from code)."""
        return await self._run(
            "COPY",
            lambda c: c.copy_records_to_table(
                table, records=records, columns=list(columns), timeout=timeout
            ),
            write=True,
        )
