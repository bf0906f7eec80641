"""search_hybrid against search_similar on the same table and data: p50 ratio, and the plan.

    python -m benchmarks.hybrid [--dsn DSN] [--rows 20000] [--queries 200] [--seed 7]

Loads *rows* rag_documents (768-d clustered vectors from benchmarks.data, seeded text from a
Zipf-distributed code vocabulary) into a throwaway embedded server (or the empty database
of --dsn: its rag_documents rows are replaced), rebuilds the IVFFlat index for that row
count, then times both searches in the same process, alternating per query so noise hits
both alike, at the same probes. Prints the p50s, their ratio and both statements' plans.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import numpy as np

import codeatlas
from codeatlas.config import Settings
from codeatlas.models import RagDocumentCreate

from .data import make_dataset

K: Final = 10
PROBES: Final = 5
WORDS_PER_DOCUMENT: Final = 60
_SYLLABLES: Final = ("pa", "re", "ti", "lo", "ka", "mu", "se", "no", "di", "vo", "ra", "ex")


def vocabulary(rng: np.random.Generator, size: int = 5000) -> list[str]:
    """Return *size* distinct code-like words: snake_case, camelCase and plain."""
    words: set[str] = set()
    while len(words) < size:
        parts = ["".join(rng.choice(_SYLLABLES, size=int(rng.integers(1, 4)))) for _ in range(2)]
        style = int(rng.integers(0, 3))
        if style == 0:
            words.add("_".join(parts))
        elif style == 1:
            words.add(parts[0] + parts[1].capitalize())
        else:
            words.add(parts[0])
    return sorted(words)


def texts(rng: np.random.Generator, words: list[str], count: int, length: int) -> list[str]:
    """Return *count* texts of *length* words drawn Zipf-like (a few words are common)."""
    weights = 1.0 / np.arange(1, len(words) + 1)
    weights /= weights.sum()
    drawn = rng.choice(len(words), size=(count, length), p=weights)
    return [" ".join(words[i] for i in row) for row in drawn]


@contextlib.asynccontextmanager
async def connected(dsn: str | None) -> AsyncIterator[codeatlas.Atlas]:
    """Yield a migrated Atlas: on *dsn*, else on a throwaway embedded server."""
    if dsn is not None:
        async with codeatlas.connect(dsn) as atlas:
            yield atlas
        return
    with tempfile.TemporaryDirectory(prefix="codeatlas-hybrid-") as scratch:
        settings = Settings(data_dir=Path(scratch) / "pgdata", pool_min_size=1, pool_max_size=2)
        async with codeatlas.connect(settings=settings) as atlas:
            yield atlas


async def explain(atlas: codeatlas.Atlas, run: Any) -> str:
    """Return EXPLAIN ANALYZE of the one statement *run* sends that reads rag_documents."""
    async with atlas.transaction() as tx:
        connection = tx.executor._connection
        sent: list[tuple[str, tuple[Any, ...]]] = []

        def log(query: Any) -> None:
            sent.append((query.query, query.args))

        connection.add_query_logger(log)
        try:
            await run(tx.rag)
        finally:
            connection.remove_query_logger(log)
        [(sql, args)] = [(q, a) for q, a in sent if "FROM rag_documents" in q]
        await connection.execute(f"SET LOCAL ivfflat.probes = {PROBES}")
        rows = await connection.fetch(f"EXPLAIN (ANALYZE, COSTS OFF, BUFFERS OFF) {sql}", *args)
    return "\n".join(row[0] for row in rows)


async def main(dsn: str | None, rows: int, queries: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    data = make_dataset(768, rows, queries, seed=seed)
    words = vocabulary(rng)
    bodies = texts(rng, words, rows, WORDS_PER_DOCUMENT)
    # a query names a few words a developer would search for: drawn uniformly from the
    # vocabulary, so mostly mid-frequency and rare words, as identifiers are
    questions = [" ".join(rng.choice(words, size=3)) for _ in range(queries)]
    async with connected(dsn) as atlas:
        await atlas.executor.execute("TRUNCATE rag_documents CASCADE")
        started = time.perf_counter()
        await atlas.rag.insert_many(
            [
                RagDocumentCreate(
                    source_type="bench", source_id=f"doc/{i}.py", content=body, embedding=vector
                )
                for i, (body, vector) in enumerate(zip(bodies, data.base, strict=True))
            ]
        )
        loaded = time.perf_counter() - started
        await atlas.indexes.rebuild("rag_documents", concurrently=False)
        await atlas.executor.execute("VACUUM ANALYZE rag_documents")
        print(f"loaded {rows} rows in {loaded:.1f} s (tsvector computed by the server)")

        similar: list[float] = []
        hybrid: list[float] = []
        for round_ in range(2):  # the first round warms caches and plans, and is discarded
            similar.clear()
            hybrid.clear()
            for i in range(queries):
                vector, question = data.queries[i], questions[i]
                calls = [
                    (similar, atlas.rag.search_similar(vector, K, probes=PROBES)),
                    (hybrid, atlas.rag.search_hybrid(question, vector, K, probes=PROBES)),
                ]
                if (i + round_) % 2:
                    calls.reverse()
                for into, call in calls:
                    start = time.perf_counter()
                    await call
                    into.append(time.perf_counter() - start)
        p50_similar = statistics.median(similar) * 1000
        p50_hybrid = statistics.median(hybrid) * 1000
        print(f"search_similar p50 {p50_similar:.2f} ms, search_hybrid p50 {p50_hybrid:.2f} ms")
        print(f"ratio hybrid / similar at p50: {p50_hybrid / p50_similar:.2f}x ({queries} queries)")
        vector, question = data.queries[0], questions[0]
        print(
            "\n-- search_similar plan\n"
            + await explain(atlas, lambda rag: rag.search_similar(vector, K, probes=PROBES))
        )
        print(
            "\n-- search_hybrid plan\n"
            + await explain(
                atlas, lambda rag: rag.search_hybrid(question, vector, K, probes=PROBES)
            )
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=None)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.dsn, args.rows, args.queries, args.seed))
