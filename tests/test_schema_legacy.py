"""Legacy rows carried forward: what the seed's 11-13 drop, codeatlas keeps.

The database starts as the Elixir 2024 migrations left it (data/ecto_schema.sql "2024"
section plus data/ecto_legacy_tables.sql), filled with rows. After ``migrate`` every legacy
row must be found in its new home, mapped as the headers of migrations 20250101000011,
..12 and ..13 document, and the legacy tables must survive as ``<name>_legacy`` with their
rows intact (empty ones are dropped); ``codeatlas doctor`` lists them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import asyncpg
import pytest

from codeatlas.errors import DataLossRefusedError
from codeatlas.migrations import Migrator
from test_schema import DATA, HEAD_VERSIONS, connected, doctor, ecto_sql, ledger_versions

LEGACY_TABLES: Final = ["technology_knowledge", "detection_events", "git_sessions", "git_commits"]
NEW_TABLES: Final = [
    "technology_patterns",
    "technology_templates",
    "codebase_snapshots",
    "git_agent_sessions",
    "git_merge_history",
]


def uid(n: int) -> uuid.UUID:
    return uuid.UUID(int=(0x0000_0000_0000_4000_8000 << 48) | n)


def at(day: str) -> datetime:
    return datetime.fromisoformat(day)


# float32-exact values, so the embedding survives its trip through JSON bit for bit
EMBEDDING_1: Final = [((i % 17) - 8) / 16 for i in range(768)]
EMBEDDING_3: Final = [(i % 5) / 4 for i in range(768)]


@dataclass(frozen=True)
class Knowledge:
    id: uuid.UUID
    technology: str
    category: str
    name: str
    description: str | None
    template: str | None
    examples: list[str] | None
    best_practices: str | None
    antipatterns: list[str] | None
    metadata: dict[str, Any] | None
    embedding: list[float] | None
    inserted_at: datetime
    updated_at: datetime


KNOWLEDGE: Final = [
    Knowledge(
        uid(0xA1),
        "elixir",
        "framework",
        "phoenix",
        "Web framework",
        "mix phx.new {{name}}",
        ["mix phx.new demo", "mix phx.new api --no-html"],
        "Keep controllers thin; use contexts.",
        ["fat controllers"],
        {"source": "docs", "stars": 20000},
        EMBEDDING_1,
        at("2024-02-01 10:00:00"),
        at("2024-02-02 10:00:00"),
    ),
    # same (technology, category) as the first, and no template
    Knowledge(
        uid(0xA2),
        "elixir",
        "framework",
        "ecto",
        "Database wrapper",
        None,
        [],
        None,
        ["n+1 queries"],
        {},
        None,
        at("2024-02-01 11:00:00"),
        at("2024-02-05 09:00:00"),
    ),
    # same technology/name as the first: the two template identifiers would collide
    Knowledge(
        uid(0xA3),
        "elixir",
        "language",
        "phoenix",
        "Phoenix as seen from the language side",
        "defmodule {{Name}} do\nend",
        ["iex -S mix"],
        "Pattern match in function heads.",
        [],
        None,
        EMBEDDING_3,
        at("2024-02-03 08:30:00"),
        at("2024-02-03 08:30:00"),
    ),
    Knowledge(
        uid(0xA4),
        "python",
        "framework",
        "django",
        None,
        "django-admin startproject {{name}}",
        None,
        None,
        None,
        {"tags": ["web", "orm"]},
        None,
        at("2024-02-04 12:00:00"),
        at("2024-02-06 12:00:00"),
    ),
]


@dataclass(frozen=True)
class Event:
    id: uuid.UUID
    event_type: str
    detector: str
    confidence: float
    data: dict[str, Any]
    metadata: dict[str, Any] | None
    inserted_at: datetime
    updated_at: datetime


EVENTS: Final = [
    Event(
        uid(0xB1),
        "technology_detected",
        "language_detector",
        0.95,
        {"languages": ["elixir", "rust"], "files": 12},
        {"codebase_id": "repo-a", "run": 1},
        at("2024-03-01 10:00:00"),
        at("2024-03-01 10:05:00"),
    ),
    Event(
        uid(0xB2),
        "technology_detected",
        "framework_detector",
        0.5,
        {"frameworks": ["phoenix"]},
        {"codebase_id": "repo-a"},
        at("2024-03-02 10:00:00"),
        at("2024-03-02 10:00:00"),
    ),
    # same time as the first: the smaller id comes first
    Event(
        uid(0xB0),
        "scan_started",
        "scanner",
        1.0,
        {"depth": 3},
        {"codebase_id": "repo-a"},
        at("2024-03-01 10:00:00"),
        at("2024-03-01 10:00:00"),
    ),
    # no codebase in metadata: the one in the payload is used
    Event(
        uid(0xB3),
        "pattern_detected",
        "pattern_detector",
        0.7,
        {"codebase_id": "repo-b", "patterns": ["genserver"]},
        {},
        at("2024-03-03 10:00:00"),
        at("2024-03-03 10:00:00"),
    ),
    # no codebase anywhere, and no metadata at all
    Event(
        uid(0xB4),
        "manual_note",
        "human",
        0.25,
        {"note": "checked by hand", "nested": {"ok": True, "list": [1, None]}},
        None,
        at("2024-03-04 10:00:00"),
        at("2024-03-05 10:00:00"),
    ),
]


@dataclass(frozen=True)
class Session:
    id: uuid.UUID
    session_type: str
    branch_name: str
    base_branch: str | None
    status: str
    metadata: dict[str, Any] | None
    inserted_at: datetime
    updated_at: datetime


SESSIONS: Final = [
    Session(
        uid(0xC1),
        "feature",
        "feat/login",
        "main",
        "active",
        {"workspace_path": "/ws/c1", "correlation_id": "corr-1", "agent": "claude"},
        at("2024-04-01 10:00:00"),
        at("2024-04-01 12:00:00"),
    ),
    Session(
        uid(0xC2),
        "hotfix",
        "fix/crash",
        None,
        "merged",
        None,
        at("2024-04-02 10:00:00"),
        at("2024-04-03 10:00:00"),
    ),
]


@dataclass(frozen=True)
class Commit:
    id: uuid.UUID
    session_id: uuid.UUID | None
    commit_hash: str
    message: str
    author: str | None
    files_changed: list[str] | None
    metadata: dict[str, Any] | None
    inserted_at: datetime
    updated_at: datetime = field(default=datetime(2024, 4, 9, 9, 9, 9))


COMMITS: Final = [
    Commit(
        uid(0xD1),
        uid(0xC1),
        "a1b2c3d4",
        "Add login\n\nWith tests.",
        "ann",
        ["lib/login.ex", "test/login_test.exs"],
        {"ci": "green"},
        at("2024-04-01 11:00:00"),
    ),
    Commit(uid(0xD2), None, "d4e5f6a7", "Orphan commit", None, [], None, at("2024-04-02 09:00:00")),
    Commit(
        uid(0xD3), uid(0xC2), "0f9e8d7c", "Fix crash", "bob", None, {}, at("2024-04-02 11:00:00")
    ),
]


def iso(value: datetime) -> str:
    return value.isoformat()


def jsonb(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


async def build_legacy_database(
    dsn: str,
    *,
    knowledge: list[Knowledge],
    events: list[Event],
    sessions: list[Session],
    commits: list[Commit],
) -> None:
    """Create the 2024 tables as Ecto did and fill the legacy ones with *rows*."""
    async with connected(dsn) as connection:
        await connection.execute(ecto_sql("2024"))
        await connection.execute((DATA / "ecto_legacy_tables.sql").read_text(encoding="utf-8"))
        await connection.executemany(
            "INSERT INTO technology_knowledge (id, technology, category, name, description,"
            " template, examples, best_practices, antipatterns, metadata, embedding,"
            " inserted_at, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::real[]::vector,"
            " $12, $13)",
            [
                (
                    k.id,
                    k.technology,
                    k.category,
                    k.name,
                    k.description,
                    k.template,
                    k.examples,
                    k.best_practices,
                    k.antipatterns,
                    jsonb(k.metadata),
                    k.embedding,
                    k.inserted_at,
                    k.updated_at,
                )
                for k in knowledge
            ],
        )
        await connection.executemany(
            "INSERT INTO detection_events (id, event_type, detector, confidence, data, metadata,"
            " inserted_at, updated_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8)",
            [
                (
                    e.id,
                    e.event_type,
                    e.detector,
                    e.confidence,
                    jsonb(e.data),
                    jsonb(e.metadata),
                    e.inserted_at,
                    e.updated_at,
                )
                for e in events
            ],
        )
        await connection.executemany(
            "INSERT INTO git_sessions (id, session_type, branch_name, base_branch, status,"
            " metadata, inserted_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)",
            [
                (
                    s.id,
                    s.session_type,
                    s.branch_name,
                    s.base_branch,
                    s.status,
                    jsonb(s.metadata),
                    s.inserted_at,
                    s.updated_at,
                )
                for s in sessions
            ],
        )
        await connection.executemany(
            "INSERT INTO git_commits (id, session_id, commit_hash, message, author, files_changed,"
            " metadata, inserted_at, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)",
            [
                (
                    c.id,
                    c.session_id,
                    c.commit_hash,
                    c.message,
                    c.author,
                    c.files_changed,
                    jsonb(c.metadata),
                    c.inserted_at,
                    c.updated_at,
                )
                for c in commits
            ],
        )


@pytest.fixture
async def legacy_dsn(empty_dsn: str) -> AsyncIterator[str]:
    """An Elixir 2024 database whose four legacy tables hold the rows above."""
    await build_legacy_database(
        empty_dsn, knowledge=KNOWLEDGE, events=EVENTS, sessions=SESSIONS, commits=COMMITS
    )
    yield empty_dsn


async def dump(connection: asyncpg.Connection, table: str) -> list[dict[str, Any]]:
    """Every row of *table* (a name from this module) as JSON, in a stable order."""
    text = await connection.fetchval(
        f"SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]')::text"
        f" FROM {table} AS t"
    )
    rows: list[dict[str, Any]] = json.loads(text)
    return rows


async def existing(connection: asyncpg.Connection, names: list[str]) -> list[str]:
    rows = await connection.fetch(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        " AND relkind = 'r' AND relname = ANY($1::text[]) ORDER BY 1",
        names,
    )
    return [row["relname"] for row in rows]


# -- the expected mapping, written from the migration headers --------------------------------


def knowledge_entry(k: Knowledge) -> dict[str, Any]:
    return {
        "id": str(k.id),
        "name": k.name,
        "description": k.description,
        "template": k.template,
        "examples": k.examples,
        "best_practices": k.best_practices,
        "antipatterns": k.antipatterns,
        "metadata": k.metadata,
        "embedding": k.embedding,
        "inserted_at": iso(k.inserted_at),
        "updated_at": iso(k.updated_at),
    }


def expected_patterns() -> dict[tuple[str, str], dict[str, Any]]:
    groups: dict[tuple[str, str], list[Knowledge]] = {}
    for k in KNOWLEDGE:
        groups.setdefault((k.technology, k.category), []).append(k)
    return {
        key: {
            "extended_metadata": {
                "legacy_technology_knowledge": [
                    knowledge_entry(k) for k in sorted(entries, key=lambda k: (k.inserted_at, k.id))
                ]
            },
            "created_at": min(k.inserted_at for k in entries),
            "updated_at": max(k.updated_at for k in entries),
        }
        for key, entries in groups.items()
    }


def expected_templates() -> dict[str, dict[str, Any]]:
    with_template = [k for k in KNOWLEDGE if k.template is not None]
    names = [(k.technology, k.name) for k in with_template]
    result: dict[str, dict[str, Any]] = {}
    for k in with_template:
        identifier = f"{k.technology}/{k.name}"
        if names.count((k.technology, k.name)) > 1:
            identifier += f"#{k.id}"
        result[identifier] = {
            "category": k.category,
            "version": None,
            "source": "technology_knowledge",
            "template": {
                "technology": k.technology,
                "category": k.category,
                "name": k.name,
                "description": k.description,
                "template": k.template,
                "examples": k.examples,
                "best_practices": k.best_practices,
                "antipatterns": k.antipatterns,
            },
            "metadata": {**(k.metadata or {}), "legacy_id": str(k.id)},
            "checksum": None,
            "inserted_at": k.inserted_at,
            "updated_at": k.updated_at,
        }
    return result


def event_codebase(e: Event) -> str:
    return str(
        (e.metadata or {}).get("codebase_id")
        or e.data.get("codebase_id")
        or "legacy-detection-events"
    )


def expected_snapshots() -> dict[tuple[str, int], dict[str, Any]]:
    result: dict[tuple[str, int], dict[str, Any]] = {}
    numbered: dict[str, int] = {}
    for e in sorted(EVENTS, key=lambda e: (e.inserted_at, e.id)):
        codebase = event_codebase(e)
        numbered[codebase] = numbered.get(codebase, 0) + 1
        result[(codebase, numbered[codebase])] = {
            "metadata": {
                **(e.metadata or {}),
                "event_type": e.event_type,
                "detector": e.detector,
                "confidence": e.confidence,
                "data": e.data,
                "legacy": {
                    "table": "detection_events",
                    "id": str(e.id),
                    "updated_at": iso(e.updated_at),
                },
            },
            "summary": None,
            "detected_technologies": [],
            "features": None,
            "inserted_at": e.inserted_at,
        }
    return result


def expected_agent_sessions() -> dict[str, dict[str, Any]]:
    return {
        f"migrated_{s.id}": {
            "branch": s.branch_name,
            "workspace_path": (s.metadata or {}).get("workspace_path", "unknown"),
            "correlation_id": (s.metadata or {}).get("correlation_id"),
            "status": s.status,
            "meta": {
                **(s.metadata or {}),
                "session_type": s.session_type,
                "base_branch": s.base_branch,
                "legacy": {"table": "git_sessions", "id": str(s.id)},
            },
            "inserted_at": s.inserted_at,
            "updated_at": s.updated_at,
        }
        for s in SESSIONS
    }


def expected_merge_history() -> dict[str, dict[str, Any]]:
    sessions = {s.id: s for s in SESSIONS}
    result: dict[str, dict[str, Any]] = {}
    for c in COMMITS:
        session = sessions.get(c.session_id) if c.session_id else None
        result[c.commit_hash] = {
            "branch": session.branch_name if session else "unknown",
            "agent_id": f"migrated_{session.id}" if session else None,
            "task_id": None,
            "correlation_id": None,
            "status": "unknown",
            "details": {
                **(c.metadata or {}),
                "legacy_git_commit": {
                    "id": str(c.id),
                    "session_id": str(c.session_id) if c.session_id else None,
                    "message": c.message,
                    "author": c.author,
                    "files_changed": c.files_changed,
                },
            },
            "inserted_at": c.inserted_at,
            "updated_at": c.updated_at,
        }
    return result


def loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


# -- tests --------------------------------------------------------------------------------


async def test_every_legacy_row_arrives_in_its_new_table(legacy_dsn: str) -> None:
    result = await Migrator(legacy_dsn).apply()
    assert result.applied == HEAD_VERSIONS

    async with connected(legacy_dsn) as connection:
        patterns = await connection.fetch(
            "SELECT technology_name, technology_type, extended_metadata, created_at, updated_at,"
            " version_pattern, file_patterns, detection_count, success_rate"
            " FROM technology_patterns"
        )
        templates = await connection.fetch(
            "SELECT identifier, category, version, source, template, metadata, checksum,"
            " inserted_at, updated_at FROM technology_templates"
        )
        snapshots = await connection.fetch(
            "SELECT codebase_id, snapshot_id, metadata, summary, detected_technologies,"
            " features, inserted_at FROM codebase_snapshots"
        )
        sessions = await connection.fetch(
            "SELECT agent_id, branch, workspace_path, correlation_id, status, meta,"
            " inserted_at, updated_at FROM git_agent_sessions"
        )
        merges = await connection.fetch(
            "SELECT merge_commit, branch, agent_id, task_id, correlation_id, status, details,"
            " inserted_at, updated_at FROM git_merge_history"
        )
        pending = await connection.fetchval("SELECT count(*) FROM git_pending_merges")

    got_patterns = {
        (r["technology_name"], r["technology_type"]): {
            "extended_metadata": loads(r["extended_metadata"]),
            "created_at": r["created_at"],
            "updated_at": r["updated_at"],
        }
        for r in patterns
    }
    assert len(patterns) == 3
    assert got_patterns == expected_patterns()
    # what the legacy rows did not have takes the column defaults
    assert {(r["version_pattern"], tuple(r["file_patterns"])) for r in patterns} == {(None, ())}
    assert {(r["detection_count"], r["success_rate"]) for r in patterns} == {(0, 1.0)}

    got_templates = {
        r["identifier"]: {
            "category": r["category"],
            "version": r["version"],
            "source": r["source"],
            "template": loads(r["template"]),
            "metadata": loads(r["metadata"]),
            "checksum": r["checksum"],
            "inserted_at": r["inserted_at"],
            "updated_at": r["updated_at"],
        }
        for r in templates
    }
    assert sorted(got_templates) == sorted(
        ["python/django", f"elixir/phoenix#{uid(0xA1)}", f"elixir/phoenix#{uid(0xA3)}"]
    )
    assert got_templates == expected_templates()

    got_snapshots = {
        (r["codebase_id"], r["snapshot_id"]): {
            "metadata": loads(r["metadata"]),
            "summary": loads(r["summary"]),
            "detected_technologies": list(r["detected_technologies"]),
            "features": loads(r["features"]),
            "inserted_at": r["inserted_at"],
        }
        for r in snapshots
    }
    assert sorted(got_snapshots) == [
        ("legacy-detection-events", 1),
        ("repo-a", 1),
        ("repo-a", 2),
        ("repo-a", 3),
        ("repo-b", 1),
    ]
    assert got_snapshots == expected_snapshots()
    assert got_snapshots[("repo-a", 1)]["metadata"]["legacy"]["id"] == str(uid(0xB0))

    got_sessions = {
        r["agent_id"]: {
            "branch": r["branch"],
            "workspace_path": r["workspace_path"],
            "correlation_id": r["correlation_id"],
            "status": r["status"],
            "meta": loads(r["meta"]),
            "inserted_at": r["inserted_at"],
            "updated_at": r["updated_at"],
        }
        for r in sessions
    }
    assert got_sessions == expected_agent_sessions()

    got_merges = {
        r["merge_commit"]: {
            "branch": r["branch"],
            "agent_id": r["agent_id"],
            "task_id": r["task_id"],
            "correlation_id": r["correlation_id"],
            "status": r["status"],
            "details": loads(r["details"]),
            "inserted_at": r["inserted_at"],
            "updated_at": r["updated_at"],
        }
        for r in merges
    }
    assert got_merges == expected_merge_history()
    assert pending == 0


async def test_legacy_tables_are_kept_as_legacy_with_their_rows(legacy_dsn: str) -> None:
    async with connected(legacy_dsn) as connection:
        before = {table: await dump(connection, table) for table in LEGACY_TABLES}
    assert [len(before[t]) for t in LEGACY_TABLES] == [4, 5, 2, 3]

    await Migrator(legacy_dsn).apply()

    async with connected(legacy_dsn) as connection:
        assert await existing(connection, LEGACY_TABLES) == []
        legacy = [f"{t}_legacy" for t in LEGACY_TABLES]
        assert await existing(connection, legacy) == sorted(legacy)
        for table in LEGACY_TABLES:
            assert await dump(connection, f"{table}_legacy") == before[table], table
        # the commits still point at their sessions
        assert (
            await connection.fetchval(
                "SELECT confrelid::regclass::text FROM pg_constraint"
                " WHERE conrelid = 'git_commits_legacy'::regclass AND contype = 'f'"
            )
            == "git_sessions_legacy"
        )


async def test_doctor_lists_the_legacy_tables_with_row_counts(legacy_dsn: str) -> None:
    await Migrator(legacy_dsn).apply()
    code, output = await doctor(legacy_dsn)
    assert code == 0, output
    lines = {
        table: next((x for x in output.splitlines() if f"legacy table {table}" in x), "")
        for table in [f"{t}_legacy" for t in LEGACY_TABLES]
    }
    assert "4 rows kept" in lines["technology_knowledge_legacy"], output
    assert "5 rows kept" in lines["detection_events_legacy"], output
    assert "2 rows kept" in lines["git_sessions_legacy"], output
    assert "3 rows kept" in lines["git_commits_legacy"], output


async def test_empty_legacy_tables_are_dropped(empty_dsn: str) -> None:
    await build_legacy_database(empty_dsn, knowledge=[], events=[], sessions=[], commits=[])
    await Migrator(empty_dsn).apply()
    async with connected(empty_dsn) as connection:
        names = [*LEGACY_TABLES, *(f"{t}_legacy" for t in LEGACY_TABLES)]
        assert await existing(connection, names) == []
        for table in NEW_TABLES:
            assert await dump(connection, table) == [], table
    _code, output = await doctor(empty_dsn)
    assert "legacy table" not in output


async def test_only_legacy_tables_holding_rows_are_kept(empty_dsn: str) -> None:
    # knowledge and a session-less commit hold rows; events and sessions are empty, but
    # git_sessions must stay because the kept commits' foreign key points at it
    await build_legacy_database(
        empty_dsn, knowledge=KNOWLEDGE[:1], events=[], sessions=[], commits=COMMITS[1:2]
    )
    await Migrator(empty_dsn).apply()
    async with connected(empty_dsn) as connection:
        names = [*LEGACY_TABLES, *(f"{t}_legacy" for t in LEGACY_TABLES)]
        assert await existing(connection, names) == [
            "git_commits_legacy",
            "git_sessions_legacy",
            "technology_knowledge_legacy",
        ]
        assert await connection.fetchval("SELECT count(*) FROM git_merge_history") == 1
        assert await connection.fetchval("SELECT count(*) FROM technology_templates") == 1
        assert (
            await connection.fetchval(
                "SELECT identifier FROM technology_templates"  # no collision, no suffix
            )
            == "elixir/phoenix"
        )


async def test_rollback_renames_the_legacy_tables_back(legacy_dsn: str) -> None:
    async with connected(legacy_dsn) as connection:
        before = {table: await dump(connection, table) for table in LEGACY_TABLES}
    migrator = Migrator(legacy_dsn)
    await migrator.apply()
    async with connected(legacy_dsn) as connection:
        carried = {table: await dump(connection, table) for table in NEW_TABLES}

    with pytest.raises(DataLossRefusedError):
        await migrator.rollback(to=20250101000010)
    result = await migrator.rollback(to=20250101000010, allow_data_loss=True)
    assert result.reverted == [v for v in reversed(HEAD_VERSIONS) if v > 20250101000010]
    assert await ledger_versions(legacy_dsn) == [v for v in HEAD_VERSIONS if v <= 20250101000010]
    async with connected(legacy_dsn) as connection:
        assert await existing(connection, [f"{t}_legacy" for t in LEGACY_TABLES]) == []
        assert await existing(connection, NEW_TABLES) == []
        for table in LEGACY_TABLES:
            assert await dump(connection, table) == before[table], table

    # migrating again carries the same rows forward the same way
    await migrator.apply()
    async with connected(legacy_dsn) as connection:
        assert {table: await dump(connection, table) for table in NEW_TABLES} == carried
