-- migrate:up
ALTER TABLE widgets ADD COLUMN color text;

-- migrate:down
ALTER TABLE widgets DROP COLUMN color;
