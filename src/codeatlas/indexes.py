"""Vector index lifecycle: status and advice, rebuild per strategy, bulk loads, recall, tuning.

Each searchable table's vector index has a kind (``codeatlas.index_strategies``: IVFFlat,
HNSW, or a quantised HNSW/IVFFlat re-ranked exactly). ``status()`` says when a rebuild pays
off (an IVFFlat index built on an empty table, as the seed's migrations do, has meaningless
centroids); ``rebuild()`` builds a replacement of any kind concurrently and swaps it in
under the index's name in one short transaction; ``bulk_load()`` moves the index out of
the way for a large load and builds it after; ``measure_recall()`` compares index answers
with exact ones; ``tune()`` stores the smallest value of the strategy's knob that meets a
recall target on the caller's queries, logged queries or perturbed stored rows, in the
database so every process uses it; ``compare()`` measures every strategy on a copy of the
table's data and can apply the fastest that meets the target.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ._db import Executor, translated
from ._pool import PackedVector, endpoint_of, open_connection
from ._server import machine
from .config import Settings
from .errors import InvalidInputError
from .index_strategies import (
    DEFAULT_EF_CONSTRUCTION,
    DEFAULT_M,
    KINDS,
    MAX_EF_SEARCH,
    MAX_OVERFETCH,
    STRATEGIES,
    SearchPlan,
    build_sql,
    ranked_sql,
    read_plan,
    search_settings,
)
from .models import TABLES, VectorIndex
from .models._types import validate_vector
from .repositories._base import check_count
from .search import MAX_PROBES, recommended_lists

__all__ = [
    "BULK_LOAD_MIN_ROWS",
    "KINDS",
    "VECTOR_INDEXES",
    "BulkLoad",
    "CompareEntry",
    "CompareResult",
    "IndexProgress",
    "IndexStatus",
    "Indexes",
    "RebuildResult",
    "RecallReport",
    "TuneProgress",
    "TuneResult",
    "VectorIndex",
]


#: table -> its vector index, for every searchable table (by table name). Derived from the
#: row models' ``__table_spec__`` (where each index is declared once); the identifiers that
#: index maintenance puts in SQL come from this allow-list only.
VECTOR_INDEXES: Final[Mapping[str, VectorIndex]] = MappingProxyType(
    {
        table: model.__table_spec__.vector
        for table, model in TABLES.items()
        if model.__table_spec__.vector is not None
    }
)

#: Tables whose schema logs the queries asked of them: table -> (log table, vector column).
#: ``tune`` measures on those when there are enough, since they are what users ask.
QUERY_LOGS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {"rag_documents": ("rag_queries", "query_embedding")}
)
#: Logged queries needed before ``tune`` prefers them to perturbed stored rows.
_MIN_LOGGED: Final = 30

#: Rows a load must bring (and at least as many as its table holds) before ``loading``
#: moves the table's index out of the way: below that, keeping the index costs less than
#: building it again.
BULK_LOAD_MIN_ROWS: Final = 10_000

#: Norm of the noise added to sampled vectors to make recall queries (cosine ~0.9 to origin).
_QUERY_NOISE: Final = 0.5
#: Query vectors per statement of a recall pass (each statement stays well inside
#: command_timeout even when every query is an exact scan of a large table).
_QUERIES_PER_STATEMENT: Final = 16
#: A rebuild is advised when the row count moved by this factor since the build...
_DRIFT_FACTOR: Final = 2.0
#: ...or the index was built on fewer rows than this while the table now has more.
_NEARLY_EMPTY: Final = 1000
_MB: Final = 1024 * 1024
#: Seconds an index build may take. Not ``command_timeout`` (60 s by default), which an
#: HNSW build of a large table outlasts (asyncpg reads ``timeout=None`` as that default).
_BUILD_TIMEOUT: Final = 7 * 24 * 3600.0

_INDEX_FACTS: Final = """
SELECT i.indisvalid                            AS valid,
       pg_relation_size(i.indexrelid)          AS size_bytes,
       am.amname                               AS method,
       coalesce((SELECT option_value::int
                   FROM pg_options_to_table(c.reloptions)
                  WHERE option_name = 'lists'), 100) AS lists
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_am am   ON am.oid = c.relam
 WHERE i.indexrelid = to_regclass($1)"""
_REGISTRY: Final = """
SELECT rows_at_build, built_at, default_probes, default_ef_search, overfetch, tuned_recall
  FROM codeatlas_vector_indexes WHERE index_name = $1"""
_RECORD_BUILD: Final = """
INSERT INTO codeatlas_vector_indexes
       (index_name, table_name, column_name, dimensions, lists, rows_at_build, built_at,
        strategy, params)
VALUES ($1, $2, $3, $4, $5, $6, now(), $7, $8::jsonb)
ON CONFLICT (index_name) DO UPDATE
   SET lists = EXCLUDED.lists, rows_at_build = EXCLUDED.rows_at_build, built_at = now(),
       strategy = EXCLUDED.strategy, params = EXCLUDED.params,
       default_probes = NULL, default_ef_search = NULL, overfetch = NULL,
       tuned_recall = NULL, tuned_at = NULL"""
#: One statement per knob (a closed set); a registry row is made for an index no build
#: recorded (adopted from the Elixir migrations), so the tuned value is never lost.
_STORE_TUNING: Final = {
    column: f"""
INSERT INTO codeatlas_vector_indexes
       (index_name, table_name, column_name, dimensions, lists, strategy, {column},
        tuned_recall, tuned_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
ON CONFLICT (index_name) DO UPDATE
   SET {column} = EXCLUDED.{column}, tuned_recall = EXCLUDED.tuned_recall, tuned_at = now()"""
    for column in ("default_probes", "default_ef_search", "overfetch")
}
_KNOB_COLUMN: Final = {
    "probes": "default_probes",
    "ef_search": "default_ef_search",
    "overfetch": "overfetch",
}
_PROGRESS: Final = """
SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total
  FROM pg_stat_progress_create_index WHERE pid = $1"""
_FORGET_CACHED: Final = """
DELETE FROM vector_similarity_cache WHERE starts_with(target_file_path, $1 || ':')"""


@dataclass(frozen=True, slots=True)
class IndexStatus:
    """State of one vector index and whether rebuilding it is advised (and why)."""

    table: str
    index: str
    rows: int
    #: IVFFlat lists (0 for HNSW kinds, which have none)
    lists: int
    #: lists advised for the rows (0 for HNSW kinds)
    recommended_lists: int
    rows_at_build: int | None
    valid: bool
    size_bytes: int
    default_probes: int | None
    tuned_recall: float | None
    rebuild_advised: bool
    reason: str
    #: the index's kind, read from the catalog (see codeatlas.index_strategies)
    strategy: str = "ivfflat"
    default_ef_search: int | None = None
    overfetch: int | None = None


@dataclass(frozen=True, slots=True)
class IndexProgress:
    """A build's progress as ``pg_stat_progress_create_index`` reports it."""

    table: str
    phase: str
    done: int
    total: int


@dataclass(frozen=True, slots=True)
class RebuildResult:
    """One rebuilt index: its kind, lists, the rows it was built on, and how long it took."""

    table: str
    index: str
    lists: int
    rows: int
    seconds: float
    strategy: str = "ivfflat"
    #: the build's parameters ({"lists": n} or {"m": n, "ef_construction": n})
    params: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecallReport:
    """Mean recall@k of the index against exact search over *sample* query vectors."""

    table: str
    k: int
    #: the value of the strategy's knob measured (probes, ef_search or overfetch)
    probes: int
    sample: int
    recall: float
    #: lower end of a ~95% confidence interval of the mean (mean - 2 standard errors)
    recall_low: float
    index_ms_per_query: float
    exact_ms_per_query: float
    strategy: str = "ivfflat"
    knob: str = "probes"


@dataclass(frozen=True, slots=True)
class TuneResult:
    """The knob value stored as a table's default, with the recall measured at each tried."""

    table: str
    #: the chosen value of the strategy's knob (``knob`` names it)
    probes: int
    recall: float
    target: float
    tried: dict[int, float]
    strategy: str = "ivfflat"
    knob: str = "probes"
    #: where the query vectors came from: ``caller``, a log column such as
    #: ``rag_queries.query_embedding``, or ``stored rows (perturbed)``
    sample_source: str = "stored rows (perturbed)"
    sample: int = 0


@dataclass(frozen=True, slots=True)
class TuneProgress:
    """Where ``tune()`` is, reported after each step of each table.

    ``step`` is ``sampling`` (choosing query vectors), ``exact`` (the ground truth, usually
    the slowest step), ``probes`` (one knob value measured: ``probes`` and ``recall``
    hold it; ``knob`` names the knob) or ``done`` (``probes`` and ``recall`` hold the
    stored choice).
    """

    table: str
    #: 1-based position of this table among the ``tables`` being tuned
    table_number: int
    tables: int
    step: str
    probes: int | None = None
    recall: float | None = None
    #: knob values measured so far for this table
    tried: int = 0
    #: the largest knob value tune can try (the index's lists, for IVFFlat)
    lists: int = 0
    knob: str = "probes"


@dataclass(frozen=True, slots=True)
class CompareEntry:
    """One strategy measured by ``compare``: its build, tuned knob, recall and latency."""

    strategy: str
    build_seconds: float
    size_bytes: int
    knob: str
    value: int
    recall: float
    recall_low: float
    p50_ms: float
    #: the tuned value's recall (lower confidence bound) meets the target
    meets_target: bool
    #: no other strategy is both faster and more accurate
    on_frontier: bool = False


@dataclass(frozen=True, slots=True)
class CompareResult:
    """Every strategy measured on the same rows and queries; the chosen one if any met it."""

    table: str
    rows: int
    target: float
    sample_source: str
    sample: int
    #: fastest first
    entries: tuple[CompareEntry, ...]
    #: the fastest strategy that meets the target (None: none did)
    chosen: str | None
    #: set when ``apply=True`` rebuilt the table's index with the chosen strategy
    applied: RebuildResult | None = None
    tuned: TuneResult | None = None

    @property
    def frontier(self) -> tuple[CompareEntry, ...]:
        """Return the entries no other beats on both recall and latency, fastest first."""
        return tuple(entry for entry in self.entries if entry.on_frontier)


@dataclass(slots=True)
class BulkLoad:
    """What ``bulk_load`` did: the tables whose index it moved aside, and the rebuilds after."""

    tables: tuple[str, ...]
    results: list[RebuildResult] = field(default_factory=list)


def _advice(kind: str, rows: int, lists: int, rows_at_build: int | None) -> tuple[bool, str]:
    if rows == 0:
        return False, "empty table"
    if STRATEGIES[kind].method == "hnsw":
        # a graph index takes every insert in place: no centroids to go stale
        return False, "ok"
    if rows_at_build is None:
        return True, "no build recorded"
    if rows_at_build < _NEARLY_EMPTY <= rows:
        return True, f"built on {rows_at_build} rows, now {rows}: centroids are not meaningful"
    if rows_at_build >= _NEARLY_EMPTY and not (
        rows_at_build / _DRIFT_FACTOR <= rows <= rows_at_build * _DRIFT_FACTOR
    ):
        return True, f"rows changed from {rows_at_build} to {rows} since the build"
    recommended = recommended_lists(rows)
    if rows >= 10 * _NEARLY_EMPTY and not (recommended / 4 <= lists <= recommended * 4):
        return True, f"{lists} lists for {rows} rows (recommended {recommended})"
    return False, "ok"


def _is_local(dsn: str) -> bool:
    """True when *dsn* reaches a server on this machine (a socket path or a loopback host)."""
    host = endpoint_of(dsn)[0]
    return host.startswith("/") or host in {"", "localhost", "127.0.0.1", "::1"}


def build_session_settings(
    kind: str, rows: int, dimensions: int, m: int, *, local: bool
) -> dict[str, str]:
    """Return the session settings an index build of *kind* over *rows* runs with.

    ``maintenance_work_mem`` is what the build needs: an HNSW graph that does not fit is
    built on disk, several times slower; IVFFlat's k-means wants far less. On a server of
    this machine it is capped at a quarter of memory and parallel workers follow the CPUs;
    on another server (whose size is unknown) the cap is 1 GB and its own worker setting
    stays.
    """
    strategy = STRATEGIES[kind]
    host = machine()
    cap = max(64 * _MB, host.memory // 4) if local else 1024 * _MB
    if strategy.method == "hnsw":
        element = {"none": 4 * dimensions, "halfvec": 2 * dimensions}.get(
            strategy.quantization, dimensions // 8
        )
        # the element, its neighbour lists (2m on layer 0, ~m above) and the tuple overhead
        needed = int(rows * (element + 12 * m + 160) * 1.3)
    else:
        needed = 256 * _MB
    memory = max(64 * _MB, min(needed, cap))
    settings = {"maintenance_work_mem": f"{memory // _MB}MB"}
    if local:
        settings["max_parallel_maintenance_workers"] = str(max(0, min(host.cpus - 1, 7)))
    return settings


def _recall(
    approximate: Sequence[Sequence[object]], exact: Sequence[Sequence[object]], k: int
) -> tuple[float, float]:
    """Return the mean recall@k and the lower end of its ~95% confidence interval."""
    hits = np.array(
        [
            len(set(a) & set(e)) / min(k, len(e))
            for a, e in zip(approximate, exact, strict=True)
            if e
        ]
    )
    if not hits.size:
        return 0.0, 0.0
    return float(hits.mean()), float(hits.mean() - 2 * hits.std() / np.sqrt(hits.size))


def _check_sampling(sample: object, k: object, seed: object) -> None:
    """Refuse a sample size, k or seed of the wrong type or range, naming which."""
    check_count(sample, field="sample", low=1, high=10_000)
    check_count(k, field="k", low=1, high=1000)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise InvalidInputError(f"seed must be a non-negative integer or None, got {seed!r:.40}")


class Indexes:
    """``atlas.indexes``: status, rebuild, bulk loads, recall, tuning and strategy comparison."""

    def __init__(self, executor: Executor, dsn: str, settings: Settings) -> None:
        self._executor = executor
        self._dsn = dsn
        self._settings = settings
        self._local = _is_local(dsn)

    @staticmethod
    def _targets(table: str | None) -> list[VectorIndex]:
        if table is None:
            return list(VECTOR_INDEXES.values())
        if table not in VECTOR_INDEXES:
            raise InvalidInputError(
                f"{table!r} has no vector index; tables with one: {', '.join(VECTOR_INDEXES)}"
            )
        return [VECTOR_INDEXES[table]]

    async def status(self) -> list[IndexStatus]:
        """Return every vector index with its kind, size, lists, build facts and advice."""
        result = []
        for index in self._targets(None):
            facts = await self._executor.fetchrow(_INDEX_FACTS, index.name)
            registry = await self._executor.fetchrow(_REGISTRY, index.name)
            plan = await read_plan(self._executor, index.name)
            hnsw = plan.strategy.method == "hnsw"
            rows = await self._count(index)
            lists = 0 if facts is None or hnsw else int(facts["lists"])
            rows_at_build = registry["rows_at_build"] if registry else None
            advised, reason = (
                _advice(plan.kind, rows, lists, rows_at_build)
                if facts
                else (True, "index is missing")
            )
            if facts is not None and not facts["valid"]:
                advised, reason = True, "index is INVALID (a crashed concurrent build)"
            result.append(
                IndexStatus(
                    table=index.table,
                    index=index.name,
                    rows=rows,
                    lists=lists,
                    recommended_lists=0 if hnsw else recommended_lists(rows),
                    rows_at_build=rows_at_build,
                    valid=bool(facts and facts["valid"]),
                    size_bytes=facts["size_bytes"] if facts else 0,
                    default_probes=registry["default_probes"] if registry else None,
                    tuned_recall=registry["tuned_recall"] if registry else None,
                    rebuild_advised=advised,
                    reason=reason,
                    strategy=plan.kind,
                    default_ef_search=registry["default_ef_search"] if registry else None,
                    overfetch=registry["overfetch"] if registry else None,
                )
            )
        return result

    async def _count(self, index: VectorIndex) -> int:
        # identifiers from the VECTOR_INDEXES allow-list (or compare's scratch table)
        return int(
            await self._executor.fetchval(
                f"SELECT count(*) FROM {index.table} WHERE {index.column} IS NOT NULL"
            )
        )

    # -- rebuild ---------------------------------------------------------------------------

    @staticmethod
    def _check_build(
        kind: str | None, lists: int | None, m: int | None, ef_construction: int | None
    ) -> None:
        if kind is not None and kind not in STRATEGIES:
            raise InvalidInputError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        for name, value, low, high in (
            ("lists", lists, 1, 32768),
            ("m", m, 2, 100),
            ("ef_construction", ef_construction, 4, 1000),
        ):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high
            ):
                raise InvalidInputError(f"{name} must be an integer within {low}..{high}")
        if ef_construction is not None and ef_construction < 2 * (m or DEFAULT_M):
            raise InvalidInputError("ef_construction must be at least twice m")

    async def rebuild(
        self,
        table: str | None = None,
        *,
        kind: str | None = None,
        lists: int | None = None,
        m: int | None = None,
        ef_construction: int | None = None,
        concurrently: bool = True,
        on_progress: Callable[[IndexProgress], None] | None = None,
    ) -> list[RebuildResult]:
        """Build a replacement for each vector index (all when *table* is None) and swap it in.

        *kind* is one of ``KINDS`` (default: the index's current kind); *lists* (IVFFlat)
        defaults to the advice for the current row count, *m* and *ef_construction* (HNSW)
        to pgvector's 16 and 64. Concurrent builds keep the table readable and writable, the
        swap is one short transaction, so readers always have a valid index; progress is
        read from ``pg_stat_progress_create_index``.
        """
        self._check_build(kind, lists, m, ef_construction)
        results = []
        for index in self._targets(table):
            chosen = kind or (await read_plan(self._executor, index.name)).kind
            results.append(
                await self._rebuild_one(
                    index, chosen, lists, m, ef_construction, concurrently, on_progress
                )
            )
        self._executor.state.probe_defaults.clear()
        return results

    async def _rebuild_one(
        self,
        index: VectorIndex,
        kind: str,
        lists: int | None,
        m: int | None,
        ef_construction: int | None,
        concurrently: bool,
        on_progress: Callable[[IndexProgress], None] | None,
        *,
        record: bool = True,
    ) -> RebuildResult:
        started = time.perf_counter()
        rows = await self._count(index)
        strategy = STRATEGIES[kind]
        if strategy.method == "ivfflat":
            params = {"lists": lists or recommended_lists(rows)}
        else:
            params = {
                "m": m or DEFAULT_M,
                "ef_construction": ef_construction or max(DEFAULT_EF_CONSTRUCTION, 2 * (m or 0)),
            }
        replacement = f"{index.name}_rebuild"
        retired = f"{index.name}_retired"
        build = build_sql(
            kind,
            replacement,
            index,
            concurrently=concurrently,
            lists=params.get("lists", 0),
            m=params.get("m", DEFAULT_M),
            ef_construction=params.get("ef_construction", DEFAULT_EF_CONSTRUCTION),
        )
        session = build_session_settings(
            kind, rows, index.dimensions, params.get("m", DEFAULT_M), local=self._local
        )
        record_args = (
            index.name,
            index.table,
            index.column,
            index.dimensions,
            params.get("lists", 0),
            rows,
            kind,
            json.dumps(params),
        )
        connection = await open_connection(self._dsn, self._settings)
        try:
            with translated(connection):
                # session-level: this connection only, and it is closed after the build
                for name, value in session.items():
                    await connection.execute(f"SET {name} = '{value}'")
                # leftovers of a build or swap that was interrupted
                await connection.execute(f"DROP INDEX IF EXISTS {replacement}")
                await connection.execute(f"DROP INDEX IF EXISTS {retired}")
                pid = await connection.fetchval("SELECT pg_backend_pid()")
                watcher = (
                    asyncio.create_task(self._watch(index.table, pid, on_progress))
                    if on_progress is not None
                    else None
                )
                try:
                    if concurrently:
                        await connection.execute(build, timeout=_BUILD_TIMEOUT)
                    async with connection.transaction():
                        if not concurrently:
                            await connection.execute(build, timeout=_BUILD_TIMEOUT)
                        # the swap: two renames, so a reader finds a valid index under the
                        # name at every moment (the old one until the commit, then the new)
                        await connection.execute("SET LOCAL lock_timeout = '30s'")
                        await connection.execute(
                            f"ALTER INDEX IF EXISTS {index.name} RENAME TO {retired}"
                        )
                        await connection.execute(
                            f"ALTER INDEX {replacement} RENAME TO {index.name}"
                        )
                        if record:
                            await connection.execute(_RECORD_BUILD, *record_args)
                        await connection.execute(_FORGET_CACHED, index.table)
                    drop = "DROP INDEX CONCURRENTLY" if concurrently else "DROP INDEX"
                    await connection.execute(f"{drop} IF EXISTS {retired}")
                finally:
                    if watcher is not None:
                        watcher.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await watcher
        finally:
            await connection.close()
        return RebuildResult(
            index.table,
            index.name,
            params.get("lists", 0),
            rows,
            time.perf_counter() - started,
            kind,
            params,
        )

    async def _watch(
        self, table: str, pid: int, on_progress: Callable[[IndexProgress], None]
    ) -> None:
        while True:
            row = await self._executor.fetchrow(_PROGRESS, pid)
            if row is not None:
                done, total = row["blocks_done"], row["blocks_total"]
                if not total:
                    done, total = row["tuples_done"], row["tuples_total"]
                on_progress(IndexProgress(table, row["phase"], int(done), int(total)))
            await asyncio.sleep(0.2)

    # -- bulk loads ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def bulk_load(
        self,
        tables: str | Sequence[str],
        *,
        kind: str | None = None,
        on_progress: Callable[[IndexProgress], None] | None = None,
    ) -> AsyncIterator[BulkLoad]:
        """Load *tables* with their vector index out of the way, and build it after.

        On entry each table's index is dropped (concurrently: readers keep using it until
        no transaction needs it, then search by exact scan, which is correct, never an
        error); rows written in the block then cost no index maintenance, and on exit the
        index is built concurrently for the new row count (lists for it), in its previous
        kind or *kind*, and the table analysed. If the block raises, the index is built
        all the same before the error propagates; if it is cancelled, ``status()`` reports
        the index missing and ``rebuild()`` restores it.
        """
        names = [tables] if isinstance(tables, str) else list(tables)
        targets = [index for name in names for index in self._targets(name)]
        if not targets:
            raise InvalidInputError("bulk_load needs at least one table")
        self._check_build(kind, None, None, None)
        kinds = {
            index.name: kind or (await read_plan(self._executor, index.name)).kind
            for index in targets
        }
        done = BulkLoad(tuple(index.table for index in targets))
        connection = await open_connection(self._dsn, self._settings)
        try:
            with translated(connection):
                for index in targets:
                    await connection.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index.name}")
        finally:
            await connection.close()
        self._executor.state.probe_defaults.clear()
        try:
            yield done
        except asyncio.CancelledError:
            raise
        except BaseException:
            await self._build_after(targets, kinds, on_progress, done)
            raise
        await self._build_after(targets, kinds, on_progress, done)

    @contextlib.asynccontextmanager
    async def loading(
        self,
        rows: Mapping[str, int],
        *,
        on_progress: Callable[[IndexProgress], None] | None = None,
    ) -> AsyncIterator[BulkLoad | None]:
        """Wrap a load of *rows* (table -> rows about to be written) in ``bulk_load`` where it pays.

        A table is bulk-loaded when the load brings at least ``BULK_LOAD_MIN_ROWS`` rows and
        at least as many as it holds (a first index of a large tree); the others load with
        their index in place. Yields the BulkLoad, or None when no table qualified.
        """
        chosen = [
            table
            for table, count in rows.items()
            if table in VECTOR_INDEXES
            and count >= BULK_LOAD_MIN_ROWS
            and count >= await self._count(VECTOR_INDEXES[table])
        ]
        if not chosen:
            yield None
            return
        async with self.bulk_load(chosen, on_progress=on_progress) as load:
            yield load

    async def _build_after(
        self,
        targets: Sequence[VectorIndex],
        kinds: Mapping[str, str],
        on_progress: Callable[[IndexProgress], None] | None,
        done: BulkLoad,
    ) -> None:
        for index in targets:
            # statistics first: the planner must know the table grew to choose the index
            await self._executor.execute(f"ANALYZE {index.table}")
            done.results.append(
                await self._rebuild_one(
                    index, kinds[index.name], None, None, None, True, on_progress
                )
            )
        self._executor.state.probe_defaults.clear()

    # -- recall ----------------------------------------------------------------------------

    async def measure_recall(
        self,
        table: str,
        *,
        sample: int = 200,
        k: int = 10,
        probes: int | None = None,
        seed: int | None = None,
    ) -> RecallReport:
        """Return mean recall@k of index search against exact search for *sample* stored vectors.

        *probes* is the value of the strategy's knob to measure (default: the tuned one).
        """
        index = self._targets(table)[0]
        _check_sampling(sample, k, seed)
        if probes is not None:
            check_count(probes, field="probes", low=1, high=MAX_PROBES)
        queries = await self._sample(index, sample, seed)
        if not queries:
            raise InvalidInputError(f"{table} has no vectors to measure recall with")
        plan = await read_plan(self._executor, index.name)
        chosen = probes or plan.knob
        exact, exact_ms = await self._neighbours(index, plan, queries, k, chosen, exact=True)
        return await self._measure(index, plan, queries, exact, exact_ms, k, chosen)

    async def _measure(
        self,
        index: VectorIndex,
        plan: SearchPlan,
        queries: Sequence[np.ndarray],
        exact: Sequence[Sequence[object]],
        exact_ms: float,
        k: int,
        knob: int,
    ) -> RecallReport:
        """Compare index search at *knob* with the exact neighbours already computed."""
        approximate, index_ms = await self._neighbours(index, plan, queries, k, knob, exact=False)
        recall, low = _recall(approximate, exact, k)
        return RecallReport(
            table=index.table,
            k=k,
            probes=knob,
            sample=len(queries),
            recall=recall,
            recall_low=low,
            index_ms_per_query=index_ms / len(queries),
            exact_ms_per_query=exact_ms / len(queries),
            strategy=plan.kind,
            knob=plan.strategy.knob,
        )

    async def _sample(
        self, index: VectorIndex, sample: int, seed: int | None = None
    ) -> list[np.ndarray]:
        """Return query vectors near *sample* stored ones (cosine ~0.9 to their origin).

        A stored vector queried as is finds itself at distance 0, which flatters recall by
        about 1/k; a perturbed copy behaves like a fresh query from the same distribution.
        With a *seed*, the same rows and noise are chosen every time the data is the same.
        """
        stored = await self._stored_vectors(index.table, index.column, sample, seed)
        if stored is None:
            return []
        stored /= np.linalg.norm(stored, axis=1, keepdims=True)
        rng = np.random.default_rng(seed)
        noise = rng.standard_normal(stored.shape).astype(np.float32)
        noise *= np.float32(_QUERY_NOISE / np.sqrt(stored.shape[1]))
        queries = stored + noise
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        return list(queries)

    async def _stored_vectors(
        self, table: str, column: str, sample: int, seed: int | None
    ) -> npt.NDArray[np.float32] | None:
        """Return up to *sample* vectors of *table*.*column* (seeded choice), or None."""
        # identifiers from the allow-lists (VECTOR_INDEXES, QUERY_LOGS)
        order = "random()" if seed is None else "md5(id::text || $2)"
        rows = await self._executor.fetch(
            f"SELECT {column} AS v FROM {table} WHERE {column} IS NOT NULL "
            f"ORDER BY {order} LIMIT $1",
            sample,
            *(() if seed is None else (str(seed),)),
        )
        if not rows:
            return None
        return np.stack([np.asarray(row["v"], dtype=np.float32) for row in rows])

    async def _queries(
        self,
        index: VectorIndex,
        queries: Any,
        sample: int,
        seed: int | None,
        source_table: VectorIndex | None = None,
    ) -> tuple[list[np.ndarray], str]:
        """Return the query vectors to measure on and where they came from.

        The caller's *queries* when given; else logged queries of the table (QUERY_LOGS)
        when there are at least ``_MIN_LOGGED``; else perturbed stored rows (of
        *source_table*, default the index's own).
        """
        if queries is not None:
            if isinstance(queries, np.ndarray) and queries.ndim == 2:
                queries = list(queries)
            if isinstance(queries, str | bytes | np.ndarray) or not isinstance(queries, Sequence):
                raise InvalidInputError(
                    "queries must be a sequence of query vectors (or a 2-D array)"
                )
            if not 1 <= len(queries) <= 10_000:
                raise InvalidInputError("queries must hold 1..10000 query vectors")
            checked = [
                validate_vector(query, index.dimensions, field="queries") for query in queries
            ]
            return [np.asarray(q, dtype=np.float32) for q in checked], "caller"
        log = QUERY_LOGS.get(index.table)
        if log is not None:
            logged = await self._stored_vectors(log[0], log[1], sample, seed)
            if logged is not None and len(logged) >= min(sample, _MIN_LOGGED):
                logged /= np.linalg.norm(logged, axis=1, keepdims=True)
                return list(logged), f"{log[0]}.{log[1]}"
        return await self._sample(source_table or index, sample, seed), "stored rows (perturbed)"

    async def _neighbours(
        self,
        index: VectorIndex,
        plan: SearchPlan,
        queries: Sequence[np.ndarray],
        k: int,
        knob: int,
        *,
        exact: bool,
    ) -> tuple[list[list[object]], float]:
        """Return the primary keys of the k nearest rows for every query, and the elapsed ms."""
        # The exact statement orders by an expression no index can serve ("+ 0"), so it
        # differs from the approximate one: a shared statement could reuse a cached generic
        # plan made under the other pass's settings.
        hit = ranked_sql(
            plan,
            table=index.table,
            vec=f"t.{index.column}",
            dimensions=index.dimensions,
            columns="t.id",
            conditions=[f"t.{index.column} IS NOT NULL"],
            query_ref="q.query",
            limit="$2",
            knob=knob,
            exact=exact,
            alias="t.",
        )
        sql = (
            "SELECT q.ordinal, hit.id "
            "FROM unnest($1::vector[]) WITH ORDINALITY AS q(query, ordinal) "
            f"CROSS JOIN LATERAL ({hit}) AS hit"
        )
        packed = [PackedVector(q) for q in queries]
        started = time.perf_counter()
        # Measure the index itself: with a knob that reads much of the index the planner may
        # prefer a sequential scan, whose perfect recall would mislead `tune`.
        settings: dict[str, str] = {}
        if not exact:
            iterative = self._executor.state.iterative_scans
            settings = search_settings(plan, knob, k, iterative=iterative)
            settings["enable_seqscan"] = "off"
        grouped: list[list[object]] = [[] for _ in queries]
        async with self._executor.with_settings(settings) as tx:
            # a few queries per statement: 200 exact scans of 100k 1536-d rows in one
            # statement outlasted command_timeout (60 s) on a loaded 2-core machine
            for first in range(0, len(packed), _QUERIES_PER_STATEMENT):
                batch = packed[first : first + _QUERIES_PER_STATEMENT]
                for row in await tx.fetch(sql, batch, k):
                    grouped[first + row["ordinal"] - 1].append(row["id"])
        elapsed = (time.perf_counter() - started) * 1000
        return grouped, elapsed

    # -- tune ------------------------------------------------------------------------------

    async def tune(
        self,
        table: str | None = None,
        *,
        target_recall: float = 0.95,
        queries: Sequence[Any] | npt.NDArray[np.floating[Any]] | None = None,
        sample: int = 200,
        k: int = 10,
        seed: int | None = None,
        on_progress: Callable[[TuneProgress], None] | None = None,
    ) -> list[TuneResult]:
        """Find and store, per table, the smallest value of its index's knob meeting the target.

        The knob is the strategy's own: ``probes`` (IVFFlat), ``ef_search`` (HNSW) or the
        over-fetch of a quantised HNSW index. Recall is measured on *queries* (the caller's
        own query vectors; needs *table*), else on up to *sample* logged queries where the
        schema keeps them (``rag_queries.query_embedding`` for rag_documents), else on
        perturbed copies of stored rows; ``TuneResult.sample_source`` says which. A value
        meets the target when the lower end of the ~95% confidence interval of its mean
        recall does, so one lucky sample does not under-tune. A *seed* makes the sample,
        and so the choice, reproducible on the same data. *on_progress* is called after
        every step (see TuneProgress).
        """
        if isinstance(target_recall, bool) or not (
            isinstance(target_recall, int | float) and 0 < target_recall <= 1
        ):
            raise InvalidInputError(f"target_recall must be within (0, 1], got {target_recall}")
        _check_sampling(sample, k, seed)
        if queries is not None and table is None:
            raise InvalidInputError("queries need a table: they have that table's dimensions")
        targets = [index for index in self._targets(table) if await self._count(index) > 0]
        results = []
        for number, index in enumerate(targets, 1):
            chosen, source = await self._queries(index, queries, sample, seed)
            plan = await read_plan(self._executor, index.name)
            position = (number, len(targets))
            tuned, _ = await self._tune_one(
                index, plan, chosen, source, target_recall, k, position, on_progress
            )
            results.append(tuned)
        return results

    async def _knob_range(self, index: VectorIndex, plan: SearchPlan) -> int:
        """Return the largest value of the plan's knob worth trying on *index*."""
        knob = plan.strategy.knob
        if knob == "probes":
            facts = await self._executor.fetchrow(_INDEX_FACTS, index.name)
            return int(facts["lists"]) if facts else 100
        return MAX_EF_SEARCH if knob == "ef_search" else MAX_OVERFETCH

    async def _tune_one(
        self,
        index: VectorIndex,
        plan: SearchPlan,
        queries: Sequence[np.ndarray],
        source: str,
        target_recall: float,
        k: int,
        position: tuple[int, int] = (1, 1),
        on_progress: Callable[[TuneProgress], None] | None = None,
        *,
        store: bool = True,
        exact: tuple[list[list[object]], float] | None = None,
    ) -> tuple[TuneResult, float]:
        """Tune *plan*'s knob on *queries*; return the result and its recall's lower bound.

        *exact* is the queries' exact neighbours and their pass's ms, when already known.
        """
        knob = plan.strategy.knob
        highest = await self._knob_range(index, plan)
        tried: dict[int, float] = {}

        def report(step: str, value: int | None = None, recall: float | None = None) -> None:
            if on_progress is not None:
                on_progress(
                    TuneProgress(
                        index.table, *position, step, value, recall, len(tried), highest, knob
                    )
                )

        # A value qualifies when the lower confidence bound of its recall meets the target,
        # not just the sample mean: a sample's luck must not pick too small a value.
        lower: dict[int, float] = {}
        report("sampling")
        # one exact pass serves every value tried
        report("exact")
        if exact is None:
            exact = await self._neighbours(index, plan, queries, k, 1, exact=True)
        exact_ids, exact_ms = exact

        async def recall_at(value: int) -> float:
            if value not in tried:
                result = await self._measure(index, plan, queries, exact_ids, exact_ms, k, value)
                tried[value] = result.recall
                lower[value] = result.recall_low
                report("probes", value, result.recall)
            return lower[value]

        # doubling to bracket the target, then bisection inside the bracket; HNSW's
        # ef_search below k is raised to k anyway, so its bracket starts there
        low = k - 1 if knob == "ef_search" else 0
        high = low + 1
        while high < highest and await recall_at(high) < target_recall:
            low, high = high, min(high * 2, highest)
        while high - low > 1:
            middle = (low + high) // 2
            if await recall_at(middle) >= target_recall:
                high = middle
            else:
                low = middle
        await recall_at(high)
        recall = tried[high]
        if store:
            facts = await self._executor.fetchrow(_INDEX_FACTS, index.name)
            await self._executor.execute(
                _STORE_TUNING[_KNOB_COLUMN[knob]],
                index.name,
                index.table,
                index.column,
                index.dimensions,
                int(facts["lists"]) if facts and plan.strategy.method == "ivfflat" else 0,
                plan.kind,
                high,
                recall,
            )
            self._executor.state.probe_defaults.pop(index.name, None)
        report("done", high, recall)
        result = TuneResult(
            index.table,
            high,
            recall,
            target_recall,
            dict(sorted(tried.items())),
            plan.kind,
            knob,
            source,
            len(queries),
        )
        return result, lower[high]

    # -- compare ---------------------------------------------------------------------------

    async def compare(
        self,
        table: str,
        *,
        strategies: Sequence[str] | None = None,
        queries: Sequence[Any] | npt.NDArray[np.floating[Any]] | None = None,
        target_recall: float = 0.95,
        sample: int = 200,
        max_rows: int | None = None,
        k: int = 10,
        seed: int | None = None,
        apply: bool = False,
        on_progress: Callable[[str], None] | None = None,
    ) -> CompareResult:
        """Measure each strategy on a copy of *table*'s vectors; optionally apply the best.

        Each kind (default: all of ``KINDS``) is built on an unlogged copy of the table's
        vectors (at most *max_rows*, a seeded sample), its knob tuned to *target_recall* on
        the same queries (chosen as ``tune`` does) and its p50 latency measured at that
        value, one query at a time. The live index is untouched unless *apply*: then the
        fastest kind that met the target is built on the table (``rebuild``, concurrently)
        and tuned on the same queries. *on_progress* receives a line per step.
        """
        index = self._targets(table)[0]
        if strategies is not None and not isinstance(strategies, Sequence):
            raise InvalidInputError(f"strategies must be a list of kinds, got {strategies!r:.40}")
        _check_sampling(sample, k, seed)
        kinds = list(strategies) if strategies is not None else list(KINDS)
        if not kinds or len(set(kinds)) != len(kinds):
            raise InvalidInputError("strategies must name each kind once, at least one")
        for kind in kinds:
            self._check_build(kind, None, None, None)
        if not 0 < target_recall <= 1:
            raise InvalidInputError(f"target_recall must be within (0, 1], got {target_recall}")
        if max_rows is not None and (
            isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1
        ):
            raise InvalidInputError("max_rows must be a positive integer")

        def say(line: str) -> None:
            if on_progress is not None:
                on_progress(line)

        # a name of code's making: one per process, so two compares never share a copy
        scratch = VectorIndex(
            f"codeatlas_compare_{os.getpid()}",
            index.column,
            f"codeatlas_compare_{os.getpid()}_idx",
            index.dimensions,
        )
        await self._executor.execute(f"DROP TABLE IF EXISTS {scratch.table}")
        try:
            say(f"copying the vectors of {table}")
            limit = (
                "" if max_rows is None else f" ORDER BY md5(id::text || $1) LIMIT {int(max_rows)}"
            )
            await self._executor.execute(
                f"CREATE UNLOGGED TABLE {scratch.table} AS SELECT id, {index.column} "
                f"FROM {index.table} WHERE {index.column} IS NOT NULL{limit}",
                *(() if max_rows is None else (str(seed or 0),)),
            )
            await self._executor.execute(f"ANALYZE {scratch.table}")
            rows = await self._count(scratch)
            if rows == 0:
                raise InvalidInputError(f"{table} has no vectors to compare strategies on")
            chosen_queries, source = await self._queries(
                index, queries, sample, seed, source_table=scratch
            )
            # the exact neighbours depend on the data only: one pass serves every strategy
            say("exact neighbours of the queries")
            exact = await self._neighbours(
                scratch, SearchPlan(kinds[0]), chosen_queries, k, 1, exact=True
            )
            entries = []
            for kind in kinds:
                entries.append(
                    await self._compare_one(
                        scratch, kind, chosen_queries, exact, target_recall, k, say
                    )
                )
        finally:
            await self._executor.execute(f"DROP TABLE IF EXISTS {scratch.table}")
        entries.sort(key=lambda e: e.p50_ms)
        marked = []
        best_recall = -1.0
        for entry in entries:  # fastest first: on the frontier when more accurate than all faster
            marked.append(_with_frontier(entry, entry.recall > best_recall))
            best_recall = max(best_recall, entry.recall)
        meeting = [entry for entry in marked if entry.meets_target]
        chosen = meeting[0].strategy if meeting else None
        result = CompareResult(
            table, rows, target_recall, source, len(chosen_queries), tuple(marked), chosen
        )
        if apply and chosen is not None:
            say(f"building {chosen} on {table}")
            [applied] = await self.rebuild(table, kind=chosen)
            [tuned] = await self.tune(
                table, target_recall=target_recall, queries=chosen_queries, k=k
            )
            result = CompareResult(
                table,
                rows,
                target_recall,
                source,
                len(chosen_queries),
                tuple(marked),
                chosen,
                applied,
                tuned,
            )
        return result

    async def _compare_one(
        self,
        scratch: VectorIndex,
        kind: str,
        queries: Sequence[np.ndarray],
        exact: tuple[list[list[object]], float],
        target_recall: float,
        k: int,
        say: Callable[[str], None],
    ) -> CompareEntry:
        say(f"building {kind}")
        build = await self._rebuild_one(scratch, kind, None, None, None, False, None, record=False)
        await self._executor.execute(f"ANALYZE {scratch.table}")
        facts = await self._executor.fetchrow(_INDEX_FACTS, scratch.name)
        plan = SearchPlan(kind)
        say(f"tuning {kind}")
        tuned, recall_low = await self._tune_one(
            scratch, plan, queries, "", target_recall, k, store=False, exact=exact
        )
        latencies = await self._latencies(scratch, _plan_with(plan, tuned.probes), queries, k)
        await self._executor.execute(f"DROP INDEX IF EXISTS {scratch.name}")
        say(f"{kind}: {tuned.knob} {tuned.probes}, recall {tuned.recall:.3f}")
        return CompareEntry(
            strategy=kind,
            build_seconds=build.seconds,
            size_bytes=int(facts["size_bytes"]) if facts else 0,
            knob=tuned.knob,
            value=tuned.probes,
            recall=tuned.recall,
            recall_low=recall_low,
            p50_ms=statistics.median(latencies),
            meets_target=recall_low >= target_recall,
        )

    async def _latencies(
        self, index: VectorIndex, plan: SearchPlan, queries: Sequence[np.ndarray], k: int
    ) -> list[float]:
        """Return the milliseconds of each query searched alone, as a search would send it."""
        sql = ranked_sql(
            plan,
            table=index.table,
            vec=index.column,
            dimensions=index.dimensions,
            columns="id",
            conditions=[f"{index.column} IS NOT NULL"],
            query_ref="$1",
            limit="$2",
            knob=plan.knob,
            exact=False,
        )
        settings = search_settings(
            plan, plan.knob, k, iterative=self._executor.state.iterative_scans
        )
        times = []
        for query in queries:
            started = time.perf_counter()
            async with self._executor.with_settings(settings) as tx:
                await tx.fetch(sql, query, k)
            times.append((time.perf_counter() - started) * 1000)
        return times


def _plan_with(plan: SearchPlan, value: int) -> SearchPlan:
    """Return *plan* with its strategy's knob set to *value*."""
    knob = plan.strategy.knob
    if knob == "probes":
        return SearchPlan(plan.kind, probes=value)
    if knob == "ef_search":
        return SearchPlan(plan.kind, ef_search=value)
    return SearchPlan(plan.kind, overfetch=value)


def _with_frontier(entry: CompareEntry, on_frontier: bool) -> CompareEntry:
    return CompareEntry(
        entry.strategy,
        entry.build_seconds,
        entry.size_bytes,
        entry.knob,
        entry.value,
        entry.recall,
        entry.recall_low,
        entry.p50_ms,
        entry.meets_target,
        on_frontier,
    )
