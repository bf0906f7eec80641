"""Index strategies side by side: recall@10 against p50 and QPS, each strategy's tuned point.

For every strategy (IVFFlat lists=100, the seed's index and the baseline; IVFFlat with
sqrt(rows) lists; IVFFlat over halfvec; HNSW; HNSW over halfvec; HNSW over binary
quantisation) the table's index is rebuilt, ``atlas.indexes.tune(queries=...)`` picks the
strategy's knob for recall@10 0.95 on 200 fresh draws of the benchmark mixture, and a
sweep of knob values (the tuned one included) measures ``search_similar`` (codeatlas, end
to end) at concurrency 1 and 8 on the held-out queries, and at concurrency 1 on a second
query set drawn around shifted cluster centres (questions not shaped like the documents).
Ground truth is numpy's exact top-10. The ratio each strategy reaches against IVFFlat
lists=100 is taken at the cheapest swept point whose held-out recall is at least 0.95.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

import codeatlas

from .data import Dataset
from .measure import recall_at_k, run_block, summarise
from .tables import TableSpec

__all__ = ["STRATEGIES", "Strategy", "benchmark", "knob_values"]

Vectors = npt.NDArray[np.float32]
TARGET: Final = 0.95


class Strategy:
    """One strategy benchmarked: a label, the index kind and its build parameters."""

    def __init__(self, label: str, kind: str, lists: Callable[[int], int] | None = None) -> None:
        self.label = label
        self.kind = kind
        self.lists = lists


#: HNSW last: the table keeps that index for the server-settings comparison that follows.
STRATEGIES: Final = (
    Strategy("ivfflat lists=100", "ivfflat", lambda rows: 100),
    Strategy("ivfflat lists=sqrt(rows)", "ivfflat", lambda rows: round(math.sqrt(rows))),
    Strategy("ivfflat halfvec lists=100", "ivfflat_halfvec", lambda rows: 100),
    Strategy("hnsw binary", "hnsw_binary"),
    Strategy("hnsw halfvec", "hnsw_halfvec"),
    Strategy("hnsw", "hnsw"),
)
#: The swept values of each knob (the tuned value is added).
_SWEEP: Final = {
    "probes": (1, 4, 16, 32),
    "ef_search": (10, 20, 40, 80, 160),
    "overfetch": (1, 2, 4, 8),
}


def knob_values(knob: str, tuned: int, lists: int) -> list[int]:
    """Return the knob values swept: the fixed grid (within lists for probes), and *tuned*."""
    values = {v for v in _SWEEP[knob] if knob != "probes" or v <= lists}
    values.add(tuned)
    return sorted(values)


async def _point(
    repository: Any,
    value: int,
    queries: Vectors,
    truth: npt.NDArray[np.int64],
    row_of: Mapping[Any, int],
    concurrency: int,
) -> dict[str, Any]:
    async def search(query: Vectors) -> list[Any]:
        matches = await repository.search_similar(query, 10, probes=value)
        return [m.item.id for m in matches]

    # warm: the connections' prepared statements and the index pages
    await run_block(search, queries, list(range(min(len(queries), 2 * concurrency))), concurrency)
    block = await run_block(search, queries, list(range(len(queries))), concurrency)
    return {
        **summarise(block.latencies),
        "qps": block.qps,
        "recall": recall_at_k(block.answers, truth, row_of),
    }


async def benchmark(
    atlas: codeatlas.Atlas,
    spec: TableSpec,
    data: Dataset,
    tune_queries: Vectors,
    shifted: Dataset,
    row_of: Mapping[Any, int],
    *,
    queries: int,
    advance: Callable[[], None],
    strategies: Sequence[Strategy] = STRATEGIES,
) -> dict[str, Any]:
    """Return each strategy's build, tuning and sweep on the loaded table of *spec*."""
    repository = spec.repository(atlas)
    rows = len(data.base)
    held = data.queries[:queries]
    held_truth = data.truth[:queries]
    other = shifted.queries[:queries]
    other_truth = shifted.truth[:queries]
    results: list[dict[str, Any]] = []
    for strategy in strategies:
        lists = strategy.lists(rows) if strategy.lists is not None else None
        started = time.perf_counter()
        [built] = await atlas.indexes.rebuild(
            spec.table, kind=strategy.kind, lists=lists, concurrently=False
        )
        build_s = time.perf_counter() - started
        await atlas.executor.execute(f"ANALYZE {spec.table}")
        size = await atlas.executor.fetchval(
            "SELECT pg_relation_size(to_regclass($1))", spec.repository(atlas).vector_index
        )
        [tuned] = await atlas.indexes.tune(
            spec.table, target_recall=TARGET, queries=tune_queries, seed=1
        )
        points = []
        for value in knob_values(tuned.knob, tuned.probes, built.lists or 0):
            one = await _point(repository, value, held, held_truth, row_of, 1)
            eight = await _point(repository, value, held, held_truth, row_of, 8)
            shifted_one = await _point(repository, value, other, other_truth, row_of, 1)
            points.append(
                {
                    "value": value,
                    "tuned": value == tuned.probes,
                    "c1": one,
                    "c8": eight,
                    "shifted_c1": shifted_one,
                }
            )
        results.append(
            {
                "label": strategy.label,
                "kind": strategy.kind,
                "params": dict(built.params),
                "build_s": build_s,
                "index_bytes": int(size or 0),
                "knob": tuned.knob,
                "tuned": tuned.probes,
                "tune_recall_on_its_sample": tuned.recall,
                "tune_sample": f"{tuned.sample} {tuned.sample_source}",
                "points": points,
            }
        )
        advance()
    return {
        "table": spec.table,
        "rows": rows,
        "queries": queries,
        "strategies": results,
        "ratios": ratios(results),
    }


def _cheapest(points: Sequence[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """Return the swept point of lowest p50 whose held-out recall meets the target."""
    meeting = [p for p in points if p[key]["recall"] >= TARGET]
    return min(meeting, key=lambda p: p[key]["p50_ms"]) if meeting else None


def ratios(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Return, per strategy, p50 and QPS against IVFFlat lists=100 at recall >= 0.95."""
    base = next(r for r in results if r["label"] == "ivfflat lists=100")
    base_point = _cheapest(base["points"], "c1")
    base_eight = _cheapest(base["points"], "c8")
    out: dict[str, Any] = {}
    for result in results:
        point = _cheapest(result["points"], "c1")
        eight = _cheapest(result["points"], "c8")
        tuned = next(p for p in result["points"] if p["tuned"])
        out[result["label"]] = {
            "value_at_target": point["value"] if point else None,
            "p50_ms_at_target": point["c1"]["p50_ms"] if point else None,
            "speedup_p50_c1": (
                base_point["c1"]["p50_ms"] / point["c1"]["p50_ms"] if point and base_point else None
            ),
            "speedup_qps_c8": (
                eight["c8"]["qps"] / base_eight["c8"]["qps"] if eight and base_eight else None
            ),
            "tuned_value": tuned["value"],
            "tuned_recall_held_out": tuned["c1"]["recall"],
            "tuned_recall_shifted": tuned["shifted_c1"]["recall"],
            "tuned_p50_ms": tuned["c1"]["p50_ms"],
            "tuned_speedup_p50_c1": (
                base_point["c1"]["p50_ms"] / tuned["c1"]["p50_ms"] if base_point else None
            ),
        }
    return out
