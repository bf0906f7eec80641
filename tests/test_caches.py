"""The similarity cache (cache-through search) and the semantic cache, on the real tables."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import numpy.typing as npt
import pytest

import codeatlas
from codeatlas.errors import InvalidInputError, InvalidVectorError
from codeatlas.models import VectorSearchCreate
from fixtures.data import Vectors, unit_rows


def content(codebase: str, i: int, vector: npt.NDArray[np.float32]) -> VectorSearchCreate:
    return VectorSearchCreate(
        codebase_id=codebase,
        file_path=f"src/file_{i}.py",
        content_type="function",
        content=f"def f{i}(): ...",
        vector_embedding=vector,
    )


async def cache_rows(atlas: codeatlas.Atlas, codebase: str | None = None) -> int:
    if codebase is None:
        return int(await atlas.executor.fetchval("SELECT count(*) FROM vector_similarity_cache"))
    return int(
        await atlas.executor.fetchval(
            "SELECT count(*) FROM vector_similarity_cache WHERE codebase_id = $1", codebase
        )
    )


@pytest.fixture
async def filled(atlas: codeatlas.Atlas) -> Vectors:
    vectors = unit_rows(300, 1536, seed=1)
    await atlas.vector_search.insert_many(
        [content("a" if i % 2 else "b", i, v) for i, v in enumerate(vectors)]
    )
    return vectors


async def test_cache_hit_returns_exactly_what_the_search_returned(
    atlas: codeatlas.Atlas, filled: Vectors
) -> None:
    query = filled[7] + 0.1 * filled[9]
    where = {"codebase_id": "a"}
    miss = await atlas.vector_search.search_similar(query, 10, where=where, cache=True)
    assert await cache_rows(atlas, "a") == 10
    hit = await atlas.vector_search.search_similar(query, 10, where=where, cache=True)
    assert [(m.item, m.similarity) for m in hit] == [(m.item, m.similarity) for m in miss]
    uncached = await atlas.vector_search.search_similar(query, 10, where=where)
    assert [m.item.id for m in uncached] == [m.item.id for m in miss]
    # the key covers k and filters: another k is another entry
    await atlas.vector_search.search_similar(query, 5, where=where, cache=True)
    assert await cache_rows(atlas, "a") == 15


async def test_a_cached_empty_answer_stays_empty_until_a_write(
    atlas: codeatlas.Atlas, filled: Vectors
) -> None:
    where = {"codebase_id": "nobody"}
    assert await atlas.vector_search.search_similar(filled[0], 3, where=where, cache=True) == []
    assert await cache_rows(atlas, "nobody") == 1  # the empty marker
    assert await atlas.vector_search.search_similar(filled[0], 3, where=where, cache=True) == []
    await atlas.vector_search.insert(content("nobody", 999, filled[0]))
    found = await atlas.vector_search.search_similar(filled[0], 3, where=where, cache=True)
    assert [m.item.file_path for m in found] == ["src/file_999.py"]


async def test_writes_invalidate_their_codebase_and_unscoped_entries_only(
    atlas: codeatlas.Atlas, filled: Vectors
) -> None:
    query = filled[3]
    await atlas.vector_search.search_similar(query, 5, where={"codebase_id": "a"}, cache=True)
    await atlas.vector_search.search_similar(query, 5, where={"codebase_id": "b"}, cache=True)
    await atlas.vector_search.search_similar(query, 5, cache=True)
    assert await cache_rows(atlas) == 15

    newcomer = content("a", 1000, query)  # identical to the query: must appear first
    await atlas.vector_search.insert(newcomer)
    assert await cache_rows(atlas, "a") == 0
    assert await cache_rows(atlas, "*") == 0
    assert await cache_rows(atlas, "b") == 5
    found = await atlas.vector_search.search_similar(
        query, 5, where={"codebase_id": "a"}, cache=True
    )
    assert found[0].item.file_path == "src/file_1000.py"
    assert found[0].similarity == pytest.approx(1.0, abs=1e-5)

    # an update and a delete invalidate too
    await atlas.vector_search.search_similar(query, 5, where={"codebase_id": "b"}, cache=True)
    await atlas.executor.execute(
        "UPDATE vector_search SET content = 'changed' WHERE codebase_id = 'b' AND id = "
        "(SELECT min(id) FROM vector_search WHERE codebase_id = 'b')"
    )
    assert await cache_rows(atlas, "b") == 0
    await atlas.vector_search.search_similar(query, 5, where={"codebase_id": "a"}, cache=True)
    await atlas.vector_search.delete_where({"codebase_id": "a", "file_path": "src/file_1000.py"})
    assert await cache_rows(atlas, "a") == 0


async def test_writes_to_another_table_keep_the_entries(
    atlas: codeatlas.Atlas, filled: Vectors
) -> None:
    await atlas.vector_search.search_similar(filled[1], 5, cache=True)
    await atlas.semantic_cache.store("q", unit_rows(1, 768, 3)[0], "answer")
    assert await cache_rows(atlas) == 5


async def test_expired_entries_are_searched_again(atlas: codeatlas.Atlas, filled: Vectors) -> None:
    await atlas.vector_search.search_similar(filled[2], 5, cache=True)
    await atlas.executor.execute(
        "UPDATE vector_similarity_cache SET created_at = created_at - interval '1 day'"
    )
    stale = await atlas.executor.fetchval("SELECT max(created_at) FROM vector_similarity_cache")
    again = await atlas.vector_search.search_similar(filled[2], 5, cache=True)
    assert len(again) == 5
    fresh = await atlas.executor.fetchval("SELECT min(created_at) FROM vector_similarity_cache")
    assert fresh > stale  # the expired entry was replaced, not served
    assert await cache_rows(atlas) == 5


async def test_semantic_cache_lookup_threshold_and_counters(atlas: codeatlas.Atlas) -> None:
    cache = atlas.semantic_cache
    vectors = unit_rows(3, 768, seed=5)
    await cache.store("how do I parse args?", vectors[0], "use argparse", model="m1")
    await cache.store("how do I zip files?", vectors[1], "use zipfile", model="m1")
    before = (cache.stats.hits, cache.stats.misses)

    near = vectors[0] + 0.05 * vectors[2]  # cosine ~0.999 to the first question
    hit = await cache.lookup(near, threshold=0.95)
    assert hit is not None
    assert hit.item.response == "use argparse"
    assert hit.similarity == pytest.approx(
        float(near @ vectors[0] / np.linalg.norm(near)), abs=1e-5
    )
    assert hit.item.hit_count == 1
    assert (await cache.lookup(near, threshold=0.95)).item.hit_count == 2  # type: ignore[union-attr]

    assert await cache.lookup(vectors[2], threshold=0.95) is None  # nothing that similar
    assert await cache.lookup(near, threshold=0.95, model="other") is None
    assert (cache.stats.hits - before[0], cache.stats.misses - before[1]) == (2, 2)


async def test_semantic_cache_expiry_and_bounded_size(atlas: codeatlas.Atlas) -> None:
    cache = atlas.semantic_cache
    vectors = unit_rows(8, 768, seed=9)
    await cache.store("short-lived", vectors[0], "x", ttl=timedelta(hours=1))
    await atlas.executor.execute(
        "UPDATE semantic_cache SET inserted_at = inserted_at - interval '2 hours'"
    )
    assert await cache.lookup(vectors[0], threshold=0.99) is None  # expired: never served
    assert await cache.expire() == 1

    cache.max_entries = 5
    for i in range(1, 6):
        await cache.store(f"q{i}", vectors[i], f"a{i}")
    assert await cache.lookup(vectors[1], threshold=0.99) is not None  # q1 recently hit
    await atlas.executor.execute(
        "UPDATE semantic_cache SET inserted_at = inserted_at - make_interval(mins => 10 - "
        "substr(query, 2)::int) WHERE query <> 'q1'"
    )
    await cache.store("q6", vectors[6], "a6")
    queries = {r["query"] for r in await atlas.executor.fetch("SELECT query FROM semantic_cache")}
    assert len(queries) == 5
    assert "q1" in queries and "q6" in queries
    assert "q2" not in queries  # the least recently used entry went


async def test_bad_vectors_are_rejected_before_any_sql(atlas: codeatlas.Atlas) -> None:
    with pytest.raises(InvalidVectorError, match="768"):
        await atlas.semantic_cache.lookup(np.ones(1536, dtype=np.float32))
    with pytest.raises(InvalidVectorError):
        await atlas.semantic_cache.store("q", np.zeros(768, dtype=np.float32), "a")
    with pytest.raises(InvalidInputError, match="threshold"):
        await atlas.semantic_cache.lookup(unit_rows(1, 768, 1)[0], threshold=2.0)
    with pytest.raises(InvalidVectorError):
        await atlas.vector_search.search_similar([float("nan")] * 1536, cache=True)
