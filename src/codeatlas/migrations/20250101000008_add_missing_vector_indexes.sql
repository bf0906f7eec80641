-- The seed's migration 08: IVFFlat cosine indexes (lists = 100, as fixed in 3d44a367) on the
-- 768-dimensional columns of the 2024 tables. As in 07, each index's row count at build
-- time is recorded first, unless the index already exists (adopted from Ecto).

-- migrate:up
INSERT INTO codeatlas_vector_indexes
       (index_name, table_name, column_name, dimensions, lists, rows_at_build)
SELECT v.index_name, v.table_name, v.column_name, 768, 100, v.row_count
  FROM (VALUES
        ('idx_rules_embedding_vector', 'rules', 'embedding',
         (SELECT count(*) FROM rules)),
        ('idx_code_embeddings_embedding_vector', 'code_embeddings', 'embedding',
         (SELECT count(*) FROM code_embeddings)),
        ('idx_code_locations_embedding_vector', 'code_locations', 'embedding',
         (SELECT count(*) FROM code_locations)),
        ('idx_rag_documents_embedding_vector', 'rag_documents', 'embedding',
         (SELECT count(*) FROM rag_documents)),
        ('idx_rag_queries_query_embedding_vector', 'rag_queries', 'query_embedding',
         (SELECT count(*) FROM rag_queries)),
        ('idx_semantic_cache_query_embedding_vector', 'semantic_cache', 'query_embedding',
         (SELECT count(*) FROM semantic_cache))
       ) AS v (index_name, table_name, column_name, row_count)
 WHERE to_regclass(v.index_name) IS NULL
ON CONFLICT (index_name) DO NOTHING;
CREATE INDEX IF NOT EXISTS idx_rules_embedding_vector
    ON rules USING ivfflat (embedding vector_cosine_ops) WITH (lists = 100);
CREATE INDEX IF NOT EXISTS idx_code_embeddings_embedding_vector
    ON code_embeddings USING ivfflat (embedding vector_cosine_ops) WITH (lists = 100);
CREATE INDEX IF NOT EXISTS idx_code_locations_embedding_vector
    ON code_locations USING ivfflat (embedding vector_cosine_ops) WITH (lists = 100);
CREATE INDEX IF NOT EXISTS idx_rag_documents_embedding_vector
    ON rag_documents USING ivfflat (embedding vector_cosine_ops) WITH (lists = 100);
CREATE INDEX IF NOT EXISTS idx_rag_queries_query_embedding_vector
    ON rag_queries USING ivfflat (query_embedding vector_cosine_ops) WITH (lists = 100);
CREATE INDEX IF NOT EXISTS idx_semantic_cache_query_embedding_vector
    ON semantic_cache USING ivfflat (query_embedding vector_cosine_ops) WITH (lists = 100);

-- migrate:down
DROP INDEX IF EXISTS idx_semantic_cache_query_embedding_vector;
DROP INDEX IF EXISTS idx_rag_queries_query_embedding_vector;
DROP INDEX IF EXISTS idx_rag_documents_embedding_vector;
DROP INDEX IF EXISTS idx_code_locations_embedding_vector;
DROP INDEX IF EXISTS idx_code_embeddings_embedding_vector;
DROP INDEX IF EXISTS idx_rules_embedding_vector;
DELETE FROM codeatlas_vector_indexes
 WHERE index_name IN ('idx_rules_embedding_vector', 'idx_code_embeddings_embedding_vector',
                      'idx_code_locations_embedding_vector', 'idx_rag_documents_embedding_vector',
                      'idx_rag_queries_query_embedding_vector',
                      'idx_semantic_cache_query_embedding_vector');
