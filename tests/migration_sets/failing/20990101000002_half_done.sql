-- migrate:up
CREATE TABLE half_done (id bigserial PRIMARY KEY);
ALTER TABLE widgets ADD COLUMN size integer;
INSERT INTO half_done (id) VALUES (1), (1);

-- migrate:down
DROP TABLE half_done;
