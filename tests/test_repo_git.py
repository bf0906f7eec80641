"""atlas.git: agent sessions, the merge queue (claims, leases), outcome recording, history."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta

import pytest

import codeatlas
from codeatlas import Settings
from codeatlas.errors import (
    ConstraintViolationError,
    InvalidInputError,
    NotFoundError,
    StateConflictError,
)
from codeatlas.models import GitPendingMergeCreate, MergeStatus, SessionStatus
from codeatlas.repositories.git import CLAIM_KEYS


async def test_session_lifecycle(atlas: codeatlas.Atlas) -> None:
    git = atlas.git
    opened = await git.open_session("agent-1", "/work/a1", branch="feat/x", meta={"k": 1})
    assert (opened.status, opened.branch, opened.meta) == (SessionStatus.ACTIVE, "feat/x", {"k": 1})

    updated = await git.update_session("agent-1", branch="feat/y", status=SessionStatus.IDLE)
    assert (updated.id, updated.branch, updated.status) == (opened.id, "feat/y", "idle")
    assert updated.workspace_path == "/work/a1" and updated.meta == {"k": 1}
    assert updated.updated_at >= opened.updated_at

    closed = await git.close_session("agent-1")
    assert closed.status is SessionStatus.CLOSED
    reopened = await git.open_session("agent-1", "/work/a1-new")
    assert reopened.id == opened.id  # one session per agent
    assert (reopened.status, reopened.workspace_path, reopened.branch) == (
        SessionStatus.ACTIVE,
        "/work/a1-new",
        None,
    )
    assert await git.count() == 1

    with pytest.raises(NotFoundError):
        await git.update_session("nobody", branch="b")
    with pytest.raises(NotFoundError):
        await git.close_session("nobody")
    with pytest.raises(InvalidInputError):
        await git.update_session("agent-1", workspace_path="x" * 256)


async def test_active_sessions(atlas: codeatlas.Atlas) -> None:
    git = atlas.git
    for name in ("c", "a", "b", "d", "e"):
        await git.open_session(name, f"/work/{name}")
    await git.update_session("b", status=SessionStatus.RULES)  # Elixir's agents on main
    await git.update_session("d", status=SessionStatus.IDLE)
    await git.close_session("e")
    active = await git.active_sessions()
    assert [s.agent_id for s in active] == ["a", "b", "c"]


async def test_enqueue_upserts_by_branch(atlas: codeatlas.Atlas) -> None:
    git = atlas.git
    first = await git.enqueue_merge("feat/x", "agent-1", pr_number=1, meta={"note": "a"})
    again = await git.enqueue_merge("feat/x", "agent-2", pr_number=2, task_id="t-9")
    assert again.id == first.id
    assert (again.agent_id, again.pr_number, again.task_id, again.meta) == (
        "agent-2",
        2,
        "t-9",
        {},
    )
    assert await git.pending.count() == 1
    with pytest.raises(InvalidInputError):
        await git.enqueue_merge("feat/z", "agent-1", meta={"claimed_by": "forged"})
    with pytest.raises(InvalidInputError):
        await git.enqueue_merge("b" * 256, "agent-1")


async def test_claims_go_oldest_first_and_once(atlas: codeatlas.Atlas) -> None:
    git = atlas.git
    merges = [await git.enqueue_merge(f"feat/{i}", "agent") for i in range(3)]
    claimed = [await git.claim_next_merge(f"w{i}") for i in range(3)]
    assert [m.id for m in claimed if m] == [m.id for m in merges]
    assert await git.claim_next_merge("w9") is None  # all held
    holder = claimed[0]
    assert holder is not None and holder.meta is not None
    assert holder.meta["claimed_by"] == "w0"
    lease_until = datetime.fromisoformat(holder.meta["lease_until"])
    claimed_at = datetime.fromisoformat(holder.meta["claimed_at"])
    assert lease_until - claimed_at == timedelta(minutes=5)

    # re-enqueueing a claimed branch updates it but keeps the worker's claim
    requeued = await git.enqueue_merge("feat/0", "agent", pr_number=7, meta={"x": 1})
    assert requeued.meta == {"x": 1, **{k: holder.meta[k] for k in CLAIM_KEYS}}
    assert await git.claim_next_merge("w9") is None

    with pytest.raises(InvalidInputError):
        await git.claim_next_merge("w1", lease=timedelta(0))
    with pytest.raises(InvalidInputError):
        await git.claim_next_merge("")


async def test_an_abandoned_claim_is_claimable_after_its_lease(atlas: codeatlas.Atlas) -> None:
    git = atlas.git
    merge = await git.enqueue_merge("feat/x", "agent")
    crashed = await git.claim_next_merge("crashed", lease=timedelta(milliseconds=300))
    assert crashed is not None and crashed.id == merge.id
    assert await git.claim_next_merge("rescuer") is None  # lease still running
    await asyncio.sleep(0.4)
    rescued = await git.claim_next_merge("rescuer")
    assert rescued is not None and rescued.id == merge.id
    assert rescued.meta is not None and rescued.meta["claimed_by"] == "rescuer"

    # the crashed worker came back: its claim is gone
    with pytest.raises(StateConflictError) as lost:
        await git.record_merge_outcome(merge.id, MergeStatus.MERGED, worker_id="crashed")
    assert lost.value.state == "claimed"
    with pytest.raises(StateConflictError):
        await git.release(merge.id, "crashed")
    assert await git.pending.count() == 1 and await git.history.count() == 0

    done = await git.record_merge_outcome(merge.id, MergeStatus.MERGED, worker_id="rescuer")
    assert done.branch == "feat/x"


async def test_release_hands_the_merge_back(atlas: codeatlas.Atlas) -> None:
    git = atlas.git
    merge = await git.enqueue_merge("feat/x", "agent", meta={"keep": True})
    assert await git.claim_next_merge("w1") is not None
    released = await git.release(merge.id, "w1")
    assert released.meta == {"keep": True}
    with pytest.raises(StateConflictError) as unclaimed:
        await git.release(merge.id, "w1")
    assert unclaimed.value.state == "unclaimed"
    again = await git.claim_next_merge("w2")
    assert again is not None and again.id == merge.id
    with pytest.raises(NotFoundError):
        await git.release(merge.id + 1000, "w2")


async def test_record_merge_outcome_moves_the_row(atlas: codeatlas.Atlas) -> None:
    git = atlas.git
    merge = await git.enqueue_merge(
        "feat/x", "agent-1", pr_number=4, task_id="task-1", correlation_id="corr-1"
    )
    claim = await git.claim_next_merge("w1")
    assert claim is not None
    history = await git.record_merge_outcome(
        merge.id,
        MergeStatus.CONFLICT,
        merge_commit="abc123",
        details={"files": ["a.py"]},
        worker_id="w1",
    )
    assert (history.branch, history.agent_id, history.task_id, history.correlation_id) == (
        "feat/x",
        "agent-1",
        "task-1",
        "corr-1",
    )
    assert (history.status, history.merge_commit, history.details) == (
        MergeStatus.CONFLICT,
        "abc123",
        {"files": ["a.py"]},
    )
    assert await git.pending.find(merge.id) is None
    assert await git.history.get(history.id) == history
    with pytest.raises(NotFoundError):  # already recorded
        await git.record_merge_outcome(merge.id, MergeStatus.MERGED)
    with pytest.raises(NotFoundError):
        await git.record_merge_outcome(merge.id, MergeStatus.MERGED, worker_id="w1")

    # without worker_id an unclaimed merge can be recorded directly
    direct = await git.enqueue_merge("feat/y", "agent-2")
    recorded = await git.record_merge_outcome(direct.id, MergeStatus.SUCCESS)
    assert recorded.details == {} and recorded.merge_commit is None
    with pytest.raises(InvalidInputError):
        await git.record_merge_outcome(direct.id, MergeStatus.SUCCESS, merge_commit="c" * 256)


async def test_a_failing_history_insert_leaves_the_pending_row(atlas: codeatlas.Atlas) -> None:
    git = atlas.git
    merge = await git.enqueue_merge("feat/x", "agent")
    # a test-owned constraint on this throwaway database makes the INSERT half fail
    await atlas.executor.execute(
        "ALTER TABLE git_merge_history ADD CONSTRAINT test_no_errors CHECK (status <> 'error')"
    )
    with pytest.raises(ConstraintViolationError):
        await git.record_merge_outcome(merge.id, MergeStatus.ERROR)
    assert await git.pending.get(merge.id) == merge
    assert await git.history.count() == 0
    moved = await git.record_merge_outcome(merge.id, MergeStatus.FAILURE)
    assert moved.status is MergeStatus.FAILURE and await git.pending.count() == 0


async def test_history_filters_newest_first(atlas: codeatlas.Atlas) -> None:
    git = atlas.git
    for i, (branch, agent) in enumerate([("b1", "x"), ("b2", "x"), ("b1", "y"), ("b3", "y")]):
        merge = await git.enqueue_merge(f"{branch}-{i}", agent)
        await git.record_merge_outcome(merge.id, MergeStatus.MERGED, details={"n": i})
    everything = await git.history.recent()
    assert [h.details for h in everything] == [{"n": 3}, {"n": 2}, {"n": 1}, {"n": 0}]
    assert [h.details for h in await git.history.recent(agent_id="x")] == [{"n": 1}, {"n": 0}]
    assert [h.details for h in await git.history.recent(branch="b1-2")] == [{"n": 2}]
    assert [h.details for h in await git.history.recent(branch="b1-0", agent_id="y")] == []
    assert len(await git.history.recent(limit=3)) == 3


async def test_twenty_workers_drain_two_hundred_merges(migrated_dsn: str) -> None:
    settings = Settings(pool_min_size=20, pool_max_size=20)
    async with codeatlas.connect(migrated_dsn, migrate=False, settings=settings) as atlas:
        git = atlas.git
        await git.pending.insert_many(
            [
                GitPendingMergeCreate(branch=f"feat/{i:03}", agent_id=f"agent-{i % 7}")
                for i in range(200)
            ]
        )
        claims: Counter[int] = Counter()
        by_worker: Counter[str] = Counter()

        async def worker(name: str) -> None:
            while (merge := await git.claim_next_merge(name)) is not None:
                claims[merge.id] += 1
                by_worker[name] += 1
                await asyncio.sleep(0)  # let the other workers in while this one "merges"
                await git.record_merge_outcome(
                    merge.id, MergeStatus.MERGED, merge_commit=f"c{merge.id}", worker_id=name
                )

        await asyncio.gather(*(worker(f"w{i}") for i in range(20)))
        assert len(claims) == 200 and set(claims.values()) == {1}
        assert sum(by_worker.values()) == 200 and len(by_worker) > 1
        assert await git.pending.count() == 0
        assert await git.history.count() == 200
        commits = await atlas.executor.fetchval(
            "SELECT count(DISTINCT merge_commit) FROM git_merge_history"
        )
        assert commits == 200
