"""A tenant-filtered vector search on one table against LIST partitions by codebase_id:
``python -m benchmarks.partitions`` (the example of docs/scaling.md).

One embedded server (temporary data directory). 8 codebases x 2,500 rows of 384-d unit
vectors, all drawn from one distribution, loaded twice: into one table with one HNSW
index (as codeatlas' tables are), and into a table partitioned ``BY LIST (codebase_id)``,
one partition per codebase, where the index created on the parent becomes one HNSW index
per partition. For 100 queries filtered on one codebase (k=10, ``hnsw.ef_search = 40``,
pgvector 0.8's iterative scan on, as codeatlas sets it) it prints each plan (EXPLAIN
ANALYZE of the first query, with buffers), the p50 latency and the recall against the
exact answer.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector

from codeatlas._server import get_embedded_server

CODEBASES = 8
ROWS_EACH = 2500
DIM = 384
QUERIES = 100

_SETUP = f"""
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE single (id bigint, codebase_id text, embedding vector({DIM}));
CREATE TABLE parted (id bigint, codebase_id text, embedding vector({DIM}))
    PARTITION BY LIST (codebase_id);
"""
_SEARCH = """
SELECT id FROM {table} WHERE codebase_id = $2
 ORDER BY embedding <=> $1 LIMIT 10"""
_EXACT = """
SELECT id FROM single WHERE codebase_id = $2
 ORDER BY (embedding <=> $1) + 0 LIMIT 10"""


async def _timed(connection: Any, sql: str, queries: Any, codebase: str) -> tuple[float, list[Any]]:
    timings, answers = [], []
    for query in queries:
        started = time.perf_counter()
        async with connection.transaction():
            await connection.execute("SET LOCAL hnsw.ef_search = 40")
            await connection.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            rows = await connection.fetch(sql, query, codebase)
        timings.append(time.perf_counter() - started)
        answers.append({row["id"] for row in rows})
    return statistics.median(timings) * 1000, answers


async def main() -> None:
    server = get_embedded_server(Path(tempfile.mkdtemp()) / "pgdata")
    admin = await asyncpg.connect(server.dsn("postgres"))
    await admin.execute("CREATE DATABASE partitions")
    await admin.close()
    connection = await asyncpg.connect(server.dsn("partitions"))
    await connection.execute(_SETUP)
    await register_vector(connection)
    rng = np.random.default_rng(7)
    rows = []
    for c in range(CODEBASES):
        await connection.execute(
            f"CREATE TABLE parted_c{c} PARTITION OF parted FOR VALUES IN ('c{c}')"
        )
        # every codebase drawn from the same distribution: a query's nearest rows belong
        # to all of them, so a filter keeps 1 in 8 of what the index finds
        block = rng.standard_normal((ROWS_EACH, DIM))
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        rows += [(c * ROWS_EACH + i, f"c{c}", v.astype(np.float32)) for i, v in enumerate(block)]
    for table in ("single", "parted"):
        await connection.copy_records_to_table(
            table, records=rows, columns=["id", "codebase_id", "embedding"]
        )
        await connection.execute(
            f"CREATE INDEX ON {table} USING hnsw (embedding vector_cosine_ops)"
        )
        await connection.execute(f"ANALYZE {table}")
    queries = [
        rows[int(i)][2] + 0.05 * rng.standard_normal(DIM).astype(np.float32)
        for i in rng.integers(3 * ROWS_EACH, 4 * ROWS_EACH, QUERIES)
    ]
    codebase = "c3"
    result: dict[str, Any] = {}
    _, truth = await _timed(connection, _EXACT, queries, codebase)
    for table in ("single", "parted"):
        sql = _SEARCH.format(table=table)
        async with connection.transaction():
            await connection.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            plan = await connection.fetch(
                f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) {sql}",
                queries[0],
                codebase,
            )
        p50, answers = await _timed(connection, sql, queries, codebase)
        recall = statistics.mean(
            len(got & want) / len(want) for got, want in zip(answers, truth, strict=True)
        )
        result[table] = {
            # the query vector, inlined by the custom plan, shown as the parameter it was
            "plan": [re.sub(r"'\[[^']*\]'::vector", "$1", row[0]) for row in plan],
            "p50_ms": round(p50, 3),
            "recall_at_10": round(recall, 3),
        }
    await connection.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
