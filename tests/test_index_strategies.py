"""Index strategies on the real server: recall against numpy, knobs, cache plans, bulk loads.

One 4,000-row clustered 768-d set in rag_documents (seeded) serves the strategy tests;
each test builds the kind it needs first, so none depends on another's index.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import codeatlas
from codeatlas._db import Executor
from codeatlas._server import get_embedded_server, machine, server_settings
from codeatlas.config import Settings
from codeatlas.errors import InvalidInputError
from codeatlas.index_strategies import KINDS, STRATEGIES
from codeatlas.indexes import IndexProgress
from codeatlas.models import RagDocumentCreate, RagQueryCreate, SemanticCacheEntryCreate
from codeatlas.search import recommended_lists
from fixtures.server import PgServer

ROWS = 4_000
DIM = 768
Vectors = npt.NDArray[np.float32]


def _unit(vectors: Vectors) -> Vectors:
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def _mixture(rows: int, rng: np.random.Generator, centres: Vectors) -> Vectors:
    """Draws around *centres* spreading in a low-rank subspace (real embeddings' shape)."""
    basis = np.linalg.qr(rng.standard_normal((DIM, 16)).astype(np.float32))[0].T
    labels = rng.integers(0, len(centres), size=rows)
    along = rng.standard_normal((rows, 16)).astype(np.float32) @ basis
    noise = rng.standard_normal((rows, DIM)).astype(np.float32) * np.float32(0.2 / np.sqrt(DIM))
    return _unit(centres[labels] + along * np.float32(0.5) + noise)


@pytest.fixture(scope="module")
def vectors() -> tuple[Vectors, Vectors]:
    """(rows, held-out queries) of one seeded mixture."""
    rng = np.random.default_rng(2026)
    centres = _unit(rng.standard_normal((12, DIM)).astype(np.float32))
    both = _mixture(ROWS + 200, rng, centres)
    return both[:ROWS], both[ROWS:]


def _document(i: int, vector: Vectors) -> RagDocumentCreate:
    return RagDocumentCreate(
        source_type="doc", source_id=str(i), content=f"row {i}", embedding=vector
    )


@pytest.fixture(scope="module")
async def corpus_dsn(pg: PgServer, vectors: tuple[Vectors, Vectors]) -> AsyncIterator[str]:
    template = await pg.ensure_template()
    name = await pg.create_database(template=template)
    dsn = pg.dsn_for(name)
    async with codeatlas.connect(dsn, migrate=False) as atlas:
        await atlas.rag.insert_many([_document(i, v) for i, v in enumerate(vectors[0])])
        await atlas.executor.execute("ANALYZE rag_documents")
    yield dsn
    await pg.drop_database(name)


@pytest.fixture
async def corpus(corpus_dsn: str) -> AsyncIterator[codeatlas.Atlas]:
    async with codeatlas.connect(corpus_dsn, migrate=False) as atlas:
        yield atlas


async def _truth(atlas: codeatlas.Atlas, queries: Vectors, k: int = 10) -> list[set[Any]]:
    rows = await atlas.executor.fetch("SELECT id, embedding FROM rag_documents")
    ids = [row["id"] for row in rows]
    matrix = np.stack([row["embedding"] for row in rows])
    return [{ids[i] for i in np.argsort(-(matrix @ q))[:k]} for q in queries]


@pytest.mark.parametrize("kind", KINDS)
async def test_each_strategy_meets_its_tuned_recall_against_numpy(
    corpus: codeatlas.Atlas, vectors: tuple[Vectors, Vectors], kind: str
) -> None:
    _, queries = vectors
    [built] = await corpus.indexes.rebuild("rag_documents", kind=kind)
    assert built.strategy == kind and built.rows == ROWS
    docs = {s.table: s for s in await corpus.indexes.status()}["rag_documents"]
    assert docs.strategy == kind and docs.valid and not docs.rebuild_advised

    [tuned] = await corpus.indexes.tune(
        "rag_documents", target_recall=0.9, queries=queries[:100], seed=1
    )
    assert (tuned.strategy, tuned.knob) == (kind, STRATEGIES[kind].knob)
    assert (tuned.sample_source, tuned.sample) == ("caller", 100)
    assert tuned.recall >= 0.9

    # other queries than the tuned ones, at the stored knob, against numpy's exact top 10
    held_out = queries[100:]
    truth = await _truth(corpus, held_out)
    found = await corpus.rag.search_similar_many(list(held_out), 10)
    recall = np.mean(
        [len(t & {m.item.id for m in f}) / 10 for t, f in zip(truth, found, strict=True)]
    )
    assert recall >= 0.85, f"{kind}: recall {recall:.3f}"
    # quantised or not, the similarity is the exact cosine of the full-precision vectors
    by_id = {
        r["id"]: r["embedding"]
        for r in await corpus.executor.fetch("SELECT id, embedding FROM rag_documents")
    }
    for query, matches in zip(held_out[:20], found[:20], strict=True):
        assert [m.similarity for m in matches] == sorted(
            (m.similarity for m in matches), reverse=True
        )
        for match in matches:
            assert match.similarity == pytest.approx(float(by_id[match.item.id] @ query), abs=1e-5)

    # the Elixir application's plain query still runs, whatever the kind
    plain = await corpus.executor.fetch(
        "SELECT id FROM rag_documents ORDER BY embedding <=> $1 LIMIT 10", held_out[0]
    )
    assert len(plain) == 10


_KNOB_NAMES = ("ivfflat.probes", "ivfflat.iterative_scan", "hnsw.ef_search", "hnsw.iterative_scan")
_READ_KNOBS = "SELECT " + ", ".join(f"current_setting('{n}', true)" for n in _KNOB_NAMES)


@pytest.fixture
def spied(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, str | None]]]:
    """Record the knobs in force on the connection just before each search statement."""
    seen: list[dict[str, str | None]] = []
    original = Executor.fetch

    async def fetch(self: Executor, query: str, *args: Any, timeout: float | None = None) -> Any:
        if "_distance" in query:
            async with self.acquire() as connection:
                row = await connection.fetchrow(_READ_KNOBS)
            assert row is not None
            seen.append(dict(zip(_KNOB_NAMES, row, strict=True)))
        return await original(self, query, *args, timeout=timeout)

    monkeypatch.setattr(Executor, "fetch", fetch)
    yield seen


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("ivfflat", {"ivfflat.probes": "3", "ivfflat.iterative_scan": "relaxed_order"}),
        ("hnsw", {"hnsw.ef_search": "77", "hnsw.iterative_scan": "relaxed_order"}),
        # a quantised HNSW index: the knob is the over-fetch, ef_search covers the candidates
        ("hnsw_binary", {"hnsw.ef_search": "120", "hnsw.iterative_scan": "relaxed_order"}),
    ],
)
async def test_search_sends_its_strategys_knobs_and_leaks_none(
    corpus_dsn: str,
    vectors: tuple[Vectors, Vectors],
    spied: list[dict[str, str | None]],
    kind: str,
    expected: dict[str, str],
) -> None:
    settings = Settings(pool_min_size=1, pool_max_size=1)  # one connection: any leak shows
    knob = {"ivfflat": 3, "hnsw": 77, "hnsw_binary": 12}[kind]
    async with codeatlas.connect(corpus_dsn, migrate=False, settings=settings) as atlas:
        await atlas.indexes.rebuild("rag_documents", kind=kind)
        before = await atlas.executor.fetchrow(_READ_KNOBS)
        await atlas.rag.search_similar(vectors[1][0], 10, probes=knob)
        async with atlas.transaction() as tx:
            await tx.rag.search_similar(vectors[1][1], 10, probes=knob)
            inside = await tx.executor.fetchrow(_READ_KNOBS)
        after = await atlas.executor.fetchrow(_READ_KNOBS)
    assert before is not None and inside is not None and after is not None
    assert len(spied) == 2
    for seen in spied:
        assert {name: seen[name] for name in expected} == expected
        # the other method's knobs are not sent
        others = [n for n in _KNOB_NAMES if n not in expected]
        assert all(seen[n] == before[_KNOB_NAMES.index(n)] for n in others)
    assert tuple(inside) == tuple(before) == tuple(after)


async def test_semantic_cache_lookup_plan_is_an_index_scan_hit_or_miss(
    migrated_dsn: str,
) -> None:
    async with codeatlas.connect(migrated_dsn, migrate=False) as atlas:
        await _cache_lookups(atlas, migrated_dsn)


async def _cache_lookups(atlas: codeatlas.Atlas, dsn: str) -> None:
    rng = np.random.default_rng(5)
    entries = _unit(rng.standard_normal((3000, DIM)).astype(np.float32))
    await atlas.semantic_cache.insert_many(
        [
            SemanticCacheEntryCreate(
                cache_key=f"k{i}", query=f"q{i}", query_embedding=v, response=f"a{i}", model="m"
            )
            for i, v in enumerate(entries)
        ]
    )
    near = _unit(entries[7:8] + 0.05 * _unit(rng.standard_normal((1, DIM)).astype(np.float32)))[0]
    fresh = _unit(rng.standard_normal((1, DIM)).astype(np.float32))[0]
    cache = atlas.semantic_cache
    for kind, lists in (("ivfflat", 30), ("hnsw", None)):
        await atlas.indexes.rebuild("semantic_cache", kind=kind, lists=lists)
        await atlas.executor.execute("ANALYZE semantic_cache")
        knob = await cache._probes(None)
        settings = cache._knobs(knob, exact=False, k=1)
        # the statement a lookup inside a transaction sends, under its knobs...
        async with atlas.executor.with_settings(settings) as tx:
            plan = await tx.fetchval(
                f"EXPLAIN (FORMAT JSON) {cache._lookup_sql(knob)}", near, 0.05, "m"
            )
        # ...and the one-round-trip statement a lookup on the pool sends (knobs inline)
        inline = cache._lookup_sql(knob, inline=tuple(settings))
        inline_plan = await atlas.executor.fetchval(
            f"EXPLAIN (FORMAT JSON) {inline}", near, 0.05, "m", *settings.values()
        )
        for text in (json.dumps(plan), json.dumps(inline_plan)):
            assert "idx_semantic_cache_query_embedding_vector" in text, (kind, text)
            assert '"Seq Scan"' not in text and '"Sort"' not in text, (kind, text)

        hit = await cache.lookup(near, 0.95, model="m")
        assert hit is not None and hit.item.cache_key == "k7" and hit.similarity >= 0.95
        assert await cache.lookup(fresh, 0.95, model="m") is None
        assert await cache.lookup(near, 0.95, model="other") is None
    await cache.flush_hits()  # hits are counted in a side table until flushed
    hits = await atlas.executor.fetchval(
        "SELECT hit_count FROM semantic_cache WHERE cache_key = 'k7'"
    )
    assert hits == 2
    # inside a caller's transaction (the savepoint path) the answer is the same
    async with atlas.transaction() as tx:
        again = await tx.semantic_cache.lookup(near, 0.95, model="m")
        assert again is not None and again.item.cache_key == "k7"
        assert await tx.semantic_cache.lookup(fresh, 0.95) is None
    # the inline knobs end with the lookup's statement: the connection keeps none
    single = Settings(pool_min_size=1, pool_max_size=1)
    async with codeatlas.connect(dsn, migrate=False, settings=single) as one:
        before = await one.executor.fetchrow(_READ_KNOBS)
        assert await one.semantic_cache.lookup(near, 0.95, model="m", probes=7) is not None
        after = tuple(await one.executor.fetchrow(_READ_KNOBS) or ())
        # pgvector's defaults (its settings exist once the library is loaded), not probes=7
        assert after in {tuple(before or ()), ("1", "off", "40", "off")}


async def test_a_reader_during_a_bulk_load_never_fails(
    atlas: codeatlas.Atlas, vectors: tuple[Vectors, Vectors]
) -> None:
    rows, queries = vectors
    await atlas.rag.insert_many([_document(i, v) for i, v in enumerate(rows[:500])])
    stop = asyncio.Event()
    searches = 0
    errors: list[BaseException] = []

    async def reader() -> None:
        nonlocal searches
        while not stop.is_set():
            try:
                found = await atlas.rag.search_similar(queries[searches % len(queries)], 5)
            except Exception as exc:  # the assertion below shows what it was
                errors.append(exc)
                return
            assert len(found) == 5
            searches += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(reader())
    progress: list[IndexProgress] = []
    try:
        async with atlas.indexes.bulk_load("rag_documents", on_progress=progress.append) as load:
            for start in range(500, ROWS, 700):
                await atlas.rag.insert_many(
                    [_document(i, rows[i]) for i in range(start, min(start + 700, ROWS))]
                )
                await asyncio.sleep(0.05)  # let the reader search the index-less table
        await asyncio.sleep(0.1)
    finally:
        stop.set()
        await task
    assert errors == []
    assert searches >= 5
    [result] = load.results
    assert (result.rows, result.lists) == (ROWS, recommended_lists(ROWS))
    docs = {s.table: s for s in await atlas.indexes.status()}["rag_documents"]
    assert docs.valid and docs.rows_at_build == ROWS and not docs.rebuild_advised

    # a failing body still leaves the table indexed, and its error propagates
    with pytest.raises(RuntimeError, match="load failed"):
        async with atlas.indexes.bulk_load(["rag_documents"]):
            raise RuntimeError("load failed")
    docs = {s.table: s for s in await atlas.indexes.status()}["rag_documents"]
    assert docs.valid and docs.rows_at_build == ROWS
    with pytest.raises(InvalidInputError, match="no vector index"):
        async with atlas.indexes.bulk_load("pg_class"):
            pass


async def test_tune_reports_the_sample_it_used(
    atlas: codeatlas.Atlas, vectors: tuple[Vectors, Vectors]
) -> None:
    rows, queries = vectors
    await atlas.rag.insert_many([_document(i, v) for i, v in enumerate(rows[:2000])])
    await atlas.indexes.rebuild("rag_documents")
    # no logged queries yet: perturbed stored rows
    [tuned] = await atlas.indexes.tune("rag_documents", sample=40, seed=3)
    assert (tuned.sample_source, tuned.sample) == ("stored rows (perturbed)", 40)
    # logged questions (rag_queries.query_embedding) are what users ask: measured on those
    await atlas.rag.queries.insert_many(
        [RagQueryCreate(query_text=f"q{i}", query_embedding=q) for i, q in enumerate(queries[:35])]
    )
    [tuned] = await atlas.indexes.tune("rag_documents", sample=40, seed=3)
    assert (tuned.sample_source, tuned.sample) == ("rag_queries.query_embedding", 35)
    # the caller's own queries win over both
    [tuned] = await atlas.indexes.tune("rag_documents", queries=queries[50:70])
    assert (tuned.sample_source, tuned.sample) == ("caller", 20)
    with pytest.raises(InvalidInputError, match="queries need a table"):
        await atlas.indexes.tune(queries=queries[:5])
    with pytest.raises(codeatlas.errors.InvalidVectorError):
        await atlas.indexes.tune("rag_documents", queries=[np.ones(5)])


async def test_compare_returns_the_frontier_and_apply_records_the_strategy(
    corpus: codeatlas.Atlas, vectors: tuple[Vectors, Vectors]
) -> None:
    _, queries = vectors
    lines: list[str] = []
    result = await corpus.indexes.compare(
        "rag_documents",
        strategies=["ivfflat", "hnsw"],
        queries=queries[:60],
        target_recall=0.9,
        max_rows=3000,
        seed=1,
        apply=True,
        on_progress=lines.append,
    )
    assert result.rows == 3000 and (result.sample_source, result.sample) == ("caller", 60)
    assert {e.strategy for e in result.entries} == {"ivfflat", "hnsw"}
    assert [e.p50_ms for e in result.entries] == sorted(e.p50_ms for e in result.entries)
    assert result.frontier and result.frontier[0] == result.entries[0]
    meeting = [e for e in result.entries if e.meets_target]
    assert meeting and result.chosen == meeting[0].strategy
    assert result.applied is not None and result.applied.strategy == result.chosen
    assert result.tuned is not None and result.tuned.sample_source == "caller"
    recorded = await corpus.executor.fetchrow(
        "SELECT strategy, rows_at_build FROM codeatlas_vector_indexes"
        " WHERE index_name = 'idx_rag_documents_embedding_vector'"
    )
    assert recorded is not None and tuple(recorded) == (result.chosen, ROWS)
    docs = {s.table: s for s in await corpus.indexes.status()}["rag_documents"]
    assert docs.strategy == result.chosen
    # the scratch copy is gone
    assert not await corpus.executor.fetchval(
        "SELECT count(*) FROM pg_class WHERE relname LIKE 'codeatlas_compare%'"
    )
    assert lines
    with pytest.raises(InvalidInputError, match="kind must be one of"):
        await corpus.indexes.compare("rag_documents", strategies=["annoy"])


async def test_rebuild_refuses_bad_strategy_arguments(corpus: codeatlas.Atlas) -> None:
    with pytest.raises(InvalidInputError, match="kind must be one of"):
        await corpus.indexes.rebuild("rag_documents", kind="diskann")
    with pytest.raises(InvalidInputError, match="m must be"):
        await corpus.indexes.rebuild("rag_documents", kind="hnsw", m=1)
    with pytest.raises(InvalidInputError, match="twice m"):
        await corpus.indexes.rebuild("rag_documents", kind="hnsw", m=32, ef_construction=40)


def test_an_embedded_server_is_sized_for_the_machine(tmp_path: Path) -> None:
    data_dir = tmp_path / "sized"
    server = get_embedded_server(data_dir)  # stopped at exit, like the session's own
    expected = server_settings(machine())
    shown = {name: server._handle.psql(f"SHOW {name};").split("\n")[2].strip() for name in expected}
    units = {"shared_buffers", "effective_cache_size", "maintenance_work_mem"}
    for name, value in expected.items():
        wanted = value if name not in units else _pretty(value)
        assert shown[name] == wanted, (name, shown[name], wanted)


def _pretty(megabytes: str) -> str:
    """Spell '2048MB' as PostgreSQL's SHOW does ('2GB')."""
    number = int(megabytes.removesuffix("MB"))
    return f"{number // 1024}GB" if number % 1024 == 0 else megabytes


async def test_loading_bulk_loads_only_loads_that_outgrow_the_table(
    atlas: codeatlas.Atlas, vectors: tuple[Vectors, Vectors], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(codeatlas.indexes, "BULK_LOAD_MIN_ROWS", 300)
    rows = vectors[0]
    async with atlas.indexes.loading({"rag_documents": 200}) as skipped:
        await atlas.rag.insert_many([_document(i, v) for i, v in enumerate(rows[:200])])
    assert skipped is None  # too few rows: loaded with the index in place
    async with atlas.indexes.loading({"rag_documents": 800, "code_files": 800}) as load:
        await atlas.rag.insert_many([_document(i, rows[i]) for i in range(200, 1000)])
    assert load is not None and load.tables == ("rag_documents",)
    assert [r.rows for r in load.results] == [1000]
    async with atlas.indexes.loading({"rag_documents": 400}) as small:  # less than it holds
        pass
    assert small is None


async def test_cli_rebuilds_in_a_kind_and_compares_strategies(
    corpus_dsn: str, tmp_path: Path
) -> None:
    from test_cli import assert_fits, cli

    rebuilt = await cli(
        "index", "rebuild", "--table", "rag_documents", "--kind", "hnsw_halfvec",
        "--m", "8", "--ef-construction", "32", "--dsn", corpus_dsn, tmp_path=tmp_path,
    )  # fmt: skip
    assert rebuilt.code == 0, rebuilt.err
    assert "as hnsw_halfvec (m=8, ef_construction=32) on 4000 rows" in " ".join(rebuilt.out.split())
    status = await cli(
        "index", "status", "--table", "rag_documents", "--dsn", corpus_dsn, tmp_path=tmp_path
    )
    assert status.code == 0 and "hnsw_halfvec" in status.out
    compared = await cli(
        "index", "compare", "--table", "rag_documents", "--kinds", "ivfflat,hnsw_binary",
        "--max-rows", "1500", "--sample", "30", "--target", "0.8",
        "--dsn", corpus_dsn, tmp_path=tmp_path,
    )  # fmt: skip
    assert compared.code == 0, compared.err
    assert_fits(compared.out)
    assert "1500 rows, 30 queries (stored rows (perturbed))" in " ".join(compared.out.split())
    assert "ivfflat" in compared.out and "hnsw_binary" in compared.out
    # without --apply the live index keeps its kind
    async with codeatlas.connect(corpus_dsn, migrate=False) as atlas:
        docs = {s.table: s for s in await atlas.indexes.status()}["rag_documents"]
    assert docs.strategy == "hnsw_halfvec"


async def test_a_cancelled_bulk_load_leaves_an_index_rebuild_restores_in_its_kind(
    atlas: codeatlas.Atlas, vectors: tuple[Vectors, Vectors]
) -> None:
    rows = vectors[0]
    await atlas.rag.insert_many([_document(i, v) for i, v in enumerate(rows[:300])])
    await atlas.indexes.rebuild("rag_documents", kind="hnsw")

    async def load() -> None:
        async with atlas.indexes.bulk_load("rag_documents"):
            await asyncio.sleep(30)

    task = asyncio.create_task(load())
    await asyncio.sleep(0.5)
    while not task.done():
        docs = {s.table: s for s in await atlas.indexes.status()}["rag_documents"]
        if docs.reason == "index is missing":
            break
        await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    docs = {s.table: s for s in await atlas.indexes.status()}["rag_documents"]
    assert docs.rebuild_advised and docs.reason == "index is missing"
    # searches still answer, exactly, without the index
    found = await atlas.rag.search_similar(rows[5], 3)
    assert found[0].item.source_id == "5"
    [restored] = await atlas.indexes.rebuild("rag_documents")
    assert restored.strategy == "hnsw"
