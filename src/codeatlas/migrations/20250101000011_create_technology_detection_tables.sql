-- The seed's migration 11: technology detection patterns and templates.
-- The seed ends with DROP TABLE technology_knowledge CASCADE, copying nothing. codeatlas
-- carries every legacy row forward instead: each (technology, category) becomes one pattern
-- whose extended_metadata keeps all its entries in full (name, description, template,
-- examples, best practices, antipatterns, metadata, embedding, timestamps); each entry with
-- a template also becomes a template (identifier technology/name, suffixed #<id> where
-- that would collide). The legacy table is then renamed technology_knowledge_legacy
-- (reported by `codeatlas doctor`); only an empty one is dropped.
-- Existing Ecto-created tables are adopted. codeatlas additions: timestamp defaults.

-- migrate:up
CREATE TABLE IF NOT EXISTS technology_patterns (
    id                 bigserial PRIMARY KEY,
    technology_name    varchar(255) NOT NULL,
    technology_type    varchar(255) NOT NULL,
    version_pattern    varchar(255),
    file_patterns      varchar(255)[] DEFAULT ARRAY[]::varchar[],
    directory_patterns varchar(255)[] DEFAULT ARRAY[]::varchar[],
    config_files       varchar(255)[] DEFAULT ARRAY[]::varchar[],
    build_command      varchar(255),
    dev_command        varchar(255),
    install_command    varchar(255),
    test_command       varchar(255),
    output_directory   varchar(255),
    confidence_weight  double precision DEFAULT 1.0,
    detection_count    integer DEFAULT 0,
    success_rate       double precision DEFAULT 1.0,
    last_detected_at   timestamp(0),
    extended_metadata  jsonb,
    created_at         timestamp(0) DEFAULT now(),
    updated_at         timestamp(0) DEFAULT now()
);
SELECT codeatlas_require_columns('technology_patterns', ARRAY[
    'id bigint', 'technology_name character varying(255)',
    'technology_type character varying(255)', 'version_pattern character varying(255)',
    'file_patterns character varying(255)[]', 'directory_patterns character varying(255)[]',
    'config_files character varying(255)[]', 'build_command character varying(255)',
    'dev_command character varying(255)', 'install_command character varying(255)',
    'test_command character varying(255)', 'output_directory character varying(255)',
    'confidence_weight double precision', 'detection_count integer',
    'success_rate double precision', 'last_detected_at timestamp(0) without time zone',
    'extended_metadata jsonb', 'created_at timestamp(0) without time zone',
    'updated_at timestamp(0) without time zone']);
ALTER TABLE technology_patterns
    ALTER COLUMN created_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN updated_at SET DEFAULT (now() AT TIME ZONE 'utc');
CREATE INDEX IF NOT EXISTS technology_patterns_technology_name_index
    ON technology_patterns (technology_name);
CREATE INDEX IF NOT EXISTS technology_patterns_technology_type_index
    ON technology_patterns (technology_type);
CREATE UNIQUE INDEX IF NOT EXISTS technology_patterns_technology_name_technology_type_index
    ON technology_patterns (technology_name, technology_type);
CREATE INDEX IF NOT EXISTS technology_patterns_detection_count_index
    ON technology_patterns (detection_count);
CREATE INDEX IF NOT EXISTS technology_patterns_success_rate_index
    ON technology_patterns (success_rate);
CREATE INDEX IF NOT EXISTS technology_patterns_last_detected_at_index
    ON technology_patterns (last_detected_at);
CREATE INDEX IF NOT EXISTS technology_patterns_extended_metadata_index
    ON technology_patterns USING gin (extended_metadata);

CREATE TABLE IF NOT EXISTS technology_templates (
    id          bigserial PRIMARY KEY,
    identifier  varchar(255) NOT NULL,
    category    varchar(255) NOT NULL,
    version     varchar(255),
    source      varchar(255),
    template    jsonb NOT NULL,
    metadata    jsonb DEFAULT '{}',
    checksum    varchar(255),
    inserted_at timestamp(6) NOT NULL,
    updated_at  timestamp(6) NOT NULL
);
SELECT codeatlas_require_columns('technology_templates', ARRAY[
    'id bigint', 'identifier character varying(255)', 'category character varying(255)',
    'version character varying(255)', 'source character varying(255)', 'template jsonb',
    'metadata jsonb', 'checksum character varying(255)',
    'inserted_at timestamp(6) without time zone', 'updated_at timestamp(6) without time zone']);
ALTER TABLE technology_templates
    ALTER COLUMN inserted_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN updated_at SET DEFAULT (now() AT TIME ZONE 'utc');
CREATE UNIQUE INDEX IF NOT EXISTS technology_templates_identifier_index
    ON technology_templates (identifier);
CREATE INDEX IF NOT EXISTS technology_templates_category_index
    ON technology_templates (category);
CREATE INDEX IF NOT EXISTS technology_templates_version_index ON technology_templates (version);
CREATE INDEX IF NOT EXISTS technology_templates_category_version_index
    ON technology_templates (category, version);

-- PL/pgSQL plans a statement when it first runs it, so the statements naming the legacy
-- table below are only planned when that table exists.
DO $$
BEGIN
    IF to_regclass('technology_knowledge') IS NULL THEN
        RETURN;
    END IF;

    INSERT INTO technology_patterns
           (technology_name, technology_type, extended_metadata, created_at, updated_at)
    SELECT k.technology, k.category,
           jsonb_build_object('legacy_technology_knowledge', jsonb_agg(jsonb_build_object(
               'id', k.id, 'name', k.name, 'description', k.description,
               'template', k.template, 'examples', to_jsonb(k.examples),
               'best_practices', k.best_practices, 'antipatterns', to_jsonb(k.antipatterns),
               'metadata', k.metadata, 'embedding', to_jsonb(k.embedding::real[]),
               'inserted_at', k.inserted_at, 'updated_at', k.updated_at)
               ORDER BY k.inserted_at, k.id)),
           min(k.inserted_at), max(k.updated_at)
      FROM technology_knowledge AS k
     GROUP BY k.technology, k.category
    ON CONFLICT (technology_name, technology_type) DO UPDATE
       SET extended_metadata = coalesce(technology_patterns.extended_metadata, '{}')
                               || EXCLUDED.extended_metadata;

    INSERT INTO technology_templates
           (identifier, category, source, template, metadata, inserted_at, updated_at)
    SELECT CASE WHEN count(*) OVER (PARTITION BY k.technology, k.name) > 1
                THEN k.technology || '/' || k.name || '#' || k.id
                ELSE k.technology || '/' || k.name END,
           k.category, 'technology_knowledge',
           jsonb_build_object(
               'technology', k.technology, 'category', k.category, 'name', k.name,
               'description', k.description, 'template', k.template,
               'examples', to_jsonb(k.examples), 'best_practices', k.best_practices,
               'antipatterns', to_jsonb(k.antipatterns)),
           coalesce(k.metadata, '{}') || jsonb_build_object('legacy_id', k.id),
           k.inserted_at, k.updated_at
      FROM technology_knowledge AS k
     WHERE k.template IS NOT NULL
    ON CONFLICT (identifier) DO NOTHING;

    IF EXISTS (SELECT 1 FROM technology_knowledge) THEN
        ALTER TABLE technology_knowledge RENAME TO technology_knowledge_legacy;
    ELSE
        DROP TABLE technology_knowledge;
    END IF;
END
$$;

-- migrate:down
DROP TABLE technology_templates;
DROP TABLE technology_patterns;
ALTER TABLE IF EXISTS technology_knowledge_legacy RENAME TO technology_knowledge;
