"""Vector index strategies: how each kind of index is built, searched and tuned.

A table's vector index is one of a closed set of kinds (the knob ``tune`` sets in brackets):

* ``ivfflat`` (the schema's): ``ivfflat (col vector_cosine_ops) WITH (lists)`` [probes];
* ``hnsw``: ``hnsw (col vector_cosine_ops) WITH (m, ef_construction)`` [ef_search];
* ``ivfflat_halfvec``: ``ivfflat ((col::halfvec(n)) halfvec_cosine_ops)`` [probes];
* ``hnsw_halfvec``: ``hnsw ((col::halfvec(n)) halfvec_cosine_ops)`` [overfetch];
* ``hnsw_binary``: ``hnsw ((binary_quantize(col)::bit(n)) bit_hamming_ops)`` [overfetch].

The kind is a fact of the catalog (the index's access method and operator class), so an
index the Elixir application or an operator built is recognised as what it is;
``codeatlas_vector_indexes`` records the build parameters and the tuned knob. A quantised
index orders candidates by an approximate distance: the search fetches ``k * overfetch``
candidates from it and re-ranks them by exact cosine distance on the full-precision column,
in the same statement. Plain ``ORDER BY col <=> $1`` queries (the Elixir application's)
work whatever the kind: on a quantised table the planner answers them without the index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from ._db import Executor
from .models._table import VectorIndex

__all__ = [
    "DEFAULT_EF_CONSTRUCTION",
    "DEFAULT_EF_SEARCH",
    "DEFAULT_M",
    "DEFAULT_OVERFETCH",
    "DEFAULT_PROBES",
    "KINDS",
    "MAX_EF_SEARCH",
    "MAX_OVERFETCH",
    "STRATEGIES",
    "SearchPlan",
    "Strategy",
    "build_sql",
    "kind_of",
    "ranked_sql",
    "read_plan",
    "search_settings",
]

#: Probes used until ``atlas.indexes.tune()`` stores a measured default for the index
#: (pgvector's advice: sqrt(lists), i.e. 10 for the schema's lists = 100).
DEFAULT_PROBES: Final = 10
#: pgvector's default ``hnsw.ef_search``; the server accepts 1..1000.
DEFAULT_EF_SEARCH: Final = 40
MAX_EF_SEARCH: Final = 1000
DEFAULT_M: Final = 16
DEFAULT_EF_CONSTRUCTION: Final = 64
#: Candidates fetched per result from a quantised index before the exact re-rank.
DEFAULT_OVERFETCH: Final = MappingProxyType({"halfvec": 2, "binary": 4})
#: The candidate set (k * overfetch) stays within what an index scan hands out cheaply.
MAX_OVERFETCH: Final = 100
_MAX_CANDIDATES: Final = 10_000


@dataclass(frozen=True, slots=True)
class Strategy:
    """One kind of vector index: access method, quantisation, and the knob tune() sets."""

    kind: str
    #: ``ivfflat`` or ``hnsw``
    method: str
    #: ``none``, ``halfvec`` or ``binary``
    quantization: str
    #: ``probes``, ``ef_search`` or ``overfetch``
    knob: str
    opclass: str

    @property
    def quantised(self) -> bool:
        """True when the index orders by an approximate distance (results are re-ranked)."""
        return self.quantization != "none"


STRATEGIES: Final = MappingProxyType(
    {
        s.kind: s
        for s in (
            Strategy("ivfflat", "ivfflat", "none", "probes", "vector_cosine_ops"),
            Strategy("hnsw", "hnsw", "none", "ef_search", "vector_cosine_ops"),
            Strategy("ivfflat_halfvec", "ivfflat", "halfvec", "probes", "halfvec_cosine_ops"),
            Strategy("hnsw_halfvec", "hnsw", "halfvec", "overfetch", "halfvec_cosine_ops"),
            Strategy("hnsw_binary", "hnsw", "binary", "overfetch", "bit_hamming_ops"),
        )
    }
)
KINDS: Final = tuple(STRATEGIES)


def kind_of(method: str | None, opclass: str | None) -> str | None:
    """Return the kind of an index with access *method* and first *opclass*, or None."""
    for strategy in STRATEGIES.values():
        if (strategy.method, strategy.opclass) == (method, opclass):
            return strategy.kind
    return None


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """What searches of one index send: its kind and the tuned knob values (None: default)."""

    kind: str = "ivfflat"
    probes: int | None = None
    ef_search: int | None = None
    overfetch: int | None = None

    @property
    def strategy(self) -> Strategy:
        """Return the strategy of this plan's kind."""
        return STRATEGIES[self.kind]

    @property
    def knob(self) -> int:
        """Return the value of the strategy's own knob: tuned, else its default."""
        knob = self.strategy.knob
        if knob == "probes":
            return self.probes or DEFAULT_PROBES
        if knob == "ef_search":
            return self.ef_search or DEFAULT_EF_SEARCH
        return self.fetch_factor

    @property
    def fetch_factor(self) -> int:
        """Return the over-fetch factor of a quantised kind (1 for full precision)."""
        strategy = self.strategy
        if not strategy.quantised:
            return 1
        return self.overfetch or DEFAULT_OVERFETCH[strategy.quantization]


#: The index's kind read from the catalog (access method and first operator class: an
#: index built by anyone is what it is), and the knobs tuned for it. The registry row is
#: read through to_jsonb so that a database not yet migrated to the knob columns
#: (connect(migrate=False)) still searches, with the defaults.
_READ_PLAN: Final = """
SELECT am.amname                                 AS method,
       o.opcname                                 AS opclass,
       (to_jsonb(r) ->> 'default_probes')::int    AS default_probes,
       (to_jsonb(r) ->> 'default_ef_search')::int AS default_ef_search,
       (to_jsonb(r) ->> 'overfetch')::int         AS overfetch,
       to_jsonb(r) ->> 'strategy'                 AS recorded
  FROM (SELECT to_regclass($1) AS oid) AS i
  LEFT JOIN pg_class c   ON c.oid = i.oid
  LEFT JOIN pg_am am     ON am.oid = c.relam
  LEFT JOIN pg_index x   ON x.indexrelid = i.oid
  LEFT JOIN pg_opclass o ON o.oid = x.indclass[0]
  LEFT JOIN codeatlas_vector_indexes r ON r.index_name = $1"""


async def read_plan(executor: Executor, index_name: str) -> SearchPlan:
    """Return the kind of index *index_name* and its tuned knobs.

    The kind is the catalog's; for an index that is absent (dropped by a bulk load that was
    cancelled), the kind its last build recorded; else IVFFlat.
    """
    row = await executor.fetchrow(_READ_PLAN, index_name)
    if row is None:
        return SearchPlan()
    absent = row["method"] is None
    recorded = row["recorded"] if absent and row["recorded"] in STRATEGIES else None
    return SearchPlan(
        kind_of(row["method"], row["opclass"]) or recorded or "ivfflat",
        row["default_probes"],
        row["default_ef_search"],
        row["overfetch"],
    )


def search_settings(plan: SearchPlan, knob: int, k: int, *, iterative: bool) -> dict[str, str]:
    """Return the transaction-local settings of one search at *knob* for *k* results.

    Iterative scans (pgvector 0.8) keep a filtered scan going until enough rows match.
    An HNSW scan finds at most ``ef_search`` rows per pass, so it is at least the number
    of rows wanted (the candidates, on a quantised index).
    """
    strategy = plan.strategy
    if strategy.method == "ivfflat":
        settings = {"ivfflat.probes": str(knob)}
        if iterative:
            settings["ivfflat.iterative_scan"] = "relaxed_order"
        return settings
    if strategy.knob == "overfetch":
        ef = max(plan.ef_search or DEFAULT_EF_SEARCH, candidates(k, knob))
    else:
        ef = max(knob, k)
    settings = {"hnsw.ef_search": str(min(ef, MAX_EF_SEARCH))}
    if iterative:
        settings["hnsw.iterative_scan"] = "relaxed_order"
    return settings


def candidates(k: int, overfetch: int) -> int:
    """Return how many candidates a quantised search fetches for *k* results."""
    return max(k, min(k * overfetch, _MAX_CANDIDATES))


def _approximate(strategy: Strategy, vec: str, query: str, dimensions: int) -> str:
    """Return the ORDER BY expression the strategy's (expression) index serves."""
    if strategy.quantization == "halfvec":
        return f"({vec})::halfvec({dimensions}) <=> ({query})::vector::halfvec({dimensions})"
    if strategy.quantization == "binary":
        return f"binary_quantize({vec})::bit({dimensions}) <~> binary_quantize(({query})::vector)"
    return f"{vec} <=> {query}"


def ranked_sql(
    plan: SearchPlan,
    *,
    table: str,
    vec: str,
    dimensions: int,
    columns: str,
    conditions: Sequence[str],
    query_ref: str,
    limit: str,
    knob: int,
    exact: bool,
    alias: str = "",
) -> str:
    """Return the top-k statement the plan's index can serve (identifiers come from code).

    The rows carry ``_distance``, the exact cosine distance. Full precision:
    ``ORDER BY vec <=> q LIMIT k``. Quantised: the nearest ``k * overfetch`` by the index's
    approximate distance, re-ranked by the exact one. ``exact`` orders by
    ``(vec <=> q) + 0``, an expression no index can serve: exactness must not rest on a
    setting, since a prepared statement's cached generic plan ignores later changes.
    """
    distance = f"{vec} <=> {query_ref}"
    where = " AND ".join(conditions)
    source = f"{table} {alias.rstrip('.')}".rstrip()
    strategy = plan.strategy
    if exact or not strategy.quantised:
        order = f"({distance}) + 0" if exact else distance
        select = f"SELECT {columns}, {distance} AS _distance FROM {source} WHERE {where} "  # noqa: S608
        return f"{select}ORDER BY {order} LIMIT {limit}"
    overfetch = knob if strategy.knob == "overfetch" else plan.fetch_factor
    overfetch = max(1, min(int(overfetch), MAX_OVERFETCH))
    approximate = _approximate(strategy, vec, query_ref, dimensions)
    # the candidates' exact distance is computed for the rows the index hands out only
    select = f"SELECT {columns}, {distance} AS _distance FROM {source} WHERE {where} "  # noqa: S608
    inner = (
        f"{select}ORDER BY {approximate} "
        f"LIMIT least(({limit})::bigint * {overfetch}, {_MAX_CANDIDATES})"
    )
    return f"SELECT * FROM ({inner}) AS _candidates ORDER BY _distance LIMIT {limit}"  # noqa: S608


def build_sql(
    kind: str,
    name: str,
    index: VectorIndex,
    *,
    concurrently: bool,
    lists: int,
    m: int,
    ef_construction: int,
) -> str:
    """Return the CREATE INDEX statement of *kind* named *name* (integers validated by caller)."""
    strategy = STRATEGIES[kind]
    column, dimensions = index.column, index.dimensions
    if strategy.quantization == "halfvec":
        target = f"(({column})::halfvec({dimensions})) {strategy.opclass}"
    elif strategy.quantization == "binary":
        target = f"((binary_quantize({column})::bit({dimensions}))) {strategy.opclass}"
    else:
        target = f"{column} {strategy.opclass}"
    if strategy.method == "ivfflat":
        options = f"lists = {int(lists)}"
    else:
        options = f"m = {int(m)}, ef_construction = {int(ef_construction)}"
    return (
        f"CREATE INDEX {'CONCURRENTLY ' if concurrently else ''}{name} "
        f"ON {index.table} USING {strategy.method} ({target}) WITH ({options})"
    )
