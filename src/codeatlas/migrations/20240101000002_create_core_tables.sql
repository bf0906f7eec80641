-- rules, as the Elixir migration of this version creates it (the other core tables of that
-- migration are not served by codeatlas). An existing Ecto-created table is adopted.
-- codeatlas additions, all additive so Ecto's inserts keep working: a database default for
-- the UUID key and the timestamps, and STORAGE PLAIN for the vector (TOASTed vectors make
-- exact scans about 4x slower).

-- migrate:up
CREATE TABLE IF NOT EXISTS rules (
    id          uuid PRIMARY KEY,
    name        varchar(255) NOT NULL,
    description text,
    category    varchar(255),
    condition   jsonb DEFAULT '{}',
    action      jsonb DEFAULT '{}',
    metadata    jsonb DEFAULT '{}',
    priority    integer DEFAULT 0,
    active      boolean DEFAULT true,
    version     integer DEFAULT 1,
    parent_id   uuid CONSTRAINT rules_parent_id_fkey REFERENCES rules (id) ON DELETE SET NULL,
    embedding   vector(768),
    inserted_at timestamp(0) NOT NULL,
    updated_at  timestamp(0) NOT NULL
);
SELECT codeatlas_require_columns('rules', ARRAY[
    'id uuid', 'name character varying(255)', 'description text',
    'category character varying(255)', 'condition jsonb', 'action jsonb', 'metadata jsonb',
    'priority integer', 'active boolean', 'version integer', 'parent_id uuid',
    'embedding vector(768)', 'inserted_at timestamp(0) without time zone',
    'updated_at timestamp(0) without time zone']);
ALTER TABLE rules
    ALTER COLUMN id SET DEFAULT gen_random_uuid(),
    ALTER COLUMN inserted_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN updated_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN embedding SET STORAGE PLAIN;
CREATE INDEX IF NOT EXISTS rules_name_index ON rules (name);
CREATE INDEX IF NOT EXISTS rules_category_index ON rules (category);
CREATE INDEX IF NOT EXISTS rules_active_index ON rules (active);
CREATE INDEX IF NOT EXISTS rules_priority_index ON rules (priority);
CREATE INDEX IF NOT EXISTS rules_parent_id_index ON rules (parent_id);
CREATE INDEX IF NOT EXISTS rules_condition_index ON rules USING gin (condition);
CREATE INDEX IF NOT EXISTS rules_metadata_index ON rules USING gin (metadata);

-- migrate:down
DROP TABLE rules;
