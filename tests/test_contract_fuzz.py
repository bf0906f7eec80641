"""Contract fuzz: hostile values into every public repository method (issue 9).

Every public coroutine of every repository an ``Atlas`` exposes (the aggregates and their
named children, found by walking the Atlas, so methods added later are fuzzed too) is called
with arguments drawn from its signature: plausible values, or hostile ones (wrong types, NUL,
lone surrogates, NaN/Inf, huge and tiny floats, huge ints, deep and cyclic JSON, injection
strings in filter keys and values, giant strings). Write models are built inside the call
with hostile field values, so their validation is part of the contract too.

Asserted for every call:

* it returns, or raises a ``CodeAtlasError`` (never anything else);
* a call that raised wrote nothing: a row trigger on every table counts committed row
  changes (in a table, so a rolled-back change is not counted), and the count is unchanged;
* no value the driver or the server rejects got that far: a ``CodeAtlasError`` caused by a
  data error (SQLSTATE class 22, an undefined function or a type mismatch) or by a client
  encoding failure means validation let bad input through.

A second test makes the same calls inside a caller's transaction: there, anything sent to
the server that the server refused would abort the transaction, so after a refusal that no
driver error caused the transaction must still answer.

Bounded for CI: ``FUZZ_EXAMPLES`` examples per method plus 200 in transactions, derandomized
(the same inputs on every run; the examples share one database, so a failure found in the
full run reproduces in the full run). The totals print at the end of the module (``-s``).
"""

from __future__ import annotations

import asyncio
import inspect
import math
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

import asyncpg
import numpy as np
import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

import codeatlas
import codeatlas.models as models
from codeatlas.errors import CodeAtlasError, InvalidInputError
from codeatlas.filters import Contains, NotNull, Range
from codeatlas.models._base import CreateModel, WriteModel, _field_parts, _kind
from codeatlas.repositories._base import Repository
from codeatlas.search import SearchableRepository

FUZZ_EXAMPLES = 12
#: Seconds one call may take before the fuzz calls it a hang.
CALL_TIMEOUT = 30.0
#: Methods left out, and why.
SKIPPED = {
    # VACUUM of a table: correct with any input (it takes none), and slow to repeat
    "vacuum_analyze",
}

OUTCOMES: Counter[str] = Counter()
SERVER_REJECTED: list[str] = []

# --- hostile values --------------------------------------------------------------------------

INJECTIONS = [
    "'; DROP TABLE codebase_metadata; --",
    "1 OR 1=1",
    '" OR ""="',
    "id) OR (1=1",
    "$1",
    "\\x00",
    "%s%s%s",
    "codebase_id; DELETE FROM rules",
]
BAD_TEXT = ["a\x00b", "\x00", "ok\udcff", "\ud800", "\udfff tail", "é\x00é"]
GIANT = ["x" * 100_000, "é" * 70_000, "\U0001f600" * 20_000]
EXTREME_INTS = [2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 2**64, 10**30, 10**4000, 2**14001]
EXTREME_FLOATS = [math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 3e38, 1e-30, -0.0]


class Opaque:
    """An object JSON and SQL have no form for."""

    def __repr__(self) -> str:
        return "Opaque()"


def _deep(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def _cyclic() -> Any:
    value: dict[str, Any] = {"k": 1}
    value["self"] = value
    return value


_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(BAD_TEXT),
    st.sampled_from([b"raw", {1, 2}, frozenset(), Opaque(), uuid.UUID(int=7), 2**14001]),
)
hostile_json = st.one_of(
    st.recursive(
        _json_leaf,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(
                st.one_of(st.text(max_size=5), st.sampled_from([1, None, 2.5, "k\x00"])),
                children,
                max_size=3,
            ),
        ),
        max_leaves=8,
    ),
    st.builds(_deep, st.sampled_from([63, 64, 65, 200, 900])),
    st.builds(_cyclic),
)

hostile_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(EXTREME_INTS),
    st.floats(),
    st.sampled_from(EXTREME_FLOATS),
    st.text(max_size=12),
    st.text(st.characters(codec=None, categories=["Cs", "Cc"]), min_size=1, max_size=4),
    st.sampled_from(BAD_TEXT + INJECTIONS + GIANT),
    st.binary(max_size=8),
    st.uuids(),
    st.uuids().map(str),
    st.datetimes(),  # naive
    st.datetimes(timezones=st.just(UTC)),
    st.timedeltas(),
    st.sampled_from([Opaque(), object, {1, 2}, frozenset({"a"}), (), Ellipsis]),
    st.sampled_from([np.float32(1), np.int64(3), np.array([1.0, 2.0]), np.zeros(768)]),
)


@st.composite
def condition_spec(draw: st.DrawFn) -> tuple[str, Any]:
    """A filter condition, as (kind, arguments): built inside the call (Range may raise)."""
    kind = draw(st.sampled_from(["value", "value", "list", "range", "contains", "notnull"]))
    if kind == "list":
        return kind, draw(st.lists(hostile_scalar, max_size=3))
    if kind == "range":
        bounds = st.one_of(hostile_scalar, st.integers(-5, 5), st.just(None))
        return kind, draw(st.fixed_dictionaries({"ge": bounds, "lt": bounds}))
    if kind == "contains":
        return kind, draw(st.one_of(hostile_json, st.lists(hostile_scalar, max_size=2)))
    if kind == "notnull":
        return kind, None
    return kind, draw(st.one_of(hostile_scalar, hostile_json))


def build_condition(spec: tuple[str, Any]) -> Any:
    kind, argument = spec
    if kind == "range":
        return Range(**argument)
    if kind == "contains":
        return Contains(argument)
    if kind == "notnull":
        return NotNull()
    return argument


def hostile_where(repo: Repository[Any, Any, Any]) -> st.SearchStrategy[Any]:
    keys = st.one_of(
        st.sampled_from(sorted(repo.columns)),
        st.sampled_from([*INJECTIONS, "password", 5, None, ("a",)]),
    )
    specs = st.dictionaries(keys, condition_spec(), max_size=3)
    return st.one_of(specs.map(lambda s: ("where", s)), hostile_scalar.map(lambda v: ("raw", v)))


def build_where(spec: tuple[str, Any]) -> Any:
    kind, value = spec
    if kind == "raw":
        return value
    return {key: build_condition(condition) for key, condition in value.items()}


# --- plausible values --------------------------------------------------------------------------


def unit_vector(dim: int, seed: int) -> np.ndarray[Any, Any]:
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


def vectors(dim: int) -> st.SearchStrategy[Any]:
    return st.integers(0, 3).map(lambda seed: unit_vector(dim, seed))


def _enum_of(parts: list[Any]) -> type[Enum] | None:
    return next((p for p in parts if isinstance(p, type) and issubclass(p, Enum)), None)


def plausible_field(field: Any, dim: int | None) -> st.SearchStrategy[Any]:
    """A valid value for a write-model field (the database may still refuse it: FKs)."""
    parts = _field_parts(field)
    enum = _enum_of(parts)
    if enum is not None:
        return st.sampled_from(list(enum))
    kind = _kind(parts)
    return {
        "text": st.sampled_from(["a", "svc", "src/app.py", "x"]),
        "int": st.integers(0, 3),
        "float": st.floats(0, 1),
        "bool": st.booleans(),
        "uuid": st.uuids(),
        "datetime": st.just(datetime(2025, 1, 1, tzinfo=UTC)),
        "json": st.sampled_from([{}, {"k": 1}]),
        "json[]": st.just([{"p": 1}]),
        "text[]": st.just(["python"]),
        "uuid[]": st.just([]),
        "vector": vectors(dim or 768),
    }.get(kind or "", st.none())


@st.composite
def model_spec(draw: st.DrawFn, model: type[WriteModel]) -> tuple[type[WriteModel], dict[str, Any]]:
    """Fields for *model*: the required ones plausible, up to two of any set to hostile values."""
    dims = {
        name: next((p.dim for p in _field_parts(f) if hasattr(p, "dim")), None)
        for name, f in model.model_fields.items()
    }
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if field.is_required() or (
            not issubclass(model, CreateModel) and draw(st.integers(0, 3)) == 0
        ):
            values[name] = draw(plausible_field(field, dims[name]))
    for name in draw(st.lists(st.sampled_from(sorted(model.model_fields)), max_size=2)):
        values[name] = draw(st.one_of(hostile_scalar, hostile_json))
    return model, values


def build_model(spec: tuple[type[WriteModel], dict[str, Any]]) -> WriteModel:
    model, values = spec
    return model(**values)


_MODEL_NAME = re.compile(r"\b(\w+(?:Create|Update))\b")


def model_for(repo: Repository[Any, Any, Any], annotation: str) -> type[WriteModel] | None:
    """Return the write model a parameter annotated *annotation* takes, if it takes one."""
    if "UpdateT" in annotation:
        return repo.update_model
    if "CreateT" in annotation:
        return repo.create_model
    found = _MODEL_NAME.search(annotation)
    model = getattr(models, found.group(1), None) if found else None
    return model if isinstance(model, type) and issubclass(model, WriteModel) else None


def plausible_argument(
    repo: Repository[Any, Any, Any], name: str, annotation: str, keys: list[Any]
) -> st.SearchStrategy[Any]:
    """A strategy of plausible values for parameter *name* of a method of *repo*."""
    dim = repo.dimensions if isinstance(repo, SearchableRepository) else 768
    types = repo.column_types()
    if name in {"embedding", "query_embedding"}:
        return vectors(dim)
    if name == "embeddings":
        return st.lists(vectors(dim), min_size=1, max_size=3)
    if name == "where":
        return st.just({})
    if name in {"key", "merge_id", "run_id", "rule_id", "proposal_id", "execution_id"} or (
        name.endswith("_id") and name in types and types[name].kind in {"uuid", "int"}
    ):
        return st.sampled_from(keys) if keys else st.just(1)
    if name in types and types[name].kind in {"text", "int", "float", "bool"}:
        return plausible_field(repo.row_model.model_fields[name], None)
    if name in {"k", "limit", "probes", "max_depth", "batch_size"}:
        return st.integers(1, 5)
    if name in {"min_similarity", "threshold", "confidence", "damping"}:
        return st.floats(0.1, 0.9)
    if "timedelta" in annotation:
        return st.timedeltas(timedelta(seconds=1), timedelta(days=1))
    if "datetime" in annotation:
        return st.just(datetime(2025, 1, 1, tzinfo=UTC))
    if annotation.startswith("bool"):
        return st.booleans()
    if "Mapping" in annotation or "dict" in annotation:
        return st.just({})
    if "Sequence" in annotation or "Iterable" in annotation or "Collection" in annotation:
        return st.just([])
    if annotation.startswith(("str", "int")):
        return st.sampled_from(["svc", "a"]) if annotation.startswith("str") else st.just(1)
    return st.none()


# --- the database's state ------------------------------------------------------------------


_COUNT_WRITES = """
CREATE TABLE fuzz_writes (tbl text PRIMARY KEY, n bigint NOT NULL);
CREATE FUNCTION fuzz_count_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO fuzz_writes VALUES (TG_TABLE_NAME, 1)
    ON CONFLICT (tbl) DO UPDATE SET n = fuzz_writes.n + 1;
    RETURN NULL;
END $$;
"""


async def count_writes(atlas: codeatlas.Atlas) -> None:
    """Count every committed row change of every table of the targets in fuzz_writes."""
    await atlas.executor.execute(_COUNT_WRITES)
    for table in sorted({repo.table for _, _, repo in targets_of(atlas)}):
        await atlas.executor.execute(
            f"CREATE TRIGGER fuzz_count AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION fuzz_count_write()"
        )


async def writes(atlas: codeatlas.Atlas) -> dict[str, int]:
    """Return table -> committed row changes so far."""
    return {r[0]: r[1] for r in await atlas.executor.fetch("SELECT tbl, n FROM fuzz_writes")}


def server_rejected(error: BaseException) -> str | None:
    """Return the driver/server rejection of a value behind *error*, if there is one."""
    seen: BaseException | None = error.__cause__ or error.__context__
    while seen is not None:
        if isinstance(seen, asyncpg.PostgresError):
            state = getattr(seen, "sqlstate", "") or ""
            if state.startswith("22") or state in {"42883", "42804", "42P18"}:
                return f"{type(seen).__name__} ({state}): {seen}"
        if isinstance(seen, asyncpg.exceptions.DataError | asyncpg.InterfaceError):
            return f"{type(seen).__name__}: {seen}"
        seen = seen.__cause__ or seen.__context__
    return None


def kind_of(error: CodeAtlasError) -> str:
    """Return who refused: the server (a translated driver error), validation, or codeatlas."""
    cause: BaseException | None = error.__cause__
    while cause is not None:
        if isinstance(cause, asyncpg.PostgresError | asyncpg.InterfaceError):
            return "server"
        cause = cause.__cause__
    return "invalid_input" if isinstance(error, InvalidInputError) else "codeatlas_other"


# --- the targets -----------------------------------------------------------------------------


def targets_of(scope: Any) -> Iterator[tuple[str, str, Repository[Any, Any, Any]]]:
    """Yield (path, method, repository) for every public coroutine of every repository."""
    seen: set[tuple[str, str]] = set()
    for attribute in sorted(dir(type(scope))):
        if attribute.startswith("_") or attribute in {"executor", "transaction"}:
            continue
        root = getattr(scope, attribute)
        if not isinstance(root, Repository):
            continue
        children = [(f"{attribute}.{n}", v) for n, v in vars(root).items()]
        for path, repo in [(attribute, root), *children]:
            if not isinstance(repo, Repository):
                continue
            for name in dir(type(repo)):
                member = getattr(type(repo), name)
                if (
                    name.startswith("_")
                    or name in SKIPPED
                    or not inspect.iscoroutinefunction(member)
                    or (repo.table, name) in seen
                ):
                    continue
                seen.add((repo.table, name))
                yield path, name, repo


def _target_ids() -> list[str]:
    # the names only: collected without a database (a Scope builds repositories lazily)
    from codeatlas._db import Executor
    from codeatlas.atlas import Scope

    class _Nothing:
        pass

    scope = Scope(Executor(connection=_Nothing()))  # type: ignore[arg-type]
    return [f"{path}.{name}" for path, name, _ in targets_of(scope)]


TARGETS = _target_ids()


def resolve(
    atlas: codeatlas.Atlas, target: str
) -> tuple[Repository[Any, Any, Any], Callable[..., Any]]:
    *path, name = target.split(".")
    repo: Any = atlas
    for part in path:
        repo = getattr(repo, part)
    return repo, getattr(repo, name)


# --- fixture: one database for the module, seeded with a few rows per table ----------------


@pytest_asyncio.fixture(scope="module")
async def fuzz_atlas(pg: Any) -> AsyncIterator[codeatlas.Atlas]:
    template = await pg.ensure_template()
    name = await pg.create_database(template=template)
    try:
        async with codeatlas.connect(pg.dsn_for(name), migrate=False) as atlas:
            await _seed(atlas)
            await count_writes(atlas)
            yield atlas
    finally:
        await pg.drop_database(name)
        tried = OUTCOMES["success"] + OUTCOMES["codeatlas"] + OUTCOMES["other"]
        print(
            f"\ncontract fuzz: {tried} calls over {len(TARGETS)} methods, "
            f"{OUTCOMES['hostile']} with hostile input: success {OUTCOMES['success']}, "
            f"CodeAtlasError {OUTCOMES['codeatlas']} (InvalidInputError before SQL "
            f"{OUTCOMES['invalid_input']}; other errors codeatlas raised itself, such as not "
            f"found or a closed proposal, {OUTCOMES['codeatlas_other']}; translated from the "
            f"server, such as a foreign key or a unique conflict, {OUTCOMES['server']}), "
            f"other errors {OUTCOMES['other']}, rows written by calls that raised "
            f"{OUTCOMES['written_by_failure']}, values the driver or server had to reject "
            f"{len(SERVER_REJECTED)}"
        )


async def _seed(atlas: codeatlas.Atlas) -> None:
    registry = atlas.codebases.registry
    await registry.insert(
        models.CodebaseRegistryCreate(codebase_id="svc", codebase_path="/svc", codebase_name="S")
    )
    await atlas.codebases.insert(
        models.CodebaseMetadataCreate(
            codebase_id="svc",
            codebase_path="/svc",
            path="a.py",
            vector_embedding=unit_vector(1536, 0),
        )
    )
    rule = await atlas.rules.insert(models.RuleCreate(name="r", embedding=unit_vector(768, 0)))
    await atlas.rules.propose(rule.id, "agent", [{"p": 1}], "because")
    await atlas.rules.record_execution(
        rule.id, decision=models.ExecutionDecision.AUTONOMOUS, confidence=0.5, execution_time_ms=3
    )
    code_file = await atlas.code.insert(models.CodeFileCreate(file_path="a.py", project_name="p"))
    await atlas.code.replace_chunks(
        code_file.id,
        [models.CodeEmbeddingCreate(chunk_index=0, chunk_text="x", embedding=unit_vector(768, 1))],
    )
    await atlas.git.open_session("agent", "/w", branch="b")
    await atlas.git.enqueue_merge("b", "agent")
    run = await atlas.quality.start_run("custom")
    await atlas.quality.add_findings(
        run.id, [models.QualityFindingCreate(run_id=run.id, message="m")]
    )
    await atlas.snapshots.take("svc", detected_technologies=["python"])
    await atlas.vector_search.insert(
        models.VectorSearchCreate(
            codebase_id="svc",
            file_path="a.py",
            content_type="code",
            content="x",
            vector_embedding=unit_vector(1536, 2),
        )
    )
    document = await atlas.rag.insert(
        models.RagDocumentCreate(
            source_type="t", source_id="1", content="c", embedding=unit_vector(768, 2)
        )
    )
    query = await atlas.rag.record_query("q", query_embedding=unit_vector(768, 3))
    await atlas.rag.feedback.add(query.id, document.id, 0.5, 4)
    await atlas.semantic_cache.store("q", unit_vector(768, 0), "answer")


# --- the test ----------------------------------------------------------------------------------


async def _keys(atlas: codeatlas.Atlas, repo: Repository[Any, Any, Any]) -> list[Any]:
    records = await atlas.executor.fetch(
        f"SELECT {repo.primary_key} FROM {repo.table} ORDER BY 1 LIMIT 3"
    )
    return [r[0] for r in records]


@st.composite
def call_spec(
    draw: st.DrawFn, repo: Repository[Any, Any, Any], method: Callable[..., Any], keys: list[Any]
) -> tuple[list[Any], dict[str, Any], bool]:
    """Arguments for one call, as specs built at call time; and whether any is hostile."""
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    hostile_any = False
    parameters = list(inspect.signature(method).parameters.values())
    forced = draw(st.integers(0, max(len(parameters) - 1, 0)))
    for index, parameter in enumerate(parameters):
        annotation = str(parameter.annotation)
        if parameter.kind is parameter.VAR_KEYWORD:
            taken = {p.name for p in parameters}
            names = st.sampled_from(sorted(set(repo.columns) - taken))
            fields = draw(
                st.dictionaries(names, st.one_of(hostile_scalar, hostile_json), max_size=2)
            )
            keywords.update({k: ("value", v) for k, v in fields.items()})
            hostile_any = hostile_any or bool(fields)
            continue
        optional = parameter.default is not parameter.empty
        if optional and index != forced and draw(st.integers(0, 2)) == 0:
            continue  # left at its default
        hostile = index == forced or draw(st.integers(0, 3)) == 0
        model = model_for(repo, annotation)
        if parameter.name == "where":
            spec = ("where", draw(hostile_where(repo) if hostile else st.just(("where", {}))))
        elif model is not None:
            one = model_spec(model)
            if any(s in annotation for s in ("Sequence", "Iterable", "list")):
                batch = draw(st.lists(one, max_size=3))
                shape = draw(st.sampled_from(["models", "value", "mixed"])) if hostile else "models"
                if shape == "value":
                    spec = ("value", draw(hostile_scalar))
                elif shape == "mixed":  # a stray non-model after valid ones: nothing is written
                    spec = ("mixed", (batch, draw(hostile_scalar)))
                else:
                    spec = ("models", batch)
            else:
                spec = (
                    ("value", draw(hostile_scalar))
                    if hostile and draw(st.booleans())
                    else ("model", draw(one))
                )
            hostile = hostile or spec[0] != "value"
        elif hostile:
            spec = ("value", draw(st.one_of(hostile_scalar, hostile_json)))
        else:
            spec = ("value", draw(plausible_argument(repo, parameter.name, annotation, keys)))
        hostile_any = hostile_any or hostile
        if parameter.kind is parameter.KEYWORD_ONLY:
            keywords[parameter.name] = spec
        else:
            positional.append(spec)
    return positional, keywords, hostile_any


def build_argument(spec: tuple[str, Any]) -> Any:
    kind, value = spec
    if kind == "where":
        return build_where(value)
    if kind == "model":
        return build_model(value)
    if kind == "models":
        return [build_model(item) for item in value]
    if kind == "mixed":
        batch, stray = value
        return [*(build_model(item) for item in batch), stray]
    return value


async def _call(method: Callable[..., Any], positional: list[Any], keywords: dict[str, Any]) -> Any:
    # argument construction (models, Range) is part of the public contract too
    args = [build_argument(spec) for spec in positional]
    kwargs = {name: build_argument(spec) for name, spec in keywords.items()}
    return await asyncio.wait_for(method(*args, **kwargs), CALL_TIMEOUT)


@pytest.mark.parametrize("target", TARGETS)
@settings(
    max_examples=FUZZ_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
)
@given(data=st.data())
async def test_hostile_input_gives_success_or_a_codeatlas_error_and_writes_nothing_on_failure(
    fuzz_atlas: codeatlas.Atlas, target: str, data: st.DataObject
) -> None:
    atlas = fuzz_atlas
    repo, method = resolve(atlas, target)
    keys = await _keys(atlas, repo)
    positional, keywords, hostile = data.draw(call_spec(repo, method, keys), label="call")
    OUTCOMES["hostile"] += hostile
    before = await writes(atlas)
    try:
        await _call(method, positional, keywords)
    except CodeAtlasError as error:
        OUTCOMES["codeatlas"] += 1
        rejected = server_rejected(error)
        if rejected is not None:
            SERVER_REJECTED.append(f"{target}: {rejected}")
        OUTCOMES[kind_of(error)] += 1
        after = await writes(atlas)
        changed = sorted(t for t in after if before.get(t) != after[t])
        OUTCOMES["written_by_failure"] += bool(changed)
        assert not changed, f"{target} raised {error!r} but changed {changed}"
        assert rejected is None, f"{target}: the driver/server rejected a value: {rejected}"
    except Exception as error:
        OUTCOMES["other"] += 1
        raise AssertionError(f"{target} let {type(error).__name__} escape: {error!r}") from error
    else:
        OUTCOMES["success"] += 1


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(data=st.data())
async def test_hostile_input_inside_a_transaction_is_refused_before_sql(
    fuzz_atlas: codeatlas.Atlas, data: st.DataObject
) -> None:
    # Inside a caller's transaction a value that reached the server would abort it: after a
    # refusal by validation (no driver error behind it) the transaction must still work, and
    # committing it must not write anything the refused call began.
    atlas = fuzz_atlas
    target = data.draw(st.sampled_from(TARGETS), label="target")
    keys = await _keys(atlas, resolve(atlas, target)[0])
    before = await writes(atlas)
    refused: CodeAtlasError | None = None
    try:
        async with atlas.transaction() as tx:
            repo, method = resolve(tx, target)
            positional, keywords, hostile = data.draw(call_spec(repo, method, keys), label="call")
            OUTCOMES["hostile"] += hostile
            try:
                await _call(method, positional, keywords)
            except CodeAtlasError as error:
                OUTCOMES["codeatlas"] += 1
                refused = error
                rejected = server_rejected(error)
                assert rejected is None, f"{target}: the driver/server rejected a value: {rejected}"
                OUTCOMES[kind_of(error)] += 1
                if kind_of(error) == "server":
                    raise  # a constraint or a conflict: the server refused; the block rolls back
                # nothing was sent, so the transaction is not aborted
                assert await tx.executor.fetchval("SELECT 1") == 1
            except Exception as error:
                OUTCOMES["other"] += 1
                raise AssertionError(
                    f"{target} let {type(error).__name__} escape: {error!r}"
                ) from error
            else:
                OUTCOMES["success"] += 1
    except CodeAtlasError as error:
        assert error is refused
    if refused is not None:
        after = await writes(atlas)
        changed = sorted(t for t in after if before.get(t) != after[t])
        OUTCOMES["written_by_failure"] += bool(changed)
        assert not changed, f"{target} raised {refused!r} but changed {changed}"
