"""Bad input is refused before SQL, with an error naming the field and why (issue 9).

Each case asserts the error is a codeatlas ``InvalidInputError`` raised by validation: its
cause chain holds no asyncpg exception, so nothing reached the driver's encoder or the
server. The catalog test proves the column types validation uses (derived from the models)
are the database's.
"""

from __future__ import annotations

import base64
import json
import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import codeatlas
from codeatlas.atlas import Scope
from codeatlas.errors import InvalidFilterError, InvalidInputError, InvalidVectorError
from codeatlas.filters import Contains, NotNull, Range
from codeatlas.models import (
    CodebaseRegistryCreate,
    CodeFileCreate,
    GitAgentSessionCreate,
    RuleCreate,
    VectorSearchCreate,
)
from codeatlas.models._types import (
    MAX_JSON_DEPTH,
    ColumnType,
    _json_ok,
    _json_problem,
    json_problem,
    text_problem,
)
from codeatlas.repositories._base import Repository

NUL = "a\x00b"
SURROGATE = "ok\udcff"


def unit(dim: int, seed: int = 0) -> np.ndarray[Any, Any]:
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


def repositories(scope: Scope) -> Iterator[Repository[Any, Any, Any]]:
    """Yield every repository of *scope*: each aggregate and its named children, once."""
    seen: set[str] = set()
    for name in sorted(dir(type(scope))):
        if name.startswith("_") or name in {"executor", "transaction"}:
            continue
        root = getattr(scope, name)
        if not isinstance(root, Repository):
            continue
        for repository in (root, *(v for v in vars(root).values() if isinstance(v, Repository))):
            if repository.table not in seen:
                seen.add(repository.table)
                yield repository


def assert_refused(info: pytest.ExceptionInfo[BaseException], *fragments: str) -> None:
    """Assert the error came from validation (no driver error in its chain) and says why."""
    error: BaseException | None = info.value
    while error is not None:
        assert not isinstance(error, asyncpg.PostgresError | asyncpg.InterfaceError), error
        error = error.__cause__ or error.__context__
    for fragment in fragments:
        assert fragment in str(info.value)


# --- the column types validation uses are the catalog's ------------------------------------

_UDT_KINDS = {
    "text": "text",
    "varchar": "text",
    "bpchar": "text",
    "int4": "int",
    "int8": "int",
    "int2": "int",
    "float8": "float",
    "float4": "float",
    "bool": "bool",
    "uuid": "uuid",
    "timestamp": "datetime",
    "timestamptz": "datetime",
    "jsonb": "json",
    "json": "json",
    "vector": "vector",
    "_varchar": "text[]",
    "_text": "text[]",
    "_uuid": "uuid[]",
    "_jsonb": "json[]",
}


async def test_every_column_type_derived_from_the_models_matches_the_catalog(
    atlas: codeatlas.Atlas,
) -> None:
    checked = 0
    for repository in repositories(atlas):
        types = repository.column_types()
        assert set(types) == set(repository.columns), repository.table
        records = await atlas.executor.fetch(
            "SELECT column_name, udt_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = $1",
            repository.table,
        )
        catalog = {r["column_name"]: r["udt_name"] for r in records}
        for column, kind in types.items():
            udt = catalog[column]
            assert kind.kind == _UDT_KINDS[udt], (repository.table, column, udt, kind)
            if kind.kind == "int":
                assert kind.bits == (32 if udt in {"int4", "int2"} else 64), (
                    repository.table,
                    column,
                    udt,
                )
            checked += 1
    assert checked > 250  # every column of every table (25 tables)


# --- keys and filters against the column's type --------------------------------------------


async def test_a_string_key_for_an_integer_primary_key_is_refused(atlas: codeatlas.Atlas) -> None:
    for call in (
        atlas.codebases.get("svc"),
        atlas.codebases.registry.get("svc"),
        atlas.codebases.registry.find("svc"),
        atlas.codebases.registry.delete("svc"),
        atlas.codebases.registry.get_many([1, "svc"]),
    ):
        with pytest.raises(InvalidInputError) as info:
            await call
        assert_refused(info, "id: expected a 64-bit integer, got str 'svc'")


async def test_keys_beyond_the_column_width_and_bools_are_refused(atlas: codeatlas.Atlas) -> None:
    with pytest.raises(InvalidInputError) as info:
        await atlas.codebases.registry.get(2**63)
    assert_refused(info, "outside the 64-bit integer range")
    with pytest.raises(InvalidInputError) as info:
        await atlas.codebases.registry.get(True)
    assert_refused(info, "got bool")
    with pytest.raises(InvalidInputError) as info:
        await atlas.code.get("abc")
    assert_refused(info, "id: 'abc' is not a UUID")
    with pytest.raises(InvalidFilterError) as info:
        await atlas.code.count({"id": "abc"})
    assert_refused(info, "id: 'abc' is not a UUID")
    with pytest.raises(InvalidInputError) as info:
        await atlas.codebases.registry.get_many("123")
    assert_refused(info, "keys must be a sequence")


async def test_a_uuid_string_key_is_accepted_and_finds_the_row(atlas: codeatlas.Atlas) -> None:
    stored = await atlas.code.insert(CodeFileCreate(file_path="a.py", project_name="p"))
    assert (await atlas.code.get(str(stored.id))).id == stored.id
    assert [r.id for r in await atlas.code.get_many([str(stored.id), uuid.uuid4()])] == [stored.id]


@pytest.mark.parametrize(
    ("where", "fragments"),
    [
        ({"codebase_id": 5}, ["codebase_id: expected a string, got int 5"]),
        ({"id": "abc"}, ["id: expected a 64-bit integer, got str 'abc'"]),
        ({"id": 2**63}, ["id:", "64-bit integer range"]),
        ({"lines": 2**31}, ["lines:", "32-bit integer range"]),
        ({"lines": Range(ge=2**31)}, ["lines:", "32-bit integer range"]),
        ({"size": True}, ["size: expected a 64-bit integer, got bool True"]),
        ({"size": 1.5}, ["size: expected a 64-bit integer, got float 1.5"]),
        ({"codebase_id": Contains("s")}, ["codebase_id: Contains applies to JSON and array"]),
        ({"codebase_id": Range(ge=1)}, ["codebase_id: Range applies to number and timestamp"]),
        ({"quality_score": math.nan}, ["quality_score:", "not a finite number"]),
        ({"codebase_id": NUL}, ["codebase_id: contains a NUL character"]),
        ({"codebase_id": [SURROGATE]}, ["codebase_id: contains a lone surrogate"]),
        ({"domains": ["x"]}, ["domains: a list is an IN filter"]),
        ({"domains": Contains([{1, 2}])}, ["domains[0]: a set has no JSON form"]),
        ({"domains": Contains([math.inf])}, ["domains[0]: inf is not JSON"]),
        ({"inserted_at": Range(ge=3)}, ["inserted_at: expected a timezone-aware datetime"]),
        ({"size": Range(ge=datetime.now(UTC))}, ["size: expected a 64-bit integer"]),
        ({"codebase_id; DROP TABLE codebase_metadata": 1}, ["cannot filter on"]),
        ({5: 1}, ["cannot filter on 5"]),
    ],
)
async def test_filter_values_are_checked_against_their_column(
    atlas: codeatlas.Atlas, where: dict[Any, Any], fragments: list[str]
) -> None:
    repository = atlas.codebases
    for call in (
        repository.count(where),
        repository.exists(where),
        repository.list(where),
        repository.delete_where(where),
        repository.search_similar(unit(1536), 3, where=where),
        repository.search_similar(unit(1536), 3, where=where, cache=True),
        repository.search_similar_many([unit(1536)], 3, where=where),
    ):
        with pytest.raises(InvalidFilterError) as info:
            await call
        assert_refused(info, *fragments)


def test_range_refuses_nan_infinity_and_mixed_bounds() -> None:
    for build in (
        lambda: Range(ge=math.nan),
        lambda: Range(lt=math.inf),
        lambda: Range(ge=2**63),
        lambda: Range(ge=1, lt=datetime.now(UTC)),
    ):
        with pytest.raises(InvalidFilterError):
            build()


async def test_well_typed_filters_still_match(atlas: codeatlas.Atlas) -> None:
    registry = atlas.codebases.registry
    await registry.insert(
        CodebaseRegistryCreate(
            codebase_id="svc", codebase_path="/s", codebase_name="S", metadata={"k": [1, 2]}
        )
    )
    assert await registry.count({"codebase_id": "svc", "id": Range(ge=1)}) == 1
    assert await registry.count({"metadata": Contains({"k": [2]})}) == 1
    assert await registry.count({"analysis_status": ["pending"], "description": None}) == 1
    assert await registry.count({"last_analyzed": NotNull()}) == 0
    snapshot = await atlas.snapshots.take("svc", detected_technologies=["python"])
    assert await atlas.snapshots.count({"detected_technologies": Contains(["python"])}) == 1
    assert (await atlas.snapshots.get(snapshot.id)).codebase_id == "svc"


async def test_bad_list_arguments_and_forged_cursors_are_refused(atlas: codeatlas.Atlas) -> None:
    registry = atlas.codebases.registry
    for kwargs, fragment in (
        ({"limit": "5"}, "limit must be an integer"),
        ({"limit": True}, "limit must be an integer"),
        ({"limit": 10_001}, "limit must be an integer within 1..10000"),
        ({"cursor": 5}, "cursor must be a string"),
        ({"order_by": 5}, "order_by must be a column name"),
        ({"order_by": "metadata"}, "cannot order by 'metadata'"),
        ({"descending": "yes"}, "descending: expected a bool"),
        ({"cursor": "!!!"}, "malformed cursor"),
    ):
        with pytest.raises(InvalidInputError) as info:
            await registry.list(**kwargs)
        assert_refused(info, fragment)
    forged = base64.urlsafe_b64encode(
        json.dumps({"o": "id", "d": False, "v": "x", "k": "not-an-id"}).encode()
    ).decode()
    with pytest.raises(InvalidFilterError) as info:
        await registry.list(cursor=forged)
    assert_refused(info, "cursor: expected a 64-bit integer")


# --- text: NUL and lone surrogates ----------------------------------------------------------


@pytest.mark.parametrize("bad", [NUL, SURROGATE, "\ud83d"])
def test_text_postgresql_cannot_store_is_refused_in_every_model(bad: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        CodeFileCreate(file_path="a.py", project_name="p", content=bad)
    assert_refused(info, "CodeFileCreate: content: contains")
    assert info.value.errors[0]["loc"] == ("content",)
    # a length-limited field: pydantic's own check refuses surrogates first; same error type
    with pytest.raises(InvalidInputError, match="GitAgentSessionCreate: branch: "):
        GitAgentSessionCreate(agent_id="a", workspace_path="/w", branch=bad)


def test_a_refused_assignment_leaves_the_model_unchanged() -> None:
    model = CodeFileCreate(file_path="a.py", project_name="p", content="fine")
    with pytest.raises(InvalidInputError, match="content"):
        model.content = NUL
    assert model.content == "fine"


async def test_text_arguments_of_table_methods_are_refused_before_sql(
    atlas: codeatlas.Atlas,
) -> None:
    for call in (
        atlas.git.open_session("agent", "/w", branch=NUL),
        atlas.git.enqueue_merge(SURROGATE, "agent"),
        atlas.codebases.register(SURROGATE, "/p", "n"),
        atlas.codebases.set_status(NUL, "completed"),  # type: ignore[arg-type]
        atlas.codebases.file_stamps(NUL),
        atlas.graph.neighbours("c", NUL),
        atlas.snapshots.latest(SURROGATE),
        atlas.technology.templates.get_by_identifier(NUL),
        atlas.rag.count({"source_id": NUL}),
        atlas.similarity_cache.invalidate(NUL),
    ):
        with pytest.raises(InvalidInputError) as info:
            await call
        assert_refused(info)


async def test_a_lone_surrogate_in_a_batch_is_refused_and_nothing_is_written(
    atlas: codeatlas.Atlas,
) -> None:
    with pytest.raises(InvalidInputError) as info:
        rows = [
            VectorSearchCreate(
                codebase_id="cb",
                file_path=f"f{i}.py",
                content_type="code",
                content="x" if i != 70 else SURROGATE,
                vector_embedding=unit(1536, i),
            )
            for i in range(100)
        ]
        await atlas.vector_search.insert_many(rows)
    assert_refused(info, "content: contains a lone surrogate")
    assert await atlas.vector_search.count() == 0


def test_text_problem_fast_paths_agree_with_the_full_scan() -> None:
    assert text_problem("plain ascii") is None
    assert text_problem("é and 😀") is None
    assert text_problem("x\x00") is not None and "index 1" in (text_problem("x\x00") or "")
    assert text_problem("é\x00") is not None
    assert text_problem("\udcff") is not None


# --- JSON ------------------------------------------------------------------------------------


class Opaque:
    pass


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def self_referencing() -> dict[str, Any]:
    value: dict[str, Any] = {"ok": 1}
    value["me"] = value
    return value


@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [
        ({"x": math.nan}, "metadata['x']: nan is not JSON"),
        ({"x": [1, -math.inf]}, "metadata['x'][1]: -inf is not JSON"),
        ({"x": {1, 2}}, "metadata['x']: a set has no JSON form"),
        ({"x": b"raw"}, "metadata['x']: a bytes has no JSON form"),
        ({"x": Opaque()}, "a Opaque has no JSON form"),
        ({"x": {1: "a", "1": "b"}}, "key 1 (int) is not a string"),
        ({"x": {"k\x00": 1}}, "contains a NUL character"),
        ({"x": "v\x00"}, "metadata['x']: contains a NUL character"),
        ({"x": 10**5000}, "integer too large for JSON"),
        (self_referencing(), "the container contains itself"),
        (nested(MAX_JSON_DEPTH + 1), f"nested deeper than {MAX_JSON_DEPTH} levels"),
        (nested(5000), f"nested deeper than {MAX_JSON_DEPTH} levels"),
    ],
)
def test_json_jsonb_cannot_hold_is_refused(metadata: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        CodeFileCreate(file_path="a.py", project_name="p", metadata=metadata)
    assert_refused(info, "CodeFileCreate: metadata", fragment)


async def test_json_at_the_depth_limit_round_trips(atlas: codeatlas.Atlas) -> None:
    deep = nested(MAX_JSON_DEPTH)
    shared = [1, 2]
    metadata = {"deep": deep, "a": shared, "b": shared}  # shared, not cyclic: fine
    assert json_problem(metadata) is not None  # one level more than deep itself
    stored = await atlas.code.insert(
        CodeFileCreate(file_path="a.py", project_name="p", metadata={"a": shared, "b": shared})
    )
    assert stored.metadata == {"a": [1, 2], "b": [1, 2]}
    at_limit = await atlas.code.insert(
        CodeFileCreate(file_path="b.py", project_name="p", metadata=nested(MAX_JSON_DEPTH))
    )
    assert at_limit.metadata == nested(MAX_JSON_DEPTH)


def test_non_finite_floats_in_float_columns_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="priority: Input should be a finite number"):
        RuleCreate(name="r", priority=math.nan)  # type: ignore[arg-type]
    from codeatlas.models import GraphEdgeCreate

    with pytest.raises(InvalidInputError, match="weight: Input should be a finite number"):
        GraphEdgeCreate(
            codebase_id="c", edge_id="e", from_node_id="a", to_node_id="b", edge_type="t",
            weight=math.inf,
        )  # fmt: skip


# --- vectors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [[3e38] * 1536, [1e-30] * 1536])
async def test_vectors_whose_float32_norm_breaks_are_refused(
    atlas: codeatlas.Atlas, values: list[float]
) -> None:
    with pytest.raises(InvalidVectorError) as info:
        await atlas.vector_search.search_similar(values, 5)
    assert_refused(info, "embedding: norm")
    with pytest.raises(InvalidVectorError):
        VectorSearchCreate(
            codebase_id="c", file_path="f", content_type="t", content="x", vector_embedding=values
        )


async def test_search_never_returns_nan_similarities(atlas: codeatlas.Atlas) -> None:
    good = await atlas.vector_search.insert(
        VectorSearchCreate(
            codebase_id="c",
            file_path="f",
            content_type="t",
            content="x",
            vector_embedding=unit(1536),
        )
    )
    # a zero vector written around the models (raw SQL, as another client could)
    await atlas.executor.execute(
        "INSERT INTO vector_search (codebase_id, file_path, content_type, content, "
        "vector_embedding) VALUES ('c', 'g', 't', 'x', array_fill(0, ARRAY[1536])::vector)"
    )
    for exact in (False, True):
        matches = await atlas.vector_search.search_similar(unit(1536), 10, exact=exact)
        assert [m.item.id for m in matches] == [good.id]
        assert all(math.isfinite(m.similarity) for m in matches)


# --- knobs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"probes": 40_000}, "probes must be an integer within 1..32768, got 40000"),
        ({"probes": 0}, "probes must be an integer within 1..32768"),
        ({"probes": True}, "probes must be an integer"),
        ({"probes": "10"}, "probes must be an integer"),
        ({"min_similarity": True}, "min_similarity must be a number within -1..1, got True"),
        ({"min_similarity": math.nan}, "min_similarity must be a number within -1..1, got nan"),
        ({"min_similarity": 1.5}, "min_similarity must be a number within -1..1"),
        ({"min_similarity": "0.5"}, "min_similarity must be a number"),
        ({"k": True}, "k must be an integer within 1..1000"),
        ({"k": 1001}, "k must be an integer within 1..1000"),
        ({"exact": "yes"}, "exact: expected a bool"),
        ({"include_embedding": 1}, "include_embedding: expected a bool"),
        ({"cache": None}, "cache: expected a bool"),
    ],
)
async def test_search_knobs_are_typed_and_range_checked(
    atlas: codeatlas.Atlas, kwargs: dict[str, Any], fragment: str
) -> None:
    call = {"k": 5, **kwargs}
    with pytest.raises(InvalidInputError) as info:
        await atlas.rules.search_similar(unit(768), **call)
    assert_refused(info, fragment)


async def test_the_largest_probes_value_the_server_allows_is_accepted(
    atlas: codeatlas.Atlas,
) -> None:
    assert await atlas.rules.search_similar(unit(768), 5, probes=32_768) == []


async def test_search_similar_many_refuses_what_is_not_a_batch(atlas: codeatlas.Atlas) -> None:
    for bad in ("abc", unit(768), 5, [unit(768), "x"]):
        with pytest.raises(InvalidInputError) as info:
            await atlas.rules.search_similar_many(bad, 3)  # type: ignore[arg-type]
        assert_refused(info)
    batch = np.stack([unit(768, 1), unit(768, 2)])
    assert await atlas.rules.search_similar_many(batch, 3) == [[], []]


@pytest.mark.parametrize(
    ("threshold", "fragment"),
    [("x", "threshold"), (True, "threshold"), (math.nan, "threshold"), (2.0, "threshold")],
)
async def test_semantic_cache_lookup_refuses_bad_thresholds(
    atlas: codeatlas.Atlas, threshold: Any, fragment: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        await atlas.semantic_cache.lookup(unit(768), threshold)
    assert_refused(info, fragment)


async def test_semantic_cache_arguments_are_checked(atlas: codeatlas.Atlas) -> None:
    cache = atlas.semantic_cache
    for call, fragment in (
        (cache.lookup(unit(768), 0.9, model=NUL), "model: contains a NUL"),
        (cache.lookup(unit(768), 0.9, model=5), "model: expected a string"),  # type: ignore[arg-type]
        (cache.store(SURROGATE, unit(768), "r"), "query: contains a lone surrogate"),
        (cache.store("q", unit(768), "r", ttl=5), "ttl must be a timedelta"),  # type: ignore[arg-type]
        (cache.store("q", unit(768), "r", ttl=timedelta(0)), "ttl must be positive"),
        (cache.store("q", unit(768), "r", ttl=timedelta(days=10**6)), "ttl_seconds"),
        (cache.store("q", unit(768), "r", metadata={"x": math.nan}), "metadata['x']"),
        (cache.store("q", [1e-30] * 768, "r"), "norm"),
    ):
        with pytest.raises(InvalidInputError) as info:
            await call
        assert_refused(info, fragment)
    assert await cache.count() == 0
    stored = await cache.store("q", unit(768), "r", ttl=timedelta(hours=1))
    hit = await cache.lookup(unit(768), 0.99)
    assert hit is not None and hit.item.id == stored.id


def test_column_type_bind_converts_enums_uuids_and_aware_datetimes() -> None:
    from codeatlas.models import AnalysisStatus

    assert ColumnType("text").bind(AnalysisStatus.PENDING, field="s") == "pending"
    key = uuid.uuid4()
    assert ColumnType("uuid").bind(str(key), field="id") == key
    moment = datetime(2025, 1, 1, 12, tzinfo=UTC) + timedelta(hours=1)
    assert ColumnType("datetime").bind(moment, field="t") == datetime(2025, 1, 1, 13)
    assert ColumnType("datetime").bind(datetime(2025, 1, 1), field="t", stored=True) == datetime(
        2025, 1, 1
    )
    assert ColumnType("float").bind(3, field="f") == 3.0
    with pytest.raises(InvalidInputError, match="not a finite number"):
        ColumnType("float").bind(10**400, field="f")


_json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from([2**14001, 10**4000]),
        st.floats(),
        st.text(st.characters(codec=None), max_size=6),
        st.sampled_from([b"x", {1}, Opaque(), uuid.UUID(int=1)]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(st.one_of(st.text(max_size=4), st.integers()), children, max_size=3),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(_json_values)
def test_the_fast_json_check_agrees_with_the_full_one(value: Any) -> None:
    assert _json_ok(value) == (_json_problem(value, "") is None)
    assert (json_problem(value) is None) == (_json_problem(value, "") is None)


async def test_a_refused_call_inside_a_transaction_leaves_it_usable(atlas: codeatlas.Atlas) -> None:
    # had any of these reached the server, the transaction would be aborted
    # (InFailedSQLTransactionError on the next statement)
    async with atlas.transaction() as tx:
        await tx.codebases.registry.insert(
            CodebaseRegistryCreate(codebase_id="svc", codebase_path="/s", codebase_name="S")
        )
        for call in (
            tx.codebases.registry.get("svc"),
            tx.codebases.registry.count({"codebase_id": NUL}),
            tx.codebases.registry.count({"id": 2**63}),
            tx.rules.search_similar(unit(768), 3, probes=40_000),
            tx.semantic_cache.lookup(unit(768), "x"),  # type: ignore[arg-type]
            tx.git.open_session("a", "/w", branch=SURROGATE),
        ):
            with pytest.raises(InvalidInputError) as info:
                await call
            assert_refused(info)
        assert await tx.codebases.registry.count({"codebase_id": "svc"}) == 1
    assert await atlas.codebases.registry.count() == 1


async def test_index_maintenance_arguments_are_typed(atlas: codeatlas.Atlas) -> None:
    await atlas.rules.insert_many(
        [RuleCreate(name=f"r{i}", embedding=unit(768, i)) for i in range(5)]
    )
    indexes = atlas.indexes
    for call, fragment in (
        (indexes.measure_recall("rules", sample="5"), "sample must be an integer"),  # type: ignore[arg-type]
        (indexes.measure_recall("rules", k=True), "k must be an integer"),
        (indexes.measure_recall("rules", seed="x"), "seed must be"),  # type: ignore[arg-type]
        (indexes.measure_recall("rules", seed=-1), "seed must be"),
        (indexes.measure_recall("rules", probes=40_000), "probes"),
        (indexes.tune("rules", sample=0), "sample must be an integer within 1..10000"),
        (indexes.compare("rules", strategies=5), "strategies must be"),  # type: ignore[arg-type]
        (indexes.compare("rules", max_rows="x"), "max_rows"),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidInputError) as info:
            await call
        assert_refused(info, fragment)
