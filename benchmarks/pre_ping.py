"""What guarding against dead idle connections costs on a trivial query.

``python -m benchmarks.pre_ping [DSN]`` (default: the embedded server) times ``SELECT 1``
three ways, sequentially on one pool: raw asyncpg ``pool.fetchval``; codeatlas'
executor as it runs by default (a connection used within ``pre_ping_after`` seconds is
not pinged, so the guard costs only bookkeeping); and the executor with
``pre_ping_after = 0``, so that every acquire pings first (the cost a connection that sat
idle pays once). Prints the median and p95 per call in microseconds; asserts nothing.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import codeatlas

ROUNDS = 5
CALLS = 2000


async def _time(call: Callable[[], Awaitable[Any]]) -> list[float]:
    samples = []
    for _ in range(CALLS):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


async def main(dsn: str | None) -> None:
    async with codeatlas.connect(dsn, min_size=1, max_size=1) as atlas:
        state = atlas.executor.state
        variants: dict[str, Callable[[], Awaitable[Any]]] = {
            "asyncpg pool.fetchval": lambda: atlas.pool.fetchval("SELECT 1"),
            "codeatlas executor (default)": lambda: atlas.executor.fetchval("SELECT 1"),
            "codeatlas executor, ping on every acquire": lambda: atlas.executor.fetchval(
                "SELECT 1"
            ),
        }
        results: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(ROUNDS):  # interleaved, so drift affects every variant alike
            for name, call in variants.items():
                state.pre_ping_after = 0.0 if "every" in name else 10.0
                results[name] += await _time(call)
        for name, samples in results.items():
            samples.sort()
            p95 = samples[int(len(samples) * 0.95)]
            print(f"{name:45s} median {statistics.median(samples):7.1f} us  p95 {p95:7.1f} us")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))
