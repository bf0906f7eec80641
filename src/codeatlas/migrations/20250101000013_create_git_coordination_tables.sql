-- The seed's migration 13: agent sessions, the pending-merge queue and merge history.
-- The seed ends with DROP TABLE git_commits CASCADE and DROP TABLE git_sessions CASCADE,
-- copying nothing. codeatlas carries their rows forward: each legacy session becomes an
-- agent session (agent_id 'migrated_<id>' as the seed's migration 14 names them; session
-- type, base branch and legacy id kept in meta); each legacy commit becomes a merge-history
-- row with status 'unknown' (a commit is not a merge outcome), its hash as merge_commit and
-- message, author, files and legacy ids kept in details. The legacy tables are then renamed
-- git_commits_legacy and git_sessions_legacy; only empty ones are dropped.
-- Existing Ecto-created tables are adopted. codeatlas additions: timestamp defaults.

-- migrate:up
CREATE TABLE IF NOT EXISTS git_agent_sessions (
    id             bigserial PRIMARY KEY,
    agent_id       varchar(255) NOT NULL,
    branch         varchar(255),
    workspace_path varchar(255) NOT NULL,
    correlation_id varchar(255),
    status         varchar(255) NOT NULL DEFAULT 'active',
    meta           jsonb DEFAULT '{}',
    inserted_at    timestamp(6) NOT NULL,
    updated_at     timestamp(6) NOT NULL
);
SELECT codeatlas_require_columns('git_agent_sessions', ARRAY[
    'id bigint', 'agent_id character varying(255)', 'branch character varying(255)',
    'workspace_path character varying(255)', 'correlation_id character varying(255)',
    'status character varying(255)', 'meta jsonb',
    'inserted_at timestamp(6) without time zone', 'updated_at timestamp(6) without time zone']);
ALTER TABLE git_agent_sessions
    ALTER COLUMN inserted_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN updated_at SET DEFAULT (now() AT TIME ZONE 'utc');
CREATE UNIQUE INDEX IF NOT EXISTS git_agent_sessions_agent_id_index
    ON git_agent_sessions (agent_id);
CREATE INDEX IF NOT EXISTS git_agent_sessions_branch_index ON git_agent_sessions (branch);
CREATE INDEX IF NOT EXISTS git_agent_sessions_status_index ON git_agent_sessions (status);
CREATE INDEX IF NOT EXISTS git_agent_sessions_correlation_id_index
    ON git_agent_sessions (correlation_id);
CREATE INDEX IF NOT EXISTS git_agent_sessions_meta_index ON git_agent_sessions USING gin (meta);

CREATE TABLE IF NOT EXISTS git_pending_merges (
    id             bigserial PRIMARY KEY,
    branch         varchar(255) NOT NULL,
    pr_number      integer,
    agent_id       varchar(255) NOT NULL,
    task_id        varchar(255),
    correlation_id varchar(255),
    meta           jsonb DEFAULT '{}',
    inserted_at    timestamp(6) NOT NULL,
    updated_at     timestamp(6) NOT NULL
);
SELECT codeatlas_require_columns('git_pending_merges', ARRAY[
    'id bigint', 'branch character varying(255)', 'pr_number integer',
    'agent_id character varying(255)', 'task_id character varying(255)',
    'correlation_id character varying(255)', 'meta jsonb',
    'inserted_at timestamp(6) without time zone', 'updated_at timestamp(6) without time zone']);
ALTER TABLE git_pending_merges
    ALTER COLUMN inserted_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN updated_at SET DEFAULT (now() AT TIME ZONE 'utc');
CREATE UNIQUE INDEX IF NOT EXISTS git_pending_merges_branch_index ON git_pending_merges (branch);
CREATE INDEX IF NOT EXISTS git_pending_merges_agent_id_index ON git_pending_merges (agent_id);
CREATE INDEX IF NOT EXISTS git_pending_merges_pr_number_index ON git_pending_merges (pr_number);
CREATE INDEX IF NOT EXISTS git_pending_merges_task_id_index ON git_pending_merges (task_id);
CREATE INDEX IF NOT EXISTS git_pending_merges_correlation_id_index
    ON git_pending_merges (correlation_id);
CREATE INDEX IF NOT EXISTS git_pending_merges_meta_index ON git_pending_merges USING gin (meta);

CREATE TABLE IF NOT EXISTS git_merge_history (
    id             bigserial PRIMARY KEY,
    branch         varchar(255) NOT NULL,
    agent_id       varchar(255),
    task_id        varchar(255),
    correlation_id varchar(255),
    merge_commit   varchar(255),
    status         varchar(255) NOT NULL,
    details        jsonb DEFAULT '{}',
    inserted_at    timestamp(6) NOT NULL,
    updated_at     timestamp(6) NOT NULL
);
SELECT codeatlas_require_columns('git_merge_history', ARRAY[
    'id bigint', 'branch character varying(255)', 'agent_id character varying(255)',
    'task_id character varying(255)', 'correlation_id character varying(255)',
    'merge_commit character varying(255)', 'status character varying(255)', 'details jsonb',
    'inserted_at timestamp(6) without time zone', 'updated_at timestamp(6) without time zone']);
ALTER TABLE git_merge_history
    ALTER COLUMN inserted_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN updated_at SET DEFAULT (now() AT TIME ZONE 'utc');
CREATE INDEX IF NOT EXISTS git_merge_history_branch_index ON git_merge_history (branch);
CREATE INDEX IF NOT EXISTS git_merge_history_agent_id_index ON git_merge_history (agent_id);
CREATE INDEX IF NOT EXISTS git_merge_history_status_index ON git_merge_history (status);
CREATE INDEX IF NOT EXISTS git_merge_history_merge_commit_index
    ON git_merge_history (merge_commit);
CREATE INDEX IF NOT EXISTS git_merge_history_inserted_at_index ON git_merge_history (inserted_at);
CREATE INDEX IF NOT EXISTS git_merge_history_details_index
    ON git_merge_history USING gin (details);
CREATE INDEX IF NOT EXISTS git_merge_history_branch_status_index
    ON git_merge_history (branch, status);
CREATE INDEX IF NOT EXISTS git_merge_history_agent_id_inserted_at_index
    ON git_merge_history (agent_id, inserted_at);

DO $$
DECLARE
    have_sessions boolean := to_regclass('git_sessions') IS NOT NULL;
    have_commits  boolean := to_regclass('git_commits') IS NOT NULL;
BEGIN
    IF have_sessions THEN
        INSERT INTO git_agent_sessions
               (agent_id, branch, workspace_path, correlation_id, status, meta,
                inserted_at, updated_at)
        SELECT 'migrated_' || s.id, s.branch_name,
               coalesce(s.metadata ->> 'workspace_path', 'unknown'),
               s.metadata ->> 'correlation_id', s.status,
               coalesce(s.metadata, '{}') || jsonb_build_object(
                   'session_type', s.session_type, 'base_branch', s.base_branch,
                   'legacy', jsonb_build_object('table', 'git_sessions', 'id', s.id)),
               s.inserted_at, s.updated_at
          FROM git_sessions AS s
        ON CONFLICT (agent_id) DO NOTHING;
    END IF;

    IF have_commits THEN
        IF have_sessions THEN
            INSERT INTO git_merge_history
                   (branch, agent_id, merge_commit, status, details, inserted_at, updated_at)
            SELECT coalesce(s.branch_name, 'unknown'), 'migrated_' || s.id, c.commit_hash,
                   'unknown',
                   coalesce(c.metadata, '{}') || jsonb_build_object('legacy_git_commit',
                       jsonb_build_object('id', c.id, 'session_id', c.session_id,
                                          'message', c.message, 'author', c.author,
                                          'files_changed', to_jsonb(c.files_changed))),
                   c.inserted_at, c.updated_at
              FROM git_commits AS c
              LEFT JOIN git_sessions AS s ON s.id = c.session_id;
        ELSE
            INSERT INTO git_merge_history
                   (branch, merge_commit, status, details, inserted_at, updated_at)
            SELECT 'unknown', c.commit_hash, 'unknown',
                   coalesce(c.metadata, '{}') || jsonb_build_object('legacy_git_commit',
                       jsonb_build_object('id', c.id, 'session_id', c.session_id,
                                          'message', c.message, 'author', c.author,
                                          'files_changed', to_jsonb(c.files_changed))),
                   c.inserted_at, c.updated_at
              FROM git_commits AS c;
        END IF;
        IF EXISTS (SELECT 1 FROM git_commits) THEN
            ALTER TABLE git_commits RENAME TO git_commits_legacy;
        ELSE
            DROP TABLE git_commits;
        END IF;
    END IF;

    IF have_sessions THEN
        -- git_commits_legacy keeps its foreign key to the sessions, so they stay too.
        IF EXISTS (SELECT 1 FROM git_sessions) OR to_regclass('git_commits_legacy') IS NOT NULL
        THEN
            ALTER TABLE git_sessions RENAME TO git_sessions_legacy;
        ELSE
            DROP TABLE git_sessions;
        END IF;
    END IF;
END
$$;

-- migrate:down
DROP TABLE git_merge_history;
DROP TABLE git_pending_merges;
DROP TABLE git_agent_sessions;
ALTER TABLE IF EXISTS git_sessions_legacy RENAME TO git_sessions;
ALTER TABLE IF EXISTS git_commits_legacy RENAME TO git_commits;
