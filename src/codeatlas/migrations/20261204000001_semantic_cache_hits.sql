-- codeatlas' own: semantic-cache hits recorded in a side table, folded into
-- semantic_cache.hit_count / last_accessed in batches (SemanticCache.flush_hits).
--
-- Why: both counter columns are indexed (semantic_cache_hit_count_index and
-- semantic_cache_last_accessed_index, from the Elixir schema), so updating them on a hit can
-- never be a HOT update: PostgreSQL writes a new row version and inserts it into every index
-- of the table, the vector index included. An HNSW insert walks the graph like a search
-- does, so a hit cost a lookup plus an index build step: measured at 10 000 entries (HNSW,
-- benchmarks/caches.py), one hit-counting UPDATE read ~1 100 buffers against ~350 for the
-- lookup itself, and the hit's p50 was several times the miss's. A row of this table has
-- no vector and its counter columns are not indexed, so counting a hit here is a HOT update
-- of a small row (fillfactor leaves room on the page for it).
--
-- What the counters mean now: a lookup's returned entry shows its total (stored +
-- pending), while semantic_cache.hit_count / last_accessed lag until the next flush. An
-- Atlas flushes in the background: its first hit starts a task that runs flush_hits'
-- statement every semantic_cache_flush_interval seconds (30 by default; 0 disables it) while
-- there are pending hits, and Atlas.close() flushes once more (for up to 10 s), so a hit
-- reaches the stored columns within about one interval, and a clean shutdown leaves none
-- pending. codeatlas_semantic_cache_usage gives the totals for readers of the table (the
-- Elixir application included) at any time. Rolling this migration back folds the pending
-- hits into their entries first (see the down section), so no count is lost.
-- Pending hits are at most one row per entry; a row whose entry is gone (evicted, expired
-- or deleted by the Elixir application) is dropped by the next flush. Additive only: a new
-- table and a new view; semantic_cache and its indexes are unchanged.

-- migrate:up
CREATE TABLE IF NOT EXISTS codeatlas_semantic_cache_hits (
    entry_id      uuid PRIMARY KEY,
    hits          integer NOT NULL,
    last_accessed timestamp(0) NOT NULL
) WITH (fillfactor = 50);

CREATE OR REPLACE VIEW codeatlas_semantic_cache_usage AS
SELECT s.id,
       coalesce(s.hit_count, 0) + coalesce(h.hits, 0) AS hit_count,
       greatest(s.last_accessed, h.last_accessed) AS last_accessed
  FROM semantic_cache AS s
  LEFT JOIN codeatlas_semantic_cache_hits AS h ON h.entry_id = s.id;

-- migrate:down
-- Pending hits are folded into their entries before the table goes, so a rollback loses no
-- count (rows of entries already gone count for nothing): every row is accounted for, which
-- the seeded marker tells the engine's data-loss check. The lock keeps lookups from adding a
-- row between the fold and the drop.
-- migrate:seeded codeatlas_semantic_cache_hits WHERE true
LOCK TABLE codeatlas_semantic_cache_hits IN ACCESS EXCLUSIVE MODE;
UPDATE semantic_cache AS s
   SET hit_count = coalesce(s.hit_count, 0) + h.hits,
       last_accessed = greatest(s.last_accessed, h.last_accessed)
  FROM codeatlas_semantic_cache_hits AS h
 WHERE h.entry_id = s.id;
DROP VIEW IF EXISTS codeatlas_semantic_cache_usage;
DROP TABLE IF EXISTS codeatlas_semantic_cache_hits;
