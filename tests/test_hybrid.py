"""Full-text search columns (migration 20261203000001), search_text and search_hybrid.

The tsvector is built in SQL, so the splitting is checked in SQL and on rows written both
through the repositories and by plain INSERTs, as the Elixir application writes them. The
rankings run on small hand-made corpora whose vectors are built so each row's cosine to
the query (and so its vector rank) is known.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import codeatlas
from codeatlas.errors import InvalidInputError
from codeatlas.migrations import Migrator
from codeatlas.models import (
    TABLES,
    CodebaseMetadataCreate,
    CodeEmbeddingCreate,
    CodeFileCreate,
    CodeLocationCreate,
    RagDocumentCreate,
    VectorSearchCreate,
)
from codeatlas.repositories.code import CodeLocationsRepository
from codeatlas.search import Match
from codeatlas.text_search import TEXT_MATCH_BUDGET, TextSearchableRepository

DIM = 768

# -- the code-aware text, in SQL ---------------------------------------------------------------

MATCHES = """
SELECT codeatlas_code_tsvector('english', $1) @@ codeatlas_code_tsquery('english', $2)"""


@pytest.mark.parametrize(
    ("document", "query"),
    [
        ("def parse_args(argv):", "parse args"),
        ("def parseArgs(argv):", "parse args"),
        ("def parse_args(argv):", "parseArgs"),
        ("def parseArgs(argv):", "parse_args"),
        ("class HTTPServer(socketserver.TCPServer):", "http server"),
        ("class HTTPServer:", "HTTPServer"),
        ("def utf8_decode(data):", "utf 8"),
        ("codecs.utf8", "utf8"),
        ("return os.path.join(root, name)", "path join"),
        ("return os.path.join(root, name)", "os.path.join"),
        ("see urllib3/util/retry.py", "retry"),
        ("Retries are handled by the Retry class.", "where are HTTP retries handled?"),
    ],
)
async def test_code_aware_splitting_matches(
    atlas: codeatlas.Atlas, document: str, query: str
) -> None:
    assert await atlas.executor.fetchval(MATCHES, document, query) is True


@pytest.mark.parametrize(
    ("document", "query"),
    [("def parse_args(argv):", "server"), ("class HTTPServer:", "client"), ("utf8", "latin1")],
)
async def test_code_aware_splitting_does_not_match_other_words(
    atlas: codeatlas.Atlas, document: str, query: str
) -> None:
    assert await atlas.executor.fetchval(MATCHES, document, query) is False


async def test_lexemes_keep_the_whole_identifier_and_its_parts(atlas: codeatlas.Atlas) -> None:
    lexemes = set(
        await atlas.executor.fetchval(
            "SELECT tsvector_to_array(codeatlas_code_tsvector('english', $1))",
            "parse_args HTTPServer utf8 os.path.join getX2Value",
        )
    )
    # english stems: parse -> pars, args -> arg; the joined identifier is a lexeme too
    assert {"parsearg", "pars", "arg", "httpserver", "http", "server"} <= lexemes
    assert {"utf8", "utf", "8", "os.path.join", "os", "path", "join"} <= lexemes
    assert {"getx2value", "get", "x", "2", "valu"} <= lexemes


async def test_queries_are_or_of_lexemes_and_never_a_syntax_error(atlas: codeatlas.Atlas) -> None:
    query = "SELECT codeatlas_code_tsquery('english', $1)::text"
    assert await atlas.executor.fetchval(query, "where are HTTP retries handled") == (
        "'handl' | 'http' | 'retri'"
    )
    # only stop words, or nothing to search: no query at all (matches nothing)
    for empty in ("", "   ", "the of and is", "!!! ..."):
        assert await atlas.executor.fetchval(query, empty) is None
    # tsquery operators and quoting in the text are read as blanks
    hostile = "it's a \\back'slash & ! | :* ( ) <-> \"quoted\""
    assert await atlas.executor.fetchval(query, hostile) == ("'back' | 'quot' | 'slash'")


async def test_huge_texts_and_long_runs_are_capped_not_refused(atlas: codeatlas.Atlas) -> None:
    blob = "x" * 5000  # base64-like run: dropped
    text = " ".join(f"word{i}" for i in range(60_000))  # > 100 000 characters
    row = await atlas.executor.fetchrow(
        "SELECT length(codeatlas_code_tsvector('english', $1)) AS blob, "
        "pg_column_size(codeatlas_code_tsvector('english', $2)) AS size",
        blob,
        text,
    )
    assert row is not None and row["blob"] == 0
    assert 0 < row["size"] < 1_048_576


# -- the generated columns ---------------------------------------------------------------------


def unit(rng: np.random.Generator, dim: int = DIM) -> npt.NDArray[np.float32]:
    vector = rng.standard_normal(dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


HAS = "SELECT count(*) FROM {table} WHERE search_tsv @@ codeatlas_code_tsquery('english', $1)"


async def test_every_text_table_has_the_generated_column_and_its_gin_index(
    atlas: codeatlas.Atlas,
) -> None:
    texted = {table: m.__table_spec__.text for table, m in TABLES.items() if m.__table_spec__.text}
    assert set(texted) == {
        "code_embeddings",
        "code_locations",
        "codebase_metadata",
        "rag_documents",
        "vector_search",
    }
    for table, text in texted.items():
        assert text is not None
        assert TABLES[table].__table_spec__.unmapped.keys() >= {text.column}
        column = await atlas.executor.fetchrow(
            "SELECT format_type(atttypid, atttypmod) AS type, attgenerated::text FROM pg_attribute "
            "WHERE attrelid = $1::regclass AND attname = $2",
            table,
            text.column,
        )
        assert column is not None and tuple(column) == ("tsvector", "s")
        index = await atlas.executor.fetchval("SELECT pg_get_indexdef($1::regclass)", text.name)
        assert index == f"CREATE INDEX {text.name} ON public.{table} USING gin ({text.column})"


async def test_rows_written_through_the_repositories_get_their_tsvector(
    atlas: codeatlas.Atlas,
) -> None:
    rng = np.random.default_rng(1)
    file = await atlas.code.insert(CodeFileCreate(file_path="pkg/cli.py", project_name="p"))
    await atlas.code.replace_chunks(
        file.id,
        [
            CodeEmbeddingCreate(
                chunk_index=0,
                chunk_text="def parseArgs(argv):\n    return argv",
                metadata={"name": "cli_entry"},
                embedding=unit(rng),
            )
        ],
    )
    await atlas.code.locations.insert(
        CodeLocationCreate(
            project="p",
            file_path="pkg/cli.py",
            line_start=1,
            line_end=2,
            symbol_type="function",
            symbol_name="parse_args",
            documentation="Read the command line options.",
        )
    )
    await atlas.rag.insert(
        RagDocumentCreate(source_type="doc", source_id="guide/retry.md", content="Backoff.")
    )
    await atlas.vector_search.insert(
        VectorSearchCreate(
            codebase_id="c",
            file_path="net/http_server.py",
            content_type="module",
            content="class HTTPServer: ...",
            vector_embedding=unit(rng, 1536),
        )
    )
    await atlas.codebases.insert(
        CodebaseMetadataCreate(
            codebase_id="c",
            codebase_path="/src",
            path="util/retry.py",
            functions=[{"name": "Retry.increment", "doc": "Count one more attempt."}],
            exports=["Retry"],
        )
    )
    ex = atlas.executor
    assert await ex.fetchval(HAS.format(table="code_embeddings"), "parse args") == 1
    assert await ex.fetchval(HAS.format(table="code_embeddings"), "cli entry") == 1
    assert await ex.fetchval(HAS.format(table="code_locations"), "parseArgs") == 1
    assert await ex.fetchval(HAS.format(table="code_locations"), "command options") == 1
    assert await ex.fetchval(HAS.format(table="code_locations"), "cli") == 1  # its path
    assert await ex.fetchval(HAS.format(table="rag_documents"), "retry") == 1
    assert await ex.fetchval(HAS.format(table="vector_search"), "http server") == 1
    assert await ex.fetchval(HAS.format(table="codebase_metadata"), "increment") == 1
    assert await ex.fetchval(HAS.format(table="codebase_metadata"), "attempt") == 1
    assert await ex.fetchval(HAS.format(table="codebase_metadata"), "util") == 1
    # JSON keys are not text: "name" and "doc" appear in no row
    assert await ex.fetchval(HAS.format(table="codebase_metadata"), "name doc") == 0


async def test_rows_written_by_plain_sql_get_their_tsvector_too(atlas: codeatlas.Atlas) -> None:
    """As the Elixir application writes: plain INSERTs naming only its own columns."""
    ex = atlas.executor
    await ex.execute(
        "INSERT INTO code_embeddings (chunk_index, chunk_text) VALUES (0, $1)", "x = HTTPServer()"
    )
    await ex.execute(
        "INSERT INTO code_locations (project, file_path, line_start, line_end, symbol_type,"
        " symbol_name, signature) VALUES ('p', 'a/b.py', 1, 2, 'function', 'utf8Decode', $1)",
        "(data: bytes) -> str",
    )
    await ex.execute(
        "INSERT INTO rag_documents (source_type, source_id, content) VALUES ('d', '1', $1)",
        "Use os.path.join for paths.",
    )
    await ex.execute(
        "INSERT INTO vector_search (codebase_id, file_path, content_type, content,"
        " vector_embedding) VALUES ('c', 'x.py', 'module', $1, $2)",
        "def load_config(): ...",
        unit(np.random.default_rng(2), 1536),
    )
    await ex.execute(
        "INSERT INTO codebase_metadata (codebase_id, codebase_path, path, classes, domains)"
        " VALUES ('c', '/src', 'config.py', $1, $2)",
        [{"name": "ConfigLoader"}],
        ["settings"],
    )
    assert await ex.fetchval(HAS.format(table="code_embeddings"), "http server") == 1
    assert await ex.fetchval(HAS.format(table="code_locations"), "utf 8 decode") == 1
    assert await ex.fetchval(HAS.format(table="code_locations"), "bytes") == 1
    assert await ex.fetchval(HAS.format(table="rag_documents"), "path join") == 1
    assert await ex.fetchval(HAS.format(table="vector_search"), "load config") == 1
    assert await ex.fetchval(HAS.format(table="codebase_metadata"), "config loader") == 1
    assert await ex.fetchval(HAS.format(table="codebase_metadata"), "settings") == 1
    # an update of the text recomputes the column
    await ex.execute("UPDATE rag_documents SET content = 'nothing here'")
    assert await ex.fetchval(HAS.format(table="rag_documents"), "path join") == 0


# -- a corpus with known vector ranks ----------------------------------------------------------

QUERY = np.zeros(DIM, dtype=np.float32)
QUERY[0] = 1.0


def at_cosine(cosine: float, axis: int) -> npt.NDArray[np.float32]:
    """Return a unit vector whose cosine to QUERY is *cosine* (an own axis per row)."""
    vector = np.zeros(DIM, dtype=np.float32)
    vector[0] = cosine
    vector[axis] = math.sqrt(1.0 - cosine * cosine)
    return vector


#: symbol, its documentation, its cosine to QUERY (so its vector rank), its project
CORPUS: list[tuple[str, str, float, str]] = [
    ("load_config", "Read the configuration from disk.", 0.95, "a"),
    ("merge_dicts", "Combine two mappings.", 0.90, "a"),
    ("open_socket", "Connect to a host.", 0.85, "a"),
    ("format_date", "Render a timestamp.", 0.80, "a"),
    ("parse_args", "Turn the command line into options.", 0.75, "a"),
    ("settings_reader", "Settings reader for the settings of the settings file.", 0.10, "a"),
    ("HTTPServer", "Serve requests.", 0.70, "a"),
    ("parse_args", "Parse arguments of project b.", 0.99, "b"),
]


@pytest.fixture
async def corpus(atlas: codeatlas.Atlas) -> CodeLocationsRepository:
    await atlas.code.locations.insert_many(
        [
            CodeLocationCreate(
                project=project,
                file_path=f"{project}/{name.lower()}.py",
                line_start=1,
                line_end=9,
                symbol_type="function",
                symbol_name=name,
                documentation=doc,
                embedding=at_cosine(cosine, axis),
            )
            for axis, (name, doc, cosine, project) in enumerate(CORPUS, start=1)
        ]
    )
    return atlas.code.locations


def names(matches: list[Match[Any]]) -> list[str]:
    return [m.item.symbol_name for m in matches]


async def test_search_text_ranks_the_identifier_first(corpus: CodeLocationsRepository) -> None:
    matches = await corpus.search_text("parseArgs", 5, where={"project": "a"})
    assert names(matches)[0] == "parse_args"
    assert matches[0].text_rank == 1 and matches[0].score == matches[0].text_score
    assert matches[0].text_score is not None and matches[0].text_score > 0
    assert all(m.vector_rank is None and m.similarity == 0.0 for m in matches)
    # a lexical ranking holds only rows that match: nothing else in project a says "parse"
    assert names(matches) == ["parse_args"]


async def test_hybrid_lets_the_lexical_signal_win_for_an_identifier(
    corpus: CodeLocationsRepository,
) -> None:
    # the query vector favours load_config; the text names parse_args exactly
    matches = await corpus.search_hybrid("parse_args", QUERY, 3, where={"project": "a"})
    assert names(matches)[0] == "parse_args"
    top = matches[0]
    assert (top.vector_rank, top.text_rank) == (5, 1)
    assert top.vector_similarity == pytest.approx(0.75, abs=1e-6)
    assert top.similarity == top.vector_similarity
    assert names(matches)[1] == "load_config"  # the vector ranking's first


async def test_hybrid_lets_the_vector_signal_win_for_a_paraphrase(
    corpus: CodeLocationsRepository,
) -> None:
    # "settings" matches settings_reader lexically (name, weight A) and load_config not at
    # all; the embedding of the paraphrase is nearest to load_config
    text = "where are the settings read from"
    lexical = await corpus.search_text(text, 5, where={"project": "a"})
    assert names(lexical)[0] == "settings_reader"
    matches = await corpus.search_hybrid(text, QUERY, 3, where={"project": "a"})
    assert names(matches)[0] == "load_config"
    assert matches[0].vector_rank == 1


async def test_fused_scores_are_reciprocal_rank_fusion_of_both_rankings(
    corpus: CodeLocationsRepository,
) -> None:
    text, weights, rrf_k, candidates = "parse settings reader config", (2.0, 0.5), 10, 6
    matches = await corpus.search_hybrid(
        text, QUERY, 12, weights=weights, rrf_k=rrf_k, candidates=candidates, probes=100
    )
    # the same two rankings, computed apart: exact cosine order, and search_text's order
    by_vector = await corpus.search_similar(QUERY, candidates, exact=True)
    by_text = await corpus.search_text(text, candidates)
    vector_rank = {m.item.id: r for r, m in enumerate(by_vector, start=1)}
    text_rank = {m.item.id: r for r, m in enumerate(by_text, start=1)}
    expected = {
        key: (weights[0] / (rrf_k + vector_rank[key]) if key in vector_rank else 0.0)
        + (weights[1] / (rrf_k + text_rank[key]) if key in text_rank else 0.0)
        for key in vector_rank.keys() | text_rank.keys()
    }
    assert {m.item.id for m in matches} == set(expected)  # k = 12 >= every candidate
    for match in matches:
        assert match.vector_rank == vector_rank.get(match.item.id)
        assert match.text_rank == text_rank.get(match.item.id)
        assert match.score == pytest.approx(expected[match.item.id], rel=1e-12)
    scores = [m.score for m in matches]
    assert scores == sorted(scores, reverse=True)
    # each rank follows its own score: best ts_rank_cd first, nearest vector first
    by_text_rank = sorted((m for m in matches if m.text_rank), key=lambda m: m.text_rank or 0)
    text_scores = [m.text_score for m in by_text_rank]
    assert len(text_scores) >= 3 and text_scores == sorted(text_scores, reverse=True)
    assert text_scores[0] > text_scores[-1]
    by_vector_rank = sorted((m for m in matches if m.vector_rank), key=lambda m: m.vector_rank or 0)
    cosines = [m.vector_similarity for m in by_vector_rank]
    assert cosines == sorted(cosines, reverse=True) and cosines[0] == pytest.approx(0.99, abs=1e-6)
    # rows only the lexical half found still carry their cosine
    assert all(m.vector_similarity is not None for m in matches)


async def test_where_filters_both_halves(corpus: CodeLocationsRepository) -> None:
    # project b's parse_args is first in both rankings unfiltered
    unfiltered = await corpus.search_hybrid("parse_args", QUERY, 3)
    assert (unfiltered[0].item.project, unfiltered[0].vector_rank, unfiltered[0].text_rank) == (
        "b",
        1,
        1,
    )
    for text, embedding in (("parse_args", QUERY), ("parse_args", None), ("", QUERY)):
        matches = await corpus.search_hybrid(text, embedding, 8, where={"project": "a"})
        assert matches and {m.item.project for m in matches} == {"a"}
    assert {
        m.item.project for m in await corpus.search_text("parse", 8, where={"project": "b"})
    } == {"b"}


# -- degrading, and bad input ------------------------------------------------------------------


async def test_without_usable_text_hybrid_is_the_vector_ranking(
    corpus: CodeLocationsRepository,
) -> None:
    vector_order = names(await corpus.search_similar(QUERY, 5, probes=100))
    for text in (None, "", "   ", "?!", "the of and is"):  # the last: only stop words
        matches = await corpus.search_hybrid(text, QUERY, 5, probes=100)
        assert names(matches) == vector_order, text
        assert [m.vector_rank for m in matches] == [1, 2, 3, 4, 5]
        assert all(m.text_rank is None and m.text_score is None for m in matches)
        assert matches[0].score == pytest.approx(1 / 61)


async def test_without_an_embedding_hybrid_is_the_lexical_ranking(
    corpus: CodeLocationsRepository,
) -> None:
    text = "parse settings"
    lexical = await corpus.search_text(text, 5)
    matches = await corpus.search_hybrid(text, None, 5)
    assert [m.item.id for m in matches] == [m.item.id for m in lexical]
    assert all(m.vector_rank is None and m.vector_similarity is None for m in matches)
    assert all(m.similarity == 0.0 for m in matches)
    assert [m.text_rank for m in matches] == list(range(1, len(matches) + 1))


async def test_search_text_without_terms_returns_nothing(corpus: CodeLocationsRepository) -> None:
    for text in ("", "  ", "the of and", "..."):
        assert await corpus.search_text(text, 5) == []


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"text": None, "embedding": None}, "neither"),
        ({"text": "   ", "embedding": None}, "neither"),
        ({"weights": (0, 0)}, "weights"),
        ({"weights": (1.0, math.nan)}, "weights"),
        ({"weights": (1.0, -1.0)}, "weights"),
        ({"weights": (True, 1.0)}, "weights"),
        ({"weights": 1.0}, "weights"),
        ({"rrf_k": -1}, "rrf_k"),
        ({"candidates": 0}, "candidates"),
        ({"candidates": 1001}, "candidates"),
        ({"k": 0}, "k"),
        ({"text": "nul\x00"}, "text"),
        ({"text": 42}, "text"),
        ({"text": "x" * 10_001}, "text"),
        ({"embedding": [1.0, 2.0]}, "embedding"),
        ({"where": {"nope": 1}}, "nope"),
        ({"probes": 0}, "probes"),
    ],
)
async def test_bad_hybrid_arguments_are_refused_before_sql(
    corpus: CodeLocationsRepository, arguments: dict[str, Any], field: str
) -> None:
    call: dict[str, Any] = {"text": "parse", "embedding": QUERY, "k": 5} | arguments
    text, embedding, k = call.pop("text"), call.pop("embedding"), call.pop("k")
    with pytest.raises(codeatlas.CodeAtlasError, match=field):
        await corpus.search_hybrid(text, embedding, k, **call)


async def test_bad_text_search_arguments_are_refused(corpus: CodeLocationsRepository) -> None:
    with pytest.raises(InvalidInputError, match="text"):
        await corpus.search_text(None, 5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="k must"):
        await corpus.search_text("parse", 0)


def test_text_search_facts_derive_from_the_table_specs() -> None:
    def subclasses(cls: type) -> list[type]:
        return [cls, *(s for sub in cls.__subclasses__() for s in subclasses(sub))]

    repositories = [
        cls for cls in subclasses(TextSearchableRepository) if "row_model" in cls.__dict__
    ]
    assert {cls.table for cls in repositories} == {
        table for table, model in TABLES.items() if model.__table_spec__.text is not None
    }
    for cls in repositories:
        text = cls.row_model.__table_spec__.text
        assert text is not None
        assert (cls.text_column, cls.text_index) == (text.column, text.name)
        assert text.column not in cls.columns  # never selected, never written


# -- one statement, and its plan ---------------------------------------------------------------


async def statements_of(atlas: codeatlas.Atlas, run: Any) -> list[tuple[str, Any]]:
    """Return the statements *run* sends on one connection (inside a transaction)."""
    sent: list[tuple[str, Any]] = []

    def log(query: Any) -> None:
        sent.append((query.query, query.args))

    async with atlas.transaction() as tx:
        connection = tx.executor._connection  # type: ignore[attr-defined]
        connection.add_query_logger(log)
        try:
            await run(tx.code.locations)
        finally:
            connection.remove_query_logger(log)
    return sent


async def test_hybrid_is_one_statement_reading_the_table(
    atlas: codeatlas.Atlas, corpus: CodeLocationsRepository
) -> None:
    sent = await statements_of(
        atlas, lambda repo: repo.search_hybrid("parse_args", QUERY, 3, probes=4)
    )
    reading = [sql for sql, _ in sent if "code_locations" in sql]
    assert len(reading) == 1
    [sql] = reading
    assert "vector_hits" in sql and "text_hits" in sql and "FULL OUTER JOIN" in sql
    # the knobs travel around it, as for search_similar (here: a caller's transaction)
    assert any("SET LOCAL ivfflat.probes = '4'" in sql for sql, _ in sent)


async def test_the_statement_text_is_the_same_for_every_query(
    atlas: codeatlas.Atlas, corpus: CodeLocationsRepository
) -> None:
    # the text and the vector are bound: one prepared statement serves every search of a
    # shape, so asyncpg's statement cache reuses it instead of parsing it again
    runs = [
        lambda repo: repo.search_hybrid("parse_args", QUERY, 3, probes=4),
        lambda repo: repo.search_hybrid("where are the settings read", -QUERY, 5, probes=2),
    ]
    sent = [
        [sql for sql, _ in await statements_of(atlas, run) if "code_locations" in sql]
        for run in runs
    ]
    assert len(sent[0]) == 1 and sent[0] == sent[1]
    assert "parse_args" not in sent[0][0]


async def test_plans_use_the_gin_and_the_ivfflat_index(atlas: codeatlas.Atlas) -> None:
    rng = np.random.default_rng(5)
    rows = 6000
    vectors = rng.standard_normal((rows, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    await atlas.code.locations.insert_many(
        [
            CodeLocationCreate(
                project="p",
                file_path=f"m{i % 50}.py",
                line_start=i,
                line_end=i,
                symbol_type="function",
                symbol_name=f"handler_{i}" if i % 1000 else "parse_args",
                embedding=vectors[i],
            )
            for i in range(rows)
        ]
    )
    await atlas.indexes.rebuild("code_locations", concurrently=False)
    await atlas.executor.execute("ANALYZE code_locations")
    sent = await statements_of(
        atlas, lambda repo: repo.search_hybrid("parse_args", vectors[7], 10, probes=1)
    )
    [(sql, args)] = [(sql, args) for sql, args in sent if "code_locations" in sql]
    async with atlas.transaction() as tx:
        await tx.executor.execute("SET LOCAL ivfflat.probes = 1")
        plan = "\n".join(
            row[0] for row in await tx.executor.fetch(f"EXPLAIN (COSTS OFF) {sql}", *args)
        )
    assert "Index Scan using idx_code_locations_embedding_vector on code_locations" in plan
    assert "Bitmap Index Scan on idx_code_locations_search_tsv" in plan
    matches = await atlas.code.locations.search_hybrid("parse_args", vectors[7], 10, probes=1)
    assert matches[0].vector_rank == 1 and matches[0].item.line_start == 7
    assert {m.item.symbol_name for m in matches if m.text_rank is not None} == {"parse_args"}


async def test_common_terms_give_way_to_rare_ones_once_the_table_is_analyzed(
    atlas: codeatlas.Atlas,
) -> None:
    rows = TEXT_MATCH_BUDGET + 150
    await atlas.code.locations.insert_many(
        [
            CodeLocationCreate(
                project="p",
                file_path="m.py",
                line_start=i,
                line_end=i,
                symbol_type="function",
                symbol_name=f"zebra_{i}" if i % 100 == 0 else f"fn_{i}",
                documentation="A helper.",
            )
            for i in range(rows)
        ]
    )
    repo = atlas.code.locations
    # no statistics yet: every term counts, so the common one matches every row
    assert len(await repo.search_text("helper zebra", 1000)) == rows
    await atlas.executor.execute("ANALYZE code_locations")
    # "helper" is in every row (over the budget), "zebra" in 4: only the rare term is kept
    found = await repo.search_text("helper zebra", 1000)
    assert sorted(m.item.line_start for m in found) == [0, 100, 200, 300]
    # a query of common terms alone keeps its rarest term
    assert len(await repo.search_text("helper", 1000)) == rows


async def test_include_embedding_returns_the_vectors(corpus: CodeLocationsRepository) -> None:
    plain = await corpus.search_hybrid("parse_args", QUERY, 2)
    assert all(m.item.embedding is None for m in plain)
    full = await corpus.search_hybrid("parse_args", QUERY, 2, include_embedding=True)
    assert full[0].item.embedding is not None
    assert float(np.dot(full[0].item.embedding, QUERY)) == pytest.approx(full[0].similarity)


async def test_the_migration_rolls_back_and_reapplies_over_rows(
    atlas: codeatlas.Atlas, migrated_dsn: str
) -> None:
    await atlas.rag.insert(
        RagDocumentCreate(source_type="doc", source_id="a", content="Use os.path.join.")
    )
    migrator = Migrator(migrated_dsn)
    reverted = await migrator.rollback(to=20261202000001)
    assert reverted.reverted == [20261204000002, 20261204000001, 20261203000001]
    columns = await atlas.executor.fetchval(
        "SELECT count(*) FROM pg_attribute WHERE attname = 'search_tsv' AND NOT attisdropped"
    )
    functions = await atlas.executor.fetchval(
        "SELECT count(*) FROM pg_proc WHERE proname LIKE 'codeatlas\\_%words'"
        " OR proname LIKE 'codeatlas\\_%tsquery' OR proname = 'codeatlas_code_tsvector'"
    )
    assert (columns, functions) == (0, 0)
    assert await atlas.executor.fetchval("SELECT content FROM rag_documents") == (
        "Use os.path.join."
    )
    await migrator.apply()
    # the column is computed again for the rows already there
    assert await atlas.executor.fetchval(HAS.format(table="rag_documents"), "path join") == 1
