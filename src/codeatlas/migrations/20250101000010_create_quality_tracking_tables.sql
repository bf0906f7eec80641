-- The seed's migration 10: quality tool runs and their findings. Findings are immutable
-- (the seed says so; codeatlas enforces it with a trigger raising SQLSTATE CA001).
-- Existing Ecto-created tables are adopted. codeatlas additions: timestamp defaults.

-- migrate:up
CREATE TABLE IF NOT EXISTS quality_runs (
    id            bigserial PRIMARY KEY,
    tool          varchar(255) NOT NULL,
    status        varchar(255) NOT NULL,
    warning_count integer NOT NULL DEFAULT 0,
    metadata      jsonb DEFAULT '{}',
    started_at    timestamp(6),
    finished_at   timestamp(6),
    inserted_at   timestamp(0) NOT NULL,
    updated_at    timestamp(0) NOT NULL
);
SELECT codeatlas_require_columns('quality_runs', ARRAY[
    'id bigint', 'tool character varying(255)', 'status character varying(255)',
    'warning_count integer', 'metadata jsonb', 'started_at timestamp(6) without time zone',
    'finished_at timestamp(6) without time zone',
    'inserted_at timestamp(0) without time zone', 'updated_at timestamp(0) without time zone']);
ALTER TABLE quality_runs
    ALTER COLUMN inserted_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN updated_at SET DEFAULT (now() AT TIME ZONE 'utc');
CREATE INDEX IF NOT EXISTS quality_runs_tool_index ON quality_runs (tool);
CREATE INDEX IF NOT EXISTS quality_runs_status_index ON quality_runs (status);
CREATE INDEX IF NOT EXISTS quality_runs_tool_status_index ON quality_runs (tool, status);
CREATE INDEX IF NOT EXISTS quality_runs_inserted_at_index ON quality_runs (inserted_at);
CREATE INDEX IF NOT EXISTS quality_runs_started_at_index ON quality_runs (started_at);
CREATE INDEX IF NOT EXISTS quality_runs_metadata_index ON quality_runs USING gin (metadata);

CREATE TABLE IF NOT EXISTS quality_findings (
    id          bigserial PRIMARY KEY,
    run_id      bigint NOT NULL CONSTRAINT quality_findings_run_id_fkey
                     REFERENCES quality_runs (id) ON DELETE CASCADE,
    category    varchar(255),
    message     varchar(255) NOT NULL,
    file        varchar(255),
    line        integer,
    severity    varchar(255),
    extra       jsonb DEFAULT '{}',
    inserted_at timestamp(0) NOT NULL
);
SELECT codeatlas_require_columns('quality_findings', ARRAY[
    'id bigint', 'run_id bigint', 'category character varying(255)',
    'message character varying(255)', 'file character varying(255)', 'line integer',
    'severity character varying(255)', 'extra jsonb',
    'inserted_at timestamp(0) without time zone']);
ALTER TABLE quality_findings ALTER COLUMN inserted_at SET DEFAULT (now() AT TIME ZONE 'utc');
CREATE INDEX IF NOT EXISTS quality_findings_run_id_index ON quality_findings (run_id);
CREATE INDEX IF NOT EXISTS quality_findings_category_index ON quality_findings (category);
CREATE INDEX IF NOT EXISTS quality_findings_severity_index ON quality_findings (severity);
CREATE INDEX IF NOT EXISTS quality_findings_file_index ON quality_findings (file);
CREATE INDEX IF NOT EXISTS quality_findings_run_id_severity_index
    ON quality_findings (run_id, severity);
CREATE INDEX IF NOT EXISTS quality_findings_category_severity_index
    ON quality_findings (category, severity);
CREATE INDEX IF NOT EXISTS quality_findings_extra_index ON quality_findings USING gin (extra);
CREATE INDEX IF NOT EXISTS quality_findings_run_id_category_severity_index
    ON quality_findings (run_id, category, severity);
CREATE OR REPLACE TRIGGER quality_findings_append_only
    BEFORE UPDATE ON quality_findings
    FOR EACH ROW EXECUTE FUNCTION codeatlas_refuse_update();

-- migrate:down
DROP TABLE quality_findings;
DROP TABLE quality_runs;
