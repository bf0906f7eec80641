-- Test set: an index build that takes about two seconds on any machine, for the
-- interrupted-migration and statement-timeout tests. slow_identity() sleeps 10 ms per
-- row; it is declared IMMUTABLE (a lie PostgreSQL accepts) so an index may use it.
-- migrate:up
CREATE TABLE things (id bigint PRIMARY KEY);
INSERT INTO things (id) SELECT generate_series(1, 200);
CREATE FUNCTION slow_identity(value bigint) RETURNS bigint
    LANGUAGE plpgsql IMMUTABLE
    AS $$ BEGIN PERFORM pg_sleep(0.01); RETURN value; END $$;

-- migrate:down
DROP TABLE things;
DROP FUNCTION slow_identity(bigint);
