"""One indexing run per codebase at a time: an advisory lock held for the whole run.

Two runs on one codebase would both detect changes against the same stored state and then
interleave their writes. The run takes a *transaction-scoped* advisory lock keyed on the
codebase id, on a connection of its own, and keeps that transaction open (idle, READ
COMMITTED, no snapshot held between statements, nothing written) until the run ends. A
transaction, not a session lock, because pgbouncer in transaction mode pins a server
connection to a client only for a transaction's duration: a session lock taken through it
would stay on a server connection other clients get next. The lock ends with the
transaction on every path (return, error, cancellation, a killed process or a lost
connection: the server rolls the transaction back).

Waiting is polling ``pg_try_advisory_xact_lock``: the client's ``command_timeout`` never
cuts a long wait, and the wait is cancellable between polls.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

from ..errors import (
    ConfigurationError,
    ConnectionLostError,
    InvalidInputError,
    LockNotAvailableError,
)

if TYPE_CHECKING:
    from .._db import Executor
    from ..atlas import Atlas

__all__ = ["INDEXER_LOCK_CLASS", "CodebaseLock", "check_lock_timeout", "codebase_lock"]

#: First key of the two-key advisory locks of indexing runs (a namespace of its own beside
#: ``snapshots.take``'s 0x43410001 and ``vector_search.replace_file``'s 0x43410002).
INDEXER_LOCK_CLASS: Final = 0x43410003

# before any statement that takes a snapshot: between statements a READ COMMITTED
# transaction holds none, so the open lock transaction never holds back VACUUM or the
# run's own CREATE INDEX CONCURRENTLY (which waits for older snapshots), whatever
# default_transaction_isolation the server has
_READ_COMMITTED: Final = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED"
_TRY_LOCK: Final = "SELECT pg_try_advisory_xact_lock($1::int, hashtext($2))"
# the two-key form shows in pg_locks as classid, objid (oids: unsigned), objsubid 2
_HOLDER: Final = """
SELECT l.pid, a.application_name
  FROM pg_locks l
  LEFT JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
   AND l.classid::bigint = $1::bigint
   AND l.objid::bigint = hashtext($2)::bigint & 4294967295
 LIMIT 1"""
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
            await self._executor.fetchval(_ALIVE)
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
    async with atlas.transaction() as tx:
        executor = tx.executor
        await executor.execute(_READ_COMMITTED)
        pause = _POLL_FIRST
        told = False
        while not await executor.fetchval(_TRY_LOCK, INDEXER_LOCK_CLASS, codebase_id):
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
        yield CodebaseLock(executor, codebase_id, time.monotonic() - started)


async def _holder(executor: Executor, codebase_id: str) -> str:
    row = await executor.fetchrow(_HOLDER, INDEXER_LOCK_CLASS, codebase_id)
    if row is None:  # released between the two statements
        return "its run just ended"
    name = row["application_name"]
    return f"server pid {row['pid']}" + (f", application {name!r}" if name else "")
