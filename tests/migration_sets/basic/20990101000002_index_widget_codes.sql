-- migrate:up transaction:false
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS widgets_code_key ON widgets (code);

-- migrate:down transaction:false
DROP INDEX CONCURRENTLY IF EXISTS widgets_code_key;
