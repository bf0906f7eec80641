"""atlas.snapshots: consecutive ids under concurrency, latest, GIN lookups, append-only."""

from __future__ import annotations

import asyncio

import pytest

import codeatlas
from codeatlas.errors import ImmutableRowError, InvalidInputError
from codeatlas.models import CodebaseSnapshotCreate
from codeatlas.models._base import UpdateModel


async def test_take_numbers_snapshots_per_codebase(atlas: codeatlas.Atlas) -> None:
    first = await atlas.snapshots.take(
        "cb",
        metadata={"commit": "abc"},
        summary={"files": 3},
        detected_technologies=["python", "fastapi"],
        features={"auth": {"kind": "jwt"}},
    )
    second = await atlas.snapshots.take("cb")
    other = await atlas.snapshots.take("other")
    assert (first.snapshot_id, second.snapshot_id, other.snapshot_id) == (1, 2, 1)
    assert first.detected_technologies == ["python", "fastapi"]
    assert first.features == {"auth": {"kind": "jwt"}}
    assert first.metadata == {"commit": "abc"}
    assert second.detected_technologies == []
    assert second.features is None
    assert first.inserted_at is not None and first.inserted_at.tzinfo is not None
    assert await atlas.snapshots.get(first.id) == first


async def test_concurrent_takes_get_distinct_consecutive_ids(atlas: codeatlas.Atlas) -> None:
    await atlas.snapshots.take("cb")  # an existing snapshot: the next ones continue from it
    taken = await asyncio.gather(*(atlas.snapshots.take("cb") for _ in range(10)))
    assert sorted(s.snapshot_id for s in taken) == list(range(2, 12))
    # another codebase is numbered independently, also under concurrency
    others = await asyncio.gather(*(atlas.snapshots.take(f"cb{i % 2}") for i in range(6)))
    assert sorted(s.snapshot_id for s in others if s.codebase_id == "cb0") == [1, 2, 3]


async def test_take_inside_a_rolled_back_transaction_leaves_no_gap(atlas: codeatlas.Atlas) -> None:
    with pytest.raises(RuntimeError):
        async with atlas.transaction() as tx:
            assert (await tx.snapshots.take("cb")).snapshot_id == 1
            raise RuntimeError("abort")
    assert (await atlas.snapshots.take("cb")).snapshot_id == 1


async def test_latest(atlas: codeatlas.Atlas) -> None:
    assert await atlas.snapshots.latest("cb") is None
    for _ in range(3):
        await atlas.snapshots.take("cb")
    await atlas.snapshots.take("other")
    latest = await atlas.snapshots.latest("cb")
    assert latest is not None
    assert (latest.codebase_id, latest.snapshot_id) == ("cb", 3)


async def test_with_technology(atlas: codeatlas.Atlas) -> None:
    await atlas.snapshots.take("a", detected_technologies=["python", "django"])
    await atlas.snapshots.take("a", detected_technologies=["python"])
    await atlas.snapshots.take("b", detected_technologies=["rust", "python"])
    await atlas.snapshots.take("b", detected_technologies=["pythonic"])
    found = await atlas.snapshots.with_technology("python")
    assert [(s.codebase_id, s.snapshot_id) for s in found] == [("a", 1), ("a", 2), ("b", 1)]
    in_b = await atlas.snapshots.with_technology("python", codebase_id="b")
    assert [(s.codebase_id, s.snapshot_id) for s in in_b] == [("b", 1)]
    assert await atlas.snapshots.with_technology("django", codebase_id="b") == []
    assert len(await atlas.snapshots.with_technology("python", limit=2)) == 2
    with pytest.raises(InvalidInputError, match="limit"):
        await atlas.snapshots.with_technology("python", limit=0)


async def test_with_features(atlas: codeatlas.Atlas) -> None:
    await atlas.snapshots.take("a", features={"auth": {"kind": "jwt", "mfa": True}, "db": "pg"})
    await atlas.snapshots.take("a", features={"auth": {"kind": "session"}})
    await atlas.snapshots.take("b", features={"auth": {"kind": "jwt"}})
    await atlas.snapshots.take("b")  # no features at all
    jwt = await atlas.snapshots.with_features({"auth": {"kind": "jwt"}})
    assert [(s.codebase_id, s.snapshot_id) for s in jwt] == [("a", 1), ("b", 1)]
    assert [s.codebase_id for s in await atlas.snapshots.with_features({"db": "pg"})] == ["a"]
    jwt_b = await atlas.snapshots.with_features({"auth": {"kind": "jwt"}}, codebase_id="b")
    assert [(s.codebase_id, s.snapshot_id) for s in jwt_b] == [("b", 1)]
    assert await atlas.snapshots.with_features({"auth": {"kind": "oauth"}}) == []
    assert len(await atlas.snapshots.with_features({})) == 3  # every non-null object
    with pytest.raises(InvalidInputError):
        await atlas.snapshots.with_features("auth")  # type: ignore[arg-type]


async def test_with_features_on_arrays(atlas: codeatlas.Atlas) -> None:
    # features is a JSON object in codeatlas' model, but the Elixir app may store arrays
    await atlas.executor.execute(
        "INSERT INTO codebase_snapshots (codebase_id, snapshot_id, features) "
        """VALUES ('legacy', 1, '["graphql", "websocket"]'::jsonb)"""
    )
    found = await atlas.snapshots.with_features(["graphql"])
    assert [s.codebase_id for s in found] == ["legacy"]


async def test_lookups_can_use_the_gin_indexes(atlas: codeatlas.Atlas) -> None:
    await atlas.snapshots.take("a", detected_technologies=["python"], features={"x": 1})
    async with atlas.transaction() as tx:
        await tx.executor.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in await tx.executor.fetch(
                "EXPLAIN SELECT id FROM codebase_snapshots "
                "WHERE detected_technologies @> ARRAY[$1]::varchar[]",
                "python",
            )
        )
        assert "codebase_snapshots_detected_technologies_index" in plan
        plan = "\n".join(
            r[0]
            for r in await tx.executor.fetch(
                "EXPLAIN SELECT id FROM codebase_snapshots WHERE features @> $1::jsonb",
                {"x": 1},
            )
        )
        assert "codebase_snapshots_features_index" in plan


async def test_snapshots_are_immutable(atlas: codeatlas.Atlas) -> None:
    snapshot = await atlas.snapshots.take("cb", summary={"files": 1})
    with pytest.raises(ImmutableRowError):
        await atlas.snapshots.update(snapshot.id, UpdateModel())
    # an upsert onto an existing (codebase_id, snapshot_id) is an update too
    with pytest.raises(ImmutableRowError):
        await atlas.snapshots.upsert(
            CodebaseSnapshotCreate(codebase_id="cb", snapshot_id=1, summary={"files": 2})
        )
    # raw SQL is refused by the trigger, translated from its SQLSTATE
    with pytest.raises(ImmutableRowError):
        await atlas.executor.execute(
            "UPDATE codebase_snapshots SET summary = '{}'::jsonb WHERE id = $1", snapshot.id
        )
    assert (await atlas.snapshots.get(snapshot.id)).summary == {"files": 1}
    # deleting (retention) stays possible
    assert await atlas.snapshots.delete(snapshot.id)
