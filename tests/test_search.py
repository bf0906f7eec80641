"""search_similar mechanics on a test-owned 8-dim table: ordering, filters, knobs, bad input.

The schema's own tables are covered by the repository and index tests; a small table of the
test's own keeps these cases fast and independent of the schema.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
import pytest

import codeatlas
from codeatlas.errors import InvalidFilterError, InvalidInputError, InvalidVectorError
from codeatlas.filters import Range
from codeatlas.models import TableSpec
from codeatlas.models._base import CreateModel, RowModel, UpdateModel
from codeatlas.models._types import _VectorSchema
from codeatlas.search import SearchableRepository

DIM = 8
Vector8 = Annotated[npt.NDArray[np.float32], _VectorSchema(DIM)]
ROWS = 20_000
RARE_SHARE = 0.01


class Item(RowModel):
    __table_spec__ = TableSpec("search_items", vector_index="search_items_embedding_idx")
    id: int
    codebase_id: str
    category: str
    rank: int
    embedding: Vector8 | None = None


class ItemCreate(CreateModel):
    codebase_id: str
    category: str
    rank: int
    embedding: Vector8 | None = None


class ItemUpdate(UpdateModel):
    category: str | None = None


class Items(SearchableRepository[Item, ItemCreate, ItemUpdate]):
    row_model = Item
    create_model = ItemCreate
    update_model = ItemUpdate


def unit(rng: np.random.Generator, n: int) -> npt.NDArray[np.float32]:
    data = rng.standard_normal((n, DIM)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def vectors() -> npt.NDArray[np.float32]:
    return unit(np.random.default_rng(42), ROWS)


@pytest.fixture
async def items(atlas: codeatlas.Atlas, vectors: npt.NDArray[np.float32]) -> AsyncIterator[Items]:
    await atlas.executor.execute(
        "CREATE TABLE search_items (id bigserial PRIMARY KEY, codebase_id text NOT NULL, "
        "category text NOT NULL, rank integer NOT NULL, embedding vector(8))"
    )
    repository = Items(atlas.executor)
    rare_every = int(1 / RARE_SHARE)
    await repository.insert_many(
        [
            ItemCreate(
                codebase_id="a" if i % 2 else "b",
                category="rare" if i % rare_every == 0 else "common",
                rank=i,
                embedding=vectors[i],
            )
            for i in range(ROWS)
        ]
    )
    # an index built on data (lists = rows / 1000 would be 20; use more, so probes=1 sees
    # only a sliver of the rows and the filter test needs iterative scans)
    await atlas.executor.execute(
        "CREATE INDEX search_items_embedding_idx ON search_items "
        "USING ivfflat (embedding vector_cosine_ops) WITH (lists = 100)"
    )
    await atlas.executor.execute("ANALYZE search_items")
    yield repository


def exact_top(
    vectors: npt.NDArray[np.float32], query: npt.NDArray[np.float32], k: int, mask: Any = None
) -> list[int]:
    scores = vectors @ (query / np.linalg.norm(query))
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    order = np.argsort(-scores, kind="stable")[:k]
    return [int(i) + 1 for i in order]  # bigserial ids start at 1


async def test_results_are_ordered_by_similarity_and_scored_consistently(
    items: Items, vectors: npt.NDArray[np.float32]
) -> None:
    query = vectors[123]
    matches = await items.search_similar(query, k=10, probes=100)
    assert len(matches) == 10
    assert matches[0].item.rank == 123
    assert matches[0].similarity == pytest.approx(1.0, abs=1e-6)
    similarities = [m.similarity for m in matches]
    assert similarities == sorted(similarities, reverse=True)
    for match in matches:
        expected = float(vectors[match.item.rank] @ query)
        assert match.similarity == pytest.approx(expected, abs=1e-5)
        assert match.distance == pytest.approx(1 - match.similarity)
        assert match.item.embedding is None  # not returned unless asked


async def test_exact_search_is_the_ground_truth(
    items: Items, vectors: npt.NDArray[np.float32]
) -> None:
    query = unit(np.random.default_rng(1), 1)[0]
    matches = await items.search_similar(query, k=25, exact=True)
    assert [m.item.id for m in matches] == exact_top(vectors, query, 25)


async def test_exact_stays_exact_after_many_index_searches_on_one_connection(
    migrated_dsn: str, vectors: npt.NDArray[np.float32]
) -> None:
    # One pooled connection: its prepared statements get generic plans after five runs, and
    # a cached plan ignores later setting changes, so exactness must not rest on settings.
    async with codeatlas.connect(migrated_dsn, migrate=False, min_size=1, max_size=1) as atlas:
        await atlas.executor.execute(
            "CREATE TABLE search_items (id bigserial PRIMARY KEY, codebase_id text NOT NULL, "
            "category text NOT NULL, rank integer NOT NULL, embedding vector(8))"
        )
        repository = Items(atlas.executor)
        await repository.insert_many(
            [
                ItemCreate(codebase_id="a", category="c", rank=i, embedding=vectors[i])
                for i in range(ROWS)
            ]
        )
        await atlas.executor.execute(
            "CREATE INDEX ON search_items USING ivfflat (embedding vector_cosine_ops) "
            "WITH (lists = 100)"
        )
        await atlas.executor.execute("ANALYZE search_items")
        queries = unit(np.random.default_rng(3), 12)
        approximate = [await repository.search_similar(q, k=25, probes=1) for q in queries]
        exact = [await repository.search_similar(q, k=25, exact=True) for q in queries]
        approximate_again = [await repository.search_similar(q, k=25, probes=1) for q in queries]
    for query, found in zip(queries, exact, strict=True):
        assert [m.item.id for m in found] == exact_top(vectors, query, 25)
    # and the approximate searches stayed on the index (probes=1 of 100 lists misses some)
    assert approximate_again == approximate
    recall = np.mean(
        [
            len({m.item.id for m in a} & set(exact_top(vectors, q, 25))) / 25
            for a, q in zip(approximate, queries, strict=True)
        ]
    )
    assert recall < 1.0


async def test_filter_matching_one_percent_still_returns_k(
    items: Items, vectors: npt.NDArray[np.float32]
) -> None:
    query = unit(np.random.default_rng(2), 1)[0]
    rare = np.zeros(ROWS, dtype=bool)
    rare[:: int(1 / RARE_SHARE)] = True
    matches = await items.search_similar(query, k=50, where={"category": "rare"}, probes=1)
    assert len(matches) == 50
    assert all(m.item.category == "rare" for m in matches)
    # and with every list probed it is exactly the filtered ground truth
    full = await items.search_similar(query, k=50, where={"category": "rare"}, probes=100)
    assert [m.item.id for m in full] == exact_top(vectors, query, 50, rare)


async def test_fewer_matching_rows_than_k_returns_all_of_them(items: Items) -> None:
    query = np.ones(DIM, dtype=np.float32)
    matches = await items.search_similar(
        query, k=100, where={"rank": [5, 6, 7], "codebase_id": "a"}, probes=1
    )
    assert sorted(m.item.rank for m in matches) == [5, 7]


async def test_min_similarity_is_a_range_query_on_the_index(
    atlas: codeatlas.Atlas, items: Items, vectors: npt.NDArray[np.float32]
) -> None:
    query = vectors[7]
    matches = await items.search_similar(query, k=1000, min_similarity=0.9, probes=100)
    assert matches and all(m.similarity >= 0.9 - 1e-6 for m in matches)
    expected = int(np.sum(vectors @ query >= 0.9))
    assert abs(len(matches) - expected) <= 1  # float32 rounding at the boundary
    sql, params, _ = items._prepare(None, 0.9, False, batched=False, exact=False)
    plan = await atlas.executor.fetch(f"EXPLAIN {sql}", query, 1000, *params)
    assert "search_items_embedding_idx" in "\n".join(row[0] for row in plan)


async def test_filters_ranges_and_lists(items: Items, vectors: npt.NDArray[np.float32]) -> None:
    query = vectors[0]
    matches = await items.search_similar(
        query, k=5, where={"codebase_id": "b", "rank": Range(ge=1000, lt=2000)}, probes=100
    )
    assert len(matches) == 5
    assert all(m.item.codebase_id == "b" and 1000 <= m.item.rank < 2000 for m in matches)


async def test_include_embedding_returns_the_stored_vector(
    items: Items, vectors: npt.NDArray[np.float32]
) -> None:
    matches = await items.search_similar(vectors[3], k=1, probes=100, include_embedding=True)
    assert matches[0].item.embedding is not None
    assert matches[0].item.embedding.tobytes() == vectors[3].tobytes()


async def test_batch_search_equals_single_searches(
    items: Items, vectors: npt.NDArray[np.float32]
) -> None:
    queries = [vectors[10], vectors[20], unit(np.random.default_rng(3), 1)[0]]
    batch = await items.search_similar_many(queries, k=7, where={"codebase_id": "a"}, probes=4)
    assert len(batch) == 3
    for query, result in zip(queries, batch, strict=True):
        single = await items.search_similar(query, k=7, where={"codebase_id": "a"}, probes=4)
        assert [m.item.id for m in result] == [m.item.id for m in single]
        assert [m.similarity for m in result] == pytest.approx([m.similarity for m in single])


async def test_knobs_do_not_leak_to_the_next_user(migrated_dsn: str) -> None:
    async with codeatlas.connect(migrated_dsn, migrate=False, min_size=1, max_size=1) as atlas:
        await atlas.executor.execute(
            "CREATE TABLE search_items (id bigserial PRIMARY KEY, codebase_id text NOT NULL, "
            "category text NOT NULL, rank integer NOT NULL, embedding vector(8))"
        )
        repository = Items(atlas.executor)
        await repository.insert(
            ItemCreate(codebase_id="a", category="x", rank=1, embedding=np.ones(DIM))
        )
        before = await atlas.executor.fetchrow(
            "SELECT current_setting('ivfflat.probes') AS probes, "
            "current_setting('ivfflat.iterative_scan') AS iterative, "
            "current_setting('enable_indexscan') AS indexscan"
        )
        await repository.search_similar(np.ones(DIM), k=1, probes=37)
        await repository.search_similar(np.ones(DIM), k=1, exact=True)
        after = await atlas.executor.fetchrow(
            "SELECT current_setting('ivfflat.probes') AS probes, "
            "current_setting('ivfflat.iterative_scan') AS iterative, "
            "current_setting('enable_indexscan') AS indexscan"
        )
        assert dict(after) == dict(before)
        assert after["probes"] != "37" and after["indexscan"] == "on"


async def test_knobs_do_not_leak_into_the_callers_transaction(migrated_dsn: str) -> None:
    async with codeatlas.connect(migrated_dsn, migrate=False) as atlas:
        await atlas.executor.execute(
            "CREATE TABLE search_items (id bigserial PRIMARY KEY, codebase_id text NOT NULL, "
            "category text NOT NULL, rank integer NOT NULL, embedding vector(8))"
        )
        async with atlas.transaction() as tx:
            await tx.executor.execute("SET LOCAL ivfflat.probes = 3")
            repository = Items(tx.executor)
            await repository.insert(
                ItemCreate(codebase_id="a", category="x", rank=1, embedding=np.ones(DIM))
            )
            found = await repository.search_similar(np.ones(DIM), k=1, exact=True)
            assert [m.item.rank for m in found] == [1]
            await repository.search_similar(np.ones(DIM), k=1, probes=37)
            after = await tx.executor.fetchrow(
                "SELECT current_setting('ivfflat.probes') AS probes, "
                "current_setting('enable_indexscan') AS indexscan"
            )
            # the caller's own SET LOCAL survives; the search's settings are gone
            assert dict(after) == {"probes": "3", "indexscan": "on"}
            assert await repository.count() == 1  # the insert is still in the transaction


@pytest.mark.parametrize(
    ("embedding", "kwargs", "error", "message"),
    [
        (np.ones(DIM - 1), {}, InvalidVectorError, "expected 8 dimensions, got 7"),
        (np.ones(DIM + 1), {}, InvalidVectorError, "expected 8 dimensions, got 9"),
        ([float("nan")] + [1.0] * (DIM - 1), {}, InvalidVectorError, "finite"),
        ([float("inf")] + [1.0] * (DIM - 1), {}, InvalidVectorError, "finite"),
        (np.zeros(DIM), {}, InvalidVectorError, "zeros"),
        (np.ones(DIM), {"k": 0}, InvalidInputError, "k must be"),
        (np.ones(DIM), {"k": 1001}, InvalidInputError, "k must be"),
        (np.ones(DIM), {"probes": 0}, InvalidInputError, "probes"),
        (np.ones(DIM), {"min_similarity": 1.5}, InvalidInputError, "min_similarity"),
        (np.ones(DIM), {"where": {"embedding": 1}}, InvalidFilterError, "cannot filter"),
        (np.ones(DIM), {"where": {"nope": 1}}, InvalidFilterError, "cannot filter"),
    ],
)
async def test_bad_input_is_rejected_before_any_sql(
    embedding: Any, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    # an executor whose pool is closed: any SQL would fail with a different error
    from codeatlas._db import Executor

    class NoSQL:
        def acquire(self) -> Any:
            raise AssertionError("SQL was attempted")

    repository = Items(Executor(pool=NoSQL()))  # type: ignore[arg-type]
    repository._executor.state.probe_defaults["search_items_embedding_idx"] = (None, 1e18)
    with pytest.raises(error, match=message):
        await repository.search_similar(embedding, **kwargs)
