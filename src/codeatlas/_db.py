"""Executor: where repositories send their SQL, with driver errors translated in one place.

An executor runs either on the pool (each call acquires its own connection) or on one
connection held by a transaction. Repositories never know which; ``transaction()`` on
a pool executor starts a transaction, on a connection executor a savepoint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg
from asyncpg import Record
from asyncpg.pool import Pool

from ._state import AtlasState
from .errors import ConnectionLostError, translate_db_error

__all__ = ["Executor", "translated"]


@contextmanager
def translated(connection: asyncpg.Connection | None = None) -> Iterator[None]:
    """Re-raise driver exceptions raised in the block as codeatlas errors."""
    try:
        yield
    except asyncpg.InterfaceError as exc:
        if connection is not None and connection.is_closed():
            raise ConnectionLostError("connection to PostgreSQL is closed") from exc
        raise
    except (asyncpg.PostgresError, ConnectionError) as exc:
        mapped = translate_db_error(exc)
        if mapped is None:
            raise
        raise mapped from exc


class Executor:
    """Run queries on a pool or on one connection; see the module docstring."""

    __slots__ = ("_connection", "_pool", "state")

    def __init__(
        self,
        *,
        pool: Pool | None = None,
        connection: asyncpg.Connection | None = None,
        state: AtlasState | None = None,
    ) -> None:
        if (pool is None) == (connection is None):
            raise ValueError("Executor needs exactly one of pool or connection")
        self._pool = pool
        self._connection = connection
        #: shared by every executor of one Atlas (server facts, caches)
        self.state = state or AtlasState()

    @property
    def in_transaction(self) -> bool:
        """True when bound to one connection inside a transaction."""
        return self._connection is not None

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        """Yield a connection: the bound one, or one from the pool for the block's duration."""
        if self._connection is not None:
            yield self._connection
            return
        assert self._pool is not None
        with translated():
            async with self._pool.acquire() as connection:
                yield connection  # type: ignore[misc]  # a pool proxy behaves as a connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        """Yield an executor bound to one connection in a transaction (a savepoint if nested)."""
        async with self.acquire() as connection:
            with translated(connection):
                async with connection.transaction():
                    yield (
                        self
                        if self._connection is not None
                        else Executor(connection=connection, state=self.state)
                    )

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        async with self.acquire() as connection:
            with translated(connection):
                return await connection.execute(query, *args, timeout=timeout)

    async def executemany(
        self, query: str, args: Iterable[Sequence[Any]], *, timeout: float | None = None
    ) -> None:
        async with self.acquire() as connection:
            with translated(connection):
                await connection.executemany(query, args, timeout=timeout)

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> list[Record]:
        async with self.acquire() as connection:
            with translated(connection):
                return await connection.fetch(query, *args, timeout=timeout)

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> Record | None:
        async with self.acquire() as connection:
            with translated(connection):
                return await connection.fetchrow(query, *args, timeout=timeout)

    async def fetchval(self, query: str, *args: Any, timeout: float | None = None) -> Any:
        async with self.acquire() as connection:
            with translated(connection):
                return await connection.fetchval(query, *args, timeout=timeout)

    async def copy_records(
        self,
        table: str,
        records: Iterable[Sequence[Any]],
        *,
        columns: Sequence[str],
        timeout: float | None = None,
    ) -> str:
        """Bulk-load *records* into *table* with binary COPY (identifiers come from code)."""
        async with self.acquire() as connection:
            with translated(connection):
                return await connection.copy_records_to_table(
                    table, records=records, columns=list(columns), timeout=timeout
                )
