"""The similarity cache (cache-through search) and the semantic cache, on the real tables."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import codeatlas
from codeatlas.errors import InvalidInputError, InvalidVectorError
from codeatlas.models import SemanticCacheEntryCreate, VectorSearchCreate
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


async def stored_counters(atlas: codeatlas.Atlas, query: str) -> tuple[int, Any]:
    """Return (hit_count, last_accessed) as semantic_cache itself stores them."""
    row = await atlas.executor.fetchrow(
        "SELECT hit_count, last_accessed FROM semantic_cache WHERE query = $1", query
    )
    assert row is not None
    return int(row["hit_count"]), row["last_accessed"]


async def pending_hits(atlas: codeatlas.Atlas) -> dict[str, int]:
    """Return {query: hits} written to the side table and not folded yet."""
    rows = await atlas.executor.fetch(
        "SELECT s.query, h.hits FROM codeatlas_semantic_cache_hits AS h"
        " LEFT JOIN semantic_cache AS s ON s.id = h.entry_id"
    )
    return {str(r["query"]): int(r["hits"]) for r in rows}


async def unwritten_hits(atlas: codeatlas.Atlas) -> dict[str, int]:
    """Return {query: hits} the Atlas counted and has not written to the database yet."""
    entries = atlas.executor.state.pending_hits.entries
    rows = await atlas.executor.fetch(
        "SELECT id, query FROM semantic_cache WHERE id = ANY($1::uuid[])", list(entries)
    )
    return {str(r["query"]): entries[r["id"]][0] for r in rows}


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
    assert hit.item.hit_count == 1 and hit.item.last_accessed is not None
    assert (await cache.lookup(near, threshold=0.95)).item.hit_count == 2  # type: ignore[union-attr]

    assert await cache.lookup(vectors[2], threshold=0.95) is None  # nothing that similar
    assert await cache.lookup(near, threshold=0.95, model="other") is None
    assert await cache.lookup(near, threshold=0.95, model="m1") is not None
    assert (cache.stats.hits - before[0], cache.stats.misses - before[1]) == (3, 2)

    # the hits are pending in the Atlas: the lookups wrote nothing, the entry's row is
    # untouched until a flush
    assert await stored_counters(atlas, "how do I parse args?") == (0, None)
    assert await unwritten_hits(atlas) == {"how do I parse args?": 3}
    assert cache.pending_hits == 3
    assert await pending_hits(atlas) == {}
    last = await cache.lookup(near, threshold=0.95, model="m1")
    assert last is not None and last.item.hit_count == 4 and last.item.last_accessed is not None
    assert await cache.flush_hits() == 1
    count, accessed = await stored_counters(atlas, "how do I parse args?")
    # the column keeps whole seconds
    assert count == 4
    assert abs((accessed.replace(tzinfo=UTC) - last.item.last_accessed).total_seconds()) <= 1
    assert await stored_counters(atlas, "how do I zip files?") == (0, None)
    assert await pending_hits(atlas) == {} and cache.pending_hits == 0
    assert await cache.flush_hits() == 0
    # after a flush the count goes on from the stored total
    assert (await cache.lookup(near, threshold=0.95)).item.hit_count == 5  # type: ignore[union-attr]
    # reads of the row show the stored count: the latest hit is pending again
    stored = await cache.get(hit.item.id)
    assert stored is not None and stored.hit_count == 4


async def test_semantic_cache_hits_another_atlas_wrote_count_in_lookups_and_the_view(
    atlas: codeatlas.Atlas, migrated_dsn: str
) -> None:
    cache = atlas.semantic_cache
    vector = unit_rows(1, 768, seed=6)[0]
    await cache.store("shared", vector, "a")
    # another Atlas with the automatic flush disabled: close() writes its hits, unfolded
    settings = codeatlas.Settings(semantic_cache_flush_interval=0)
    async with codeatlas.connect(migrated_dsn, migrate=False, settings=settings) as other:
        for _ in range(2):
            assert await other.semantic_cache.lookup(vector, 0.99) is not None
        assert await pending_hits(atlas) == {}
    assert await pending_hits(atlas) == {"shared": 2}
    usage = await atlas.executor.fetchrow(
        "SELECT u.hit_count, u.last_accessed FROM codeatlas_semantic_cache_usage AS u"
        " JOIN semantic_cache AS s USING (id) WHERE s.query = 'shared'"
    )
    assert usage is not None and usage["hit_count"] == 2 and usage["last_accessed"] is not None
    # this Atlas' lookup counts them too: stored 0 + written 2 + its own 1
    found = await cache.lookup(vector, 0.99)
    assert found is not None and found.item.hit_count == 3
    assert await cache.flush_hits() == 1
    assert (await stored_counters(atlas, "shared"))[0] == 3
    assert await pending_hits(atlas) == {}


async def test_semantic_cache_lookup_writes_nothing_and_uses_the_index(
    atlas: codeatlas.Atlas,
) -> None:
    cache = atlas.semantic_cache
    vectors = unit_rows(2000, 768, seed=12)  # enough rows that the planner wants the index
    await cache.insert_many(
        [
            SemanticCacheEntryCreate(
                cache_key=f"k{i}", query=f"q{i}", query_embedding=v, response=f"a{i}", model="m"
            )
            for i, v in enumerate(vectors)
        ]
    )
    await atlas.executor.execute("ANALYZE semantic_cache")
    knob = await cache._probes(None)
    settings = cache._knobs(knob, exact=False, k=1)
    sql = cache._lookup_sql(knob, inline=tuple(settings))
    plan = await atlas.executor.fetchval(
        f"EXPLAIN (FORMAT JSON) {sql}", vectors[3], 0.05, "m", *settings.values()
    )
    nodes: list[dict[str, Any]] = []
    stack = [(json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.get("Plans", []))
    assert not any(n["Node Type"] == "ModifyTable" for n in nodes)
    scans = {n.get("Index Name") for n in nodes if n["Node Type"] == "Index Scan"}
    assert "idx_semantic_cache_query_embedding_vector" in scans
    assert not any(n["Node Type"] in {"Seq Scan", "Sort"} for n in nodes)

    updates = await atlas.executor.fetchval(
        "SELECT xmin::text FROM semantic_cache WHERE query = 'q3'"
    )
    for _ in range(3):
        assert (await cache.lookup(vectors[3], 0.99, model="m")) is not None
    # the entry's row version is the one store wrote: no update, no new index entries
    assert (
        await atlas.executor.fetchval("SELECT xmin::text FROM semantic_cache WHERE query = 'q3'")
        == updates
    )
    assert await unwritten_hits(atlas) == {"q3": 3}
    # inside a caller's transaction (the savepoint path) hits count alike, whatever the
    # transaction's end: a hit happened
    with pytest.raises(RuntimeError):
        async with atlas.transaction() as tx:
            found = await tx.semantic_cache.lookup(vectors[3], 0.99, model="m")
            assert found is not None and found.item.hit_count == 4
            assert await tx.semantic_cache.lookup(-vectors[3], 0.99) is None
            raise RuntimeError("rolled back")
    assert await unwritten_hits(atlas) == {"q3": 4}
    # the flush writes them in one statement, which updates the side row (HOT), then folds
    assert await cache.flush_hits() == 1
    assert (
        await atlas.executor.fetchval("SELECT hit_count FROM semantic_cache WHERE query = 'q3'")
        == 4
    )


async def test_semantic_cache_lookup_knob_reaches_its_index_scan(atlas: codeatlas.Atlas) -> None:
    # The statement sets the index's knob itself (on the pool) or in a savepoint (inside a
    # transaction), before its index scan starts: a scan started first would run with the
    # server's default ef_search whatever probes= says, and both recalls below would agree.
    cache = atlas.semantic_cache
    stored = unit_rows(3000, 768, seed=31)
    async with atlas.indexes.bulk_load("semantic_cache"):  # one HNSW build, not 3000 inserts
        await cache.insert_many(
            [
                SemanticCacheEntryCreate(
                    cache_key=f"k{i}", query=f"q{i}", query_embedding=v, response="a"
                )
                for i, v in enumerate(stored)
            ]
        )
    await atlas.executor.execute("ANALYZE semantic_cache")
    questions = unit_rows(60, 768, seed=32)
    nearest = np.argmax(questions @ stored.T, axis=1)

    async def recall(probes: int, scope: Any) -> float:
        found = [await scope.semantic_cache.lookup(q, -1.0, probes=probes) for q in questions]
        return float(
            np.mean(
                [
                    f is not None and f.item.query == f"q{n}"
                    for f, n in zip(found, nearest, strict=True)
                ]
            )
        )

    assert (await cache._probes(None), cache._plan().kind) == (cache._plan().knob, "hnsw")
    wide, narrow = await recall(400, atlas), await recall(1, atlas)
    assert wide >= 0.95 and narrow <= wide - 0.2, (wide, narrow)
    async with atlas.transaction() as tx:
        # narrow first: a plan the server caches while ef_search is 400 can be an exact scan
        # (HNSW's estimated cost grows with ef_search), and it would serve probes=1 too
        assert await recall(1, tx) == narrow
        assert await recall(400, tx) == wide


async def test_semantic_cache_concurrent_hits_and_flushes_lose_no_count(
    atlas: codeatlas.Atlas,
) -> None:
    cache = atlas.semantic_cache
    vectors = unit_rows(2, 768, seed=21)
    await cache.store("popular", vectors[0], "a")
    await cache.store("other", vectors[1], "b")

    async def hit() -> int:
        found = await cache.lookup(vectors[0], 0.99)
        assert found is not None and found.item.query == "popular"
        return int(found.item.hit_count or 0)

    counts = await asyncio.gather(*(hit() for _ in range(30)))
    # each hit saw its own increment
    assert sorted(counts) == list(range(1, 31))
    # hits racing flushes: every hit lands in a flush, the side table or the Atlas' memory
    results = await asyncio.gather(
        *(hit() for _ in range(30)), *(cache.flush_hits() for _ in range(5))
    )
    assert all(isinstance(r, int) for r in results)
    await cache.flush_hits()
    assert (await stored_counters(atlas, "popular"))[0] == 60
    assert await pending_hits(atlas) == {} and cache.pending_hits == 0
    assert (await stored_counters(atlas, "other"))[0] == 0


async def test_semantic_cache_hits_whose_write_fails_stay_pending(atlas: codeatlas.Atlas) -> None:
    cache = atlas.semantic_cache
    vector = unit_rows(1, 768, seed=22)[0]
    await cache.store("kept", vector, "a")
    for _ in range(2):
        assert await cache.lookup(vector, 0.99) is not None
    # the side table refuses writes for a moment: the flush fails, the hits are not lost
    await atlas.executor.execute(
        "ALTER TABLE codeatlas_semantic_cache_hits ADD CONSTRAINT test_refuse CHECK (hits < 0)"
        " NOT VALID"
    )
    with pytest.raises(codeatlas.errors.IntegrityError):
        await cache.flush_hits()
    assert cache.pending_hits == 2
    assert await cache.lookup(vector, 0.99) is not None
    await atlas.executor.execute(
        "ALTER TABLE codeatlas_semantic_cache_hits DROP CONSTRAINT test_refuse"
    )
    assert await cache.flush_hits() == 1
    assert (await stored_counters(atlas, "kept"))[0] == 3 and cache.pending_hits == 0


async def test_semantic_cache_pending_hits_of_gone_entries_are_dropped(
    atlas: codeatlas.Atlas,
) -> None:
    cache = atlas.semantic_cache
    vectors = unit_rows(3, 768, seed=33)
    await cache.store("expiring", vectors[0], "x", ttl=timedelta(hours=1))
    await cache.store("deleted", vectors[1], "y")
    await cache.store("kept", vectors[2], "z")
    for vector in vectors:
        assert await cache.lookup(vector, 0.99) is not None
    await atlas.executor.execute(
        "UPDATE semantic_cache SET inserted_at = inserted_at - interval '2 hours'"
        " WHERE query = 'expiring'"
    )
    assert await cache.expire() == 1
    # deleted behind the cache's back (as the Elixir application may): the flush writes
    # the three entries' hits, folds the one whose entry is left, and drops the others
    await atlas.executor.execute("DELETE FROM semantic_cache WHERE query = 'deleted'")
    assert await cache.flush_hits() == 1
    assert await pending_hits(atlas) == {}
    assert await atlas.executor.fetchval("SELECT count(*) FROM codeatlas_semantic_cache_hits") == 0
    assert (await stored_counters(atlas, "kept"))[0] == 1


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
        "substr(query, 2)::int)"
    )  # q1 the oldest: only its hit keeps it
    await cache.store("q6", vectors[6], "a6")
    queries = {r["query"] for r in await atlas.executor.fetch("SELECT query FROM semantic_cache")}
    assert len(queries) == 5
    assert "q1" in queries and "q6" in queries
    assert "q2" not in queries  # the least recently used entry went
    # q1's hit was pending in the Atlas (never written): eviction counted it all the same
    assert await unwritten_hits(atlas) == {"q1": 1} and await pending_hits(atlas) == {}


async def test_bad_vectors_are_rejected_before_any_sql(atlas: codeatlas.Atlas) -> None:
    with pytest.raises(InvalidVectorError, match="768"):
        await atlas.semantic_cache.lookup(np.ones(1536, dtype=np.float32))
    with pytest.raises(InvalidVectorError):
        await atlas.semantic_cache.store("q", np.zeros(768, dtype=np.float32), "a")
    with pytest.raises(InvalidInputError, match="threshold"):
        await atlas.semantic_cache.lookup(unit_rows(1, 768, 1)[0], threshold=2.0)
    with pytest.raises(InvalidVectorError):
        await atlas.vector_search.search_similar([float("nan")] * 1536, cache=True)
