-- code_files, code_embeddings and code_locations, as the Elixir migration of this version
-- creates them (its detection_events table is legacy: migration 20250101000012 carries any
-- rows it holds forward). Existing Ecto-created tables are adopted. codeatlas additions:
-- database defaults for UUID keys and timestamps, STORAGE PLAIN for vectors.

-- migrate:up
CREATE TABLE IF NOT EXISTS code_files (
    id           uuid PRIMARY KEY,
    file_path    varchar(255) NOT NULL,
    project_name varchar(255) NOT NULL,
    content      text,
    language     varchar(255),
    size_bytes   integer,
    line_count   integer,
    hash         varchar(255),
    metadata     jsonb DEFAULT '{}',
    inserted_at  timestamp(0) NOT NULL,
    updated_at   timestamp(0) NOT NULL
);
SELECT codeatlas_require_columns('code_files', ARRAY[
    'id uuid', 'file_path character varying(255)', 'project_name character varying(255)',
    'content text', 'language character varying(255)', 'size_bytes integer',
    'line_count integer', 'hash character varying(255)', 'metadata jsonb',
    'inserted_at timestamp(0) without time zone', 'updated_at timestamp(0) without time zone']);
ALTER TABLE code_files
    ALTER COLUMN id SET DEFAULT gen_random_uuid(),
    ALTER COLUMN inserted_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN updated_at SET DEFAULT (now() AT TIME ZONE 'utc');
CREATE UNIQUE INDEX IF NOT EXISTS code_files_project_name_file_path_index
    ON code_files (project_name, file_path);
CREATE INDEX IF NOT EXISTS code_files_language_index ON code_files (language);
CREATE INDEX IF NOT EXISTS code_files_hash_index ON code_files (hash);

CREATE TABLE IF NOT EXISTS code_embeddings (
    id           uuid PRIMARY KEY,
    code_file_id uuid CONSTRAINT code_embeddings_code_file_id_fkey
                      REFERENCES code_files (id) ON DELETE CASCADE,
    chunk_index  integer NOT NULL,
    chunk_text   text NOT NULL,
    embedding    vector(768),
    metadata     jsonb DEFAULT '{}',
    inserted_at  timestamp(0) NOT NULL,
    updated_at   timestamp(0) NOT NULL
);
SELECT codeatlas_require_columns('code_embeddings', ARRAY[
    'id uuid', 'code_file_id uuid', 'chunk_index integer', 'chunk_text text',
    'embedding vector(768)', 'metadata jsonb',
    'inserted_at timestamp(0) without time zone', 'updated_at timestamp(0) without time zone']);
ALTER TABLE code_embeddings
    ALTER COLUMN id SET DEFAULT gen_random_uuid(),
    ALTER COLUMN inserted_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN updated_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN embedding SET STORAGE PLAIN;
CREATE INDEX IF NOT EXISTS code_embeddings_code_file_id_index ON code_embeddings (code_file_id);
CREATE INDEX IF NOT EXISTS code_embeddings_chunk_index_index ON code_embeddings (chunk_index);

CREATE TABLE IF NOT EXISTS code_locations (
    id            uuid PRIMARY KEY,
    project       varchar(255) NOT NULL,
    file_path     varchar(255) NOT NULL,
    line_start    integer NOT NULL,
    line_end      integer NOT NULL,
    column_start  integer,
    column_end    integer,
    symbol_type   varchar(255) NOT NULL,
    symbol_name   varchar(255) NOT NULL,
    parent_symbol varchar(255),
    signature     text,
    documentation text,
    metadata      jsonb DEFAULT '{}',
    embedding     vector(768),
    inserted_at   timestamp(0) NOT NULL,
    updated_at    timestamp(0) NOT NULL
);
SELECT codeatlas_require_columns('code_locations', ARRAY[
    'id uuid', 'project character varying(255)', 'file_path character varying(255)',
    'line_start integer', 'line_end integer', 'column_start integer', 'column_end integer',
    'symbol_type character varying(255)', 'symbol_name character varying(255)',
    'parent_symbol character varying(255)', 'signature text', 'documentation text',
    'metadata jsonb', 'embedding vector(768)',
    'inserted_at timestamp(0) without time zone', 'updated_at timestamp(0) without time zone']);
ALTER TABLE code_locations
    ALTER COLUMN id SET DEFAULT gen_random_uuid(),
    ALTER COLUMN inserted_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN updated_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN embedding SET STORAGE PLAIN;
CREATE INDEX IF NOT EXISTS code_locations_project_file_path_index
    ON code_locations (project, file_path);
CREATE INDEX IF NOT EXISTS code_locations_symbol_type_symbol_name_index
    ON code_locations (symbol_type, symbol_name);
CREATE INDEX IF NOT EXISTS code_locations_parent_symbol_index ON code_locations (parent_symbol);

-- migrate:down
DROP TABLE code_locations;
DROP TABLE code_embeddings;
DROP TABLE code_files;
