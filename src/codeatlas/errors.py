"""Every error codeatlas raises, and the one place driver errors are translated.

The tree::

    CodeAtlasError
    ├── ConfigurationError            bad settings or DSN
    ├── EmbeddedServerError           the embedded PostgreSQL could not start
    ├── ExtensionError                pgvector missing, not creatable, or too old
    ├── ConnectionLostError           server restarted / backend terminated (retryable)
    ├── SchemaNotReadyError           tables missing: run migrations first
    ├── MigrationError
    │   ├── MigrationLockTimeout      another process held the migration lock too long
    │   ├── ChecksumMismatchError     an applied migration file was edited
    │   ├── MissingMigrationError     an applied migration is absent from the package
    │   ├── DatabaseAheadError        the database has versions newer than this code
    │   ├── MigrationFailedError      a migration's SQL failed (nothing of it was kept)
    │   └── DataLossRefusedError      a down step would drop a table holding rows
    ├── NotFoundError                 no row for the given key
    ├── IntegrityError
    │   ├── UniqueConflictError       a unique key already exists (names the key)
    │   ├── ForeignKeyViolationError  the referenced parent row is missing (names it)
    │   ├── ConstraintViolationError  NOT NULL / CHECK / other constraint
    │   ├── CycleError                an edge would close a cycle in a DAG graph type
    │   └── TemplateChecksumError     a template's stored checksum does not match it
    ├── ImmutableRowError             UPDATE on an append-only table
    │   └── RunFinishedError          findings added to (or finish of) a finished run
    ├── StateConflictError            the row's state forbids it (closed proposal, lost claim)
    └── InvalidInputError (ValueError)
        ├── InvalidVectorError        wrong dimension, NaN/Inf, zero vector
        └── InvalidFilterError        unknown filter key or malformed filter value

Errors are classified by exception class and SQLSTATE, never by message text.
Messages never include passwords.
"""

from __future__ import annotations

from typing import Any, Final

import asyncpg

__all__ = [
    "IMMUTABLE_ROW_SQLSTATE",
    "ChecksumMismatchError",
    "CodeAtlasError",
    "ConfigurationError",
    "ConnectionLostError",
    "ConstraintViolationError",
    "CycleError",
    "DataLossRefusedError",
    "DatabaseAheadError",
    "EmbeddedServerError",
    "ExtensionError",
    "ForeignKeyViolationError",
    "ImmutableRowError",
    "IntegrityError",
    "InvalidFilterError",
    "InvalidInputError",
    "InvalidVectorError",
    "MigrationError",
    "MigrationFailedError",
    "MigrationLockTimeout",
    "MissingMigrationError",
    "NotFoundError",
    "RunFinishedError",
    "SchemaNotReadyError",
    "StateConflictError",
    "TemplateChecksumError",
    "UniqueConflictError",
    "translate_db_error",
]

#: SQLSTATE raised by codeatlas' append-only triggers (class "CA" is unused by PostgreSQL).
IMMUTABLE_ROW_SQLSTATE: Final = "CA001"


class CodeAtlasError(Exception):
    """Root of every codeatlas error."""

    #: True when the same call may succeed if simply tried again.
    retryable: bool = False


class ConfigurationError(CodeAtlasError):
    """Settings or DSN are unusable."""


class EmbeddedServerError(CodeAtlasError):
    """The embedded PostgreSQL server could not be started or reached."""


class ExtensionError(CodeAtlasError):
    """pgvector is missing, cannot be created by this role, or is too old."""


class ConnectionLostError(CodeAtlasError):
    """The connection broke mid-operation (server restart, terminated backend).

    The pool replaces broken connections: retrying the operation is safe for reads
    and for writes that ran in a transaction (which was rolled back).
    """

    retryable = True


class SchemaNotReadyError(CodeAtlasError):
    """A table codeatlas needs does not exist: the database is not migrated."""


class MigrationError(CodeAtlasError):
    """Base of migration failures."""


class MigrationLockTimeout(MigrationError):
    """The migration advisory lock stayed taken longer than the wait budget."""

    retryable = True


class ChecksumMismatchError(MigrationError):
    """An applied migration's file changed since it was applied."""


class MissingMigrationError(MigrationError):
    """The ledger records a migration that this package does not ship."""


class DatabaseAheadError(MigrationError):
    """The database was migrated by a newer codeatlas than this one."""


class MigrationFailedError(MigrationError):
    """A migration's SQL raised; its transaction (and ledger row) was rolled back."""


class DataLossRefusedError(MigrationError):
    """A down step would drop a table that holds rows (pass allow_data_loss=True)."""


class NotFoundError(CodeAtlasError, LookupError):
    """No row matches the given key."""


class IntegrityError(CodeAtlasError):
    """A constraint rejected the write.

    ``constraint`` and ``table`` name what rejected it, when the server said so.
    """

    def __init__(self, message: str, *, constraint: str | None = None, table: str | None = None):
        super().__init__(message)
        self.constraint = constraint
        self.table = table


class UniqueConflictError(IntegrityError):
    """A row with the same unique key exists. ``key`` holds the server's key detail."""

    def __init__(
        self,
        message: str,
        *,
        constraint: str | None = None,
        table: str | None = None,
        key: str | None = None,
    ):
        super().__init__(message, constraint=constraint, table=table)
        self.key = key


class ForeignKeyViolationError(IntegrityError):
    """A referenced parent row does not exist (or a child still references it)."""


class ConstraintViolationError(IntegrityError):
    """A NOT NULL, CHECK or exclusion constraint rejected the write."""


class CycleError(IntegrityError):
    """An edge would close a cycle in a graph type that must stay acyclic (names the edge)."""

    def __init__(
        self,
        message: str,
        *,
        codebase_id: str,
        graph_type: str,
        edge_id: str,
        from_node_id: str,
        to_node_id: str,
    ):
        super().__init__(message, table="graph_edges")
        self.codebase_id = codebase_id
        self.graph_type = graph_type
        self.edge_id = edge_id
        self.from_node_id = from_node_id
        self.to_node_id = to_node_id


class TemplateChecksumError(IntegrityError):
    """A technology template no longer matches its stored checksum (altered outside codeatlas)."""


class ImmutableRowError(CodeAtlasError):
    """The table is append-only: its rows cannot be updated."""


class RunFinishedError(ImmutableRowError):
    """The quality run is finished: its findings and counts are final."""


class StateConflictError(CodeAtlasError):
    """The row is no longer in the state the operation needs; ``state`` says what it is.

    Raised for a vote on a proposal that is no longer ``proposed``, and for a worker
    releasing or recording a merge whose claim it no longer holds.
    """

    def __init__(self, message: str, *, state: str | None = None) -> None:
        super().__init__(message)
        self.state = state


class InvalidInputError(CodeAtlasError, ValueError):
    """The caller's input is invalid; nothing was sent to the server.

    ``errors`` holds pydantic's structured list when a model rejected the input.
    """

    errors: list[Any]

    def __init__(self, message: str, *, errors: list[Any] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class InvalidVectorError(InvalidInputError):
    """An embedding has the wrong dimension, non-finite values, or is all zeros."""


class InvalidFilterError(InvalidInputError):
    """A filter names an unknown column or has a malformed value."""


_CONNECTION_LOST_SQLSTATES: Final = frozenset(
    {
        "57P01",  # admin_shutdown (pg_terminate_backend, fast shutdown)
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (starting up / shutting down)
        "08000",
        "08003",
        "08006",
        "08001",
        "08004",
    }
)


def translate_db_error(exc: BaseException) -> CodeAtlasError | None:
    """Return the codeatlas error for a driver exception, or None if it is not one we map.

    An ``asyncpg.InterfaceError`` is ambiguous (API misuse or a closed connection):
    callers that know the connection is closed map it to ConnectionLostError themselves.
    """
    if isinstance(exc, CodeAtlasError):
        return exc
    if isinstance(exc, asyncpg.exceptions.PostgresConnectionError | ConnectionError):
        return ConnectionLostError(f"connection to PostgreSQL lost: {type(exc).__name__}")
    if not isinstance(exc, asyncpg.PostgresError):
        return None
    sqlstate = getattr(exc, "sqlstate", None) or ""
    table = getattr(exc, "table_name", None)
    constraint = getattr(exc, "constraint_name", None)
    detail = getattr(exc, "detail", None)
    if sqlstate in _CONNECTION_LOST_SQLSTATES:
        return ConnectionLostError(f"connection to PostgreSQL lost (SQLSTATE {sqlstate})")
    if sqlstate == "23505":
        return UniqueConflictError(
            f"unique conflict on {table}.{constraint}: {detail or 'key exists'}",
            constraint=constraint,
            table=table,
            key=detail,
        )
    if sqlstate == "23503":
        return ForeignKeyViolationError(
            f"foreign key {constraint} on {table}: {detail or 'parent row missing'}",
            constraint=constraint,
            table=table,
        )
    if sqlstate in {"23502", "23514", "23P01", "23000", "23001"}:
        column = getattr(exc, "column_name", None)
        what = f"{table}.{column}" if column else f"{table}"
        reason = exc.args[0] if exc.args else ""
        return ConstraintViolationError(
            f"constraint violated on {what} ({constraint or sqlstate}): {reason}",
            constraint=constraint,
            table=table,
        )
    if sqlstate == IMMUTABLE_ROW_SQLSTATE:
        return ImmutableRowError(str(exc.args[0]) if exc.args else "row is immutable")
    if sqlstate == "42P01":
        return SchemaNotReadyError(
            f"{exc.args[0] if exc.args else 'relation missing'}: run `codeatlas migrate`"
        )
    if sqlstate in {"22000", "22P02", "22023", "22003"} and "vector" in type(exc).__name__.lower():
        return InvalidVectorError(str(exc.args[0]) if exc.args else "invalid vector")
    return None
