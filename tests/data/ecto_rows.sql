-- Rows the Elixir application wrote into the schema of ecto_schema.sql: Ecto makes the
-- UUIDs and timestamps on the client, so every insert names them.
INSERT INTO rules (id, name, category, condition, priority, embedding, inserted_at, updated_at)
VALUES
    ('00000000-0000-4000-8000-000000000001', 'no-secrets', 'security', '{"pattern": "KEY="}',
     10, array_fill(0.25::real, ARRAY[768])::vector, '2025-10-09 08:00:00', '2025-10-09 08:00:00');
INSERT INTO rules (id, name, parent_id, inserted_at, updated_at)
VALUES ('00000000-0000-4000-8000-000000000002', 'no-secrets-v2',
        '00000000-0000-4000-8000-000000000001', '2025-10-09 08:05:00', '2025-10-09 08:06:00');

INSERT INTO rule_executions
       (id, rule_id, correlation_id, confidence, decision, execution_time_ms, context,
        executed_at)
VALUES ('00000000-0000-4000-8000-0000000000e1', '00000000-0000-4000-8000-000000000001',
        '00000000-0000-4000-8000-0000000000c1', 0.93, 'autonomous', 12, '{"file": "a.ex"}',
        '2025-10-09 08:10:00.123456');

INSERT INTO code_files (id, file_path, project_name, language, inserted_at, updated_at)
VALUES ('00000000-0000-4000-8000-0000000000f1', 'lib/a.ex', 'singularity', 'elixir',
        '2025-10-09 09:00:00', '2025-10-09 09:00:00');
INSERT INTO code_embeddings
       (id, code_file_id, chunk_index, chunk_text, embedding, inserted_at, updated_at)
VALUES ('00000000-0000-4000-8000-0000000000f2', '00000000-0000-4000-8000-0000000000f1', 0,
        'defmodule A do', array_fill(0.5::real, ARRAY[768])::vector,
        '2025-10-09 09:00:00', '2025-10-09 09:00:00');

INSERT INTO codebase_registry (codebase_id, codebase_path, codebase_name, language)
VALUES ('singularity', '/src/singularity', 'Singularity', 'elixir');
INSERT INTO codebase_metadata (codebase_id, codebase_path, path, language, quality_score,
                               functions, vector_embedding, inserted_at, updated_at)
VALUES ('singularity', '/src/singularity', 'lib/a.ex', 'elixir', 0.8, '["run/1"]',
        array_fill(0.125::real, ARRAY[1536])::vector, '2025-10-09 09:01:00',
        '2025-10-09 09:01:00');

INSERT INTO quality_runs (tool, status, warning_count, started_at, inserted_at, updated_at)
VALUES ('sobelow', 'warning', 1, '2025-10-09 10:00:00.5', '2025-10-09 10:00:00',
        '2025-10-09 10:00:02');
INSERT INTO quality_findings (run_id, category, message, file, line, severity, inserted_at)
VALUES (1, 'XSS', 'raw/1 with user input', 'lib/web.ex', 12, 'high', '2025-10-09 10:00:01');

INSERT INTO codebase_snapshots (codebase_id, snapshot_id, metadata, detected_technologies)
VALUES ('singularity', 1, '{"commit": "abc"}', ARRAY['elixir', 'phoenix']);

INSERT INTO technology_templates (identifier, category, template, inserted_at, updated_at)
VALUES ('elixir/phoenix', 'framework', '{"generator": "mix phx.new"}',
        '2025-10-09 11:00:00.000001', '2025-10-09 11:00:00.000001');

INSERT INTO git_agent_sessions (agent_id, branch, workspace_path, inserted_at, updated_at)
VALUES ('agent-1', 'feat/x', '/tmp/ws/agent-1', '2025-10-09 12:00:00.25',
        '2025-10-09 12:00:00.25');
