"""Settings, read from arguments and ``CODEATLAS_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default_data_dir", "redact_dsn"]


def default_data_dir() -> Path:
    """Return the per-user directory where the embedded server keeps its data."""
    return Path(platformdirs.user_data_dir("codeatlas", appauthor=False)) / "pgdata"


class Settings(BaseSettings):
    """Every knob codeatlas reads; each field is also ``CODEATLAS_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="CODEATLAS_", extra="forbid")

    #: PostgreSQL DSN. When unset, codeatlas starts an embedded server in ``data_dir``.
    dsn: SecretStr | None = None
    #: Data directory of the embedded server (used only when ``dsn`` is unset).
    data_dir: Path = Field(default_factory=default_data_dir)

    pool_min_size: int = Field(default=1, ge=0, le=1000)
    pool_max_size: int = Field(default=10, ge=1, le=1000)
    #: Seconds before a single statement is cancelled client-side (None: no limit).
    command_timeout: float | None = Field(default=60.0, gt=0)
    #: asyncpg prepared-statement cache size; 0 for pgbouncer in transaction mode.
    statement_cache_size: int = Field(default=100, ge=0)
    application_name: str = Field(default="codeatlas", max_length=63)
    #: Seconds a process waits for another process' migration run before MigrationLockTimeout.
    migration_lock_timeout: float = Field(default=60.0, gt=0)
    #: Seconds a cache-through search result (``search_similar(cache=True)``) stays valid.
    similarity_cache_ttl: float = Field(default=300.0, gt=0)
    #: Seconds between two attempts to take the migration lock.
    migration_lock_poll_interval: float = Field(default=0.05, gt=0)

    @field_validator("pool_max_size")
    @classmethod
    def _max_not_below_min(cls, value: int, info: object) -> int:
        data = getattr(info, "data", {})
        if value < data.get("pool_min_size", 0):
            raise ValueError("pool_max_size must be >= pool_min_size")
        return value

    def dsn_value(self) -> str | None:
        """Return the DSN in clear text, for the driver only (never log it)."""
        return self.dsn.get_secret_value() if self.dsn is not None else None


def redact_dsn(dsn: str) -> str:
    """Return *dsn* with any password replaced by ``***`` (``user:***@host``)."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "<unparseable DSN>"
    if not parts.scheme:
        # key=value form: drop password=... entirely
        return " ".join(
            "password=***" if item.lower().startswith("password=") else item for item in dsn.split()
        )
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, _, password = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if password else f"{user}@{host}"
    query = "&".join(
        "password=***" if item.lower().startswith("password=") else item
        for item in parts.query.split("&")
        if item
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
