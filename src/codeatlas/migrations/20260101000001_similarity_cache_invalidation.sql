-- codeatlas' own: writes to a searchable table invalidate the similarity-cache entries they
-- could change, in the same transaction. Entries name their table in target_file_path
-- ("<table>:<key>") and are scoped by the codebase the search filtered on ('*' when none).
-- On the three tables with a codebase_id, statement-level triggers read the changed rows
-- from transition tables and drop that codebase's entries plus the unscoped ones; on the
-- others every entry of the table goes. An empty cache costs one EXISTS probe per statement.

-- migrate:up
CREATE OR REPLACE FUNCTION codeatlas_invalidate_similarity_cache() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM vector_similarity_cache) THEN
        RETURN NULL;
    END IF;
    IF TG_ARGV[0] = 'global' THEN
        DELETE FROM vector_similarity_cache
         WHERE starts_with(target_file_path, TG_TABLE_NAME || ':');
    ELSIF TG_OP = 'INSERT' THEN
        DELETE FROM vector_similarity_cache
         WHERE starts_with(target_file_path, TG_TABLE_NAME || ':')
           AND (codebase_id = '*' OR codebase_id IN (SELECT codebase_id FROM new_rows));
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM vector_similarity_cache
         WHERE starts_with(target_file_path, TG_TABLE_NAME || ':')
           AND (codebase_id = '*' OR codebase_id IN (SELECT codebase_id FROM old_rows));
    ELSE
        DELETE FROM vector_similarity_cache
         WHERE starts_with(target_file_path, TG_TABLE_NAME || ':')
           AND (codebase_id = '*'
                OR codebase_id IN (SELECT codebase_id FROM new_rows
                                   UNION SELECT codebase_id FROM old_rows));
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER codeatlas_cache_ins AFTER INSERT ON codebase_metadata
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION codeatlas_invalidate_similarity_cache('scoped');
CREATE OR REPLACE TRIGGER codeatlas_cache_upd AFTER UPDATE ON codebase_metadata
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION codeatlas_invalidate_similarity_cache('scoped');
CREATE OR REPLACE TRIGGER codeatlas_cache_del AFTER DELETE ON codebase_metadata
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION codeatlas_invalidate_similarity_cache('scoped');
CREATE OR REPLACE TRIGGER codeatlas_cache_truncate AFTER TRUNCATE ON codebase_metadata
    FOR EACH STATEMENT EXECUTE FUNCTION codeatlas_invalidate_similarity_cache('global');

CREATE OR REPLACE TRIGGER codeatlas_cache_ins AFTER INSERT ON graph_nodes
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION codeatlas_invalidate_similarity_cache('scoped');
CREATE OR REPLACE TRIGGER codeatlas_cache_upd AFTER UPDATE ON graph_nodes
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION codeatlas_invalidate_similarity_cache('scoped');
CREATE OR REPLACE TRIGGER codeatlas_cache_del AFTER DELETE ON graph_nodes
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION codeatlas_invalidate_similarity_cache('scoped');
CREATE OR REPLACE TRIGGER codeatlas_cache_truncate AFTER TRUNCATE ON graph_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION codeatlas_invalidate_similarity_cache('global');

CREATE OR REPLACE TRIGGER codeatlas_cache_ins AFTER INSERT ON vector_search
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION codeatlas_invalidate_similarity_cache('scoped');
CREATE OR REPLACE TRIGGER codeatlas_cache_upd AFTER UPDATE ON vector_search
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION codeatlas_invalidate_similarity_cache('scoped');
CREATE OR REPLACE TRIGGER codeatlas_cache_del AFTER DELETE ON vector_search
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION codeatlas_invalidate_similarity_cache('scoped');
CREATE OR REPLACE TRIGGER codeatlas_cache_truncate AFTER TRUNCATE ON vector_search
    FOR EACH STATEMENT EXECUTE FUNCTION codeatlas_invalidate_similarity_cache('global');

CREATE OR REPLACE TRIGGER codeatlas_cache_write
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rules
    FOR EACH STATEMENT EXECUTE FUNCTION codeatlas_invalidate_similarity_cache('global');

CREATE OR REPLACE TRIGGER codeatlas_cache_write
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON code_embeddings
    FOR EACH STATEMENT EXECUTE FUNCTION codeatlas_invalidate_similarity_cache('global');

CREATE OR REPLACE TRIGGER codeatlas_cache_write
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON code_locations
    FOR EACH STATEMENT EXECUTE FUNCTION codeatlas_invalidate_similarity_cache('global');

CREATE OR REPLACE TRIGGER codeatlas_cache_write
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rag_documents
    FOR EACH STATEMENT EXECUTE FUNCTION codeatlas_invalidate_similarity_cache('global');

CREATE OR REPLACE TRIGGER codeatlas_cache_write
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rag_queries
    FOR EACH STATEMENT EXECUTE FUNCTION codeatlas_invalidate_similarity_cache('global');

CREATE OR REPLACE TRIGGER codeatlas_cache_write
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON semantic_cache
    FOR EACH STATEMENT EXECUTE FUNCTION codeatlas_invalidate_similarity_cache('global');

-- migrate:down
DROP TRIGGER IF EXISTS codeatlas_cache_ins ON codebase_metadata;
DROP TRIGGER IF EXISTS codeatlas_cache_upd ON codebase_metadata;
DROP TRIGGER IF EXISTS codeatlas_cache_del ON codebase_metadata;
DROP TRIGGER IF EXISTS codeatlas_cache_truncate ON codebase_metadata;
DROP TRIGGER IF EXISTS codeatlas_cache_ins ON graph_nodes;
DROP TRIGGER IF EXISTS codeatlas_cache_upd ON graph_nodes;
DROP TRIGGER IF EXISTS codeatlas_cache_del ON graph_nodes;
DROP TRIGGER IF EXISTS codeatlas_cache_truncate ON graph_nodes;
DROP TRIGGER IF EXISTS codeatlas_cache_ins ON vector_search;
DROP TRIGGER IF EXISTS codeatlas_cache_upd ON vector_search;
DROP TRIGGER IF EXISTS codeatlas_cache_del ON vector_search;
DROP TRIGGER IF EXISTS codeatlas_cache_truncate ON vector_search;
DROP TRIGGER IF EXISTS codeatlas_cache_write ON rules;
DROP TRIGGER IF EXISTS codeatlas_cache_write ON code_embeddings;
DROP TRIGGER IF EXISTS codeatlas_cache_write ON code_locations;
DROP TRIGGER IF EXISTS codeatlas_cache_write ON rag_documents;
DROP TRIGGER IF EXISTS codeatlas_cache_write ON rag_queries;
DROP TRIGGER IF EXISTS codeatlas_cache_write ON semantic_cache;
DROP FUNCTION IF EXISTS codeatlas_invalidate_similarity_cache();
