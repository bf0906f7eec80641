-- codeatlas' own: full-text search on the five text-bearing searchable tables. Each gets a
-- STORED generated tsvector column, search_tsv, with a GIN index; search_text and
-- search_hybrid (codeatlas.text_search) read them. Additive only: new functions, one new
-- column per table and its index; nothing the Elixir application maps changes, and since
-- PostgreSQL computes the column, rows the Elixir side writes get it as well.
--
-- Code-aware text. codeatlas_code_words(text) returns the text twice: once with the
-- underscores inside identifiers removed (parse_args -> parseargs, so a snake_case name and
-- its camelCase twin parseArgs give the same whole-identifier lexeme), then once split at
-- camelCase humps, acronym ends and letter/digit boundaries, with dots, slashes, backslashes
-- and colons made blanks (parseArgs -> parse Args; HTTPServer -> HTTP Server; utf8 -> utf 8;
-- os.path.join -> os path join); the parser already splits at underscores and other
-- punctuation. The first copy keeps what the default parser reads as one token: dotted names
-- (os.path.join) and paths (urllib3/util/retry.py) stay whole lexemes. Input is capped at
-- 100 000 characters and runs of 200+ non-space characters (base64, minified code) are
-- dropped: a tsvector holds at most 1 MB and positions up to 16383, so without the cap a
-- huge document written by the Elixir side would fail its INSERT, and such runs are never
-- searched for.
-- codeatlas_code_tsquery(config, text) builds the query with the same function, so a query
-- identifier yields exactly the lexemes a document holding it has, and OR-combines them
-- (codeatlas_or_tsquery): plainto_tsquery and websearch_to_tsquery AND every word, and a
-- developer's question ("where are HTTP retries handled") then matches almost nothing.
-- ts_rank_cd puts rows holding more of the terms, in higher-weighted fields, first.
-- Operators in the text (& | ! quotes) are not interpreted: the parser reads them as blanks,
-- so no input is a syntax error. A text of only stop words gives NULL (matches nothing).
--
-- Configuration: 'english'. Stemming makes retries/retry/retrying one lexeme (retri), and
-- stop-word removal keeps "where are the" out of an OR query, where they would match nearly
-- every row; identifiers stay findable because both sides are stemmed alike and the whole
-- identifier is a lexeme of its own. 'simple' keeps identifiers unstemmed but keeps stop
-- words too. Measured on 3 502 chunks of 1 500 characters of CPython 3.11's Lib (the
-- relevant file's best chunk, english vs simple): "where are HTTP retries handled" matched
-- 478 vs 1 314 chunks (http/client.py ranked 12 vs 6), "parse command line arguments" 1 470
-- vs 1 123 (argparse.py 9 vs 16), "read a zip archive" 679 vs 2 708 (zipfile.py 5 vs 24),
-- "encode an object as JSON" 1 156 vs 2 279 (json/encoder.py 4 vs 10), "copy a file tree"
-- 1 223 vs 2 819 (shutil.py 17 vs 19). The config is an argument of the functions, so
-- another column or a later migration can choose differently.
--
-- Weights (ts_rank_cd's defaults A 1.0, B 0.4, C 0.2, D 0.1): names and paths A, paths
-- beside a name and signatures B, documentation C, bodies D.
--
-- Cost: ADD COLUMN ... STORED rewrites the table under an ACCESS EXCLUSIVE lock (reads and
-- writes wait), and each GIN index is built in the same transaction. Measured on the
-- embedded server (2 cores shared with other work, load ~3.5): 50 000 code_embeddings rows
-- of 1 500 characters took 32.5 s for the column and 1.2 s for the index (table 198 MB,
-- index 12 MB); the shipped tables are far smaller in practice, and on an empty database
-- the migration takes milliseconds. Every insert or update of the text columns computes
-- the tsvector: COPY of 5 000 such rows took 3.1 s instead of 0.05 s (0.6 ms a row).
-- codeatlas_code_tsvector costs about three times plain to_tsvector on the same 1 500-
-- character chunks (python -m benchmarks.tsvector_cost), most of it the parser reading the
-- text twice; the splitting uses lookbehind constraints rather than capture groups, one
-- pass for all split points and replace() rather than translate() (about 10% cheaper
-- than the first definition, with the same tsvector for every chunk measured).

-- migrate:up
CREATE OR REPLACE FUNCTION codeatlas_code_words(body text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
SELECT regexp_replace(capped, '(?<=[[:alnum:]])_+(?=[[:alnum:]])', '', 'g')
       || ' '
       || replace(replace(replace(replace(
            regexp_replace(capped,
                 '(?<=[[:lower:][:digit:]])(?=[[:upper:]])'
              || '|(?<=[[:upper:]])(?=[[:upper:]][[:lower:]])'
              || '|(?<=[[:alpha:]])(?=[[:digit:]])'
              || '|(?<=[[:digit:]])(?=[[:alpha:]])', ' ', 'g'),
            '.', ' '), '/', ' '), '\', ' '), ':', ' ')
  FROM (SELECT CASE WHEN length(head) < 200 THEN head
                    ELSE regexp_replace(head, '[^[:space:]]{200,}', ' ', 'g') END AS capped
          FROM (SELECT left(coalesce(body, ''), 100000) AS head) AS input) AS input
$fn$;

CREATE OR REPLACE FUNCTION codeatlas_code_tsvector(config regconfig, body text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
SELECT to_tsvector(config, codeatlas_code_words(body))
$fn$;

-- The OR of *lexemes*, each quoted for tsquery input (quotes doubled, backslashes escaped)
-- so it is taken verbatim: it was normalised by the config already. NULL for none.
CREATE OR REPLACE FUNCTION codeatlas_or_tsquery(lexemes text[]) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
SELECT string_agg('''' || replace(replace(lexeme, '\', '\\'), '''', '''''') || '''', ' | ')::tsquery
  FROM unnest(lexemes) AS lexeme
$fn$;

CREATE OR REPLACE FUNCTION codeatlas_code_tsquery(config regconfig, query text) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
SELECT codeatlas_or_tsquery(tsvector_to_array(codeatlas_code_tsvector(config, query)))
$fn$;

-- The OR of the lexemes of *query* (as codeatlas_code_tsquery) that search_text and
-- search_hybrid use on column *col* of table *tbl*: each lexeme is weighed by the share of
-- rows holding it as ANALYZE sampled it (pg_stats.most_common_elems; a lexeme not listed
-- is rarer than the rarest listed: half its share, as PostgreSQL's own estimate takes it),
-- and lexemes are kept rarest first while the estimated matching rows stay within
-- *budget*; the rarest is always kept. Without statistics nothing is dropped. PL/pgSQL,
-- so the catalog lookups are planned once per session, not with every search (the
-- pg_stats view is a large statement to plan); STABLE: it reads the catalogs.
-- most_common_elem_freqs holds one share per element, then the least and the greatest
-- of them and the null share.
CREATE OR REPLACE FUNCTION codeatlas_budget_tsquery(
    config regconfig, tbl regclass, col name, query text, budget integer
) RETURNS tsquery
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $fn$
DECLARE
    lexemes text[] := tsvector_to_array(codeatlas_code_tsvector(config, query));
    elems text[];
    shares real[];
    rare real;
    rows_estimate real;
BEGIN
    IF cardinality(lexemes) = 0 THEN
        RETURN NULL;
    END IF;
    SELECT greatest(c.reltuples, 1) INTO rows_estimate FROM pg_class c WHERE c.oid = tbl;
    -- a share is at most 1: when every lexeme could match every row within the budget,
    -- none is dropped, and the statistics need not be read (the rarest is always kept)
    IF cardinality(lexemes) = 1 OR rows_estimate * cardinality(lexemes) <= budget THEN
        RETURN codeatlas_or_tsquery(lexemes);
    END IF;
    SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs INTO elems, shares
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
     WHERE c.oid = tbl AND s.attname = col;
    IF elems IS NULL THEN
        RETURN codeatlas_or_tsquery(lexemes);
    END IF;
    rare := coalesce(shares[cardinality(elems) + 1] / 2, 0);
    RETURN (
        SELECT codeatlas_or_tsquery(array_agg(l.lexeme ORDER BY l.position))
          FROM (SELECT w.lexeme,
                       sum(w.share) OVER (ORDER BY w.share, w.lexeme ROWS UNBOUNDED PRECEDING)
                           AS upto,
                       row_number() OVER (ORDER BY w.share, w.lexeme) AS position
                  FROM (SELECT v.lexeme, coalesce(shares[array_position(elems, v.lexeme)], rare)
                                   AS share
                          FROM unnest(lexemes) AS v (lexeme)) AS w) AS l
         WHERE l.position = 1 OR l.upto * rows_estimate <= budget
    );
END
$fn$;

-- The string items *path* selects in a JSONB array (codebase_metadata's lists hold strings
-- or objects, depending on the writer; anything else is skipped).
CREATE OR REPLACE FUNCTION codeatlas_jsonb_words(items jsonb, path jsonpath) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
SELECT coalesce(string_agg(item #>> '{}', ' '), '')
  FROM jsonb_path_query(coalesce(items, '[]'), path) AS item
 WHERE jsonb_typeof(item) = 'string'
$fn$;

ALTER TABLE code_embeddings ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS (
       setweight(codeatlas_code_tsvector('english', metadata ->> 'name'), 'A')
    || setweight(codeatlas_code_tsvector('english', chunk_text), 'D')
) STORED;
CREATE INDEX idx_code_embeddings_search_tsv ON code_embeddings USING gin (search_tsv);

ALTER TABLE code_locations ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS (
       setweight(codeatlas_code_tsvector('english', symbol_name || ' ' || coalesce(parent_symbol, '')), 'A')
    || setweight(codeatlas_code_tsvector('english', file_path || ' ' || coalesce(signature, '')), 'B')
    || setweight(codeatlas_code_tsvector('english', documentation), 'C')
) STORED;
CREATE INDEX idx_code_locations_search_tsv ON code_locations USING gin (search_tsv);

ALTER TABLE rag_documents ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS (
       setweight(codeatlas_code_tsvector('english', source_id), 'A')
    || setweight(codeatlas_code_tsvector('english', content), 'D')
) STORED;
CREATE INDEX idx_rag_documents_search_tsv ON rag_documents USING gin (search_tsv);

ALTER TABLE vector_search ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS (
       setweight(codeatlas_code_tsvector('english', file_path), 'A')
    || setweight(codeatlas_code_tsvector('english', content), 'D')
) STORED;
CREATE INDEX idx_vector_search_search_tsv ON vector_search USING gin (search_tsv);

-- A file: its path; the names it defines and exports; their first docstring lines and what
-- the file is about; the modules it depends on.
ALTER TABLE codebase_metadata ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS (
       setweight(codeatlas_code_tsvector('english', path), 'A')
    || setweight(codeatlas_code_tsvector('english',
           codeatlas_jsonb_words(functions, 'lax $[*]') || ' '
        || codeatlas_jsonb_words(functions, 'lax $[*].name') || ' '
        || codeatlas_jsonb_words(classes, 'lax $[*]') || ' '
        || codeatlas_jsonb_words(classes, 'lax $[*].name') || ' '
        || codeatlas_jsonb_words(structs, 'lax $[*]') || ' '
        || codeatlas_jsonb_words(enums, 'lax $[*]') || ' '
        || codeatlas_jsonb_words(traits, 'lax $[*]') || ' '
        || codeatlas_jsonb_words(exports, 'lax $[*]')), 'B')
    || setweight(codeatlas_code_tsvector('english',
           codeatlas_jsonb_words(functions, 'lax $[*].doc') || ' '
        || codeatlas_jsonb_words(classes, 'lax $[*].doc') || ' '
        || codeatlas_jsonb_words(domains, 'lax $[*]') || ' '
        || codeatlas_jsonb_words(features, 'lax $[*]') || ' '
        || codeatlas_jsonb_words(patterns, 'lax $[*]') || ' '
        || codeatlas_jsonb_words(business_context, 'lax $[*]')), 'C')
    || setweight(codeatlas_code_tsvector('english',
           codeatlas_jsonb_words(dependencies, 'lax $[*]')), 'D')
) STORED;
CREATE INDEX idx_codebase_metadata_search_tsv ON codebase_metadata USING gin (search_tsv);

-- migrate:down
-- The columns are derived (no data is lost); the functions go after the columns using them.
DROP INDEX IF EXISTS idx_codebase_metadata_search_tsv;
ALTER TABLE codebase_metadata DROP COLUMN IF EXISTS search_tsv;
DROP INDEX IF EXISTS idx_vector_search_search_tsv;
ALTER TABLE vector_search DROP COLUMN IF EXISTS search_tsv;
DROP INDEX IF EXISTS idx_rag_documents_search_tsv;
ALTER TABLE rag_documents DROP COLUMN IF EXISTS search_tsv;
DROP INDEX IF EXISTS idx_code_locations_search_tsv;
ALTER TABLE code_locations DROP COLUMN IF EXISTS search_tsv;
DROP INDEX IF EXISTS idx_code_embeddings_search_tsv;
ALTER TABLE code_embeddings DROP COLUMN IF EXISTS search_tsv;
DROP FUNCTION IF EXISTS codeatlas_jsonb_words(jsonb, jsonpath);
DROP FUNCTION IF EXISTS codeatlas_budget_tsquery(regconfig, regclass, name, text, integer);
DROP FUNCTION IF EXISTS codeatlas_code_tsquery(regconfig, text);
DROP FUNCTION IF EXISTS codeatlas_or_tsquery(text[]);
DROP FUNCTION IF EXISTS codeatlas_code_tsvector(regconfig, text);
DROP FUNCTION IF EXISTS codeatlas_code_words(text);
