"""atlas.rag: documents upserted by source with access counting, retrieval, recorded queries
and feedback with its aggregate."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pytest

import codeatlas
from codeatlas.errors import ForeignKeyViolationError, InvalidVectorError
from codeatlas.models import RagDocumentCreate
from codeatlas.models.rag import RagDocument
from codeatlas.repositories.rag import DocumentFeedback


def unit_vectors(n: int, seed: int = 5) -> npt.NDArray[np.float32]:
    data = np.random.default_rng(seed).standard_normal((n, 768)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


async def add_document(
    atlas: codeatlas.Atlas,
    source_id: str,
    vector: npt.NDArray[np.float32] | None = None,
    *,
    source_type: str = "file",
) -> RagDocument:
    return await atlas.rag.upsert(
        RagDocumentCreate(
            source_type=source_type,
            source_id=source_id,
            content=f"content of {source_id}",
            embedding=vector,
        )
    )


async def test_documents_upsert_on_source(atlas: codeatlas.Atlas) -> None:
    first = await add_document(atlas, "a.md")
    again = await atlas.rag.upsert(
        RagDocumentCreate(source_type="file", source_id="a.md", content="rewritten", token_count=9)
    )
    other_type = await add_document(atlas, "a.md", source_type="issue")
    assert again.id == first.id
    assert (again.content, again.token_count) == ("rewritten", 9)
    assert other_type.id != first.id
    assert await atlas.rag.count() == 2


async def test_touch_counts_accesses_in_one_statement(atlas: codeatlas.Atlas) -> None:
    a = await add_document(atlas, "a.md")
    b = await add_document(atlas, "b.md")
    c = await add_document(atlas, "c.md")
    assert a.access_count == 0 and a.last_accessed is None
    before = datetime.now(UTC) - timedelta(seconds=5)
    # duplicates count once; unknown ids are ignored
    assert await atlas.rag.touch([a.id, b.id, a.id, uuid.uuid4()]) == 2
    assert await atlas.rag.touch(iter([a.id])) == 1
    assert await atlas.rag.touch([]) == 0
    rows = {d.id: d for d in await atlas.rag.get_many([a.id, b.id, c.id])}
    assert [rows[d.id].access_count for d in (a, b, c)] == [2, 1, 0]
    touched = rows[a.id].last_accessed
    assert touched is not None and touched.tzinfo is not None
    assert before <= touched <= datetime.now(UTC) + timedelta(seconds=5)
    assert rows[c.id].last_accessed is None
    assert rows[a.id].updated_at == a.updated_at  # an access is not an edit


async def test_touch_loses_no_access_under_concurrency(atlas: codeatlas.Atlas) -> None:
    doc = await add_document(atlas, "hot.md")
    await asyncio.gather(*(atlas.rag.touch([doc.id]) for _ in range(20)))
    assert (await atlas.rag.get(doc.id)).access_count == 20


async def test_retrieve_searches_and_counts_the_returned_documents(
    atlas: codeatlas.Atlas,
) -> None:
    vectors = unit_vectors(30)
    docs = [
        await add_document(atlas, f"d{i}.md", vectors[i], source_type="wiki" if i % 2 else "file")
        for i in range(30)
    ]
    await add_document(atlas, "no-vector.md")

    matches = await atlas.rag.retrieve(vectors[7], k=3)
    expected = [int(i) for i in np.argsort(-(vectors @ vectors[7]))[:3]]
    assert [m.item.source_id for m in matches] == [f"d{i}.md" for i in expected]
    assert matches[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert all(m.item.access_count == 1 and m.item.last_accessed is not None for m in matches)
    returned = {m.item.id for m in matches}
    stored = await atlas.rag.get_many([d.id for d in docs], include_vectors=False)
    assert {d.id for d in stored if d.access_count == 1} == returned
    assert all(d.access_count == 0 for d in stored if d.id not in returned)

    again = await atlas.rag.retrieve(vectors[7], k=1)
    assert again[0].item.id == docs[7].id and again[0].item.access_count == 2

    wiki = await atlas.rag.retrieve(vectors[7], k=4, where={"source_type": "wiki"})
    assert len(wiki) == 4 and {m.item.source_type for m in wiki} == {"wiki"}
    close = await atlas.rag.retrieve(vectors[7], k=10, min_similarity=0.99)
    assert [m.item.id for m in close] == [docs[7].id]
    assert (await atlas.rag.get(docs[7].id)).access_count == 4  # each of the four retrievals
    with pytest.raises(InvalidVectorError):
        await atlas.rag.retrieve([1.0, 2.0], k=1)


async def test_record_query_round_trip(atlas: codeatlas.Atlas) -> None:
    vectors = unit_vectors(2)
    a = await add_document(atlas, "a.md", vectors[0])
    query = await atlas.rag.record_query(
        "where is the parser?",
        query_embedding=vectors[1],
        result_ids=[a.id],
        response="in src/parser.py",
        model_used="small-model",
        tokens_used=120,
        latency_ms=35,
        metadata={"agent": "planner"},
    )
    stored = await atlas.rag.queries.get(query.id)
    assert stored == query
    assert stored.result_ids == [a.id]
    assert stored.query_embedding is not None
    assert np.array_equal(stored.query_embedding, vectors[1])
    assert (stored.response, stored.model_used, stored.tokens_used, stored.latency_ms) == (
        "in src/parser.py",
        "small-model",
        120,
        35,
    )
    assert stored.metadata == {"agent": "planner"}

    bare = await atlas.rag.record_query("just a question")
    assert (bare.result_ids, bare.metadata, bare.query_embedding, bare.response) == (
        [],
        {},
        None,
        None,
    )
    assert bare.inserted_at.tzinfo is not None


async def test_feedback_requires_existing_query_and_document(atlas: codeatlas.Atlas) -> None:
    doc = await add_document(atlas, "a.md")
    query = await atlas.rag.record_query("q", result_ids=[doc.id])
    with pytest.raises(ForeignKeyViolationError) as missing_query:
        await atlas.rag.feedback.add(uuid.uuid4(), doc.id, relevance_score=0.5)
    assert missing_query.value.table == "rag_feedback"
    with pytest.raises(ForeignKeyViolationError):
        await atlas.rag.feedback.add(query.id, uuid.uuid4(), user_rating=3)
    assert await atlas.rag.feedback.count() == 0
    row = await atlas.rag.feedback.add(query.id, doc.id, relevance_score=0.75, user_rating=4)
    assert (row.query_id, row.document_id, row.relevance_score, row.user_rating) == (
        query.id,
        doc.id,
        0.75,
        4,
    )
    # feedback goes with its document (ON DELETE CASCADE)
    await atlas.rag.delete(doc.id)
    assert await atlas.rag.feedback.count() == 0


async def test_document_feedback_aggregates(atlas: codeatlas.Atlas) -> None:
    doc = await add_document(atlas, "a.md")
    other = await add_document(atlas, "b.md")
    assert await atlas.rag.feedback.document_feedback(doc.id) == DocumentFeedback(0, None, None)
    queries = [await atlas.rag.record_query(f"q{i}") for i in range(3)]
    await atlas.rag.feedback.add(queries[0].id, doc.id, relevance_score=0.9, user_rating=5)
    await atlas.rag.feedback.add(queries[1].id, doc.id, relevance_score=0.4, user_rating=2)
    await atlas.rag.feedback.add(queries[2].id, doc.id, relevance_score=0.2)  # no rating
    await atlas.rag.feedback.add(queries[0].id, other.id, relevance_score=0.0, user_rating=1)
    summary = await atlas.rag.feedback.document_feedback(doc.id)
    assert summary.count == 3
    assert summary.mean_relevance == pytest.approx(0.5)
    assert summary.mean_rating == pytest.approx(3.5)  # NULL ratings are not counted
    assert isinstance(summary.mean_rating, float)
    assert await atlas.rag.feedback.document_feedback(other.id) == DocumentFeedback(1, 0.0, 1.0)
