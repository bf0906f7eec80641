"""``atlas.semantic_cache``: LLM responses reused for questions similar to earlier ones.

The semantic_cache table (768-d query embeddings) answers "was a question like this one
answered already?": ``lookup`` returns the best unexpired entry at or above a similarity
threshold and counts the hit; ``store`` upserts by ``cache_key``; the table is kept under
``max_entries`` by evicting the least recently hit entries. Being a searchable table, it
also offers ``search_similar``. A lookup is one read-only statement (one round trip on the
pool, or on a replica) whose plan is an index scan for the single nearest unexpired entry
of the model, whatever the threshold: misses cost what hits do (see ``_LOOKUP``). A hit is
counted in the Atlas' memory (``PendingHits``), written to a side table in one statement
for all the hits since the last write, and folded from there into the entries' stored
``hit_count`` / ``last_accessed`` (see ``_WRITE_PENDING``); ``flush_hits`` does both, and
an Atlas runs it in the background (``HitFlusher``) every ``semantic_cache_flush_interval``
seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from datetime import timedelta
from functools import lru_cache
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from .._db import Executor
from .._state import CacheStats, PendingHits
from ..errors import InvalidInputError, OutcomeUnknownError
from ..index_strategies import SearchPlan, ranked_sql, search_settings
from ..models import SemanticCacheEntry, SemanticCacheEntryCreate, SemanticCacheEntryUpdate
from ..models._types import validate_vector
from ..search import Match, SearchableRepository

__all__ = ["CacheStats", "HitFlusher", "SemanticCache"]

logger = logging.getLogger("codeatlas.cache")

#: What the nearest entry must be: stored with an embedding, unexpired, of the model asked.
_LOOKUP_CONDITIONS: Final = (
    "query_embedding IS NOT NULL",
    "(ttl_seconds IS NULL"
    " OR inserted_at + make_interval(secs => ttl_seconds) > (now() AT TIME ZONE 'utc'))",
    "($3::varchar IS NULL OR model = $3::varchar)",
)
#: The entry's columns a lookup returns (not its embedding), as the nearest subquery reads them.
_ENTRY_COLUMNS: Final = (
    "id, cache_key, query, response, model, template_id, tokens_used, cost_cents, hit_count,"
    " last_accessed, ttl_seconds, metadata, inserted_at, updated_at"
)
#: The hit: the nearest entry by the index, then the threshold. The threshold is applied
#: after the index scan, not inside it: a distance bound in the scan's WHERE clause keeps
#: the planner off the index (a sequential scan and sort, the same cost hit or miss). The
#: entry's hits written to the side table and not yet folded (_pending) and the server's
#: time (_at, the hit's) come along; the statement writes nothing (see _WRITE_PENDING).
#: _pending is a subquery, not a LEFT JOIN: one plan node fewer, and in the interleaved
#: benchmark the join cost the statement ~7% of the raw index query, the subquery ~1%.
_LOOKUP: Final = """
SELECT nearest.*,
       (SELECT pending.hits FROM codeatlas_semantic_cache_hits AS pending
         WHERE pending.entry_id = nearest.id) AS _pending,
       now() AT TIME ZONE 'utc' AS _at
  FROM ({nearest}) AS nearest
 WHERE nearest._distance <= $2"""
#: On the pool, in one round trip, the knobs are set by ``set_config(..., true)`` in the
#: statement itself: an uncorrelated subquery (an InitPlan) in the scan's conditions, which
#: the planner makes a one-time filter evaluated before the index scan starts (index scans
#: begin at their first row). They are local to the statement's own implicit transaction,
#: so nothing outlives it. (A lateral join to a subquery setting them did the same with two
#: plan nodes more.)
_SET_KNOBS: Final = "(SELECT {knobs}) IS NOT NULL"
#: Setting names the inline lookup may set (they are written into its SQL).
_INLINE_SETTINGS: Final = frozenset(
    {"ivfflat.probes", "ivfflat.iterative_scan", "hnsw.ef_search", "hnsw.iterative_scan"}
)
#: The hits an Atlas counted since its last write, into codeatlas_semantic_cache_hits
#: (migration 20261204000001) in one statement. Not on the entries' rows: semantic_cache's
#: counter columns are indexed, so updating them is never a HOT update and inserts into
#: every index, the vector index included (an HNSW insert costs about a search); a side
#: row has no indexed counter, so its update is HOT. And not one write per hit, in the
#: lookup, as 0.2.0 did: that made every lookup a write on the primary (WAL, a commit, a
#: row lock for concurrent hits of one entry to queue on) and kept lookups off replicas.
#: (Its latency cost could not be told from the noise in benchmarks/caches.py.) Rows in
#: entry order, so concurrent writes lock alike.
_WRITE_PENDING: Final = """
INSERT INTO codeatlas_semantic_cache_hits AS h (entry_id, hits, last_accessed)
SELECT * FROM unnest($1::uuid[], $2::integer[], $3::timestamp[])
ON CONFLICT (entry_id) DO UPDATE
   SET hits = h.hits + excluded.hits,
       last_accessed = greatest(h.last_accessed, excluded.last_accessed)"""
#: Expired entries go, with their pending hits.
_EXPIRE: Final = """
WITH expired AS (
    DELETE FROM semantic_cache
     WHERE ttl_seconds IS NOT NULL
       AND inserted_at + make_interval(secs => ttl_seconds) <= (now() AT TIME ZONE 'utc')
    RETURNING id
), dropped AS (
    DELETE FROM codeatlas_semantic_cache_hits WHERE entry_id IN (SELECT id FROM expired)
)
SELECT count(*) FROM expired"""
#: The least recently hit entries beyond the bound go, with their pending hits. Pending
#: hits count: those in the side table and the storing Atlas' own ($2-$4), so an entry hit
#: since the last flush is as recent as its last hit (another Atlas' hits not yet written,
#: within one flush interval, are not seen).
_EVICT: Final = """
WITH own AS (
    SELECT * FROM unnest($2::uuid[], $3::integer[], $4::timestamp[])
        AS own(entry_id, hits, last_accessed)
), evicted AS (
    DELETE FROM semantic_cache
     WHERE id IN (SELECT s.id
                    FROM semantic_cache AS s
                    LEFT JOIN codeatlas_semantic_cache_hits AS h ON h.entry_id = s.id
                    LEFT JOIN own AS o ON o.entry_id = s.id
                   ORDER BY coalesce(greatest(s.last_accessed, h.last_accessed, o.last_accessed),
                                     s.inserted_at),
                            coalesce(s.hit_count, 0) + coalesce(h.hits, 0) + coalesce(o.hits, 0)
                   LIMIT greatest((SELECT count(*) FROM semantic_cache) - $1, 0))
    RETURNING id
)
DELETE FROM codeatlas_semantic_cache_hits WHERE entry_id IN (SELECT id FROM evicted)"""
#: Pending hits folded into their entries, a batch at a time: the rows taken are locked
#: (SKIP LOCKED: two flushes share the work), and a write of pending hits to one of them
#: meanwhile waits for the batch's commit, then starts a new pending row. Rows whose
#: entry is gone just go.
_FLUSH: Final = """
WITH taken AS (
    DELETE FROM codeatlas_semantic_cache_hits
     WHERE entry_id IN (SELECT entry_id FROM codeatlas_semantic_cache_hits
                         ORDER BY entry_id LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING entry_id, hits, last_accessed
), folded AS (
    UPDATE semantic_cache AS s
       SET hit_count = coalesce(s.hit_count, 0) + taken.hits,
           last_accessed = greatest(s.last_accessed, taken.last_accessed)
      FROM taken
     WHERE s.id = taken.entry_id
    RETURNING s.id
)
SELECT (SELECT count(*) FROM taken) AS taken, (SELECT count(*) FROM folded) AS folded"""
#: Entries a flush updates per transaction (each is a non-HOT update: see _WRITE_PENDING).
_FLUSH_BATCH: Final = 500
#: The same for the background flush: a write of pending hits to an entry of the batch
#: waits for the batch's commit, and on HNSW each entry is a graph insertion (about 4-11 ms
#: per entry in docs/performance.md), so a batch of 500 could hold other Atlases' writes
#: for seconds; 50 keeps that wait to a fraction of a second.
_BACKGROUND_BATCH: Final = 50
#: Seconds ``HitFlusher.close`` gives the last flush (what it leaves stays pending).
_FINAL_FLUSH_TIMEOUT: Final = 10.0


async def _write_pending(executor: Executor, pending: PendingHits) -> int:
    """Write *pending* hits to the side table; return how many entries they were.

    Hits whose write failed are pending again, unless its outcome is unknown (then they
    may be written: counting them twice would be no truer than not at all).
    """
    taken = pending.take()
    if not taken:
        return 0
    ids = sorted(taken)
    try:
        await executor.execute(
            _WRITE_PENDING, ids, [taken[i][0] for i in ids], [taken[i][1] for i in ids]
        )
    except OutcomeUnknownError:
        raise
    except BaseException:
        pending.restore(taken)
        raise
    return len(ids)


async def _flush(
    executor: Executor, batch: int, pending: PendingHits, *, fold: bool = True
) -> tuple[int, int]:
    """Write *pending* hits, then fold the side table's, *batch* entries per transaction
    (unless not *fold*); return (entries written or taken, entries folded)."""
    taken = await _write_pending(executor, pending)
    folded = 0
    while fold:
        row = await executor.fetchrow(_FLUSH, batch)
        assert row is not None
        taken += int(row["taken"])
        folded += int(row["folded"])
        if int(row["taken"]) < batch:
            break
    return taken, folded


def _described(exc: BaseException) -> str:
    """Return *exc* for a log line: its class and SQLSTATE (its text may quote data)."""
    sqlstate = getattr(exc, "sqlstate", None)
    return type(exc).__name__ + (f" (SQLSTATE {sqlstate})" if sqlstate else "")


class HitFlusher:
    """Flush an Atlas' pending semantic-cache hits in the background, *interval* s apart.

    The first hit the Atlas counts starts it (``note_hit``; nothing runs before, and an
    *interval* of 0 disables it). It flushes one interval after it started, then every
    interval while there is work: it stops after a flush that found nothing pending when
    no hit was counted since, and the next hit starts it again. So a hit reaches the side
    table, and the stored columns, within about one interval plus the flush's own time. A
    failing flush is logged (``codeatlas.cache``) and tried again next interval (the hits
    it could not write stay pending in memory); nothing of it reaches the lookups.
    ``close`` (run by ``Atlas.close``) stops it and flushes once more; with the flush
    disabled it still writes the Atlas' pending hits to the side table (for whoever folds
    them), or they would be lost. Several flushers (Atlases, processes) share the work: a
    fold skips the rows another one holds.
    """

    def __init__(self, executor: Executor, interval: float, pending: PendingHits) -> None:
        #: the pool's executor; the flush is a write, so it runs on the primary
        self._executor = executor
        self.interval = interval
        #: the Atlas' hits not yet written (AtlasState.pending_hits)
        self._pending = pending
        self._task: asyncio.Task[None] | None = None
        self._noted = False  # a hit was counted since the running flush started
        self._started = False
        self._closed = False
        self._failing = False
        self._flushing = False

    @property
    def running(self) -> bool:
        """True while the background flush is scheduled or running."""
        return self._task is not None and not self._task.done()

    def note_hit(self) -> None:
        """Record that a hit was counted; start the background flush if it is not running."""
        if self.interval <= 0 or self._closed:
            return
        self._noted = True
        if not self.running:
            self._started = True
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="codeatlas-semantic-cache-flush"
            )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self._noted = False
            self._flushing = True
            try:
                taken = await self._flush_once()
            finally:
                self._flushing = False
            if self._closed:
                return
            if taken is None:
                self._noted = True  # failed: the hits are still pending
            elif taken == 0 and not self._noted:
                return

    async def _flush_once(self) -> int | None:
        """Flush; return the rows taken, or None when the flush failed (logged)."""
        try:
            taken, _ = await _flush(self._executor, _BACKGROUND_BATCH, self._pending)
        except Exception as exc:
            log = logger.debug if self._failing else logger.warning
            log(
                "flushing semantic-cache hits failed (%s): trying again in %g s",
                _described(exc),
                self.interval,
            )
            self._failing = True
            return None
        if self._failing:
            logger.info("flushing semantic-cache hits works again")
            self._failing = False
        return taken

    async def close(self, timeout: float = _FINAL_FLUSH_TIMEOUT) -> None:
        """Stop the background flush, then flush what is pending (each for at most *timeout* s).

        Does nothing when no hit was counted; with the flush disabled, only writes the
        pending hits. What the last flush cannot fold in time stays pending in the side
        table (logged), for the next flush anyone runs; hits it cannot write are lost.
        """
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            # a sleeping flusher is cancelled; a flushing one finishes its statement first
            if not self._flushing:
                task.cancel()
            # asyncio.wait raises nothing of the task's; a cancelled close() still propagates
            if not (await asyncio.wait([task], timeout=timeout))[0]:
                task.cancel()
                await asyncio.wait([task])
            ended = None if task.cancelled() else task.exception()
            if ended is not None:
                logger.warning("the semantic-cache flush ended: %s", _described(ended))
        if not self._started and not self._pending:
            return
        flush = _flush(self._executor, _BACKGROUND_BATCH, self._pending, fold=self.interval > 0)
        try:
            await asyncio.wait_for(flush, timeout)
        except Exception as exc:  # TimeoutError included
            lost = sum(hits for hits, _ in self._pending.entries.values())
            logger.warning(
                "the last flush of semantic-cache hits failed (%s): %s",
                _described(exc),
                f"{lost} hits not written are lost" if lost else "hits stay pending",
            )


def _lookup_statement(
    table: str, dimensions: int, plan: SearchPlan, knob: int, inline: tuple[str, ...]
) -> str:
    """Return the lookup statement in the shape of *plan*'s strategy (see ``_lookup_sql``)."""
    unknown = set(inline) - _INLINE_SETTINGS
    if unknown:
        raise ValueError(f"not a lookup setting: {sorted(unknown)}")
    conditions: tuple[str, ...] = _LOOKUP_CONDITIONS
    if inline:
        knobs = " || ".join(
            f"set_config('{name}', ${number}, true)" for number, name in enumerate(inline, 4)
        )
        conditions = (*conditions, _SET_KNOBS.format(knobs=knobs))
    nearest = ranked_sql(
        plan,
        table=table,
        vec="query_embedding",
        dimensions=dimensions,
        columns=_ENTRY_COLUMNS,
        conditions=conditions,
        query_ref="$1",
        limit="1",
        knob=knob,
        exact=False,
    )
    return _LOOKUP.format(nearest=nearest)


@lru_cache(maxsize=256)
def _inline_lookup(
    table: str, dimensions: int, plan: SearchPlan, knob: int, iterative: bool
) -> tuple[str, tuple[str, ...]]:
    """Return the pool lookup's statement and its setting values ($4...).

    What ``lookup`` sends on the pool depends on these alone (*iterative*: the server's
    pgvector has iterative scans), so each combination is built once, not per lookup
    (which also keeps the statement one string object, whose hash the statement caches
    on the way, codeatlas' and asyncpg's, compute once). A plan is an index's kind and
    tuned knobs: a process meets a few; ``maxsize`` bounds one retuned again and again.
    """
    settings = search_settings(plan, knob, 1, iterative=iterative)
    sql = _lookup_statement(table, dimensions, plan, knob, tuple(settings))
    return sql, tuple(settings.values())


class SemanticCache(
    SearchableRepository[SemanticCacheEntry, SemanticCacheEntryCreate, SemanticCacheEntryUpdate]
):
    """``atlas.semantic_cache``: reuse answers to questions similar enough to earlier ones."""

    row_model = SemanticCacheEntry
    create_model = SemanticCacheEntryCreate
    update_model = SemanticCacheEntryUpdate

    #: Entries kept at most; ``store`` evicts the least recently hit beyond it.
    max_entries: int = 100_000

    def __init__(self, executor: Executor) -> None:
        super().__init__(executor)

    @property
    def stats(self) -> CacheStats:
        """Lookup hits and misses since the Atlas connected (all scopes together)."""
        return self._executor.state.semantic_cache_stats

    async def lookup(
        self,
        embedding: Sequence[float] | npt.NDArray[np.floating[Any]],
        threshold: float = 0.95,
        *,
        model: str | None = None,
        probes: int | None = None,
    ) -> Match[SemanticCacheEntry] | None:
        """Return the most similar unexpired entry at or above *threshold*, counting the hit.

        The entry comes back with the hit counted: its ``hit_count`` is the stored count
        plus the hits not yet folded into it (this Atlas' own, and those other Atlases
        have written to the side table), ``last_accessed`` this hit's time (see
        ``flush_hits``). The lookup writes nothing: with read replicas, a replica can
        answer it.
        """
        vector = validate_vector(embedding, self.dimensions, field="embedding")
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not -1.0 <= threshold <= 1.0  # NaN fails this too
        ):
            shown = repr(threshold) if isinstance(threshold, float) else type(threshold).__name__
            raise InvalidInputError(f"threshold must be a number within -1..1, got {shown}")
        if model is not None:
            model = self._value("model", model)
        chosen_probes = await self._probes(probes)
        if self._executor.in_transaction:
            # inside the caller's transaction: a savepoint scopes the knobs (with_settings)
            iterative = self._executor.state.iterative_scans
            settings = search_settings(self._plan(), chosen_probes, 1, iterative=iterative)
            sql = self._lookup_sql(chosen_probes)
            async with self._executor.with_settings(settings) as tx:
                record = await tx.fetchrow(sql, vector, 1.0 - threshold, model)
        else:
            # one round trip, as cheap as the single-row index query it is built on; the
            # statement and its settings are built once per plan and knob (_inline_lookup)
            sql, values = _inline_lookup(
                self.table,
                self.dimensions,
                self._plan(),
                chosen_probes,
                self._executor.state.iterative_scans,
            )
            record = await self._executor.fetchrow(sql, vector, 1.0 - threshold, model, *values)
        state = self._executor.state
        if record is None:
            state.semantic_cache_stats.misses += 1
            return None
        state.semantic_cache_stats.hits += 1
        at = record["_at"]
        own = state.pending_hits.add(record["id"], at)
        if state.on_semantic_cache_hit is not None:
            state.on_semantic_cache_hit()
        entry = self.row_model.from_record(
            record,
            hit_count=(record["hit_count"] or 0) + (record["_pending"] or 0) + own,
            last_accessed=at,
        )
        return Match(entry, 1.0 - float(record["_distance"]))

    def _lookup_sql(self, knob: int, inline: tuple[str, ...] = ()) -> str:
        """Return the lookup statement in the shape of this index's strategy.

        With *inline* setting names, the statement sets them itself from parameters $4...
        (see ``_SET_KNOBS``); without, the caller runs it inside ``with_settings``.
        """
        return _lookup_statement(self.table, self.dimensions, self._plan(), knob, inline)

    async def store(
        self,
        query: str,
        embedding: Sequence[float] | npt.NDArray[np.floating[Any]],
        response: str,
        *,
        model: str | None = None,
        ttl: timedelta | None = None,
        cache_key: str | None = None,
        tokens_used: int | None = None,
        cost_cents: int | None = None,
        template_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> SemanticCacheEntry:
        """Store *response* for *query* (upsert by cache_key), keeping the size bound."""
        if ttl is not None and not isinstance(ttl, timedelta):
            raise InvalidInputError(f"ttl must be a timedelta or None, got {type(ttl).__name__}")
        if ttl is not None and ttl <= timedelta(0):
            raise InvalidInputError(f"ttl must be positive, got {ttl}")
        # surrogatepass: the model below refuses unstorable text with the field's name
        key = (
            cache_key
            or hashlib.sha256(
                f"{model or ''}\x00{query}".encode("utf-8", "surrogatepass")
            ).hexdigest()
        )
        entry = SemanticCacheEntryCreate(
            cache_key=key,
            query=query,
            query_embedding=embedding,
            response=response,
            model=model,
            template_id=template_id,
            tokens_used=tokens_used,
            cost_cents=cost_cents,
            ttl_seconds=int(ttl.total_seconds()) if ttl is not None else None,
            metadata=metadata or {},
        )
        own = self._executor.state.pending_hits.entries
        ids = list(own)
        async with self._executor.transaction() as tx:
            stored = await SemanticCache(tx).upsert(entry)
            await tx.execute(
                _EVICT,
                self.max_entries,
                ids,
                [own[i][0] for i in ids],
                [own[i][1] for i in ids],
            )
        return stored

    async def expire(self) -> int:
        """Delete every expired entry; return how many."""
        return int(await self._executor.fetchval(_EXPIRE))

    async def flush_hits(self) -> int:
        """Write this Atlas' pending hits and fold every pending hit into its entry; return
        how many entries were folded.

        A lookup counts its hit in the Atlas' memory, and the flush writes them to a side
        table (``codeatlas_semantic_cache_hits``) before folding them into the entries'
        rows, whose counter columns are indexed (see docs/search.md): until a flush,
        ``hit_count`` and ``last_accessed`` as stored in semantic_cache lag. ``lookup``'s
        returned entry and eviction count the pending hits (the Atlas' own and the side
        table's), the ``codeatlas_semantic_cache_usage`` view those in the side table. Each
        batch of entries is one transaction. An Atlas flushes on its own every
        ``semantic_cache_flush_interval`` seconds after a hit, and when it closes (see
        ``HitFlusher``); call this for the stored columns to be current now, or when the
        automatic flush is disabled. Inside ``atlas.transaction()`` the writes are part of
        the transaction: a rollback loses the hits they wrote.
        """
        pending = self._executor.state.pending_hits
        _, folded = await _flush(self._executor, _FLUSH_BATCH, pending)
        return folded

    @property
    def pending_hits(self) -> int:
        """Hits this Atlas counted and has not written to the database yet."""
        return sum(hits for hits, _ in self._executor.state.pending_hits.entries.values())
