"""IVFFlat index lifecycle: status and advice, rebuild with progress, recall, probe tuning.

An IVFFlat index clusters the rows that exist when it is built; one built on an empty table
(as the seed's migrations do) has meaningless centroids. ``status()`` says when a rebuild
pays off, ``rebuild()`` builds a replacement (concurrently by default) and swaps it in,
``measure_recall()`` compares index answers with exact ones, and ``tune()`` stores the
smallest ``probes`` that meets a recall target as the table's default, in the database so
every process uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import numpy as np

from ._db import Executor, translated
from ._pool import PackedVector, open_connection
from .config import Settings
from .errors import InvalidInputError
from .models import TABLES, VECTOR_OPCLASS, VectorIndex
from .search import recommended_lists

__all__ = [
    "VECTOR_INDEXES",
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

#: Norm of the noise added to sampled vectors to make recall queries (cosine ~0.9 to origin).
_QUERY_NOISE: Final = 0.5
#: A rebuild is advised when the row count moved by this factor since the build...
_DRIFT_FACTOR: Final = 2.0
#: ...or the index was built on fewer rows than this while the table now has more.
_NEARLY_EMPTY: Final = 1000

_INDEX_FACTS: Final = """
SELECT i.indisvalid                            AS valid,
       pg_relation_size(i.indexrelid)          AS size_bytes,
       coalesce((SELECT option_value::int
                   FROM pg_options_to_table(c.reloptions)
                  WHERE option_name = 'lists'), 100) AS lists
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indexrelid = to_regclass($1)"""
_REGISTRY: Final = """
SELECT rows_at_build, built_at, default_probes, tuned_recall
  FROM codeatlas_vector_indexes WHERE index_name = $1"""
_RECORD_BUILD: Final = """
INSERT INTO codeatlas_vector_indexes
       (index_name, table_name, column_name, dimensions, lists, rows_at_build, built_at)
VALUES ($1, $2, $3, $4, $5, $6, now())
ON CONFLICT (index_name) DO UPDATE
   SET lists = EXCLUDED.lists, rows_at_build = EXCLUDED.rows_at_build, built_at = now(),
       default_probes = NULL, tuned_recall = NULL, tuned_at = NULL"""
_STORE_TUNING: Final = """
UPDATE codeatlas_vector_indexes
   SET default_probes = $2, tuned_recall = $3, tuned_at = now()
 WHERE index_name = $1"""
_PROGRESS: Final = """
SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total
  FROM pg_stat_progress_create_index WHERE pid = $1"""


@dataclass(frozen=True, slots=True)
class IndexStatus:
    """State of one vector index and whether rebuilding it is advised (and why)."""

    table: str
    index: str
    rows: int
    lists: int
    recommended_lists: int
    rows_at_build: int | None
    valid: bool
    size_bytes: int
    default_probes: int | None
    tuned_recall: float | None
    rebuild_advised: bool
    reason: str


@dataclass(frozen=True, slots=True)
class IndexProgress:
    """A build's progress as ``pg_stat_progress_create_index`` reports it."""

    table: str
    phase: str
    done: int
    total: int


@dataclass(frozen=True, slots=True)
class RebuildResult:
    """One rebuilt index: its lists, the rows it was built on, and how long it took."""

    table: str
    index: str
    lists: int
    rows: int
    seconds: float


@dataclass(frozen=True, slots=True)
class RecallReport:
    """Mean recall@k of the index against exact search over *sample* query vectors."""

    table: str
    k: int
    probes: int
    sample: int
    recall: float
    #: lower end of a ~95% confidence interval of the mean (mean - 2 standard errors)
    recall_low: float
    index_ms_per_query: float
    exact_ms_per_query: float


@dataclass(frozen=True, slots=True)
class TuneResult:
    """The probes stored as a table's default, with the recall measured at each probe tried."""

    table: str
    probes: int
    recall: float
    target: float
    tried: dict[int, float]


@dataclass(frozen=True, slots=True)
class TuneProgress:
    """Where ``tune()`` is, reported after each step of each table.

    ``step`` is ``sampling`` (choosing query vectors), ``exact`` (the ground truth, usually
    the slowest step), ``probes`` (one probes value measured: ``probes`` and ``recall``
    hold it) or ``done`` (``probes`` and ``recall`` hold the stored choice).
    """

    table: str
    #: 1-based position of this table among the ``tables`` being tuned
    table_number: int
    tables: int
    step: str
    probes: int | None = None
    recall: float | None = None
    #: probes values measured so far for this table
    tried: int = 0
    #: the index's lists: the largest probes value tune can try
    lists: int = 0


def _advice(rows: int, lists: int, rows_at_build: int | None) -> tuple[bool, str]:
    if rows == 0:
        return False, "empty table"
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


class Indexes:
    """``atlas.indexes``: status, rebuild, recall and tuning of the vector indexes."""

    def __init__(self, executor: Executor, dsn: str, settings: Settings) -> None:
        self._executor = executor
        self._dsn = dsn
        self._settings = settings

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
        """Return every vector index with its size, lists, build facts and rebuild advice."""
        result = []
        for index in self._targets(None):
            facts = await self._executor.fetchrow(_INDEX_FACTS, index.name)
            registry = await self._executor.fetchrow(_REGISTRY, index.name)
            rows = await self._count(index)
            lists = facts["lists"] if facts else 0
            rows_at_build = registry["rows_at_build"] if registry else None
            advised, reason = (
                _advice(rows, lists, rows_at_build) if facts else (True, "index is missing")
            )
            if facts is not None and not facts["valid"]:
                advised, reason = True, "index is INVALID (a crashed concurrent build)"
            result.append(
                IndexStatus(
                    table=index.table,
                    index=index.name,
                    rows=rows,
                    lists=lists,
                    recommended_lists=recommended_lists(rows),
                    rows_at_build=rows_at_build,
                    valid=bool(facts and facts["valid"]),
                    size_bytes=facts["size_bytes"] if facts else 0,
                    default_probes=registry["default_probes"] if registry else None,
                    tuned_recall=registry["tuned_recall"] if registry else None,
                    rebuild_advised=advised,
                    reason=reason,
                )
            )
        return result

    async def _count(self, index: VectorIndex) -> int:
        # identifiers from the VECTOR_INDEXES allow-list
        return int(
            await self._executor.fetchval(
                f"SELECT count(*) FROM {index.table} WHERE {index.column} IS NOT NULL"
            )
        )

    async def rebuild(
        self,
        table: str | None = None,
        *,
        lists: int | None = None,
        concurrently: bool = True,
        on_progress: Callable[[IndexProgress], None] | None = None,
    ) -> list[RebuildResult]:
        """Build a replacement for each vector index (all when *table* is None) and swap it in.

        *lists* defaults to the recommendation for the current row count. Concurrent builds
        keep the table writable; progress is read from ``pg_stat_progress_create_index``.
        """
        if lists is not None and not 1 <= lists <= 32768:
            raise InvalidInputError(f"lists must be within 1..32768, got {lists}")
        results = []
        for index in self._targets(table):
            results.append(await self._rebuild_one(index, lists, concurrently, on_progress))
        self._executor.state.probe_defaults.clear()
        return results

    async def _rebuild_one(
        self,
        index: VectorIndex,
        lists: int | None,
        concurrently: bool,
        on_progress: Callable[[IndexProgress], None] | None,
    ) -> RebuildResult:
        started = time.perf_counter()
        rows = await self._count(index)
        chosen = lists or recommended_lists(rows)
        replacement = f"{index.name}_rebuild"
        connection = await open_connection(self._dsn, self._settings)
        try:
            with translated(connection):
                # IVFFlat's k-means wants memory; this session only
                await connection.execute("SET maintenance_work_mem = '512MB'")
                await connection.execute(f"DROP INDEX IF EXISTS {replacement}")
                pid = await connection.fetchval("SELECT pg_backend_pid()")
                build = (
                    f"CREATE INDEX {'CONCURRENTLY ' if concurrently else ''}{replacement} "
                    f"ON {index.table} USING ivfflat ({index.column} {VECTOR_OPCLASS}) "
                    f"WITH (lists = {int(chosen)})"
                )
                watcher = (
                    asyncio.create_task(self._watch(index.table, pid, on_progress))
                    if on_progress is not None
                    else None
                )
                try:
                    if concurrently:
                        await connection.execute(build, timeout=None)
                        await connection.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index.name}")
                        await connection.execute(
                            f"ALTER INDEX {replacement} RENAME TO {index.name}"
                        )
                    else:
                        async with connection.transaction():
                            await connection.execute(build, timeout=None)
                            await connection.execute(f"DROP INDEX IF EXISTS {index.name}")
                            await connection.execute(
                                f"ALTER INDEX {replacement} RENAME TO {index.name}"
                            )
                finally:
                    if watcher is not None:
                        watcher.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await watcher
                await connection.execute(
                    _RECORD_BUILD,
                    index.name,
                    index.table,
                    index.column,
                    index.dimensions,
                    chosen,
                    rows,
                )
        finally:
            await connection.close()
        return RebuildResult(index.table, index.name, chosen, rows, time.perf_counter() - started)

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

    async def measure_recall(
        self,
        table: str,
        *,
        sample: int = 200,
        k: int = 10,
        probes: int | None = None,
        seed: int | None = None,
    ) -> RecallReport:
        """Return mean recall@k of index search against exact search for *sample* stored vectors."""
        index = self._targets(table)[0]
        if not 1 <= sample <= 10_000 or not 1 <= k <= 1000:
            raise InvalidInputError("sample must be within 1..10000 and k within 1..1000")
        queries = await self._sample(index, sample, seed)
        if not queries:
            raise InvalidInputError(f"{table} has no vectors to measure recall with")
        chosen = probes or await self._default_probes(index)
        exact, exact_ms = await self._neighbours(index, queries, k, chosen, exact=True)
        return await self._recall(index, queries, exact, exact_ms, k, chosen)

    async def _recall(
        self,
        index: VectorIndex,
        queries: Sequence[np.ndarray],
        exact: Sequence[Sequence[object]],
        exact_ms: float,
        k: int,
        probes: int,
    ) -> RecallReport:
        """Compare index search at *probes* with the exact neighbours already computed."""
        approximate, index_ms = await self._neighbours(index, queries, k, probes, exact=False)
        hits = np.array(
            [
                len(set(a) & set(e)) / min(k, len(e))
                for a, e in zip(approximate, exact, strict=True)
                if e
            ]
        )
        return RecallReport(
            table=index.table,
            k=k,
            probes=probes,
            sample=len(queries),
            recall=float(hits.mean()) if hits.size else 0.0,
            recall_low=(
                float(hits.mean() - 2 * hits.std() / np.sqrt(hits.size)) if hits.size else 0.0
            ),
            index_ms_per_query=index_ms / len(queries),
            exact_ms_per_query=exact_ms / len(queries),
        )

    async def _sample(
        self, index: VectorIndex, sample: int, seed: int | None = None
    ) -> list[np.ndarray]:
        """Return query vectors near *sample* stored ones (cosine ~0.9 to their origin).

        A stored vector queried as is finds itself at distance 0, which flatters recall by
        about 1/k; a perturbed copy behaves like a fresh query from the same distribution.
        With a *seed*, the same rows and noise are chosen every time the data is the same.
        """
        order = "random()" if seed is None else "md5(id::text || $2)"
        rows = await self._executor.fetch(
            f"SELECT {index.column} AS v FROM {index.table} "
            f"WHERE {index.column} IS NOT NULL ORDER BY {order} LIMIT $1",
            sample,
            *(() if seed is None else (str(seed),)),
        )
        if not rows:
            return []
        stored = np.stack([np.asarray(row["v"], dtype=np.float32) for row in rows])
        stored /= np.linalg.norm(stored, axis=1, keepdims=True)
        rng = np.random.default_rng(seed)
        noise = rng.standard_normal(stored.shape).astype(np.float32)
        noise *= np.float32(_QUERY_NOISE / np.sqrt(stored.shape[1]))
        queries = stored + noise
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        return list(queries)

    async def _default_probes(self, index: VectorIndex) -> int:
        from .search import DEFAULT_PROBES

        stored = await self._executor.fetchval(
            "SELECT default_probes FROM codeatlas_vector_indexes WHERE index_name = $1", index.name
        )
        return int(stored or DEFAULT_PROBES)

    async def _neighbours(
        self,
        index: VectorIndex,
        queries: Sequence[np.ndarray],
        k: int,
        probes: int,
        *,
        exact: bool,
    ) -> tuple[list[list[object]], float]:
        """Return the primary keys of the k nearest rows for every query, and the elapsed ms."""
        # The exact statement orders by an expression no index can serve ("+ 0"), so it
        # differs from the approximate one: a shared statement could reuse a cached generic
        # plan made under the other pass's settings.
        distance = f"t.{index.column} <=> q.query"
        sql = (
            "SELECT q.ordinal, hit.id "
            "FROM unnest($1::vector[]) WITH ORDINALITY AS q(query, ordinal) "
            f"CROSS JOIN LATERAL (SELECT t.id FROM {index.table} t "
            f"WHERE t.{index.column} IS NOT NULL "
            f"ORDER BY {f'({distance}) + 0' if exact else distance} LIMIT $2) AS hit"
        )
        packed = [PackedVector(q) for q in queries]
        started = time.perf_counter()
        # Measure the index itself: with probes a large share of lists the planner may prefer
        # a sequential scan, whose perfect recall would mislead `tune`.
        settings = {} if exact else {"ivfflat.probes": str(probes), "enable_seqscan": "off"}
        if settings and self._executor.state.iterative_scans:
            settings["ivfflat.iterative_scan"] = "relaxed_order"
        async with self._executor.with_settings(settings) as tx:
            rows = await tx.fetch(sql, packed, k)
        elapsed = (time.perf_counter() - started) * 1000
        grouped: list[list[object]] = [[] for _ in queries]
        for row in rows:
            grouped[row["ordinal"] - 1].append(row["id"])
        return grouped, elapsed

    async def tune(
        self,
        table: str | None = None,
        *,
        target_recall: float = 0.95,
        sample: int = 200,
        k: int = 10,
        seed: int | None = None,
        on_progress: Callable[[TuneProgress], None] | None = None,
    ) -> list[TuneResult]:
        """Find and store, per table, the smallest probes whose recall@k meets the target.

        A probes value meets it when the lower end of the ~95% confidence interval of its
        mean recall over *sample* queries does, so one lucky sample does not under-probe.
        A *seed* makes the sample, and so the choice, reproducible on the same data.
        *on_progress* is called after every step (see TuneProgress): tuning a large table
        takes minutes.
        """
        if not 0 < target_recall <= 1:
            raise InvalidInputError(f"target_recall must be within (0, 1], got {target_recall}")
        targets = [index for index in self._targets(table) if await self._count(index) > 0]
        results = []
        for number, index in enumerate(targets, 1):
            results.append(
                await self._tune_one(
                    index, target_recall, sample, k, seed, (number, len(targets)), on_progress
                )
            )
        return results

    async def _tune_one(
        self,
        index: VectorIndex,
        target_recall: float,
        sample: int,
        k: int,
        seed: int | None,
        position: tuple[int, int] = (1, 1),
        on_progress: Callable[[TuneProgress], None] | None = None,
    ) -> TuneResult:
        facts = await self._executor.fetchrow(_INDEX_FACTS, index.name)
        lists = int(facts["lists"]) if facts else 100
        tried: dict[int, float] = {}

        def report(step: str, probes: int | None = None, recall: float | None = None) -> None:
            if on_progress is not None:
                on_progress(
                    TuneProgress(index.table, *position, step, probes, recall, len(tried), lists)
                )

        # A probes value qualifies when the lower confidence bound of its recall meets the
        # target, not just the sample mean: a sample's luck must not pick too few probes.
        lower: dict[int, float] = {}
        # one sample and one exact pass serve every probes value tried
        report("sampling")
        queries = await self._sample(index, sample, seed)
        report("exact")
        exact, exact_ms = await self._neighbours(index, queries, k, 1, exact=True)

        async def recall_at(probes: int) -> float:
            if probes not in tried:
                result = await self._recall(index, queries, exact, exact_ms, k, probes)
                tried[probes] = result.recall
                lower[probes] = result.recall_low
                report("probes", probes, result.recall)
            return lower[probes]

        # doubling to bracket the target, then bisection inside the bracket
        low, high = 0, 1
        while high < lists and await recall_at(high) < target_recall:
            low, high = high, min(high * 2, lists)
        while high - low > 1:
            middle = (low + high) // 2
            if await recall_at(middle) >= target_recall:
                high = middle
            else:
                low = middle
        await recall_at(high)
        recall = tried[high]
        await self._executor.execute(_STORE_TUNING, index.name, high, recall)
        self._executor.state.probe_defaults.pop(index.name, None)
        report("done", high, recall)
        return TuneResult(index.table, high, recall, target_recall, dict(sorted(tried.items())))
