"""Executor: where repositories send their SQL, with driver errors translated in one place.

An executor runs either on the pool (each call acquires its own connection) or on one
connection held by a transaction. Repositories never know which; ``transaction()`` on
a pool executor starts a transaction, on a connection executor a savepoint.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Final

import asyncpg
from asyncpg import Record
from asyncpg.pool import Pool

from ._state import AtlasState
from .errors import ConnectionLostError, translate_db_error

__all__ = ["Executor", "translated"]

#: Setting names ``with_settings`` accepts (they are written into SQL, so checked strictly).
_SETTING_NAME: Final = re.compile(r"^[a-z_]+(\.[a-z_]+)?$")


def _literal(value: str) -> str:
    """Quote *value* as an SQL string literal (standard_conforming_strings is always on)."""
    return "'" + value.replace("'", "''") + "'"


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

    @asynccontextmanager
    async def with_settings(self, settings: Mapping[str, str]) -> AsyncIterator[Executor]:
        """Yield an executor on one connection where *settings* apply, and only there.

        On the pool: a transaction whose ``BEGIN`` and ``SET LOCAL``s travel in one round
        trip and end with it, so the connection goes back to the pool unchanged. Inside a
        caller's transaction: the previous values are read as the new ones are set, and put
        back afterwards, so the caller's later statements do not inherit them. Do not open a
        transaction on the yielded executor.
        """
        for name in settings:
            if not _SETTING_NAME.match(name):
                raise ValueError(f"not a setting name: {name!r}")
        if not settings:
            yield self
            return
        if self._connection is not None:
            async with self._restoring(self._connection, settings):
                yield self
            return
        assert self._pool is not None
        assignments = "".join(
            f"; SET LOCAL {name} = {_literal(value)}" for name, value in settings.items()
        )
        async with self.acquire() as connection:
            with translated(connection):
                await connection.execute("BEGIN" + assignments)
                try:
                    yield Executor(connection=connection, state=self.state)
                except BaseException:
                    if not connection.is_closed():
                        await connection.execute("ROLLBACK")
                    raise
                await connection.execute("COMMIT")

    @asynccontextmanager
    async def _restoring(
        self, connection: asyncpg.Connection, settings: Mapping[str, str]
    ) -> AsyncIterator[None]:
        names = list(settings)
        with translated(connection):
            previous = await connection.fetchrow(
                "SELECT "
                + ", ".join(
                    f"current_setting(${i}, true), set_config(${i}, ${i + len(names)}, true)"
                    for i in range(1, len(names) + 1)
                ),
                *names,
                *settings.values(),
            )
        assert previous is not None
        try:
            yield
        finally:
            if not connection.is_closed():
                with translated(connection):
                    # a setting its library had not defined yet reads NULL: back to its default
                    await connection.execute(
                        "SELECT "
                        + ", ".join(
                            f"set_config(${i}, coalesce(${i + len(names)}::text, "
                            f"(SELECT reset_val FROM pg_settings WHERE name = ${i})), true)"
                            for i in range(1, len(names) + 1)
                        ),
                        *names,
                        *(previous[2 * i] for i in range(len(names))),
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
