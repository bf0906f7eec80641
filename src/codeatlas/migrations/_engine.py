"""The migration engine: versioned ``.sql`` files applied under an advisory lock.

File format (``<14-digit version>_<name>.sql``)::

    -- migrate:up
    CREATE TABLE ...;
    -- migrate:down
    DROP TABLE ...;

``-- migrate:up transaction:false`` (or ``down``) runs that section outside a transaction;
such a section holds exactly one statement (for ``CREATE INDEX CONCURRENTLY``).

A ``.sql`` file in the directory whose name does not match the pattern is refused
(``MigrationError`` naming the file): skipping it silently would skip a migration.
Other files (the package's own ``.py`` files) are ignored.

Safety rules, in the order they apply:

* one dedicated connection takes a session advisory lock before any DDL (even the ledger
  table); waiters poll ``pg_try_advisory_lock`` between sleeps, holding no transaction,
  until ``Settings.migration_lock_timeout`` runs out;
* every applied migration is verified on each start: checksum (line endings normalised),
  presence in the package, and no version newer than the code knows;
* a transactional migration and its ledger row commit together;
* a non-transactional ``CREATE INDEX CONCURRENTLY`` that crashed half-way leaves an
  INVALID index: it is dropped and built again on the next run. A run killed after the
  build finished (the orphaned backend completes it) leaves a valid index and no ledger
  row: the next run finds that index on the statement's table and records the migration
  without building again. ``DROP INDEX CONCURRENTLY`` of an index already gone is skipped
  the same way on rollback;
* migration statements run on a connection whose client timeout is
  ``Settings.migration_statement_timeout`` (default: none), not ``command_timeout``;
* every failure is a ``MigrationError``, except a lost or refused connection (a codeatlas
  connection error; ``ConnectionLostError`` is retryable: the next run completes what the
  interrupted one left) and a *to* that names no version (``InvalidInputError``, raised
  before connecting);
* a down step that drops a table holding rows is refused unless ``allow_data_loss``; rows a
  migration seeded itself are declared in its down section with
  ``-- migrate:seeded <table> WHERE <predicate>`` and do not count as caller data.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Final

import anyio
import asyncpg

from .._db import translated
from .._pool import bootstrap, open_connection
from ..config import Settings
from ..errors import (
    ChecksumMismatchError,
    CodeAtlasError,
    ConnectionLostError,
    DatabaseAheadError,
    DataLossRefusedError,
    InvalidInputError,
    MigrationError,
    MigrationFailedError,
    MigrationLockTimeout,
    MissingMigrationError,
)

__all__ = [
    "LEDGER_TABLE",
    "MIGRATION_LOCK_KEY",
    "STATES",
    "ApplyResult",
    "Migration",
    "MigrationStatus",
    "Migrator",
    "RollbackResult",
    "check_target",
    "load_migrations",
]

LEDGER_TABLE: Final = "codeatlas_schema_migrations"
#: Advisory lock key: the first 8 bytes of sha256("codeatlas.migrations"), signed.
MIGRATION_LOCK_KEY: Final = int.from_bytes(
    hashlib.sha256(b"codeatlas.migrations").digest()[:8], "big", signed=True
)

_FILE_NAME: Final = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql$")
_SECTION: Final = re.compile(
    r"^--\s*migrate:(?P<kind>up|down)(?:\s+transaction:(?P<tx>true|false))?\s*$", re.MULTILINE
)
_DROP_TABLE: Final = re.compile(
    r"\bDROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?P<names>[\w.\"]+(?:\s*,\s*[\w.\"]+)*)",
    re.IGNORECASE,
)
_CREATE_INDEX: Final = re.compile(
    r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>[\w\"]+)"
    r"\s+ON\s+(?:ONLY\s+)?(?P<table>[\w.\"]+)",
    re.IGNORECASE,
)
_DROP_INDEX: Final = re.compile(
    r"\bDROP\s+INDEX\s+CONCURRENTLY\s+(?:IF\s+EXISTS\s+)?(?P<name>[\w.\"]+)\s*;?\s*$",
    re.IGNORECASE,
)
#: SQLSTATEs of a connection that broke or a backend that was terminated mid-migration.
_CONNECTION_LOST: Final = frozenset(
    {"08000", "08001", "08003", "08004", "08006", "57P01", "57P02", "57P03"}
)

_CREATE_LEDGER: Final = """
CREATE TABLE IF NOT EXISTS codeatlas_schema_migrations (
    version       bigint           PRIMARY KEY,
    name          text             NOT NULL,
    checksum      text             NOT NULL,
    applied_at    timestamptz      NOT NULL DEFAULT now(),
    execution_ms  double precision NOT NULL
)"""
_LEDGER_EXISTS: Final = "SELECT to_regclass('codeatlas_schema_migrations') IS NOT NULL"
_SELECT_LEDGER: Final = """
SELECT version, name, checksum, applied_at, execution_ms
  FROM codeatlas_schema_migrations
 ORDER BY version"""
_INSERT_LEDGER: Final = """
INSERT INTO codeatlas_schema_migrations (version, name, checksum, execution_ms)
VALUES ($1, $2, $3, $4)"""
_DELETE_LEDGER: Final = "DELETE FROM codeatlas_schema_migrations WHERE version = $1"
_TRY_LOCK: Final = "SELECT pg_try_advisory_lock($1)"
_UNLOCK: Final = "SELECT pg_advisory_unlock($1)"
_LOCK_HOLDER: Final = """
SELECT pid FROM pg_locks
 WHERE locktype = 'advisory' AND granted
   AND classid = (($1::bigint >> 32) & 4294967295)::oid
   AND objid = ($1::bigint & 4294967295)::oid
   AND objsubid = 1
 LIMIT 1"""
#: The index named $1: whether it is valid and whether it is on table $2 (NULL: no index).
_INDEX_STATE: Final = """
SELECT i.indisvalid AS valid, i.indrelid = to_regclass($2) AS on_table
  FROM pg_index i
 WHERE i.indexrelid = to_regclass($1)"""
_RELATION_EXISTS: Final = "SELECT to_regclass($1) IS NOT NULL"
_TABLE_HAS_ROWS: Final = "SELECT EXISTS (SELECT 1 FROM {table} WHERE NOT ({seeded}))"
#: ``-- migrate:seeded <table> WHERE <predicate>`` in a down section: the rows matching the
#: predicate are the migration's own seed rows, so dropping them loses no caller data.
_SEEDED: Final = re.compile(
    r"^--\s*migrate:seeded\s+(?P<table>[\w.]+)\s+WHERE\s+(?P<where>.+)$", re.M
)


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file, parsed."""

    version: int
    name: str
    filename: str
    up: str
    down: str | None
    up_transactional: bool
    down_transactional: bool
    checksum: str


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    """State of one migration, one of :data:`STATES`.

    ``applied``; ``pending``; ``changed`` (the file's checksum differs from the ledger's);
    ``missing`` (applied, older than the newest file, but its file is gone); ``ahead``
    (applied, newer than every file: the database was migrated by newer code).
    """

    version: int
    name: str
    state: str
    applied_at: datetime | None
    execution_ms: float | None

    @property
    def applied(self) -> bool:
        return self.state in {"applied", "changed", "missing", "ahead"}


#: Every state a MigrationStatus can have, in the order reports list them.
STATES: Final = ("applied", "pending", "changed", "missing", "ahead")


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What one ``apply()`` did: the versions it applied (empty if another process did).

    ``resumed`` lists the applied versions whose work an interrupted run had already done
    (a concurrent index its orphaned backend finished): recorded without running again.
    """

    applied: list[int]
    elapsed_ms: float
    lock_wait_ms: float
    resumed: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RollbackResult:
    """The versions one ``rollback()`` reverted, newest first."""

    reverted: list[int]
    elapsed_ms: float


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _parse(filename: str, text: str) -> Migration:
    match = _FILE_NAME.match(filename)
    assert match is not None
    text = _normalise(text)
    sections: dict[str, tuple[str, bool]] = {}
    markers = list(_SECTION.finditer(text))
    if not markers or markers[0].group("kind") != "up":
        raise MigrationError(f"{filename}: the file must start with a '-- migrate:up' section")
    for index, marker in enumerate(markers):
        kind = marker.group("kind")
        if kind in sections:
            raise MigrationError(f"{filename}: more than one '-- migrate:{kind}' section")
        end = markers[index + 1].start() if index + 1 < len(markers) else len(text)
        body = text[marker.end() : end].strip()
        transactional = marker.group("tx") != "false"
        if not transactional and body.rstrip(";").count(";") > 0:
            raise MigrationError(
                f"{filename}: a 'transaction:false' section must hold exactly one statement"
            )
        sections[kind] = (body, transactional)
    up, up_tx = sections["up"]
    if not up:
        raise MigrationError(f"{filename}: the up section is empty")
    down, down_tx = sections.get("down", (None, True))
    return Migration(
        version=int(match.group("version")),
        name=match.group("name"),
        filename=filename,
        up=up,
        down=down or None,
        up_transactional=up_tx,
        down_transactional=down_tx,
        checksum=hashlib.sha256(text.encode()).hexdigest(),
    )


def load_migrations(source: Traversable | Path | None = None) -> list[Migration]:
    """Parse every ``<version>_<name>.sql`` in *source* (default: the package's own)."""
    root: Traversable = source if source is not None else resources.files("codeatlas.migrations")
    migrations: dict[int, Migration] = {}
    for entry in root.iterdir():
        if not _FILE_NAME.match(entry.name):
            if entry.name.lower().endswith(".sql") or re.match(r"^\d{14}_", entry.name):
                raise MigrationError(
                    f"{entry.name}: not a migration file name: expected "
                    "<14-digit version>_<name>.sql with a name of a-z, 0-9 and _ "
                    "(e.g. 20260101000002_add_widgets.sql); rename or remove the file"
                )
            continue
        migration = _parse(entry.name, entry.read_text(encoding="utf-8"))
        if migration.version in migrations:
            raise MigrationError(
                f"two migrations share version {migration.version}: "
                f"{migrations[migration.version].filename} and {migration.filename}"
            )
        migrations[migration.version] = migration
    return [migrations[version] for version in sorted(migrations)]


def check_target(
    migrations: Sequence[Migration], to: int | None, *, rollback: bool = False, field: str = "to"
) -> None:
    """Refuse a *to* that names no version of *migrations* (on rollback 0, "all", is fine).

    InvalidInputError names *field* (``--to`` on the command line).
    """
    if to is None or (rollback and to == 0):
        return
    known = [m.version for m in migrations]
    if to not in known:
        span = f"{known[0]} … {known[-1]}" if known else "none"
        zero = "0 (revert all) or " if rollback else ""
        raise InvalidInputError(
            f"{field}: {to} is not a migration version of this code; use {zero}one of "
            f"the {len(known)} known versions ({span}; `codeatlas status` lists them)"
        )


def dropped_tables(sql: str) -> list[str]:
    """Return the tables a section drops with ``DROP TABLE`` (as written, in order)."""
    names: list[str] = []
    for match in _DROP_TABLE.finditer(sql):
        names.extend(name.strip() for name in match.group("names").split(","))
    return names


def seeded_rows(sql: str) -> dict[str, str]:
    """Return, per table, the predicate of the seed rows a down section declares."""
    return {m.group("table"): m.group("where").strip() for m in _SEEDED.finditer(sql)}


def _quote_qualified(name: str) -> str:
    parts = [part.strip('"') for part in name.split(".")]
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


@dataclass(frozen=True, slots=True)
class _LedgerRow:
    version: int
    name: str
    checksum: str
    applied_at: datetime
    execution_ms: float


class Migrator:
    """Apply, verify and roll back migrations on the database at *dsn*."""

    def __init__(
        self,
        dsn: str,
        *,
        source: Traversable | Path | None = None,
        settings: Settings | None = None,
        on_applied: Callable[[Migration, float], Awaitable[None] | None] | None = None,
        on_start: Callable[[Migration], None] | None = None,
    ) -> None:
        """*on_start* is called before each migration runs, *on_applied* after (with its ms)."""
        self._dsn = dsn
        self._source = source
        self._settings = settings or Settings()
        # the migrator's own connection: its statements have their own time budget
        self._connection_settings = self._settings.model_copy(
            update={"command_timeout": self._settings.migration_statement_timeout}
        )
        self._migrations: list[Migration] | None = None
        self._on_applied = on_applied
        self._on_start = on_start

    @property
    def migrations(self) -> list[Migration]:
        """The migrations this migrator knows, oldest first (read from disk once)."""
        if self._migrations is None:
            self._migrations = load_migrations(self._source)
        return self._migrations

    # -- public API -------------------------------------------------------------------

    async def status(self) -> list[MigrationStatus]:
        """Return every known or recorded migration with its state, oldest first."""
        with _migration_errors("reading the migration ledger"):
            connection = await self._connect()
            try:
                ledger = await self._read_ledger(connection)
            finally:
                await _close(connection)
        known = {m.version: m for m in self.migrations}
        newest_known = max(known, default=0)
        result: list[MigrationStatus] = []
        for version in sorted(known.keys() | ledger.keys()):
            migration, row = known.get(version), ledger.get(version)
            if row is None:
                assert migration is not None
                result.append(MigrationStatus(version, migration.name, "pending", None, None))
                continue
            if migration is None:
                state = "ahead" if version > newest_known else "missing"
            elif migration.checksum != row.checksum:
                state = "changed"
            else:
                state = "applied"
            result.append(
                MigrationStatus(version, row.name, state, row.applied_at, row.execution_ms)
            )
        return result

    async def apply(self, *, to: int | None = None) -> ApplyResult:
        """Apply pending migrations (up to and including *to*); verify the applied ones.

        *to* must be a version of this chain (InvalidInputError otherwise, before connecting).
        """
        check_target(self.migrations, to)
        started = time.perf_counter()
        with _migration_errors("migrating"):
            connection = await self._connect()
            try:
                # Fast path: nothing to do needs no lock (many processes start at once).
                ledger = await self._read_ledger(connection)
                self._verify(ledger)
                with translated(connection):
                    extension = await connection.fetchval(
                        "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
                    )
                if extension is not None and not self._pending(ledger, to):
                    return ApplyResult([], _ms_since(started), 0.0)
                lock_wait = await self._lock(connection)
                try:
                    await bootstrap(connection)
                    with translated(connection):
                        await connection.execute(_CREATE_LEDGER)
                    ledger = await self._read_ledger(connection)
                    self._verify(ledger)
                    applied: list[int] = []
                    resumed: list[int] = []
                    for migration in self._pending(ledger, to):
                        if self._on_start is not None:
                            self._on_start(migration)
                        elapsed, was_done = await self._run_up(connection, migration)
                        applied.append(migration.version)
                        if was_done:
                            resumed.append(migration.version)
                        if self._on_applied is not None:
                            outcome = self._on_applied(migration, elapsed)
                            if outcome is not None:
                                await outcome
                finally:
                    await self._unlock(connection)
                return ApplyResult(applied, _ms_since(started), lock_wait, resumed)
            finally:
                await _close(connection)

    async def rollback(self, *, to: int, allow_data_loss: bool = False) -> RollbackResult:
        """Revert every applied migration newer than *to*, newest first.

        *to* is 0 (revert all) or a version of this chain; anything else is refused with
        InvalidInputError before connecting. Refuses (before reverting anything) when a down
        step would drop a table that holds rows, unless *allow_data_loss* is true.
        """
        check_target(self.migrations, to, rollback=True)
        started = time.perf_counter()
        known = {m.version: m for m in self.migrations}
        with _migration_errors("rolling back"):
            connection = await self._connect()
            try:
                await self._lock(connection)
                try:
                    ledger = await self._read_ledger(connection)
                    self._verify(ledger)
                    targets = [known[v] for v in sorted(ledger, reverse=True) if v > to]
                    for migration in targets:
                        if migration.down is None:
                            raise MigrationError(
                                f"migration {migration.version} ({migration.filename}) has no "
                                "'-- migrate:down' section and cannot be rolled back"
                            )
                    if not allow_data_loss:
                        for migration in targets:
                            await self._refuse_data_loss(connection, migration)
                    reverted: list[int] = []
                    for migration in targets:
                        await self._run_down(connection, migration, allow_data_loss)
                        reverted.append(migration.version)
                finally:
                    await self._unlock(connection)
            finally:
                await _close(connection)
        return RollbackResult(reverted, _ms_since(started))

    async def _connect(self) -> asyncpg.Connection:
        return await open_connection(self._dsn, self._connection_settings)

    # -- ledger and verification ------------------------------------------------------

    async def _read_ledger(self, connection: asyncpg.Connection) -> dict[int, _LedgerRow]:
        with translated(connection):
            if not await connection.fetchval(_LEDGER_EXISTS):
                return {}
            rows = await connection.fetch(_SELECT_LEDGER)
        return {
            row["version"]: _LedgerRow(
                row["version"],
                row["name"],
                row["checksum"],
                row["applied_at"],
                row["execution_ms"],
            )
            for row in rows
        }

    def _verify(self, ledger: dict[int, _LedgerRow]) -> None:
        known = {m.version: m for m in self.migrations}
        newest_known = max(known, default=0)
        unknown = sorted(v for v in ledger if v not in known)
        ahead = [v for v in unknown if v > newest_known]
        if ahead:
            row = ledger[ahead[0]]
            raise DatabaseAheadError(
                f"the database has migration {row.version} ({row.version}_{row.name}.sql), newer "
                f"than this codeatlas knows (newest {newest_known}): upgrade codeatlas"
            )
        if unknown:
            row = ledger[unknown[0]]
            raise MissingMigrationError(
                f"migration {row.version} ({row.version}_{row.name}.sql) is applied but missing "
                "from the package: restore the file"
            )
        for version, row in ledger.items():
            migration = known[version]
            if migration.checksum != row.checksum:
                raise ChecksumMismatchError(
                    f"migration {version} ({migration.filename}) was changed after it was "
                    f"applied (checksum {row.checksum[:12]}… recorded, "
                    f"{migration.checksum[:12]}… on disk): "
                    "restore the original file and add a new migration instead"
                )

    def _pending(self, ledger: dict[int, _LedgerRow], to: int | None) -> list[Migration]:
        return [
            m
            for m in self.migrations
            if m.version not in ledger and (to is None or m.version <= to)
        ]

    # -- locking ----------------------------------------------------------------------

    async def _lock(self, connection: asyncpg.Connection) -> float:
        """Take the migration lock, polling without a transaction open; return ms waited."""
        started = time.perf_counter()
        deadline = started + self._settings.migration_lock_timeout
        with translated(connection):
            while not await connection.fetchval(_TRY_LOCK, MIGRATION_LOCK_KEY):
                if time.perf_counter() >= deadline:
                    holder = await connection.fetchval(_LOCK_HOLDER, MIGRATION_LOCK_KEY)
                    raise MigrationLockTimeout(
                        "another process (backend pid "
                        f"{holder if holder is not None else 'unknown'}) has held the migration "
                        f"lock for over {self._settings.migration_lock_timeout:g}s"
                    )
                await anyio.sleep(self._settings.migration_lock_poll_interval)
        return _ms_since(started)

    async def _unlock(self, connection: asyncpg.Connection) -> None:
        if connection.is_closed():
            return
        # Closing the session releases the lock too, and _close follows: a broken
        # connection must not replace the error that broke it.
        with contextlib.suppress(
            asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError
        ):
            await connection.execute(_UNLOCK, MIGRATION_LOCK_KEY)

    # -- running sections -------------------------------------------------------------

    async def _run_up(
        self, connection: asyncpg.Connection, migration: Migration
    ) -> tuple[float, bool]:
        """Run *migration*'s up section and record it; return (ms, whether it was already done)."""
        started = time.perf_counter()
        done = False
        with self._step_errors(migration, "failed and was not recorded"):
            if migration.up_transactional:
                async with connection.transaction():
                    await connection.execute(migration.up)
                    elapsed = _ms_since(started)
                    await connection.execute(
                        _INSERT_LEDGER,
                        migration.version,
                        migration.name,
                        migration.checksum,
                        elapsed,
                    )
            else:
                done = await self._index_already_built(connection, migration.up)
                if not done:
                    await connection.execute(migration.up)
                elapsed = _ms_since(started)
                await connection.execute(
                    _INSERT_LEDGER, migration.version, migration.name, migration.checksum, elapsed
                )
        return elapsed, done

    async def _run_down(
        self, connection: asyncpg.Connection, migration: Migration, allow_data_loss: bool
    ) -> None:
        assert migration.down is not None
        with self._step_errors(migration, "could not be rolled back"):
            if migration.down_transactional:
                async with connection.transaction():
                    if not allow_data_loss:
                        # checked again inside the transaction: rows may have arrived since
                        await self._refuse_data_loss(connection, migration)
                    await connection.execute(migration.down)
                    await connection.execute(_DELETE_LEDGER, migration.version)
            else:
                # an interrupted rollback may have dropped the index already
                dropped = _DROP_INDEX.search(migration.down)
                if dropped is None or await connection.fetchval(
                    _RELATION_EXISTS, dropped.group("name")
                ):
                    await connection.execute(migration.down)
                await connection.execute(_DELETE_LEDGER, migration.version)

    @contextlib.contextmanager
    def _step_errors(self, migration: Migration, failed: str) -> Iterator[None]:
        """Raise what went wrong in one migration step as a codeatlas error naming it."""
        what = f"migration {migration.version} ({migration.filename})"
        try:
            yield
        except CodeAtlasError:
            raise
        except TimeoutError as exc:  # before OSError, its base class
            budget = self._settings.migration_statement_timeout or 0
            raise MigrationFailedError(
                f"{what} {failed}: a statement ran longer than "
                f"migration_statement_timeout ({budget:g} s)"
            ) from exc
        except asyncpg.PostgresError as exc:
            if exc.sqlstate in _CONNECTION_LOST:
                raise ConnectionLostError(
                    f"{what} was interrupted: the server ended the connection "
                    f"(SQLSTATE {exc.sqlstate}); run the migration again, it resumes"
                ) from exc
            raise MigrationFailedError(f"{what} {failed}: {exc.sqlstate} {exc}") from exc
        except (asyncpg.InterfaceError, OSError) as exc:
            raise ConnectionLostError(
                f"{what} was interrupted: the connection to PostgreSQL was lost; "
                "run the migration again, it resumes"
            ) from exc

    async def _refuse_data_loss(self, connection: asyncpg.Connection, migration: Migration) -> None:
        assert migration.down is not None
        seeded = seeded_rows(migration.down)
        for table in dropped_tables(migration.down):
            with translated(connection):
                exists = await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", table)
                if not exists:
                    continue
                has_rows = await connection.fetchval(
                    _TABLE_HAS_ROWS.format(
                        table=_quote_qualified(table), seeded=seeded.get(table, "false")
                    )
                )
            if has_rows:
                raise DataLossRefusedError(
                    f"rolling back migration {migration.version} ({migration.filename}) would drop "
                    f"table {table}, which holds rows: pass allow_data_loss=True "
                    "(CLI: --allow-data-loss) to drop it anyway"
                )

    async def _index_already_built(self, connection: asyncpg.Connection, sql: str) -> bool:
        """Return True if *sql*'s concurrent index exists, valid, on its table.

        That is what a run killed during ``CREATE INDEX CONCURRENTLY`` leaves when its
        orphaned backend finished the build. An INVALID index (a build that failed or was
        cancelled) is dropped here so the statement can build it again.
        """
        match = _CREATE_INDEX.search(sql)
        if match is None:
            return False
        name = match.group("name")
        state = await connection.fetchrow(_INDEX_STATE, name, match.group("table"))
        if state is None:
            return False
        if state["valid"]:
            # a valid index of that name on another table: let the statement say so (42P07)
            return bool(state["on_table"])
        await connection.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_quote_qualified(name)}")
        return False


@contextlib.contextmanager
def _migration_errors(action: str) -> Iterator[None]:
    """Let only codeatlas errors out of a migrator call (cancellation passes unchanged)."""
    try:
        yield
    except CodeAtlasError:
        raise
    except asyncpg.PostgresError as exc:
        if exc.sqlstate in _CONNECTION_LOST:
            raise ConnectionLostError(
                f"{action} was interrupted: the server ended the connection "
                f"(SQLSTATE {exc.sqlstate}); run it again"
            ) from exc
        raise MigrationError(f"{action} failed: {exc.sqlstate} {exc}") from exc
    except TimeoutError as exc:  # before OSError, its base class
        raise MigrationError(f"{action} failed: the server did not answer in time") from exc
    except (asyncpg.InterfaceError, OSError) as exc:
        raise ConnectionLostError(
            f"{action} was interrupted: the connection to PostgreSQL was lost; run it again"
        ) from exc


async def _close(connection: asyncpg.Connection) -> None:
    """Close *connection*; if it is broken or busy, drop it (the server ends the session)."""
    try:
        await connection.close(timeout=5)
    except Exception:
        connection.terminate()


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
