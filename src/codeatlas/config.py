"""Settings, read from arguments and ``CODEATLAS_*`` environment variables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final, Literal
from urllib.parse import unquote

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "DsnSyntaxError",
    "Settings",
    "default_data_dir",
    "dsn_problem",
    "dsn_secrets",
    "redact_dsn",
]


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
    #: Seconds between two background flushes of semantic-cache hits into
    #: ``semantic_cache.hit_count`` / ``last_accessed`` while there are any; the stored
    #: columns lag by about this much. 0 disables it (call ``flush_hits()`` yourself).
    semantic_cache_flush_interval: float = Field(default=30.0, ge=0)
    #: Seconds between two attempts to take the migration lock.
    migration_lock_poll_interval: float = Field(default=0.05, gt=0)
    #: Seconds one migration statement may run before it is cancelled (None: no limit).
    #: Migrations do not use ``command_timeout``: building an index on a large table can
    #: take far longer than any query should.
    migration_statement_timeout: float | None = Field(default=None, gt=0)

    #: What ``dsn`` points at: ``"transaction"`` for a transaction-mode pooler (pgbouncer
    #: ``pool_mode = transaction``): prepared statements are not cached
    #: (``statement_cache_size`` 0) and migrations and index builds, which need a session,
    #: run over ``migration_dsn`` only. ``"session"``: a session-mode pooler (migrations
    #: may run through it). ``None``: a server; a pooler found in between (its cancel key
    #: is not the backend's pid) is then refused for migrations.
    pooler: Literal["transaction", "session"] | None = None
    #: DSN of a session on the primary (direct, or a session-mode pooler) for migrations
    #: and index builds; defaults to ``dsn``. Required when ``pooler`` is ``"transaction"``.
    migration_dsn: SecretStr | None = None
    #: Read replicas (hot standbys of the primary), comma-separated DSNs.
    replica_dsns: SecretStr | None = None
    #: ``"session"``: after this Atlas commits a write, its reads go to a replica only once
    #: the replica has replayed that write. ``"eventual"``: any replica within
    #: ``max_replica_lag`` serves reads, which may not show this Atlas's latest writes.
    consistency: Literal["session", "eventual"] = "session"
    #: Seconds a replica may lag behind the primary before it is taken out of rotation.
    max_replica_lag: float = Field(default=5.0, gt=0)
    #: Seconds a read waits for a replica to replay this Atlas's last write (then: primary).
    replica_wait: float = Field(default=0.05, ge=0)
    #: Seconds a replica stays out of rotation after it failed, lagged or was promoted.
    replica_retry_after: float = Field(default=5.0, gt=0)
    #: Seconds between two health checks (recovery state, replay position) of a replica.
    replica_check_interval: float = Field(default=1.0, gt=0)

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

    def migration_dsn_value(self) -> str | None:
        """Return ``migration_dsn`` in clear text, for the driver only (never log it)."""
        return self.migration_dsn.get_secret_value() if self.migration_dsn is not None else None

    def replica_dsn_values(self) -> list[str]:
        """Return the replica DSNs in clear text (``replica_dsns`` split on commas)."""
        if self.replica_dsns is None:
            return []
        return [
            part.strip() for part in self.replica_dsns.get_secret_value().split(",") if part.strip()
        ]


_URL_PREFIX: Final = re.compile(r"^\s*(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://")
#: A query-string key (``?password=``, ``&sslpassword=``); the key may be percent-encoded.
_QUERY_KEY: Final = re.compile(r"[?&](?P<key>[^=&?#]*)=")
_SECRET_KEYS: Final = frozenset({"password", "sslpassword"})
_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MASK: Final = "***"


class DsnSyntaxError(ValueError):
    """A DSN could not be parsed; the message says what was wrong, never the DSN's text."""


def redact_dsn(dsn: str) -> str:
    """Return *dsn* with every password replaced by ``***``.

    Handles URLs (``postgresql://user:pass@host/db?password=...``, several hosts, unencoded
    ``#``, ``/``, ``@`` or ``?`` in the password) and libpq key=value strings (spaces around
    ``=``, quoted values). A DSN that is neither comes back as ``<unparseable DSN: reason>``,
    the reason never quoting the text.
    """
    try:
        return _redact(dsn)
    except DsnSyntaxError as exc:
        return f"<unparseable DSN: {exc}>"


def dsn_problem(dsn: str) -> str | None:
    """Return why *dsn* is not a URL or key=value DSN (without its text), or None if it parses."""
    try:
        _redact(dsn)
    except DsnSyntaxError as exc:
        return str(exc)
    return None


def dsn_secrets(dsn: str) -> list[str]:
    """Return the parts of *dsn* that redact_dsn hides, raw and percent-decoded.

    For scrubbing text that may quote them (a driver's message). A DSN that does not
    parse counts as secret whole, and so does whatever sits between its first ``:`` and
    last ``@``.
    """
    secrets: list[str] = []
    try:
        _redact(dsn, secrets)
    except DsnSyntaxError:
        secrets = [dsn.strip()]
        secrets.extend(dsn[begin:end] for begin, end in _url_masks(dsn, 0))
    secrets += [unquote(secret) for secret in secrets]
    return sorted({secret for secret in secrets if secret.strip()}, key=len, reverse=True)


def _redact(dsn: str, secrets: list[str] | None = None) -> str:
    url = _URL_PREFIX.match(dsn)
    if url is not None:
        return _redact_url(dsn, url.end(), secrets)
    if "=" in dsn:
        return _redact_keywords(dsn, secrets)
    if "://" in dsn:
        raise DsnSyntaxError("the scheme before '://' is missing or malformed")
    if re.match(r"^\s*[A-Za-z][A-Za-z0-9+.\-]*:?/", dsn) or re.match(
        r"^\s*[A-Za-z][A-Za-z0-9+.\-]*:", dsn
    ):
        raise DsnSyntaxError("the scheme must be followed by '://' (postgresql://...)")
    raise DsnSyntaxError("neither a postgresql:// URL nor key=value pairs")


def _redact_url(dsn: str, start: int, secrets: list[str] | None = None) -> str:
    at = dsn.rfind("@")
    if at > start and dsn[at - 1] == ":" and dsn.find(":", start, at) == at - 1:
        dsn = dsn[: at - 1] + dsn[at:]  # an empty password: "user:@host" reads "user@host"
    result: list[str] = []
    position = 0
    for begin, end in _url_masks(dsn, start):
        result.append(dsn[position:begin])
        result.append(_MASK)
        if secrets is not None:
            secrets.append(dsn[begin:end])
        position = end
    result.append(dsn[position:])
    return "".join(result)


def _url_masks(dsn: str, start: int) -> list[tuple[int, int]]:
    """Return the (merged, ordered) stretches of *dsn* some parser could read as a password.

    Over-masking is fine, showing a secret is not: the user-info password runs from the
    first ``:`` of the authority to the *last* ``@`` of the whole string (an unencoded ``@``,
    ``/``, ``?`` or ``#`` in a password moves every other boundary), and a ``password=``
    query value runs to the end of the string (an unencoded ``&`` may be part of it).
    """
    masked: list[tuple[int, int]] = []
    at = dsn.rfind("@")
    if at >= start:
        colon = dsn.find(":", start, at)
        if colon != -1:
            masked.append((colon + 1, at))
    for match in _QUERY_KEY.finditer(dsn, start):
        if unquote(match.group("key")).strip().lower() in _SECRET_KEYS:
            masked.append((match.end(), len(dsn)))
            break
    merged: list[tuple[int, int]] = []
    for begin, end in sorted(masked):
        if merged and begin <= merged[-1][1]:  # overlaps the previous stretch: extend it
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        elif end > begin:
            merged.append((begin, end))
    return merged


def _redact_keywords(dsn: str, secrets: list[str] | None = None) -> str:
    """Re-render a libpq ``key = value`` string with secret values masked."""
    pairs: list[str] = []
    position, length = 0, len(dsn)
    while True:
        while position < length and dsn[position].isspace():
            position += 1
        if position >= length:
            break
        key = _KEY.match(dsn, position)
        ordinal = len(pairs) + 1
        if key is None:
            raise DsnSyntaxError(f"key=value DSN: item {ordinal} does not start with a key name")
        position = key.end()
        while position < length and dsn[position].isspace():
            position += 1
        if position >= length or dsn[position] != "=":
            raise DsnSyntaxError(f"key=value DSN: item {ordinal} has no '=' after its key")
        position += 1
        while position < length and dsn[position].isspace():
            position += 1
        value: list[str] = []
        value_start = position
        if position < length and dsn[position] == "'":
            position += 1
            while True:
                if position >= length:
                    raise DsnSyntaxError(
                        f"key=value DSN: item {ordinal} has an unterminated quoted value"
                    )
                char = dsn[position]
                if char == "\\" and position + 1 < length:
                    value.append(dsn[position + 1])
                    position += 2
                    continue
                position += 1
                if char == "'":
                    break
                value.append(char)
        else:
            while position < length and not dsn[position].isspace():
                if dsn[position] == "\\" and position + 1 < length:
                    position += 1
                value.append(dsn[position])
                position += 1
        name = key.group()
        if name.lower() in _SECRET_KEYS:
            pairs.append(f"{name}={_MASK}")
            if secrets is not None:
                secrets += [dsn[value_start:position], "".join(value)]
        else:
            text = "".join(value)
            if not text or any(c.isspace() or c in "'\\" for c in text):
                text = "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
            pairs.append(f"{name}={text}")
    if not pairs:
        raise DsnSyntaxError("key=value DSN without any key")
    return " ".join(pairs)
