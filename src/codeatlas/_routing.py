"""Read routing: which pool serves a read (a replica, or the primary), and replica health.

An Atlas connected with replicas holds one ``Router``: the primary's pool and one
``Replica`` per standby. The executor asks it for candidates for each read it may send to
a standby; writes, transactions and everything else never reach it. The rules:

- A replica is in rotation while it answers, is still in recovery (a promoted standby is
  taken out: it no longer follows the primary) and lags at most ``max_replica_lag``
  seconds. Health is checked on the read's own connection, at most every
  ``replica_check_interval`` seconds; a failed check or a failed read takes the replica out
  for ``replica_retry_after`` seconds, with one log line, and the read goes on elsewhere.
- Candidates are the replicas in rotation, least busy first (ties in turn).
- Read-your-writes (``consistency="session"``): every write this Atlas commits on the
  primary records the primary's WAL position after it; a replica serves a read only once
  its replay position has passed the last one recorded, waiting at most ``replica_wait``
  seconds for it (polling); otherwise the primary serves the read.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Final

from asyncpg.pool import Pool

__all__ = ["Replica", "Router", "RoutingStats", "parse_lsn"]

logger = logging.getLogger("codeatlas.routing")

#: One round trip tells all a router needs: still a standby, replay position, lag (seconds;
#: 0 while everything received is replayed, so an idle primary does not look like lag).
HEALTH: Final = """
SELECT pg_is_in_recovery()                      AS standby,
       pg_last_wal_replay_lsn()::text           AS replay_lsn,
       CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn()
            THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
        END                                     AS lag"""
REPLAY_LSN: Final = "SELECT pg_last_wal_replay_lsn()::text"
#: The primary's WAL position, read on the connection of a write right after it committed.
CURRENT_LSN: Final = "SELECT pg_current_wal_lsn()::text"
#: Seconds between two polls of a replica's replay position while a read waits for it.
_POLL: Final = 0.005
#: Seconds a health check may take before the replica counts as failed.
_CHECK_TIMEOUT: Final = 3.0


def parse_lsn(text: str | None) -> int:
    """Return a ``pg_lsn`` in its text form (``16/B374D848``) as an integer (None: 0)."""
    if not text:
        return 0
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass(slots=True)
class RoutingStats:
    """What the router did since the Atlas connected (for monitoring and the docs' figures)."""

    #: reads served by a replica / by the primary although replicas were configured
    replica_reads: int = 0
    primary_reads: int = 0
    #: reads a replica failed (error, down) that the primary then served
    fallbacks: int = 0
    #: reads that waited for a replica to replay this Atlas's last write, and how long
    waits: int = 0
    wait_seconds: float = 0.0
    #: reads sent to the primary because no replica had replayed the last write in time
    behind: int = 0
    #: times a replica was taken out of rotation
    removals: int = 0


@dataclass(slots=True, eq=False)
class Replica:
    """One standby: its pool and what the router knows of its health."""

    name: str
    pool: Pool
    #: monotonic time before which the replica is out of rotation
    out_until: float = 0.0
    #: monotonic time of the last health check (-inf: never)
    checked_at: float = -math.inf
    #: the replay position last read there
    replay_lsn: int = 0
    #: reads running there now
    busy: int = 0
    served: int = 0


@dataclass(slots=True)
class Router:
    """The primary's pool, the replicas, and the rules of the module docstring."""

    primary: Pool
    replicas: list[Replica]
    consistency: str = "session"
    max_lag: float = 5.0
    wait: float = 0.05
    retry_after: float = 5.0
    check_interval: float = 1.0
    #: the primary's WAL position after this Atlas's last committed write (0: none yet)
    session_lsn: int = 0
    #: a write committed but its position could not be read: the next replica read reads
    #: the primary's current position first
    lsn_unknown: bool = False
    stats: RoutingStats = field(default_factory=RoutingStats)
    _turn: Any = field(default_factory=itertools.count)

    @property
    def tracks_writes(self) -> bool:
        """True when writes must record their WAL position (replicas, session consistency)."""
        return bool(self.replicas) and self.consistency == "session"

    def candidates(self) -> list[Replica]:
        """Return the replicas in rotation now, least busy first (ties in turn)."""
        now = time.monotonic()
        ready = [replica for replica in self.replicas if replica.out_until <= now]
        if len(ready) > 1:
            shift = next(self._turn) % len(ready)
            ready = ready[shift:] + ready[:shift]
            ready.sort(key=lambda replica: replica.busy)  # stable: the turn breaks ties
        return ready

    def note_write(self, lsn: str | None) -> None:
        """Record the primary's WAL position read right after a committed write."""
        position = parse_lsn(lsn)
        self.session_lsn = max(self.session_lsn, position)
        self.lsn_unknown = False

    def take_out(self, replica: Replica, why: str) -> None:
        """Take *replica* out of rotation for ``retry_after`` seconds, with a log line.

        Reads that were running there when it failed report it too: only the first counts.
        """
        now = time.monotonic()
        if replica.out_until > now:
            return
        replica.out_until = now + self.retry_after
        replica.checked_at = -math.inf  # checked again before its next read
        self.stats.removals += 1
        logger.warning(
            "replica %s taken out of rotation for %.0f s: %s", replica.name, self.retry_after, why
        )

    async def ready(self, replica: Replica, connection: Any) -> bool:
        """True when *replica* may serve the next read, checked on its *connection*.

        Runs the health check when it is due (taking a failing replica out), then, under
        session consistency, waits up to ``wait`` seconds for the last write's position.
        Raises what the connection raises (the caller takes the replica out).
        """
        now = time.monotonic()
        if now - replica.checked_at >= self.check_interval:
            row = await connection.fetchrow(HEALTH, timeout=_CHECK_TIMEOUT)
            replica.checked_at = time.monotonic()
            if not row["standby"]:
                self.take_out(replica, "it is no longer in recovery (promoted?)")
                return False
            if row["lag"] is not None and row["lag"] > self.max_lag:
                self.take_out(replica, f"it lags {row['lag']:.1f} s (max_replica_lag)")
                return False
            replica.replay_lsn = max(replica.replay_lsn, parse_lsn(row["replay_lsn"]))
        needed = self.session_lsn if self.consistency == "session" else 0
        if replica.replay_lsn >= needed:
            return True
        started = time.monotonic()
        deadline = started + self.wait
        while True:
            replica.replay_lsn = max(
                replica.replay_lsn,
                parse_lsn(await connection.fetchval(REPLAY_LSN, timeout=_CHECK_TIMEOUT)),
            )
            if replica.replay_lsn >= needed:
                self.stats.waits += 1
                self.stats.wait_seconds += time.monotonic() - started
                return True
            if time.monotonic() + _POLL > deadline:
                self.stats.behind += 1
                return False
            await asyncio.sleep(_POLL)
