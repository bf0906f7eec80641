"""The two caches: cache-through similarity search, and the semantic (LLM response) cache.

``SimilarityCache`` (``atlas.similarity_cache``, table ``vector_similarity_cache``) stores
what a ``search_similar(..., cache=True)`` returned: one row per hit, keyed by a hash of
the table, query vector, k, filters, similarity floor, probes and exactness, scoped by the
``codebase_id`` the search filtered on (``*`` when it did not). Rows hold the hit's primary
key (``target_file_path = "<table>:<key>"``) and similarity, so a hit re-reads the current
rows and returns exactly what the search returned. Writes to a searchable table invalidate
its entries in the same statement (triggers of migration 20260101000001); entries also
expire after ``Settings.similarity_cache_ttl`` seconds.

``SemanticCache`` (``atlas.semantic_cache``, table ``semantic_cache``, 768-d) answers "was
a question like this one answered already?": ``lookup`` returns the best unexpired entry at
or above a similarity threshold and counts the hit; ``store`` upserts by ``cache_key``;
the table is kept under ``max_entries`` by evicting the least recently hit entries.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ._db import Executor
from ._state import CacheStats
from .errors import InvalidInputError
from .filters import Contains, NotNull, Range, Where
from .models import (
    SemanticCacheEntry,
    SemanticCacheEntryCreate,
    SemanticCacheEntryUpdate,
    VectorSimilarityCache,
    VectorSimilarityCacheCreate,
    VectorSimilarityCacheUpdate,
)
from .models._types import validate_vector
from .repositories._base import Repository, RowT
from .search import Match, SearchableRepository

__all__ = ["CacheStats", "SemanticCache", "SimilarityCache"]

_GLOBAL_SCOPE: Final = "*"
#: Marks a cached search that matched nothing (so that an empty answer is cached too).
_EMPTY_MARK: Final = "#empty"

_READ_ENTRY: Final = """
SELECT target_file_path, similarity_score
  FROM vector_similarity_cache
 WHERE codebase_id = $1 AND query_vector_hash = $2
   AND created_at > (now() AT TIME ZONE 'utc') - make_interval(secs => $3)
 ORDER BY id"""
_DELETE_ENTRY: Final = """
DELETE FROM vector_similarity_cache WHERE codebase_id = $1 AND query_vector_hash = $2"""
_DELETE_EXPIRED: Final = """
DELETE FROM vector_similarity_cache
 WHERE codebase_id = $1 AND created_at <= (now() AT TIME ZONE 'utc') - make_interval(secs => $2)"""
_INSERT_ENTRY: Final = """
INSERT INTO vector_similarity_cache
       (codebase_id, query_vector_hash, target_file_path, similarity_score, created_at)
SELECT $1, $2, target, score, now() AT TIME ZONE 'utc'
  FROM unnest($3::text[], $4::float8[]) AS hit(target, score)"""


def _canonical(value: Any) -> Any:
    """Return *value* as JSON-able data with a stable form (for the cache key)."""
    if isinstance(value, Range):
        return {"range": [_canonical(b) for b in (value.gt, value.ge, value.lt, value.le)]}
    if isinstance(value, Contains):
        return {"contains": _canonical(value.value)}
    if isinstance(value, NotNull):
        return {"not_null": True}
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, set | frozenset):
        return sorted((_canonical(v) for v in value), key=repr)
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


class SimilarityCache(
    Repository[VectorSimilarityCache, VectorSimilarityCacheCreate, VectorSimilarityCacheUpdate]
):
    """``atlas.similarity_cache``: cache-through storage for ``search_similar(cache=True)``."""

    table = "vector_similarity_cache"
    row_model = VectorSimilarityCache
    create_model = VectorSimilarityCacheCreate
    update_model = VectorSimilarityCacheUpdate
    natural_key = ("codebase_id", "query_vector_hash", "target_file_path")

    def __init__(self, executor: Executor) -> None:
        super().__init__(executor)

    @staticmethod
    def key(
        table: str,
        vector: npt.NDArray[np.float32],
        k: int,
        where: Where | None,
        min_similarity: float | None,
        probes: int,
        exact: bool,
    ) -> str:
        """Return the 64-hex cache key of one search."""
        digest = hashlib.sha256()
        digest.update(table.encode())
        digest.update(np.ascontiguousarray(vector, dtype="<f4").tobytes())
        options = [k, _canonical(where or {}), min_similarity, probes, exact]
        digest.update(json.dumps(options, sort_keys=True, default=str).encode())
        return digest.hexdigest()

    @staticmethod
    def scope(where: Where | None) -> str:
        """Return the codebase an entry belongs to: the one the search filtered on, or ``*``."""
        codebase = (where or {}).get("codebase_id")
        return codebase if isinstance(codebase, str) else _GLOBAL_SCOPE

    async def search_through(
        self,
        repository: SearchableRepository[RowT, Any, Any],
        vector: npt.NDArray[np.float32],
        k: int,
        *,
        where: Where | None,
        min_similarity: float | None,
        probes: int,
        exact: bool,
        include_embedding: bool,
    ) -> builtins.list[Match[RowT]]:
        """Return the cached answer of this search, or search and cache the answer."""
        key = self.key(repository.table, vector, k, where, min_similarity, probes, exact)
        scope = self.scope(where)
        ttl = self._executor.state.similarity_cache_ttl
        cached = await self._executor.fetch(_READ_ENTRY, scope, key, ttl)
        if cached:
            hits = await self._rebuild(repository, cached, include_embedding)
            if hits is not None:
                return hits
        matches = await repository._search(
            vector, k, where, min_similarity, probes, exact, include_embedding
        )
        prefix = f"{repository.table}:"
        targets = [f"{prefix}{m.item.__dict__[repository.primary_key]}" for m in matches]
        scores = [m.similarity for m in matches]
        if not matches:
            targets, scores = [f"{prefix}{_EMPTY_MARK}"], [0.0]
        async with self._executor.transaction() as tx:
            await tx.execute(_DELETE_ENTRY, scope, key)
            await tx.execute(_DELETE_EXPIRED, scope, ttl)
            await tx.execute(_INSERT_ENTRY, scope, key, targets, scores)
        return matches

    async def _rebuild(
        self,
        repository: SearchableRepository[RowT, Any, Any],
        cached: Sequence[Any],
        include_embedding: bool,
    ) -> builtins.list[Match[RowT]] | None:
        """Return the cached matches with their current rows, or None if a row is gone."""
        keys: builtins.list[str] = [row["target_file_path"].split(":", 1)[1] for row in cached]
        if keys == [_EMPTY_MARK]:
            return []
        pk_type = repository.row_model.model_fields[repository.primary_key].annotation
        typed: builtins.list[Any] = [
            uuid.UUID(key) if pk_type is uuid.UUID else int(key) for key in keys
        ]
        rows = await repository.get_many(typed, include_vectors=include_embedding)
        if len(rows) != len(typed):
            return None  # deleted by a writer the triggers did not see: search again
        return [
            Match(row, float(entry["similarity_score"]))
            for row, entry in zip(rows, cached, strict=True)
        ]

    async def invalidate(self, codebase_id: str | None = None) -> int:
        """Drop the entries of *codebase_id* (all entries when None); return how many."""
        if codebase_id is None:
            status = await self._executor.execute("DELETE FROM vector_similarity_cache")
        else:
            status = await self._executor.execute(
                "DELETE FROM vector_similarity_cache WHERE codebase_id = $1", codebase_id
            )
        return int(status.split()[-1])


_LOOKUP: Final = """
WITH best AS (
    SELECT id, query_embedding <=> $1 AS distance
      FROM semantic_cache
     WHERE query_embedding IS NOT NULL
       AND query_embedding <=> $1 <= $2
       AND (ttl_seconds IS NULL
            OR inserted_at + make_interval(secs => ttl_seconds) > (now() AT TIME ZONE 'utc'))
       AND ($3::varchar IS NULL OR model = $3::varchar)
     ORDER BY query_embedding <=> $1
     LIMIT 1
)
UPDATE semantic_cache AS s
   SET hit_count = coalesce(s.hit_count, 0) + 1,
       last_accessed = now() AT TIME ZONE 'utc'
  FROM best
 WHERE s.id = best.id
RETURNING s.id, s.cache_key, s.query, s.response, s.model, s.template_id, s.tokens_used,
          s.cost_cents, s.hit_count, s.last_accessed, s.ttl_seconds, s.metadata, s.inserted_at,
          s.updated_at, best.distance AS _distance"""
_EXPIRE: Final = """
DELETE FROM semantic_cache
 WHERE ttl_seconds IS NOT NULL
   AND inserted_at + make_interval(secs => ttl_seconds) <= (now() AT TIME ZONE 'utc')"""
_EVICT: Final = """
DELETE FROM semantic_cache
 WHERE id IN (SELECT id FROM semantic_cache
               ORDER BY coalesce(last_accessed, inserted_at) ASC, coalesce(hit_count, 0) ASC
               LIMIT greatest((SELECT count(*) FROM semantic_cache) - $1, 0))"""


class SemanticCache(
    SearchableRepository[SemanticCacheEntry, SemanticCacheEntryCreate, SemanticCacheEntryUpdate]
):
    """``atlas.semantic_cache``: reuse answers to questions similar enough to earlier ones."""

    table = "semantic_cache"
    row_model = SemanticCacheEntry
    create_model = SemanticCacheEntryCreate
    update_model = SemanticCacheEntryUpdate
    natural_key = ("cache_key",)
    vector_column = "query_embedding"
    dimensions = 768
    vector_index = "idx_semantic_cache_query_embedding_vector"

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
        """Return the most similar unexpired entry at or above *threshold*, counting the hit."""
        vector = validate_vector(embedding, self.dimensions, field="embedding")
        if not -1.0 <= threshold <= 1.0:
            raise InvalidInputError(f"threshold must be within -1..1, got {threshold!r}")
        chosen_probes = await self._probes(probes)
        # A hit commits its counter update; not waiting for that WAL flush keeps a hit as
        # fast as a miss, and a counter lost in a crash costs nothing.
        settings = self._knobs(chosen_probes, exact=False) | {"synchronous_commit": "off"}
        async with self._executor.with_settings(settings) as tx:
            record = await tx.fetchrow(_LOOKUP, vector, 1.0 - threshold, model)
        if record is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return Match(self._row(record), 1.0 - float(record["_distance"]))

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
        key = cache_key or hashlib.sha256(f"{model or ''}\x00{query}".encode()).hexdigest()
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
        async with self._executor.transaction() as tx:
            stored = await SemanticCache(tx).upsert(entry)
            await tx.execute(_EVICT, self.max_entries)
        return stored

    async def expire(self) -> int:
        """Delete every expired entry; return how many."""
        status = await self._executor.execute(_EXPIRE)
        return int(status.split()[-1])
