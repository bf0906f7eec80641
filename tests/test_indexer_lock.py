"""One indexing run per codebase at a time: concurrent runs wait, or fail typed, never mix."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg
import pytest

import codeatlas
from codeatlas.errors import (
    ConfigurationError,
    ConnectionLostError,
    InvalidInputError,
    LockNotAvailableError,
)
from codeatlas.indexer import Indexer, IndexReport, Progress
from codeatlas.indexer.lock import INDEXER_LOCK_CLASS, codebase_lock

FILES = 24

_LOCK_PID = """
SELECT pid FROM pg_locks
 WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid::bigint = $1::bigint
   AND objid::bigint = hashtext($2)::bigint & 4294967295"""


def small_tree(root: Path) -> Path:
    """Write a package of FILES modules that import each other."""
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text('"""The package."""\n')
    for i in range(FILES - 1):
        imports = "from . import m0\n" if i else ""
        body = f'"""Module {i}."""\n{imports}\n\ndef f{i}(x):\n    return x + {i}\n'
        (root / "pkg" / f"m{i}.py").write_text(body)
    return root / "pkg"


def rows(report: IndexReport) -> dict[str, int]:
    """The report's stored rows but snapshots (one per run, so they count the runs)."""
    return {t: n for t, n in report.rows_stored.items() if t != "codebase_snapshots"}


def indexer(atlas: codeatlas.Atlas, **options: object) -> Indexer:
    return Indexer(atlas, workers=0, maintain_indexes=False, **options)  # type: ignore[arg-type]


async def stored(atlas: codeatlas.Atlas, codebase_id: str) -> dict[str, int]:
    """Rows per table of *codebase_id*, counted afresh (not taken from a report)."""
    files = await atlas.code.inventory(codebase_id)
    return {
        "code_files": len(files),
        "code_embeddings": sum(f.chunks for f in files.values()),
        "code_locations": await atlas.code.locations.count({"project": codebase_id}),
        "codebase_metadata": await atlas.codebases.count({"codebase_id": codebase_id}),
        "graph_nodes": await atlas.graph.count({"codebase_id": codebase_id}),
        "graph_edges": await atlas.graph.edges.count({"codebase_id": codebase_id}),
    }


async def test_two_runs_on_one_codebase_at_once_are_serialised(
    atlas: codeatlas.Atlas, tmp_path: Path
) -> None:
    tree = small_tree(tmp_path)
    solo = await indexer(atlas).index(tree, codebase_id="solo")
    assert solo.files_indexed == FILES

    first_started = asyncio.Event()
    second_events: list[Progress] = []

    def first_progress(event: Progress) -> None:
        if event.stage == "scan":
            first_started.set()  # the first run holds the lock from before its scan

    async def second() -> IndexReport:
        await first_started.wait()
        return await indexer(atlas, on_progress=second_events.append).index(
            tree, codebase_id="shared"
        )

    one, two = await asyncio.gather(
        indexer(atlas, on_progress=first_progress).index(tree, codebase_id="shared"), second()
    )
    # the second waited for the first, then found everything up to date
    waits = [e for e in second_events if e.stage == "lock" and e.detail]
    assert len(waits) == 1 and "waiting for another indexer (server pid " in str(waits[0].detail)
    assert second_events[0].stage == "lock" and second_events[1] == Progress("lock", 1, 1)
    assert (one.files_indexed, one.files_unchanged) == (FILES, 0)
    assert (two.files_indexed, two.files_unchanged) == (0, FILES)
    assert two.seconds["lock"] > 0 and not two.graph_rebuilt
    expected = await stored(atlas, "solo")
    assert expected["graph_edges"] > 0 and expected["code_embeddings"] >= FILES
    assert await stored(atlas, "shared") == expected
    assert rows(two) == rows(one) == rows(solo)


async def test_two_atlases_racing_on_one_codebase_end_with_a_single_runs_rows(
    atlas: codeatlas.Atlas, migrated_dsn: str, tmp_path: Path
) -> None:
    # two clients with pools of their own (as two processes would be), started together
    tree = small_tree(tmp_path)
    solo = await indexer(atlas).index(tree, codebase_id="solo")
    async with codeatlas.connect(migrated_dsn, migrate=False) as other:
        reports = await asyncio.gather(
            *(indexer(a).index(tree, codebase_id="raced") for a in (atlas, other, atlas, other))
        )
    assert sum(r.files_indexed for r in reports) == FILES  # each file indexed once, in all
    assert sum(r.files_unchanged for r in reports) == 3 * FILES
    assert await stored(atlas, "raced") == await stored(atlas, "solo")
    assert all(rows(r) == rows(solo) for r in reports if not r.files_indexed)


async def test_a_run_that_may_not_wait_gets_a_typed_error_and_writes_nothing(
    atlas: codeatlas.Atlas, tmp_path: Path
) -> None:
    tree = small_tree(tmp_path)
    async with codebase_lock(atlas, "busy") as held:
        assert held.codebase_id == "busy"
        for timeout in (0, 0.2):
            with pytest.raises(LockNotAvailableError) as caught:
                await indexer(atlas, lock_timeout=timeout).index(tree, codebase_id="busy")
            assert caught.value.retryable
            assert "another indexer is indexing codebase 'busy' (server pid" in str(caught.value)
        # another codebase is not held up
        other = await indexer(atlas, lock_timeout=0).index(tree, codebase_id="free")
        assert other.files_indexed == FILES
    assert await atlas.codebases.registry.count({"codebase_id": "busy"}) == 0
    assert await stored(atlas, "busy") == dict.fromkeys(await stored(atlas, "busy"), 0)
    # released with the block: the run goes through at once
    report = await indexer(atlas, lock_timeout=0).index(tree, codebase_id="busy")
    assert report.files_indexed == FILES


async def test_the_lock_ends_with_a_cancelled_or_failed_run(
    atlas: codeatlas.Atlas, tmp_path: Path
) -> None:
    tree = small_tree(tmp_path)
    writing = asyncio.Event()

    def on_progress(event: Progress) -> None:
        if event.stage == "write" and event.done > 0:
            writing.set()

    run = asyncio.create_task(
        indexer(atlas, batch_files=1, on_progress=on_progress).index(tree, codebase_id="c")
    )
    await writing.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert (await stored(atlas, "c"))["code_files"] > 0  # it had committed a batch
    with pytest.raises(InvalidInputError, match="not a directory"):
        await indexer(atlas, lock_timeout=0).index(tmp_path / "missing", codebase_id="c")
    report = await indexer(atlas, lock_timeout=0).index(tree, codebase_id="c")
    assert report.files_indexed + report.files_unchanged == FILES
    async with atlas.executor.acquire() as connection:
        assert await connection.fetchval(_LOCK_PID, INDEXER_LOCK_CLASS, "c") is None


async def test_a_run_whose_lock_connection_dies_stops_and_the_next_run_converges(
    atlas: codeatlas.Atlas, tmp_path: Path
) -> None:
    tree = small_tree(tmp_path)
    solo = await indexer(atlas).index(tree, codebase_id="solo")
    killed: list[bool] = []

    async def kill_lock_holder() -> None:
        async with atlas.executor.acquire() as connection:
            pid = await connection.fetchval(_LOCK_PID, INDEXER_LOCK_CLASS, "lost")
            killed.append(await connection.fetchval("SELECT pg_terminate_backend($1)", pid))

    tasks: list[asyncio.Task[None]] = []

    def on_progress(event: Progress) -> None:
        if event.stage == "write" and event.done == 1 and not tasks:
            tasks.append(asyncio.create_task(kill_lock_holder()))

    with pytest.raises(ConnectionLostError, match="indexer lock of codebase 'lost' was lost"):
        await indexer(atlas, batch_files=1, on_progress=on_progress).index(tree, codebase_id="lost")
    await asyncio.gather(*tasks)
    assert killed == [True]
    report = await indexer(atlas).index(tree, codebase_id="lost")
    assert report.files_indexed + report.files_unchanged == FILES
    assert await stored(atlas, "lost") == await stored(atlas, "solo")
    assert rows(report) == rows(solo)


async def test_the_held_lock_holds_no_snapshot_so_index_builds_go_on(
    atlas: codeatlas.Atlas, migrated_dsn: str
) -> None:
    # CREATE INDEX CONCURRENTLY waits for every transaction with an older snapshot, and the
    # run's own index maintenance builds that way while the run holds the lock
    async with codebase_lock(atlas, "snap") as held:
        await held.check()
        async with atlas.executor.acquire() as connection:
            pid = await connection.fetchval(_LOCK_PID, INDEXER_LOCK_CLASS, "snap")
            xmin = await connection.fetchval(
                "SELECT backend_xmin::text FROM pg_stat_activity WHERE pid = $1", pid
            )
        assert pid is not None and xmin is None
        direct = await asyncpg.connect(migrated_dsn)
        try:
            build = direct.execute(
                "CREATE INDEX CONCURRENTLY lock_test_idx ON codebase_registry (codebase_name)"
            )
            await asyncio.wait_for(build, 60)  # a hang guard: it waits on nothing
            assert await direct.fetchval("SELECT to_regclass('lock_test_idx')::text")
        finally:
            await direct.close()


async def test_bad_lock_options_and_ids_are_refused_before_sql(
    atlas: codeatlas.Atlas, migrated_dsn: str, tmp_path: Path
) -> None:
    tree = small_tree(tmp_path)
    for bad in (-1, float("nan"), float("inf"), "5", True):
        with pytest.raises(InvalidInputError, match="lock_timeout"):
            Indexer(atlas, lock_timeout=bad)  # type: ignore[arg-type]
    for cid in ("a\x00b", "x" * 256, "\udcff"):
        with pytest.raises(InvalidInputError, match="codebase_id"):
            await indexer(atlas).index(tree, codebase_id=cid)
    settings = codeatlas.Settings(pool_min_size=1, pool_max_size=1)
    async with codeatlas.connect(migrated_dsn, migrate=False, settings=settings) as one:
        with pytest.raises(ConfigurationError, match="at least 2 connections"):
            await indexer(one).index(tree, codebase_id="one")
        assert await one.codebases.registry.count({"codebase_id": "one"}) == 0


async def test_index_tree_with_lock_timeout_zero_says_who_holds_the_codebase(
    atlas: codeatlas.Atlas, migrated_dsn: str, tmp_path: Path
) -> None:
    tree = small_tree(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEATLAS_")}
    env["CODEATLAS_DATA_DIR"] = str(tmp_path / "no-server")  # never the embedded one
    args = ("index-tree", str(tree), "--dsn", migrated_dsn, "--codebase-id", "cli")
    async with codebase_lock(atlas, "cli"):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "codeatlas.cli",
            *args,
            "--lock-timeout",
            "0",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        _, err = await asyncio.wait_for(process.communicate(), 120)
    lines = err.decode().strip().splitlines()
    assert process.returncode == 1 and len(lines) == 1, err
    assert lines[0].startswith("error: another indexer is indexing codebase 'cli' (server pid")
