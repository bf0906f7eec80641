"""Cosine top-k search over the vector indexes (IVFFlat, HNSW, quantised; see index_strategies).

Every repository over a table with a vector column derives from ``SearchableRepository``
and so offers ``search_similar`` and ``search_similar_many``. On a full-precision index
(``ivfflat``, ``hnsw``) the query is

    SELECT <columns>, <vec> <=> $1 AS _distance FROM <table>
     WHERE <vec> IS NOT NULL [AND <filters>] [AND <vec> <=> $1 <= <max distance>]
     ORDER BY <vec> <=> $1 LIMIT $2

with the vector bound in binary, which is the shape PostgreSQL answers from the index; on
a quantised one the same query orders ``k * overfetch`` candidates by the index's
expression and re-ranks them by ``<vec> <=> $1`` (``index_strategies.ranked_sql``). The
index's kind is read from the catalog and cached with its tuned knob. The knobs
(``ivfflat.probes`` or ``hnsw.ef_search``, and the iterative scan) are ``SET LOCAL`` in the
query's own transaction, sent together with its ``BEGIN`` (inside a caller's transaction
they are restored afterwards), so a pooled connection never carries them to its next user.
``exact=True`` orders by ``(<vec> <=> $1) + 0``, an expression no index can serve: exactness
must not rest on a setting, since a prepared statement's cached generic plan ignores later
setting changes. With pgvector 0.8 iterative scans a
filtered search keeps probing lists until k rows match (or every list was read), so a
short result means fewer than k rows match; on an older pgvector a short filtered result
is completed by an exact pass, and the fallback is logged.
"""

from __future__ import annotations

import builtins
import logging
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Generic

import numpy as np
import numpy.typing as npt

from . import _spans as telemetry
from ._db import Executor
from ._pool import PackedVector
from .cache import CachedHit, SimilarityCache
from .errors import InvalidInputError
from .filters import Where
from .index_strategies import DEFAULT_PROBES, SearchPlan, ranked_sql, read_plan, search_settings
from .models._types import validate_vector
from .repositories._base import CreateT, Repository, RowT, UpdateT, check_flag

__all__ = ["DEFAULT_PROBES", "MAX_K", "MAX_PROBES", "Match", "SearchableRepository"]

logger = logging.getLogger("codeatlas.search")

MAX_K: Final = 1000
#: ``ivfflat.probes`` accepts 1..32768 (the server refuses more).
MAX_PROBES: Final = 32768


@dataclass(frozen=True, slots=True)
class Match(Generic[RowT]):
    """One search hit: the row, and its cosine score (``similarity = 1 - distance``).

    ``search_text`` and ``search_hybrid`` (``codeatlas.text_search``) also fill the ranks
    and scores of their rankings; ``search_similar`` leaves them None.
    """

    item: RowT
    #: cosine similarity, 1 - cosine distance: 1 identical, 0 orthogonal, -1 opposite
    #: (lexical hits without a query embedding, or without a stored vector: 0.0)
    similarity: float
    #: 1-based rank in the vector ranking (None: not among its candidates)
    vector_rank: int | None = None
    #: 1-based rank in the ``ts_rank_cd`` ranking (None: not among its candidates)
    text_rank: int | None = None
    #: cosine similarity to the query embedding (None: no embedding, or none stored)
    vector_similarity: float | None = None
    #: ``ts_rank_cd`` of the row's ``search_tsv`` for the query (None: no lexical match)
    text_score: float | None = None
    #: what the ranking sorted by: the fused RRF score (search_hybrid), ts_rank_cd
    #: (search_text); None from search_similar
    score: float | None = None

    @property
    def distance(self) -> float:
        """Cosine distance as pgvector's ``<=>`` defines it (0..2)."""
        return 1.0 - self.similarity


class SearchableRepository(Repository[RowT, CreateT, UpdateT]):
    """A repository over a table with one IVFFlat-indexed vector column.

    The column, its dimensions and its index are derived from the row model's
    ``__table_spec__`` (its ``vector_index`` and its vector-typed field).
    """

    # Derived once per subclass in __init_subclass__, from row_model.
    vector_column: ClassVar[str]
    dimensions: ClassVar[int]
    vector_index: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "row_model" not in cls.__dict__:
            return  # an intermediate base, or a subclass of a table's repository
        vector = cls.table_spec.vector
        if vector is None:
            raise TypeError(
                f"{cls.__name__} is searchable, but {cls.row_model.__name__}.__table_spec__ "
                "names no vector_index"
            )
        cls.vector_column = vector.column
        cls.dimensions = vector.dimensions
        cls.vector_index = vector.name

    def __init__(self, executor: Executor) -> None:
        super().__init__(executor)

    # -- the query ------------------------------------------------------------------------

    def _search_sql(
        self,
        *,
        filters: builtins.list[str],
        max_distance_param: str | None,
        include_embedding: bool,
        limit_param: str,
        exact: bool,
        query_ref: str = "$1",
        alias: str = "",
        knob: int | None = None,
    ) -> str:
        """Return the search statement in the shape this index's strategy can serve.

        The strategy is the one the last ``_probes`` call read (see index_strategies); *knob*
        is the value ``_probes`` returned (it sets the over-fetch of quantised kinds).
        """
        vec = f"{alias}{self.vector_column}"
        columns = ", ".join(
            f"{alias}{c}" for c in self.columns if include_embedding or c not in self.vector_columns
        )
        conditions = [f"{vec} IS NOT NULL", *filters]
        if max_distance_param is not None:
            conditions.append(f"{vec} <=> {query_ref} <= {max_distance_param}")
        plan = self._plan()
        return ranked_sql(
            plan,
            table=self.table,
            vec=vec,
            dimensions=self.dimensions,
            columns=columns,
            conditions=conditions,
            query_ref=query_ref,
            limit=limit_param,
            knob=plan.knob if knob is None else knob,
            exact=exact,
            alias=alias,
        )

    def _validate(
        self, embedding: Any, k: int, min_similarity: float | None, **flags: object
    ) -> Any:
        """Check one search's arguments (*flags*: its bool options); return the query vector."""
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise InvalidInputError(f"k must be an integer within 1..{MAX_K}, got {_shown(k)}")
        if min_similarity is not None and not (
            isinstance(min_similarity, int | float)
            and not isinstance(min_similarity, bool)
            and -1.0 <= min_similarity <= 1.0  # NaN fails this too
        ):
            raise InvalidInputError(
                f"min_similarity must be a number within -1..1, got {_shown(min_similarity)}"
            )
        for name, value in flags.items():
            check_flag(value, field=name)
        return validate_vector(embedding, self.dimensions, field="embedding")

    def _plan(self) -> SearchPlan:
        """Return the strategy and tuned knobs of this index last read (default: IVFFlat)."""
        cached = self._executor.state.probe_defaults.get(self.vector_index)
        plan = cached[0] if cached is not None else None
        return plan if isinstance(plan, SearchPlan) else SearchPlan()

    async def _probes(self, probes: int | None, exact: bool = False) -> int:
        """Return *probes*, else the tuned default of this index's knob, else its default.

        The knob is the strategy's own (see index_strategies): ``ivfflat.probes``, HNSW's
        ``ef_search``, or the over-fetch of a quantised HNSW index; an explicit *probes*
        sets it. Reads (and caches for ``probe_defaults_ttl`` seconds) the index's strategy,
        which ``_knobs`` and ``_search_sql`` then follow. An exact search reads no index: 0.
        """
        if exact:
            return 0
        if probes is not None and (
            isinstance(probes, bool) or not isinstance(probes, int) or not 1 <= probes <= MAX_PROBES
        ):
            raise InvalidInputError(
                f"probes must be an integer within 1..{MAX_PROBES}, got {_shown(probes)}"
            )
        # read even when probes is given: the strategy decides which knob it sets and the
        # query's shape (search_settings keeps each knob within its server range)
        state = self._executor.state
        cached = state.probe_defaults.get(self.vector_index)
        now = time.monotonic()
        if cached is None or now - cached[1] > state.probe_defaults_ttl:
            cached = (await read_plan(self._executor, self.vector_index), now)
            state.probe_defaults[self.vector_index] = cached
        if probes is not None:
            return probes
        return self._plan().knob

    def _knobs(self, probes: int, exact: bool, k: int = 10) -> dict[str, str]:
        """Return the settings one search for *k* rows runs with at knob value *probes*.

        Transaction-local (see with_settings): the strategy's knob (``ivfflat.probes`` or
        ``hnsw.ef_search``) and its iterative scan, as the last ``_probes`` call read them.
        """
        if exact:
            return {}  # the exact statement cannot use the index at all (see _search_sql)
        return search_settings(
            self._plan(), probes, k, iterative=self._executor.state.iterative_scans
        )

    def _matches(self, records: Sequence[Any]) -> builtins.list[Match[RowT]]:
        # A stored vector of zero or non-finite norm (written around the models) has no
        # cosine distance (NaN): it is no match, whatever its position.
        matches = [
            Match(self._row(r), 1.0 - float(r["_distance"]))
            for r in records
            if r["_distance"] is not None and math.isfinite(r["_distance"])
        ]
        # relaxed_order iterative scans may return neighbours slightly out of order
        matches.sort(key=lambda m: -m.similarity)
        return matches

    def _prepare(
        self,
        where: Where | None,
        min_similarity: float | None,
        include_embedding: bool,
        *,
        batched: bool,
        exact: bool,
        knob: int | None = None,
    ) -> tuple[str, builtins.list[Any], bool]:
        """Return the search SQL ($1 query, $2 k, then filter parameters), its parameters, and
        whether anything narrows the result (filters or a similarity floor)."""
        alias = "t." if batched else ""
        clauses, params = self._where(where, first_param=3, alias=alias)
        max_distance_param = None
        if min_similarity is not None:
            params.append(1.0 - float(min_similarity))
            max_distance_param = f"${len(params) + 2}"
        sql = self._search_sql(
            filters=clauses,
            max_distance_param=max_distance_param,
            include_embedding=include_embedding,
            limit_param="$2",
            exact=exact,
            query_ref="q.query" if batched else "$1",
            alias=alias,
            knob=knob,
        )
        if batched:
            sql = (
                "SELECT q.ordinal AS _ordinal, hit.* "
                "FROM unnest($1::vector[]) WITH ORDINALITY AS q(query, ordinal) "
                f"CROSS JOIN LATERAL ({sql}) AS hit"
            )
        return sql, params, bool(clauses) or min_similarity is not None

    # -- public API -----------------------------------------------------------------------

    async def search_similar(
        self,
        embedding: Sequence[float] | npt.NDArray[np.floating[Any]],
        k: int = 10,
        *,
        where: Where | None = None,
        min_similarity: float | None = None,
        probes: int | None = None,
        exact: bool = False,
        include_embedding: bool = False,
        cache: bool = False,
    ) -> builtins.list[Match[RowT]]:
        """Return the *k* rows nearest to *embedding* by cosine distance, nearest first.

        *where* filters on this table's columns (see ``codeatlas.filters``);
        *min_similarity* keeps only rows at least that similar (still an index scan);
        *probes* overrides the tuned default; *exact* scans every row (ground truth);
        *cache* answers from, and fills, the similarity cache (see ``codeatlas.cache``).
        """
        flags = {"exact": exact, "include_embedding": include_embedding, "cache": cache}
        vector = self._validate(embedding, k, min_similarity, **flags)
        self._where(where)  # a bad filter is refused before the probes lookup or the cache
        chosen_probes = await self._probes(probes, exact)
        if cache:
            return await self._search_cached(
                vector, k, where, min_similarity, chosen_probes, exact, include_embedding
            )
        return await self._search(
            vector, k, where, min_similarity, chosen_probes, exact, include_embedding
        )

    async def _search_cached(
        self,
        vector: npt.NDArray[np.float32],
        k: int,
        where: Where | None,
        min_similarity: float | None,
        probes: int,
        exact: bool,
        include_embedding: bool,
    ) -> builtins.list[Match[RowT]]:
        """Answer from the similarity cache if it holds this search, else search and store."""
        store = SimilarityCache(self._executor)
        key = store.key(self.table, vector, k, where, min_similarity, probes, exact)
        scope = store.scope(where)
        hits = await store.read(scope, key)
        if hits is not None:
            matches = await self._cached_matches(hits, include_embedding)
            if matches is not None:
                if telemetry.ENABLED:
                    telemetry.note("codeatlas.cache.hit", True)
                return matches
        if telemetry.ENABLED:
            telemetry.note("codeatlas.cache.hit", False)
        matches = await self._search(
            vector, k, where, min_similarity, probes, exact, include_embedding
        )
        pk = self.primary_key
        hits_found = [(m.item.__dict__[pk], m.similarity) for m in matches]
        await store.write(scope, key, self.table, hits_found)
        return matches

    async def _cached_matches(
        self, hits: Sequence[CachedHit], include_embedding: bool
    ) -> builtins.list[Match[RowT]] | None:
        """Return cached *hits* with their current rows, or None if one of the rows is gone."""
        if not hits:
            return []
        pk_type = self.row_model.model_fields[self.primary_key].annotation
        keys: builtins.list[Any] = [
            uuid.UUID(hit.key) if pk_type is uuid.UUID else int(hit.key) for hit in hits
        ]
        rows = await self.get_many(keys, include_vectors=include_embedding)
        if len(rows) != len(keys):
            return None  # deleted by a writer the triggers did not see: search again
        return [Match(row, hit.similarity) for row, hit in zip(rows, hits, strict=True)]

    async def _search(
        self,
        vector: npt.NDArray[np.float32],
        k: int,
        where: Where | None,
        min_similarity: float | None,
        probes: int,
        exact: bool,
        include_embedding: bool,
    ) -> builtins.list[Match[RowT]]:
        """Run a validated search (the uncached path of ``search_similar``)."""
        sql, params, narrowed = self._prepare(
            where, min_similarity, include_embedding, batched=False, exact=exact, knob=probes
        )
        settings = self._knobs(probes, exact, k)
        # fetch_read: the knobs apply to this statement alone; a replica serves it if it can
        records = await self._executor.fetch_read(sql, vector, k, *params, settings=settings)
        matches = self._matches(records)
        if len(matches) < k and narrowed and not exact and not self._executor.state.iterative_scans:
            logger.warning(
                "pgvector %s has no iterative scans: filtered search on %s returned %d of %d; "
                "completing it with an exact scan",
                ".".join(map(str, self._executor.state.pgvector_version)),
                self.table,
                len(matches),
                k,
            )
            sql, params, _ = self._prepare(
                where, min_similarity, include_embedding, batched=False, exact=True
            )
            matches = self._matches(await self._executor.fetch(sql, vector, k, *params))
        return matches

    async def search_similar_many(
        self,
        embeddings: Sequence[Sequence[float] | npt.NDArray[np.floating[Any]]],
        k: int = 10,
        *,
        where: Where | None = None,
        min_similarity: float | None = None,
        probes: int | None = None,
        exact: bool = False,
        include_embedding: bool = False,
    ) -> builtins.list[builtins.list[Match[RowT]]]:
        """Answer several queries in one round trip; result *i* belongs to ``embeddings[i]``."""
        if isinstance(embeddings, np.ndarray) and embeddings.ndim == 2:
            embeddings = builtins.list(embeddings)
        if isinstance(embeddings, str | bytes | bytearray | np.ndarray) or not isinstance(
            embeddings, Sequence
        ):
            raise InvalidInputError(
                "embeddings must be a sequence of query vectors (or a 2-D array), "
                f"got {type(embeddings).__name__}"
            )
        if len(embeddings) > MAX_K:
            raise InvalidInputError(f"at most {MAX_K} query vectors per batch")
        if not embeddings:
            return []
        flags = {"exact": exact, "include_embedding": include_embedding}
        vectors = [PackedVector(self._validate(e, k, min_similarity, **flags)) for e in embeddings]
        chosen_probes = await self._probes(probes, exact)
        sql, params, _ = self._prepare(
            where, min_similarity, include_embedding, batched=True, exact=exact, knob=chosen_probes
        )
        settings = self._knobs(chosen_probes, exact, k)
        records = await self._executor.fetch_read(sql, vectors, k, *params, settings=settings)
        grouped: builtins.list[builtins.list[Any]] = [[] for _ in embeddings]
        for record in records:
            grouped[record["_ordinal"] - 1].append(record)
        return [self._matches(group) for group in grouped]


def _shown(value: object) -> str:
    """Return *value* for an error message: its repr if short, else its type."""
    text = repr(value) if isinstance(value, int | float | str | None) else ""
    return text if text and len(text) <= 40 else type(value).__name__


def recommended_lists(rows: int) -> int:
    """Return pgvector's advice for IVFFlat lists: rows/1000 up to 1M rows, sqrt(rows) beyond."""
    if rows <= 1_000_000:
        return max(1, rows // 1000)
    return max(1, int(math.sqrt(rows)))
