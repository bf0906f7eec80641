"""The two caches: semantic cache lookups at N entries, similarity cache hit against miss.

    python -m benchmarks.caches [--dsn DSN] [--entries 10000 100000] [--lookups 300]
                                [--kinds hnsw ivfflat] [--out FILE] [--write-docs]

Semantic cache: N entries (768-d) are bulk-loaded, then for each index kind (HNSW,
IVFFlat) the index is rebuilt for them and its knob tuned, and ``lookup`` runs for
near-duplicates of stored questions (similarity 0.98, which the default threshold 0.95
accepts: hits, each counted) and for fresh questions (misses), in turn with the raw
single-row index query (``ORDER BY <=> LIMIT 1`` on raw asyncpg, the same knobs as
startup settings) on the same questions: each question's index pages are read once
untimed, then the calls run in an order that rotates from question to question (the
first call of a question would otherwise read its pages cold, a bias for whichever runs
later). The same lookup written by hand on asyncpg (its statement on a pool whose release
sends no reset, the Record as the answer) runs in the rotation too, and each call's client
CPU time (``time.thread_time``) is recorded beside its latency. Then hits counted as earlier
versions counted them (on the entry's row, as before
migration 20261204000001; in the side table by the lookup's own statement, as 0.2.0 did),
for the before/after ratios in the same run. ``store`` latency
at that size is measured too. Standalone it runs on a throwaway embedded server (or the
database of --dsn, whose semantic_cache rows it replaces) and with ``--write-docs`` writes
the "Caches" section of docs/benchmarks.md (``benchmarks.sections``).

Similarity cache (``python -m benchmarks``, or here with ``--similarity ROWS``: ROWS
vector_search rows of 1536 dims loaded with ``bulk_load``, the index it builds tuned, the
"Similarity cache" section written instead of "Caches"): each query runs uncached, then
cached for the first time (a miss: it searches and writes the entry), then again (a hit:
it reads the entry and re-reads the rows), and the hit's answer is checked against the
miss's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt
from pgvector.asyncpg import register_vector

import codeatlas
from codeatlas.config import Settings
from codeatlas.models import SemanticCacheEntryCreate
from codeatlas.repositories import semantic_cache as semantic_cache_module

from . import sections
from .data import make_dataset, near_duplicates
from .measure import summarise
from .tables import VECTOR_SEARCH, TableSpec, insert_rows

__all__ = ["main", "render", "semantic_cache", "similarity_cache"]

_LOAD_CHUNK = 5000
#: The single-row index query a lookup should cost about as much as (one round trip).
_RAW_NEAREST = """
SELECT id, query_embedding <=> $1 AS distance
  FROM semantic_cache
 ORDER BY query_embedding <=> $1
 LIMIT 1"""
#: The same query returning what a lookup returns: the entry's columns (not its embedding).
_RAW_NEAREST_ENTRY = f"""
SELECT {semantic_cache_module._ENTRY_COLUMNS}, query_embedding <=> $1 AS distance
  FROM semantic_cache
 ORDER BY query_embedding <=> $1
 LIMIT 1"""
#: How a hit was counted before migration 20261204000001: on the entry's row, whose counter
#: columns are indexed (never a HOT update), after the lookup's statement as CTE ``best``;
#: for the before/after comparison in the same process.
_COUNT_ON_THE_ROW = """
UPDATE semantic_cache AS s
   SET hit_count = coalesce(s.hit_count, 0) + 1,
       last_accessed = now() AT TIME ZONE 'utc'
  FROM best
 WHERE s.id = best.id
RETURNING s.id, s.cache_key, s.query, s.response, s.model, s.template_id, s.tokens_used,
          s.cost_cents, s.hit_count, s.last_accessed, s.ttl_seconds, s.metadata, s.inserted_at,
          s.updated_at, best._distance, best._pending, best._at"""
#: How 0.2.0 counted a hit: in the side table, in the lookup's own statement (committed with
#: synchronous_commit off, as it was), after the lookup's statement as CTE ``best``.
_COUNT_PER_LOOKUP = """, async_commit AS (
    SELECT set_config('synchronous_commit', 'off', true) AS off
), counted AS (
    INSERT INTO codeatlas_semantic_cache_hits AS h (entry_id, hits, last_accessed)
    SELECT id, 1, now() AT TIME ZONE 'utc' FROM best CROSS JOIN async_commit
    ON CONFLICT (entry_id) DO UPDATE
       SET hits = h.hits + 1, last_accessed = excluded.last_accessed
    RETURNING h.hits, h.last_accessed
)
SELECT best.*, counted.hits FROM best CROSS JOIN counted"""
#: The goal of issue 12: a lookup within 1.5x of the raw single-row index query.
GOAL = 1.5
#: The semantic cache's index kind since migration 20261204000002.
DEFAULT_KIND = "hnsw"


async def _no_reset(connection: asyncpg.Connection) -> None:
    """A pool ``reset`` that sends nothing (the hand-written lookup's pool)."""


async def _load(cache: Any, atlas: codeatlas.Atlas, entries: npt.NDArray[np.float32]) -> float:
    await atlas.executor.execute("TRUNCATE semantic_cache, codeatlas_semantic_cache_hits")
    started = time.perf_counter()
    async with atlas.indexes.bulk_load("semantic_cache"):
        for start in range(0, len(entries), _LOAD_CHUNK):
            await cache.insert_many(
                [
                    SemanticCacheEntryCreate(
                        cache_key=f"bench-{number}",
                        query=f"how does module {number} work?",
                        query_embedding=entries[number],
                        response=f"Module {number} parses its input and returns a summary.",
                        model="bench",
                    )
                    for number in range(start, min(start + _LOAD_CHUNK, len(entries)))
                ]
            )
    return time.perf_counter() - started


async def _hot_updates(atlas: codeatlas.Atlas) -> dict[str, int]:
    """Return the cumulative inserts and (HOT) updates of semantic_cache and the side table."""
    await atlas.executor.execute("SELECT pg_stat_force_next_flush()")
    rows = await atlas.executor.fetch(
        "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
        " WHERE relname IN ('semantic_cache', 'codeatlas_semantic_cache_hits')"
    )
    out: dict[str, int] = {}
    for row in rows:
        out[f"{row['relname']}.inserts"] = int(row["n_tup_ins"])
        out[f"{row['relname']}.updates"] = int(row["n_tup_upd"])
        out[f"{row['relname']}.hot_updates"] = int(row["n_tup_hot_upd"])
    return out


async def semantic_cache(
    atlas: codeatlas.Atlas,
    dsn: str,
    entries: npt.NDArray[np.float32],
    fresh: npt.NDArray[np.float32],
    *,
    lookups: int,
    seed: int,
    advance: Callable[[], None],
    kinds: tuple[str, ...] = ("ivfflat", "hnsw"),
) -> dict[str, Any]:
    """Return lookup (hit, miss) latencies per index kind with ``len(entries)`` entries,
    the raw single-row index query's on the same questions, and store latency.

    Per question, in turn so that noise hits all alike (the question's pages read once
    untimed, then the calls in an order rotating per question): the raw query for the
    hit's question, the hit, the miss, the raw query for the miss's question, the raw
    query on an asyncpg pool (what the pool's acquire and release cost, whatever runs on
    it), and the lookup's statement on the direct connection. Then ``flush_hits`` of what
    the lookups counted; then other hits counted as earlier versions counted them (on the
    entry's row; in the side table per lookup), against the raw query again.
    """
    cache = atlas.semantic_cache
    load_s = await _load(cache, atlas, entries)
    # a steady state, as a cache serving lookups is in: the autovacuum that the bulk load
    # triggers would otherwise run during the first measurements, on the same 2 CPUs
    await atlas.executor.execute("VACUUM (ANALYZE) semantic_cache")
    advance()

    rng = np.random.default_rng([seed, 98])
    targets = rng.choice(len(entries), size=2 * lookups, replace=False)
    near = near_duplicates(entries[targets], 0.98, rng)
    by_kind: dict[str, Any] = {}
    for kind in kinds:
        await atlas.executor.execute("TRUNCATE codeatlas_semantic_cache_hits")
        started = time.perf_counter()
        rebuilt = (await atlas.indexes.rebuild("semantic_cache", kind=kind, concurrently=False))[0]
        build_s = time.perf_counter() - started
        await atlas.executor.execute("ANALYZE semantic_cache")
        tuned = (await atlas.indexes.tune("semantic_cache", target_recall=0.95, seed=seed))[0]
        knob = await cache._probes(None)
        knobs = cache._knobs(knob, exact=False, k=1)
        by_kind[kind] = {
            "params": dict(rebuilt.params),
            "build_s": build_s,
            "knob": tuned.knob,
            "tuned": tuned.probes,
            "tuned_recall": tuned.recall,
            **await _lookups(atlas, dsn, knobs, near, fresh, targets, lookups),
        }
        advance()

    store_times: list[float] = []
    extra = near_duplicates(entries[:lookups], 0.5, rng)
    for number in range(lookups):
        started = time.perf_counter()
        await cache.store(f"new question {number}", extra[number], "a new answer", model="bench")
        store_times.append(time.perf_counter() - started)
    return {
        "entries": len(entries),
        "lookups": lookups,
        "load_s": load_s,
        "kinds": by_kind,
        "store": summarise(store_times),
    }


async def _lookups(
    atlas: codeatlas.Atlas,
    dsn: str,
    knobs: dict[str, str],
    near: npt.NDArray[np.float32],
    fresh: npt.NDArray[np.float32],
    targets: npt.NDArray[np.int64],
    lookups: int,
) -> dict[str, Any]:
    cache = atlas.semantic_cache
    direct = await asyncpg.connect(dsn, server_settings=knobs)
    pool = await asyncpg.create_pool(
        dsn, min_size=1, max_size=1, server_settings=knobs, init=register_vector
    )
    # the lookup written by hand on asyncpg: its statement on a pool whose release sends no
    # reset (as the Atlas' pool after codeatlas' own statements), the Record as the result
    bare = await asyncpg.create_pool(
        dsn, min_size=1, max_size=1, init=register_vector, reset=_no_reset
    )
    assert pool is not None and bare is not None
    try:
        await register_vector(direct)

        async def raw(query: npt.NDArray[np.float32]) -> Any:
            return await direct.fetchrow(_RAW_NEAREST, query)

        async def raw_entry(query: npt.NDArray[np.float32]) -> Any:
            return await direct.fetchrow(_RAW_NEAREST_ENTRY, query)

        statement = cache._lookup_sql(cache._plan().knob, inline=tuple(knobs))
        inline = list(knobs.values())

        async def statement_direct(query: npt.NDArray[np.float32]) -> Any:
            return await direct.fetchrow(statement, query, 0.05, None, *inline)

        async def raw_pooled(query: npt.NDArray[np.float32]) -> Any:
            async with pool.acquire() as connection:
                return await connection.fetchrow(_RAW_NEAREST, query)

        async def by_hand(query: npt.NDArray[np.float32]) -> Any:
            async with bare.acquire() as connection:
                return await connection.fetchrow(statement, query, 0.05, None, *inline)

        async def statement_pooled(query: npt.NDArray[np.float32]) -> Any:
            # the lookup's statement on the Atlas' pool, counting nothing: a warm-up
            return await cache._executor.fetchrow(statement, query, 0.05, None, *inline)

        for _ in range(3):  # warm: statements prepared
            await cache.lookup(near[-1])
            await cache.lookup(fresh[0])
            await raw(near[-1])
            await raw_pooled(near[-1])
            await statement_direct(near[-1])
            await raw_entry(near[-1])
            await by_hand(near[-1])
        times: dict[str, list[float]] = {
            "raw_nearest": [],
            "lookup_hit": [],
            "lookup_miss": [],
            "raw_nearest_miss": [],
            "statement_direct": [],
            "raw_nearest_entry": [],
            "by_hand": [],
        }
        # the client's own CPU time per call (the benchmark's thread): what the Python side
        # costs, apart from the server's time and the wait for it
        cpu: dict[str, list[float]] = {name: [] for name in times}
        wrong_hits = misses_that_hit = 0
        await cache.flush_hits()
        before = await _hot_updates(atlas)
        for number in range(lookups):
            question, unrelated = near[number], fresh[number % len(fresh)]
            calls: list[tuple[str, Callable[[Any], Any], Callable[[Any], Any], Any]] = [
                ("raw_nearest", raw, raw, question),
                ("lookup_hit", cache.lookup, statement_pooled, question),
                ("lookup_miss", cache.lookup, statement_pooled, unrelated),
                ("raw_nearest_miss", raw, raw, unrelated),
                ("statement_direct", statement_direct, statement_direct, question),
                ("raw_nearest_entry", raw_entry, raw_entry, question),
                ("by_hand", by_hand, by_hand, question),
            ]
            # Each call follows an untimed run of the same statement (a lookup: of its
            # statement, which counts nothing) for the same question on the same backend:
            # the first call of a question reads its index pages cold, and the first
            # statement on a backend after another backend ran is slower (by up to ~0.2 ms
            # in the server's own log_min_duration_statement figures), so without it each
            # call's cost depended on what ran before it. The order rotates per question.
            shift = number % len(calls)
            for name, call, warm_up, argument in calls[shift:] + calls[:shift]:
                await warm_up(argument)
                started_cpu = time.thread_time()
                started = time.perf_counter()
                found = await call(argument)
                times[name].append(time.perf_counter() - started)
                cpu[name].append(time.thread_time() - started_cpu)
                if name == "lookup_hit" and (
                    found is None or found.item.cache_key != f"bench-{targets[number]}"
                ):
                    wrong_hits += 1
                if name == "lookup_miss" and found is not None:
                    misses_that_hit += 1
        await asyncio.sleep(1.1)  # a backend reports its counts at most once a second
        await direct.execute("SELECT 1")
        after = await _hot_updates(atlas)
        started = time.perf_counter()
        flushed = await cache.flush_hits()
        flush_s = time.perf_counter() - started
        await asyncio.sleep(1.1)
        await direct.execute("SELECT 1")
        flushed_stats = await _hot_updates(atlas)

        # The raw query on an asyncpg pool against the direct connection, in a pass of its
        # own: in the rotation, the call after it ran ~0.2 ms slower on the server (its own
        # log_min_duration_statement figures), whatever the statement: charged to the
        # neighbour.
        pooled_times: dict[str, list[float]] = {"raw_nearest_pool_ref": [], "raw_nearest_pool": []}
        for number in range(lookups):
            question = near[number]
            pair = [("raw_nearest_pool_ref", raw), ("raw_nearest_pool", raw_pooled)]
            for name, call in pair[:: 1 - 2 * (number % 2)]:
                await call(question)  # warmed as above
                started = time.perf_counter()
                await call(question)
                pooled_times[name].append(time.perf_counter() - started)

        # other hits of the same kind, counted as earlier versions counted them
        best = f"WITH best AS ({statement})"
        earlier = {
            "lookup_hit_counted_on_row": best + _COUNT_ON_THE_ROW,
            "lookup_hit_counted_per_lookup": best + _COUNT_PER_LOOKUP,
        }
        old: dict[str, list[float]] = {"raw_nearest_old": []} | {name: [] for name in earlier}
        order = list(old)
        for number in range(lookups, 2 * lookups):
            question = near[number]
            shift = number % len(order)
            for name in order[shift:] + order[:shift]:
                # warmed as above (the earlier ways by the lookup's statement: no write)
                await (raw if name == "raw_nearest_old" else statement_pooled)(question)
                started = time.perf_counter()
                if name == "raw_nearest_old":
                    await raw(question)
                else:
                    with _sending(earlier[name]):
                        found = await cache.lookup(question)
                    if found is None:
                        wrong_hits += 1
                old[name].append(time.perf_counter() - started)
        await asyncio.sleep(1.1)
        await direct.execute("SELECT 1")
        earlier_counted = await _hot_updates(atlas)
        hot = await _hot_entry(cache, near[0], earlier["lookup_hit_counted_per_lookup"])
    finally:
        await direct.close()
        await pool.close()
        await bare.close()
    return {
        **{name: summarise(values) for name, values in (times | pooled_times | old).items()},
        "client_cpu_us": {name: 1e6 * float(np.median(values)) for name, values in cpu.items()},
        "hot_entry": hot,
        "hits_not_found": wrong_hits,
        "misses_answered": misses_that_hit,
        "flush": {"entries": flushed, "s": flush_s},
        "updates": {
            "lookups": {k: after.get(k, 0) - before.get(k, 0) for k in after},
            "flush": {k: flushed_stats.get(k, 0) - after.get(k, 0) for k in after},
            "earlier": {
                k: earlier_counted.get(k, 0) - flushed_stats.get(k, 0) for k in earlier_counted
            },
        },
    }


async def similarity_cache(
    atlas: codeatlas.Atlas,
    spec: TableSpec,
    queries: npt.NDArray[np.float32],
    *,
    advance: Callable[[], None],
) -> dict[str, Any]:
    """Return latencies of uncached search, cache miss and cache hit (tuned default probes)."""
    repository = spec.repository(atlas)
    await atlas.similarity_cache.invalidate()
    uncached: list[float] = []
    miss: list[float] = []
    hit: list[float] = []
    mismatches = 0
    for query in queries:
        started = time.perf_counter()
        await repository.search_similar(query, 10)
        uncached.append(time.perf_counter() - started)
        started = time.perf_counter()
        first = await repository.search_similar(query, 10, cache=True)
        miss.append(time.perf_counter() - started)
        started = time.perf_counter()
        second = await repository.search_similar(query, 10, cache=True)
        hit.append(time.perf_counter() - started)
        answers = [[(m.item.id, m.similarity) for m in found] for found in (first, second)]
        mismatches += answers[0] != answers[1]
    advance()
    return {
        "table": spec.table,
        "queries": len(queries),
        "uncached": summarise(uncached),
        "miss": summarise(miss),
        "hit": summarise(hit),
        "hit_differs_from_miss": mismatches,
    }


async def _standalone(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"semantic": {}, "lookups": args.lookups, "seed": args.seed}
    async with _connected(args.dsn) as (atlas, dsn):
        results["postgresql"] = await atlas.executor.fetchval("SHOW server_version")
        results["pgvector"] = await atlas.executor.fetchval(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        )
        for count in args.entries:
            data = make_dataset(768, count, args.lookups, seed=args.seed + 1, k=1)
            print(f"semantic cache, {count:,} entries ...", flush=True)
            results["semantic"][str(count)] = await semantic_cache(
                atlas,
                dsn,
                data.base,
                data.queries,
                lookups=args.lookups,
                seed=args.seed,
                advance=lambda: print(".", end="", flush=True),
                kinds=tuple(args.kinds),
            )
            print()
            print(render(results), flush=True)
    return results


async def _similarity_standalone(args: argparse.Namespace) -> dict[str, Any]:
    """Load ``args.similarity`` vector_search rows and measure the similarity cache on them."""
    spec = VECTOR_SEARCH
    rows, queries = args.similarity, args.lookups
    data = make_dataset(spec.dimensions, rows, queries, seed=args.seed)
    async with _connected(args.dsn) as (atlas, _):
        await atlas.executor.execute("TRUNCATE vector_search CASCADE")
        started = time.perf_counter()
        async with atlas.indexes.bulk_load(spec.table):
            await insert_rows(atlas, spec, data.base, chunk=_LOAD_CHUNK)
        load_s = time.perf_counter() - started
        await atlas.executor.execute("ANALYZE vector_search")
        [index] = [i for i in await atlas.indexes.status() if i.table == spec.table]
        [tuned] = await atlas.indexes.tune(spec.table, target_recall=0.95, seed=args.seed)
        print(f"similarity cache, {rows:,} rows ...", flush=True)
        measured = await similarity_cache(
            atlas, spec, data.queries, advance=lambda: print(".", end="", flush=True)
        )
        print()
        return {
            **measured,
            "rows": rows,
            "load_s": load_s,
            "index": {
                "kind": index.strategy,
                "params": {"lists": index.lists} if index.lists else {},
            },
            "tuned": {"knob": tuned.knob, "value": tuned.probes, "recall": tuned.recall},
            "postgresql": await atlas.executor.fetchval("SHOW server_version"),
            "pgvector": await atlas.executor.fetchval(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
            ),
        }


def render_similarity(results: dict[str, Any]) -> str:
    """Return the Markdown body of the Similarity cache section for ``--similarity``."""
    rows = [
        (
            call,
            _ms(results[key]["p50_ms"]),
            _ms(results[key]["p95_ms"]),
            _ms(results[key]["p99_ms"]),
            f"{results[key]['p50_ms'] / results['uncached']['p50_ms']:.2f}x",
        )
        for call, key in (
            ("`search_similar(q, 10)`, no cache", "uncached"),
            ("`search_similar(q, 10, cache=True)`, miss: search, write the entry", "miss"),
            ("`search_similar(q, 10, cache=True)`, hit: read the entry and its rows", "hit"),
        )
    ]
    index, tuned = results["index"], results["tuned"]
    params = ", ".join(f"{k}={v}" for k, v in index["params"].items())
    return "\n".join(
        [
            f"`search_similar(..., cache=True)` on {results['rows']:,} vector_search rows "
            f"(1536 dims, `benchmarks/data.py`'s mixture, loaded with `atlas.indexes.bulk_load` "
            f"in {results['load_s']:.1f} s, which built {index['kind']} ({params}); tuned by "
            f"`atlas.indexes.tune` to {tuned['knob']}={tuned['value']}, recall "
            f"{tuned['recall']:.3f} on its sample), one client, {results['queries']} held-out "
            "queries, each in turn uncached, then cached for the first time (a miss), then "
            f"again (a hit); PostgreSQL {results['postgresql']}, pgvector {results['pgvector']}, "
            "throwaway embedded server. Hits whose answer differed from the miss's: "
            f"{results['hit_differs_from_miss']}.",
            "",
            _table(["call", "p50 ms", "p95 ms", "p99 ms", "p50 / no cache"], rows),
            "",
            "A hit saves the index scan and pays a read of the entry and of the rows it "
            "names; a miss pays the search and the entry's write. The cache pays off where "
            "the same query comes back within the TTL (`CODEATLAS_SIMILARITY_CACHE_TTL`, 300 "
            "s) and the search is costly; a write to the table drops the entries it could "
            "change, in the same transaction (migration 20260101000001: on the tables with a "
            "codebase_id, that codebase's and the unfiltered searches'; else all the table's).",
        ]
    )


#: Concurrent clients and lookups each for the hot-entry measurement.
_HOT_CLIENTS = 8
_HOT_LOOKUPS = 200


@contextlib.contextmanager
def _sending(statement: str) -> Iterator[None]:
    """Make ``lookup`` send *statement* (with its usual parameters) in place of its own:
    an earlier way of counting, with the same work around it (validation, the result)."""
    original = semantic_cache_module._inline_lookup

    def earlier(*args: Any) -> tuple[str, tuple[str, ...]]:
        return statement, original(*args)[1]

    semantic_cache_module._inline_lookup = earlier  # type: ignore[assignment]
    try:
        yield
    finally:
        semantic_cache_module._inline_lookup = original


async def _hot_entry(
    cache: Any, question: npt.NDArray[np.float32], per_lookup: str
) -> dict[str, float]:
    """Return lookups per second of one entry hit by 8 clients at once: ``lookup`` against
    0.2.0's way (the hit counted in the side table by the lookup's statement), in turn."""

    async def client() -> None:
        for _ in range(_HOT_LOOKUPS):
            await cache.lookup(question)

    rates: dict[str, list[float]] = {"lookup": [], "per_lookup": []}
    for round_ in range(4):
        for name in ("lookup", "per_lookup")[:: 1 - 2 * (round_ % 2)]:
            with _sending(per_lookup) if name == "per_lookup" else contextlib.nullcontext():
                started = time.perf_counter()
                await asyncio.gather(*(client() for _ in range(_HOT_CLIENTS)))
                elapsed = time.perf_counter() - started
            rates[name].append(_HOT_CLIENTS * _HOT_LOOKUPS / elapsed)
    return {name: float(np.median(values)) for name, values in rates.items()}


def _ms(value: float) -> str:
    return f"{value:.2f}"


def _pool_ratio(f: dict[str, Any]) -> float:
    """Return the raw query's p50 on an asyncpg pool over the direct connection's (one pass)."""
    return float(f["raw_nearest_pool"]["p50_ms"] / f["raw_nearest_pool_ref"]["p50_ms"])


def render(results: dict[str, Any]) -> str:
    """Return the Markdown body of the Caches section for *results* of ``_standalone``."""
    rows = []
    before = []
    notes = []
    for entries, run in sorted(results["semantic"].items(), key=lambda item: int(item[0])):
        for kind, f in run["kinds"].items():
            raw = f["raw_nearest"]["p50_ms"]
            hit, miss = f["lookup_hit"]["p50_ms"], f["lookup_miss"]["p50_ms"]
            raw_miss = f["raw_nearest_miss"]["p50_ms"]
            pooled = _pool_ratio(f)
            statement = f["statement_direct"]["p50_ms"]
            by_hand = f.get("by_hand", {}).get("p50_ms")  # absent from runs before it
            worst = max(hit / raw, miss / raw_miss)
            rows.append(
                (
                    f"{int(entries):,}",
                    kind,
                    f"{f['knob']}={f['tuned']}",
                    _ms(hit),
                    _ms(raw),
                    f"{hit / raw:.2f}x",
                    _ms(miss),
                    _ms(raw_miss),
                    f"{miss / raw_miss:.2f}x",
                    "yes" if worst <= GOAL else "**no**",
                    f"{statement / raw:.2f}x",
                    f"{hit / f['raw_nearest_entry']['p50_ms']:.2f}x",
                    f"{pooled:.2f}x",
                    f"{hit / raw / pooled:.2f}x",
                    f"{by_hand / raw:.2f}x" if by_hand else "-",
                    f"{hit / by_hand:.2f}x" if by_hand else "-",
                    f"{f['hits_not_found']}/{f['misses_answered']}",
                )
            )
            old_raw = f["raw_nearest_old"]["p50_ms"]
            on_row = f["lookup_hit_counted_on_row"]["p50_ms"]
            per_lookup = f["lookup_hit_counted_per_lookup"]["p50_ms"]
            updates = f["updates"]
            before.append(
                (
                    f"{int(entries):,}",
                    kind,
                    _ms(old_raw),
                    f"{_ms(on_row)} ({on_row / old_raw:.2f}x)",
                    f"{_ms(per_lookup)} ({per_lookup / old_raw:.2f}x)",
                    f"{hit / raw:.2f}x",
                    _writes(updates["lookups"]),
                    _writes(updates["earlier"]),
                    f"{f['flush']['entries']} in {f['flush']['s'] * 1000:.0f} ms: "
                    + _writes(updates["flush"]),
                )
            )
        builds = ", ".join(f"{k} {v['build_s']:.1f} s" for k, v in run["kinds"].items())
        notes.append(
            f"{int(entries):,} entries: loaded in {run['load_s']:.1f} s, index builds {builds}; "
            f"`store` p50 {_ms(run['store']['p50_ms'])} ms."
        )
    lookups = results["lookups"]
    reading = []
    for entries, run in sorted(results["semantic"].items(), key=lambda item: int(item[0])):
        f = run["kinds"].get(DEFAULT_KIND)
        if f is None:
            continue
        raw, pooled = f["raw_nearest"]["p50_ms"], _pool_ratio(f)
        hit, miss = f["lookup_hit"]["p50_ms"], f["lookup_miss"]["p50_ms"]
        worst = max(hit / raw, miss / f["raw_nearest_miss"]["p50_ms"])
        old_raw = f["raw_nearest_old"]["p50_ms"]
        on_row = f["lookup_hit_counted_on_row"]["p50_ms"] / old_raw
        per_lookup = f["lookup_hit_counted_per_lookup"]["p50_ms"] / old_raw
        reading.append(
            f"* **{int(entries):,} entries, {DEFAULT_KIND} (the cache's default index).** "
            f"Hit {hit / raw:.2f}x and miss {miss / f['raw_nearest_miss']['p50_ms']:.2f}x the "
            f"raw query ({'within' if worst <= GOAL else '**outside**'} the {GOAL}x goal); "
            f"a hit counted on the entry's row (v0.1) {on_row:.2f}x, counted in the side "
            f"table by the lookup's statement (0.2.0) {per_lookup:.2f}x. The lookup's "
            f"statement itself costs {f['statement_direct']['p50_ms'] / raw:.2f}x the raw "
            f"query, the raw query returning the entry's columns "
            f"{f['raw_nearest_entry']['p50_ms'] / raw:.2f}x (against which the hit is "
            f"{hit / f['raw_nearest_entry']['p50_ms']:.2f}x); the rest is the pool and "
            f"codeatlas' work per call (split by `python -m benchmarks.pool_reset --cpu`). "
            f"The raw query on an asyncpg pool "
            f"with asyncpg's reset costs {pooled:.2f}x the direct connection (the "
            f"lookup's pool skips that reset), and against that the hit is "
            f"{hit / raw / pooled:.2f}x. Near-duplicate lookups that did not find their entry "
            f"(the index's recall at the tuned knob; of {3 * lookups}: the hits above and "
            f"those counted the earlier ways): {f['hits_not_found']}."
            + _by_hand_reading(f)
            + _hot_reading(f)
        )
    return "\n".join(
        [
            f"Semantic cache lookups (`atlas.semantic_cache.lookup`, 768 dims, threshold 0.95, "
            f"one client, {lookups} lookups of each kind per row; PostgreSQL "
            f"{results['postgresql']}, pgvector {results['pgvector']}, throwaway embedded "
            "server). Entries from `benchmarks/data.py`'s mixture; hits are near-duplicates "
            "of stored questions (similarity 0.98), misses fresh questions from the mixture. "
            "*Raw* is the single-row index query on raw asyncpg, one direct connection, the "
            "same knobs as startup settings (`ORDER BY query_embedding <=> $1 LIMIT 1`: no "
            "threshold, no expiry or model filter, no counting), on the same question, run "
            "in turn with the lookups so noise hits both alike, in an order that rotates from "
            "question to question; each call follows an untimed run of the same statement for "
            "the same question on the same backend (a lookup: of its statement, which counts "
            "nothing), since the first call of a question reads its index pages cold and the "
            "first statement on a backend after another backend ran is slower (by up to ~0.2 "
            "ms in the server's own `log_min_duration_statement` figures): without it a call's "
            "cost depended on what ran before it. *Raw with the entry's columns* is the same "
            "query returning what a lookup returns (the entry's columns but its embedding, "
            "and the distance), as a hand-written cache lookup would. *Statement* "
            "is the lookup's own statement (knobs inline, threshold, filters, the entry's "
            "written and unfolded hits; it writes nothing, the hit is counted in the Atlas' "
            "memory) sent on that direct connection: what the SQL costs. *Raw on a pool* is "
            "the raw query on an asyncpg pool of one connection (the baseline "
            "`benchmarks/clients.py` uses for search, with asyncpg's default reset on release, "
            "one more round trip), "
            "timed against the direct connection in a pass of its own (in the rotation, the "
            "call after it ran ~0.2 ms slower on the server, whatever the statement: the "
            "server's own `log_min_duration_statement` figures): its ratio to the direct "
            "connection is what a pool's acquire, release and reset cost, and *hit / raw on "
            "a pool* is hit / raw divided by it. A lookup runs on the Atlas' pool, which skips "
            "that reset after codeatlas' own statements (`benchmarks/pool_reset.py`) but "
            "still pays acquire and release. *By hand* is the lookup as a caller could write "
            "it on asyncpg: the lookup's statement on an asyncpg pool of one connection whose "
            "release sends no reset, answering with the asyncpg Record (no validation, no "
            "typed row, no counting), in the rotation. The index is rebuilt per kind and tuned "
            "(`atlas.indexes.tune`, recall 0.95 on its sample). Absolute times are noisy on "
            "this shared 2-CPU machine; ratios within a row hold.",
            "",
            _table(
                [
                    "entries",
                    "index",
                    "tuned",
                    "hit p50 ms",
                    "raw p50 ms",
                    "hit / raw",
                    "miss p50 ms",
                    "raw (miss's question) p50 ms",
                    "miss / raw",
                    f"within {GOAL}x",
                    "statement / raw",
                    "hit / raw with the entry's columns",
                    "raw on a pool / raw",
                    "hit / raw on a pool",
                    "by hand / raw",
                    "hit / by hand",
                    "hits not found / misses answered",
                ],
                rows,
            ),
            "",
            "Counting hits as earlier versions did, on other entries in the same run, against "
            "the raw query again (the calls rotating per question, each warmed as above): *on "
            "the row* (v0.1, "
            "before migration 20261204000001) is the lookup's statement followed by `UPDATE "
            "semantic_cache SET hit_count = hit_count + 1, last_accessed = now()`; "
            "`hit_count` and `last_accessed` are indexed (the Elixir schema), so that update "
            "is never HOT: it inserts the new row version into every index, the vector index "
            "included. *Per lookup* (0.2.0) is the lookup's statement followed by the side "
            "table's upsert of one hit, committed with `synchronous_commit = off`, as 0.2.0's "
            "lookup did. Both are sent by `lookup` itself in place of its statement, so the "
            "work around the statement (validation, the pool, the result) is the same. "
            "Writes as `pg_stat_user_tables` counted them; *flush* is "
            "`flush_hits()` writing the lookups' hits (one statement) and folding them into "
            "their entries afterwards.",
            "",
            _table(
                [
                    "entries",
                    "index",
                    "raw p50 ms",
                    "on the row (v0.1) p50 ms",
                    "per lookup (0.2.0) p50 ms",
                    "now: hit / raw (above)",
                    "writes by the lookups (now)",
                    "writes by the earlier ways",
                    "flush",
                ],
                before,
            ),
            "",
            " ".join(notes),
            "",
            *reading,
        ]
    )


def _by_hand_reading(f: dict[str, Any]) -> str:
    """Return the reading's sentences on the hand-written lookup and the client's CPU."""
    if "by_hand" not in f:
        return ""
    raw, by_hand = f["raw_nearest"]["p50_ms"], f["by_hand"]["p50_ms"]
    cpu = f["client_cpu_us"]
    return (
        f" The same lookup written by hand on asyncpg (its statement on a pool that sends no "
        f"reset, the Record as the answer) costs {by_hand / raw:.2f}x the raw query: what "
        "the statement and a pool cost before any of codeatlas' work; against it the hit "
        f"is {f['lookup_hit']['p50_ms'] / by_hand:.2f}x. The client's own CPU time per "
        f"call (median): raw {cpu['raw_nearest']:.0f} us, the statement on the direct "
        f"connection {cpu['statement_direct']:.0f} us, by hand {cpu['by_hand']:.0f} us, "
        f"the hit {cpu['lookup_hit']:.0f} us and the miss {cpu['lookup_miss']:.0f} us."
    )


def _hot_reading(f: dict[str, Any]) -> str:
    """Return the reading's sentence on the hot entry, if it was measured."""
    hot = f.get("hot_entry")
    if hot is None:
        return ""
    return (
        f" One entry hit by {_HOT_CLIENTS} clients at once ({_HOT_LOOKUPS} lookups each, "
        f"pool of {_HOT_CLIENTS}): {hot['lookup']:,.0f} lookups/s against "
        f"{hot['per_lookup']:,.0f}/s counted per lookup as 0.2.0 did "
        f"({hot['lookup'] / hot['per_lookup']:.2f}x): both bound by the 2 CPUs here, "
        "the side row's lock did not show."
    )


def _writes(counts: dict[str, int]) -> str:
    """Return the writes of a step, from the differences of ``_hot_updates``."""
    parts = []
    for table in ("semantic_cache", "codeatlas_semantic_cache_hits"):
        inserts, updates = counts.get(f"{table}.inserts", 0), counts.get(f"{table}.updates", 0)
        if inserts or updates:
            hot = counts.get(f"{table}.hot_updates", 0)
            parts.append(f"{table}: {inserts} inserts, {updates} updates ({hot} HOT)")
    return "; ".join(parts) or "none"


def _table(header: list[str], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


@contextlib.asynccontextmanager
async def _connected(dsn: str | None) -> AsyncIterator[tuple[codeatlas.Atlas, str]]:
    """Yield a migrated Atlas and its DSN: on *dsn*, else on a throwaway embedded server."""
    if dsn is not None:
        async with codeatlas.connect(dsn) as atlas:
            yield atlas, dsn
        return
    with tempfile.TemporaryDirectory(prefix="codeatlas-caches-") as scratch:
        settings = Settings(
            data_dir=Path(scratch) / "pgdata", pool_min_size=1, pool_max_size=_HOT_CLIENTS
        )
        async with codeatlas.connect(settings=settings) as atlas:
            assert atlas.server is not None
            yield atlas, atlas.server.dsn("codeatlas")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.caches")
    parser.add_argument("--dsn")
    parser.add_argument("--entries", type=int, nargs="+", default=[10_000])
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--kinds", nargs="+", default=["hnsw", "ivfflat"])
    parser.add_argument("--seed", type=int, default=20250101)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument(
        "--render", type=Path, help="measure nothing: render the figures of this --out file"
    )
    parser.add_argument(
        "--similarity",
        type=int,
        metavar="ROWS",
        help="measure the similarity cache on ROWS vector_search rows instead",
    )
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="write the Caches (or, with --similarity, Similarity cache) section",
    )
    args = parser.parse_args(argv)
    if args.similarity is not None:
        measured = asyncio.run(_similarity_standalone(args))
        print(render_similarity(measured))
        if args.out is not None:
            args.out.write_text(json.dumps(measured, indent=1))
        if args.write_docs:
            command = (
                f"python -m benchmarks.caches --similarity {args.similarity} "
                f"--lookups {args.lookups} --write-docs"
            )
            sections.replace("Similarity cache", command, render_similarity(measured))
        return
    if args.render is not None:
        results = json.loads(args.render.read_text())
        print(render(results))
    else:
        results = asyncio.run(_standalone(args))
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=1))
    if args.write_docs:
        sections.replace("Caches", _command(results), render(results))


def _command(results: dict[str, Any]) -> str:
    """Return the command that measures *results* (written at the head of the section)."""
    entries = " ".join(sorted(results["semantic"], key=int))
    kinds = sorted({kind for run in results["semantic"].values() for kind in run["kinds"]})
    shown = "" if kinds == ["hnsw", "ivfflat"] else f" --kinds {' '.join(kinds)}"
    return (
        f"python -m benchmarks.caches --entries {entries} --lookups {results['lookups']}"
        f"{shown} --write-docs"
    )


if __name__ == "__main__":
    main()
