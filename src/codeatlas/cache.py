"""The similarity cache: storage for the answers of ``search_similar(..., cache=True)``.

``SimilarityCache`` (``atlas.similarity_cache``, table ``vector_similarity_cache``) is plain
storage: it reads and writes the entry of one search by key and knows nothing of searching.
The search path (``codeatlas.search``) decides when to consult it: it computes the entry's
``key`` (a hash of the table, query vector, k, filters, similarity floor, probes and
exactness) and ``scope`` (the ``codebase_id`` the search filtered on, ``*`` when it did
not), reads the entry, and on a miss searches and writes the answer. An entry holds one row
per hit: the hit's primary key (``target_file_path = "<table>:<key>"``) and similarity, so
a hit re-reads the current rows. Writes to a searchable table invalidate its entries in the
same statement (triggers of migration 20260101000001); entries also expire after
``Settings.similarity_cache_ttl`` seconds.

The semantic cache (LLM responses by query embedding) is a searchable table repository:
``codeatlas.repositories.semantic_cache``.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ._db import Executor
from .errors import InvalidInputError
from .filters import Contains, NotNull, Range, Where
from .models import VectorSimilarityCache, VectorSimilarityCacheCreate, VectorSimilarityCacheUpdate
from .models._types import check_text
from .repositories._base import Repository

__all__ = ["CachedHit", "SimilarityCache"]

_GLOBAL_SCOPE: Final = "*"
#: Longest scope: vector_similarity_cache.codebase_id is varchar(255).
_MAX_SCOPE: Final = 255
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


@dataclass(frozen=True, slots=True)
class CachedHit:
    """One hit of a cached search: the row's primary key (as text) and its similarity."""

    key: str
    similarity: float


class SimilarityCache(
    Repository[VectorSimilarityCache, VectorSimilarityCacheCreate, VectorSimilarityCacheUpdate]
):
    """``atlas.similarity_cache``: the stored answers of ``search_similar(cache=True)``."""

    row_model = VectorSimilarityCache
    create_model = VectorSimilarityCacheCreate
    update_model = VectorSimilarityCacheUpdate

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
        codebase = (where or {}).get("codebase_id") if isinstance(where, Mapping) else None
        # the column is varchar(255): a longer id (it matches no row) is cached globally
        if isinstance(codebase, str) and len(codebase) <= _MAX_SCOPE:
            return codebase
        return _GLOBAL_SCOPE

    async def read(self, scope: str, key: str) -> builtins.list[CachedHit] | None:
        """Return the hits of the unexpired entry *key* in *scope*, best first; None if none."""
        scope, key = self._entry(scope, key)
        ttl = self._executor.state.similarity_cache_ttl
        rows = await self._executor.fetch(_READ_ENTRY, scope, key, ttl)
        if not rows:
            return None
        hits = [
            CachedHit(row["target_file_path"].split(":", 1)[1], float(row["similarity_score"]))
            for row in rows
        ]
        return [] if [hit.key for hit in hits] == [_EMPTY_MARK] else hits

    async def write(
        self, scope: str, key: str, table: str, hits: Sequence[tuple[Any, float]]
    ) -> None:
        """Store *hits* (primary key, similarity) of a search of *table* as entry *key*.

        Replaces the entry's previous hits and drops the expired entries of *scope*, in one
        transaction; an empty *hits* is stored too (as a marker row), so "nothing matched"
        is answered from the cache as well.
        """
        scope, key = self._entry(scope, key)
        prefix = f"{check_text(table, field='table')}:"
        targets = [f"{prefix}{primary_key}" for primary_key, _ in hits]
        scores = [float(similarity) for _, similarity in hits]
        if not hits:
            targets, scores = [f"{prefix}{_EMPTY_MARK}"], [0.0]
        ttl = self._executor.state.similarity_cache_ttl
        async with self._executor.transaction() as tx:
            await tx.execute(_DELETE_ENTRY, scope, key)
            await tx.execute(_DELETE_EXPIRED, scope, ttl)
            await tx.execute(_INSERT_ENTRY, scope, key, targets, scores)

    def _entry(self, scope: object, key: object) -> tuple[str, str]:
        """Return *scope* and *key* checked as an entry's address (text of the column sizes)."""
        checked: tuple[str, str] = (
            self._value("codebase_id", scope),
            self._value("query_vector_hash", key),
        )
        if len(checked[0]) > _MAX_SCOPE or len(checked[1]) > 64:
            raise InvalidInputError("a cache scope is at most 255 characters, a key at most 64")
        return checked

    async def invalidate(self, codebase_id: str | None = None) -> int:
        """Drop the entries of *codebase_id* (all entries when None); return how many."""
        if codebase_id is not None:
            codebase_id = self._value("codebase_id", codebase_id)
        if codebase_id is None:
            status = await self._executor.execute("DELETE FROM vector_similarity_cache")
        else:
            status = await self._executor.execute(
                "DELETE FROM vector_similarity_cache WHERE codebase_id = $1", codebase_id
            )
        return int(status.split()[-1])
