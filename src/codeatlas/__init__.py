"""codeatlas: an async PostgreSQL + pgvector data layer for code-intelligence agents.

async with codeatlas.connect() as atlas:
    ...
"""

from . import errors
from .atlas import Atlas, Migrations, Scope, Transaction, connect
from .config import Settings
from .errors import (
    CodeAtlasError,
    ConfigurationError,
    ConnectionLostError,
    CycleError,
    DatabaseError,
    DeadlockDetectedError,
    ImmutableRowError,
    InsufficientResourcesError,
    InvalidFilterError,
    InvalidInputError,
    InvalidVectorError,
    LockNotAvailableError,
    MigrationError,
    NotFoundError,
    OutcomeUnknownError,
    QueryCanceledError,
    ReadOnlyServerError,
    RunFinishedError,
    SerializationFailureError,
    ServerUnreachableError,
    StateConflictError,
    StatementTimeoutError,
    TemplateChecksumError,
    TransactionAbortedError,
    TransactionConflictError,
    UniqueConflictError,
)
from .migrations import ApplyResult, MigrationStatus, RollbackResult

__version__ = "0.2.1"

__all__ = [
    "ApplyResult",
    "Atlas",
    "CodeAtlasError",
    "ConfigurationError",
    "ConnectionLostError",
    "CycleError",
    "DatabaseError",
    "DeadlockDetectedError",
    "ImmutableRowError",
    "InsufficientResourcesError",
    "InvalidFilterError",
    "InvalidInputError",
    "InvalidVectorError",
    "LockNotAvailableError",
    "MigrationError",
    "MigrationStatus",
    "Migrations",
    "NotFoundError",
    "OutcomeUnknownError",
    "QueryCanceledError",
    "ReadOnlyServerError",
    "RollbackResult",
    "RunFinishedError",
    "Scope",
    "SerializationFailureError",
    "ServerUnreachableError",
    "Settings",
    "StateConflictError",
    "StatementTimeoutError",
    "TemplateChecksumError",
    "Transaction",
    "TransactionAbortedError",
    "TransactionConflictError",
    "UniqueConflictError",
    "__version__",
    "connect",
    "errors",
]
