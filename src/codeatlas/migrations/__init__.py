"""Embedded schema migrations: the engine, and the ``.sql`` files shipped beside it."""

from ._engine import (
    LEDGER_TABLE,
    STATES,
    ApplyResult,
    Migration,
    MigrationStatus,
    Migrator,
    RollbackResult,
    check_target,
    dropped_tables,
    load_migrations,
)

__all__ = [
    "LEDGER_TABLE",
    "STATES",
    "ApplyResult",
    "Migration",
    "MigrationStatus",
    "Migrator",
    "RollbackResult",
    "check_target",
    "dropped_tables",
    "load_migrations",
]
