-- rag_documents, rag_queries, rag_feedback and semantic_cache, as the Elixir migration of
-- this version creates them (its git_sessions/git_commits tables are legacy: migration
-- 20250101000013 carries their rows forward; its optional TimescaleDB hypertable call is not
-- repeated, as it cannot succeed on a table whose primary key omits inserted_at).
-- Existing Ecto-created tables are adopted. codeatlas additions: database defaults for UUID
-- keys and timestamps, STORAGE PLAIN for vectors.

-- migrate:up
CREATE TABLE IF NOT EXISTS rag_documents (
    id            uuid PRIMARY KEY,
    source_type   varchar(255) NOT NULL,
    source_id     varchar(255) NOT NULL,
    content       text NOT NULL,
    embedding     vector(768),
    metadata      jsonb DEFAULT '{}',
    token_count   integer,
    last_accessed timestamp(0),
    access_count  integer DEFAULT 0,
    inserted_at   timestamp(0) NOT NULL,
    updated_at    timestamp(0) NOT NULL
);
SELECT codeatlas_require_columns('rag_documents', ARRAY[
    'id uuid', 'source_type character varying(255)', 'source_id character varying(255)',
    'content text', 'embedding vector(768)', 'metadata jsonb', 'token_count integer',
    'last_accessed timestamp(0) without time zone', 'access_count integer',
    'inserted_at timestamp(0) without time zone', 'updated_at timestamp(0) without time zone']);
ALTER TABLE rag_documents
    ALTER COLUMN id SET DEFAULT gen_random_uuid(),
    ALTER COLUMN inserted_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN updated_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN embedding SET STORAGE PLAIN;
CREATE UNIQUE INDEX IF NOT EXISTS rag_documents_source_type_source_id_index
    ON rag_documents (source_type, source_id);
CREATE INDEX IF NOT EXISTS rag_documents_last_accessed_index ON rag_documents (last_accessed);
CREATE INDEX IF NOT EXISTS rag_documents_access_count_index ON rag_documents (access_count);

CREATE TABLE IF NOT EXISTS rag_queries (
    id              uuid PRIMARY KEY,
    query_text      text NOT NULL,
    query_embedding vector(768),
    result_ids      uuid[] DEFAULT ARRAY[]::uuid[],
    response        text,
    model_used      varchar(255),
    tokens_used     integer,
    latency_ms      integer,
    metadata        jsonb DEFAULT '{}',
    inserted_at     timestamp(0) NOT NULL,
    updated_at      timestamp(0) NOT NULL
);
SELECT codeatlas_require_columns('rag_queries', ARRAY[
    'id uuid', 'query_text text', 'query_embedding vector(768)', 'result_ids uuid[]',
    'response text', 'model_used character varying(255)', 'tokens_used integer',
    'latency_ms integer', 'metadata jsonb',
    'inserted_at timestamp(0) without time zone', 'updated_at timestamp(0) without time zone']);
ALTER TABLE rag_queries
    ALTER COLUMN id SET DEFAULT gen_random_uuid(),
    ALTER COLUMN inserted_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN updated_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN query_embedding SET STORAGE PLAIN;
CREATE INDEX IF NOT EXISTS rag_queries_inserted_at_index ON rag_queries (inserted_at);

CREATE TABLE IF NOT EXISTS rag_feedback (
    id              uuid PRIMARY KEY,
    query_id        uuid CONSTRAINT rag_feedback_query_id_fkey
                         REFERENCES rag_queries (id) ON DELETE CASCADE,
    document_id     uuid CONSTRAINT rag_feedback_document_id_fkey
                         REFERENCES rag_documents (id) ON DELETE CASCADE,
    relevance_score double precision,
    user_rating     integer,
    metadata        jsonb DEFAULT '{}',
    inserted_at     timestamp(0) NOT NULL,
    updated_at      timestamp(0) NOT NULL
);
SELECT codeatlas_require_columns('rag_feedback', ARRAY[
    'id uuid', 'query_id uuid', 'document_id uuid', 'relevance_score double precision',
    'user_rating integer', 'metadata jsonb',
    'inserted_at timestamp(0) without time zone', 'updated_at timestamp(0) without time zone']);
ALTER TABLE rag_feedback
    ALTER COLUMN id SET DEFAULT gen_random_uuid(),
    ALTER COLUMN inserted_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN updated_at SET DEFAULT (now() AT TIME ZONE 'utc');
CREATE INDEX IF NOT EXISTS rag_feedback_query_id_index ON rag_feedback (query_id);
CREATE INDEX IF NOT EXISTS rag_feedback_document_id_index ON rag_feedback (document_id);

CREATE TABLE IF NOT EXISTS semantic_cache (
    id              uuid PRIMARY KEY,
    cache_key       varchar(255) NOT NULL,
    query           text NOT NULL,
    query_embedding vector(768),
    response        text NOT NULL,
    model           varchar(255),
    template_id     varchar(255),
    tokens_used     integer,
    cost_cents      integer,
    hit_count       integer DEFAULT 0,
    last_accessed   timestamp(0),
    ttl_seconds     integer,
    metadata        jsonb DEFAULT '{}',
    inserted_at     timestamp(0) NOT NULL,
    updated_at      timestamp(0) NOT NULL
);
SELECT codeatlas_require_columns('semantic_cache', ARRAY[
    'id uuid', 'cache_key character varying(255)', 'query text',
    'query_embedding vector(768)', 'response text', 'model character varying(255)',
    'template_id character varying(255)', 'tokens_used integer', 'cost_cents integer',
    'hit_count integer', 'last_accessed timestamp(0) without time zone',
    'ttl_seconds integer', 'metadata jsonb',
    'inserted_at timestamp(0) without time zone', 'updated_at timestamp(0) without time zone']);
ALTER TABLE semantic_cache
    ALTER COLUMN id SET DEFAULT gen_random_uuid(),
    ALTER COLUMN inserted_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN updated_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN query_embedding SET STORAGE PLAIN;
CREATE UNIQUE INDEX IF NOT EXISTS semantic_cache_cache_key_index ON semantic_cache (cache_key);
CREATE INDEX IF NOT EXISTS semantic_cache_last_accessed_index ON semantic_cache (last_accessed);
CREATE INDEX IF NOT EXISTS semantic_cache_hit_count_index ON semantic_cache (hit_count);

-- migrate:down
DROP TABLE semantic_cache;
DROP TABLE rag_feedback;
DROP TABLE rag_queries;
DROP TABLE rag_documents;
