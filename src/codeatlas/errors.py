"""Every error codeatlas raises, and the one place driver errors are translated.

The tree::

    CodeAtlasError
    ├── ConfigurationError            bad settings or DSN, refused credentials, missing database
    ├── EmbeddedServerError           the embedded PostgreSQL could not start
    ├── ExtensionError                pgvector missing, not creatable, or too old
    ├── ConnectionLostError           the connection broke; nothing was committed (retryable)
    │   └── ServerUnreachableError    connecting failed: host not found, refused, timeout
    ├── OutcomeUnknownError           a write or COMMIT got no reply: it may have committed
    ├── ReadOnlyServerError           the server is a read-only standby, 25006 (retryable)
    ├── TransactionConflictError      rolled back to resolve a conflict (retryable)
    │   ├── SerializationFailureError 40001, a SERIALIZABLE / REPEATABLE READ conflict
    │   ├── DeadlockDetectedError     40P01
    │   └── LockNotAvailableError     55P03, NOWAIT or lock_timeout
    ├── QueryCanceledError            57014: statement_timeout or pg_cancel_backend
    │   └── StatementTimeoutError     the client's command_timeout expired
    ├── InsufficientResourcesError    53xxx: disk full, out of memory, too many connections
    ├── DatabaseError                 any other server error; ``sqlstate`` says which
    │   └── TransactionAbortedError   25P02: an earlier statement failed, roll the transaction back
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
    ├── EmbedderError                 an embedding source failed (retryable: 429, 5xx, timeout)
    └── InvalidInputError (ValueError)
        ├── InvalidVectorError        wrong dimension, NaN/Inf, zero vector
        └── InvalidFilterError        unknown filter key or malformed filter value

``retryable`` is True when running the same call again may succeed and cannot apply it
twice. An ``OutcomeUnknownError`` is not retryable: only the caller knows whether its write
is idempotent (an upsert on the natural key is; see docs/errors.md). Errors are classified
by exception class and SQLSTATE, never by message text. Messages never include passwords.
``asyncio.CancelledError``, ``KeyboardInterrupt`` and ``SystemExit`` are never translated.
"""

from __future__ import annotations

from socket import gaierror
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
    "DatabaseError",
    "DeadlockDetectedError",
    "EmbeddedServerError",
    "EmbedderError",
    "ExtensionError",
    "ForeignKeyViolationError",
    "ImmutableRowError",
    "InsufficientResourcesError",
    "IntegrityError",
    "InvalidFilterError",
    "InvalidInputError",
    "InvalidVectorError",
    "LockNotAvailableError",
    "MigrationError",
    "MigrationFailedError",
    "MigrationLockTimeout",
    "MissingMigrationError",
    "NotFoundError",
    "OutcomeUnknownError",
    "QueryCanceledError",
    "ReadOnlyServerError",
    "RunFinishedError",
    "SchemaNotReadyError",
    "SerializationFailureError",
    "ServerUnreachableError",
    "StateConflictError",
    "StatementTimeoutError",
    "TemplateChecksumError",
    "TransactionAbortedError",
    "TransactionConflictError",
    "UniqueConflictError",
    "connect_error",
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
    """The connection broke before anything was committed (server restart, terminated backend).

    A read, a statement that was never sent, or a transaction that had not reached COMMIT:
    the server rolled it back. The pool replaces broken connections, so retrying is safe.
    """

    retryable = True


class ServerUnreachableError(ConnectionLostError):
    """No connection could be opened: host not found, nothing listening, timeout, starting up."""


class OutcomeUnknownError(CodeAtlasError):
    """A write (or COMMIT) was sent and the connection broke before its reply came.

    It may have committed or not. Not retryable as such: retry only a write that is
    idempotent (an upsert on its natural key), or read back to find out.
    """


class ReadOnlyServerError(CodeAtlasError):
    """The server refused a write because it is read-only (a hot standby, SQLSTATE 25006).

    Retryable: after a failover the DSN may reach a writable primary.
    """

    retryable = True


class TransactionConflictError(CodeAtlasError):
    """The server rolled the statement or transaction back to resolve a conflict; retry it."""

    retryable = True


class SerializationFailureError(TransactionConflictError):
    """A concurrent transaction's writes conflict with this one's reads (SQLSTATE 40001)."""


class DeadlockDetectedError(TransactionConflictError):
    """Two transactions waited on each other's locks; this one was chosen to fail (40P01)."""


class LockNotAvailableError(TransactionConflictError):
    """A lock could not be taken in time: NOWAIT or ``lock_timeout`` (SQLSTATE 55P03)."""


class QueryCanceledError(CodeAtlasError):
    """The server cancelled the statement: ``statement_timeout`` or ``pg_cancel_backend`` (57014).

    The statement failed as a whole; in a transaction, roll the transaction back.
    """


class StatementTimeoutError(QueryCanceledError):
    """The client's ``command_timeout`` (or a ``timeout=``) expired; the statement was cancelled."""


class InsufficientResourcesError(CodeAtlasError):
    """The server lacks resources: disk full, out of memory, too many connections (53xxx).

    ``retryable`` is True for out of memory and too many connections, which pass on their own.
    """


class DatabaseError(CodeAtlasError):
    """The server refused the statement for a reason no more specific error names.

    ``sqlstate`` holds the server's five-character code.
    """

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class TransactionAbortedError(DatabaseError):
    """An earlier statement of the transaction failed (25P02): roll the transaction back."""


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


class EmbedderError(CodeAtlasError):
    """An embedding source failed: the model did not load, or an embedding API refused.

    ``status`` is the HTTP status when an API answered; ``retryable`` is True for a rate
    limit (429), a server error (5xx), a timeout or a broken connection.
    """

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class InvalidInputError(CodeAtlasError, ValueError):
    """The caller's input is invalid; nothing was written.

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


#: Server errors after which the session is gone (class 08 is matched as a class).
_SESSION_GONE: Final = frozenset(
    {
        "57P01",  # admin_shutdown: pg_terminate_backend, fast shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now: starting up or shutting down
        "57P04",  # database_dropped
        "57P05",  # idle_session_timeout
        "25P03",  # idle_in_transaction_session_timeout (FATAL: the session ends)
        "25P04",  # transaction_timeout (PostgreSQL 17, FATAL)
    }
)
_CONFLICTS: Final[dict[str, type[TransactionConflictError]]] = {
    "40001": SerializationFailureError,
    "40P01": DeadlockDetectedError,
    "55P03": LockNotAvailableError,
    "40000": TransactionConflictError,
}
#: 53xxx states that pass without an operator: out of memory, too many connections.
_RESOURCES_RETRYABLE: Final = frozenset({"53200", "53300"})
#: Server states where running the same statement again may succeed.
_RETRYABLE_OTHER: Final = frozenset({"0A000"})  # cached plan invalidated by a schema change


def translate_db_error(
    exc: BaseException, *, write_in_flight: bool = False
) -> CodeAtlasError | None:
    """Return the codeatlas error for a driver or socket exception, or None.

    None means *exc* is not the driver's: ``asyncio.CancelledError``, ``KeyboardInterrupt``,
    ``SystemExit`` (which must propagate unchanged) and errors of the caller's own code.
    *write_in_flight* says a write or COMMIT had been sent without its reply arriving yet,
    so a broken connection leaves its outcome unknown.
    """
    if not isinstance(exc, Exception):
        return None
    if isinstance(exc, CodeAtlasError):
        return exc
    if isinstance(exc, asyncpg.PostgresError):
        return _translate_server_error(exc, write_in_flight)
    if isinstance(exc, asyncpg.exceptions._base.DataError):
        # raised by the driver while encoding an argument: nothing reached the server
        return InvalidInputError(f"a query argument could not be sent: {_text(exc)}")
    if isinstance(exc, asyncpg.exceptions.ClientConfigurationError):
        return ConfigurationError(f"invalid connection settings: {type(exc).__name__}")
    if isinstance(
        exc,
        asyncpg.exceptions.UnsupportedServerFeatureError
        | asyncpg.exceptions.UnsupportedClientFeatureError,
    ):
        return DatabaseError(f"the server does not support what was asked: {_text(exc)}")
    if isinstance(exc, asyncpg.InterfaceError):
        # raised before anything is sent: the connection is closed, was released to the pool
        # when it broke, or is busy; nothing of this statement reached the server
        return ConnectionLostError(f"connection to PostgreSQL is unusable: {_text(exc)}")
    if isinstance(exc, asyncpg.exceptions.OutdatedSchemaCacheError):
        if write_in_flight:
            return _lost(exc, write_in_flight)
        error = DatabaseError(f"the schema changed under a cached statement: {_text(exc)}")
        error.retryable = True
        return error
    if isinstance(exc, asyncpg.InternalClientError):
        # the protocol state is unknown (e.g. "cannot switch to state 15"): the connection is
        # discarded, and whatever was in flight may or may not have run
        return _lost(exc, write_in_flight)
    if isinstance(exc, TimeoutError):  # before OSError: TimeoutError is one
        if write_in_flight:
            return OutcomeUnknownError(
                "the statement timed out after it was sent and was cancelled; it may have "
                "committed first: retry only an idempotent write, or read back to find out"
            )
        return StatementTimeoutError("the statement exceeded command_timeout and was cancelled")
    if isinstance(exc, OSError):
        return _lost(exc, write_in_flight)
    return None


def _text(exc: BaseException) -> str:
    return str(exc.args[0]) if exc.args else type(exc).__name__


def _lost(exc: BaseException, write_in_flight: bool, what: str = "") -> CodeAtlasError:
    reason = what or type(exc).__name__
    if write_in_flight:
        return OutcomeUnknownError(
            f"connection to PostgreSQL lost after a write was sent ({reason}): it may or may "
            "not have committed; retry only an idempotent write, or read back to find out"
        )
    return ConnectionLostError(f"connection to PostgreSQL lost ({reason})")


def _translate_server_error(exc: asyncpg.PostgresError, write_in_flight: bool) -> CodeAtlasError:
    sqlstate = getattr(exc, "sqlstate", None) or ""
    table = getattr(exc, "table_name", None)
    constraint = getattr(exc, "constraint_name", None)
    detail = getattr(exc, "detail", None)
    message = _text(exc)
    if sqlstate.startswith("08") or sqlstate in _SESSION_GONE:
        return _lost(exc, write_in_flight, f"SQLSTATE {sqlstate}: {message}")
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
    if sqlstate.startswith("23") or sqlstate == "40002":
        column = getattr(exc, "column_name", None)
        what = f"{table}.{column}" if column else f"{table}"
        return ConstraintViolationError(
            f"constraint violated on {what} ({constraint or sqlstate}): {message}",
            constraint=constraint,
            table=table,
        )
    if sqlstate == IMMUTABLE_ROW_SQLSTATE:
        return ImmutableRowError(message or "row is immutable")
    if sqlstate == "42P01":
        return SchemaNotReadyError(f"{message}: run `codeatlas migrate`")
    if sqlstate == "25006":
        return ReadOnlyServerError(
            f"the server is read-only (a hot standby, or default_transaction_read_only): {message}"
        )
    if sqlstate in _CONFLICTS:
        return _CONFLICTS[sqlstate](f"{message} (SQLSTATE {sqlstate}): retry the transaction")
    if sqlstate == "40003":
        return OutcomeUnknownError(f"{message} (SQLSTATE 40003): the outcome is unknown")
    if sqlstate == "57014":
        return QueryCanceledError(f"the server cancelled the statement: {message}")
    if sqlstate.startswith("53"):
        resources = InsufficientResourcesError(f"the server is out of resources: {message}")
        resources.retryable = sqlstate in _RESOURCES_RETRYABLE
        return resources
    if sqlstate.startswith(("22", "54")):
        # a value the server could not take (class 22) or one beyond its limits (54)
        return InvalidInputError(f"the server rejected a value (SQLSTATE {sqlstate}): {message}")
    if sqlstate.startswith("28") or sqlstate == "3D000":
        return ConfigurationError(f"{message} (SQLSTATE {sqlstate})")
    if sqlstate == "25P02":
        return TransactionAbortedError(
            "an earlier statement of this transaction failed: roll the transaction back",
            sqlstate=sqlstate,
        )
    error = DatabaseError(f"{message} (SQLSTATE {sqlstate or 'unknown'})", sqlstate=sqlstate)
    error.retryable = sqlstate in _RETRYABLE_OTHER
    return error


def connect_error(exc: Exception, *, endpoint: tuple[str, str], dsn: str = "") -> CodeAtlasError:
    """Return the error for a failed attempt to open a connection to *endpoint* (host, port).

    Messages say what happened in words; the driver's own text is never used (it can
    contain the DSN). *dsn*, already redacted, is appended for context.
    """
    host, port = endpoint
    where = (
        (f"{host}/.s.PGSQL.{port}" if host.startswith("/") else f"{host}:{port}") if port else host
    )
    context = f" ({dsn})" if dsn else ""
    if isinstance(exc, CodeAtlasError):
        return exc
    if isinstance(exc, gaierror):
        return ServerUnreachableError(f"host not found: {host}{context}")
    if isinstance(exc, ConnectionRefusedError | FileNotFoundError):
        return ServerUnreachableError(f"nothing listens on {where}{context}")
    if isinstance(exc, TimeoutError):
        return ServerUnreachableError(f"connecting to {where} timed out{context}")
    if isinstance(exc, OSError):
        if exc.strerror:
            reason = exc.strerror
        elif isinstance(exc, ConnectionError):
            reason = "the connection was closed during the handshake"
        else:
            reason = "no address accepted the connection"
        return ServerUnreachableError(f"cannot connect to {where}: {reason}{context}")
    if isinstance(exc, asyncpg.CannotConnectNowError):
        return ServerUnreachableError(
            f"the server at {where} is starting up or shutting down{context}"
        )
    if isinstance(
        exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError
    ):
        return ConfigurationError(f"PostgreSQL at {where} refused the credentials{context}")
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return ConfigurationError(f"database does not exist{context or f' at {where}'}")
    if isinstance(exc, asyncpg.exceptions.PostgresConnectionError | asyncpg.InterfaceError):
        if isinstance(exc, asyncpg.exceptions.ClientConfigurationError):
            return ConfigurationError(f"invalid DSN: {dsn or 'unparseable'}")
        return ServerUnreachableError(f"the connection to {where} broke while connecting{context}")
    if isinstance(exc, asyncpg.PostgresError):
        translated = _translate_server_error(exc, False)
        if isinstance(translated, DatabaseError | InsufficientResourcesError):
            translated.args = (f"connecting to {where}: {translated.args[0]}",)
        return translated
    if isinstance(exc, ValueError):
        return ConfigurationError(f"invalid DSN: {dsn or 'unparseable'}")
    return ServerUnreachableError(f"cannot connect to {where}: {type(exc).__name__}{context}")
