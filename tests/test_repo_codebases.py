"""atlas.codebases: registry (register, set_status) and file metadata (ingest, stamps, pruning)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

import codeatlas
from codeatlas.errors import ConstraintViolationError, InvalidInputError, NotFoundError
from codeatlas.models import AnalysisStatus, CodebaseMetadataCreate, CodebaseMetadataUpdate


def meta(codebase_id: str, path: str, **fields: object) -> CodebaseMetadataCreate:
    return CodebaseMetadataCreate(
        codebase_id=codebase_id, codebase_path=f"/src/{codebase_id}", path=path, **fields
    )


def near_now(moment: datetime | None) -> bool:
    assert moment is not None
    return abs(datetime.now(UTC) - moment) < timedelta(seconds=30)


async def test_register_inserts_then_updates_without_touching_analysis_state(
    atlas: codeatlas.Atlas,
) -> None:
    first = await atlas.codebases.register(
        "cb", "/src/cb", "Codebase", description="first", language="python"
    )
    assert first.analysis_status is AnalysisStatus.PENDING
    assert first.metadata == {}
    assert first.description == "first"
    assert first.last_analyzed is None
    done = await atlas.codebases.set_status("cb", AnalysisStatus.COMPLETED)

    again = await atlas.codebases.register(
        "cb", "/moved/cb", "Renamed", framework="fastapi", metadata={"team": "core"}
    )
    assert again.id == first.id
    assert (again.codebase_path, again.codebase_name) == ("/moved/cb", "Renamed")
    # fields passed as None keep their value; analysis state survives re-registration
    assert again.description == "first"
    assert again.language == "python"
    assert again.framework == "fastapi"
    assert again.metadata == {"team": "core"}
    assert again.analysis_status is AnalysisStatus.COMPLETED
    assert again.last_analyzed == done.last_analyzed
    assert await atlas.codebases.registry.count() == 1


async def test_register_validates_before_writing(atlas: codeatlas.Atlas) -> None:
    with pytest.raises(InvalidInputError, match="language"):
        await atlas.codebases.register("cb", "/src/cb", "Codebase", language="x" * 51)
    assert await atlas.codebases.registry.count() == 0


async def test_set_status_stamps_last_analyzed_only_when_completed(
    atlas: codeatlas.Atlas,
) -> None:
    await atlas.codebases.register("cb", "/src/cb", "Codebase")
    analyzing = await atlas.codebases.set_status("cb", AnalysisStatus.ANALYZING)
    assert analyzing.analysis_status is AnalysisStatus.ANALYZING
    assert analyzing.last_analyzed is None

    completed = await atlas.codebases.set_status("cb", AnalysisStatus.COMPLETED)
    assert completed.analysis_status is AnalysisStatus.COMPLETED
    assert near_now(completed.last_analyzed)
    assert completed.updated_at >= analyzing.updated_at

    # a failed re-analysis must not make the old metadata look fresh, nor erase the date
    failed = await atlas.codebases.set_status("cb", AnalysisStatus.FAILED)
    assert failed.analysis_status is AnalysisStatus.FAILED
    assert failed.last_analyzed == completed.last_analyzed
    stored = await atlas.codebases.registry.get(completed.id)
    assert stored.analysis_status is AnalysisStatus.FAILED


async def test_set_status_errors(atlas: codeatlas.Atlas) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        await atlas.codebases.set_status("nope", AnalysisStatus.COMPLETED)
    await atlas.codebases.register("cb", "/src/cb", "Codebase")
    with pytest.raises(InvalidInputError, match="unknown analysis status"):
        await atlas.codebases.set_status("cb", "done")  # type: ignore[arg-type]
    # a plain string naming a known status is accepted
    row = await atlas.codebases.set_status("cb", "analyzing")  # type: ignore[arg-type]
    assert row.analysis_status is AnalysisStatus.ANALYZING


async def test_file_metadata_upserts_by_codebase_and_path(atlas: codeatlas.Atlas) -> None:
    first = await atlas.codebases.upsert(meta("cb", "a.py", size=10, language="python"))
    second = await atlas.codebases.upsert(meta("cb", "a.py", size=20, language="python"))
    other = await atlas.codebases.upsert(meta("other", "a.py", size=30))
    assert second.id == first.id
    assert second.size == 20
    assert other.id != first.id
    assert await atlas.codebases.count({"codebase_id": "cb"}) == 1
    patched = await atlas.codebases.update(first.id, CodebaseMetadataUpdate(quality_score=0.5))
    assert patched.quality_score == 0.5
    assert patched.size == 20


async def test_ingest_writes_in_batches_and_reports_progress(atlas: codeatlas.Atlas) -> None:
    rows = [meta("cb", f"src/f{i:05}.py", size=i, last_modified=1000 + i) for i in range(2500)]
    progress: list[tuple[int, int]] = []
    written = await atlas.codebases.ingest(
        rows, batch_size=1000, on_progress=lambda done, total: progress.append((done, total))
    )
    assert written == 2500
    assert progress == [(1000, 2500), (2000, 2500), (2500, 2500)]
    assert await atlas.codebases.count({"codebase_id": "cb"}) == 2500

    # re-ingesting updates in place: no duplicates, new values
    changed = [meta("cb", f"src/f{i:05}.py", size=i + 1) for i in range(0, 2500, 5)]
    assert await atlas.codebases.ingest(changed, batch_size=128) == 500
    assert await atlas.codebases.count({"codebase_id": "cb"}) == 2500
    stamps = await atlas.codebases.file_stamps("cb")
    assert stamps["src/f00005.py"] == (6, 0)
    assert stamps["src/f00006.py"] == (6, 1006)


async def test_ingest_batches_are_atomic(atlas: codeatlas.Atlas) -> None:
    # a constraint of the test's own makes one row of the second batch fail on the server
    await atlas.executor.execute(
        "ALTER TABLE codebase_metadata ADD CONSTRAINT test_no_bad_path CHECK (path <> 'bad')"
    )
    rows = [meta("cb", f"f{i:04}.py") for i in range(2000)]
    rows[1500] = meta("cb", "bad")
    progress: list[tuple[int, int]] = []
    with pytest.raises(ConstraintViolationError):
        await atlas.codebases.ingest(
            rows, batch_size=1000, on_progress=lambda d, t: progress.append((d, t))
        )
    # the first batch committed, nothing of the failing one did
    assert progress == [(1000, 2000)]
    assert await atlas.codebases.count() == 1000
    assert not await atlas.codebases.exists({"path": "f1000.py"})
    with pytest.raises(InvalidInputError, match="batch_size"):
        await atlas.codebases.ingest(rows, batch_size=0)


async def test_file_stamps_of_one_codebase(atlas: codeatlas.Atlas) -> None:
    await atlas.codebases.upsert_many(
        [
            meta("cb", "a.py", size=1, last_modified=111),
            meta("cb", "b.py", size=2, last_modified=222),
            meta("other", "c.py", size=3, last_modified=333),
        ]
    )
    assert await atlas.codebases.file_stamps("cb") == {"a.py": (1, 111), "b.py": (2, 222)}
    assert await atlas.codebases.file_stamps("missing") == {}


async def test_remove_missing_deletes_only_that_codebases_vanished_files(
    atlas: codeatlas.Atlas,
) -> None:
    rows = [meta("cb", f"f{i}.py") for i in range(10)] + [
        meta("other", f"f{i}.py") for i in range(3)
    ]
    await atlas.codebases.upsert_many(rows)
    keep = {"f0.py", "f3.py", "f7.py", "never-indexed.py"}
    assert await atlas.codebases.remove_missing("cb", keep) == 7
    assert set(await atlas.codebases.file_stamps("cb")) == {"f0.py", "f3.py", "f7.py"}
    assert len(await atlas.codebases.file_stamps("other")) == 3
    assert await atlas.codebases.remove_missing("cb", keep) == 0
    # nothing left on disk: every file of the codebase goes
    assert await atlas.codebases.remove_missing("cb", []) == 3
    assert await atlas.codebases.count() == 3
    with pytest.raises(InvalidInputError):
        await atlas.codebases.remove_missing("other", "f0.py")


async def test_search_file_metadata_within_a_codebase(atlas: codeatlas.Atlas) -> None:
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((40, 1536)).astype(np.float32)
    await atlas.codebases.upsert_many(
        [
            meta("cb" if i % 2 else "other", f"f{i}.py", vector_embedding=vectors[i])
            for i in range(40)
        ]
    )
    matches = await atlas.codebases.search_similar(
        vectors[3], k=5, where={"codebase_id": "cb"}, exact=True
    )
    assert matches[0].item.path == "f3.py"
    assert matches[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert len(matches) == 5
    assert all(m.item.codebase_id == "cb" for m in matches)
