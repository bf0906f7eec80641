-- The seed's migration 09: rule executions (a time series) and rule evolution proposals.
-- Existing Ecto-created tables are adopted. codeatlas additions: database defaults for the
-- UUID keys and timestamps.

-- migrate:up
CREATE TABLE IF NOT EXISTS rule_executions (
    id                  uuid PRIMARY KEY,
    rule_id             uuid NOT NULL CONSTRAINT rule_executions_rule_id_fkey
                             REFERENCES rules (id) ON DELETE CASCADE,
    correlation_id      uuid NOT NULL,
    confidence          double precision NOT NULL,
    decision            varchar(255) NOT NULL,
    reasoning           varchar(255),
    execution_time_ms   integer NOT NULL,
    context             jsonb NOT NULL DEFAULT '{}',
    outcome             varchar(255),
    outcome_recorded_at timestamp(6),
    executed_at         timestamp(6) NOT NULL
);
SELECT codeatlas_require_columns('rule_executions', ARRAY[
    'id uuid', 'rule_id uuid', 'correlation_id uuid', 'confidence double precision',
    'decision character varying(255)', 'reasoning character varying(255)',
    'execution_time_ms integer', 'context jsonb', 'outcome character varying(255)',
    'outcome_recorded_at timestamp(6) without time zone',
    'executed_at timestamp(6) without time zone']);
ALTER TABLE rule_executions
    ALTER COLUMN id SET DEFAULT gen_random_uuid(),
    ALTER COLUMN executed_at SET DEFAULT (now() AT TIME ZONE 'utc');
CREATE INDEX IF NOT EXISTS rule_executions_rule_id_index ON rule_executions (rule_id);
CREATE INDEX IF NOT EXISTS rule_executions_correlation_id_index
    ON rule_executions (correlation_id);
CREATE INDEX IF NOT EXISTS rule_executions_executed_at_index ON rule_executions (executed_at);
CREATE INDEX IF NOT EXISTS rule_executions_decision_index ON rule_executions (decision);
CREATE INDEX IF NOT EXISTS rule_executions_outcome_index ON rule_executions (outcome);
CREATE INDEX IF NOT EXISTS rule_executions_rule_id_executed_at_index
    ON rule_executions (rule_id, executed_at);
CREATE INDEX IF NOT EXISTS rule_executions_context_index ON rule_executions USING gin (context);

CREATE TABLE IF NOT EXISTS rule_evolution_proposals (
    id                  uuid PRIMARY KEY,
    rule_id             uuid NOT NULL CONSTRAINT rule_evolution_proposals_rule_id_fkey
                             REFERENCES rules (id) ON DELETE CASCADE,
    proposer_agent_id   varchar(255) NOT NULL,
    proposed_patterns   jsonb[] NOT NULL,
    proposed_threshold  double precision,
    evolution_reasoning varchar(255) NOT NULL,
    trial_results       jsonb,
    trial_confidence    double precision,
    votes               jsonb DEFAULT '{}',
    consensus_reached   boolean DEFAULT false,
    status              varchar(255) DEFAULT 'proposed',
    inserted_at         timestamp(6) NOT NULL,
    updated_at          timestamp(6) NOT NULL
);
SELECT codeatlas_require_columns('rule_evolution_proposals', ARRAY[
    'id uuid', 'rule_id uuid', 'proposer_agent_id character varying(255)',
    'proposed_patterns jsonb[]', 'proposed_threshold double precision',
    'evolution_reasoning character varying(255)', 'trial_results jsonb',
    'trial_confidence double precision', 'votes jsonb', 'consensus_reached boolean',
    'status character varying(255)', 'inserted_at timestamp(6) without time zone',
    'updated_at timestamp(6) without time zone']);
ALTER TABLE rule_evolution_proposals
    ALTER COLUMN id SET DEFAULT gen_random_uuid(),
    ALTER COLUMN inserted_at SET DEFAULT (now() AT TIME ZONE 'utc'),
    ALTER COLUMN updated_at SET DEFAULT (now() AT TIME ZONE 'utc');
CREATE INDEX IF NOT EXISTS rule_evolution_proposals_rule_id_index
    ON rule_evolution_proposals (rule_id);
CREATE INDEX IF NOT EXISTS rule_evolution_proposals_proposer_agent_id_index
    ON rule_evolution_proposals (proposer_agent_id);
CREATE INDEX IF NOT EXISTS rule_evolution_proposals_status_index
    ON rule_evolution_proposals (status);
CREATE INDEX IF NOT EXISTS rule_evolution_proposals_consensus_reached_index
    ON rule_evolution_proposals (consensus_reached);
CREATE INDEX IF NOT EXISTS rule_evolution_proposals_inserted_at_index
    ON rule_evolution_proposals (inserted_at);
CREATE INDEX IF NOT EXISTS rule_evolution_proposals_votes_index
    ON rule_evolution_proposals USING gin (votes);
CREATE INDEX IF NOT EXISTS rule_evolution_proposals_rule_id_status_index
    ON rule_evolution_proposals (rule_id, status);
CREATE INDEX IF NOT EXISTS rule_evolution_proposals_status_consensus_reached_index
    ON rule_evolution_proposals (status, consensus_reached);

-- migrate:down
DROP TABLE rule_evolution_proposals;
DROP TABLE rule_executions;
