"""One indexing run per codebase at a time: an advisory lock held for the whole run.

Two runs on one codebase would both detect changes against the same stored state and then
interleave their writes. A run takes an advisory lock keyed on the codebase id, on a pool
connection of its own, before its scan, and keeps it until the run ends.

* On a server (or a session-mode pooler) it is a *session* lock on a connection that stays
  idle outside any transaction: it holds no snapshot, so it never holds back VACUUM or a
  ``CREATE INDEX CONCURRENTLY`` (which waits for every older snapshot, the run's own index
  maintenance included). Released by ``pg_advisory_unlock``, and in any case by the pool's
  reset of the connection, or by the server when the connection is gone.
* Behind a transaction-mode pooler (``pooler="transaction"``) a session lock would stay on
  a server connection that other clients get next, so it is a *transaction* lock in a
  transaction kept open (idle, READ COMMITTED, nothing written) for the run: the pooler
  pins one server connection to it. Every extended-protocol statement there is followed
  by a simple-protocol one, because the unnamed portal an extended query leaves open
  keeps its snapshot (so the backend's xmin) until the next statement.

The lock ends with the run on every path (return, error, cancellation; a killed process
or a lost connection: the server ends the session or rolls the transaction back).
Waiting is polling ``pg_try_advisory_*lock``: the client's ``command_timeout`` never cuts a
long wait, and the wait is cancellable between polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

from .._db import Executor
from ..errors import (
    ConfigurationError,
    ConnectionLostError,
    InvalidInputError,
    LockNotAvailableError,
)

if TYPE_CHECKING:
    from ..atlas import Atlas

__all__ = ["INDEXER_LOCK_CLASS", "CodebaseLock", "check_lock_timeout", "codebase_lock"]

#: First key of the two-key advisory locks of indexing runs (a namespace of its own beside
#: ``snapshots.take``'s 0x43410001 and ``vector_search.replace_file``'s 0x43410002).
INDEXER_LOCK_CLASS: Final = 0x43410003

_TRY_LOCK: Final = "SELECT pg_try_advisory_lock($1::int, hashtext($2))"
_UNLOCK: Final = "SELECT pg_advisory_unlock($1::int, hashtext($2))"
# before any statement that takes a snapshot: between statements a READ COMMITTED
# transaction holds none (once no portal is left open), whatever
# default_transaction_isolation the server has
_READ_COMMITTED: Final = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED"
_TRY_XACT_LOCK: Final = "SELECT pg_try_advisory_xact_lock($1::int, hashtext($2))"
# the two-key form shows in pg_locks as classid, objid (oids: unsigned), objsubid 2
_HOLDER: Final = """
SELECT l.pid, a.application_name
  FROM pg_locks l
  LEFT JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
   AND l.classid::bigint = $1::bigint
   AND l.objid::bigint = hashtext($2)::bigint & 4294967295
 LIMIT 1"""
# sent without arguments, so by the simple query protocol: it closes the unnamed portal
_ALIVE: Final = "SELECT 1"

#: Seconds between the first polls of a busy lock, doubling up to the last.
_POLL_FIRST: Final = 0.05
_POLL_MAX: Final = 1.0


def check_lock_timeout(value: float | None) -> float | None:
    """Return *value* if it is None or a finite number of seconds >= 0, else refuse it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"lock_timeout must be seconds (a number) or None, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise InvalidInputError(f"lock_timeout must be finite and >= 0, got {value!r}")
    return float(value)


class CodebaseLock:
    """The held lock of one codebase; ``check()`` raises if it was lost."""

    def __init__(self, executor: Executor, codebase_id: str, waited: float) -> None:
        self._executor = executor
        self.codebase_id = codebase_id
        #: seconds spent waiting for another run to finish
        self.waited = waited

    async def check(self) -> None:
        """Raise ``ConnectionLostError`` if the lock's connection (so the lock) is gone."""
        try:
            await self._executor.execute(_ALIVE)
        except ConnectionLostError as exc:
            raise ConnectionLostError(
                f"the connection holding the indexer lock of codebase {self.codebase_id!r} "
                "was lost, so another run could start: this run stopped (what it committed "
                "stays consistent); run it again"
            ) from exc


@asynccontextmanager
async def codebase_lock(
    atlas: Atlas,
    codebase_id: str,
    *,
    timeout: float | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> AsyncIterator[CodebaseLock]:
    """Hold the indexer lock of *codebase_id* for the block; wait for it while another has it.

    *timeout* bounds the wait in seconds (None: as long as it takes; 0: not at all); when it
    expires ``LockNotAvailableError`` (retryable) names the holder. *on_wait(holder)* is
    called once if the lock is busy. Uses one pool connection for the whole block.
    """
    timeout = check_lock_timeout(timeout)
    if atlas.pool.get_max_size() < 2:
        raise ConfigurationError(
            "indexing needs a pool of at least 2 connections (one holds the codebase's "
            "indexer lock for the run): raise pool_max_size"
        )
    started = time.monotonic()
    if atlas.settings.pooler == "transaction":
        async with atlas.transaction() as tx:
            executor = tx.executor
            await executor.execute(_READ_COMMITTED)
            await _wait(executor, _TRY_XACT_LOCK, codebase_id, timeout, on_wait, started)
            yield CodebaseLock(executor, codebase_id, time.monotonic() - started)
        return
    async with atlas.executor.acquire() as connection:
        executor = Executor(connection=connection, state=atlas.executor.state)
        await _wait(executor, _TRY_LOCK, codebase_id, timeout, on_wait, started)
        try:
            yield CodebaseLock(executor, codebase_id, time.monotonic() - started)
        finally:
            # the pool's reset on release unlocks too; this is for a connection kept open
            with contextlib.suppress(Exception):
                await executor.fetchval(_UNLOCK, INDEXER_LOCK_CLASS, codebase_id)


async def _wait(
    executor: Executor,
    try_lock: str,
    codebase_id: str,
    timeout: float | None,
    on_wait: Callable[[str], None] | None,
    started: float,
) -> None:
    """Poll *try_lock* until it succeeds; past *timeout* raise ``LockNotAvailableError``."""
    pause = _POLL_FIRST
    told = False
    while not await executor.fetchval(try_lock, INDEXER_LOCK_CLASS, codebase_id):
        holder = await _holder(executor, codebase_id)
        waited = time.monotonic() - started
        if timeout is not None and waited >= timeout:
            raise LockNotAvailableError(
                f"another indexer is indexing codebase {codebase_id!r} ({holder}); "
                f"gave up after {waited:.1f} s (lock_timeout={timeout:g})"
            )
        if not told and on_wait is not None:
            on_wait(holder)
            told = True
        if timeout is not None:
            pause = min(pause, max(0.0, timeout - waited))
        await asyncio.sleep(pause)
        pause = min(pause * 2, _POLL_MAX)
    await executor.execute(_ALIVE)  # no portal, so no snapshot, left open


async def _holder(executor: Executor, codebase_id: str) -> str:
    row = await executor.fetchrow(_HOLDER, INDEXER_LOCK_CLASS, codebase_id)
    if row is None:  # released between the two statements
        return "its run just ended"
    name = row["application_name"]
    return f"server pid {row['pid']}" + (f", application {name!r}" if name else "")
