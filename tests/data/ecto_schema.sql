-- The schema the Elixir application's Ecto leaves behind, written the way ecto_sql's
-- PostgreSQL adapter emits it (schema-reference.md §1.1): uuid keys without a default,
-- timestamps() as timestamp(0) NOT NULL without a default, the usec timestamps as plain
-- `timestamp`, Ecto's index names (PostgreSQL cuts the two long ones to 63 bytes), and
-- the IVFFlat indexes as the seed's fix 3d44a367 wrote them. No codeatlas triggers or
-- functions. Migrations 11-13 already dropped the legacy tables, as the seed's do.
--
-- Three sections, split on their marker lines by the tests: the 2024 base tables alone
-- are the starting point of the legacy-data tests.

-- ecto:2024 ------------------------------------------------------------------------------
CREATE EXTENSION IF NOT EXISTS vector;

-- 20240101000002_create_core_tables (the table codeatlas serves)
CREATE TABLE "rules" (
    "id" uuid,
    "name" varchar(255) NOT NULL,
    "description" text,
    "category" varchar(255),
    "condition" jsonb DEFAULT '{}',
    "action" jsonb DEFAULT '{}',
    "metadata" jsonb DEFAULT '{}',
    "priority" integer DEFAULT 0,
    "active" boolean DEFAULT true,
    "version" integer DEFAULT 1,
    "parent_id" uuid CONSTRAINT "rules_parent_id_fkey" REFERENCES "rules"("id") ON DELETE SET NULL,
    "embedding" vector(768),
    "inserted_at" timestamp(0) NOT NULL,
    "updated_at" timestamp(0) NOT NULL,
    PRIMARY KEY ("id")
);
CREATE INDEX "rules_name_index" ON "rules" ("name");
CREATE INDEX "rules_category_index" ON "rules" ("category");
CREATE INDEX "rules_active_index" ON "rules" ("active");
CREATE INDEX "rules_priority_index" ON "rules" ("priority");
CREATE INDEX "rules_parent_id_index" ON "rules" ("parent_id");
CREATE INDEX "rules_condition_index" ON "rules" USING gin ("condition");
CREATE INDEX "rules_metadata_index" ON "rules" USING gin ("metadata");

-- 20240101000004_create_code_analysis_tables
CREATE TABLE "code_files" (
    "id" uuid,
    "file_path" varchar(255) NOT NULL,
    "project_name" varchar(255) NOT NULL,
    "content" text,
    "language" varchar(255),
    "size_bytes" integer,
    "line_count" integer,
    "hash" varchar(255),
    "metadata" jsonb DEFAULT '{}',
    "inserted_at" timestamp(0) NOT NULL,
    "updated_at" timestamp(0) NOT NULL,
    PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "code_files_project_name_file_path_index"
    ON "code_files" ("project_name", "file_path");
CREATE INDEX "code_files_language_index" ON "code_files" ("language");
CREATE INDEX "code_files_hash_index" ON "code_files" ("hash");

CREATE TABLE "code_embeddings" (
    "id" uuid,
    "code_file_id" uuid CONSTRAINT "code_embeddings_code_file_id_fkey"
        REFERENCES "code_files"("id") ON DELETE CASCADE,
    "chunk_index" integer NOT NULL,
    "chunk_text" text NOT NULL,
    "embedding" vector(768),
    "metadata" jsonb DEFAULT '{}',
    "inserted_at" timestamp(0) NOT NULL,
    "updated_at" timestamp(0) NOT NULL,
    PRIMARY KEY ("id")
);
CREATE INDEX "code_embeddings_code_file_id_index" ON "code_embeddings" ("code_file_id");
CREATE INDEX "code_embeddings_chunk_index_index" ON "code_embeddings" ("chunk_index");

CREATE TABLE "code_locations" (
    "id" uuid,
    "project" varchar(255) NOT NULL,
    "file_path" varchar(255) NOT NULL,
    "line_start" integer NOT NULL,
    "line_end" integer NOT NULL,
    "column_start" integer,
    "column_end" integer,
    "symbol_type" varchar(255) NOT NULL,
    "symbol_name" varchar(255) NOT NULL,
    "parent_symbol" varchar(255),
    "signature" text,
    "documentation" text,
    "metadata" jsonb DEFAULT '{}',
    "embedding" vector(768),
    "inserted_at" timestamp(0) NOT NULL,
    "updated_at" timestamp(0) NOT NULL,
    PRIMARY KEY ("id")
);
CREATE INDEX "code_locations_project_file_path_index" ON "code_locations" ("project", "file_path");
CREATE INDEX "code_locations_symbol_type_symbol_name_index"
    ON "code_locations" ("symbol_type", "symbol_name");
CREATE INDEX "code_locations_parent_symbol_index" ON "code_locations" ("parent_symbol");

-- 20240101000005_create_git_and_cache_tables
CREATE TABLE "rag_documents" (
    "id" uuid,
    "source_type" varchar(255) NOT NULL,
    "source_id" varchar(255) NOT NULL,
    "content" text NOT NULL,
    "embedding" vector(768),
    "metadata" jsonb DEFAULT '{}',
    "token_count" integer,
    "last_accessed" timestamp(0),
    "access_count" integer DEFAULT 0,
    "inserted_at" timestamp(0) NOT NULL,
    "updated_at" timestamp(0) NOT NULL,
    PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "rag_documents_source_type_source_id_index"
    ON "rag_documents" ("source_type", "source_id");
CREATE INDEX "rag_documents_last_accessed_index" ON "rag_documents" ("last_accessed");
CREATE INDEX "rag_documents_access_count_index" ON "rag_documents" ("access_count");

CREATE TABLE "rag_queries" (
    "id" uuid,
    "query_text" text NOT NULL,
    "query_embedding" vector(768),
    "result_ids" uuid[] DEFAULT ARRAY[]::uuid[],
    "response" text,
    "model_used" varchar(255),
    "tokens_used" integer,
    "latency_ms" integer,
    "metadata" jsonb DEFAULT '{}',
    "inserted_at" timestamp(0) NOT NULL,
    "updated_at" timestamp(0) NOT NULL,
    PRIMARY KEY ("id")
);
CREATE INDEX "rag_queries_inserted_at_index" ON "rag_queries" ("inserted_at");

CREATE TABLE "rag_feedback" (
    "id" uuid,
    "query_id" uuid CONSTRAINT "rag_feedback_query_id_fkey"
        REFERENCES "rag_queries"("id") ON DELETE CASCADE,
    "document_id" uuid CONSTRAINT "rag_feedback_document_id_fkey"
        REFERENCES "rag_documents"("id") ON DELETE CASCADE,
    "relevance_score" float,
    "user_rating" integer,
    "metadata" jsonb DEFAULT '{}',
    "inserted_at" timestamp(0) NOT NULL,
    "updated_at" timestamp(0) NOT NULL,
    PRIMARY KEY ("id")
);
CREATE INDEX "rag_feedback_query_id_index" ON "rag_feedback" ("query_id");
CREATE INDEX "rag_feedback_document_id_index" ON "rag_feedback" ("document_id");

CREATE TABLE "semantic_cache" (
    "id" uuid,
    "cache_key" varchar(255) NOT NULL,
    "query" text NOT NULL,
    "query_embedding" vector(768),
    "response" text NOT NULL,
    "model" varchar(255),
    "template_id" varchar(255),
    "tokens_used" integer,
    "cost_cents" integer,
    "hit_count" integer DEFAULT 0,
    "last_accessed" timestamp(0),
    "ttl_seconds" integer,
    "metadata" jsonb DEFAULT '{}',
    "inserted_at" timestamp(0) NOT NULL,
    "updated_at" timestamp(0) NOT NULL,
    PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "semantic_cache_cache_key_index" ON "semantic_cache" ("cache_key");
CREATE INDEX "semantic_cache_last_accessed_index" ON "semantic_cache" ("last_accessed");
CREATE INDEX "semantic_cache_hit_count_index" ON "semantic_cache" ("hit_count");

-- ecto:2025 ------------------------------------------------------------------------------

-- 20250101000007_create_semantic_code_search_tables
CREATE TABLE "codebase_metadata" (
    "id" bigserial,
    "codebase_id" varchar(255) NOT NULL,
    "codebase_path" varchar(500) NOT NULL,
    "path" varchar(500) NOT NULL,
    "size" bigint DEFAULT 0 NOT NULL,
    "lines" integer DEFAULT 0 NOT NULL,
    "language" varchar(50) DEFAULT 'unknown' NOT NULL,
    "last_modified" bigint DEFAULT 0 NOT NULL,
    "file_type" varchar(50) DEFAULT 'source' NOT NULL,
    "cyclomatic_complexity" float DEFAULT 0.0 NOT NULL,
    "cognitive_complexity" float DEFAULT 0.0 NOT NULL,
    "maintainability_index" float DEFAULT 0.0 NOT NULL,
    "nesting_depth" integer DEFAULT 0 NOT NULL,
    "function_count" integer DEFAULT 0 NOT NULL,
    "class_count" integer DEFAULT 0 NOT NULL,
    "struct_count" integer DEFAULT 0 NOT NULL,
    "enum_count" integer DEFAULT 0 NOT NULL,
    "trait_count" integer DEFAULT 0 NOT NULL,
    "interface_count" integer DEFAULT 0 NOT NULL,
    "total_lines" integer DEFAULT 0 NOT NULL,
    "code_lines" integer DEFAULT 0 NOT NULL,
    "comment_lines" integer DEFAULT 0 NOT NULL,
    "blank_lines" integer DEFAULT 0 NOT NULL,
    "halstead_vocabulary" integer DEFAULT 0 NOT NULL,
    "halstead_length" integer DEFAULT 0 NOT NULL,
    "halstead_volume" float DEFAULT 0.0 NOT NULL,
    "halstead_difficulty" float DEFAULT 0.0 NOT NULL,
    "halstead_effort" float DEFAULT 0.0 NOT NULL,
    "pagerank_score" float DEFAULT 0.0 NOT NULL,
    "centrality_score" float DEFAULT 0.0 NOT NULL,
    "dependency_count" integer DEFAULT 0 NOT NULL,
    "dependent_count" integer DEFAULT 0 NOT NULL,
    "technical_debt_ratio" float DEFAULT 0.0 NOT NULL,
    "code_smells_count" integer DEFAULT 0 NOT NULL,
    "duplication_percentage" float DEFAULT 0.0 NOT NULL,
    "security_score" float DEFAULT 0.0 NOT NULL,
    "vulnerability_count" integer DEFAULT 0 NOT NULL,
    "quality_score" float DEFAULT 0.0 NOT NULL,
    "test_coverage" float DEFAULT 0.0 NOT NULL,
    "documentation_coverage" float DEFAULT 0.0 NOT NULL,
    "domains" jsonb DEFAULT '[]'::jsonb,
    "patterns" jsonb DEFAULT '[]'::jsonb,
    "features" jsonb DEFAULT '[]'::jsonb,
    "business_context" jsonb DEFAULT '[]'::jsonb,
    "performance_characteristics" jsonb DEFAULT '[]'::jsonb,
    "security_characteristics" jsonb DEFAULT '[]'::jsonb,
    "dependencies" jsonb DEFAULT '[]'::jsonb,
    "related_files" jsonb DEFAULT '[]'::jsonb,
    "imports" jsonb DEFAULT '[]'::jsonb,
    "exports" jsonb DEFAULT '[]'::jsonb,
    "functions" jsonb DEFAULT '[]'::jsonb,
    "classes" jsonb DEFAULT '[]'::jsonb,
    "structs" jsonb DEFAULT '[]'::jsonb,
    "enums" jsonb DEFAULT '[]'::jsonb,
    "traits" jsonb DEFAULT '[]'::jsonb,
    "vector_embedding" vector(1536),
    "inserted_at" timestamp(0) DEFAULT NOW() NOT NULL,
    "updated_at" timestamp(0) DEFAULT NOW() NOT NULL,
    PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "codebase_metadata_codebase_id_path_index"
    ON "codebase_metadata" ("codebase_id", "path");
CREATE INDEX "codebase_metadata_codebase_id_index" ON "codebase_metadata" ("codebase_id");
CREATE INDEX "codebase_metadata_codebase_path_index" ON "codebase_metadata" ("codebase_path");
CREATE INDEX "codebase_metadata_codebase_id_language_index"
    ON "codebase_metadata" ("codebase_id", "language");
CREATE INDEX "codebase_metadata_codebase_id_file_type_index"
    ON "codebase_metadata" ("codebase_id", "file_type");
CREATE INDEX "codebase_metadata_codebase_id_quality_score_index"
    ON "codebase_metadata" ("codebase_id", "quality_score");
-- Ecto sends the full name; PostgreSQL keeps its first 63 bytes
CREATE INDEX "codebase_metadata_codebase_id_cyclomatic_complexity_cognitive_complexity_index"
    ON "codebase_metadata" ("codebase_id", "cyclomatic_complexity", "cognitive_complexity");
CREATE INDEX "codebase_metadata_codebase_id_pagerank_score_index"
    ON "codebase_metadata" ("codebase_id", "pagerank_score");

CREATE TABLE "codebase_registry" (
    "id" bigserial,
    "codebase_id" varchar(255) NOT NULL,
    "codebase_path" varchar(500) NOT NULL,
    "codebase_name" varchar(255) NOT NULL,
    "description" text,
    "language" varchar(50),
    "framework" varchar(100),
    "last_analyzed" timestamp(0),
    "analysis_status" varchar(50) DEFAULT 'pending',
    "metadata" jsonb DEFAULT '{}'::jsonb,
    "inserted_at" timestamp(0) DEFAULT NOW() NOT NULL,
    "updated_at" timestamp(0) DEFAULT NOW() NOT NULL,
    PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "codebase_registry_codebase_id_index" ON "codebase_registry" ("codebase_id");
CREATE INDEX "codebase_registry_codebase_path_index" ON "codebase_registry" ("codebase_path");
CREATE INDEX "codebase_registry_analysis_status_index"
    ON "codebase_registry" ("analysis_status");

CREATE TABLE "graph_nodes" (
    "id" bigserial,
    "codebase_id" varchar(255) NOT NULL,
    "node_id" varchar(255) NOT NULL,
    "node_type" varchar(100) NOT NULL,
    "name" varchar(255) NOT NULL,
    "file_path" varchar(500) NOT NULL,
    "line_number" integer,
    "vector_embedding" vector(1536),
    "vector_magnitude" float,
    "metadata" jsonb DEFAULT '{}'::jsonb,
    "created_at" timestamp(0) DEFAULT NOW(),
    PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "graph_nodes_codebase_id_node_id_index"
    ON "graph_nodes" ("codebase_id", "node_id");
CREATE INDEX "graph_nodes_codebase_id_index" ON "graph_nodes" ("codebase_id");
CREATE INDEX "graph_nodes_codebase_id_node_type_index" ON "graph_nodes" ("codebase_id", "node_type");

CREATE TABLE "graph_edges" (
    "id" bigserial,
    "codebase_id" varchar(255) NOT NULL,
    "edge_id" varchar(255) NOT NULL,
    "from_node_id" varchar(255) NOT NULL,
    "to_node_id" varchar(255) NOT NULL,
    "edge_type" varchar(100) NOT NULL,
    "weight" float DEFAULT 1.0 NOT NULL,
    "metadata" jsonb DEFAULT '{}'::jsonb,
    "created_at" timestamp(0) DEFAULT NOW(),
    PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "graph_edges_codebase_id_edge_id_index"
    ON "graph_edges" ("codebase_id", "edge_id");
CREATE INDEX "graph_edges_codebase_id_index" ON "graph_edges" ("codebase_id");
CREATE INDEX "graph_edges_from_node_id_index" ON "graph_edges" ("from_node_id");
CREATE INDEX "graph_edges_to_node_id_index" ON "graph_edges" ("to_node_id");
CREATE INDEX "graph_edges_edge_type_index" ON "graph_edges" ("edge_type");

CREATE TABLE "graph_types" (
    "id" bigserial,
    "graph_type" varchar(100) NOT NULL,
    "description" text,
    "created_at" timestamp(0) DEFAULT NOW(),
    PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "graph_types_graph_type_index" ON "graph_types" ("graph_type");
INSERT INTO graph_types (graph_type, description) VALUES
    ('CallGraph', 'Function call dependencies (DAG)'),
    ('ImportGraph', 'Module import dependencies (DAG)'),
    ('SemanticGraph', 'Conceptual relationships (General Graph)'),
    ('DataFlowGraph', 'Variable and data dependencies (DAG)')
ON CONFLICT (graph_type) DO NOTHING;

CREATE TABLE "vector_search" (
    "id" bigserial,
    "codebase_id" varchar(255) NOT NULL,
    "file_path" varchar(500) NOT NULL,
    "content_type" varchar(100) NOT NULL,
    "content" text NOT NULL,
    "vector_embedding" vector(1536) NOT NULL,
    "metadata" jsonb DEFAULT '{}'::jsonb,
    "created_at" timestamp(0) DEFAULT NOW(),
    PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "vector_search_codebase_id_file_path_content_type_index"
    ON "vector_search" ("codebase_id", "file_path", "content_type");
CREATE INDEX "vector_search_codebase_id_index" ON "vector_search" ("codebase_id");

CREATE TABLE "vector_similarity_cache" (
    "id" bigserial,
    "codebase_id" varchar(255) NOT NULL,
    "query_vector_hash" varchar(64) NOT NULL,
    "target_file_path" varchar(500) NOT NULL,
    "similarity_score" float NOT NULL,
    "created_at" timestamp(0) DEFAULT NOW(),
    PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "vector_similarity_cache_codebase_id_query_vector_hash_target_file_path_index"
    ON "vector_similarity_cache" ("codebase_id", "query_vector_hash", "target_file_path");
CREATE INDEX "vector_similarity_cache_codebase_id_index"
    ON "vector_similarity_cache" ("codebase_id");
CREATE INDEX "vector_similarity_cache_query_vector_hash_index"
    ON "vector_similarity_cache" ("query_vector_hash");

CREATE INDEX idx_codebase_metadata_vector
    ON codebase_metadata USING ivfflat (vector_embedding vector_cosine_ops) WITH (lists = 100);
CREATE INDEX idx_graph_nodes_vector
    ON graph_nodes USING ivfflat (vector_embedding vector_cosine_ops) WITH (lists = 100);
CREATE INDEX idx_vector_search_embedding
    ON vector_search USING ivfflat (vector_embedding vector_cosine_ops) WITH (lists = 100);

-- 20250101000008_add_missing_vector_indexes
CREATE INDEX IF NOT EXISTS idx_rules_embedding_vector
    ON rules USING ivfflat (embedding vector_cosine_ops) WITH (lists = 100);
CREATE INDEX IF NOT EXISTS idx_code_embeddings_embedding_vector
    ON code_embeddings USING ivfflat (embedding vector_cosine_ops) WITH (lists = 100);
CREATE INDEX IF NOT EXISTS idx_code_locations_embedding_vector
    ON code_locations USING ivfflat (embedding vector_cosine_ops) WITH (lists = 100);
CREATE INDEX IF NOT EXISTS idx_rag_documents_embedding_vector
    ON rag_documents USING ivfflat (embedding vector_cosine_ops) WITH (lists = 100);
CREATE INDEX IF NOT EXISTS idx_rag_queries_query_embedding_vector
    ON rag_queries USING ivfflat (query_embedding vector_cosine_ops) WITH (lists = 100);
CREATE INDEX IF NOT EXISTS idx_semantic_cache_query_embedding_vector
    ON semantic_cache USING ivfflat (query_embedding vector_cosine_ops) WITH (lists = 100);

-- 20250101000009_create_autonomy_tables
CREATE TABLE "rule_executions" (
    "id" uuid,
    "rule_id" uuid NOT NULL CONSTRAINT "rule_executions_rule_id_fkey"
        REFERENCES "rules"("id") ON DELETE CASCADE,
    "correlation_id" uuid NOT NULL,
    "confidence" float NOT NULL,
    "decision" varchar(255) NOT NULL,
    "reasoning" varchar(255),
    "execution_time_ms" integer NOT NULL,
    "context" jsonb DEFAULT '{}' NOT NULL,
    "outcome" varchar(255),
    "outcome_recorded_at" timestamp,
    "executed_at" timestamp NOT NULL,
    PRIMARY KEY ("id")
);
CREATE INDEX "rule_executions_rule_id_index" ON "rule_executions" ("rule_id");
CREATE INDEX "rule_executions_correlation_id_index" ON "rule_executions" ("correlation_id");
CREATE INDEX "rule_executions_executed_at_index" ON "rule_executions" ("executed_at");
CREATE INDEX "rule_executions_decision_index" ON "rule_executions" ("decision");
CREATE INDEX "rule_executions_outcome_index" ON "rule_executions" ("outcome");
CREATE INDEX "rule_executions_rule_id_executed_at_index"
    ON "rule_executions" ("rule_id", "executed_at");
CREATE INDEX "rule_executions_context_index" ON "rule_executions" USING gin ("context");

CREATE TABLE "rule_evolution_proposals" (
    "id" uuid,
    "rule_id" uuid NOT NULL CONSTRAINT "rule_evolution_proposals_rule_id_fkey"
        REFERENCES "rules"("id") ON DELETE CASCADE,
    "proposer_agent_id" varchar(255) NOT NULL,
    "proposed_patterns" jsonb[] NOT NULL,
    "proposed_threshold" float,
    "evolution_reasoning" varchar(255) NOT NULL,
    "trial_results" jsonb,
    "trial_confidence" float,
    "votes" jsonb DEFAULT '{}',
    "consensus_reached" boolean DEFAULT false,
    "status" varchar(255) DEFAULT 'proposed',
    "inserted_at" timestamp NOT NULL,
    "updated_at" timestamp NOT NULL,
    PRIMARY KEY ("id")
);
CREATE INDEX "rule_evolution_proposals_rule_id_index" ON "rule_evolution_proposals" ("rule_id");
CREATE INDEX "rule_evolution_proposals_proposer_agent_id_index"
    ON "rule_evolution_proposals" ("proposer_agent_id");
CREATE INDEX "rule_evolution_proposals_status_index" ON "rule_evolution_proposals" ("status");
CREATE INDEX "rule_evolution_proposals_consensus_reached_index"
    ON "rule_evolution_proposals" ("consensus_reached");
CREATE INDEX "rule_evolution_proposals_inserted_at_index"
    ON "rule_evolution_proposals" ("inserted_at");
CREATE INDEX "rule_evolution_proposals_votes_index"
    ON "rule_evolution_proposals" USING gin ("votes");
CREATE INDEX "rule_evolution_proposals_rule_id_status_index"
    ON "rule_evolution_proposals" ("rule_id", "status");
CREATE INDEX "rule_evolution_proposals_status_consensus_reached_index"
    ON "rule_evolution_proposals" ("status", "consensus_reached");

-- 20250101000010_create_quality_tracking_tables
CREATE TABLE "quality_runs" (
    "id" bigserial,
    "tool" varchar(255) NOT NULL,
    "status" varchar(255) NOT NULL,
    "warning_count" integer DEFAULT 0 NOT NULL,
    "metadata" jsonb DEFAULT '{}',
    "started_at" timestamp,
    "finished_at" timestamp,
    "inserted_at" timestamp(0) NOT NULL,
    "updated_at" timestamp(0) NOT NULL,
    PRIMARY KEY ("id")
);
CREATE INDEX "quality_runs_tool_index" ON "quality_runs" ("tool");
CREATE INDEX "quality_runs_status_index" ON "quality_runs" ("status");
CREATE INDEX "quality_runs_tool_status_index" ON "quality_runs" ("tool", "status");
CREATE INDEX "quality_runs_inserted_at_index" ON "quality_runs" ("inserted_at");
CREATE INDEX "quality_runs_started_at_index" ON "quality_runs" ("started_at");
CREATE INDEX "quality_runs_metadata_index" ON "quality_runs" USING gin ("metadata");

CREATE TABLE "quality_findings" (
    "id" bigserial,
    "run_id" bigint NOT NULL CONSTRAINT "quality_findings_run_id_fkey"
        REFERENCES "quality_runs"("id") ON DELETE CASCADE,
    "category" varchar(255),
    "message" varchar(255) NOT NULL,
    "file" varchar(255),
    "line" integer,
    "severity" varchar(255),
    "extra" jsonb DEFAULT '{}',
    "inserted_at" timestamp(0) NOT NULL,
    PRIMARY KEY ("id")
);
CREATE INDEX "quality_findings_run_id_index" ON "quality_findings" ("run_id");
CREATE INDEX "quality_findings_category_index" ON "quality_findings" ("category");
CREATE INDEX "quality_findings_severity_index" ON "quality_findings" ("severity");
CREATE INDEX "quality_findings_file_index" ON "quality_findings" ("file");
CREATE INDEX "quality_findings_run_id_severity_index" ON "quality_findings" ("run_id", "severity");
CREATE INDEX "quality_findings_category_severity_index"
    ON "quality_findings" ("category", "severity");
CREATE INDEX "quality_findings_extra_index" ON "quality_findings" USING gin ("extra");
CREATE INDEX "quality_findings_run_id_category_severity_index"
    ON "quality_findings" ("run_id", "category", "severity");

-- 20250101000011_create_technology_detection_tables (technology_knowledge dropped after it)
CREATE TABLE "technology_patterns" (
    "id" bigserial,
    "technology_name" varchar(255) NOT NULL,
    "technology_type" varchar(255) NOT NULL,
    "version_pattern" varchar(255),
    "file_patterns" varchar(255)[] DEFAULT ARRAY[]::varchar[],
    "directory_patterns" varchar(255)[] DEFAULT ARRAY[]::varchar[],
    "config_files" varchar(255)[] DEFAULT ARRAY[]::varchar[],
    "build_command" varchar(255),
    "dev_command" varchar(255),
    "install_command" varchar(255),
    "test_command" varchar(255),
    "output_directory" varchar(255),
    "confidence_weight" float DEFAULT 1.0,
    "detection_count" integer DEFAULT 0,
    "success_rate" float DEFAULT 1.0,
    "last_detected_at" timestamp(0),
    "extended_metadata" jsonb,
    "created_at" timestamp(0) DEFAULT NOW(),
    "updated_at" timestamp(0) DEFAULT NOW(),
    PRIMARY KEY ("id")
);
CREATE INDEX "technology_patterns_technology_name_index"
    ON "technology_patterns" ("technology_name");
CREATE INDEX "technology_patterns_technology_type_index"
    ON "technology_patterns" ("technology_type");
CREATE UNIQUE INDEX "technology_patterns_technology_name_technology_type_index"
    ON "technology_patterns" ("technology_name", "technology_type");
CREATE INDEX "technology_patterns_detection_count_index"
    ON "technology_patterns" ("detection_count");
CREATE INDEX "technology_patterns_success_rate_index" ON "technology_patterns" ("success_rate");
CREATE INDEX "technology_patterns_last_detected_at_index"
    ON "technology_patterns" ("last_detected_at");
CREATE INDEX "technology_patterns_extended_metadata_index"
    ON "technology_patterns" USING gin ("extended_metadata");

CREATE TABLE "technology_templates" (
    "id" bigserial,
    "identifier" varchar(255) NOT NULL,
    "category" varchar(255) NOT NULL,
    "version" varchar(255),
    "source" varchar(255),
    "template" jsonb NOT NULL,
    "metadata" jsonb DEFAULT '{}',
    "checksum" varchar(255),
    "inserted_at" timestamp NOT NULL,
    "updated_at" timestamp NOT NULL,
    PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "technology_templates_identifier_index"
    ON "technology_templates" ("identifier");
CREATE INDEX "technology_templates_category_index" ON "technology_templates" ("category");
CREATE INDEX "technology_templates_version_index" ON "technology_templates" ("version");
CREATE INDEX "technology_templates_category_version_index"
    ON "technology_templates" ("category", "version");

-- 20250101000012_create_codebase_snapshots_table (detection_events dropped after it)
CREATE TABLE "codebase_snapshots" (
    "id" bigserial,
    "codebase_id" varchar(255) NOT NULL,
    "snapshot_id" integer NOT NULL,
    "metadata" jsonb,
    "summary" jsonb,
    "detected_technologies" varchar(255)[] DEFAULT ARRAY[]::varchar[],
    "features" jsonb,
    "inserted_at" timestamp(0) DEFAULT NOW(),
    PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "codebase_snapshots_codebase_id_snapshot_id_index"
    ON "codebase_snapshots" ("codebase_id", "snapshot_id");
CREATE INDEX "codebase_snapshots_codebase_id_index" ON "codebase_snapshots" ("codebase_id");
CREATE INDEX "codebase_snapshots_snapshot_id_index" ON "codebase_snapshots" ("snapshot_id");
CREATE INDEX "codebase_snapshots_inserted_at_index" ON "codebase_snapshots" ("inserted_at");
CREATE INDEX "codebase_snapshots_detected_technologies_index"
    ON "codebase_snapshots" USING gin ("detected_technologies");
CREATE INDEX "codebase_snapshots_metadata_index" ON "codebase_snapshots" USING gin ("metadata");
CREATE INDEX "codebase_snapshots_features_index" ON "codebase_snapshots" USING gin ("features");

-- 20250101000013_create_git_coordination_tables (git_commits, git_sessions dropped after it)
CREATE TABLE "git_agent_sessions" (
    "id" bigserial,
    "agent_id" varchar(255) NOT NULL,
    "branch" varchar(255),
    "workspace_path" varchar(255) NOT NULL,
    "correlation_id" varchar(255),
    "status" varchar(255) DEFAULT 'active' NOT NULL,
    "meta" jsonb DEFAULT '{}',
    "inserted_at" timestamp NOT NULL,
    "updated_at" timestamp NOT NULL,
    PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "git_agent_sessions_agent_id_index" ON "git_agent_sessions" ("agent_id");
CREATE INDEX "git_agent_sessions_branch_index" ON "git_agent_sessions" ("branch");
CREATE INDEX "git_agent_sessions_status_index" ON "git_agent_sessions" ("status");
CREATE INDEX "git_agent_sessions_correlation_id_index"
    ON "git_agent_sessions" ("correlation_id");
CREATE INDEX "git_agent_sessions_meta_index" ON "git_agent_sessions" USING gin ("meta");

CREATE TABLE "git_pending_merges" (
    "id" bigserial,
    "branch" varchar(255) NOT NULL,
    "pr_number" integer,
    "agent_id" varchar(255) NOT NULL,
    "task_id" varchar(255),
    "correlation_id" varchar(255),
    "meta" jsonb DEFAULT '{}',
    "inserted_at" timestamp NOT NULL,
    "updated_at" timestamp NOT NULL,
    PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "git_pending_merges_branch_index" ON "git_pending_merges" ("branch");
CREATE INDEX "git_pending_merges_agent_id_index" ON "git_pending_merges" ("agent_id");
CREATE INDEX "git_pending_merges_pr_number_index" ON "git_pending_merges" ("pr_number");
CREATE INDEX "git_pending_merges_task_id_index" ON "git_pending_merges" ("task_id");
CREATE INDEX "git_pending_merges_correlation_id_index"
    ON "git_pending_merges" ("correlation_id");
CREATE INDEX "git_pending_merges_meta_index" ON "git_pending_merges" USING gin ("meta");

CREATE TABLE "git_merge_history" (
    "id" bigserial,
    "branch" varchar(255) NOT NULL,
    "agent_id" varchar(255),
    "task_id" varchar(255),
    "correlation_id" varchar(255),
    "merge_commit" varchar(255),
    "status" varchar(255) NOT NULL,
    "details" jsonb DEFAULT '{}',
    "inserted_at" timestamp NOT NULL,
    "updated_at" timestamp NOT NULL,
    PRIMARY KEY ("id")
);
CREATE INDEX "git_merge_history_branch_index" ON "git_merge_history" ("branch");
CREATE INDEX "git_merge_history_agent_id_index" ON "git_merge_history" ("agent_id");
CREATE INDEX "git_merge_history_status_index" ON "git_merge_history" ("status");
CREATE INDEX "git_merge_history_merge_commit_index" ON "git_merge_history" ("merge_commit");
CREATE INDEX "git_merge_history_inserted_at_index" ON "git_merge_history" ("inserted_at");
CREATE INDEX "git_merge_history_details_index" ON "git_merge_history" USING gin ("details");
CREATE INDEX "git_merge_history_branch_status_index"
    ON "git_merge_history" ("branch", "status");
CREATE INDEX "git_merge_history_agent_id_inserted_at_index"
    ON "git_merge_history" ("agent_id", "inserted_at");

-- ecto:ledger ----------------------------------------------------------------------------
-- Ecto's own ledger, as Ecto.Migration.SchemaMigration creates it.
CREATE TABLE "schema_migrations" (
    "version" bigint,
    "inserted_at" timestamp(0),
    PRIMARY KEY ("version")
);
INSERT INTO "schema_migrations" ("version", "inserted_at") VALUES
    (20240101000001, '2024-01-02 09:00:01'),
    (20240101000002, '2024-01-02 09:00:02'),
    (20240101000003, '2024-01-02 09:00:03'),
    (20240101000004, '2024-01-02 09:00:04'),
    (20240101000005, '2024-01-02 09:00:05'),
    (20240101000006, '2024-01-02 09:00:06'),
    (20240101000007, '2024-01-02 09:00:07'),
    (20240101000008, '2024-01-02 09:00:08'),
    (20250101000007, '2025-10-08 14:30:07'),
    (20250101000008, '2025-10-08 14:30:08'),
    (20250101000009, '2025-10-08 14:30:09'),
    (20250101000010, '2025-10-08 14:30:10'),
    (20250101000011, '2025-10-08 14:30:11'),
    (20250101000012, '2025-10-08 14:30:12'),
    (20250101000013, '2025-10-08 14:30:13'),
    (20250101000014, '2025-10-08 14:30:14');
