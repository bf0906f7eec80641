"""Full-text and hybrid (lexical + vector) search on the tables with a ``search_tsv`` column.

A row model whose ``__table_spec__`` names a ``text_index`` maps a table with a STORED
generated tsvector (migration 20261203000001 builds it in SQL from the row's names, paths
and text, code-aware: ``parse_args`` and ``parseArgs`` both match "parse args"). Its
repository derives from ``TextSearchableRepository`` and offers, besides ``search_similar``:

* ``search_text(text, k)``: the rows matching any term of *text*, by ``ts_rank_cd``;
* ``search_hybrid(text, embedding, k)``: Reciprocal Rank Fusion of the vector ranking and
  the ``ts_rank_cd`` ranking, in one statement::

    WITH vector_hits AS (<the search_similar statement: same index path and knobs>),
         query       AS MATERIALIZED (SELECT codeatlas_budget_tsquery(<config>, <table>,
                                             'search_tsv', $t, TEXT_MATCH_BUDGET) AS tsq),
         text_hits   AS (SELECT ... WHERE search_tsv @@ tsq ORDER BY ts_rank_cd DESC LIMIT $2),
         fused       AS (SELECT ..., w_v / (rrf_k + vector rank) + w_t / (rrf_k + text rank)
                           FROM vector_hits FULL OUTER JOIN text_hits USING the primary key
                          ORDER BY the fused score DESC LIMIT $k)
    SELECT <columns>, ranks, scores FROM fused JOIN <table> ORDER BY the fused score DESC

Both halves apply the same allow-listed *where*. A row missing from one ranking adds
nothing from it: RRF needs no score calibration between cosine and ``ts_rank_cd``, only
ranks. The query text is turned into an OR of its code-aware lexemes (see the migration):
a question matches the rows holding any of its words, those holding more of them first.
Once ANALYZE has sampled the column, lexemes too common to tell rows apart give way to
rarer ones (TEXT_MATCH_BUDGET), which bounds the rows the lexical half ranks; that weighing
runs in a PL/pgSQL function, once per search. Only the top k fused keys are joined back to
the table. The text, the vector, k, the candidates,
the weights, rrf_k and the filters' values are bound parameters, so one statement text
serves every search of a shape and asyncpg's statement cache keeps it prepared.
Without usable text (None, or no letter or digit) the search degrades to the vector
ranking, without an embedding to the lexical one; text of only stop words matches nothing,
so the result is the vector ranking alone.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from typing import Any, ClassVar, Final

import numpy as np
import numpy.typing as npt

from .errors import InvalidInputError
from .filters import Where
from .models._table import TEXT_SEARCH_CONFIG
from .models._types import check_text
from .repositories._base import CreateT, RowT, UpdateT, check_count, check_flag
from .search import MAX_K, Match, SearchableRepository

__all__ = [
    "DEFAULT_RRF_K",
    "MAX_QUERY_TEXT",
    "MAX_RRF_K",
    "TEXT_MATCH_BUDGET",
    "TextSearchableRepository",
    "default_candidates",
]

#: RRF's constant: a rank r contributes weight / (rrf_k + r) (60 in Cormack et al., 2009).
DEFAULT_RRF_K: Final = 60
MAX_RRF_K: Final = 100_000
#: Longest query text accepted (characters): longer is not a query but a document.
MAX_QUERY_TEXT: Final = 10_000
#: Rows the lexical half may expect to rank, estimated from the column's statistics: the
#: query keeps its rarest term, then adds terms from rarer to commoner while the estimated
#: matching rows stay within this (ranking costs ~20 µs a row, and a term in most rows
#: says little about any of them). Without statistics (no ANALYZE yet) nothing is dropped.
TEXT_MATCH_BUDGET: Final = 250
#: ts_rank_cd normalisation 1: divide by 1 + log(document length), so a long body that
#: repeats a term does not outrank a short one that is about it.
_RANK_NORMALIZATION: Final = 1


def default_candidates(k: int) -> int:
    """Return how many rows each ranking contributes to the fusion by default (2k, >= 20)."""
    return min(MAX_K, max(2 * k, 20))


class TextSearchableRepository(SearchableRepository[RowT, CreateT, UpdateT]):
    """A searchable repository whose table also has a generated ``search_tsv`` column.

    The column and its GIN index are derived from the row model's ``__table_spec__``
    (``text_index``), like the vector facts.
    """

    # Derived once per subclass in __init_subclass__, from row_model.
    text_column: ClassVar[str]
    text_index: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "row_model" not in cls.__dict__:
            return
        text = cls.table_spec.text
        if text is None:
            raise TypeError(
                f"{cls.__name__} has text search, but {cls.row_model.__name__}.__table_spec__ "
                "names no text_index"
            )
        cls.text_column = text.column
        cls.text_index = text.name

    # -- arguments --------------------------------------------------------------------------

    @staticmethod
    def _query_text(text: object, *, required: bool) -> str | None:
        """Return *text* as searched, or None if it has no letter or digit to search for."""
        if text is None and not required:
            return None
        checked = check_text(text, field="text")
        if len(checked) > MAX_QUERY_TEXT:
            raise InvalidInputError(
                f"text: at most {MAX_QUERY_TEXT} characters, got {len(checked)}"
            )
        return checked if any(c.isalnum() for c in checked) else None

    @staticmethod
    def _weights(weights: object) -> tuple[float, float]:
        """Return (vector weight, text weight): two finite numbers >= 0, not both 0."""
        if (
            not isinstance(weights, tuple | list)
            or len(weights) != 2
            or not all(
                isinstance(w, int | float)
                and not isinstance(w, bool)
                and math.isfinite(w)
                and w >= 0
                for w in weights
            )
            or not any(weights)
        ):
            shown = (
                repr(weights)[:60] if isinstance(weights, tuple | list) else type(weights).__name__
            )
            raise InvalidInputError(
                "weights must be (vector weight, text weight): two finite numbers >= 0, "
                f"not both 0; got {shown}"
            )
        return float(weights[0]), float(weights[1])

    # -- the statement ----------------------------------------------------------------------
    #
    # Parameters: with a vector half $1 is the query vector and $2 the candidates per half,
    # without one $1 is the candidates; the filters' follow, then (text), (vector weight),
    # (text weight), rrf_k and k, each present only where its half is.

    def _text_hits(self, filters: builtins.list[str], text: str, limit: str) -> str:
        """Return the CTEs of the lexical ranking: the tsquery once, its top *limit* rows.

        ``codeatlas_budget_tsquery`` (see the migration) weighs the query's lexemes by the
        share of rows holding each, as ANALYZE sampled it, and keeps them rarest first
        within TEXT_MATCH_BUDGET estimated rows. Only the rows the GIN index hands out for
        that query are ranked.
        """
        pk, tsv, table = self.primary_key, self.text_column, self.table
        where = " AND ".join([f"t.{tsv} @@ query.tsq", *filters])
        return (
            "query AS MATERIALIZED ("
            f"SELECT codeatlas_budget_tsquery('{TEXT_SEARCH_CONFIG}', '{table}'::regclass, "
            f"'{tsv}', {text}, {TEXT_MATCH_BUDGET}) AS tsq), "
            "text_hits AS ("
            "SELECT x._key, x._score, row_number() OVER (ORDER BY x._score DESC, x._key) AS _rank "
            f"FROM (SELECT t.{pk} AS _key, "
            f"ts_rank_cd(t.{tsv}, query.tsq, {_RANK_NORMALIZATION}) AS _score "
            f"FROM {table} t, query WHERE {where} "
            f"ORDER BY _score DESC, t.{pk} LIMIT {limit}) AS x)"
        )

    def _vector_hits(self, vector_sql: str) -> str:
        """Return the CTE of the vector ranking: search_similar's statement, ranked."""
        pk = self.primary_key
        # a stored vector of zero norm has no cosine distance (NaN): it is no match
        return (
            "vector_hits AS ("
            f"SELECT v.{pk} AS _key, v._distance, "
            f"row_number() OVER (ORDER BY v._distance, v.{pk}) AS _rank "
            f"FROM ({vector_sql}) AS v WHERE v._distance <> 'NaN'::float8)"
        )

    def _fused_sql(
        self,
        *,
        vector_sql: str | None,
        text_filters: builtins.list[str] | None,
        first_param: int,
        include_embedding: bool,
    ) -> str:
        """Return the fusion statement over the halves given (at least one); the fusion's
        own parameters are numbered from *first_param* (see above)."""
        refs = (f"${n}" for n in range(first_param, first_param + 5))
        text = next(refs) if text_filters is not None else None
        weight_vector = next(refs) if vector_sql is not None else None
        weight_text = next(refs) if text_filters is not None else None
        rrf_k, k = next(refs), next(refs)
        ctes: builtins.list[str] = []
        terms: builtins.list[str] = []
        if vector_sql is not None:
            ctes.append(self._vector_hits(vector_sql))
            terms.append(f"coalesce({weight_vector}::float8 / ({rrf_k}::int + v._rank), 0)")
        if text_filters is not None and text is not None:
            ctes.append(self._text_hits(text_filters, text, "$2" if vector_sql else "$1"))
            terms.append(f"coalesce({weight_text}::float8 / ({rrf_k}::int + x._rank), 0)")
        ranks: tuple[str, str, str, str, str]  # key, vector rank, text rank, text score, distance
        if vector_sql is not None and text_filters is not None:
            source = "vector_hits v FULL OUTER JOIN text_hits x ON x._key = v._key"
            ranks = ("coalesce(v._key, x._key)", "v._rank", "x._rank", "x._score", "v._distance")
        elif vector_sql is not None:
            source = "vector_hits v"
            ranks = ("v._key", "v._rank", "NULL::bigint", "NULL::real", "v._distance")
        else:
            source = "text_hits x"
            ranks = ("x._key", "NULL::bigint", "x._rank", "x._score", "NULL::float8")
        named = ", ".join(
            f"{value} AS {name}"
            for value, name in zip(
                (*ranks, " + ".join(terms)),
                ("_key", "_vector_rank", "_text_rank", "_text_score", "_distance", "_fused"),
                strict=True,
            )
        )
        # the top k by fused score before the join back: only those rows are read
        order = "_fused DESC, _vector_rank NULLS LAST, _text_rank NULLS LAST, _key"
        ctes.append(f"fused AS (SELECT {named} FROM {source} ORDER BY {order} LIMIT {k})")
        columns = ", ".join(
            f"t.{c}" for c in self.columns if include_embedding or c not in self.vector_columns
        )
        # the cosine of every returned row: the vector half measured it for its own rows,
        # the others (found by the lexical half alone) are measured here
        cosine = (
            f"coalesce(f._distance, t.{self.vector_column} <=> $1)"
            if vector_sql is not None
            else "NULL::float8"
        )
        return (
            f"WITH {', '.join(ctes)} "
            f"SELECT {columns}, f._vector_rank, f._text_rank, f._text_score, f._fused, "
            f"{cosine} AS _distance "
            f"FROM fused f JOIN {self.table} t ON t.{self.primary_key} = f._key "
            "ORDER BY f._fused DESC, f._vector_rank NULLS LAST, f._text_rank NULLS LAST, f._key"
        )

    def _fused_matches(self, records: Sequence[Any]) -> builtins.list[Match[RowT]]:
        matches: builtins.list[Match[RowT]] = []
        for r in records:
            distance, text_score = r["_distance"], r["_text_score"]
            cosine = None
            if distance is not None and math.isfinite(distance):
                cosine = 1.0 - float(distance)
            matches.append(
                Match(
                    self._row(r),
                    0.0 if cosine is None else cosine,
                    vector_rank=r["_vector_rank"],
                    text_rank=r["_text_rank"],
                    vector_similarity=cosine,
                    text_score=None if text_score is None else float(text_score),
                    score=float(r["_fused"]),
                )
            )
        return matches

    # -- public API -------------------------------------------------------------------------

    async def search_text(
        self,
        text: str,
        k: int = 10,
        *,
        where: Where | None = None,
        include_embedding: bool = False,
    ) -> builtins.list[Match[RowT]]:
        """Return the *k* rows that best match *text* lexically (``ts_rank_cd``), best first.

        Any term of *text* matches (an OR of its code-aware lexemes); text without a letter
        or digit, or of stop words only, matches nothing. ``score`` and ``text_score`` are
        the ``ts_rank_cd``; ``similarity`` is 0.0 (there is no query embedding).
        """
        check_count(k, field="k", low=1, high=MAX_K)
        check_flag(include_embedding, field="include_embedding")
        query = self._query_text(text, required=True)
        filters, params = self._where(where, first_param=2, alias="t.")
        if query is None:
            return []
        sql = self._fused_sql(
            vector_sql=None,
            text_filters=filters,
            first_param=2 + len(params),
            include_embedding=include_embedding,
        )
        records = await self._executor.fetch_read(sql, k, *params, query, 1.0, DEFAULT_RRF_K, k)
        return [
            Match(m.item, 0.0, text_rank=m.text_rank, text_score=m.text_score, score=m.text_score)
            for m in self._fused_matches(records)
        ]

    async def search_hybrid(
        self,
        text: str | None,
        embedding: Sequence[float] | npt.NDArray[np.floating[Any]] | None,
        k: int = 10,
        *,
        where: Where | None = None,
        weights: tuple[float, float] = (1.0, 1.0),
        rrf_k: int = DEFAULT_RRF_K,
        candidates: int | None = None,
        probes: int | None = None,
        include_embedding: bool = False,
    ) -> builtins.list[Match[RowT]]:
        """Return the *k* best rows by Reciprocal Rank Fusion of the vector and lexical ranks.

        Each ranking contributes its top *candidates* (default: 2k, at least 20; fewer than
        k can return fewer than k rows); a row
        scores ``weights[0] / (rrf_k + vector rank) + weights[1] / (rrf_k + text rank)``,
        a term counting 0 where the row is not among that ranking's candidates. The vector
        half is ``search_similar``'s statement (same index, *probes*, iterative scans).
        Without usable *text* it is the vector ranking alone, without *embedding* (None)
        the lexical one; with neither, InvalidInputError.
        """
        check_count(k, field="k", low=1, high=MAX_K)
        check_flag(include_embedding, field="include_embedding")
        query = self._query_text(text, required=False)
        weight_vector, weight_text = self._weights(weights)
        check_count(rrf_k, field="rrf_k", low=0, high=MAX_RRF_K)
        if candidates is None:
            candidates = default_candidates(k)
        check_count(candidates, field="candidates", low=1, high=MAX_K)
        vector = None if embedding is None else self._validate(embedding, k, None)
        self._where(where)  # a bad filter is refused before the probes lookup
        if vector is None and query is None:
            raise InvalidInputError(
                "search_hybrid needs text with a letter or digit, or an embedding; got neither"
            )
        if vector is None:
            filters, params = self._where(where, first_param=2, alias="t.")
            sql = self._fused_sql(
                vector_sql=None,
                text_filters=filters,
                first_param=2 + len(params),
                include_embedding=include_embedding,
            )
            arguments = [candidates, *params, query, weight_text, rrf_k, k]
            return self._fused_matches(await self._executor.fetch_read(sql, *arguments))
        chosen_probes = await self._probes(probes)
        vector_sql, params, _ = self._prepare(
            where, None, False, batched=False, exact=False, knob=chosen_probes
        )
        text_filters = None if query is None else self._where(where, first_param=3, alias="t.")[0]
        sql = self._fused_sql(
            vector_sql=vector_sql,
            text_filters=text_filters,
            first_param=3 + len(params),
            include_embedding=include_embedding,
        )
        if query is None:
            arguments = [vector, candidates, *params, weight_vector, rrf_k, k]
        else:
            arguments = [vector, candidates, *params, query, weight_vector, weight_text, rrf_k, k]
        knobs = self._knobs(chosen_probes, False, candidates)
        # like search_similar: the knobs apply to this statement alone; a replica serves it
        records = await self._executor.fetch_read(sql, *arguments, settings=knobs)
        return self._fused_matches(records)
