"""atlas.quality: run lifecycle, bulk findings, derived status, queries, immutability."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

import codeatlas
from codeatlas.errors import (
    ConstraintViolationError,
    ForeignKeyViolationError,
    ImmutableRowError,
    InvalidInputError,
    NotFoundError,
    RunFinishedError,
)
from codeatlas.models import QualityFinding, QualityFindingCreate, QualityTool, RunStatus, Severity
from codeatlas.models._base import UpdateModel


def finding(
    run_id: int,
    severity: Severity | None = Severity.LOW,
    *,
    category: str = "style",
    file: str = "a.ex",
    line: int = 1,
) -> QualityFindingCreate:
    return QualityFindingCreate(
        run_id=run_id,
        category=category,
        message=f"{category} at {file}:{line}",
        file=file,
        line=line,
        severity=severity,
    )


async def test_start_run(atlas: codeatlas.Atlas) -> None:
    run = await atlas.quality.start_run(QualityTool.SOBELOW, metadata={"branch": "main"})
    assert run.tool is QualityTool.SOBELOW
    assert run.status is RunStatus.OK  # placeholder until finish: running = finished_at NULL
    assert run.finished_at is None
    assert run.warning_count == 0
    assert run.metadata == {"branch": "main"}
    assert run.started_at is not None
    assert abs(datetime.now(UTC) - run.started_at) < timedelta(seconds=30)
    assert (await atlas.quality.start_run("dialyzer")).metadata == {}
    with pytest.raises(InvalidInputError, match="custom"):
        await atlas.quality.start_run("ruff")
    assert await atlas.quality.count() == 2


@pytest.mark.parametrize(
    ("severities", "status"),
    [
        ([], RunStatus.OK),
        ([Severity.INFO, Severity.LOW, None], RunStatus.WARNING),
        ([Severity.HIGH, Severity.MEDIUM], RunStatus.WARNING),
        ([Severity.LOW, Severity.CRITICAL], RunStatus.ERROR),
    ],
)
async def test_finish_derives_count_and_status(
    atlas: codeatlas.Atlas, severities: list[Severity | None], status: RunStatus
) -> None:
    run = await atlas.quality.start_run(QualityTool.CUSTOM)
    assert await atlas.quality.add_findings(
        run.id, [finding(run.id, s, line=i) for i, s in enumerate(severities)]
    ) == len(severities)
    finished = await atlas.quality.finish(run.id)
    assert finished.warning_count == len(severities)
    assert finished.status is status
    assert finished.finished_at is not None
    assert run.started_at is not None and finished.finished_at >= run.started_at
    assert await atlas.quality.get(run.id) == finished


async def test_finish_counts_elixir_error_severity(atlas: codeatlas.Atlas) -> None:
    run = await atlas.quality.start_run(QualityTool.SOBELOW)
    # severity is free text on the Elixir side; its 'ERROR' (any case) means error too
    await atlas.executor.execute(
        "INSERT INTO quality_findings (run_id, message, severity) VALUES ($1, 'x', 'ERROR')",
        run.id,
    )
    assert (await atlas.quality.finish(run.id)).status is RunStatus.ERROR


async def test_finished_run_takes_no_more_findings(atlas: codeatlas.Atlas) -> None:
    run = await atlas.quality.start_run(QualityTool.MIX_AUDIT)
    await atlas.quality.add_findings(run.id, [finding(run.id)])
    await atlas.quality.finish(run.id)
    with pytest.raises(RunFinishedError) as caught:
        await atlas.quality.add_findings(run.id, [finding(run.id)])
    assert isinstance(caught.value, ImmutableRowError)
    with pytest.raises(RunFinishedError):
        await atlas.quality.finish(run.id)
    assert await atlas.quality.findings.count({"run_id": run.id}) == 1
    assert (await atlas.quality.get(run.id)).warning_count == 1


async def test_unknown_run(atlas: codeatlas.Atlas) -> None:
    with pytest.raises(NotFoundError):
        await atlas.quality.add_findings(999, [finding(999)])
    with pytest.raises(NotFoundError):
        await atlas.quality.finish(999)
    # the base insert path names the missing parent through the foreign key
    with pytest.raises(ForeignKeyViolationError, match="quality_runs"):
        await atlas.quality.findings.insert(finding(999))


async def test_add_findings_is_atomic_and_checks_run_ids(atlas: codeatlas.Atlas) -> None:
    run = await atlas.quality.start_run(QualityTool.CUSTOM)
    other = await atlas.quality.start_run(QualityTool.CUSTOM)
    with pytest.raises(InvalidInputError, match="run"):
        await atlas.quality.add_findings(run.id, [finding(run.id), finding(other.id)])
    # a bulk (COPY) batch failing on the server keeps none of its rows
    await atlas.executor.execute(
        "ALTER TABLE quality_findings ADD CONSTRAINT test_no_bad_line CHECK (line <> 13)"
    )
    batch = [finding(run.id, line=i) for i in range(200)]
    with pytest.raises(ConstraintViolationError):
        await atlas.quality.add_findings(run.id, batch)
    assert await atlas.quality.findings.count() == 0
    assert await atlas.quality.add_findings(run.id, batch[14:]) == 186
    assert await atlas.quality.add_findings(run.id, []) == 0


async def test_finish_waits_for_findings_being_added(atlas: codeatlas.Atlas) -> None:
    # an add_findings in flight when finish is called is counted, never lost or refused
    run = await atlas.quality.start_run(QualityTool.CUSTOM)
    async with atlas.transaction() as tx:
        await tx.quality.add_findings(run.id, [finding(run.id, line=i) for i in range(5)])
        finishing = asyncio.create_task(atlas.quality.finish(run.id))
        await asyncio.sleep(0.2)
        assert not finishing.done()  # blocked on the run row until this transaction ends
    finished = await finishing
    assert finished.warning_count == 5


async def test_concurrent_adds_then_finish(atlas: codeatlas.Atlas) -> None:
    run = await atlas.quality.start_run(QualityTool.CUSTOM)
    counts = await asyncio.gather(
        *(
            atlas.quality.add_findings(
                run.id, [finding(run.id, line=b * 100 + i) for i in range(50)]
            )
            for b in range(8)
        )
    )
    assert counts == [50] * 8
    assert (await atlas.quality.finish(run.id)).warning_count == 400


async def test_findings_for_filters(atlas: codeatlas.Atlas) -> None:
    run = await atlas.quality.start_run(QualityTool.CUSTOM)
    other = await atlas.quality.start_run(QualityTool.CUSTOM)
    await atlas.quality.add_findings(
        run.id,
        [
            finding(run.id, Severity.HIGH, category="security", file="a.ex", line=1),
            finding(run.id, Severity.LOW, category="style", file="a.ex", line=2),
            finding(run.id, Severity.CRITICAL, category="security", file="b.ex", line=3),
            finding(run.id, None, category="style", file="b.ex", line=4),
        ],
    )
    await atlas.quality.add_findings(other.id, [finding(other.id, Severity.HIGH)])

    def lines(rows: list[QualityFinding]) -> list[int | None]:
        return [r.line for r in rows]

    assert lines(await atlas.quality.findings_for(run.id)) == [1, 2, 3, 4]
    assert lines(await atlas.quality.findings_for(run.id, severity=Severity.HIGH)) == [1]
    assert lines(await atlas.quality.findings_for(run.id, severity="low")) == [2]
    both = await atlas.quality.findings_for(run.id, severity=[Severity.HIGH, Severity.CRITICAL])
    assert lines(both) == [1, 3]
    assert lines(await atlas.quality.findings_for(run.id, category="style")) == [2, 4]
    assert lines(await atlas.quality.findings_for(run.id, file="b.ex")) == [3, 4]
    assert lines(await atlas.quality.findings_for(run.id, category="security", file="b.ex")) == [3]
    assert await atlas.quality.findings_for(run.id, severity=[]) == []
    rows = await atlas.quality.findings_for(run.id, severity=Severity.CRITICAL)
    assert rows[0].severity is Severity.CRITICAL
    assert rows[0].inserted_at.tzinfo is not None


async def test_latest_run_and_latest_runs(atlas: codeatlas.Atlas) -> None:
    assert await atlas.quality.latest_run(QualityTool.SOBELOW) is None
    assert await atlas.quality.latest_runs() == {}
    old = await atlas.quality.start_run(QualityTool.SOBELOW)
    await atlas.quality.finish(old.id)
    newer = await atlas.quality.start_run(QualityTool.SOBELOW)
    dialyzer = await atlas.quality.start_run(QualityTool.DIALYZER)
    # same started_at (one statement timestamp per transaction is possible): id breaks ties
    latest = await atlas.quality.latest_run(QualityTool.SOBELOW)
    assert latest is not None and latest.id == newer.id
    finished = await atlas.quality.latest_run("sobelow", finished_only=True)
    assert finished is not None and finished.id == old.id

    runs = await atlas.quality.latest_runs()
    assert {tool: run.id for tool, run in runs.items()} == {
        QualityTool.SOBELOW: newer.id,
        QualityTool.DIALYZER: dialyzer.id,
    }
    assert {t: r.id for t, r in (await atlas.quality.latest_runs(finished_only=True)).items()} == {
        QualityTool.SOBELOW: old.id
    }


async def test_findings_are_immutable(atlas: codeatlas.Atlas) -> None:
    run = await atlas.quality.start_run(QualityTool.CUSTOM)
    await atlas.quality.add_findings(run.id, [finding(run.id)])
    (row,) = await atlas.quality.findings_for(run.id)
    with pytest.raises(ImmutableRowError):
        await atlas.quality.findings.update(row.id, UpdateModel())
    with pytest.raises(ImmutableRowError):
        await atlas.executor.execute(
            "UPDATE quality_findings SET message = 'changed' WHERE id = $1", row.id
        )
    assert (await atlas.quality.findings.get(row.id)).message == row.message
    # deleting the run removes its findings (ON DELETE CASCADE)
    assert await atlas.quality.delete(run.id)
    assert await atlas.quality.findings.count() == 0
