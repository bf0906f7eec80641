-- migrate:up
ALTER TABLE things ADD COLUMN label text;

-- migrate:down
ALTER TABLE things DROP COLUMN label;
