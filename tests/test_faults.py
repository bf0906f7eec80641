"""Fault injection: terminated backends and server restarts under load from 8 tasks.

A dedicated embedded server (its own data directory) is terminated into and restarted while
tasks search, insert one row, insert batches (executemany and COPY) and run transactions.
Every failure must be a CodeAtlasError, no operation may hang, no acknowledged write may be
missing, no batch may be half-written, and the same Atlas must work afterwards. Run with
``-s`` to see the counts.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import numpy as np
import numpy.typing as npt
import pytest

import codeatlas
from codeatlas.errors import CodeAtlasError, OutcomeUnknownError
from codeatlas.models import VectorSearchCreate

DIM = 1536
WORKERS = 8
OPERATION_TIMEOUT = 60.0  # generous: a hang fails the test instead of stalling it
SIZES = {"m": 5, "c": 70, "t": 3}  # executemany batch, COPY batch, transaction


@dataclass
class Tally:
    operations: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    raw: list[BaseException] = field(default_factory=list)
    hangs: int = 0
    acknowledged: dict[str, int] = field(default_factory=dict)  # prefix -> rows
    unknown: dict[str, int] = field(default_factory=dict)
    faults: Counter[str] = field(default_factory=Counter)


_VECTORS = np.random.default_rng(0).standard_normal((256, DIM)).astype(np.float32)
_VECTORS /= np.linalg.norm(_VECTORS, axis=1, keepdims=True)


def vec(i: int) -> npt.NDArray[np.float32]:
    row: npt.NDArray[np.float32] = _VECTORS[i % len(_VECTORS)]
    return row


def rows(prefix: str, n: int) -> list[VectorSearchCreate]:
    return [
        VectorSearchCreate(
            codebase_id="faults",
            file_path=f"{prefix}/{i}",
            content_type="code",
            content=prefix,
            vector_embedding=vec(i),
        )
        for i in range(n)
    ]


@pytest.fixture
async def own_server_atlas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[codeatlas.Atlas]:
    """An Atlas on an embedded server of its own, so restarting it disturbs no other test."""
    monkeypatch.delenv("CODEATLAS_DSN", raising=False)
    monkeypatch.setenv("CODEATLAS_DATA_DIR", str(tmp_path / "pgdata"))
    async with codeatlas.connect(min_size=2, max_size=6) as atlas:
        yield atlas


async def worker(atlas: codeatlas.Atlas, number: int, stop: asyncio.Event, tally: Tally) -> None:
    rng = random.Random(number)
    serial = 0

    async def search() -> None:
        await atlas.vector_search.search_similar(vec(rng.randrange(256)), 10)

    async def single(prefix: str) -> None:
        await atlas.vector_search.insert(rows(prefix, 1)[0])

    async def batch(prefix: str) -> None:
        await atlas.vector_search.insert_many(rows(prefix, SIZES[prefix[0]]))

    async def transaction(prefix: str) -> None:
        async with atlas.transaction() as tx:
            await tx.vector_search.insert_many(rows(prefix, 3)[:2])
            await tx.vector_search.search_similar(vec(serial), 5)
            await tx.vector_search.insert(rows(prefix, 3)[2])

    kinds: list[tuple[str, Callable[[str], Awaitable[Any]] | None, int]] = [
        ("search", None, 0),
        ("s", single, 1),
        ("m", batch, SIZES["m"]),
        ("c", batch, SIZES["c"]),
        ("t", transaction, SIZES["t"]),
    ]
    while not stop.is_set():
        serial += 1
        kind, call, size = rng.choice(kinds)
        prefix = f"{kind}{number}-{serial}"
        tally.operations[kind] += 1
        try:
            await asyncio.wait_for(search() if call is None else call(prefix), OPERATION_TIMEOUT)
        except OutcomeUnknownError:
            tally.failures["OutcomeUnknownError"] += 1
            tally.unknown[prefix] = size
        except CodeAtlasError as exc:
            tally.failures[type(exc).__name__] += 1
        except TimeoutError:
            tally.hangs += 1
        except Exception as exc:
            tally.raw.append(exc)
        else:
            if call is not None:
                tally.acknowledged[prefix] = size
            continue
        await asyncio.sleep(rng.uniform(0.005, 0.02))  # no busy loop while the server is down


async def terminate_backends(admin_dsn: str, database: str) -> int:
    admin = await asyncpg.connect(admin_dsn)
    try:
        killed: int = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        return killed
    finally:
        await admin.close()


async def test_terminations_and_restarts_under_load(own_server_atlas: codeatlas.Atlas) -> None:
    atlas = own_server_atlas
    server = atlas.server
    assert server is not None
    database = await atlas.executor.fetchval("SELECT current_database()")
    await atlas.vector_search.insert_many(rows("seed", 200))
    tally = Tally()
    stop = asyncio.Event()
    rng = random.Random(9)
    started = time.monotonic()
    tasks = [asyncio.create_task(worker(atlas, n, stop, tally)) for n in range(WORKERS)]
    try:
        await asyncio.sleep(0.5)
        for _ in range(20):  # terminate every backend of the pool, repeatedly
            tally.faults["backends terminated"] += await terminate_backends(
                server.dsn("postgres"), database
            )
            tally.faults["termination rounds"] += 1
            await asyncio.sleep(rng.uniform(0.1, 0.3))
        for _ in range(2):  # fast-mode restarts: every connection dies at once
            await anyio.to_thread.run_sync(server.restart)
            tally.faults["server restarts"] += 1
            await asyncio.sleep(1.0)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), OPERATION_TIMEOUT)
    elapsed = time.monotonic() - started

    # the same Atlas recovers
    assert await atlas.vector_search.count({"codebase_id": "faults"}) >= 200
    found = Counter(
        r["prefix"]
        for r in await atlas.executor.fetch(
            "SELECT split_part(file_path, '/', 1) AS prefix FROM vector_search"
        )
    )
    missing = {p: n for p, n in tally.acknowledged.items() if found[p] != n}
    partial = {p: c for p, c in found.items() if p != "seed" and c != SIZES.get(p[0], 1)}
    unknown_written = sum(1 for p in tally.unknown if found[p])
    operations = sum(tally.operations.values())
    print(
        f"\nfault injection ({elapsed:.1f} s, {WORKERS} tasks): faults {dict(tally.faults)}; "
        f"operations {operations} {dict(tally.operations)}; "
        f"acknowledged writes {len(tally.acknowledged)}; failures by type "
        f"{dict(tally.failures)}; outcome unknown {len(tally.unknown)} "
        f"(of which written {unknown_written}); raw errors {len(tally.raw)}; hangs {tally.hangs}; "
        f"acknowledged-and-missing {len(missing)}; partial batches {len(partial)}"
    )
    assert tally.raw == [], tally.raw[:5]
    assert tally.hangs == 0
    assert missing == {}
    assert partial == {}
    assert tally.faults["backends terminated"] > 0 and tally.faults["server restarts"] == 2
    assert sum(tally.failures.values()) > 0  # the faults did reach the operations
    assert len(tally.acknowledged) > 0
