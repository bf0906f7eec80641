-- codeatlas' own: which kind of index each vector index is (see codeatlas.index_strategies)
-- and the knobs tuned for it. Additive only: rows written before this migration describe
-- IVFFlat builds, which is what the new columns' defaults say. The Elixir application's
-- plain `ORDER BY col <=> $1` keeps working whatever the kind (on a quantised expression
-- index the planner answers it without the index).

-- migrate:up
ALTER TABLE codeatlas_vector_indexes
    ADD COLUMN IF NOT EXISTS strategy text NOT NULL DEFAULT 'ivfflat'
        CHECK (strategy IN ('ivfflat', 'hnsw', 'ivfflat_halfvec', 'hnsw_halfvec', 'hnsw_binary')),
    -- the build's parameters: {"lists": n} or {"m": n, "ef_construction": n}
    ADD COLUMN IF NOT EXISTS params jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- tuned hnsw.ef_search (HNSW), like default_probes for IVFFlat
    ADD COLUMN IF NOT EXISTS default_ef_search integer
        CHECK (default_ef_search BETWEEN 1 AND 1000),
    -- tuned candidates per result of a quantised index, re-ranked exactly
    ADD COLUMN IF NOT EXISTS overfetch integer CHECK (overfetch BETWEEN 1 AND 100);

-- migrate:down
ALTER TABLE codeatlas_vector_indexes
    DROP COLUMN IF EXISTS overfetch,
    DROP COLUMN IF EXISTS default_ef_search,
    DROP COLUMN IF EXISTS params,
    DROP COLUMN IF EXISTS strategy;
