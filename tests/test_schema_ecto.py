"""Adopting a database the Elixir application's Ecto already migrated (data/ecto_schema.sql).

codeatlas must record itself in its own ledger, leave Ecto's ``schema_migrations`` alone,
keep every row, and end with the same catalog as a fresh codeatlas database (apart from
the timestamp precision Ecto spells differently and Ecto's ledger); a table of another
shape must stop the migration with a message naming it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

import asyncpg
import pytest

from codeatlas.errors import MigrationFailedError
from codeatlas.migrations import Migrator
from test_schema import (
    DATA,
    HEAD_VERSIONS,
    catalog,
    connected,
    doctor,
    ecto_sql,
    ledger_versions,
)

#: Each table's rows as one canonical JSON text (identifiers quoted by the server).
TABLES: Final = """
SELECT relname AS table, format('%I', relname) AS quoted FROM pg_class
 WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1"""
ECTO_LEDGER = """
SELECT ctid::text, xmin::text, version, inserted_at FROM schema_migrations ORDER BY version"""


@pytest.fixture
async def ecto_dsn(empty_dsn: str) -> AsyncIterator[str]:
    """A database as Ecto left it after 20250101000014, with some rows in it."""
    async with connected(empty_dsn) as connection:
        await connection.execute(ecto_sql("2024", "2025", "ledger"))
        await connection.execute((DATA / "ecto_rows.sql").read_text(encoding="utf-8"))
    yield empty_dsn


async def table_rows(dsn: str) -> dict[str, str]:
    rows: dict[str, str] = {}
    async with connected(dsn) as connection:
        for table in await connection.fetch(TABLES):
            # search_tsv is generated from the row's own columns (20261203000001): derived,
            # not data, so it is left out of what must stay the same
            rows[table["table"]] = await connection.fetchval(
                "SELECT coalesce(jsonb_agg(to_jsonb(t) - 'search_tsv'"
                " ORDER BY (to_jsonb(t) - 'search_tsv')::text), '[]')::text"
                f" FROM {table['quoted']} AS t"
            )
    return rows


async def test_ecto_fixture_is_the_schema_ecto_leaves(ecto_dsn: str) -> None:
    """Guard the fixture: no defaults, triggers or functions of codeatlas before it runs."""
    async with connected(ecto_dsn) as connection:
        uuid_defaults = await connection.fetchval(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public'"
            " AND column_default = 'gen_random_uuid()'"
        )
        triggers = await connection.fetchval(
            "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal"
        )
        truncated = await connection.fetch(
            "SELECT indexname FROM pg_indexes WHERE length(indexname) = 63 ORDER BY 1"
        )
        versions = await connection.fetchval("SELECT count(*) FROM schema_migrations")
    assert (uuid_defaults, triggers, versions) == (0, 0, 16)
    assert [r["indexname"] for r in truncated] == [
        "codebase_metadata_codebase_id_cyclomatic_complexity_cognitive_c",
        "vector_similarity_cache_codebase_id_query_vector_hash_target_fi",
    ]


async def test_migrate_adopts_the_ecto_database_and_keeps_every_row(ecto_dsn: str) -> None:
    rows_before = await table_rows(ecto_dsn)
    async with connected(ecto_dsn) as connection:
        ecto_ledger_before = [tuple(r) for r in await connection.fetch(ECTO_LEDGER)]
    assert len(rows_before) == 26 and rows_before["quality_findings"] != "[]"

    result = await Migrator(ecto_dsn).apply()

    assert result.applied == HEAD_VERSIONS
    assert await ledger_versions(ecto_dsn) == HEAD_VERSIONS
    rows_after = await table_rows(ecto_dsn)
    # every table Ecto made keeps exactly its rows; codeatlas adds only its own tables
    assert {t: rows_after[t] for t in rows_before} == rows_before
    assert set(rows_after) - set(rows_before) == {
        "codeatlas_schema_migrations",
        "codeatlas_vector_indexes",
        "codeatlas_semantic_cache_hits",
    }
    async with connected(ecto_dsn) as connection:
        # the rows Ecto wrote got their full-text column when it was added
        for table, query in (("code_embeddings", "defmodule"), ("codebase_metadata", "run")):
            assert (
                await connection.fetchval(
                    f"SELECT count(*) FROM {table}"
                    " WHERE search_tsv @@ codeatlas_code_tsquery('english', $1)",
                    query,
                )
                == 1
            )
        # same rows, same tuple versions: Ecto's ledger was not even rewritten
        assert [tuple(r) for r in await connection.fetch(ECTO_LEDGER)] == ecto_ledger_before
        # the indexes Ecto built were adopted, not rebuilt: no build record claims them
        assert await connection.fetchval("SELECT count(*) FROM codeatlas_vector_indexes") == 0
        assert await connection.fetchval("SELECT count(*) FROM graph_types") == 4
    # a second start finds nothing to do
    assert (await Migrator(ecto_dsn).apply()).applied == []


def _normalised(dump: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """Drop Ecto's ledger; spell Ecto's ``timestamp`` as codeatlas' ``timestamp(6)``."""

    def keep(row: tuple[Any, ...]) -> bool:
        return not any(isinstance(v, str) and v.startswith("schema_migrations") for v in row[:2])

    def spell(value: Any) -> Any:
        if isinstance(value, list):
            return tuple(value)
        if value == "timestamp without time zone":
            return "timestamp(6) without time zone"
        return value

    return {
        name: sorted(tuple(spell(v) for v in row) for row in rows if keep(row))
        for name, rows in dump.items()
    }


async def test_adopted_catalog_equals_a_fresh_codeatlas_catalog(
    ecto_dsn: str, migrated_dsn: str
) -> None:
    await Migrator(ecto_dsn).apply()
    adopted, fresh = _normalised(await catalog(ecto_dsn)), _normalised(await catalog(migrated_dsn))
    # the one difference: migration 20261204000002 makes the semantic cache's index HNSW
    # only where codeatlas built it; an adopted database keeps the IVFFlat index Ecto built
    cache_index = "idx_semantic_cache_query_embedding_vector"
    differing: dict[str, tuple[list[Any], list[Any]]] = {}
    for part in fresh:
        missing = sorted(set(fresh[part]) - set(adopted[part]))
        extra = sorted(set(adopted[part]) - set(fresh[part]))
        if missing or extra:
            differing[part] = (missing, extra)
        assert all(cache_index in repr(item) for item in missing + extra), part
    assert "hnsw" in repr(differing) and "lists=100" in repr(differing), differing


async def test_inserts_without_ids_or_timestamps_work_after_adoption(ecto_dsn: str) -> None:
    async with connected(ecto_dsn) as connection:
        with pytest.raises(asyncpg.NotNullViolationError):
            await connection.execute("INSERT INTO rules (name) VALUES ('before')")
    await Migrator(ecto_dsn).apply()
    async with connected(ecto_dsn) as connection:
        rule = await connection.fetchrow(
            "INSERT INTO rules (name) VALUES ('after') RETURNING id, inserted_at, updated_at"
        )
        assert rule is not None and None not in tuple(rule)
        statements = [
            "INSERT INTO rule_executions (rule_id, correlation_id, confidence, decision,"
            " execution_time_ms) VALUES ($1, gen_random_uuid(), 0.5, 'escalated', 1)"
            " RETURNING id, executed_at",
            "INSERT INTO rule_evolution_proposals (rule_id, proposer_agent_id, proposed_patterns,"
            " evolution_reasoning) VALUES ($1, 'agent', ARRAY['{}'::jsonb], 'why')"
            " RETURNING id, inserted_at, updated_at",
        ]
        for statement in statements:
            row = await connection.fetchrow(statement, rule["id"])
            assert row is not None and None not in tuple(row), statement
        for statement in [
            "INSERT INTO code_files (file_path, project_name) VALUES ('b.ex', 'p')"
            " RETURNING id, inserted_at, updated_at",
            "INSERT INTO quality_runs (tool, status) VALUES ('custom', 'ok')"
            " RETURNING id, inserted_at, updated_at",
            "INSERT INTO technology_templates (identifier, category, template)"
            " VALUES ('t', 'c', '{}') RETURNING id, inserted_at, updated_at",
            "INSERT INTO git_agent_sessions (agent_id, workspace_path) VALUES ('a2', '/w')"
            " RETURNING id, inserted_at, updated_at",
            "INSERT INTO git_merge_history (branch, status) VALUES ('b', 'success')"
            " RETURNING id, inserted_at, updated_at",
        ]:
            row = await connection.fetchrow(statement)
            assert row is not None and None not in tuple(row), statement
        # and the triggers are there: the adopted snapshots are append-only now
        with pytest.raises(asyncpg.PostgresError) as caught:
            await connection.execute("UPDATE codebase_snapshots SET summary = '{}'")
        assert caught.value.sqlstate == "CA001"


async def test_doctor_reports_the_ecto_ledger(ecto_dsn: str, migrated_dsn: str) -> None:
    await Migrator(ecto_dsn).apply()
    code, output = await doctor(ecto_dsn)
    assert code == 0, output
    assert "Ecto ledger (schema_migrations)" in output
    line = next(x for x in output.splitlines() if "Ecto ledger (schema_migrations)" in x)
    assert "present" in line
    assert f"{len(HEAD_VERSIONS)} applied, 0 pending" in output
    _code, fresh_output = await doctor(migrated_dsn)
    line = next(x for x in fresh_output.splitlines() if "Ecto ledger (schema_migrations)" in x)
    assert "absent" in line


# The table SemanticCodeSearch.create_unified_schema/1 creates at run time (reference §2.8).
RUNTIME_CODEBASE_REGISTRY = """
CREATE TABLE IF NOT EXISTS codebase_registry (
    id SERIAL PRIMARY KEY,
    codebase_id VARCHAR(255) NOT NULL UNIQUE,
    codebase_path VARCHAR(500) NOT NULL,
    codebase_name VARCHAR(255) NOT NULL,
    description TEXT,
    language VARCHAR(50),
    framework VARCHAR(100),
    last_analyzed TIMESTAMP,
    analysis_status VARCHAR(50) DEFAULT 'pending',
    metadata JSONB DEFAULT '{}',
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW()
)"""


async def test_incompatible_existing_table_fails_the_migration_naming_it(empty_dsn: str) -> None:
    async with connected(empty_dsn) as connection:
        await connection.execute(ecto_sql("2024"))
        await connection.execute(RUNTIME_CODEBASE_REGISTRY)
        await connection.execute(
            "INSERT INTO codebase_registry (codebase_id, codebase_path, codebase_name)"
            " VALUES ('cb', '/cb', 'CB')"
        )
    migrator = Migrator(empty_dsn)
    with pytest.raises(MigrationFailedError) as caught:
        await migrator.apply()
    message = str(caught.value)
    assert "20250101000007" in message
    assert "codebase_registry" in message
    for problem in (
        "column id is integer, expected bigint",
        "column last_analyzed is timestamp without time zone",
        "column inserted_at is missing",
        "column updated_at is timestamp without time zone",
    ):
        assert problem in message
    cause = caught.value.__cause__
    assert isinstance(cause, asyncpg.PostgresError) and cause.sqlstate == "CA002"

    # the migrations before it are recorded; nothing of 07 is, in the ledger or the schema
    assert await ledger_versions(empty_dsn) == [v for v in HEAD_VERSIONS if v < 20250101000007]
    async with connected(empty_dsn) as connection:
        leftovers = await connection.fetch(
            "SELECT relname FROM pg_class WHERE relname IN"
            " ('codebase_metadata', 'graph_nodes', 'idx_codebase_metadata_vector')"
        )
        assert leftovers == []
        assert await connection.fetchval("SELECT count(*) FROM codeatlas_vector_indexes") == 0
        assert await connection.fetchval("SELECT count(*) FROM codebase_registry") == 1

    # once the operator moves the table aside, the same migration goes through
    async with connected(empty_dsn) as connection:
        await connection.execute("ALTER TABLE codebase_registry RENAME TO codebase_registry_old")
    assert (await migrator.apply()).applied == [v for v in HEAD_VERSIONS if v >= 20250101000007]


async def test_indexes_built_on_existing_rows_record_the_row_count(empty_dsn: str) -> None:
    """An Ecto database at 2024 with rules: 08 builds idx_rules_embedding_vector on them."""
    async with connected(empty_dsn) as connection:
        await connection.execute(ecto_sql("2024"))
        await connection.execute(
            "INSERT INTO rules (id, name, embedding, inserted_at, updated_at)"
            " SELECT gen_random_uuid(), 'r' || i, array_fill(i::real, ARRAY[768])::vector,"
            "        now(), now()"
            "   FROM generate_series(1, 3) AS i"
        )
    await Migrator(empty_dsn).apply()
    async with connected(empty_dsn) as connection:
        rows = await connection.fetch(
            "SELECT index_name, rows_at_build FROM codeatlas_vector_indexes"
        )
    built = {row["index_name"]: row["rows_at_build"] for row in rows}
    assert len(built) == 9
    assert built.pop("idx_rules_embedding_vector") == 3
    assert set(built.values()) == {0}
