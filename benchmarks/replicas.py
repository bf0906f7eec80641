"""Reads on a streaming standby under a search-heavy load: ``python -m benchmarks.replicas``.

A primary and a hot standby from the embedded binaries (the test fixture's own setup,
tests/fixtures/replication.py), 2,000 rows of 1536-d vectors. Phase 1: 8 concurrent
searchers (``search_similar`` k=10) and 1 writer (insert a row, then read it back by key
at once: read-your-writes) through one Atlas with the standby as replica. Phase 2: the
same load while the standby is stopped (immediate shutdown) after a third of it. Prints
where the reads went, how long reads waited for the standby to replay the writer's
commits, and the fallbacks; every written row must be read back by its writer.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

import codeatlas
from codeatlas.models import VectorSearchCreate

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fixtures.replication import DATABASE, Replicated, start_replicated

ROWS = 2000
SEARCHERS = 8
SEARCHES_EACH = 60
WRITES = 60


def _chunk(codebase: str, i: int, vector: Any) -> VectorSearchCreate:
    return VectorSearchCreate(
        codebase_id=codebase,
        file_path=f"src/file_{i}.py",
        content_type="function",
        content=f"def f{i}(): ...",
        vector_embedding=vector,
    )


async def _load(atlas: codeatlas.Atlas, vectors: Any, tag: str, stop: Any = None) -> dict[str, Any]:
    latencies: list[float] = []
    read_back: list[bool] = []
    done = 0
    total = SEARCHERS * SEARCHES_EACH

    async def searcher(seed: int) -> None:
        nonlocal done
        rng = np.random.default_rng(seed)
        for _ in range(SEARCHES_EACH):
            started = time.perf_counter()
            hits = await atlas.vector_search.search_similar(vectors[int(rng.integers(ROWS))], 10)
            latencies.append(time.perf_counter() - started)
            assert len(hits) == 10
            done += 1
            if stop is not None and done == total // 3:
                asyncio.get_running_loop().create_task(asyncio.to_thread(stop))

    async def writer() -> None:
        for i in range(WRITES):
            row = await atlas.vector_search.insert(_chunk(tag, i, vectors[i]))
            read_back.append((await atlas.vector_search.find(row.id)) is not None)

    before = dict(vars_of(atlas.routing))
    started = time.perf_counter()
    await asyncio.gather(*(searcher(s) for s in range(SEARCHERS)), writer())
    elapsed = time.perf_counter() - started
    after = vars_of(atlas.routing)
    delta = {key: after[key] - before[key] for key in after}
    reads = delta["replica_reads"] + delta["primary_reads"]
    return {
        "searches": len(latencies),
        "searches_per_s": round(len(latencies) / elapsed, 1),
        "search_p50_ms": round(statistics.median(latencies) * 1000, 2),
        "reads_routed": reads,
        "replica_share": round(delta["replica_reads"] / reads, 3) if reads else None,
        "writes_read_back": f"{sum(read_back)}/{len(read_back)}",
        "ryw_waits": delta["waits"],
        "ryw_wait_mean_ms": round(delta["wait_seconds"] / delta["waits"] * 1000, 2)
        if delta["waits"]
        else None,
        "behind_to_primary": delta["behind"],
        "fallbacks": delta["fallbacks"],
        "removals": delta["removals"],
    }


def vars_of(stats: Any) -> dict[str, float]:
    return {name: getattr(stats, name) for name in stats.__slots__}


async def main() -> None:
    pair: Replicated = start_replicated(Path(tempfile.mkdtemp(prefix="codeatlas-bench-")))
    admin = await asyncpg.connect(pair.primary_dsn("postgres"))
    await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    await admin.close()
    vectors = np.random.default_rng(1).standard_normal((ROWS, 1536)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    async with codeatlas.connect(pair.primary_dsn()) as primary:
        await primary.vector_search.insert_many(
            [_chunk("bench", i, v) for i, v in enumerate(vectors)]
        )
    await asyncio.sleep(1.0)  # let the standby replay the load
    settings = codeatlas.Settings(pool_max_size=10, replica_retry_after=60)
    async with codeatlas.connect(
        pair.primary_dsn(), replicas=[pair.standby.dsn()], migrate=False, settings=settings
    ) as atlas:
        steady = await _load(atlas, vectors, "w1")
        stopped = await _load(atlas, vectors, "w2", stop=lambda: pair.standby.stop("immediate"))
    shutil.rmtree(pair.standby.data_dir.parent, ignore_errors=True)
    print(json.dumps({"steady": steady, "standby_stopped_at_one_third": stopped}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
