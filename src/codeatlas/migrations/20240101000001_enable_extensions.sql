-- codeatlas' own groundwork. The Elixir migration of this version enables a dozen extensions
-- (timescaledb, pg_trgm, ...); codeatlas needs only pgvector (the driver's bootstrap already
-- made sure it exists) and gen_random_uuid(), which is built into PostgreSQL 13+.

-- migrate:up
CREATE EXTENSION IF NOT EXISTS vector;

-- What codeatlas knows about each IVFFlat index: the row count when it was built (an index
-- built on an empty table has meaningless centroids) and the probes `tune` chose.
CREATE TABLE IF NOT EXISTS codeatlas_vector_indexes (
    index_name     text PRIMARY KEY,
    table_name     text NOT NULL,
    column_name    text NOT NULL,
    dimensions     integer NOT NULL,
    lists          integer NOT NULL,
    rows_at_build  bigint,
    built_at       timestamptz DEFAULT now(),
    default_probes integer CHECK (default_probes > 0),
    tuned_recall   double precision,
    tuned_at       timestamptz
);

-- Adopting a table the Elixir application already created is only safe when its columns
-- have the types codeatlas reads and writes. Each migration calls this right after its
-- CREATE TABLE IF NOT EXISTS; `expected` lists "column type" as format_type() spells it.
CREATE OR REPLACE FUNCTION codeatlas_require_columns(target regclass, expected text[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    spec     text;
    col      text;
    want     text;
    have     text;
    problems text[] := '{}';
BEGIN
    FOREACH spec IN ARRAY expected LOOP
        col := split_part(spec, ' ', 1);
        want := substr(spec, length(col) + 2);
        SELECT format_type(a.atttypid, a.atttypmod) INTO have
          FROM pg_attribute AS a
         WHERE a.attrelid = target AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
        IF have IS NULL THEN
            problems := problems || format('column %s is missing', col);
        -- Ecto writes microsecond timestamps as `timestamp`, raw SQL as `timestamp(6)`: same type.
        ELSIF replace(have, '(6)', '') <> replace(want, '(6)', '') THEN
            problems := problems || format('column %s is %s, expected %s', col, have, want);
        END IF;
        have := NULL;
    END LOOP;
    IF cardinality(problems) > 0 THEN
        RAISE EXCEPTION 'existing table % is not compatible with codeatlas: %',
            target, array_to_string(problems, '; ')
            USING ERRCODE = 'CA002',
                  HINT = 'codeatlas adopts tables created by the Elixir migrations; '
                         'this one has another shape. Rename it or migrate it first.';
    END IF;
END
$$;

-- Tables the seed calls immutable refuse UPDATE with this (SQLSTATE CA001, which codeatlas
-- raises as ImmutableRowError).
CREATE OR REPLACE FUNCTION codeatlas_refuse_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are append-only: UPDATE is refused', TG_TABLE_NAME
        USING ERRCODE = 'CA001',
              HINT = 'insert a new row instead (a new snapshot, or a new quality run)';
END
$$;

-- migrate:down
-- Build records describe indexes the later down steps drop: bookkeeping, not caller data.
-- migrate:seeded codeatlas_vector_indexes WHERE true
DROP FUNCTION IF EXISTS codeatlas_refuse_update();
DROP FUNCTION IF EXISTS codeatlas_require_columns(regclass, text[]);
DROP TABLE IF EXISTS codeatlas_vector_indexes;
