"""The two caches: semantic cache lookups at N entries, similarity cache hit against miss.

Semantic cache: N entries (768-d) are bulk-loaded, then for each index kind (IVFFlat,
HNSW) the index is rebuilt for them and its knob tuned, and ``lookup`` runs for
near-duplicates of stored questions (similarity 0.98, which the default threshold 0.95
accepts: hits, each of which also updates the entry's hit counter) and for fresh
questions (misses), against the raw single-row index query (``ORDER BY <=> LIMIT 1`` on
raw asyncpg, the same knobs as startup settings) on the same questions. ``store``
latency at that size is measured too (it upserts and keeps the size bound with one
``DELETE``).

Similarity cache: each query runs uncached, then cached for the first time (a miss: it
searches and writes the entry), then again (a hit: it reads the entry and re-reads the
rows), and the hit's answer is checked against the miss's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt
from pgvector.asyncpg import register_vector

import codeatlas
from codeatlas.models import SemanticCacheEntryCreate

from .data import near_duplicates
from .measure import summarise
from .tables import TableSpec

__all__ = ["semantic_cache", "similarity_cache"]

_LOAD_CHUNK = 5000
#: The single-row index query a lookup should cost about as much as (one round trip).
_RAW_NEAREST = """
SELECT id, query_embedding <=> $1 AS distance
  FROM semantic_cache
 ORDER BY query_embedding <=> $1
 LIMIT 1"""


async def _raw_lookup_ms(
    dsn: str, settings: dict[str, str], queries: npt.NDArray[np.float32]
) -> dict[str, float]:
    """Return the latencies of the raw single-row index query, knobs as startup settings."""
    connection = await asyncpg.connect(dsn, server_settings=settings)
    try:
        await register_vector(connection)
        times = []
        for query in queries:
            started = time.perf_counter()
            await connection.fetchrow(_RAW_NEAREST, query)
            times.append(time.perf_counter() - started)
    finally:
        await connection.close()
    return summarise(times)


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
    the raw single-row index query's on the same questions, and store latency."""
    cache = atlas.semantic_cache
    await atlas.executor.execute("TRUNCATE semantic_cache")
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
    load_s = time.perf_counter() - started
    advance()

    rng = np.random.default_rng([seed, 98])
    targets = rng.choice(len(entries), size=lookups, replace=False)
    near = near_duplicates(entries[targets], 0.98, rng)
    by_kind: dict[str, Any] = {}
    for kind in kinds:
        started = time.perf_counter()
        rebuilt = (await atlas.indexes.rebuild("semantic_cache", kind=kind, concurrently=False))[0]
        build_s = time.perf_counter() - started
        await atlas.executor.execute("ANALYZE semantic_cache")
        tuned = (await atlas.indexes.tune("semantic_cache", target_recall=0.95, seed=seed))[0]
        hit_times: list[float] = []
        miss_times: list[float] = []
        wrong_hits = 0
        misses_that_hit = 0
        for _ in range(2):  # warm: statements prepared, index pages read
            await cache.lookup(near[0])
            await cache.lookup(fresh[0])
        for number in range(lookups):
            started = time.perf_counter()
            found = await cache.lookup(near[number])
            hit_times.append(time.perf_counter() - started)
            if found is None or found.item.cache_key != f"bench-{targets[number]}":
                wrong_hits += 1
            started = time.perf_counter()
            missed = await cache.lookup(fresh[number % len(fresh)])
            miss_times.append(time.perf_counter() - started)
            if missed is not None:
                misses_that_hit += 1
        knob = await cache._probes(None)
        raw = await _raw_lookup_ms(dsn, cache._knobs(knob, exact=False, k=1), near)
        by_kind[kind] = {
            "params": dict(rebuilt.params),
            "build_s": build_s,
            "knob": tuned.knob,
            "tuned": tuned.probes,
            "tuned_recall": tuned.recall,
            "lookup_hit": summarise(hit_times),
            "lookup_miss": summarise(miss_times),
            "raw_nearest": raw,
            "hits_not_found": wrong_hits,
            "misses_answered": misses_that_hit,
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
