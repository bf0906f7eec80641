-- The seed's migration 12: codebase snapshots, append-only (an UPDATE raises SQLSTATE CA001).
-- The seed ends with DROP TABLE detection_events CASCADE, copying nothing (and its migration
-- 14 variant drops the `data` payload). codeatlas carries every legacy event forward as a
-- snapshot: codebase_id from the event's metadata (else 'legacy-detection-events'), the next
-- free snapshot ids in event order, and metadata keeping event_type, detector, confidence,
-- the full `data` payload and the legacy id and timestamps. The legacy table is then
-- renamed detection_events_legacy; only an empty one is dropped.
-- An existing Ecto-created table is adopted.

-- migrate:up
CREATE TABLE IF NOT EXISTS codebase_snapshots (
    id                    bigserial PRIMARY KEY,
    codebase_id           varchar(255) NOT NULL,
    snapshot_id           integer NOT NULL,
    metadata              jsonb,
    summary               jsonb,
    detected_technologies varchar(255)[] DEFAULT ARRAY[]::varchar[],
    features              jsonb,
    inserted_at           timestamp(0) DEFAULT now()
);
SELECT codeatlas_require_columns('codebase_snapshots', ARRAY[
    'id bigint', 'codebase_id character varying(255)', 'snapshot_id integer',
    'metadata jsonb', 'summary jsonb', 'detected_technologies character varying(255)[]',
    'features jsonb', 'inserted_at timestamp(0) without time zone']);
ALTER TABLE codebase_snapshots ALTER COLUMN inserted_at SET DEFAULT (now() AT TIME ZONE 'utc');
CREATE UNIQUE INDEX IF NOT EXISTS codebase_snapshots_codebase_id_snapshot_id_index
    ON codebase_snapshots (codebase_id, snapshot_id);
CREATE INDEX IF NOT EXISTS codebase_snapshots_codebase_id_index
    ON codebase_snapshots (codebase_id);
CREATE INDEX IF NOT EXISTS codebase_snapshots_snapshot_id_index
    ON codebase_snapshots (snapshot_id);
CREATE INDEX IF NOT EXISTS codebase_snapshots_inserted_at_index
    ON codebase_snapshots (inserted_at);
CREATE INDEX IF NOT EXISTS codebase_snapshots_detected_technologies_index
    ON codebase_snapshots USING gin (detected_technologies);
CREATE INDEX IF NOT EXISTS codebase_snapshots_metadata_index
    ON codebase_snapshots USING gin (metadata);
CREATE INDEX IF NOT EXISTS codebase_snapshots_features_index
    ON codebase_snapshots USING gin (features);
CREATE OR REPLACE TRIGGER codebase_snapshots_append_only
    BEFORE UPDATE ON codebase_snapshots
    FOR EACH ROW EXECUTE FUNCTION codeatlas_refuse_update();

DO $$
BEGIN
    IF to_regclass('detection_events') IS NULL THEN
        RETURN;
    END IF;

    INSERT INTO codebase_snapshots (codebase_id, snapshot_id, metadata, inserted_at)
    SELECT e.codebase_id,
           coalesce((SELECT max(s.snapshot_id) FROM codebase_snapshots AS s
                      WHERE s.codebase_id = e.codebase_id), 0)
           + row_number() OVER (PARTITION BY e.codebase_id ORDER BY e.inserted_at, e.id),
           coalesce(e.metadata, '{}') || jsonb_build_object(
               'event_type', e.event_type, 'detector', e.detector,
               'confidence', e.confidence, 'data', e.data,
               'legacy', jsonb_build_object('table', 'detection_events', 'id', e.id,
                                            'updated_at', e.updated_at)),
           e.inserted_at
      FROM (SELECT d.*, coalesce(nullif(d.metadata ->> 'codebase_id', ''),
                                 nullif(d.data ->> 'codebase_id', ''),
                                 'legacy-detection-events') AS codebase_id
              FROM detection_events AS d) AS e;

    IF EXISTS (SELECT 1 FROM detection_events) THEN
        ALTER TABLE detection_events RENAME TO detection_events_legacy;
    ELSE
        DROP TABLE detection_events;
    END IF;
END
$$;

-- migrate:down
DROP TABLE codebase_snapshots;
ALTER TABLE IF EXISTS detection_events_legacy RENAME TO detection_events;
