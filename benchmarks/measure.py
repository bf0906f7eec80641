"""Timing primitives: run a block of queries at a concurrency, summarise latencies, recall."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Block", "recall_at_k", "run_block", "summarise"]


@dataclass(slots=True)
class Block:
    """Latencies (seconds), wall time and answers of the queries one client ran."""

    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    #: (query number, primary keys returned)
    answers: list[tuple[int, list[Any]]] = field(default_factory=list)

    def extend(self, other: Block) -> None:
        """Add *other*'s queries to this block."""
        self.latencies.extend(other.latencies)
        self.wall += other.wall
        self.answers.extend(other.answers)

    @property
    def qps(self) -> float:
        """Queries per second of wall time."""
        return len(self.latencies) / self.wall if self.wall else 0.0


async def run_block(
    search: Callable[[Any], Awaitable[list[Any]]],
    queries: npt.NDArray[np.float32],
    numbers: Sequence[int],
    concurrency: int,
) -> Block:
    """Run the queries *numbers* through *search* with *concurrency* workers; time each."""
    block = Block()
    pending = iter(numbers)

    async def worker() -> None:
        for number in pending:
            started = time.perf_counter()
            keys = await search(queries[number])
            block.latencies.append(time.perf_counter() - started)
            block.answers.append((number, keys))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    block.wall = time.perf_counter() - started
    return block


def summarise(latencies: Sequence[float]) -> dict[str, float]:
    """Return count, mean and p50/p95/p99 of *latencies* in milliseconds."""
    values = np.asarray(latencies, dtype=np.float64) * 1000.0
    if values.size == 0:
        return {"n": 0}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "n": int(values.size),
        "mean_ms": float(values.mean()),
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
    }


def recall_at_k(
    answers: Sequence[tuple[int, list[Any]]],
    truth: npt.NDArray[np.int64],
    row_of: Mapping[Any, int],
) -> float:
    """Return the mean share of the exact top-k found in each answer."""
    if not answers:
        return 0.0
    k = truth.shape[1]
    found = [
        len({row_of[key] for key in keys} & set(truth[number].tolist())) / k
        for number, keys in answers
    ]
    return float(np.mean(found))
