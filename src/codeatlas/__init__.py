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
    ImmutableRowError,
    InvalidFilterError,
    InvalidInputError,
    InvalidVectorError,
    MigrationError,
    NotFoundError,
    RunFinishedError,
    StateConflictError,
    TemplateChecksumError,
    UniqueConflictError,
)
from .migrations import ApplyResult, MigrationStatus, RollbackResult

__version__ = "0.1.0"

__all__ = [
    "ApplyResult",
    "Atlas",
    "CodeAtlasError",
    "ConfigurationError",
    "ConnectionLostError",
    "CycleError",
    "ImmutableRowError",
    "InvalidFilterError",
    "InvalidInputError",
    "InvalidVectorError",
    "MigrationError",
    "MigrationStatus",
    "Migrations",
    "NotFoundError",
    "RollbackResult",
    "RunFinishedError",
    "Scope",
    "Settings",
    "StateConflictError",
    "TemplateChecksumError",
    "Transaction",
    "UniqueConflictError",
    "__version__",
    "connect",
    "errors",
]
