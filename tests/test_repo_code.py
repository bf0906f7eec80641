"""atlas.code: files upserted per project and path, atomic chunk and location replacement,
symbol queries, search over real rows, and the cascade from a file to its chunks."""

from __future__ import annotations

import uuid

import numpy as np
import numpy.typing as npt
import pytest

import codeatlas
from codeatlas.errors import InvalidInputError, NotFoundError, UniqueConflictError
from codeatlas.models import CodeEmbeddingCreate, CodeFileCreate, CodeLocationCreate
from codeatlas.models.code import CodeFile

PROJECT = "atlas-demo"


def unit_vectors(n: int, seed: int = 3) -> npt.NDArray[np.float32]:
    data = np.random.default_rng(seed).standard_normal((n, 768)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


async def add_file(atlas: codeatlas.Atlas, path: str, project: str = PROJECT) -> CodeFile:
    return await atlas.code.upsert(
        CodeFileCreate(project_name=project, file_path=path, content="x = 1\n", language="python")
    )


def chunk(
    index: int, text: str | None = None, vector: npt.NDArray[np.float32] | None = None
) -> CodeEmbeddingCreate:
    return CodeEmbeddingCreate(
        chunk_index=index, chunk_text=text or f"chunk {index}", embedding=vector
    )


def location(
    name: str,
    line: int,
    *,
    path: str = "src/a.py",
    project: str = PROJECT,
    kind: str = "function",
    vector: npt.NDArray[np.float32] | None = None,
) -> CodeLocationCreate:
    return CodeLocationCreate(
        project=project,
        file_path=path,
        line_start=line,
        line_end=line + 3,
        symbol_type=kind,
        symbol_name=name,
        embedding=vector,
    )


async def test_files_upsert_on_project_and_path(atlas: codeatlas.Atlas) -> None:
    first = await add_file(atlas, "src/a.py")
    again = await atlas.code.upsert(
        CodeFileCreate(project_name=PROJECT, file_path="src/a.py", content="y = 2\n", hash="h2")
    )
    other_project = await add_file(atlas, "src/a.py", project="another")
    assert again.id == first.id
    assert (again.content, again.hash) == ("y = 2\n", "h2")
    assert again.updated_at >= first.updated_at
    assert other_project.id != first.id
    assert await atlas.code.count() == 2


async def test_replace_chunks_replaces_and_orders(atlas: codeatlas.Atlas) -> None:
    file = await add_file(atlas, "src/a.py")
    other = await add_file(atlas, "src/b.py")
    vectors = unit_vectors(3)
    assert (
        await atlas.code.replace_chunks(file.id, [chunk(i, vector=vectors[i]) for i in (2, 0, 1)])
        == 3
    )
    assert await atlas.code.replace_chunks(other.id, [chunk(0, "other file")]) == 1
    chunks = await atlas.code.chunks_of(file.id)
    assert [c.chunk_index for c in chunks] == [0, 1, 2]
    assert all(c.code_file_id == file.id for c in chunks)
    assert chunks[1].embedding is not None and np.array_equal(chunks[1].embedding, vectors[1])

    assert (
        await atlas.code.replace_chunks(file.id, [chunk(1, "new one"), chunk(0, "new zero")]) == 2
    )
    assert [(c.chunk_index, c.chunk_text) for c in await atlas.code.chunks_of(file.id)] == [
        (0, "new zero"),
        (1, "new one"),
    ]
    # a large batch (the COPY path), then none at all
    assert await atlas.code.replace_chunks(file.id, [chunk(i) for i in range(150)]) == 150
    assert [c.chunk_index for c in await atlas.code.chunks_of(file.id)] == list(range(150))
    assert await atlas.code.replace_chunks(file.id, []) == 0
    assert await atlas.code.chunks_of(file.id) == []
    assert [c.chunk_text for c in await atlas.code.chunks_of(other.id)] == ["other file"]


@pytest.mark.parametrize("size", [3, 120])  # executemany and COPY paths
async def test_replace_chunks_failing_half_way_keeps_the_old_chunks(
    atlas: codeatlas.Atlas, size: int
) -> None:
    file = await add_file(atlas, "src/a.py")
    await atlas.code.replace_chunks(file.id, [chunk(0, "old zero"), chunk(1, "old one")])
    clash = uuid.uuid4()
    new = [chunk(i) for i in range(size)]
    # the delete has run by the time the second row with the same id is inserted
    new[-1] = new[-1].model_copy(update={"id": clash})
    new[-2] = new[-2].model_copy(update={"id": clash})
    with pytest.raises(UniqueConflictError):
        await atlas.code.replace_chunks(file.id, new)
    assert [c.chunk_text for c in await atlas.code.chunks_of(file.id)] == ["old zero", "old one"]


async def test_replace_chunks_checks_the_file(atlas: codeatlas.Atlas) -> None:
    file = await add_file(atlas, "src/a.py")
    with pytest.raises(NotFoundError):
        await atlas.code.replace_chunks(uuid.uuid4(), [chunk(0)])
    foreign = chunk(0).model_copy(update={"code_file_id": uuid.uuid4()})
    with pytest.raises(InvalidInputError):
        await atlas.code.replace_chunks(file.id, [foreign])
    assert await atlas.code.embeddings.count() == 0


async def test_deleting_a_file_cascades_to_its_chunks(atlas: codeatlas.Atlas) -> None:
    file = await add_file(atlas, "src/a.py")
    kept = await add_file(atlas, "src/b.py")
    await atlas.code.replace_chunks(file.id, [chunk(i) for i in range(4)])
    await atlas.code.replace_chunks(kept.id, [chunk(0)])
    assert await atlas.code.delete(file.id) is True
    assert await atlas.code.embeddings.count({"code_file_id": file.id}) == 0
    assert await atlas.code.embeddings.count() == 1


async def test_chunk_search_finds_real_rows(atlas: codeatlas.Atlas) -> None:
    first = await add_file(atlas, "src/a.py")
    second = await add_file(atlas, "src/b.py")
    vectors = unit_vectors(40)
    await atlas.code.replace_chunks(first.id, [chunk(i, vector=vectors[i]) for i in range(20)])
    await atlas.code.replace_chunks(
        second.id, [chunk(i, vector=vectors[20 + i]) for i in range(20)]
    )
    hits = await atlas.code.embeddings.search_similar(vectors[25], k=3)
    assert hits[0].item.code_file_id == second.id and hits[0].item.chunk_index == 5
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert len(hits) == 3 and hits[0].similarity > hits[1].similarity >= hits[2].similarity
    # restricted to the first file, the same query finds only its chunks
    scoped = await atlas.code.embeddings.search_similar(
        vectors[25], k=5, where={"code_file_id": first.id}
    )
    assert len(scoped) == 5
    assert {m.item.code_file_id for m in scoped} == {first.id}
    exact = await atlas.code.embeddings.search_similar(
        vectors[25], k=5, where={"code_file_id": first.id}, exact=True
    )
    assert [m.item.id for m in scoped] == [m.item.id for m in exact]


async def test_replace_locations_is_scoped_and_atomic(atlas: codeatlas.Atlas) -> None:
    locations = atlas.code.locations
    assert (
        await locations.replace_locations(
            PROJECT,
            "src/a.py",
            [location("f", 10), location("g", 20), location("A", 1, kind="class")],
        )
        == 3
    )
    await locations.replace_locations(PROJECT, "src/b.py", [location("h", 5, path="src/b.py")])
    await locations.replace_locations("other", "src/a.py", [location("f", 1, project="other")])

    assert await locations.replace_locations(PROJECT, "src/a.py", [location("k", 7)]) == 1
    assert [(s.file_path, s.symbol_name) for s in await locations.symbols(PROJECT)] == [
        ("src/a.py", "k"),
        ("src/b.py", "h"),
    ]
    assert [s.symbol_name for s in await locations.symbols("other")] == ["f"]

    # a failure after the delete leaves the previous locations in place
    clash = uuid.uuid4()
    twins = [location("p", 1).model_copy(update={"id": clash}) for _ in range(2)]
    with pytest.raises(UniqueConflictError):
        await locations.replace_locations(PROJECT, "src/a.py", twins)
    assert [s.symbol_name for s in await locations.symbols(PROJECT, file_path="src/a.py")] == ["k"]

    with pytest.raises(InvalidInputError, match=r"src/b\.py"):
        await locations.replace_locations(PROJECT, "src/a.py", [location("x", 1, path="src/b.py")])
    assert await locations.replace_locations(PROJECT, "src/b.py", []) == 0
    assert await locations.symbols(PROJECT, file_path="src/b.py") == []


async def test_symbols_filters(atlas: codeatlas.Atlas) -> None:
    locations = atlas.code.locations
    await locations.replace_locations(
        PROJECT,
        "src/a.py",
        [location("run", 30), location("Runner", 1, kind="class"), location("stop", 12)],
    )
    await locations.replace_locations(PROJECT, "src/b.py", [location("run", 4, path="src/b.py")])
    everything = await locations.symbols(PROJECT)
    assert [(s.file_path, s.line_start) for s in everything] == [
        ("src/a.py", 1),
        ("src/a.py", 12),
        ("src/a.py", 30),
        ("src/b.py", 4),
    ]
    assert all(s.embedding is None for s in everything)
    assert [s.symbol_name for s in await locations.symbols(PROJECT, symbol_type="class")] == [
        "Runner"
    ]
    assert [s.file_path for s in await locations.symbols(PROJECT, name="run")] == [
        "src/a.py",
        "src/b.py",
    ]
    assert [
        s.line_start
        for s in await locations.symbols(
            PROJECT, file_path="src/a.py", symbol_type="function", name="run"
        )
    ] == [30]
    assert await locations.symbols("nobody") == []


async def test_location_search_filters_on_project(atlas: codeatlas.Atlas) -> None:
    vectors = unit_vectors(30, seed=9)
    locations = atlas.code.locations
    await locations.replace_locations(
        PROJECT, "src/a.py", [location(f"f{i}", i, vector=vectors[i]) for i in range(15)]
    )
    await locations.replace_locations(
        "other",
        "src/a.py",
        [location(f"g{i}", i, project="other", vector=vectors[15 + i]) for i in range(15)],
    )
    hits = await locations.search_similar(vectors[20], k=4)
    assert hits[0].item.symbol_name == "g5" and hits[0].item.project == "other"
    mine = await locations.search_similar(vectors[20], k=4, where={"project": PROJECT})
    assert len(mine) == 4
    assert {m.item.project for m in mine} == {PROJECT}
    expected = np.argsort(-(vectors[:15] @ vectors[20]))[:4]
    assert [m.item.symbol_name for m in mine] == [f"f{i}" for i in expected]
    classes = await locations.search_similar(
        vectors[20], k=4, where={"project": PROJECT, "symbol_type": "class"}
    )
    assert classes == []
