"""The generic repository base on the real tables: CRUD, typed errors, transactions, keyset
pagination, bulk vectors, and a property test of list() pagination."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import codeatlas
from codeatlas import Scope
from codeatlas.errors import (
    ForeignKeyViolationError,
    ImmutableRowError,
    InvalidFilterError,
    NotFoundError,
    UniqueConflictError,
)
from codeatlas.models import (
    AnalysisStatus,
    CodebaseMetadataCreate,
    CodebaseMetadataUpdate,
    CodebaseRegistryCreate,
    CodebaseRegistryUpdate,
    CodebaseSnapshotCreate,
    QualityFindingCreate,
    QualityRunCreate,
    QualityRunUpdate,
    QualityTool,
    RunStatus,
    Severity,
    TechnologyPatternCreate,
    TechnologyPatternUpdate,
    TechnologyTemplateCreate,
    TechnologyTemplateUpdate,
    TechnologyType,
    VectorSearchCreate,
    VectorSearchUpdate,
)
from codeatlas.models._base import CreateModel, UpdateModel
from codeatlas.repositories._base import Repository

DIM = 1536


def vector(seed: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


async def no_context(scope: Scope) -> dict[str, Any]:
    return {}


async def a_run(scope: Scope) -> dict[str, Any]:
    return {"run_id": (await scope.quality.start_run(QualityTool.CUSTOM)).id}


@dataclass
class Case:
    """One table's CRUD round trip: how to reach its repository and build its rows."""

    name: str
    repo: Callable[[Scope], Repository[Any, Any, Any]]
    create: Callable[[int, dict[str, Any]], CreateModel]
    patch: UpdateModel | None  # None: the table is append-only
    changed: dict[str, Any] = field(default_factory=dict)
    setup: Callable[[Scope], Awaitable[dict[str, Any]]] = no_context


CASES = [
    Case(
        "codebase_registry",
        lambda s: s.codebases.registry,
        lambda i, _: CodebaseRegistryCreate(
            codebase_id=f"cb{i}", codebase_path=f"/src/{i}", codebase_name=f"Codebase {i}"
        ),
        CodebaseRegistryUpdate(analysis_status=AnalysisStatus.ANALYZING, framework=None),
        {"analysis_status": AnalysisStatus.ANALYZING, "framework": None},
    ),
    Case(
        "codebase_metadata",
        lambda s: s.codebases,
        lambda i, _: CodebaseMetadataCreate(
            codebase_id="cb",
            codebase_path="/src",
            path=f"f{i}.py",
            size=i,
            imports=[{"module": "os"}],
            vector_embedding=vector(i),
        ),
        CodebaseMetadataUpdate(quality_score=0.25, domains=["billing"]),
        {"quality_score": 0.25, "domains": ["billing"]},
    ),
    Case(
        "vector_search",
        lambda s: s.vector_search,
        lambda i, _: VectorSearchCreate(
            codebase_id="cb",
            file_path=f"f{i}.py",
            content_type="code",
            content=f"def f{i}(): ...",
            vector_embedding=vector(100 + i),
            metadata={"i": i},
        ),
        VectorSearchUpdate(content="changed", metadata=None),
        {"content": "changed", "metadata": None},
    ),
    Case(
        "codebase_snapshots",
        lambda s: s.snapshots,
        lambda i, _: CodebaseSnapshotCreate(
            codebase_id="cb", snapshot_id=i + 1, detected_technologies=["python"], summary={}
        ),
        None,
    ),
    Case(
        "quality_runs",
        lambda s: s.quality,
        lambda i, _: QualityRunCreate(tool=QualityTool.DIALYZER, status=RunStatus.OK),
        QualityRunUpdate(status=RunStatus.WARNING, warning_count=3),
        {"status": RunStatus.WARNING, "warning_count": 3},
    ),
    Case(
        "quality_findings",
        lambda s: s.quality.findings,
        lambda i, ctx: QualityFindingCreate(
            run_id=ctx["run_id"], message=f"finding {i}", severity=Severity.MEDIUM, line=i
        ),
        None,
        setup=a_run,
    ),
    Case(
        "technology_patterns",
        lambda s: s.technology,
        lambda i, _: TechnologyPatternCreate(
            technology_name=f"tech{i}",
            technology_type=TechnologyType.FRAMEWORK,
            config_files=["pyproject.toml"],
        ),
        TechnologyPatternUpdate(build_command="make", file_patterns=["*.py"]),
        {"build_command": "make", "file_patterns": ["*.py"]},
    ),
    Case(
        "technology_templates",
        lambda s: s.technology.templates,
        lambda i, _: TechnologyTemplateCreate(
            identifier=f"tpl{i}", category="service", template={"i": i, "files": []}
        ),
        TechnologyTemplateUpdate(version="2", template={"changed": True}),
        {"version": "2", "template": {"changed": True}},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_crud_round_trip(atlas: codeatlas.Atlas, case: Case) -> None:
    repo = case.repo(atlas)
    assert repo.table == case.name
    ctx = await case.setup(atlas)
    first = await repo.insert(case.create(0, ctx))
    second = await repo.insert(case.create(1, ctx))
    assert first.id != second.id
    assert await repo.get(first.id) == first
    assert await repo.get_many([second.id, first.id]) == [second, first]
    assert await repo.count() == 2

    if case.patch is None:
        with pytest.raises(ImmutableRowError):
            await repo.update(first.id, UpdateModel())
        expected_first = first
    else:
        updated = await repo.update(first.id, case.patch)
        for name, value in case.changed.items():
            assert getattr(updated, name) == value, name
        assert updated.id == first.id
        assert await repo.get(first.id) == updated
        expected_first = updated
        untouched = await repo.get(second.id)
        assert untouched == second

    page = await repo.list(include_vectors=True)
    assert page.items == [expected_first, second]
    assert page.next_cursor is None

    assert await repo.delete(first.id)
    assert not await repo.delete(first.id)
    with pytest.raises(NotFoundError):
        await repo.get(first.id)
    assert await repo.find(first.id) is None
    assert [row.id for row in (await repo.list()).items] == [second.id]


async def test_not_found(atlas: codeatlas.Atlas) -> None:
    with pytest.raises(NotFoundError, match="codebase_registry"):
        await atlas.codebases.registry.get(12345)
    with pytest.raises(NotFoundError):
        await atlas.codebases.registry.update(12345, CodebaseRegistryUpdate(description="x"))
    with pytest.raises(NotFoundError):
        await atlas.technology.update(12345, TechnologyPatternUpdate(build_command="make"))


async def test_unique_conflict_names_the_key(atlas: codeatlas.Atlas) -> None:
    data = CodebaseRegistryCreate(codebase_id="dup", codebase_path="/a", codebase_name="A")
    await atlas.codebases.registry.insert(data)
    with pytest.raises(UniqueConflictError) as caught:
        await atlas.codebases.registry.insert(data)
    error = caught.value
    assert error.table == "codebase_registry"
    assert error.constraint == "codebase_registry_codebase_id_index"
    assert error.key is not None and "(codebase_id)=(dup)" in error.key
    # the bulk (COPY) path translates the same way
    with pytest.raises(UniqueConflictError) as bulk:
        await atlas.codebases.registry.insert_many(
            [
                CodebaseRegistryCreate(codebase_id=f"c{i}", codebase_path="/", codebase_name="n")
                for i in range(100)
            ]
            + [data]
        )
    assert bulk.value.constraint == "codebase_registry_codebase_id_index"
    assert await atlas.codebases.registry.count() == 1


async def test_foreign_key_violation_names_the_parent(atlas: codeatlas.Atlas) -> None:
    orphan = QualityFindingCreate(run_id=424242, message="orphan")
    with pytest.raises(ForeignKeyViolationError) as caught:
        await atlas.quality.findings.insert(orphan)
    assert caught.value.constraint == "quality_findings_run_id_fkey"
    assert caught.value.table == "quality_findings"
    assert "quality_runs" in str(caught.value)
    with pytest.raises(ForeignKeyViolationError, match="quality_runs"):
        await atlas.quality.findings.insert_many([orphan] * 100)
    assert await atlas.quality.findings.count() == 0


async def test_transaction_failing_half_way_leaves_nothing(atlas: codeatlas.Atlas) -> None:
    with pytest.raises(UniqueConflictError):
        async with atlas.transaction() as tx:
            await tx.codebases.register("cb", "/src/cb", "Codebase")
            await tx.codebases.upsert(
                CodebaseMetadataCreate(codebase_id="cb", codebase_path="/src/cb", path="a.py")
            )
            await tx.snapshots.take("cb", detected_technologies=["python"])
            run = await tx.quality.start_run(QualityTool.CUSTOM)
            await tx.quality.add_findings(
                run.id, [QualityFindingCreate(run_id=run.id, message="m")] * 100
            )
            # visible inside the transaction...
            assert await tx.quality.findings.count() == 100
            # ...and this fails half-way
            await tx.codebases.registry.insert(
                CodebaseRegistryCreate(codebase_id="cb", codebase_path="/", codebase_name="x")
            )
    for repo in (
        atlas.codebases.registry,
        atlas.codebases,
        atlas.snapshots,
        atlas.quality,
        atlas.quality.findings,
    ):
        assert await repo.count() == 0, repo.table


async def test_nested_transaction_is_a_savepoint(atlas: codeatlas.Atlas) -> None:
    async with atlas.transaction() as outer:
        await outer.codebases.register("a", "/a", "A")
        with pytest.raises(RuntimeError):
            async with outer.transaction() as inner:
                await inner.codebases.register("b", "/b", "B")
                assert await inner.codebases.registry.count() == 2
                raise RuntimeError("inner fails")
        # the inner work is gone, the outer transaction goes on
        assert await outer.codebases.registry.count() == 1
        async with outer.transaction() as inner:
            await inner.codebases.register("c", "/c", "C")
        await outer.codebases.register("d", "/d", "D")
    page = await atlas.codebases.registry.list(order_by="codebase_id")
    assert [r.codebase_id for r in page.items] == ["a", "c", "d"]

    # a savepoint released inside a transaction that then fails is rolled back with it
    with pytest.raises(RuntimeError):
        async with atlas.transaction() as outer:
            async with outer.transaction() as inner:
                await inner.codebases.register("e", "/e", "E")
            raise RuntimeError("outer fails")
    assert not await atlas.codebases.registry.exists({"codebase_id": "e"})


LANGUAGES = ["go", "python", "rust", None, "elixir"]


async def seed_registry(atlas: codeatlas.Atlas, n: int) -> None:
    await atlas.codebases.registry.insert_many(
        [
            CodebaseRegistryCreate(
                codebase_id=f"cb{i:04}",
                codebase_path=f"/src/{i}",
                codebase_name=f"n{i % 7}",
                language=LANGUAGES[i % len(LANGUAGES)],
            )
            for i in range(n)
        ]
    )


def expected_order(rows: list[tuple[int, str | None]], descending: bool) -> list[int]:
    """Ids in the order list() promises: ASC NULLS LAST then id, or DESC NULLS FIRST."""
    if descending:
        nulls = sorted((r for r in rows if r[1] is None), key=lambda r: -r[0])
        rest = sorted((r for r in rows if r[1] is not None), key=lambda r: (r[1], r[0]))
        return [r[0] for r in nulls] + [r[0] for r in reversed(rest)]
    values = sorted((r for r in rows if r[1] is not None), key=lambda r: (r[1], r[0]))
    nulls = sorted((r for r in rows if r[1] is None), key=lambda r: r[0])
    return [r[0] for r in values] + [r[0] for r in nulls]


async def walk(
    atlas: codeatlas.Atlas,
    order_by: str,
    descending: bool,
    sizes: list[int],
    where: dict[str, Any] | None = None,
) -> list[Any]:
    rows: list[Any] = []
    cursor = None
    step = 0
    while True:
        page = await atlas.codebases.registry.list(
            where,
            order_by=order_by,
            descending=descending,
            limit=sizes[step % len(sizes)],
            cursor=cursor,
        )
        rows.extend(page.items)
        step += 1
        if page.next_cursor is None:
            return rows
        cursor = page.next_cursor
        assert step < 1000, "pagination does not end"


@pytest.mark.parametrize("descending", [False, True])
async def test_keyset_pagination_with_ties_and_nulls(
    atlas: codeatlas.Atlas, descending: bool
) -> None:
    await seed_registry(atlas, 250)
    # 5 languages (one of them NULL) over 250 rows: every page boundary falls inside ties
    rows = await walk(atlas, "language", descending, [7])
    ids = [r.id for r in rows]
    assert len(ids) == 250 and len(set(ids)) == 250
    expected = expected_order([(r.id, r.language) for r in rows], descending)
    assert ids == expected

    filtered = await walk(atlas, "codebase_name", descending, [9], {"language": ["go", "rust"]})
    assert len(filtered) == 100
    assert {r.language for r in filtered} == {"go", "rust"}
    assert len({r.id for r in filtered}) == 100

    with pytest.raises(InvalidFilterError):
        await atlas.codebases.registry.list(order_by="id", cursor=None, limit=0)
    first = await atlas.codebases.registry.list(order_by="language", limit=10)
    assert first.next_cursor is not None
    with pytest.raises(InvalidFilterError, match="ordering"):
        await atlas.codebases.registry.list(order_by="codebase_name", cursor=first.next_cursor)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=70), min_size=1, max_size=5),
    order_by=st.sampled_from(["id", "language", "codebase_name", "codebase_id"]),
    descending=st.booleans(),
)
async def test_pagination_returns_every_row_once_in_order(
    atlas: codeatlas.Atlas, sizes: list[int], order_by: str, descending: bool
) -> None:
    # the fixture's database lives for the whole test: seed once, read in every example
    if not await atlas.codebases.registry.exists():
        await seed_registry(atlas, 120)
    everything = (await atlas.codebases.registry.list(limit=10_000)).items
    rows = await walk(atlas, order_by, descending, sizes)
    expected = expected_order([(r.id, getattr(r, order_by)) for r in everything], descending)
    assert [r.id for r in rows] == expected


async def test_insert_many_10k_vectors_round_trips_bit_exactly(atlas: codeatlas.Atlas) -> None:
    rng = np.random.default_rng(2024)
    n = 10_000
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    # awkward values too: tiny, huge (as large as a norm may be), negative zero, subnormal
    vectors[0, :4] = [np.float32(1e-38), np.float32(1e18), np.float32(-0.0), np.float32(1e-45)]
    rows = [
        VectorSearchCreate(
            codebase_id="cb",
            file_path=f"f{i:05}.py",
            content_type="code",
            content="x",
            vector_embedding=vectors[i],
        )
        for i in range(n)
    ]
    started = time.perf_counter()
    assert await atlas.vector_search.insert_many(rows) == n
    elapsed = time.perf_counter() - started
    assert elapsed < 60, f"insert_many of {n} rows took {elapsed:.1f}s"

    seen = 0
    cursor = None
    while True:
        page = await atlas.vector_search.list(
            order_by="file_path", limit=2500, cursor=cursor, include_vectors=True
        )
        for row in page.items:
            i = int(row.file_path[1:6])
            assert row.vector_embedding is not None
            assert row.vector_embedding.dtype == np.float32
            assert np.array_equal(row.vector_embedding, vectors[i]), row.file_path
            # bit-exact, including the sign of zero
            assert row.vector_embedding.tobytes() == vectors[i].tobytes(), row.file_path
            seen += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == n
