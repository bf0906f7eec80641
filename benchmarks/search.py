"""Search sweep (probes x concurrency x implementation) and the overhead breakdown.

Noise (other processes, checkpoints, the client's own garbage collection) must hit every
implementation alike, so each cell runs in rounds: in every round each client answers the
same block of queries, one client after the other, and the order rotates from round to
round. A cell's figures are those of all its rounds together.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import codeatlas
from codeatlas.config import Settings

from .clients import (
    AsyncpgClient,
    CodeatlasClient,
    PsycopgClient,
    SearchClient,
    Stepwise,
    no_reset,
)
from .data import Dataset
from .measure import Block, recall_at_k, run_block, summarise
from .tables import TableSpec

__all__ = ["SweepPlan", "breakdown", "sweep"]


@dataclass(frozen=True, slots=True)
class SweepPlan:
    """How much to measure: probes to sweep, concurrencies, rounds and block sizes."""

    probes: Sequence[int]
    concurrencies: Sequence[int]
    rounds: int
    #: queries per client per round at concurrency 1 (at least 4 per worker otherwise)
    block: int
    breakdown_rounds: int
    breakdown_block: int

    def per_round(self, concurrency: int) -> int:
        """Return the queries each client runs per round at *concurrency*."""
        return max(self.block, 4 * concurrency)

    def steps(self) -> int:
        """Return how many rounds the sweep runs in total (for progress)."""
        return len(self.probes) * len(self.concurrencies) * self.rounds


class _Queries:
    """Hands out consecutive query numbers, wrapping around the held-out set."""

    def __init__(self, count: int) -> None:
        self._count = count
        self._next = 0

    def take(self, n: int) -> list[int]:
        numbers = [(self._next + i) % self._count for i in range(n)]
        self._next = (self._next + n) % self._count
        return numbers


async def _interleaved(
    clients: Sequence[SearchClient],
    data: Dataset,
    queries: _Queries,
    *,
    concurrency: int,
    rounds: int,
    per_round: int,
    advance: Callable[[], None],
) -> dict[str, Block]:
    merged = {client.name: Block() for client in clients}
    for round_number in range(rounds):
        numbers = queries.take(per_round)
        shift = round_number % len(clients)
        for client in [*clients[shift:], *clients[:shift]]:
            block = await run_block(client.search, data.queries, numbers, concurrency)
            merged[client.name].extend(block)
        advance()
    return merged


async def _warm(client: SearchClient, data: Dataset, queries: _Queries, size: int) -> None:
    # opens every pooled connection's prepared statement and pulls the index into memory
    await run_block(client.search, data.queries, queries.take(2 * size), size)
    await run_block(client.search, data.queries, queries.take(5), 1)


def _row(
    probes: int,
    concurrency: int,
    name: str,
    block: Block,
    data: Dataset,
    row_of: Mapping[Any, int],
) -> dict[str, Any]:
    return {
        "probes": probes,
        "concurrency": concurrency,
        "implementation": name,
        **summarise(block.latencies),
        "qps": block.qps,
        "recall": recall_at_k(block.answers, data.truth, row_of),
    }


async def uses_index(atlas: codeatlas.Atlas, spec: TableSpec, data: Dataset, probes: int) -> bool:
    """Return whether the planner answers the search from the IVFFlat index at *probes*.

    With probes a large share of lists the planner may rightly prefer an exact scan of the
    table (and recall becomes 1.0): the sweep reports which plan each probes value got.
    """
    async with atlas.executor.transaction() as tx:
        await tx.execute(
            "SELECT set_config('ivfflat.probes', $1, true), "
            "set_config('ivfflat.iterative_scan', 'relaxed_order', true)",
            str(probes),
        )
        plan = await tx.fetchval(f"EXPLAIN (FORMAT JSON) {spec.search_sql}", data.queries[0], 10)
    return "Index Scan" in json.dumps(plan)


async def sweep(
    atlas: codeatlas.Atlas,
    dsn: str,
    spec: TableSpec,
    data: Dataset,
    row_of: Mapping[Any, int],
    plan: SweepPlan,
    advance: Callable[[], None],
) -> list[dict[str, Any]]:
    """Return one figure row per (probes, concurrency, implementation)."""
    repository = spec.repository(atlas)
    size = max(plan.concurrencies)
    queries = _Queries(len(data.queries))
    rows: list[dict[str, Any]] = []
    for probes in plan.probes:
        index_scan = await uses_index(atlas, spec, data, probes)
        asyncpg_client = await AsyncpgClient.open(dsn, spec, probes, size)
        psycopg_client = await PsycopgClient.open(dsn, spec, probes, size)
        clients: list[SearchClient] = [
            CodeatlasClient(repository, probes),
            asyncpg_client,
            psycopg_client,
        ]
        try:
            for client in clients:
                await _warm(client, data, queries, size)
            for concurrency in plan.concurrencies:
                merged = await _interleaved(
                    clients,
                    data,
                    queries,
                    concurrency=concurrency,
                    rounds=plan.rounds,
                    per_round=plan.per_round(concurrency),
                    advance=advance,
                )
                for name, block in merged.items():
                    row = _row(probes, concurrency, name, block, data, row_of)
                    rows.append({**row, "index_scan": index_scan})
        finally:
            await asyncpg_client.close()
            await psycopg_client.close()
    return rows


async def breakdown(
    atlas: codeatlas.Atlas,
    dsn: str,
    spec: TableSpec,
    data: Dataset,
    probes: int,
    plan: SweepPlan,
) -> dict[str, Any]:
    """Attribute codeatlas' per-search overhead at concurrency 1, one step at a time.

    The variants run interleaved like the sweep: raw asyncpg without and with the pool's
    release-time reset query, then inside a transaction, then with the ``SET LOCAL``s sent in
    BEGIN's message (the statement sequence codeatlas sends), then codeatlas itself. What
    remains between the last two is codeatlas' Python work, measured directly as well:
    vector validation and building the ``Match`` rows. Last, codeatlas on a pool whose
    release-time reset sends nothing (``connect(..., reset=...)``, a pool option callers
    can pass today; codeatlas leaves no session state behind).
    """
    repository = spec.repository(atlas)
    lean_settings = Settings(pool_min_size=1, pool_max_size=1)
    lean = await codeatlas.connect(dsn, migrate=False, settings=lean_settings, reset=no_reset)
    variants: list[SearchClient] = [
        await Stepwise.open(dsn, spec, probes, "asyncpg, no pool reset", reset=False),
        await Stepwise.open(dsn, spec, probes, "asyncpg (pool.fetch)"),
        await Stepwise.open(dsn, spec, probes, "+ BEGIN/COMMIT", transaction=True),
        await Stepwise.open(
            dsn, spec, probes, "+ SET LOCALs in BEGIN's message", transaction=True, knobs=True
        ),
        CodeatlasClient(repository, probes),
        CodeatlasClient(spec.repository(lean), probes, "codeatlas, pool reset=no-op"),
    ]
    queries = _Queries(len(data.queries))
    try:
        for variant in variants:
            await _warm(variant, data, queries, 1)
        merged = await _interleaved(
            variants,
            data,
            queries,
            concurrency=1,
            rounds=plan.breakdown_rounds,
            per_round=plan.breakdown_block,
            advance=lambda: None,
        )
    finally:
        for variant in variants:
            await variant.close()
        await lean.close()
    steps = [{"variant": name, **summarise(block.latencies)} for name, block in merged.items()]
    return {"probes": probes, "steps": steps, "python": await _python_costs(atlas, spec, data)}


async def _python_costs(
    atlas: codeatlas.Atlas, spec: TableSpec, data: Dataset, samples: int = 50, repeat: int = 20
) -> dict[str, float]:
    """Return microseconds per search spent validating the query and building the Matches."""
    repository = spec.repository(atlas)
    queries = data.queries[:samples]
    records = [await atlas.executor.fetch(spec.search_sql, q, 10) for q in queries]
    # private helpers on purpose: these are the two Python steps search_similar adds
    started = time.perf_counter()
    for _ in range(repeat):
        for query in queries:
            repository._validate(query, 10, None)
    validate = (time.perf_counter() - started) / (repeat * samples)
    started = time.perf_counter()
    for _ in range(repeat):
        for found in records:
            repository._matches(found)
    matches = (time.perf_counter() - started) / (repeat * samples)
    return {"validate_us": validate * 1e6, "matches_us": matches * 1e6}
