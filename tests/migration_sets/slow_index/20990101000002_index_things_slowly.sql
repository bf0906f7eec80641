-- No IF NOT EXISTS (and no IF EXISTS below), as many hand-written migrations have it:
-- the engine, not the statement, must make an interrupted run resumable.
-- migrate:up transaction:false
CREATE INDEX CONCURRENTLY things_slow_idx ON things (slow_identity(id));

-- migrate:down transaction:false
DROP INDEX CONCURRENTLY things_slow_idx;
