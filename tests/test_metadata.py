"""The table facts declared on the row models (``__table_spec__``) against the migrated catalog.

Each table's name, keys, vector column, dimensions and vector index are declared once, on
its row model; repositories and ``indexes.VECTOR_INDEXES`` derive from that. These tests
read the catalog of a database at the head migration and check both directions: every
declared fact holds in the database, and every column of a mapped table is a model field
unless its spec lists it as unmapped with a reason. ``catalog_problems`` does the
comparison; one test feeds it models that are wrong on purpose, to show what it catches.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Final, Union, get_args, get_origin
from uuid import UUID

import asyncpg
import pytest
from pydantic import AwareDatetime

import codeatlas
from codeatlas.indexes import VECTOR_INDEXES
from codeatlas.models import (
    TABLES,
    VECTOR_OPCLASS,
    CreateModel,
    RowModel,
    TableSpec,
    UpdateModel,
    Vector768,
)
from codeatlas.models._types import _VectorSchema
from codeatlas.repositories._base import Repository
from codeatlas.search import SearchableRepository
from fixtures.server import PgServer

#: Tables of the migrated schema that no model maps, and why.
UNMODELLED_TABLES: Final = {
    "codeatlas_schema_migrations": "the migration engine's ledger, read by Migrator only",
    "codeatlas_vector_indexes": "index build and tuning facts, read by atlas.indexes only",
    "codeatlas_semantic_cache_hits": "semantic-cache hits not yet flushed, SemanticCache's own",
}
#: Vector indexes the migrations build as another kind than IVFFlat (20261204000002).
MIGRATED_KINDS: Final = {"semantic_cache": "hnsw"}

_COLUMNS: Final = """
SELECT c.relname                              AS table_name,
       a.attname                              AS column_name,
       format_type(a.atttypid, a.atttypmod)   AS data_type,
       a.attnotnull                           AS not_null,
       a.atthasdef OR a.attidentity <> ''     AS has_default
  FROM pg_attribute a
  JOIN pg_class c     ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY c.relname, a.attnum"""
_INDEXES: Final = """
SELECT i.relname                              AS index_name,
       t.relname                              AS table_name,
       am.amname                              AS method,
       x.indisunique                          AS is_unique,
       x.indisprimary                         AS is_primary,
       x.indpred IS NOT NULL                  AS partial,
       ARRAY(SELECT a.attname
               FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
              ORDER BY k.ord)                 AS columns,
       ARRAY(SELECT o.opcname
               FROM unnest(x.indclass::oid[]) WITH ORDINALITY AS k(opclass, ord)
               JOIN pg_opclass o ON o.oid = k.opclass
              ORDER BY k.ord)                 AS opclasses
  FROM pg_index x
  JOIN pg_class i     ON i.oid = x.indexrelid
  JOIN pg_class t     ON t.oid = x.indrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
  JOIN pg_am am       ON am.oid = i.relam
 WHERE n.nspname = 'public'"""
_REGISTERED_INDEXES: Final = """
SELECT index_name, table_name, column_name, dimensions FROM codeatlas_vector_indexes"""


@dataclass(frozen=True)
class Column:
    data_type: str
    not_null: bool
    has_default: bool


@dataclass(frozen=True)
class Index:
    name: str
    table: str
    method: str
    unique: bool
    primary: bool
    partial: bool
    columns: tuple[str, ...]
    opclasses: tuple[str, ...]


@dataclass(frozen=True)
class Catalog:
    columns: dict[str, dict[str, Column]]  # table -> column -> facts, in column order
    indexes: dict[str, Index]  # by index name

    def table_indexes(self, table: str) -> list[Index]:
        return [index for index in self.indexes.values() if index.table == table]


async def read_catalog(dsn: str) -> Catalog:
    connection = await asyncpg.connect(dsn)
    try:
        column_rows = await connection.fetch(_COLUMNS)
        index_rows = await connection.fetch(_INDEXES)
    finally:
        await connection.close()
    columns: dict[str, dict[str, Column]] = {}
    for row in column_rows:
        columns.setdefault(row["table_name"], {})[row["column_name"]] = Column(
            row["data_type"], row["not_null"], row["has_default"]
        )
    indexes = {
        row["index_name"]: Index(
            row["index_name"],
            row["table_name"],
            row["method"],
            row["is_unique"],
            row["is_primary"],
            row["partial"],
            tuple(row["columns"]),
            tuple(row["opclasses"]),
        )
        for row in index_rows
    }
    return Catalog(columns, indexes)


@pytest.fixture(scope="module")
async def catalog(pg: PgServer) -> Catalog:
    """The catalog of the session's migrated template database (read-only here)."""
    return await read_catalog(pg.dsn_for(await pg.ensure_template()))


# -- what a model field says about its column ------------------------------------------------


def _parts(annotation: Any) -> Iterator[Any]:
    """Yield the types inside unions and Annotated wrappers, and the Annotated metadata."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *metadata = get_args(annotation)
        yield from metadata
        yield from _parts(base)
    elif origin is Union or origin is types.UnionType:
        for arg in get_args(annotation):
            yield from _parts(arg)
    else:
        yield annotation


def _is_text(part: Any) -> bool:
    return isinstance(part, type) and issubclass(part, str | Enum)


_VARCHAR: Final = r"(text|character varying(\(\d+\))?)"
#: kind of a model field -> the PostgreSQL types (format_type spelling) that can hold it
_COMPATIBLE: Final = {
    "uuid": r"uuid",
    "int": r"smallint|integer|bigint",
    "float": r"double precision|real",
    "bool": r"boolean",
    "datetime": r"timestamp(\(\d\))? with(out)? time zone",
    "text": _VARCHAR,
    "json": r"jsonb?",
    "uuid[]": r"uuid\[\]",
    "text[]": _VARCHAR + r"\[\]",
    "json[]": r"jsonb\[\]",
}


def field_facts(field: Any) -> tuple[str, bool]:
    """Return (the type pattern of the column a model field maps, whether it accepts None)."""
    parts = [*field.metadata, *_parts(field.annotation)]
    nullable = type(None) in parts
    vector = next((part for part in parts if isinstance(part, _VectorSchema)), None)
    if vector is not None:
        return rf"vector\({vector.dim}\)", nullable
    kind = None
    for part in parts:
        origin = get_origin(part)
        if origin is dict:
            kind = "json"
        elif origin is list:
            inner = [q for arg in get_args(part) for q in _parts(arg)]
            if UUID in inner:
                kind = "uuid[]"
            elif any(map(_is_text, inner)):
                kind = "text[]"
            else:  # list[dict]: an array of jsonb values; list[Any]: one jsonb array
                kind = "json[]" if any(get_origin(q) is dict for q in inner) else "json"
        if kind is not None:
            return _COMPATIBLE[kind], nullable
    for candidate, wanted in (
        ("uuid", {UUID}),
        ("bool", {bool}),
        ("datetime", {datetime, AwareDatetime}),
        ("float", {float}),
        ("int", {int}),
    ):
        if any(part in wanted for part in parts):
            return _COMPATIBLE[candidate], nullable
    if any(map(_is_text, parts)):
        return _COMPATIBLE["text"], nullable
    raise AssertionError(f"no column kind known for annotation {field.annotation!r}")


# -- the comparison ---------------------------------------------------------------------------


def catalog_problems(
    catalog: Catalog,
    tables: Mapping[str, type[RowModel]],
    repositories: list[type[Repository[Any, Any, Any]]],
) -> list[str]:
    """Return every disagreement between the models' table facts and *catalog*."""
    problems: list[str] = []
    for table, model in tables.items():
        spec = model.__table_spec__
        columns = catalog.columns.get(table)
        if columns is None:
            problems.append(f"{table}: declared by {model.__name__} but not in the database")
            continue
        fields = model.model_fields
        for name, field in fields.items():
            column = columns.get(name)
            if column is None:
                problems.append(f"{table}.{name}: a field of {model.__name__}, not a column")
                continue
            pattern, nullable = field_facts(field)
            if not re.fullmatch(pattern, column.data_type):
                problems.append(
                    f"{table}.{name}: column is {column.data_type}, field wants {pattern}"
                )
            # vectors are left out of reads unless asked for, so a row model's vector field
            # is None-able even where the column is NOT NULL
            vector = spec.vector is not None and spec.vector.column == name
            if nullable != (not column.not_null) and not (vector and nullable):
                null = "NOT NULL" if column.not_null else "nullable"
                problems.append(f"{table}.{name}: column is {null}, field nullable={nullable}")
        for name in columns.keys() - fields.keys() - spec.unmapped.keys():
            problems.append(
                f"{table}.{name}: a column that {model.__name__} neither maps nor lists"
            )
        for name in spec.unmapped.keys() - columns.keys():
            problems.append(f"{table}.{name}: listed as unmapped, but there is no such column")
        indexes = catalog.table_indexes(table)
        primary = [index.columns for index in indexes if index.primary]
        if primary != [(spec.primary_key,)]:
            problems.append(f"{table}: primary key is {primary}, declared {spec.primary_key!r}")
        if spec.natural_key is not None and not any(
            index.unique and not index.partial and set(index.columns) == set(spec.natural_key)
            for index in indexes
        ):
            problems.append(f"{table}: no unique index on the natural key {spec.natural_key}")
        if spec.vector is not None:
            index = catalog.indexes.get(spec.vector.name)
            kind = MIGRATED_KINDS.get(table, "ivfflat")
            wanted = (kind, table, (spec.vector.column,), (VECTOR_OPCLASS,))
            found = index and (index.method, index.table, index.columns, index.opclasses)
            if found != wanted:
                problems.append(
                    f"{table}: vector index {spec.vector.name} is {found}, want {wanted}"
                )
    for repository in repositories:
        spec = repository.row_model.__table_spec__
        columns = catalog.columns.get(spec.name, {})
        for write_model in (repository.create_model, repository.update_model):
            for name in (write_model.model_fields if write_model else {}).keys() - columns.keys():
                problems.append(f"{spec.name}.{name}: written by {write_model}, not a column")
        create = repository.create_model
        for name, column in columns.items():
            field = create.model_fields.get(name)
            # an insert sends every field of the create model (a None id excepted)
            may_omit = field is None or (field.default is None and not field.is_required())
            required = column.not_null and not column.has_default and name not in spec.unmapped
            if required and may_omit:
                problems.append(
                    f"{spec.name}.{name}: NOT NULL without a default, "
                    f"but {create.__name__} may leave it out"
                )
            accepts_none = field is not None and field_facts(field)[1]
            if accepts_none and column.not_null and name != spec.primary_key:
                problems.append(f"{spec.name}.{name}: NOT NULL, but {create.__name__} accepts None")
    return problems


def codeatlas_repositories() -> list[type[Repository[Any, Any, Any]]]:
    """Return every table repository class codeatlas defines (all of them are imported)."""
    found: list[type[Repository[Any, Any, Any]]] = []
    pending: list[type[Any]] = [Repository]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith("codeatlas.") and "row_model" in cls.__dict__:
            found.append(cls)
    return sorted(found, key=lambda cls: cls.table)


# -- the tests --------------------------------------------------------------------------------


def test_every_row_model_of_codeatlas_is_a_declared_table() -> None:
    defined: set[type[Any]] = set()
    pending: list[type[Any]] = [RowModel]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith("codeatlas."):
            defined.add(cls)
    defined.discard(RowModel)
    assert defined == set(TABLES.values())
    assert all(model.__table__ == table for table, model in TABLES.items())
    assert len(TABLES) == 25


async def test_the_declared_tables_agree_with_the_migrated_catalog(catalog: Catalog) -> None:
    assert catalog_problems(catalog, TABLES, codeatlas_repositories()) == []


async def test_every_table_of_the_schema_is_modelled_or_listed_with_a_reason(
    catalog: Catalog,
) -> None:
    assert set(catalog.columns) == set(TABLES) | set(UNMODELLED_TABLES)
    assert not set(TABLES) & set(UNMODELLED_TABLES)


async def test_the_vector_index_registry_is_the_declared_indexes(
    catalog: Catalog, migrated_dsn: str
) -> None:
    declared = {
        table: model.__table_spec__.vector
        for table, model in TABLES.items()
        if model.__table_spec__.vector is not None
    }
    assert dict(VECTOR_INDEXES) == declared
    assert len(declared) == 9
    # no IVFFlat or HNSW index in the database that no model declares
    for kind in ("ivfflat", "hnsw"):
        built = {index.name for index in catalog.indexes.values() if index.method == kind}
        assert built == {
            index.name
            for table, index in declared.items()
            if MIGRATED_KINDS.get(table, "ivfflat") == kind
        }
    connection = await asyncpg.connect(migrated_dsn)
    try:
        registered = {tuple(row) for row in await connection.fetch(_REGISTERED_INDEXES)}
    finally:
        await connection.close()
    assert registered == {
        (index.name, index.table, index.column, index.dimensions) for index in declared.values()
    }


def test_searchable_repositories_derive_their_vector_facts_from_the_models() -> None:
    searchable = [
        repository
        for repository in codeatlas_repositories()
        if issubclass(repository, SearchableRepository)
    ]
    assert {repository.table: repository.row_model for repository in searchable} == {
        table: TABLES[table] for table in VECTOR_INDEXES
    }
    for repository in searchable:
        index = VECTOR_INDEXES[repository.table]
        facts = (repository.vector_column, repository.dimensions, repository.vector_index)
        assert facts == (index.column, index.dimensions, index.name)
        assert repository.row_model.__vector_columns__ == {index.column: index.dimensions}
    for repository in codeatlas_repositories():
        spec = repository.row_model.__table_spec__
        assert repository.table_spec is spec
        assert (repository.table, repository.primary_key, repository.natural_key) == (
            spec.name,
            spec.primary_key,
            spec.natural_key,
        )


def test_atlas_scope_reaches_every_table_repository() -> None:
    scope = codeatlas.Scope(executor=None)  # type: ignore[arg-type]  # built without I/O
    reached: set[str] = set()
    for name in dir(codeatlas.Scope):
        if name == "executor":  # the executor itself (a view made for callers), no repository
            continue
        repository = getattr(scope, name)
        if isinstance(repository, Repository):
            reached.add(repository.table)
            reached.update(
                child.table for child in vars(repository).values() if isinstance(child, Repository)
            )
    assert reached == set(TABLES)


# -- the comparison catches what it should ----------------------------------------------------


class _WrongRules(RowModel):
    """rules, declared wrongly: a 1536-d vector, an index that does not exist, a field that
    is no column, a nullable column typed NOT NULL, an unmapped column that does not exist,
    and most columns left out."""

    __table_spec__ = TableSpec(
        "rules",
        natural_key=("name",),
        vector_index="idx_rules_missing",
        unmapped={"category": "left out on purpose", "ghost": "no such column"},
    )

    id: UUID
    name: str
    description: str
    extra: int
    embedding: Annotated[Any, _VectorSchema(1536)] | None = None


class _MissingTable(RowModel):
    __table_spec__ = TableSpec("no_such_table", unmapped={"x": "not there either"})

    id: int


class _WrongSemanticCache(RowModel):
    __table_spec__ = TableSpec("semantic_cache", primary_key="cache_key")

    id: UUID
    cache_key: int
    query: str


class _WrongSemanticCacheCreate(CreateModel):
    cache_key: str
    query: str | None = None
    nonsense: str


class _WrongSemanticCacheRepository(
    Repository[_WrongSemanticCache, _WrongSemanticCacheCreate, UpdateModel]
):
    row_model = _WrongSemanticCache
    create_model = _WrongSemanticCacheCreate


async def test_the_comparison_reports_each_kind_of_disagreement(catalog: Catalog) -> None:
    tables = {
        "rules": _WrongRules,
        "no_such_table": _MissingTable,
        "semantic_cache": _WrongSemanticCache,
    }
    problems = catalog_problems(catalog, tables, [_WrongSemanticCacheRepository])
    text = "\n".join(problems)
    expected = [
        r"rules\.description: column is nullable, field nullable=False",
        r"rules\.extra: a field of _WrongRules, not a column",
        r"rules\.embedding: column is vector\(768\), field wants vector\\\(1536\\\)",
        r"rules\.action: a column that _WrongRules neither maps nor lists",
        r"rules\.ghost: listed as unmapped, but there is no such column",
        r"rules: no unique index on the natural key \('name',\)",
        r"rules: vector index idx_rules_missing is None",
        r"no_such_table: declared by _MissingTable but not in the database",
        r"semantic_cache\.cache_key: column is character varying\(255\), field wants",
        r"semantic_cache: primary key is \[\('id',\)\], declared 'cache_key'",
        r"semantic_cache\.nonsense: written by .*_WrongSemanticCacheCreate.*, not a column",
        r"semantic_cache\.response: NOT NULL without a default, but _WrongSemanticCacheCreate may",
        r"semantic_cache\.query: NOT NULL, but _WrongSemanticCacheCreate accepts None",
    ]
    for pattern in expected:
        assert re.search(pattern, text), pattern
    # nothing is reported twice; a column listed as unmapped and a correct field are not
    assert len(problems) == len(set(problems))
    assert not any(p.startswith("rules.category:") for p in problems)
    assert not any(p.startswith("semantic_cache.query:") and "field" in p for p in problems)


# -- the spec refuses what cannot describe its model ------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (TableSpec("Bad-Name"), "table 'Bad-Name' is not a plain identifier"),
        (TableSpec("t", primary_key="key"), "key column 'key' is not a field"),
        (TableSpec("t", natural_key=("id", "nope")), "key column 'nope' is not a field"),
        (TableSpec("t", natural_key=()), "natural_key is empty"),
        (TableSpec("t", unmapped={"id": "why"}), "unmapped column 'id' is a field"),
        (TableSpec("t"), "vector column 'embedding' has no vector_index"),
    ],
)
def test_a_spec_that_does_not_fit_its_model_fails_at_class_creation(
    spec: TableSpec, message: str
) -> None:
    with pytest.raises(TypeError, match=re.escape(message)):

        class Row(RowModel):
            __table_spec__ = spec
            id: int
            embedding: Vector768 | None = None


def test_a_vector_index_needs_a_vector_column() -> None:
    with pytest.raises(TypeError, match="vector_index 'idx' but no vector column"):

        class Row(RowModel):
            __table_spec__ = TableSpec("t", vector_index="idx")
            id: int


def test_a_table_name_set_beside_the_spec_is_refused() -> None:
    with pytest.raises(TypeError, match="declare __table_spec__, not __table__"):

        class Row(RowModel):
            __table__ = "t"
            id: int


class _Row(RowModel):
    __table_spec__ = TableSpec("t", natural_key=("name",), vector_index="t_embedding_idx")
    id: int
    name: str
    embedding: Vector768 | None = None


class _RowCreate(CreateModel):
    name: str


@pytest.mark.parametrize("fact", ["table", "natural_key", "vector_index", "dimensions"])
def test_a_repository_cannot_redeclare_a_table_fact(fact: str) -> None:
    with pytest.raises(TypeError, match=f"sets {fact}: a table's facts are declared once"):
        type(
            "Rows",
            (SearchableRepository,),
            {"row_model": _Row, "create_model": _RowCreate, fact: None},
        )


def test_a_repository_derives_every_fact_from_the_spec() -> None:
    class Rows(SearchableRepository[_Row, _RowCreate, UpdateModel]):
        row_model = _Row
        create_model = _RowCreate

    assert (Rows.table, Rows.primary_key, Rows.natural_key) == ("t", "id", ("name",))
    assert (Rows.vector_column, Rows.dimensions, Rows.vector_index) == (
        "embedding",
        768,
        "t_embedding_idx",
    )
    assert _Row.__table__ == "t" and _Row.__primary_key__ == "id"


def test_a_searchable_repository_needs_a_vector_index() -> None:
    class Plain(RowModel):
        __table_spec__ = TableSpec("plain")
        id: int

    with pytest.raises(TypeError, match="names no vector_index"):

        class Plains(SearchableRepository[Plain, _RowCreate, UpdateModel]):
            row_model = Plain
            create_model = _RowCreate
