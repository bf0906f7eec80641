-- The seed's migration 07 (create_semantic_code_search_tables): codebase metadata and
-- registry, the code graph, vector_search and vector_similarity_cache, with the IVFFlat
-- indexes as the seed's fix (3d44a367) wrote them: cosine ops, lists = 100.
-- Existing Ecto-created tables are adopted (IF NOT EXISTS plus a column check).
-- codeatlas additions, all additive: timestamp defaults in UTC (the seed's NOW() is the
-- server's local time, while Ecto writes UTC), STORAGE PLAIN for vectors, and a record of
-- each vector index's row count at build time (these are built on empty tables, where
-- IVFFlat centroids mean nothing; `codeatlas index status` advises the rebuild).

-- migrate:up
CREATE TABLE IF NOT EXISTS codebase_metadata (
    id bigserial PRIMARY KEY,
    codebase_id varchar(255) NOT NULL,
    codebase_path varchar(500) NOT NULL,
    path varchar(500) NOT NULL,
    size bigint NOT NULL DEFAULT 0,
    lines integer NOT NULL DEFAULT 0,
    language varchar(50) NOT NULL DEFAULT 'unknown',
    last_modified bigint NOT NULL DEFAULT 0,
    file_type varchar(50) NOT NULL DEFAULT 'source',
    cyclomatic_complexity double precision NOT NULL DEFAULT 0.0,
    cognitive_complexity double precision NOT NULL DEFAULT 0.0,
    maintainability_index double precision NOT NULL DEFAULT 0.0,
    nesting_depth integer NOT NULL DEFAULT 0,
    function_count integer NOT NULL DEFAULT 0,
    class_count integer NOT NULL DEFAULT 0,
    struct_count integer NOT NULL DEFAULT 0,
    enum_count integer NOT NULL DEFAULT 0,
    trait_count integer NOT NULL DEFAULT 0,
    interface_count integer NOT NULL DEFAULT 0,
    total_lines integer NOT NULL DEFAULT 0,
    code_lines integer NOT NULL DEFAULT 0,
    comment_lines integer NOT NULL DEFAULT 0,
    blank_lines integer NOT NULL DEFAULT 0,
    halstead_vocabulary integer NOT NULL DEFAULT 0,
    halstead_length integer NOT NULL DEFAULT 0,
    halstead_volume double precision NOT NULL DEFAULT 0.0,
    halstead_difficulty double precision NOT NULL DEFAULT 0.0,
    halstead_effort double precision NOT NULL DEFAULT 0.0,
    pagerank_score double precision NOT NULL DEFAULT 0.0,
    centrality_score double precision NOT NULL DEFAULT 0.0,
    dependency_count integer NOT NULL DEFAULT 0,
    dependent_count integer NOT NULL DEFAULT 0,
    technical_debt_ratio double precision NOT NULL DEFAULT 0.0,
    code_smells_count integer NOT NULL DEFAULT 0,
    duplication_percentage double precision NOT NULL DEFAULT 0.0,
    security_score double precision NOT NULL DEFAULT 0.0,
    vulnerability_count integer NOT NULL DEFAULT 0,
    quality_score double precision NOT NULL DEFAULT 0.0,
    test_coverage double precision NOT NULL DEFAULT 0.0,
    documentation_coverage double precision NOT NULL DEFAULT 0.0,
    domains jsonb DEFAULT '[]'::jsonb,
    patterns jsonb DEFAULT '[]'::jsonb,
    features jsonb DEFAULT '[]'::jsonb,
    business_context jsonb DEFAULT '[]'::jsonb,
    performance_characteristics jsonb DEFAULT '[]'::jsonb,
    security_characteristics jsonb DEFAULT '[]'::jsonb,
    dependencies jsonb DEFAULT '[]'::jsonb,
    related_files jsonb DEFAULT '[]'::jsonb,
    imports jsonb DEFAULT '[]'::jsonb,
    exports jsonb DEFAULT '[]'::jsonb,
    functions jsonb DEFAULT '[]'::jsonb,
    classes jsonb DEFAULT '[]'::jsonb,
    structs jsonb DEFAULT '[]'::jsonb,
    enums jsonb DEFAULT '[]'::jsonb,
    traits jsonb DEFAULT '[]'::jsonb,
    vector_embedding vector(1536),
    inserted_at timestamp(0) NOT NULL DEFAULT now(),
    updated_at timestamp(0) NOT NULL DEFAULT now()
);
SELECT codeatlas_require_columns('codebase_metadata', ARRAY[
    'id bigint', 'codebase_id character varying(255)', 'codebase_path character varying(500)',
    'path character varying(500)', 'size bigint', 'lines integer',
    'language character varying(50)', 'last_modified bigint',
    'file_type character varying(50)', 'cyclomatic_complexity double precision',
    'cognitive_complexity double precision', 'maintainability_index double precision',
    'nesting_depth integer', 'function_count integer', 'class_count integer',
    'struct_count integer', 'enum_count integer', 'trait_count integer',
    'interface_count integer', 'total_lines integer', 'code_lines integer',
    'comment_lines integer', 'blank_lines integer', 'halstead_vocabulary integer',
    'halstead_length integer', 'halstead_volume double precision',
    'halstead_difficulty double precision', 'halstead_effort double precision',
    'pagerank_score double precision', 'centrality_score double precision',
    'dependency_count integer', 'dependent_count integer',
    'technical_debt_ratio double precision', 'code_smells_count integer',
    'duplication_percentage double precision', 'security_score double precision',
    'vulnerability_count integer', 'quality_score double precision',
    'test_coverage double precision', 'documentation_coverage double precision',
    'domains jsonb', 'patterns jsonb', 'features jsonb', 'business_context jsonb',
    'performance_characteristics jsonb', 'security_characteristics jsonb',
    'dependencies jsonb', 'related_files jsonb', 'imports jsonb', 'exports jsonb',
    'functions jsonb', 'classes jsonb', 'structs jsonb', 'enums jsonb', 'traits jsonb',
    'vector_embedding vector(1536)', 'inserted_at timestamp(0) without time zone',
    'updated_at timestamp(0) without time zone']);
ALTER TABLE codebase_metadata
    ALTER COLUMN inserted_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN updated_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN vector_embedding SET STORAGE PLAIN;
CREATE UNIQUE INDEX IF NOT EXISTS codebase_metadata_codebase_id_path_index
    ON codebase_metadata (codebase_id, path);
CREATE INDEX IF NOT EXISTS codebase_metadata_codebase_id_index ON codebase_metadata (codebase_id);
CREATE INDEX IF NOT EXISTS codebase_metadata_codebase_path_index
    ON codebase_metadata (codebase_path);
CREATE INDEX IF NOT EXISTS codebase_metadata_codebase_id_language_index
    ON codebase_metadata (codebase_id, language);
CREATE INDEX IF NOT EXISTS codebase_metadata_codebase_id_file_type_index
    ON codebase_metadata (codebase_id, file_type);
CREATE INDEX IF NOT EXISTS codebase_metadata_codebase_id_quality_score_index
    ON codebase_metadata (codebase_id, quality_score);
-- Ecto's name (codebase_metadata_codebase_id_cyclomatic_complexity_cognitive_complexity_index)
-- is longer than 63 bytes; PostgreSQL keeps the first 63, which is the name written here.
CREATE INDEX IF NOT EXISTS codebase_metadata_codebase_id_cyclomatic_complexity_cognitive_c
    ON codebase_metadata (codebase_id, cyclomatic_complexity, cognitive_complexity);
CREATE INDEX IF NOT EXISTS codebase_metadata_codebase_id_pagerank_score_index
    ON codebase_metadata (codebase_id, pagerank_score);

CREATE TABLE IF NOT EXISTS codebase_registry (
    id              bigserial PRIMARY KEY,
    codebase_id     varchar(255) NOT NULL,
    codebase_path   varchar(500) NOT NULL,
    codebase_name   varchar(255) NOT NULL,
    description     text,
    language        varchar(50),
    framework       varchar(100),
    last_analyzed   timestamp(0),
    analysis_status varchar(50) DEFAULT 'pending',
    metadata        jsonb DEFAULT '{}'::jsonb,
    inserted_at     timestamp(0) NOT NULL DEFAULT now(),
    updated_at      timestamp(0) NOT NULL DEFAULT now()
);
SELECT codeatlas_require_columns('codebase_registry', ARRAY[
    'id bigint', 'codebase_id character varying(255)', 'codebase_path character varying(500)',
    'codebase_name character varying(255)', 'description text',
    'language character varying(50)', 'framework character varying(100)',
    'last_analyzed timestamp(0) without time zone', 'analysis_status character varying(50)',
    'metadata jsonb', 'inserted_at timestamp(0) without time zone',
    'updated_at timestamp(0) without time zone']);
ALTER TABLE codebase_registry
    ALTER COLUMN inserted_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN updated_at SET DEFAULT (now() AT TIME ZONE 'utc');
CREATE UNIQUE INDEX IF NOT EXISTS codebase_registry_codebase_id_index
    ON codebase_registry (codebase_id);
CREATE INDEX IF NOT EXISTS codebase_registry_codebase_path_index
    ON codebase_registry (codebase_path);
CREATE INDEX IF NOT EXISTS codebase_registry_analysis_status_index
    ON codebase_registry (analysis_status);

CREATE TABLE IF NOT EXISTS graph_nodes (
    id               bigserial PRIMARY KEY,
    codebase_id      varchar(255) NOT NULL,
    node_id          varchar(255) NOT NULL,
    node_type        varchar(100) NOT NULL,
    name             varchar(255) NOT NULL,
    file_path        varchar(500) NOT NULL,
    line_number      integer,
    vector_embedding vector(1536),
    vector_magnitude double precision,
    metadata         jsonb DEFAULT '{}'::jsonb,
    created_at       timestamp(0) DEFAULT now()
);
SELECT codeatlas_require_columns('graph_nodes', ARRAY[
    'id bigint', 'codebase_id character varying(255)', 'node_id character varying(255)',
    'node_type character varying(100)', 'name character varying(255)',
    'file_path character varying(500)', 'line_number integer',
    'vector_embedding vector(1536)', 'vector_magnitude double precision', 'metadata jsonb',
    'created_at timestamp(0) without time zone']);
ALTER TABLE graph_nodes
    ALTER COLUMN created_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN vector_embedding SET STORAGE PLAIN;
CREATE UNIQUE INDEX IF NOT EXISTS graph_nodes_codebase_id_node_id_index
    ON graph_nodes (codebase_id, node_id);
CREATE INDEX IF NOT EXISTS graph_nodes_codebase_id_index ON graph_nodes (codebase_id);
CREATE INDEX IF NOT EXISTS graph_nodes_codebase_id_node_type_index
    ON graph_nodes (codebase_id, node_type);

-- No foreign keys to graph_nodes: the seed omits them on purpose (edges may arrive first).
CREATE TABLE IF NOT EXISTS graph_edges (
    id           bigserial PRIMARY KEY,
    codebase_id  varchar(255) NOT NULL,
    edge_id      varchar(255) NOT NULL,
    from_node_id varchar(255) NOT NULL,
    to_node_id   varchar(255) NOT NULL,
    edge_type    varchar(100) NOT NULL,
    weight       double precision NOT NULL DEFAULT 1.0,
    metadata     jsonb DEFAULT '{}'::jsonb,
    created_at   timestamp(0) DEFAULT now()
);
SELECT codeatlas_require_columns('graph_edges', ARRAY[
    'id bigint', 'codebase_id character varying(255)', 'edge_id character varying(255)',
    'from_node_id character varying(255)', 'to_node_id character varying(255)',
    'edge_type character varying(100)', 'weight double precision', 'metadata jsonb',
    'created_at timestamp(0) without time zone']);
ALTER TABLE graph_edges ALTER COLUMN created_at SET DEFAULT (now() AT TIME ZONE 'utc');
CREATE UNIQUE INDEX IF NOT EXISTS graph_edges_codebase_id_edge_id_index
    ON graph_edges (codebase_id, edge_id);
CREATE INDEX IF NOT EXISTS graph_edges_codebase_id_index ON graph_edges (codebase_id);
CREATE INDEX IF NOT EXISTS graph_edges_from_node_id_index ON graph_edges (from_node_id);
CREATE INDEX IF NOT EXISTS graph_edges_to_node_id_index ON graph_edges (to_node_id);
CREATE INDEX IF NOT EXISTS graph_edges_edge_type_index ON graph_edges (edge_type);

CREATE TABLE IF NOT EXISTS graph_types (
    id          bigserial PRIMARY KEY,
    graph_type  varchar(100) NOT NULL,
    description text,
    created_at  timestamp(0) DEFAULT now()
);
SELECT codeatlas_require_columns('graph_types', ARRAY[
    'id bigint', 'graph_type character varying(100)', 'description text',
    'created_at timestamp(0) without time zone']);
ALTER TABLE graph_types ALTER COLUMN created_at SET DEFAULT (now() AT TIME ZONE 'utc');
CREATE UNIQUE INDEX IF NOT EXISTS graph_types_graph_type_index ON graph_types (graph_type);
INSERT INTO graph_types (graph_type, description) VALUES
    ('CallGraph', 'Function call dependencies (DAG)'),
    ('ImportGraph', 'Module import dependencies (DAG)'),
    ('SemanticGraph', 'Conceptual relationships (General Graph)'),
    ('DataFlowGraph', 'Variable and data dependencies (DAG)')
ON CONFLICT (graph_type) DO NOTHING;

CREATE TABLE IF NOT EXISTS vector_search (
    id               bigserial PRIMARY KEY,
    codebase_id      varchar(255) NOT NULL,
    file_path        varchar(500) NOT NULL,
    content_type     varchar(100) NOT NULL,
    content          text NOT NULL,
    vector_embedding vector(1536) NOT NULL,
    metadata         jsonb DEFAULT '{}'::jsonb,
    created_at       timestamp(0) DEFAULT now()
);
SELECT codeatlas_require_columns('vector_search', ARRAY[
    'id bigint', 'codebase_id character varying(255)', 'file_path character varying(500)',
    'content_type character varying(100)', 'content text', 'vector_embedding vector(1536)',
    'metadata jsonb', 'created_at timestamp(0) without time zone']);
ALTER TABLE vector_search
    ALTER COLUMN created_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN vector_embedding SET STORAGE PLAIN;
CREATE UNIQUE INDEX IF NOT EXISTS vector_search_codebase_id_file_path_content_type_index
    ON vector_search (codebase_id, file_path, content_type);
CREATE INDEX IF NOT EXISTS vector_search_codebase_id_index ON vector_search (codebase_id);

CREATE TABLE IF NOT EXISTS vector_similarity_cache (
    id                bigserial PRIMARY KEY,
    codebase_id       varchar(255) NOT NULL,
    query_vector_hash varchar(64) NOT NULL,
    target_file_path  varchar(500) NOT NULL,
    similarity_score  double precision NOT NULL,
    created_at        timestamp(0) DEFAULT now()
);
SELECT codeatlas_require_columns('vector_similarity_cache', ARRAY[
    'id bigint', 'codebase_id character varying(255)',
    'query_vector_hash character varying(64)', 'target_file_path character varying(500)',
    'similarity_score double precision', 'created_at timestamp(0) without time zone']);
ALTER TABLE vector_similarity_cache
    ALTER COLUMN created_at SET DEFAULT (now() AT TIME ZONE 'utc');
-- Ecto's name is longer than 63 bytes; PostgreSQL keeps the first 63, written here.
CREATE UNIQUE INDEX IF NOT EXISTS vector_similarity_cache_codebase_id_query_vector_hash_target_fi
    ON vector_similarity_cache (codebase_id, query_vector_hash, target_file_path);
CREATE INDEX IF NOT EXISTS vector_similarity_cache_codebase_id_index
    ON vector_similarity_cache (codebase_id);
CREATE INDEX IF NOT EXISTS vector_similarity_cache_query_vector_hash_index
    ON vector_similarity_cache (query_vector_hash);

-- The vector indexes: recorded first (with the row count they are about to be built on)
-- only when they do not exist yet, so an adopted index keeps "no build recorded".
INSERT INTO codeatlas_vector_indexes
       (index_name, table_name, column_name, dimensions, lists, rows_at_build)
SELECT v.index_name, v.table_name, v.column_name, 1536, 100, v.row_count
  FROM (VALUES
        ('idx_codebase_metadata_vector', 'codebase_metadata', 'vector_embedding',
         (SELECT count(*) FROM codebase_metadata)),
        ('idx_graph_nodes_vector', 'graph_nodes', 'vector_embedding',
         (SELECT count(*) FROM graph_nodes)),
        ('idx_vector_search_embedding', 'vector_search', 'vector_embedding',
         (SELECT count(*) FROM vector_search))
       ) AS v (index_name, table_name, column_name, row_count)
 WHERE to_regclass(v.index_name) IS NULL
ON CONFLICT (index_name) DO NOTHING;
CREATE INDEX IF NOT EXISTS idx_codebase_metadata_vector
    ON codebase_metadata USING ivfflat (vector_embedding vector_cosine_ops) WITH (lists = 100);
CREATE INDEX IF NOT EXISTS idx_graph_nodes_vector
    ON graph_nodes USING ivfflat (vector_embedding vector_cosine_ops) WITH (lists = 100);
CREATE INDEX IF NOT EXISTS idx_vector_search_embedding
    ON vector_search USING ivfflat (vector_embedding vector_cosine_ops) WITH (lists = 100);

-- migrate:down
-- migrate:seeded graph_types WHERE (graph_type, description) IN (('CallGraph', 'Function call dependencies (DAG)'), ('ImportGraph', 'Module import dependencies (DAG)'), ('SemanticGraph', 'Conceptual relationships (General Graph)'), ('DataFlowGraph', 'Variable and data dependencies (DAG)'))
DELETE FROM codeatlas_vector_indexes
 WHERE index_name IN ('idx_codebase_metadata_vector', 'idx_graph_nodes_vector',
                      'idx_vector_search_embedding');
DROP TABLE vector_similarity_cache;
DROP TABLE vector_search;
DROP TABLE graph_types;
DROP TABLE graph_edges;
DROP TABLE graph_nodes;
DROP TABLE codebase_registry;
DROP TABLE codebase_metadata;
