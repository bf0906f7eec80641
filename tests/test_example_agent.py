"""examples/agent_service.py: workers drain the merge queue, record history and rule executions."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from uuid import UUID

import codeatlas
from codeatlas.models import ExecutionDecision, ExecutionOutcome, MergeStatus, SessionStatus

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "agent_service.py"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("agent_service", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the body runs
    spec.loader.exec_module(module)
    return module


agent_service = _load_example()


async def _wait_until(predicate_sql: str, atlas: codeatlas.Atlas, timeout: float = 30) -> None:
    # another process changes the database: polling is the only way to see it
    async with asyncio.timeout(timeout):
        while True:
            if await atlas.executor.fetchval(predicate_sql):
                return
            await asyncio.sleep(0.05)


async def test_three_workers_drain_twenty_merges(atlas: codeatlas.Atlas) -> None:
    branches = [f"feature/task-{n:02d}" for n in range(20)]
    for branch in branches:
        await atlas.git.enqueue_merge(branch, "planner")
    config = agent_service.ServiceConfig(
        workers=3, merge_seconds=0.02, poll_interval=0.05, exit_when_idle=True
    )
    rule_id = await agent_service.ensure_rule(atlas)
    assert await agent_service.ensure_rule(atlas) == rule_id  # found, not created twice
    service = agent_service.AgentService(atlas, config, rule_id)
    async with asyncio.timeout(60):
        report = await service.run(asyncio.Event())

    workers = {f"merge-agent-{n}" for n in (1, 2, 3)}
    assert report.total == 20 and report.lost_claims == 0
    assert set(report.merges) <= workers and len(report.merges) >= 2  # the work was shared
    assert await atlas.git.pending.count() == 0

    history = await atlas.git.history.recent(limit=100)
    assert sorted(h.branch for h in history) == branches  # each merge landed exactly once
    executions = {e.id: e for e in (await atlas.rules.executions.list(limit=100)).items}
    assert len(executions) == 20
    for row in history:
        assert row.details is not None
        worker = row.details["worker"]
        expected = agent_service.simulate_merge(row.branch, worker)
        assert (row.status, row.merge_commit) == (expected.status, expected.merge_commit)
        assert row.agent_id == "planner"  # carried over from the pending row
        execution = executions[UUID(row.details["rule_execution_id"])]
        assert execution.rule_id == rule_id and execution.context["branch"] == row.branch
        merged = row.status == MergeStatus.MERGED
        assert execution.outcome == (
            ExecutionOutcome.SUCCESS if merged else ExecutionOutcome.FAILURE
        )
        assert execution.outcome_recorded_at is not None
        confident = agent_service.gate_confidence(row.branch) >= agent_service.AUTONOMY_THRESHOLD
        assert execution.decision == (
            ExecutionDecision.AUTONOMOUS if confident else ExecutionDecision.COLLABORATIVE
        )
    conflicts = sum(h.status == MergeStatus.CONFLICT for h in history)
    assert conflicts == 3 and report.statuses["conflict"] == 3  # task-11, -13, -15

    stats = await atlas.rules.stats(rule_id, since=timedelta(hours=1))
    assert (stats.executions, stats.with_outcome, stats.successes) == (20, 20, 17)

    sessions = (await atlas.git.list(limit=10)).items
    assert {s.agent_id for s in sessions} == workers
    assert all(s.status == SessionStatus.CLOSED and s.branch is None for s in sessions)


async def test_stop_event_lets_the_merge_in_flight_finish(atlas: codeatlas.Atlas) -> None:
    await atlas.git.enqueue_merge("feature/slow", "planner")
    config = agent_service.ServiceConfig(workers=2, merge_seconds=0.5, poll_interval=0.05)
    service = agent_service.AgentService(atlas, config, await agent_service.ensure_rule(atlas))
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    # the merge is in flight once its worker's session names the branch
    await _wait_until(
        "SELECT EXISTS (SELECT 1 FROM git_agent_sessions WHERE branch = 'feature/slow')", atlas
    )
    stop.set()
    async with asyncio.timeout(10):
        report = await running
    assert report.total == 1
    assert [h.branch for h in await atlas.git.history.recent()] == ["feature/slow"]
    # a merge queued after the stop is left for the next run
    await atlas.git.enqueue_merge("feature/late", "planner")
    await asyncio.sleep(0.2)
    assert await atlas.git.pending.count() == 1
    sessions = (await atlas.git.list()).items
    assert len(sessions) == 2 and all(s.status == SessionStatus.CLOSED for s in sessions)


async def _start(dsn: str, *args: str, **env: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        *args,
        env={**os.environ, "CODEATLAS_DSN": dsn, "AGENT_POLL_SECONDS": "0.05", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_sigterm_stops_the_service_gracefully(
    atlas: codeatlas.Atlas, migrated_dsn: str
) -> None:
    process = await _start(migrated_dsn, "--enqueue", "6", AGENT_WORKERS="2")
    try:
        await _wait_until("SELECT count(*) = 6 FROM git_merge_history", atlas, timeout=60)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert "SIGTERM: finishing merges in flight" in stderr.decode()
    assert await atlas.git.pending.count() == 0
    sessions = (await atlas.git.list()).items
    assert len(sessions) == 2 and all(s.status == SessionStatus.CLOSED for s in sessions)


async def test_second_signal_cancels_and_gives_the_claim_back(
    atlas: codeatlas.Atlas, migrated_dsn: str
) -> None:
    process = await _start(
        migrated_dsn, "--enqueue", "1", AGENT_WORKERS="1", AGENT_MERGE_SECONDS="60"
    )
    try:
        await _wait_until(
            "SELECT EXISTS (SELECT 1 FROM git_agent_sessions WHERE branch IS NOT NULL)",
            atlas,
            timeout=60,
        )
        process.send_signal(signal.SIGINT)
        await asyncio.sleep(0.2)
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 130, stderr.decode()
    (pending,) = (await atlas.git.pending.list()).items
    assert pending.meta is not None and "claimed_by" not in pending.meta  # free to claim now
    assert await atlas.git.history.count() == 0
    (execution,) = (await atlas.rules.executions.list()).items
    assert execution.outcome is None  # the gate ran, the merge never finished
    (session,) = (await atlas.git.list()).items
    assert session.status == SessionStatus.CLOSED
