-- codeatlas' own: the semantic cache's vector index becomes HNSW (m = 16,
-- ef_construction = 64), replacing the IVFFlat lists = 100 index of migration 08 under the
-- same name, idx_semantic_cache_query_embedding_vector. The Elixir application's plain
-- `ORDER BY query_embedding <=> $1` queries use either kind; the table and its columns are
-- unchanged.
--
-- Why HNSW for the cache:
-- * Every lookup is a single-row nearest-neighbour query, and the cache answers one for
--   each question asked, while it writes only on a miss (store) and on a flush of hits.
--   Measured with benchmarks/caches.py (768 dims, each index tuned to recall 0.95 by
--   atlas.indexes.tune, same run): the raw single-row query took ~1 ms on HNSW against
--   ~18-24 ms on IVFFlat at 10 000 entries, and the lookup follows the index (see
--   docs/benchmarks.md, "Caches", for the figures at 10 000 and 100 000 entries).
-- * The cache starts empty and grows entry by entry. An IVFFlat index built on an empty
--   table has meaningless centroids (lists are learnt at build time only) and needs a
--   rebuild as the table grows; an HNSW graph is built by the inserts themselves.
-- * The cost: an HNSW insert walks the graph (each store, and each entry a flush_hits
--   updates: ~4-6 ms per entry at 10 000 entries on this machine against ~0.6 for
--   IVFFlat), and a build from scratch is slower (9.7 s against 1.9 s at 10 000).
--
-- Only the index codeatlas built itself is replaced: the one migration 08 created (it
-- recorded the build in codeatlas_vector_indexes; an index adopted from the Elixir
-- application has no record and stays as Ecto built it), still IVFFlat, on a table of at
-- most 10 000 entries (building HNSW inside the migration would hold writers off for
-- minutes on a big one). Otherwise run `codeatlas index rebuild semantic_cache --kind hnsw`
-- (concurrent: readers and writers carry on) when convenient. The build record is updated
-- like atlas.indexes.rebuild updates it (the tuned knobs reset).

-- migrate:up
DO $$
DECLARE
    entries bigint;
BEGIN
    IF NOT EXISTS (SELECT 1
                     FROM pg_index i
                     JOIN pg_class c ON c.oid = i.indexrelid
                     JOIN pg_am am ON am.oid = c.relam
                    WHERE c.oid = to_regclass('idx_semantic_cache_query_embedding_vector')
                      AND am.amname = 'ivfflat')
       OR NOT EXISTS (SELECT 1
                        FROM codeatlas_vector_indexes
                       WHERE index_name = 'idx_semantic_cache_query_embedding_vector'
                         AND strategy = 'ivfflat') THEN
        -- rebuilt as another kind, absent, or adopted from the Elixir application
        RETURN;
    END IF;
    SELECT count(*) INTO entries FROM semantic_cache;
    IF entries > 10000 THEN
        RAISE NOTICE 'semantic_cache holds % entries: its IVFFlat index is kept; run '
                     '"codeatlas index rebuild semantic_cache --kind hnsw" to switch', entries;
        RETURN;
    END IF;
    DROP INDEX idx_semantic_cache_query_embedding_vector;
    CREATE INDEX idx_semantic_cache_query_embedding_vector
        ON semantic_cache USING hnsw (query_embedding vector_cosine_ops)
        WITH (m = 16, ef_construction = 64);
    UPDATE codeatlas_vector_indexes
       SET lists = 0, rows_at_build = entries, built_at = now(), strategy = 'hnsw',
           params = '{"m": 16, "ef_construction": 64}'::jsonb, default_probes = NULL,
           default_ef_search = NULL, overfetch = NULL, tuned_recall = NULL, tuned_at = NULL
     WHERE index_name = 'idx_semantic_cache_query_embedding_vector';
END
$$;

-- migrate:down
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1
                     FROM pg_index i
                     JOIN pg_class c ON c.oid = i.indexrelid
                     JOIN pg_am am ON am.oid = c.relam
                    WHERE c.oid = to_regclass('idx_semantic_cache_query_embedding_vector')
                      AND am.amname = 'hnsw')
       OR NOT EXISTS (SELECT 1
                        FROM codeatlas_vector_indexes
                       WHERE index_name = 'idx_semantic_cache_query_embedding_vector') THEN
        RETURN;
    END IF;
    DROP INDEX idx_semantic_cache_query_embedding_vector;
    CREATE INDEX idx_semantic_cache_query_embedding_vector
        ON semantic_cache USING ivfflat (query_embedding vector_cosine_ops) WITH (lists = 100);
    UPDATE codeatlas_vector_indexes
       SET lists = 100, rows_at_build = (SELECT count(*) FROM semantic_cache), built_at = now(),
           strategy = 'ivfflat', params = '{}'::jsonb, default_probes = NULL,
           default_ef_search = NULL, overfetch = NULL, tuned_recall = NULL, tuned_at = NULL
     WHERE index_name = 'idx_semantic_cache_query_embedding_vector';
END
$$;
