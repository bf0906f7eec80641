"""The search implementations compared: codeatlas, raw asyncpg, psycopg 3 (+ pgvector).

Each client answers ``search(query)`` with the primary keys of the k nearest rows, nearest
first, using its own pool of ``size`` connections. The baselines run the very statement
codeatlas sends, but as a single round trip: their probes and iterative-scan mode are
startup parameters of their connections (so they survive asyncpg's ``RESET ALL`` when a
pooled connection is released), which is the cheapest correct way to run this query by
hand. codeatlas instead sets both knobs with ``SET LOCAL`` in a transaction per search
(sent with its BEGIN), so that pooled connections never carry them; the difference is
what the ratios show, and ``search.breakdown`` takes it apart.

The breakdown variants (``Stepwise``) are asyncpg pools that add one of codeatlas' steps at
a time.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final, Protocol

import asyncpg
import numpy as np
import numpy.typing as npt
import psycopg
from asyncpg.pool import Pool
from pgvector.asyncpg import register_vector
from pgvector.psycopg import register_vector_async

from .tables import TableSpec

__all__ = [
    "AsyncpgClient",
    "CodeatlasClient",
    "PsycopgClient",
    "SearchClient",
    "Stepwise",
    "knob_settings",
    "no_reset",
]

K: Final = 10

Vector = npt.NDArray[np.float32]


class SearchClient(Protocol):
    """One implementation of "the 10 nearest rows to this vector"."""

    name: str

    async def search(self, query: Vector) -> list[Any]:
        """Return the primary keys of the K nearest rows, nearest first."""
        ...

    async def close(self) -> None:
        """Release the client's connections."""
        ...


def knob_settings(probes: int) -> dict[str, str]:
    """Return the session settings equal to what codeatlas sets per search."""
    return {"ivfflat.probes": str(probes), "ivfflat.iterative_scan": "relaxed_order"}


class CodeatlasClient:
    """``repository.search_similar(query, k, probes=...)`` on the Atlas pool."""

    def __init__(self, repository: Any, probes: int, name: str = "codeatlas") -> None:
        self.name = name
        self._repository = repository
        self._probes = probes

    async def search(self, query: Vector) -> list[Any]:
        matches = await self._repository.search_similar(query, K, probes=self._probes)
        return [match.item.id for match in matches]

    async def close(self) -> None:
        return None  # the Atlas pool belongs to the caller


async def _asyncpg_pool(dsn: str, probes: int, size: int, **options: Any) -> Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=size,
        max_size=size,
        init=register_vector,
        server_settings=knob_settings(probes),
        **options,
    )
    assert pool is not None
    return pool


class AsyncpgClient:
    """``pool.fetch(search_sql, query, k)``: one round trip, pgvector's binary codec."""

    name = "asyncpg"

    def __init__(self, pool: Pool, spec: TableSpec) -> None:
        self._pool = pool
        self._sql = spec.search_sql

    @classmethod
    async def open(cls, dsn: str, spec: TableSpec, probes: int, size: int) -> AsyncpgClient:
        """Return a client whose pool has *size* connections set to *probes*."""
        return cls(await _asyncpg_pool(dsn, probes, size), spec)

    async def search(self, query: Vector) -> list[Any]:
        rows = await self._pool.fetch(self._sql, query, K)
        return [row["id"] for row in rows]

    async def close(self) -> None:
        await self._pool.close()


class PsycopgClient:
    """psycopg 3 ``AsyncConnection.execute`` in autocommit, vector bound in binary (``%b``).

    psycopg_pool is not a dependency here, so the pool is a queue of connections (which is
    also all psycopg_pool does per checkout when no check or reset is configured).
    Statements are prepared on first use (``prepare_threshold=0``), as asyncpg does.
    """

    name = "psycopg"

    def __init__(self, connections: list[psycopg.AsyncConnection[Any]], spec: TableSpec) -> None:
        self._connections = connections
        self._idle: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()
        for connection in connections:
            self._idle.put_nowait(connection)
        self._sql = spec.psycopg_search_sql

    @classmethod
    async def open(cls, dsn: str, spec: TableSpec, probes: int, size: int) -> PsycopgClient:
        """Return a client with *size* connections set to *probes*."""
        options = " ".join(f"-c {name}={value}" for name, value in knob_settings(probes).items())

        async def connect() -> psycopg.AsyncConnection[Any]:
            connection = await psycopg.AsyncConnection.connect(
                dsn, autocommit=True, prepare_threshold=0, options=options
            )
            await register_vector_async(connection)
            return connection

        return cls(list(await asyncio.gather(*(connect() for _ in range(size)))), spec)

    async def search(self, query: Vector) -> list[Any]:
        connection = await self._idle.get()
        try:
            cursor = await connection.execute(self._sql, {"query": query, "k": K})
            rows = await cursor.fetchall()
        finally:
            self._idle.put_nowait(connection)
        return [row[0] for row in rows]

    async def close(self) -> None:
        await asyncio.gather(*(connection.close() for connection in self._connections))


async def no_reset(connection: asyncpg.Connection) -> None:
    """A pool reset that sends nothing (safe when sessions never change state)."""


class Stepwise:
    """Raw asyncpg plus some of codeatlas' per-search steps, to attribute its overhead.

    ``reset=False`` skips asyncpg's release-time reset query; ``transaction`` wraps the
    query in BEGIN/COMMIT; ``knobs`` sends the two ``SET LOCAL``s in BEGIN's message, which
    is the statement sequence ``search_similar`` sends on the pool.
    """

    def __init__(
        self, pool: Pool, spec: TableSpec, name: str, *, transaction: bool, knobs: bool, probes: int
    ) -> None:
        self.name = name
        self._pool = pool
        self._sql = spec.search_sql
        self._transaction = transaction
        # probes is an int and the mode a constant: the literal is safe to write out
        self._begin = (
            f"BEGIN; SET LOCAL ivfflat.probes = '{int(probes)}'; "
            "SET LOCAL ivfflat.iterative_scan = 'relaxed_order'"
            if knobs
            else "BEGIN"
        )

    @classmethod
    async def open(
        cls,
        dsn: str,
        spec: TableSpec,
        probes: int,
        name: str,
        *,
        reset: bool = True,
        transaction: bool = False,
        knobs: bool = False,
    ) -> Stepwise:
        """Return a one-connection variant (the breakdown runs at concurrency 1)."""
        options: dict[str, Any] = {} if reset else {"reset": no_reset}
        pool = await _asyncpg_pool(dsn, probes, 1, **options)
        return cls(pool, spec, name, transaction=transaction, knobs=knobs, probes=probes)

    async def search(self, query: Vector) -> list[Any]:
        if not self._transaction:
            rows = await self._pool.fetch(self._sql, query, K)
            return [row["id"] for row in rows]
        async with self._pool.acquire() as connection:
            await connection.execute(self._begin)
            try:
                rows = await connection.fetch(self._sql, query, K)
            except BaseException:
                await connection.execute("ROLLBACK")
                raise
            await connection.execute("COMMIT")
        return [row["id"] for row in rows]

    async def close(self) -> None:
        await self._pool.close()
