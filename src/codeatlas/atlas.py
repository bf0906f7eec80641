"""``connect()`` and ``Atlas``: the pool, the migrations, and the repositories."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager
from functools import cached_property
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import unquote, urlsplit

import asyncpg
from asyncpg.pool import Pool

from . import telemetry
from ._db import Executor, translated
from ._pool import (
    behind_pooler,
    bootstrap,
    create_pool,
    endpoint_of,
    open_connection,
    parse_version,
)
from ._routing import Replica, Router, RoutingStats
from ._server import EmbeddedServer, get_embedded_server
from ._state import AtlasState
from .cache import SimilarityCache
from .config import Settings, dsn_problem, redact_dsn
from .errors import ConfigurationError
from .indexes import Indexes
from .migrations import ApplyResult, MigrationStatus, Migrator, RollbackResult
from .repositories.code import CodeRepository
from .repositories.codebases import CodebasesRepository
from .repositories.git import GitRepository
from .repositories.graph import GraphRepository
from .repositories.quality import QualityRepository
from .repositories.rag import RagRepository
from .repositories.rules import RulesRepository
from .repositories.semantic_cache import HitFlusher, SemanticCache
from .repositories.snapshots import SnapshotsRepository
from .repositories.technology import TechnologyRepository
from .repositories.vector_search import VectorSearchRepository

__all__ = ["Atlas", "Migrations", "Scope", "Transaction", "connect", "resolve_dsn"]

#: Database created inside the embedded server for codeatlas' tables.
EMBEDDED_DATABASE: Final = "codeatlas"
#: Seconds ``Atlas.close()`` waits for busy connections before terminating them.
_CLOSE_TIMEOUT: Final = 30.0
#: Seconds connecting to a replica may take before the read goes to the primary instead.
_REPLICA_CONNECT_TIMEOUT: Final = 3.0


class Scope:
    """The repositories, bound to one executor (the pool, or a transaction's connection).

    Repositories are built on first use (no I/O); a transaction's scope builds its own,
    bound to the transaction's connection.
    """

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    @cached_property
    def codebases(self) -> CodebasesRepository:
        """Codebase registry (``.registry``) and per-file metadata (searchable, 1536-d)."""
        return CodebasesRepository(self._executor)

    @cached_property
    def snapshots(self) -> SnapshotsRepository:
        """Append-only codebase snapshots."""
        return SnapshotsRepository(self._executor)

    @cached_property
    def graph(self) -> GraphRepository:
        """Graph nodes (searchable, 1536-d), ``.edges`` and ``.types``; traversal, PageRank."""
        return GraphRepository(self._executor)

    @cached_property
    def vector_search(self) -> VectorSearchRepository:
        """Embedded content chunks per file (searchable, 1536-d)."""
        return VectorSearchRepository(self._executor)

    @cached_property
    def code(self) -> CodeRepository:
        """``.files``, ``.embeddings`` and ``.locations`` (both searchable, 768-d)."""
        return CodeRepository(self._executor)

    @cached_property
    def rag(self) -> RagRepository:
        """``.documents``, ``.queries`` (both searchable, 768-d) and ``.feedback``."""
        return RagRepository(self._executor)

    @cached_property
    def rules(self) -> RulesRepository:
        """Rules (searchable, 768-d), ``.executions`` and ``.proposals`` with voting."""
        return RulesRepository(self._executor)

    @cached_property
    def quality(self) -> QualityRepository:
        """Quality runs and their immutable ``.findings``."""
        return QualityRepository(self._executor)

    @cached_property
    def technology(self) -> TechnologyRepository:
        """Technology patterns and ``.templates``."""
        return TechnologyRepository(self._executor)

    @cached_property
    def git(self) -> GitRepository:
        """Agent ``.sessions``, the ``.pending`` merge queue and merge ``.history``."""
        return GitRepository(self._executor)

    @cached_property
    def similarity_cache(self) -> SimilarityCache:
        """Cache-through storage behind ``search_similar(..., cache=True)``."""
        return SimilarityCache(self._executor)

    @cached_property
    def semantic_cache(self) -> SemanticCache:
        """Reuse of answers to similar questions (``lookup`` / ``store``)."""
        return SemanticCache(self._executor)

    @property
    def executor(self) -> Executor:
        """The executor repositories of this scope run on (for raw SQL when needed).

        A pooled connection it used goes back with the pool's full reset (caller SQL may
        leave session state); codeatlas' own calls skip that round trip when they can.
        """
        return self._executor.for_caller()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """Yield the repositories bound to one connection; all of it commits or rolls back.

        Nested use opens a savepoint. Its connection goes back with the pool's full reset.
        """
        async with self._executor.for_caller().transaction() as executor:
            yield Transaction(executor)


class Transaction(Scope):
    """Repositories inside ``atlas.transaction()``: everything commits or rolls back together."""


class Migrations:
    """``atlas.migrations``: status, apply and rollback on the connected database.

    They run over the session DSN (``migration_dsn``, else the DSN): never a replica, and
    never a transaction-mode pooler (the migration lock is a session advisory lock).
    """

    def __init__(
        self,
        dsn: str,
        settings: Settings,
        pool: Pool | None = None,
        *,
        session_dsn: str | None = None,
    ) -> None:
        self._migrator = Migrator(session_dsn or dsn, settings=settings)
        self._session_dsn = session_dsn
        self._settings = settings
        self._pool = pool

    async def status(self) -> list[MigrationStatus]:
        """Return every migration with its state (applied, pending, changed, missing)."""
        return await self._migrator.status()

    async def apply(self, *, to: int | None = None) -> ApplyResult:
        """Apply pending migrations; pooled connections drop their cached statements after."""
        await check_session(self._session_dsn, self._settings)
        result = await self._migrator.apply(to=to)
        if result.applied:
            await self._expire()
        return result

    async def rollback(self, *, to: int, allow_data_loss: bool = False) -> RollbackResult:
        """Revert every migration newer than *to*, newest first."""
        await check_session(self._session_dsn, self._settings)
        result = await self._migrator.rollback(to=to, allow_data_loss=allow_data_loss)
        if result.reverted:
            await self._expire()
        return result

    async def _expire(self) -> None:
        # Cached prepared statements and codecs may describe tables that changed.
        if self._pool is not None:
            await self._pool.expire_connections()


class Atlas(Scope):
    """A connected codeatlas: repositories over a pool, plus migrations and lifecycle."""

    def __init__(
        self,
        *,
        dsn: str,
        settings: Settings,
        pool: Pool,
        server: EmbeddedServer | None,
        state: AtlasState,
        router: Router | None = None,
        session_dsn: str | None = None,
    ) -> None:
        super().__init__(Executor(pool=pool, state=state, router=router))
        self._dsn = dsn
        self.settings = settings
        self.pool = pool
        self.server = server
        self._router = router
        self.migrations = Migrations(dsn, settings, pool, session_dsn=session_dsn)
        # index maintenance reads build progress and the catalog as the primary has them,
        # and its own connections need a session (SET maintenance_work_mem, CONCURRENTLY)
        self.indexes = Indexes(self._executor.on_primary(), session_dsn or dsn, settings)
        # pending semantic-cache hits reach the stored columns on their own (no task yet)
        self._hit_flusher = HitFlusher(
            self._executor.on_primary(), settings.semantic_cache_flush_interval, state.pending_hits
        )
        state.on_semantic_cache_hit = self._hit_flusher.note_hit

    @property
    def replica_pools(self) -> list[Pool]:
        """The pools of the read replicas (empty without replicas)."""
        return [replica.pool for replica in self._router.replicas] if self._router else []

    @property
    def routing(self) -> RoutingStats:
        """Where reads went since connecting (replica, primary, fallbacks, waits)."""
        return self._router.stats if self._router is not None else RoutingStats()

    @property
    def dsn(self) -> str:
        """The DSN with its password redacted (the clear one is never exposed)."""
        return redact_dsn(self._dsn)

    async def close(self) -> None:
        """Close the pool (the embedded server keeps running for other users).

        The background flush of semantic-cache hits stops first, with a last flush of what
        is pending (bounded in time). Connections that cannot close cleanly (a broken
        server) are terminated.
        """
        await self._hit_flusher.close()
        for pool in [self.pool, *self.replica_pools]:
            try:
                await asyncio.wait_for(pool.close(), _CLOSE_TIMEOUT)
            except Exception:
                pool.terminate()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        kind = "embedded" if self.server is not None else "external"
        return f"<Atlas {kind} {self.dsn}>"


async def _ensure_database(server: EmbeddedServer, settings: Settings) -> str:
    connection = await open_connection(server.dsn("postgres"), settings)
    try:
        with translated(connection):
            exists = await connection.fetchval(
                "SELECT true FROM pg_database WHERE datname = $1", EMBEDDED_DATABASE
            )
            if not exists:
                # another process may create it first
                with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                    await connection.execute(f'CREATE DATABASE "{EMBEDDED_DATABASE}"')
    finally:
        await _close_quietly(connection)
    return server.dsn(EMBEDDED_DATABASE)


async def _close_quietly(connection: asyncpg.Connection) -> None:
    """Close a direct connection; one that broke is terminated instead (nothing to report)."""
    try:
        await connection.close(timeout=5)
    except Exception:
        connection.terminate()


async def resolve_dsn(dsn: str | None, settings: Settings) -> tuple[str, EmbeddedServer | None]:
    """Return the DSN to use: the argument, ``CODEATLAS_DSN``, else the embedded server's."""
    chosen = dsn or settings.dsn_value() or os.environ.get("CODEATLAS_DSN") or None
    if chosen:
        return chosen, None
    server = get_embedded_server(settings.data_dir)
    return await _ensure_database(server, settings), server


async def check_session(session_dsn: str | None, settings: Settings) -> None:
    """Refuse (ConfigurationError) to migrate without a session on the primary.

    Migrations hold a session advisory lock across many statements: a transaction-mode
    pooler would run them on different backends, and a standby refuses DDL. Checked on
    one connection: a pooler in between shows as a cancel key that is not the backend's
    pid (allowed when ``pooler="session"`` says the pooler keeps sessions).
    """
    if session_dsn is None:
        raise ConfigurationError(
            'migrations need a session, and pooler="transaction" says the DSN goes through '
            "a transaction-mode pooler: give migration_dsn (CODEATLAS_MIGRATION_DSN), a DSN "
            "straight to the primary, or connect with migrate=False"
        )
    connection = await open_connection(session_dsn, settings)
    try:
        pooled = settings.pooler != "session" and await behind_pooler(connection)
        with translated(connection):
            standby = await connection.fetchval("SELECT pg_is_in_recovery()")
    finally:
        await _close_quietly(connection)
    where = redact_dsn(session_dsn)
    if standby:
        raise ConfigurationError(
            f"migrations must run on the primary, and {where} is a read-only standby: "
            "point migration_dsn (or the DSN) at the primary"
        )
    if pooled:
        raise ConfigurationError(
            f"migrations need a session, and {where} reaches the server through a pooler: "
            "give migration_dsn (CODEATLAS_MIGRATION_DSN), a DSN straight to the primary; "
            'if that pooler runs in session mode, say so with pooler="session"'
        )


_DBNAME: Final = re.compile(r"\bdbname\s*=\s*('[^']*'|\S+)")


def database_of(dsn: str) -> str:
    """Return the database name *dsn* names ("" when it names none: the user's default)."""
    try:
        if "://" in dsn:
            path = urlsplit(dsn).path.lstrip("/")
            return unquote(path.split("/", 1)[0])
        match = _DBNAME.search(dsn)
        return match.group(1).strip("'") if match else ""
    except ValueError:
        return ""


def _checked_dsns(dsns: list[str], what: str) -> list[str]:
    for position, item in enumerate(dsns, 1):
        if not isinstance(item, str) or not item.strip():
            raise ConfigurationError(f"{what} {position} is not a DSN")
        problem = dsn_problem(item)
        if problem is not None:
            raise ConfigurationError(f"{what} {position}: {problem}")
    return dsns


async def _open_replicas(
    dsns: list[str], settings: Settings, pool_options: dict[str, Any]
) -> list[Replica]:
    """Create one pool per replica; no connection opens yet (min_size 0), so a replica that
    is down at connect time costs nothing: the router finds out on first use."""
    replicas: list[Replica] = []
    # a replica that does not answer must not hold a read up for long: the primary is there
    options = {"timeout": _REPLICA_CONNECT_TIMEOUT, **pool_options, "min_size": 0}
    try:
        for position, dsn in enumerate(dsns, 1):
            host, port = endpoint_of(dsn)
            pool = await create_pool(dsn, settings, **options)
            replicas.append(Replica(f"{position} ({host}:{port})", pool))
    except BaseException:
        for replica in replicas:
            replica.pool.terminate()
        raise
    return replicas


async def _open(
    dsn: str | None,
    migrate: bool,
    settings: Settings | None,
    pool_options: dict[str, Any],
    replicas: list[str] | None = None,
    migration_dsn: str | None = None,
) -> Atlas:
    settings = settings or Settings()
    telemetry.instrument()  # looks for OpenTelemetry once; without it, nothing changes
    resolved, server = await resolve_dsn(dsn, settings)
    session_dsn = migration_dsn or settings.migration_dsn_value()
    if session_dsn is not None:
        _checked_dsns([session_dsn], "migration_dsn")
    elif settings.pooler != "transaction":
        session_dsn = resolved
    replica_dsns = _checked_dsns(
        list(replicas) if replicas is not None else settings.replica_dsn_values(), "replica"
    )
    if migrate:
        await check_session(session_dsn, settings)
        assert session_dsn is not None
        await Migrator(session_dsn, settings=settings).apply()
    else:
        connection = await open_connection(resolved, settings)
        try:
            await bootstrap(connection)
        finally:
            await _close_quietly(connection)
    pool = await create_pool(resolved, settings, **pool_options)
    state = AtlasState(
        similarity_cache_ttl=settings.similarity_cache_ttl,
        endpoint=endpoint_of(resolved),
        database=database_of(resolved),
    )
    router: Router | None = None
    try:
        version = await Executor(pool=pool, state=state).fetchval(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        )
        if replica_dsns:
            router = Router(
                primary=pool,
                replicas=await _open_replicas(replica_dsns, settings, pool_options),
                consistency=settings.consistency,
                max_lag=settings.max_replica_lag,
                wait=settings.replica_wait,
                retry_after=settings.replica_retry_after,
                check_interval=settings.replica_check_interval,
            )
    except BaseException:
        pool.terminate()
        raise
    state.pgvector_version = parse_version(str(version))
    return Atlas(
        dsn=resolved,
        settings=settings,
        pool=pool,
        server=server,
        state=state,
        router=router,
        session_dsn=session_dsn,
    )


class _Connect:
    """What ``connect()`` returns: await it, or use it as ``async with``."""

    def __init__(
        self,
        dsn: str | None,
        migrate: bool,
        settings: Settings | None,
        pool_options: dict[str, Any],
        replicas: list[str] | None = None,
        migration_dsn: str | None = None,
    ) -> None:
        self._args = (dsn, migrate, settings, pool_options, replicas, migration_dsn)
        self._atlas: Atlas | None = None

    def __await__(self) -> Generator[Any, None, Atlas]:
        return _open(*self._args).__await__()

    async def __aenter__(self) -> Atlas:
        self._atlas = await _open(*self._args)
        return self._atlas

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._atlas is not None:
            await self._atlas.close()


def connect(
    dsn: str | None = None,
    *,
    migrate: bool = True,
    settings: Settings | None = None,
    replicas: list[str] | None = None,
    migration_dsn: str | None = None,
    **pool_options: Any,
) -> _Connect:
    """Connect to *dsn* (else ``CODEATLAS_DSN``, else the embedded server) and migrate.

    Use ``async with codeatlas.connect() as atlas:`` or ``atlas = await codeatlas.connect()``
    followed by ``await atlas.close()``. *pool_options* go to ``asyncpg.create_pool``.
    *replicas* (else ``CODEATLAS_REPLICA_DSNS``) are hot standbys that serve reads;
    *migration_dsn* (else ``CODEATLAS_MIGRATION_DSN``, else *dsn*) is where migrations and
    index builds run: a session on the primary (see docs/scaling.md).
    """
    if replicas is not None and (
        isinstance(replicas, str) or not isinstance(replicas, list | tuple)
    ):
        raise ConfigurationError("replicas must be a list of DSNs")
    return _Connect(
        dsn,
        migrate,
        settings,
        pool_options,
        list(replicas) if replicas is not None else None,
        migration_dsn,
    )
