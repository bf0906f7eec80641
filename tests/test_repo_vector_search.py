"""atlas.vector_search: upsert by (codebase_id, file_path, content_type), replace_file, search."""

from __future__ import annotations

import asyncio
import itertools

import numpy as np
import numpy.typing as npt
import pytest

import codeatlas
from codeatlas.errors import InvalidInputError, UniqueConflictError
from codeatlas.models import VectorSearchCreate

DIM = 1536


def unit_vectors(n: int, seed: int = 0) -> npt.NDArray[np.float32]:
    data = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def chunk(
    codebase_id: str, file_path: str, content_type: str, vector: npt.NDArray[np.float32]
) -> VectorSearchCreate:
    return VectorSearchCreate(
        codebase_id=codebase_id,
        file_path=file_path,
        content_type=content_type,
        content=f"{file_path}:{content_type}",
        vector_embedding=vector,
    )


async def test_upsert_by_codebase_file_and_content_type(atlas: codeatlas.Atlas) -> None:
    v = unit_vectors(3)
    first = await atlas.vector_search.upsert(chunk("cb", "a.py", "code", v[0]))
    again = await atlas.vector_search.upsert(chunk("cb", "a.py", "code", v[1]))
    doc = await atlas.vector_search.upsert(chunk("cb", "a.py", "docstring", v[2]))
    assert again.id == first.id
    assert again.vector_embedding is not None
    assert np.array_equal(again.vector_embedding, v[1])
    assert doc.id != first.id
    assert await atlas.vector_search.count() == 2
    assert first.metadata == {}


async def test_replace_file_swaps_all_rows_of_one_file(atlas: codeatlas.Atlas) -> None:
    v = unit_vectors(10)
    await atlas.vector_search.insert_many(
        [chunk("cb", "a.py", t, v[i]) for i, t in enumerate(["code", "doc", "comment"])]
        + [chunk("cb", "b.py", "code", v[3]), chunk("other", "a.py", "code", v[4])]
    )
    written = await atlas.vector_search.replace_file(
        "cb", "a.py", [chunk("cb", "a.py", "code", v[5]), chunk("cb", "a.py", "summary", v[6])]
    )
    assert written == 2
    page = await atlas.vector_search.list({"codebase_id": "cb", "file_path": "a.py"})
    assert sorted(r.content_type for r in page.items) == ["code", "summary"]
    # other files and other codebases are untouched
    assert await atlas.vector_search.count({"file_path": "b.py"}) == 1
    assert await atlas.vector_search.count({"codebase_id": "other"}) == 1
    # replacing with nothing removes the file
    assert await atlas.vector_search.replace_file("cb", "a.py", []) == 0
    assert await atlas.vector_search.count({"codebase_id": "cb"}) == 1


async def test_replace_file_is_atomic(atlas: codeatlas.Atlas) -> None:
    v = unit_vectors(4)
    await atlas.vector_search.insert_many(
        [chunk("cb", "a.py", "code", v[0]), chunk("cb", "a.py", "doc", v[1])]
    )
    # two rows with the same key: the insert fails after the delete ran, in one transaction
    with pytest.raises(UniqueConflictError):
        await atlas.vector_search.replace_file(
            "cb", "a.py", [chunk("cb", "a.py", "code", v[2]), chunk("cb", "a.py", "code", v[3])]
        )
    rows = (await atlas.vector_search.list({"file_path": "a.py"}, include_vectors=True)).items
    assert sorted(r.content_type for r in rows) == ["code", "doc"]
    code = next(r for r in rows if r.content_type == "code")
    assert code.vector_embedding is not None and np.array_equal(code.vector_embedding, v[0])


async def test_replace_file_large_batch_uses_copy_inside_the_transaction(
    atlas: codeatlas.Atlas,
) -> None:
    v = unit_vectors(300, seed=3)
    await atlas.vector_search.replace_file(
        "cb", "big.py", [chunk("cb", "big.py", f"chunk{i}", v[i]) for i in range(200)]
    )
    await atlas.vector_search.replace_file(
        "cb", "big.py", [chunk("cb", "big.py", f"part{i}", v[200 + i]) for i in range(100)]
    )
    assert await atlas.vector_search.count({"file_path": "big.py"}) == 100
    assert not await atlas.vector_search.exists({"content_type": "chunk0"})


async def test_replace_file_refuses_rows_of_another_file(atlas: codeatlas.Atlas) -> None:
    v = unit_vectors(2)
    await atlas.vector_search.insert(chunk("cb", "a.py", "code", v[0]))
    with pytest.raises(InvalidInputError, match=r"b\.py"):
        await atlas.vector_search.replace_file("cb", "a.py", [chunk("cb", "b.py", "code", v[1])])
    assert await atlas.vector_search.count() == 1


async def test_concurrent_replace_file_leaves_one_complete_version(atlas: codeatlas.Atlas) -> None:
    v = unit_vectors(40, seed=5)

    async def replace(version: int) -> int:
        rows = [chunk("cb", "a.py", f"v{version}-{i}", v[version * 4 + i]) for i in range(4)]
        return await atlas.vector_search.replace_file("cb", "a.py", rows)

    assert await asyncio.gather(*(replace(n) for n in range(10))) == [4] * 10
    rows = (await atlas.vector_search.list({"file_path": "a.py"})).items
    versions = {r.content_type.split("-")[0] for r in rows}
    # whichever committed last, its four rows are there and no mixture of versions
    assert len(versions) == 1
    assert len(rows) == 4


async def test_search_similar_filtered_by_codebase(atlas: codeatlas.Atlas) -> None:
    v = unit_vectors(600, seed=11)
    await atlas.vector_search.insert_many(
        [chunk("cb" if i % 3 == 0 else "other", f"f{i}.py", "code", v[i]) for i in range(len(v))]
    )
    query = v[30] + 0.01 * v[31]
    exact = await atlas.vector_search.search_similar(
        query, k=10, where={"codebase_id": "cb"}, exact=True
    )
    assert exact[0].item.file_path == "f30.py"
    assert len(exact) == 10
    assert all(m.item.codebase_id == "cb" for m in exact)
    assert all(a.similarity >= b.similarity for a, b in itertools.pairwise(exact))
    assert exact[0].item.vector_embedding is None  # not selected unless asked
    # brute-force check of the exact answer against numpy
    in_cb = np.array([i for i in range(len(v)) if i % 3 == 0])
    scores = v[in_cb] @ (query / np.linalg.norm(query))
    expected = [f"f{in_cb[j]}.py" for j in np.argsort(-scores)[:10]]
    assert [m.item.file_path for m in exact] == expected

    indexed = await atlas.vector_search.search_similar(
        query, k=10, where={"codebase_id": "cb"}, probes=100, include_embedding=True
    )
    assert [m.item.file_path for m in indexed] == expected
    assert indexed[0].item.vector_embedding is not None
    assert np.array_equal(indexed[0].item.vector_embedding, v[30])
    only_other = await atlas.vector_search.search_similar(
        query, k=5, where={"codebase_id": ["other"]}, exact=True
    )
    assert all(m.item.codebase_id == "other" for m in only_other)
    assert "f30.py" not in {m.item.file_path for m in only_other}
