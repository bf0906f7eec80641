-- migrate:up
CREATE TABLE widgets (
    id   bigserial PRIMARY KEY,
    code text NOT NULL
);
CREATE TABLE gadgets (id bigserial PRIMARY KEY);

-- migrate:down
DROP TABLE IF EXISTS gadgets;
DROP TABLE widgets;
