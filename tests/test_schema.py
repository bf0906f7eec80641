"""The shipped schema against the seed and the column-level reference, on a real server.

Expected values are written out from /work/shared/schema-reference.md (Ecto's DDL) plus the
codeatlas additions each migration header documents: UUID and timestamp defaults, UTC
``now()`` instead of the server's local ``NOW()``, STORAGE PLAIN for vectors, the
append-only and similarity-cache triggers. Run with ``-s`` to see the migration timings.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import asyncpg
import pytest

import codeatlas
from codeatlas.errors import DataLossRefusedError, ImmutableRowError
from codeatlas.migrations import Migrator

BEFORE_SEED: Final = 20240101000005  # the last base migration before the seed's 07
HEAD_VERSIONS: Final = [
    20240101000001,
    20240101000002,
    20240101000004,
    20240101000005,
    20250101000007,
    20250101000008,
    20250101000009,
    20250101000010,
    20250101000011,
    20250101000012,
    20250101000013,
    20250101000014,
    20260101000001,
    20261202000001,
    20261203000001,
    20261204000001,
    20261204000002,
]


@asynccontextmanager
async def connected(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(dsn)
    try:
        yield connection
    finally:
        await connection.close()


DATA: Final = Path(__file__).parent / "data"
_SECTION: Final = re.compile(r"^-- ecto:(\w+)", re.MULTILINE)


def ecto_sql(*sections: str) -> str:
    """Return the named sections of data/ecto_schema.sql (``2024``, ``2025``, ``ledger``)."""
    text = (DATA / "ecto_schema.sql").read_text(encoding="utf-8")
    markers = list(_SECTION.finditer(text))
    bodies = {
        m.group(1): text[m.end() : markers[i + 1].start() if i + 1 < len(markers) else None]
        for i, m in enumerate(markers)
    }
    return "\n".join(bodies[name] for name in sections)


async def doctor(dsn: str) -> tuple[int, str]:
    """Run ``codeatlas doctor`` as the command line does; return its exit code and output."""
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("codeatlas")),
        "doctor",
        "--dsn",
        dsn,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},  # no wrapping, no escapes
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


# -- the seed's three verification queries -------------------------------------------------

SEED_TABLES: Final = (
    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
)
SEED_VECTOR_INDEXES: Final = (
    "SELECT indexname, tablename FROM pg_indexes WHERE indexname LIKE '%vector%'"
)
SEED_FOREIGN_KEYS: Final = """
SELECT
    tc.table_name,
    kcu.column_name,
    ccu.table_name AS foreign_table_name,
    ccu.column_name AS foreign_column_name
FROM information_schema.table_constraints AS tc
JOIN information_schema.key_column_usage AS kcu
  ON tc.constraint_name = kcu.constraint_name
JOIN information_schema.constraint_column_usage AS ccu
  ON ccu.constraint_name = tc.constraint_name
WHERE tc.constraint_type = 'FOREIGN KEY'
ORDER BY tc.table_name"""

BASE_TABLES: Final = [
    "code_embeddings",
    "code_files",
    "code_locations",
    "rag_documents",
    "rag_feedback",
    "rag_queries",
    "rules",
    "semantic_cache",
]
EXPECTED_TABLES: Final = sorted(
    [
        *BASE_TABLES,
        # 07
        "codebase_metadata",
        "codebase_registry",
        "graph_edges",
        "graph_nodes",
        "graph_types",
        "vector_search",
        "vector_similarity_cache",
        # 09
        "rule_evolution_proposals",
        "rule_executions",
        # 10
        "quality_findings",
        "quality_runs",
        # 11
        "technology_patterns",
        "technology_templates",
        # 12
        "codebase_snapshots",
        # 13
        "git_agent_sessions",
        "git_merge_history",
        "git_pending_merges",
        # codeatlas' own
        "codeatlas_schema_migrations",
        "codeatlas_vector_indexes",
        "codeatlas_semantic_cache_hits",
    ]
)

#: Every index whose name contains "vector": the nine IVFFlat indexes, and the btree and
#: primary-key indexes of vector_search, vector_similarity_cache and codeatlas_vector_indexes.
EXPECTED_VECTOR_NAMED_INDEXES: Final = {
    ("idx_codebase_metadata_vector", "codebase_metadata"),
    ("idx_graph_nodes_vector", "graph_nodes"),
    ("idx_vector_search_embedding", "vector_search"),
    ("idx_rules_embedding_vector", "rules"),
    ("idx_code_embeddings_embedding_vector", "code_embeddings"),
    ("idx_code_locations_embedding_vector", "code_locations"),
    ("idx_rag_documents_embedding_vector", "rag_documents"),
    ("idx_rag_queries_query_embedding_vector", "rag_queries"),
    ("idx_semantic_cache_query_embedding_vector", "semantic_cache"),
    ("vector_search_pkey", "vector_search"),
    ("vector_search_codebase_id_file_path_content_type_index", "vector_search"),
    ("vector_search_codebase_id_index", "vector_search"),
    ("vector_similarity_cache_pkey", "vector_similarity_cache"),
    ("vector_similarity_cache_codebase_id_query_vector_hash_target_fi", "vector_similarity_cache"),
    ("vector_similarity_cache_codebase_id_index", "vector_similarity_cache"),
    ("vector_similarity_cache_query_vector_hash_index", "vector_similarity_cache"),
    ("codeatlas_vector_indexes_pkey", "codeatlas_vector_indexes"),
    # codeatlas' full-text index on vector_search (20261203000001) matches '%vector%' too
    ("idx_vector_search_search_tsv", "vector_search"),
}

EXPECTED_FOREIGN_KEYS: Final = [
    ("code_embeddings", "code_file_id", "code_files", "id"),
    ("quality_findings", "run_id", "quality_runs", "id"),
    ("rag_feedback", "document_id", "rag_documents", "id"),
    ("rag_feedback", "query_id", "rag_queries", "id"),
    ("rule_evolution_proposals", "rule_id", "rules", "id"),
    ("rule_executions", "rule_id", "rules", "id"),
    ("rules", "parent_id", "rules", "id"),
]
#: (constraint, ON DELETE) of each foreign key, as Ecto names and writes them.
EXPECTED_FK_ACTIONS: Final = {
    "code_embeddings_code_file_id_fkey": "CASCADE",
    "quality_findings_run_id_fkey": "CASCADE",
    "rag_feedback_document_id_fkey": "CASCADE",
    "rag_feedback_query_id_fkey": "CASCADE",
    "rule_evolution_proposals_rule_id_fkey": "CASCADE",
    "rule_executions_rule_id_fkey": "CASCADE",
    "rules_parent_id_fkey": "SET NULL",
}


async def test_seed_verification_queries_return_exactly_the_expected_sets(
    migrated_dsn: str,
) -> None:
    async with connected(migrated_dsn) as connection:
        tables = [row["tablename"] for row in await connection.fetch(SEED_TABLES)]
        vector_indexes = [tuple(row) for row in await connection.fetch(SEED_VECTOR_INDEXES)]
        foreign_keys = [tuple(row) for row in await connection.fetch(SEED_FOREIGN_KEYS)]
        rules = await connection.fetch(
            "SELECT constraint_name, delete_rule"
            "  FROM information_schema.referential_constraints"
            " WHERE constraint_schema = 'public'"
        )
        actions = {r["constraint_name"]: r["delete_rule"] for r in rules}
    assert len(EXPECTED_TABLES) == 28
    assert tables == EXPECTED_TABLES
    assert len(vector_indexes) == len(EXPECTED_VECTOR_NAMED_INDEXES)
    assert set(vector_indexes) == EXPECTED_VECTOR_NAMED_INDEXES
    # ORDER BY table_name only: rows of one table may come in either order
    assert sorted(foreign_keys) == EXPECTED_FOREIGN_KEYS
    assert [fk[0] for fk in foreign_keys] == [fk[0] for fk in EXPECTED_FOREIGN_KEYS]
    assert actions == EXPECTED_FK_ACTIONS


# -- the column-level reference -----------------------------------------------------------


def V(length: int) -> str:
    return f"character varying({length})"


V255: Final = V(255)
TS0: Final = "timestamp(0) without time zone"
TS6: Final = "timestamp(6) without time zone"
F8: Final = "double precision"
JSONB: Final = "jsonb"
NOT_NULL: Final = True
NULL: Final = False
#: codeatlas' default for timestamps: Ecto writes naive UTC, so the database must too.
UTC_NOW: Final = "(now() AT TIME ZONE 'utc'::text)"
UUID_DEFAULT: Final = "gen_random_uuid()"
SERIAL: Final = "<serial>"  # nextval('<table>_id_seq'::regclass)
EMPTY_OBJECT: Final = "'{}'::jsonb"
EMPTY_ARRAY: Final = "'[]'::jsonb"
EMPTY_VARCHARS: Final = "ARRAY[]::character varying[]"

Column = tuple[str, str, bool, str | None]


def uuid_pk() -> Column:
    return ("id", "uuid", NOT_NULL, UUID_DEFAULT)


def bigserial_pk() -> Column:
    return ("id", "bigint", NOT_NULL, SERIAL)


def timestamps(kind: str = TS0) -> list[Column]:
    """Ecto's timestamps(): NOT NULL, plus codeatlas' UTC default."""
    return [("inserted_at", kind, NOT_NULL, UTC_NOW), ("updated_at", kind, NOT_NULL, UTC_NOW)]


#: The generated full-text columns (migration 20261203000001), as pg_get_expr prints them.
SEARCH_TSV: Final = {
    "code_embeddings": (
        "(setweight(codeatlas_code_tsvector('english'::regconfig, (metadata ->> 'name'::text)),"
        " 'A'::\"char\") || setweight(codeatlas_code_tsvector('english'::regconfig, chunk_text), "
        "'D'::\"char\"))"
    ),
    "code_locations": (
        "((setweight(codeatlas_code_tsvector('english'::regconfig, (((symbol_name)::text || ' '"
        "::text) || (COALESCE(parent_symbol, ''::character varying))::text)), 'A'::\"char\") || s"
        "etweight(codeatlas_code_tsvector('english'::regconfig, (((file_path)::text || ' '::tex"
        "t) || COALESCE(signature, ''::text))), 'B'::\"char\")) || setweight(codeatlas_code_tsvec"
        "tor('english'::regconfig, documentation), 'C'::\"char\"))"
    ),
    "rag_documents": (
        "(setweight(codeatlas_code_tsvector('english'::regconfig, (source_id)::text), 'A'::\"cha"
        "r\") || setweight(codeatlas_code_tsvector('english'::regconfig, content), 'D'::\"char\"))"
    ),
    "vector_search": (
        "(setweight(codeatlas_code_tsvector('english'::regconfig, (file_path)::text), 'A'::\"cha"
        "r\") || setweight(codeatlas_code_tsvector('english'::regconfig, content), 'D'::\"char\"))"
    ),
    "codebase_metadata": (
        "(((setweight(codeatlas_code_tsvector('english'::regconfig, (path)::text), 'A'::\"char\")"
        " || setweight(codeatlas_code_tsvector('english'::regconfig, ((((((((((((((codeatlas_js"
        "onb_words(functions, '$[*]'::jsonpath) || ' '::text) || codeatlas_jsonb_words(function"
        "s, '$[*].\"name\"'::jsonpath)) || ' '::text) || codeatlas_jsonb_words(classes, '$[*]'::j"
        "sonpath)) || ' '::text) || codeatlas_jsonb_words(classes, '$[*].\"name\"'::jsonpath)) ||"
        " ' '::text) || codeatlas_jsonb_words(structs, '$[*]'::jsonpath)) || ' '::text) || code"
        "atlas_jsonb_words(enums, '$[*]'::jsonpath)) || ' '::text) || codeatlas_jsonb_words(tra"
        "its, '$[*]'::jsonpath)) || ' '::text) || codeatlas_jsonb_words(exports, '$[*]'::jsonpa"
        "th))), 'B'::\"char\")) || setweight(codeatlas_code_tsvector('english'::regconfig, (((((("
        "((((codeatlas_jsonb_words(functions, '$[*].\"doc\"'::jsonpath) || ' '::text) || codeatla"
        "s_jsonb_words(classes, '$[*].\"doc\"'::jsonpath)) || ' '::text) || codeatlas_jsonb_words"
        "(domains, '$[*]'::jsonpath)) || ' '::text) || codeatlas_jsonb_words(features, '$[*]'::"
        "jsonpath)) || ' '::text) || codeatlas_jsonb_words(patterns, '$[*]'::jsonpath)) || ' ':"
        ":text) || codeatlas_jsonb_words(business_context, '$[*]'::jsonpath))), 'C'::\"char\")) |"
        "| setweight(codeatlas_code_tsvector('english'::regconfig, codeatlas_jsonb_words(depend"
        "encies, '$[*]'::jsonpath)), 'D'::\"char\"))"
    ),
}
#: Columns codeatlas adds to the reference's tables (the counts below are the reference's).
ADDED_COLUMNS: Final = {table: 1 for table in SEARCH_TSV}


def _codebase_metadata() -> list[Column]:
    floats = {
        "cyclomatic_complexity",
        "cognitive_complexity",
        "maintainability_index",
        "halstead_volume",
        "halstead_difficulty",
        "halstead_effort",
        "pagerank_score",
        "centrality_score",
        "technical_debt_ratio",
        "duplication_percentage",
        "security_score",
        "quality_score",
        "test_coverage",
        "documentation_coverage",
    }
    metrics = [
        "cyclomatic_complexity",
        "cognitive_complexity",
        "maintainability_index",
        "nesting_depth",
        "function_count",
        "class_count",
        "struct_count",
        "enum_count",
        "trait_count",
        "interface_count",
        "total_lines",
        "code_lines",
        "comment_lines",
        "blank_lines",
        "halstead_vocabulary",
        "halstead_length",
        "halstead_volume",
        "halstead_difficulty",
        "halstead_effort",
        "pagerank_score",
        "centrality_score",
        "dependency_count",
        "dependent_count",
        "technical_debt_ratio",
        "code_smells_count",
        "duplication_percentage",
        "security_score",
        "vulnerability_count",
        "quality_score",
        "test_coverage",
        "documentation_coverage",
    ]
    jsonb = [
        "domains",
        "patterns",
        "features",
        "business_context",
        "performance_characteristics",
        "security_characteristics",
        "dependencies",
        "related_files",
        "imports",
        "exports",
        "functions",
        "classes",
        "structs",
        "enums",
        "traits",
    ]
    return [
        bigserial_pk(),
        ("codebase_id", V255, NOT_NULL, None),
        ("codebase_path", V(500), NOT_NULL, None),
        ("path", V(500), NOT_NULL, None),
        ("size", "bigint", NOT_NULL, "0"),
        ("lines", "integer", NOT_NULL, "0"),
        ("language", V(50), NOT_NULL, "'unknown'::character varying"),
        ("last_modified", "bigint", NOT_NULL, "0"),
        ("file_type", V(50), NOT_NULL, "'source'::character varying"),
        *(
            (name, F8, NOT_NULL, "0.0") if name in floats else (name, "integer", NOT_NULL, "0")
            for name in metrics
        ),
        *((name, JSONB, NULL, EMPTY_ARRAY) for name in jsonb),
        ("vector_embedding", "vector(1536)", NULL, None),
        *timestamps(),
        ("search_tsv", "tsvector", NULL, SEARCH_TSV["codebase_metadata"]),
    ]


EXPECTED_COLUMNS: Final[dict[str, list[Column]]] = {
    "rules": [
        uuid_pk(),
        ("name", V255, NOT_NULL, None),
        ("description", "text", NULL, None),
        ("category", V255, NULL, None),
        ("condition", JSONB, NULL, EMPTY_OBJECT),
        ("action", JSONB, NULL, EMPTY_OBJECT),
        ("metadata", JSONB, NULL, EMPTY_OBJECT),
        ("priority", "integer", NULL, "0"),
        ("active", "boolean", NULL, "true"),
        ("version", "integer", NULL, "1"),
        ("parent_id", "uuid", NULL, None),
        ("embedding", "vector(768)", NULL, None),
        *timestamps(),
    ],
    "code_files": [
        uuid_pk(),
        ("file_path", V255, NOT_NULL, None),
        ("project_name", V255, NOT_NULL, None),
        ("content", "text", NULL, None),
        ("language", V255, NULL, None),
        ("size_bytes", "integer", NULL, None),
        ("line_count", "integer", NULL, None),
        ("hash", V255, NULL, None),
        ("metadata", JSONB, NULL, EMPTY_OBJECT),
        *timestamps(),
    ],
    "code_embeddings": [
        uuid_pk(),
        ("code_file_id", "uuid", NULL, None),
        ("chunk_index", "integer", NOT_NULL, None),
        ("chunk_text", "text", NOT_NULL, None),
        ("embedding", "vector(768)", NULL, None),
        ("metadata", JSONB, NULL, EMPTY_OBJECT),
        *timestamps(),
        ("search_tsv", "tsvector", NULL, SEARCH_TSV["code_embeddings"]),
    ],
    "code_locations": [
        uuid_pk(),
        ("project", V255, NOT_NULL, None),
        ("file_path", V255, NOT_NULL, None),
        ("line_start", "integer", NOT_NULL, None),
        ("line_end", "integer", NOT_NULL, None),
        ("column_start", "integer", NULL, None),
        ("column_end", "integer", NULL, None),
        ("symbol_type", V255, NOT_NULL, None),
        ("symbol_name", V255, NOT_NULL, None),
        ("parent_symbol", V255, NULL, None),
        ("signature", "text", NULL, None),
        ("documentation", "text", NULL, None),
        ("metadata", JSONB, NULL, EMPTY_OBJECT),
        ("embedding", "vector(768)", NULL, None),
        *timestamps(),
        ("search_tsv", "tsvector", NULL, SEARCH_TSV["code_locations"]),
    ],
    "rag_documents": [
        uuid_pk(),
        ("source_type", V255, NOT_NULL, None),
        ("source_id", V255, NOT_NULL, None),
        ("content", "text", NOT_NULL, None),
        ("embedding", "vector(768)", NULL, None),
        ("metadata", JSONB, NULL, EMPTY_OBJECT),
        ("token_count", "integer", NULL, None),
        ("last_accessed", TS0, NULL, None),
        ("access_count", "integer", NULL, "0"),
        *timestamps(),
        ("search_tsv", "tsvector", NULL, SEARCH_TSV["rag_documents"]),
    ],
    "rag_queries": [
        uuid_pk(),
        ("query_text", "text", NOT_NULL, None),
        ("query_embedding", "vector(768)", NULL, None),
        ("result_ids", "uuid[]", NULL, "ARRAY[]::uuid[]"),
        ("response", "text", NULL, None),
        ("model_used", V255, NULL, None),
        ("tokens_used", "integer", NULL, None),
        ("latency_ms", "integer", NULL, None),
        ("metadata", JSONB, NULL, EMPTY_OBJECT),
        *timestamps(),
    ],
    "rag_feedback": [
        uuid_pk(),
        ("query_id", "uuid", NULL, None),
        ("document_id", "uuid", NULL, None),
        ("relevance_score", F8, NULL, None),
        ("user_rating", "integer", NULL, None),
        ("metadata", JSONB, NULL, EMPTY_OBJECT),
        *timestamps(),
    ],
    "semantic_cache": [
        uuid_pk(),
        ("cache_key", V255, NOT_NULL, None),
        ("query", "text", NOT_NULL, None),
        ("query_embedding", "vector(768)", NULL, None),
        ("response", "text", NOT_NULL, None),
        ("model", V255, NULL, None),
        ("template_id", V255, NULL, None),
        ("tokens_used", "integer", NULL, None),
        ("cost_cents", "integer", NULL, None),
        ("hit_count", "integer", NULL, "0"),
        ("last_accessed", TS0, NULL, None),
        ("ttl_seconds", "integer", NULL, None),
        ("metadata", JSONB, NULL, EMPTY_OBJECT),
        *timestamps(),
    ],
    "codebase_metadata": _codebase_metadata(),
    "codebase_registry": [
        bigserial_pk(),
        ("codebase_id", V255, NOT_NULL, None),
        ("codebase_path", V(500), NOT_NULL, None),
        ("codebase_name", V255, NOT_NULL, None),
        ("description", "text", NULL, None),
        ("language", V(50), NULL, None),
        ("framework", V(100), NULL, None),
        ("last_analyzed", TS0, NULL, None),
        ("analysis_status", V(50), NULL, "'pending'::character varying"),
        ("metadata", JSONB, NULL, EMPTY_OBJECT),
        *timestamps(),
    ],
    "graph_nodes": [
        bigserial_pk(),
        ("codebase_id", V255, NOT_NULL, None),
        ("node_id", V255, NOT_NULL, None),
        ("node_type", V(100), NOT_NULL, None),
        ("name", V255, NOT_NULL, None),
        ("file_path", V(500), NOT_NULL, None),
        ("line_number", "integer", NULL, None),
        ("vector_embedding", "vector(1536)", NULL, None),
        ("vector_magnitude", F8, NULL, None),
        ("metadata", JSONB, NULL, EMPTY_OBJECT),
        ("created_at", TS0, NULL, UTC_NOW),
    ],
    "graph_edges": [
        bigserial_pk(),
        ("codebase_id", V255, NOT_NULL, None),
        ("edge_id", V255, NOT_NULL, None),
        ("from_node_id", V255, NOT_NULL, None),
        ("to_node_id", V255, NOT_NULL, None),
        ("edge_type", V(100), NOT_NULL, None),
        ("weight", F8, NOT_NULL, "1.0"),
        ("metadata", JSONB, NULL, EMPTY_OBJECT),
        ("created_at", TS0, NULL, UTC_NOW),
    ],
    "graph_types": [
        bigserial_pk(),
        ("graph_type", V(100), NOT_NULL, None),
        ("description", "text", NULL, None),
        ("created_at", TS0, NULL, UTC_NOW),
    ],
    "vector_search": [
        bigserial_pk(),
        ("codebase_id", V255, NOT_NULL, None),
        ("file_path", V(500), NOT_NULL, None),
        ("content_type", V(100), NOT_NULL, None),
        ("content", "text", NOT_NULL, None),
        ("vector_embedding", "vector(1536)", NOT_NULL, None),
        ("metadata", JSONB, NULL, EMPTY_OBJECT),
        ("created_at", TS0, NULL, UTC_NOW),
        ("search_tsv", "tsvector", NULL, SEARCH_TSV["vector_search"]),
    ],
    "vector_similarity_cache": [
        bigserial_pk(),
        ("codebase_id", V255, NOT_NULL, None),
        ("query_vector_hash", V(64), NOT_NULL, None),
        ("target_file_path", V(500), NOT_NULL, None),
        ("similarity_score", F8, NOT_NULL, None),
        ("created_at", TS0, NULL, UTC_NOW),
    ],
    "rule_executions": [
        uuid_pk(),
        ("rule_id", "uuid", NOT_NULL, None),
        ("correlation_id", "uuid", NOT_NULL, None),
        ("confidence", F8, NOT_NULL, None),
        ("decision", V255, NOT_NULL, None),
        ("reasoning", V255, NULL, None),
        ("execution_time_ms", "integer", NOT_NULL, None),
        ("context", JSONB, NOT_NULL, EMPTY_OBJECT),
        ("outcome", V255, NULL, None),
        ("outcome_recorded_at", TS6, NULL, None),
        ("executed_at", TS6, NOT_NULL, UTC_NOW),
    ],
    "rule_evolution_proposals": [
        uuid_pk(),
        ("rule_id", "uuid", NOT_NULL, None),
        ("proposer_agent_id", V255, NOT_NULL, None),
        ("proposed_patterns", "jsonb[]", NOT_NULL, None),
        ("proposed_threshold", F8, NULL, None),
        ("evolution_reasoning", V255, NOT_NULL, None),
        ("trial_results", JSONB, NULL, None),
        ("trial_confidence", F8, NULL, None),
        ("votes", JSONB, NULL, EMPTY_OBJECT),
        ("consensus_reached", "boolean", NULL, "false"),
        ("status", V255, NULL, "'proposed'::character varying"),
        *timestamps(TS6),
    ],
    "quality_runs": [
        bigserial_pk(),
        ("tool", V255, NOT_NULL, None),
        ("status", V255, NOT_NULL, None),
        ("warning_count", "integer", NOT_NULL, "0"),
        ("metadata", JSONB, NULL, EMPTY_OBJECT),
        ("started_at", TS6, NULL, None),
        ("finished_at", TS6, NULL, None),
        *timestamps(),
    ],
    "quality_findings": [
        bigserial_pk(),
        ("run_id", "bigint", NOT_NULL, None),
        ("category", V255, NULL, None),
        ("message", V255, NOT_NULL, None),
        ("file", V255, NULL, None),
        ("line", "integer", NULL, None),
        ("severity", V255, NULL, None),
        ("extra", JSONB, NULL, EMPTY_OBJECT),
        ("inserted_at", TS0, NOT_NULL, UTC_NOW),
    ],
    "technology_patterns": [
        bigserial_pk(),
        ("technology_name", V255, NOT_NULL, None),
        ("technology_type", V255, NOT_NULL, None),
        ("version_pattern", V255, NULL, None),
        ("file_patterns", "character varying(255)[]", NULL, EMPTY_VARCHARS),
        ("directory_patterns", "character varying(255)[]", NULL, EMPTY_VARCHARS),
        ("config_files", "character varying(255)[]", NULL, EMPTY_VARCHARS),
        ("build_command", V255, NULL, None),
        ("dev_command", V255, NULL, None),
        ("install_command", V255, NULL, None),
        ("test_command", V255, NULL, None),
        ("output_directory", V255, NULL, None),
        ("confidence_weight", F8, NULL, "1.0"),
        ("detection_count", "integer", NULL, "0"),
        ("success_rate", F8, NULL, "1.0"),
        ("last_detected_at", TS0, NULL, None),
        ("extended_metadata", JSONB, NULL, None),
        ("created_at", TS0, NULL, UTC_NOW),
        ("updated_at", TS0, NULL, UTC_NOW),
    ],
    "technology_templates": [
        bigserial_pk(),
        ("identifier", V255, NOT_NULL, None),
        ("category", V255, NOT_NULL, None),
        ("version", V255, NULL, None),
        ("source", V255, NULL, None),
        ("template", JSONB, NOT_NULL, None),
        ("metadata", JSONB, NULL, EMPTY_OBJECT),
        ("checksum", V255, NULL, None),
        *timestamps(TS6),
    ],
    "codebase_snapshots": [
        bigserial_pk(),
        ("codebase_id", V255, NOT_NULL, None),
        ("snapshot_id", "integer", NOT_NULL, None),
        ("metadata", JSONB, NULL, None),
        ("summary", JSONB, NULL, None),
        ("detected_technologies", "character varying(255)[]", NULL, EMPTY_VARCHARS),
        ("features", JSONB, NULL, None),
        ("inserted_at", TS0, NULL, UTC_NOW),
    ],
    "git_agent_sessions": [
        bigserial_pk(),
        ("agent_id", V255, NOT_NULL, None),
        ("branch", V255, NULL, None),
        ("workspace_path", V255, NOT_NULL, None),
        ("correlation_id", V255, NULL, None),
        ("status", V255, NOT_NULL, "'active'::character varying"),
        ("meta", JSONB, NULL, EMPTY_OBJECT),
        *timestamps(TS6),
    ],
    "git_pending_merges": [
        bigserial_pk(),
        ("branch", V255, NOT_NULL, None),
        ("pr_number", "integer", NULL, None),
        ("agent_id", V255, NOT_NULL, None),
        ("task_id", V255, NULL, None),
        ("correlation_id", V255, NULL, None),
        ("meta", JSONB, NULL, EMPTY_OBJECT),
        *timestamps(TS6),
    ],
    "git_merge_history": [
        bigserial_pk(),
        ("branch", V255, NOT_NULL, None),
        ("agent_id", V255, NULL, None),
        ("task_id", V255, NULL, None),
        ("correlation_id", V255, NULL, None),
        ("merge_commit", V255, NULL, None),
        ("status", V255, NOT_NULL, None),
        ("details", JSONB, NULL, EMPTY_OBJECT),
        *timestamps(TS6),
    ],
}

#: Column counts the reference states for each table.
REFERENCE_COLUMN_COUNTS: Final = {
    "rules": 14,
    "code_files": 11,
    "code_embeddings": 8,
    "code_locations": 16,
    "rag_documents": 11,
    "rag_queries": 11,
    "rag_feedback": 8,
    "semantic_cache": 15,
    "codebase_metadata": 58,
    "codebase_registry": 12,
    "graph_nodes": 11,
    "graph_edges": 9,
    "graph_types": 4,
    "vector_search": 8,
    "vector_similarity_cache": 6,
    "rule_executions": 11,
    "rule_evolution_proposals": 13,
    "quality_runs": 9,
    "quality_findings": 9,
    "technology_patterns": 19,
    "technology_templates": 10,
    "codebase_snapshots": 8,
    "git_agent_sessions": 9,
    "git_pending_merges": 9,
    "git_merge_history": 10,
}

Index = tuple[str, bool, str, tuple[str, ...]]
UNIQUE: Final = True


def btree(name: str, *columns: str, unique: bool = False) -> Index:
    return (name, unique, "btree", columns)


def gin(name: str, column: str) -> Index:
    return (name, False, "gin", (column,))


def ivfflat(name: str, column: str) -> Index:
    return (name, False, "ivfflat", (column,))


SEMANTIC_CACHE_INDEX: Final = "idx_semantic_cache_query_embedding_vector"
#: The semantic cache's HNSW index (20261204000002).
HNSW_OPTIONS: Final = ["m=16", "ef_construction=64"]


#: Every index but the primary key, per table (reference §2-§8, Ecto's names).
EXPECTED_INDEXES: Final[dict[str, set[Index]]] = {
    "rules": {
        btree("rules_name_index", "name"),
        btree("rules_category_index", "category"),
        btree("rules_active_index", "active"),
        btree("rules_priority_index", "priority"),
        btree("rules_parent_id_index", "parent_id"),
        gin("rules_condition_index", "condition"),
        gin("rules_metadata_index", "metadata"),
        ivfflat("idx_rules_embedding_vector", "embedding"),
    },
    "code_files": {
        btree("code_files_project_name_file_path_index", "project_name", "file_path", unique=True),
        btree("code_files_language_index", "language"),
        btree("code_files_hash_index", "hash"),
    },
    "code_embeddings": {
        btree("code_embeddings_code_file_id_index", "code_file_id"),
        btree("code_embeddings_chunk_index_index", "chunk_index"),
        ivfflat("idx_code_embeddings_embedding_vector", "embedding"),
        gin("idx_code_embeddings_search_tsv", "search_tsv"),
    },
    "code_locations": {
        btree("code_locations_project_file_path_index", "project", "file_path"),
        btree("code_locations_symbol_type_symbol_name_index", "symbol_type", "symbol_name"),
        btree("code_locations_parent_symbol_index", "parent_symbol"),
        ivfflat("idx_code_locations_embedding_vector", "embedding"),
        gin("idx_code_locations_search_tsv", "search_tsv"),
    },
    "rag_documents": {
        btree("rag_documents_source_type_source_id_index", "source_type", "source_id", unique=True),
        btree("rag_documents_last_accessed_index", "last_accessed"),
        btree("rag_documents_access_count_index", "access_count"),
        ivfflat("idx_rag_documents_embedding_vector", "embedding"),
        gin("idx_rag_documents_search_tsv", "search_tsv"),
    },
    "rag_queries": {
        btree("rag_queries_inserted_at_index", "inserted_at"),
        ivfflat("idx_rag_queries_query_embedding_vector", "query_embedding"),
    },
    "rag_feedback": {
        btree("rag_feedback_query_id_index", "query_id"),
        btree("rag_feedback_document_id_index", "document_id"),
    },
    "semantic_cache": {
        btree("semantic_cache_cache_key_index", "cache_key", unique=True),
        btree("semantic_cache_last_accessed_index", "last_accessed"),
        btree("semantic_cache_hit_count_index", "hit_count"),
        # HNSW since codeatlas' 20261204000002 (the reference's IVFFlat before it)
        ("idx_semantic_cache_query_embedding_vector", False, "hnsw", ("query_embedding",)),
    },
    "codebase_metadata": {
        btree("codebase_metadata_codebase_id_path_index", "codebase_id", "path", unique=True),
        btree("codebase_metadata_codebase_id_index", "codebase_id"),
        btree("codebase_metadata_codebase_path_index", "codebase_path"),
        btree("codebase_metadata_codebase_id_language_index", "codebase_id", "language"),
        btree("codebase_metadata_codebase_id_file_type_index", "codebase_id", "file_type"),
        btree("codebase_metadata_codebase_id_quality_score_index", "codebase_id", "quality_score"),
        btree(
            # codebase_metadata_codebase_id_cyclomatic_complexity_cognitive_complexity_index
            # cut to PostgreSQL's 63 bytes
            "codebase_metadata_codebase_id_cyclomatic_complexity_cognitive_c",
            "codebase_id",
            "cyclomatic_complexity",
            "cognitive_complexity",
        ),
        btree(
            "codebase_metadata_codebase_id_pagerank_score_index", "codebase_id", "pagerank_score"
        ),
        ivfflat("idx_codebase_metadata_vector", "vector_embedding"),
        gin("idx_codebase_metadata_search_tsv", "search_tsv"),
    },
    "codebase_registry": {
        btree("codebase_registry_codebase_id_index", "codebase_id", unique=True),
        btree("codebase_registry_codebase_path_index", "codebase_path"),
        btree("codebase_registry_analysis_status_index", "analysis_status"),
    },
    "graph_nodes": {
        btree("graph_nodes_codebase_id_node_id_index", "codebase_id", "node_id", unique=True),
        btree("graph_nodes_codebase_id_index", "codebase_id"),
        btree("graph_nodes_codebase_id_node_type_index", "codebase_id", "node_type"),
        ivfflat("idx_graph_nodes_vector", "vector_embedding"),
    },
    "graph_edges": {
        btree("graph_edges_codebase_id_edge_id_index", "codebase_id", "edge_id", unique=True),
        btree("graph_edges_codebase_id_index", "codebase_id"),
        btree("graph_edges_from_node_id_index", "from_node_id"),
        btree("graph_edges_to_node_id_index", "to_node_id"),
        btree("graph_edges_edge_type_index", "edge_type"),
    },
    "graph_types": {
        btree("graph_types_graph_type_index", "graph_type", unique=True),
    },
    "vector_search": {
        btree(
            "vector_search_codebase_id_file_path_content_type_index",
            "codebase_id",
            "file_path",
            "content_type",
            unique=True,
        ),
        btree("vector_search_codebase_id_index", "codebase_id"),
        ivfflat("idx_vector_search_embedding", "vector_embedding"),
        gin("idx_vector_search_search_tsv", "search_tsv"),
    },
    "vector_similarity_cache": {
        btree(
            # ..._target_file_path_index cut to 63 bytes
            "vector_similarity_cache_codebase_id_query_vector_hash_target_fi",
            "codebase_id",
            "query_vector_hash",
            "target_file_path",
            unique=True,
        ),
        btree("vector_similarity_cache_codebase_id_index", "codebase_id"),
        btree("vector_similarity_cache_query_vector_hash_index", "query_vector_hash"),
    },
    "rule_executions": {
        btree("rule_executions_rule_id_index", "rule_id"),
        btree("rule_executions_correlation_id_index", "correlation_id"),
        btree("rule_executions_executed_at_index", "executed_at"),
        btree("rule_executions_decision_index", "decision"),
        btree("rule_executions_outcome_index", "outcome"),
        btree("rule_executions_rule_id_executed_at_index", "rule_id", "executed_at"),
        gin("rule_executions_context_index", "context"),
    },
    "rule_evolution_proposals": {
        btree("rule_evolution_proposals_rule_id_index", "rule_id"),
        btree("rule_evolution_proposals_proposer_agent_id_index", "proposer_agent_id"),
        btree("rule_evolution_proposals_status_index", "status"),
        btree("rule_evolution_proposals_consensus_reached_index", "consensus_reached"),
        btree("rule_evolution_proposals_inserted_at_index", "inserted_at"),
        gin("rule_evolution_proposals_votes_index", "votes"),
        btree("rule_evolution_proposals_rule_id_status_index", "rule_id", "status"),
        btree(
            "rule_evolution_proposals_status_consensus_reached_index",
            "status",
            "consensus_reached",
        ),
    },
    "quality_runs": {
        btree("quality_runs_tool_index", "tool"),
        btree("quality_runs_status_index", "status"),
        btree("quality_runs_tool_status_index", "tool", "status"),
        btree("quality_runs_inserted_at_index", "inserted_at"),
        btree("quality_runs_started_at_index", "started_at"),
        gin("quality_runs_metadata_index", "metadata"),
    },
    "quality_findings": {
        btree("quality_findings_run_id_index", "run_id"),
        btree("quality_findings_category_index", "category"),
        btree("quality_findings_severity_index", "severity"),
        btree("quality_findings_file_index", "file"),
        btree("quality_findings_run_id_severity_index", "run_id", "severity"),
        btree("quality_findings_category_severity_index", "category", "severity"),
        gin("quality_findings_extra_index", "extra"),
        btree("quality_findings_run_id_category_severity_index", "run_id", "category", "severity"),
    },
    "technology_patterns": {
        btree("technology_patterns_technology_name_index", "technology_name"),
        btree("technology_patterns_technology_type_index", "technology_type"),
        btree(
            "technology_patterns_technology_name_technology_type_index",
            "technology_name",
            "technology_type",
            unique=True,
        ),
        btree("technology_patterns_detection_count_index", "detection_count"),
        btree("technology_patterns_success_rate_index", "success_rate"),
        btree("technology_patterns_last_detected_at_index", "last_detected_at"),
        gin("technology_patterns_extended_metadata_index", "extended_metadata"),
    },
    "technology_templates": {
        btree("technology_templates_identifier_index", "identifier", unique=True),
        btree("technology_templates_category_index", "category"),
        btree("technology_templates_version_index", "version"),
        btree("technology_templates_category_version_index", "category", "version"),
    },
    "codebase_snapshots": {
        btree(
            "codebase_snapshots_codebase_id_snapshot_id_index",
            "codebase_id",
            "snapshot_id",
            unique=True,
        ),
        btree("codebase_snapshots_codebase_id_index", "codebase_id"),
        btree("codebase_snapshots_snapshot_id_index", "snapshot_id"),
        btree("codebase_snapshots_inserted_at_index", "inserted_at"),
        gin("codebase_snapshots_detected_technologies_index", "detected_technologies"),
        gin("codebase_snapshots_metadata_index", "metadata"),
        gin("codebase_snapshots_features_index", "features"),
    },
    "git_agent_sessions": {
        btree("git_agent_sessions_agent_id_index", "agent_id", unique=True),
        btree("git_agent_sessions_branch_index", "branch"),
        btree("git_agent_sessions_status_index", "status"),
        btree("git_agent_sessions_correlation_id_index", "correlation_id"),
        gin("git_agent_sessions_meta_index", "meta"),
    },
    "git_pending_merges": {
        btree("git_pending_merges_branch_index", "branch", unique=True),
        btree("git_pending_merges_agent_id_index", "agent_id"),
        btree("git_pending_merges_pr_number_index", "pr_number"),
        btree("git_pending_merges_task_id_index", "task_id"),
        btree("git_pending_merges_correlation_id_index", "correlation_id"),
        gin("git_pending_merges_meta_index", "meta"),
    },
    "git_merge_history": {
        btree("git_merge_history_branch_index", "branch"),
        btree("git_merge_history_agent_id_index", "agent_id"),
        btree("git_merge_history_status_index", "status"),
        btree("git_merge_history_merge_commit_index", "merge_commit"),
        btree("git_merge_history_inserted_at_index", "inserted_at"),
        gin("git_merge_history_details_index", "details"),
        btree("git_merge_history_branch_status_index", "branch", "status"),
        btree("git_merge_history_agent_id_inserted_at_index", "agent_id", "inserted_at"),
    },
}

COLUMNS_QUERY: Final = """
SELECT a.attname                          AS name,
       format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull                       AS not_null,
       pg_get_expr(d.adbin, d.adrelid)    AS default
  FROM pg_attribute a
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum"""
INDEXES_QUERY: Final = """
SELECT c.relname       AS name,
       x.indisunique   AS is_unique,
       x.indisprimary  AS is_primary,
       am.amname       AS method,
       array(SELECT pg_get_indexdef(x.indexrelid, k, true)
               FROM generate_series(1, x.indnkeyatts) AS k ORDER BY k) AS columns,
       array(SELECT o.opcname
               FROM unnest(x.indclass) WITH ORDINALITY AS u (opc, n)
               JOIN pg_opclass o ON o.oid = u.opc ORDER BY u.n) AS opclasses,
       coalesce(c.reloptions, '{}') AS options,
       x.indisvalid    AS valid
  FROM pg_index x
  JOIN pg_class c ON c.oid = x.indexrelid
  JOIN pg_am am ON am.oid = c.relam
 WHERE x.indrelid = $1::regclass"""


def test_expected_columns_match_the_reference_counts() -> None:
    """Guard the spec itself against a dropped or doubled line."""
    assert {
        t: len(cols) - ADDED_COLUMNS.get(t, 0) for t, cols in EXPECTED_COLUMNS.items()
    } == REFERENCE_COLUMN_COUNTS
    assert set(EXPECTED_INDEXES) == set(EXPECTED_COLUMNS)
    own = [
        "codeatlas_schema_migrations",
        "codeatlas_vector_indexes",
        "codeatlas_semantic_cache_hits",
    ]
    assert sorted([*EXPECTED_COLUMNS, *own]) == EXPECTED_TABLES


async def test_columns_match_the_reference(migrated_dsn: str) -> None:
    mismatches: list[str] = []
    async with connected(migrated_dsn) as connection:
        for table, columns in EXPECTED_COLUMNS.items():
            expected = [
                (name, kind, not_null, f"nextval('{table}_id_seq'::regclass)" if d == SERIAL else d)
                for name, kind, not_null, d in columns
            ]
            rows = await connection.fetch(COLUMNS_QUERY, table)
            actual = [(r["name"], r["type"], r["not_null"], r["default"]) for r in rows]
            if [c[0] for c in actual] != [c[0] for c in expected]:
                mismatches.append(f"{table}: columns {[c[0] for c in actual]}")
                continue
            mismatches.extend(
                f"{table}.{want[0]}: {got[1:]} != {want[1:]}"
                for got, want in zip(actual, expected, strict=True)
                if got != want
            )
    assert mismatches == []


async def test_indexes_match_the_reference(migrated_dsn: str) -> None:
    mismatches: list[str] = []
    async with connected(migrated_dsn) as connection:
        for table, indexes in EXPECTED_INDEXES.items():
            rows = await connection.fetch(INDEXES_QUERY, table)
            primary_key = await connection.fetchrow(
                "SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint"
                " WHERE conrelid = $1::regclass AND contype = 'p'",
                table,
            )
            assert primary_key is not None, table
            if (primary_key["conname"], primary_key["def"]) != (
                f"{table}_pkey",
                "PRIMARY KEY (id)",
            ):
                mismatches.append(f"{table}: primary key {tuple(primary_key)}")
            primary = [(r["name"], list(r["columns"])) for r in rows if r["is_primary"]]
            if primary != [(f"{table}_pkey", ["id"])]:
                mismatches.append(f"{table}: primary key index {primary}")
            actual = {
                (r["name"], r["is_unique"], r["method"], tuple(r["columns"]))
                for r in rows
                if not r["is_primary"]
            }
            mismatches.extend(f"{table}: unexpected {i}" for i in sorted(actual - indexes))
            mismatches.extend(f"{table}: missing {i}" for i in sorted(indexes - actual))
            for row in rows:
                if not row["valid"]:
                    mismatches.append(f"{row['name']} is INVALID")
                if row["method"] in {"ivfflat", "hnsw"}:
                    if list(row["opclasses"]) != ["vector_cosine_ops"]:
                        mismatches.append(f"{row['name']}: opclass {list(row['opclasses'])}")
                    built = ["lists=100"] if row["method"] == "ivfflat" else HNSW_OPTIONS
                    if list(row["options"]) != built:
                        mismatches.append(f"{row['name']}: options {list(row['options'])}")
                elif list(row["options"]) != []:
                    mismatches.append(f"{row['name']}: options {list(row['options'])}")
    assert mismatches == []


async def test_no_check_constraints_and_only_ecto_unique_indexes(migrated_dsn: str) -> None:
    """Ecto emits neither CHECK nor UNIQUE constraints: uniqueness lives in indexes."""
    async with connected(migrated_dsn) as connection:
        kinds = await connection.fetch(
            "SELECT conrelid::regclass::text AS t, contype FROM pg_constraint c"
            " JOIN pg_namespace n ON n.oid = c.connamespace"
            " WHERE n.nspname = 'public' AND contype IN ('c', 'u', 'x')"
            "   AND conrelid::regclass::text <> 'codeatlas_vector_indexes'"
        )
    assert [tuple(k) for k in kinds] == []


VECTOR_COLUMNS_QUERY: Final = """
SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
       a.attstorage::text AS storage
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
   AND a.atttypid = 'vector'::regtype
 ORDER BY 1, 2"""


async def test_vector_columns_are_stored_plain(migrated_dsn: str) -> None:
    async with connected(migrated_dsn) as connection:
        rows = await connection.fetch(VECTOR_COLUMNS_QUERY)
    assert [(r["table"], r["column"], r["type"], r["storage"]) for r in rows] == [
        ("code_embeddings", "embedding", "vector(768)", "p"),
        ("code_locations", "embedding", "vector(768)", "p"),
        ("codebase_metadata", "vector_embedding", "vector(1536)", "p"),
        ("graph_nodes", "vector_embedding", "vector(1536)", "p"),
        ("rag_documents", "embedding", "vector(768)", "p"),
        ("rag_queries", "query_embedding", "vector(768)", "p"),
        ("rules", "embedding", "vector(768)", "p"),
        ("semantic_cache", "query_embedding", "vector(768)", "p"),
        ("vector_search", "vector_embedding", "vector(1536)", "p"),
    ]


UUID_PK_TABLES: Final = [
    "code_embeddings",
    "code_files",
    "code_locations",
    "rag_documents",
    "rag_feedback",
    "rag_queries",
    "rule_evolution_proposals",
    "rule_executions",
    "rules",
    "semantic_cache",
]


async def test_uuid_primary_keys_default_to_gen_random_uuid(migrated_dsn: str) -> None:
    async with connected(migrated_dsn) as connection:
        rows = await connection.fetch(
            """
            SELECT c.relname AS table, pg_get_expr(d.adbin, d.adrelid) AS default
              FROM pg_constraint k
              JOIN pg_class c ON c.oid = k.conrelid
              JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
              LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE k.contype = 'p' AND a.atttypid = 'uuid'::regtype
             ORDER BY 1"""
        )
        # codeatlas_semantic_cache_hits' key is an entry's id, never generated
        assert [(r["table"], r["default"]) for r in rows] == sorted(
            [(t, "gen_random_uuid()") for t in UUID_PK_TABLES]
            + [("codeatlas_semantic_cache_hits", None)]
        )
        # what the defaults are for: an insert naming neither id nor timestamps
        rule = await connection.fetchrow(
            "INSERT INTO rules (name) VALUES ('r') RETURNING id, inserted_at, updated_at"
        )
        assert rule is not None and rule["id"] is not None
        now_utc = await connection.fetchval("SELECT (now() AT TIME ZONE 'utc')::timestamp(0)")
        assert rule["inserted_at"] == rule["updated_at"] == now_utc
        execution = await connection.fetchrow(
            "INSERT INTO rule_executions (rule_id, correlation_id, confidence, decision,"
            " execution_time_ms) VALUES ($1, gen_random_uuid(), 0.9, 'autonomous', 3)"
            " RETURNING id, executed_at, context",
            rule["id"],
        )
        assert execution is not None and execution["id"] is not None
        assert execution["executed_at"] is not None and execution["context"] == "{}"


async def test_graph_types_holds_exactly_its_four_seed_rows(migrated_dsn: str) -> None:
    async with connected(migrated_dsn) as connection:
        rows = await connection.fetch(
            "SELECT graph_type, description, created_at IS NOT NULL AS stamped"
            " FROM graph_types ORDER BY id"
        )
    assert [tuple(r) for r in rows] == [
        ("CallGraph", "Function call dependencies (DAG)", True),
        ("ImportGraph", "Module import dependencies (DAG)", True),
        ("SemanticGraph", "Conceptual relationships (General Graph)", True),
        ("DataFlowGraph", "Variable and data dependencies (DAG)", True),
    ]


async def test_every_vector_index_has_a_build_record(migrated_dsn: str) -> None:
    async with connected(migrated_dsn) as connection:
        records = await connection.fetch(
            "SELECT index_name, table_name, column_name, dimensions, lists, rows_at_build,"
            " built_at IS NOT NULL AS dated FROM codeatlas_vector_indexes ORDER BY index_name"
        )
        ivfflat_indexes = await connection.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_am am ON am.oid = c.relam"
            " WHERE am.amname = 'ivfflat' ORDER BY 1"
        )
    assert [tuple(r) for r in records] == [
        ("idx_code_embeddings_embedding_vector", "code_embeddings", "embedding", 768, 100, 0, True),
        ("idx_code_locations_embedding_vector", "code_locations", "embedding", 768, 100, 0, True),
        (
            "idx_codebase_metadata_vector",
            "codebase_metadata",
            "vector_embedding",
            1536,
            100,
            0,
            True,
        ),
        ("idx_graph_nodes_vector", "graph_nodes", "vector_embedding", 1536, 100, 0, True),
        ("idx_rag_documents_embedding_vector", "rag_documents", "embedding", 768, 100, 0, True),
        (
            "idx_rag_queries_query_embedding_vector",
            "rag_queries",
            "query_embedding",
            768,
            100,
            0,
            True,
        ),
        ("idx_rules_embedding_vector", "rules", "embedding", 768, 100, 0, True),
        (
            "idx_semantic_cache_query_embedding_vector",
            "semantic_cache",
            "query_embedding",
            768,
            0,  # HNSW since 20261204000002: no lists
            0,
            True,
        ),
        ("idx_vector_search_embedding", "vector_search", "vector_embedding", 1536, 100, 0, True),
    ]
    assert [r["relname"] for r in ivfflat_indexes] == [
        r["index_name"] for r in records if r["index_name"] != SEMANTIC_CACHE_INDEX
    ]


# -- round trip ---------------------------------------------------------------------------

#: A normalised catalog of the public schema: everything a migration creates, by name.
CATALOG_QUERIES: Final = {
    "relations": """
        SELECT c.relname, c.relkind, coalesce(c.reloptions, '{}')
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S', 'v', 'm', 'i', 'p')
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                            WHERE d.objid = c.oid AND d.deptype = 'e')
         ORDER BY 1""",
    # the position among live columns: a column dropped and added again (a down and up of
    # an additive migration) leaves a gap in ordinal_position, not a change of order
    "columns": """
        SELECT table_name, column_name,
               row_number() OVER (PARTITION BY table_name ORDER BY ordinal_position),
               data_type, udt_name,
               character_maximum_length, numeric_precision, datetime_precision, is_nullable,
               column_default, is_identity, generation_expression
          FROM information_schema.columns
         WHERE table_schema = 'public'
         ORDER BY table_name, ordinal_position""",
    "types_and_storage": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attstorage
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0
           AND NOT a.attisdropped
         ORDER BY 1, 2""",
    "table_constraints": """
        SELECT tc.table_name, tc.constraint_name, tc.constraint_type, tc.is_deferrable
          FROM information_schema.table_constraints tc
         WHERE tc.table_schema = 'public' AND tc.constraint_type <> 'CHECK'
         ORDER BY 1, 2""",
    "constraint_definitions": """
        SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid)
          FROM pg_constraint
         WHERE connamespace = 'public'::regnamespace
         ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
         WHERE schemaname = 'public' ORDER BY 1, 2""",
    "triggers": """
        SELECT t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid)
          FROM pg_trigger t
          JOIN pg_class c ON c.oid = t.tgrelid
         WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace
         ORDER BY 1, 2""",
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_functiondef(p.oid)
          FROM pg_proc p
         WHERE p.pronamespace = 'public'::regnamespace
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                            WHERE d.objid = p.oid AND d.deptype = 'e')
         ORDER BY 1, 2""",
    "sequences": """
        SELECT sequencename, data_type, start_value, increment_by FROM pg_sequences
         WHERE schemaname = 'public' ORDER BY 1""",
}


async def catalog(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    """Return the normalised catalog dump of *dsn*'s public schema."""
    async with connected(dsn) as connection:
        return {
            name: [tuple(row) for row in await connection.fetch(query)]
            for name, query in CATALOG_QUERIES.items()
        }


async def ledger_versions(dsn: str) -> list[int]:
    async with connected(dsn) as connection:
        rows = await connection.fetch(
            "SELECT version FROM codeatlas_schema_migrations ORDER BY version"
        )
    return [row["version"] for row in rows]


async def public_tables(dsn: str) -> list[str]:
    async with connected(dsn) as connection:
        return [row["tablename"] for row in await connection.fetch(SEED_TABLES)]


async def test_round_trip_to_before_the_seed_restores_an_identical_catalog(
    migrated_dsn: str,
) -> None:
    head = await catalog(migrated_dsn)
    assert len(head["triggers"]) == 20  # 2 append-only + 18 cache invalidation
    assert {f[0] for f in head["functions"]} == {
        "codeatlas_budget_tsquery",
        "codeatlas_code_tsquery",
        "codeatlas_code_tsvector",
        "codeatlas_code_words",
        "codeatlas_invalidate_similarity_cache",
        "codeatlas_jsonb_words",
        "codeatlas_or_tsquery",
        "codeatlas_refuse_update",
        "codeatlas_require_columns",
    }
    migrator = Migrator(migrated_dsn)

    result = await migrator.rollback(to=BEFORE_SEED)
    assert result.reverted == [v for v in reversed(HEAD_VERSIONS) if v > BEFORE_SEED]
    assert await public_tables(migrated_dsn) == sorted(
        [*BASE_TABLES, "codeatlas_schema_migrations", "codeatlas_vector_indexes"]
    )
    assert await ledger_versions(migrated_dsn) == [v for v in HEAD_VERSIONS if v <= BEFORE_SEED]
    between = await catalog(migrated_dsn)
    assert between["triggers"] == []
    assert not any("ivfflat" in row[2] for row in between["indexes"])

    await migrator.apply()
    assert await catalog(migrated_dsn) == head
    assert await ledger_versions(migrated_dsn) == HEAD_VERSIONS


async def test_full_rollback_to_zero_and_up_again(migrated_dsn: str) -> None:
    head = await catalog(migrated_dsn)
    migrator = Migrator(migrated_dsn)
    result = await migrator.rollback(to=0)
    assert result.reverted == list(reversed(HEAD_VERSIONS))
    assert await public_tables(migrated_dsn) == ["codeatlas_schema_migrations"]
    emptied = await catalog(migrated_dsn)
    assert emptied["functions"] == [] and emptied["triggers"] == []
    assert await ledger_versions(migrated_dsn) == []

    applied = await migrator.apply()
    assert applied.applied == HEAD_VERSIONS
    assert await catalog(migrated_dsn) == head
    async with connected(migrated_dsn) as connection:
        assert await connection.fetchval("SELECT count(*) FROM graph_types") == 4
        assert await connection.fetchval("SELECT count(*) FROM codeatlas_vector_indexes") == 9


# -- rollback refuses to lose data ----------------------------------------------------------


async def test_rollback_of_tables_holding_rows_refuses_and_reverts_nothing(
    migrated_dsn: str,
) -> None:
    async with connected(migrated_dsn) as connection:
        await connection.execute("INSERT INTO quality_runs (tool, status) VALUES ('sobelow', 'ok')")
    before = await catalog(migrated_dsn)
    migrator = Migrator(migrated_dsn)
    with pytest.raises(DataLossRefusedError, match="quality_runs"):
        await migrator.rollback(to=BEFORE_SEED)
    # not even the newer migrations (no tables of their own) were reverted
    assert await ledger_versions(migrated_dsn) == HEAD_VERSIONS
    assert await catalog(migrated_dsn) == before
    # a rollback that stops above the table's migration goes through
    assert (await migrator.rollback(to=20250101000010)).reverted == [
        20261204000002,
        20261204000001,
        20261203000001,
        20261202000001,
        20260101000001,
        20250101000014,
        20250101000013,
        20250101000012,
        20250101000011,
    ]
    with pytest.raises(DataLossRefusedError, match="quality_runs"):
        await migrator.rollback(to=BEFORE_SEED)

    result = await migrator.rollback(to=BEFORE_SEED, allow_data_loss=True)
    assert result.reverted == [20250101000010, 20250101000009, 20250101000008, 20250101000007]
    assert "quality_runs" not in await public_tables(migrated_dsn)


async def test_graph_types_seed_rows_alone_do_not_block_rollback(migrated_dsn: str) -> None:
    migrator = Migrator(migrated_dsn)
    await migrator.rollback(to=BEFORE_SEED)
    assert "graph_types" not in await public_tables(migrated_dsn)


@pytest.mark.parametrize(
    "change",
    [
        "INSERT INTO graph_types (graph_type, description) VALUES ('ControlFlow', 'mine')",
        "UPDATE graph_types SET description = 'edited' WHERE graph_type = 'CallGraph'",
    ],
    ids=["added-type", "edited-seed-row"],
)
async def test_user_graph_types_block_rollback(migrated_dsn: str, change: str) -> None:
    async with connected(migrated_dsn) as connection:
        await connection.execute(change)
    migrator = Migrator(migrated_dsn)
    with pytest.raises(DataLossRefusedError, match="graph_types"):
        await migrator.rollback(to=BEFORE_SEED)
    assert await ledger_versions(migrated_dsn) == HEAD_VERSIONS
    await migrator.rollback(to=BEFORE_SEED, allow_data_loss=True)
    assert await ledger_versions(migrated_dsn) == [v for v in HEAD_VERSIONS if v <= BEFORE_SEED]


# -- append-only tables ---------------------------------------------------------------------


async def test_append_only_tables_refuse_update_but_allow_insert_and_delete(
    migrated_dsn: str,
) -> None:
    async with connected(migrated_dsn) as connection:
        run_id = await connection.fetchval(
            "INSERT INTO quality_runs (tool, status) VALUES ('dialyzer', 'warning') RETURNING id"
        )
        finding_id = await connection.fetchval(
            "INSERT INTO quality_findings (run_id, message, severity)"
            " VALUES ($1, 'unused variable', 'low') RETURNING id",
            run_id,
        )
        snapshot_id = await connection.fetchval(
            "INSERT INTO codebase_snapshots (codebase_id, snapshot_id, metadata)"
            " VALUES ('cb', 1, '{\"a\": 1}') RETURNING id"
        )
        statements = [
            ("UPDATE quality_findings SET severity = 'high' WHERE id = $1", finding_id),
            ("UPDATE codebase_snapshots SET metadata = '{}' WHERE id = $1", snapshot_id),
        ]
        for statement, key in statements:
            with pytest.raises(asyncpg.PostgresError) as caught:
                await connection.execute(statement, key)
            assert caught.value.sqlstate == "CA001"
            assert "append-only" in str(caught.value)
        # the quality run itself stays updatable (it is finished later)
        await connection.execute("UPDATE quality_runs SET status = 'ok' WHERE id = $1", run_id)
        assert (
            await connection.fetchval(
                "SELECT severity FROM quality_findings WHERE id = $1", finding_id
            )
            == "low"
        )
        assert await connection.fetchval(
            "SELECT metadata FROM codebase_snapshots WHERE id = $1", snapshot_id
        ) == json.dumps({"a": 1})
        await connection.execute(
            "INSERT INTO codebase_snapshots (codebase_id, snapshot_id) VALUES ('cb', 2)"
        )
        assert await connection.execute(
            "DELETE FROM quality_findings WHERE id = $1", finding_id
        ) == ("DELETE 1")
        assert await connection.execute(
            "DELETE FROM codebase_snapshots WHERE codebase_id = 'cb'"
        ) == ("DELETE 2")
        # an UPDATE matching no row fires no row trigger
        assert await connection.execute("UPDATE quality_findings SET line = 1") == "UPDATE 0"


async def test_append_only_update_through_the_executor_is_immutable_row_error(
    atlas: codeatlas.Atlas,
) -> None:
    executor = atlas.executor
    run_id = await executor.fetchval(
        "INSERT INTO quality_runs (tool, status) VALUES ('custom', 'ok') RETURNING id"
    )
    await executor.execute(
        "INSERT INTO quality_findings (run_id, message) VALUES ($1, 'm')", run_id
    )
    await executor.execute(
        "INSERT INTO codebase_snapshots (codebase_id, snapshot_id) VALUES ('c', 1)"
    )
    with pytest.raises(ImmutableRowError, match="append-only") as caught:
        await executor.execute("UPDATE quality_findings SET message = 'changed'")
    assert isinstance(caught.value.__cause__, asyncpg.PostgresError)
    assert caught.value.__cause__.sqlstate == "CA001"
    with pytest.raises(ImmutableRowError):
        await executor.execute("UPDATE codebase_snapshots SET summary = '{}'")
    assert await executor.fetchval("SELECT message FROM quality_findings") == "m"


# -- similarity-cache invalidation (migration 20260101000001) --------------------------------

CACHE_ROWS: Final = [
    ("a", "vector_search:1"),
    ("b", "vector_search:2"),
    ("*", "vector_search:3"),
    ("*", "rules:4"),
]


async def fill_cache(connection: asyncpg.Connection) -> None:
    await connection.execute("DELETE FROM vector_similarity_cache")
    await connection.executemany(
        "INSERT INTO vector_similarity_cache"
        " (codebase_id, query_vector_hash, target_file_path, similarity_score)"
        " VALUES ($1, 'h', $2, 0.5)",
        CACHE_ROWS,
    )


async def cached(connection: asyncpg.Connection) -> set[tuple[str, str]]:
    rows = await connection.fetch(
        "SELECT codebase_id, target_file_path FROM vector_similarity_cache"
    )
    return {(r["codebase_id"], r["target_file_path"]) for r in rows}


INSERT_VECTOR: Final = """
INSERT INTO vector_search (codebase_id, file_path, content_type, content, vector_embedding)
VALUES ($1, $2, 'function', 'body', array_fill(0.5::real, ARRAY[1536])::vector)"""


async def test_writes_to_vector_search_invalidate_their_codebase_and_unscoped_entries(
    migrated_dsn: str,
) -> None:
    keep_b_and_rules = {("b", "vector_search:2"), ("*", "rules:4")}
    keep_a_and_rules = {("a", "vector_search:1"), ("*", "rules:4")}
    async with connected(migrated_dsn) as connection:
        await fill_cache(connection)
        assert await cached(connection) == set(CACHE_ROWS)
        await connection.execute(INSERT_VECTOR, "a", "x.py")
        assert await cached(connection) == keep_b_and_rules

        await connection.execute(INSERT_VECTOR, "b", "y.py")
        await fill_cache(connection)
        await connection.execute("UPDATE vector_search SET content = 'new' WHERE codebase_id = 'b'")
        assert await cached(connection) == keep_a_and_rules

        # an update that moves a row between codebases invalidates both
        await fill_cache(connection)
        await connection.execute(
            "UPDATE vector_search SET codebase_id = 'b' WHERE codebase_id = 'a'"
        )
        assert await cached(connection) == {("*", "rules:4")}

        await fill_cache(connection)
        await connection.execute(INSERT_VECTOR, "a", "z.py")
        await fill_cache(connection)
        assert (
            await connection.execute("DELETE FROM vector_search WHERE codebase_id = 'a'")
            == "DELETE 1"
        )
        assert await cached(connection) == keep_b_and_rules

        # a statement that changes no row of a codebase leaves its entries alone
        await fill_cache(connection)
        await connection.execute("DELETE FROM vector_search WHERE codebase_id = 'nobody'")
        assert await cached(connection) == keep_a_and_rules | keep_b_and_rules

        await fill_cache(connection)
        await connection.execute("TRUNCATE vector_search")
        assert await cached(connection) == {("*", "rules:4")}


async def test_writes_to_rules_invalidate_only_rules_entries(migrated_dsn: str) -> None:
    vector_entries = {row for row in CACHE_ROWS if row[1].startswith("vector_search:")}
    async with connected(migrated_dsn) as connection:
        await fill_cache(connection)
        rule_id = await connection.fetchval("INSERT INTO rules (name) VALUES ('r') RETURNING id")
        assert await cached(connection) == vector_entries

        await fill_cache(connection)
        await connection.execute("UPDATE rules SET priority = 5 WHERE id = $1", rule_id)
        assert await cached(connection) == vector_entries

        await fill_cache(connection)
        await connection.execute("DELETE FROM rules WHERE id = $1", rule_id)
        assert await cached(connection) == vector_entries

        await fill_cache(connection)
        await connection.execute("TRUNCATE rules CASCADE")
        assert await cached(connection) == vector_entries


# -- timing -------------------------------------------------------------------------------


async def test_each_migration_and_the_whole_chain_are_fast(empty_dsn: str) -> None:
    result = await Migrator(empty_dsn).apply()
    assert result.applied == HEAD_VERSIONS
    async with connected(empty_dsn) as connection:
        rows = await connection.fetch(
            "SELECT version, name, execution_ms FROM codeatlas_schema_migrations ORDER BY version"
        )
    print(f"\nmigration timings on {empty_dsn.split('@')[-1].split('?')[0]}:")
    for row in rows:
        print(f"  {row['version']}_{row['name']:<40} {row['execution_ms']:8.1f} ms")
    total_sql = sum(row["execution_ms"] for row in rows)
    print(f"  sum of migrations {total_sql:.1f} ms; whole apply() {result.elapsed_ms:.1f} ms")
    slow = [(r["version"], r["execution_ms"]) for r in rows if r["execution_ms"] >= 1000.0]
    assert slow == [], "every migration must run in well under a second on an empty database"
    assert result.elapsed_ms < 5000.0
