"""The generic repository: CRUD, bulk writes, filters and keyset pagination for one table.

A table's repository subclasses ``Repository`` and names its models in a few class
attributes; the table's name and keys come from the row model's ``__table_spec__``. The
statements below are built once per subclass from those (identifiers from code only,
checked against a strict pattern) and every value is bound.
"""

from __future__ import annotations

import base64
import builtins
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Final, Generic, TypeVar

from .._db import Executor
from ..errors import ImmutableRowError, InvalidFilterError, InvalidInputError, NotFoundError
from ..filters import Where, compile_where
from ..models._base import CreateModel, RowModel, UpdateModel, column_types
from ..models._table import TableSpec
from ..models._types import SCALAR_KINDS, ColumnType

__all__ = ["Page", "Repository"]

RowT = TypeVar("RowT", bound=RowModel)
CreateT = TypeVar("CreateT", bound=CreateModel)
UpdateT = TypeVar("UpdateT", bound=UpdateModel)

_IDENTIFIER: Final = re.compile(r"^[a-z_][a-z0-9_]*$")
#: Above this many rows, insert_many and upsert_many switch from executemany to binary COPY.
COPY_THRESHOLD: Final = 64
#: Timestamp columns a repository stamps itself on update and upsert (naive UTC, as Ecto does).
_STAMPED_ON_UPDATE: Final = "updated_at"
_NOW_UTC: Final = "(now() AT TIME ZONE 'utc')"
#: Most rows ``list()`` returns per page.
MAX_PAGE: Final = 10_000
#: Most keys one ``get_many`` may ask for (one bound array).
MAX_KEYS: Final = 100_000
#: Class attributes derived from the row model's TableSpec, which a subclass must not set.
_TABLE_FACTS: Final = frozenset(
    {"table", "primary_key", "natural_key", "vector_column", "dimensions", "vector_index"}
)


@dataclass(frozen=True, slots=True)
class Page(Generic[RowT]):
    """One page of ``list()``: the rows, and the cursor of the next page (None at the end)."""

    items: list[RowT]
    next_cursor: str | None


def _ident(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


def _encode_cursor_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": "dt", "v": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"t": "uuid", "v": str(value)}
    if isinstance(value, Decimal):
        return {"t": "dec", "v": str(value)}
    return value


def check_flag(value: object, *, field: str) -> bool:
    """Return *value* if it is a bool; else raise InvalidInputError naming *field*."""
    if not isinstance(value, bool):
        raise InvalidInputError(f"{field}: expected a bool, got {type(value).__name__}")
    return value


def check_count(
    value: object,
    *,
    field: str,
    low: int,
    high: int,
    error: type[InvalidInputError] = InvalidInputError,
) -> int:
    """Return *value* if it is an int (not a bool) within low..high; else raise *error*."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        shown = repr(value) if isinstance(value, int | float | str) else type(value).__name__
        raise error(f"{field} must be an integer within {low}..{high}, got {shown[:40]}")
    return value


def check_items(items: object, *, field: str) -> Sequence[Any]:
    """Return *items* if it is a list or tuple (one batch); else raise InvalidInputError."""
    if not isinstance(items, list | tuple):
        raise InvalidInputError(f"{field} must be a list or tuple, got {type(items).__name__}")
    return items


def _decode_cursor_value(value: Any) -> Any:
    if isinstance(value, dict):
        kind, text = value.get("t"), str(value.get("v"))
        if kind == "dt":
            return datetime.fromisoformat(text)
        if kind == "uuid":
            return uuid.UUID(text)
        if kind == "dec":
            return Decimal(text)
        raise InvalidFilterError("malformed cursor")
    return value


class Repository(Generic[RowT, CreateT, UpdateT]):
    """CRUD and bulk operations on one table, bound to an executor.

    Subclasses set ``row_model``, ``create_model``, ``update_model`` (None for an append-only
    table) and may narrow ``orderable`` (columns ``list()`` may sort by). The table's facts
    (``table``, ``primary_key``, ``natural_key``: the upsert conflict target) are derived from
    the row model's ``__table_spec__``, where they are declared once.
    """

    row_model: ClassVar[type[RowModel]]
    create_model: ClassVar[type[CreateModel]]
    update_model: ClassVar[type[UpdateModel] | None] = None
    orderable: ClassVar[frozenset[str] | None] = None

    # Derived once per subclass in __init_subclass__, from row_model.
    table_spec: ClassVar[TableSpec]
    table: ClassVar[str]
    primary_key: ClassVar[str] = "id"
    natural_key: ClassVar[tuple[str, ...] | None] = None
    columns: ClassVar[tuple[str, ...]]
    vector_columns: ClassVar[frozenset[str]]
    filterable: ClassVar[frozenset[str]]
    _select_all: ClassVar[str]
    _select_no_vectors: ClassVar[str]
    # Built on first use by column_types() / _filter_types().
    _column_types: ClassVar[dict[str, ColumnType]]
    _filter_types_cache: ClassVar[dict[str, ColumnType]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "row_model" not in cls.__dict__:
            return  # an intermediate base, or a subclass of a table's repository
        declared = sorted(_TABLE_FACTS & cls.__dict__.keys())
        if declared:
            raise TypeError(
                f"{cls.__name__} sets {', '.join(declared)}: a table's facts are declared once, "
                f"in {cls.row_model.__name__}.__table_spec__"
            )
        spec: TableSpec | None = getattr(cls.row_model, "__table_spec__", None)
        if spec is None:
            raise TypeError(f"{cls.row_model.__name__} declares no __table_spec__")
        cls.table_spec = spec
        cls.table = _ident(spec.name)
        cls.primary_key = spec.primary_key
        cls.natural_key = spec.natural_key
        cls.columns = tuple(_ident(name) for name in cls.row_model.model_fields)
        cls.vector_columns = frozenset(cls.row_model.__vector_columns__)
        cls.filterable = frozenset(cls.columns) - cls.vector_columns
        if cls.orderable is None:
            cls.orderable = cls.filterable
        cls._select_all = ", ".join(cls.columns)
        cls._select_no_vectors = ", ".join(c for c in cls.columns if c not in cls.vector_columns)

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    # -- validation (column types come from the models, see models._base.column_types) ------

    @classmethod
    def column_types(cls) -> dict[str, ColumnType]:
        """Return column -> ColumnType of this table, as the models declare them."""
        cached: dict[str, ColumnType] | None = cls.__dict__.get("_column_types")
        if cached is None:
            cached = column_types(cls.row_model, cls.create_model, cls.update_model)
            cls._column_types = cached
        return cached

    @classmethod
    def _filter_types(cls) -> dict[str, ColumnType]:
        cached: dict[str, ColumnType] | None = cls.__dict__.get("_filter_types_cache")
        if cached is None:
            types = cls.column_types()
            cached = {c: types[c] for c in sorted(cls.filterable) if c in types}
            cls._filter_types_cache = cached
        return cached

    def _where(
        self, where: Where | None, *, first_param: int = 1, alias: str = ""
    ) -> tuple[builtins.list[str], builtins.list[Any]]:
        """Compile *where* with every value checked against its column's type."""
        return compile_where(where, self._filter_types(), first_param=first_param, alias=alias)

    def _value(
        self, column: str, value: object, *, error: type[InvalidInputError] = InvalidInputError
    ) -> Any:
        """Return *value* as bound for *column*; raise *error* naming the column if it is not
        a value of the column's type (table methods check their arguments with this)."""
        return self.column_types()[column].bind(value, field=column, error=error)

    def _key(self, key: object) -> Any:
        """Return the primary key *key* as bound, or raise InvalidInputError."""
        return self._value(self.primary_key, key)

    # -- helpers shared by subclasses ---------------------------------------------------

    def _returning(self, include_vectors: bool = True) -> str:
        return self._select_all if include_vectors else self._select_no_vectors

    def _row(self, record: Any) -> RowT:
        return self.row_model.from_record(record)  # type: ignore[return-value]

    def _rows(self, records: Iterable[Any]) -> builtins.list[RowT]:
        build = self.row_model.from_record
        return [build(record) for record in records]  # type: ignore[misc]

    def _check_create(self, data: CreateT) -> None:
        if not isinstance(data, self.create_model):
            raise InvalidInputError(
                f"{type(self).__name__} writes {self.create_model.__name__}, "
                f"got {type(data).__name__}"
            )

    # -- reads --------------------------------------------------------------------------

    async def get(self, key: Any, *, include_vectors: bool = True) -> RowT:
        """Return the row with primary key *key*; raise NotFoundError if there is none."""
        key = self._key(key)
        check_flag(include_vectors, field="include_vectors")
        record = await self._executor.fetchrow(
            f"SELECT {self._returning(include_vectors)} FROM {self.table} "
            f"WHERE {self.primary_key} = $1",
            key,
        )
        if record is None:
            raise NotFoundError(f"no {self.table} row with {self.primary_key} = {key!r}")
        return self._row(record)

    async def find(self, key: Any, *, include_vectors: bool = True) -> RowT | None:
        """Return the row with primary key *key*, or None."""
        key = self._key(key)
        check_flag(include_vectors, field="include_vectors")
        record = await self._executor.fetchrow(
            f"SELECT {self._returning(include_vectors)} FROM {self.table} "
            f"WHERE {self.primary_key} = $1",
            key,
        )
        return None if record is None else self._row(record)

    async def get_many(
        self, keys: Sequence[Any], *, include_vectors: bool = True
    ) -> builtins.list[RowT]:
        """Return the rows whose primary keys are in *keys*, in the order of *keys*."""
        check_flag(include_vectors, field="include_vectors")
        if isinstance(keys, str | bytes | bytearray) or not isinstance(keys, Iterable):
            raise InvalidInputError(
                f"keys must be a sequence of {self.primary_key} values, got {type(keys).__name__}"
            )
        keys = [self._key(key) for key in keys]
        if len(keys) > MAX_KEYS:
            raise InvalidInputError(f"at most {MAX_KEYS} keys per get_many")
        if not keys:
            return []
        records = await self._executor.fetch(
            f"SELECT {self._returning(include_vectors)} FROM {self.table} "
            f"WHERE {self.primary_key} = ANY($1)",
            keys,
        )
        by_key = {record[self.primary_key]: record for record in records}
        return [self._row(by_key[key]) for key in keys if key in by_key]

    async def count(self, where: Where | None = None) -> int:
        """Return how many rows match *where*."""
        clauses, params = self._where(where)
        condition = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return int(
            await self._executor.fetchval(f"SELECT count(*) FROM {self.table}{condition}", *params)
        )

    async def exists(self, where: Where | None = None) -> bool:
        """Return whether any row matches *where*."""
        clauses, params = self._where(where)
        condition = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return bool(
            await self._executor.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM {self.table}{condition})", *params
            )
        )

    async def list(
        self,
        where: Where | None = None,
        *,
        order_by: str | None = None,
        descending: bool = False,
        limit: int = 100,
        cursor: str | None = None,
        include_vectors: bool = False,
    ) -> Page[RowT]:
        """Return one page of rows matching *where*, in keyset order.

        Pass the returned ``next_cursor`` back as *cursor* for the next page; the cursor is
        tied to the same *order_by* and *descending*. Vectors are left out unless asked for.
        """
        check_count(limit, field="limit", low=1, high=MAX_PAGE, error=InvalidFilterError)
        check_flag(descending, field="descending")
        check_flag(include_vectors, field="include_vectors")
        if order_by is not None and not isinstance(order_by, str):
            raise InvalidFilterError(
                f"order_by must be a column name, got {type(order_by).__name__}"
            )
        if cursor is not None and not isinstance(cursor, str):
            raise InvalidFilterError(f"cursor must be a string, got {type(cursor).__name__}")
        order = order_by or self.primary_key
        assert self.orderable is not None
        if order not in self.orderable and order != self.primary_key:
            raise InvalidFilterError(
                f"cannot order by {order!r}: allowed are {', '.join(sorted(self.orderable))}"
            )
        order_type = self.column_types().get(order)
        if order_type is not None and order_type.kind not in SCALAR_KINDS:
            # a cursor could not carry the value, and such an order means little anyway
            raise InvalidFilterError(
                f"cannot order by {order!r}: it holds {order_type.describe()}, "
                "not a number, string, bool, UUID or timestamp"
            )
        clauses, params = self._where(where)
        if cursor is not None:
            clauses.append(self._keyset_clause(cursor, order, descending, params))
        direction = "DESC NULLS FIRST" if descending else "ASC NULLS LAST"
        pk_direction = "DESC" if descending else "ASC"
        order_sql = (
            f"{order} {direction}, {self.primary_key} {pk_direction}"
            if order != self.primary_key
            else f"{self.primary_key} {pk_direction}"
        )
        condition = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        params.append(limit + 1)
        records = await self._executor.fetch(
            f"SELECT {self._returning(include_vectors)} FROM {self.table}{condition} "
            f"ORDER BY {order_sql} LIMIT ${len(params)}",
            *params,
        )
        more = len(records) > limit
        records = records[:limit]
        next_cursor = None
        if more and records:
            last = records[-1]
            payload = {
                "o": order,
                "d": descending,
                "v": _encode_cursor_value(last[order]),
                "k": _encode_cursor_value(last[self.primary_key]),
            }
            next_cursor = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
        return Page(self._rows(records), next_cursor)

    def _keyset_clause(
        self, cursor: str, order: str, descending: bool, params: builtins.list[Any]
    ) -> str:
        try:
            payload = json.loads(base64.urlsafe_b64decode(cursor.encode()))
            if payload["o"] != order or payload["d"] != descending:
                raise InvalidFilterError("the cursor belongs to another ordering")
            value = _decode_cursor_value(payload["v"])
            key = _decode_cursor_value(payload["k"])
            # a cursor is caller input too: its values must fit the columns they page on
            types = self.column_types()
            key = types[self.primary_key].bind(
                key, field="cursor", error=InvalidFilterError, stored=True
            )
            if value is not None and order in types:
                value = types[order].bind(
                    value, field="cursor", error=InvalidFilterError, stored=True
                )
        except InvalidFilterError:
            raise
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise InvalidFilterError("malformed cursor") from exc
        params.append(key)
        key_param = f"${len(params)}"
        after = "<" if descending else ">"
        pk = self.primary_key
        if order == pk:
            return f"{pk} {after} {key_param}"
        if value is None:
            # ASC NULLS LAST: only NULLs remain; DESC NULLS FIRST: the rest of the NULLs,
            # then every non-NULL value.
            if descending:
                return f"(({order} IS NULL AND {pk} < {key_param}) OR {order} IS NOT NULL)"
            return f"({order} IS NULL AND {pk} > {key_param})"
        params.append(value)
        value_param = f"${len(params)}"
        nulls_after = f" OR {order} IS NULL" if not descending else ""
        return (
            f"({order} {after} {value_param} OR ({order} = {value_param} AND {pk} {after} "
            f"{key_param}){nulls_after})"
        )

    # -- writes -------------------------------------------------------------------------

    async def insert(self, data: CreateT) -> RowT:
        """Insert one row and return it as stored (defaults filled in)."""
        self._check_create(data)
        values = data.to_db()
        names = builtins.list(values)
        placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
        record = await self._executor.fetchrow(
            f"INSERT INTO {self.table} ({', '.join(names)}) VALUES ({placeholders}) "
            f"RETURNING {self._select_all}",
            *values.values(),
        )
        return self._row(record)

    async def insert_many(self, items: Sequence[CreateT]) -> int:
        """Insert every item atomically (binary COPY for large batches); return the count."""
        check_items(items, field="items")
        if not items:
            return 0
        for item in items:
            self._check_create(item)
        names, rows = self._batch(items)
        if len(rows) > COPY_THRESHOLD:
            await self._executor.copy_records(self.table, rows, columns=names)
        else:
            placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
            # asyncpg runs executemany atomically
            await self._executor.executemany(
                f"INSERT INTO {self.table} ({', '.join(names)}) VALUES ({placeholders})", rows
            )
        return len(rows)

    def _batch(
        self, items: Sequence[CreateT]
    ) -> tuple[builtins.list[str], builtins.list[tuple[Any, ...]]]:
        """Return one column list for every item, and their value tuples.

        A batch binds one column list, so a UUID key left unset on some items is generated
        here for them (as the database default would).
        """
        dumps = [item.to_db() for item in items]
        pk = self.primary_key
        if any(pk in dump for dump in dumps):
            for dump in dumps:
                dump.setdefault(pk, uuid.uuid4())
        names = [n for n in self.create_model.model_fields if any(n in d for d in dumps)]
        rows = [tuple(dump[name] for name in names) for dump in dumps]
        return names, rows

    def _on_conflict(self, names: Sequence[str]) -> str:
        """Return the ON CONFLICT clause updating every written column but the keys."""
        if self.natural_key is None:
            raise InvalidInputError(f"{self.table} has no natural key to upsert on")
        keys = set(self.natural_key)
        updates = [
            f"{name} = EXCLUDED.{name}"
            for name in names
            if name not in keys and name != self.primary_key
        ]
        if _STAMPED_ON_UPDATE in self.columns and _STAMPED_ON_UPDATE not in names:
            updates.append(f"{_STAMPED_ON_UPDATE} = {_NOW_UTC}")
        action = f"DO UPDATE SET {', '.join(updates)}" if updates else "DO NOTHING"
        return f"ON CONFLICT ({', '.join(self.natural_key)}) {action}"

    def _upsert_sql(self, names: Sequence[str]) -> str:
        placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
        return (
            f"INSERT INTO {self.table} ({', '.join(names)}) VALUES ({placeholders}) "
            f"{self._on_conflict(names)}"
        )

    async def upsert(self, data: CreateT) -> RowT:
        """Insert, or update the row with the same natural key; return the stored row."""
        self._check_create(data)
        values = data.to_db()
        record = await self._executor.fetchrow(
            f"{self._upsert_sql(builtins.list(values))} RETURNING {self._select_all}",
            *values.values(),
        )
        if record is None:  # DO NOTHING on a conflict: the existing row is the answer
            assert self.natural_key is not None
            return await self._get_by_natural_key(values)
        return self._row(record)

    async def _get_by_natural_key(self, values: dict[str, Any]) -> RowT:
        assert self.natural_key is not None
        clauses = " AND ".join(f"{k} = ${i}" for i, k in enumerate(self.natural_key, 1))
        record = await self._executor.fetchrow(
            f"SELECT {self._select_all} FROM {self.table} WHERE {clauses}",
            *(self._value(k, values[k]) for k in self.natural_key),
        )
        if record is None:
            raise NotFoundError(f"no {self.table} row for its natural key")
        return self._row(record)

    async def upsert_many(self, items: Sequence[CreateT]) -> int:
        """Upsert every item atomically on the natural key; the last of duplicates wins."""
        check_items(items, field="items")
        if not items:
            return 0
        if self.natural_key is None:
            raise InvalidInputError(f"{self.table} has no natural key to upsert on")
        for item in items:
            self._check_create(item)
        names, rows = self._batch(items)
        positions = [names.index(k) for k in self.natural_key]
        # ON CONFLICT cannot touch one row twice in a statement: keep the last duplicate.
        latest = {tuple(row[p] for p in positions): row for row in rows}
        unique_rows = builtins.list(latest.values())
        if len(unique_rows) <= COPY_THRESHOLD:
            await self._executor.executemany(self._upsert_sql(names), unique_rows)
            return len(unique_rows)
        column_list = ", ".join(names)
        stage = f"_codeatlas_stage_{self.table}"
        async with self._executor.transaction() as tx:
            # an unconstrained copy of the written columns: COPY in, then one INSERT .. SELECT
            await tx.execute(
                f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS "
                f"SELECT {column_list} FROM {self.table} WITH NO DATA"
            )
            await tx.copy_records(stage, unique_rows, columns=names)
            await tx.execute(
                f"INSERT INTO {self.table} ({column_list}) "
                f"SELECT {column_list} FROM {stage} {self._on_conflict(names)}"
            )
            await tx.execute(f"DROP TABLE {stage}")
        return len(unique_rows)

    async def update(self, key: Any, patch: UpdateT) -> RowT:
        """Write the fields set on *patch* to the row with primary key *key*; return it."""
        if self.update_model is None:
            raise ImmutableRowError(f"{self.table} rows are immutable (append-only)")
        if not isinstance(patch, self.update_model):
            raise InvalidInputError(
                f"{type(self).__name__}.update takes {self.update_model.__name__}, "
                f"got {type(patch).__name__}"
            )
        key = self._key(key)
        values = patch.to_db()
        if not values:
            return await self.get(key)
        assignments = [f"{name} = ${i}" for i, name in enumerate(values, 2)]
        if _STAMPED_ON_UPDATE in self.columns and _STAMPED_ON_UPDATE not in values:
            assignments.append(f"{_STAMPED_ON_UPDATE} = {_NOW_UTC}")
        record = await self._executor.fetchrow(
            f"UPDATE {self.table} SET {', '.join(assignments)} WHERE {self.primary_key} = $1 "
            f"RETURNING {self._select_all}",
            key,
            *values.values(),
        )
        if record is None:
            raise NotFoundError(f"no {self.table} row with {self.primary_key} = {key!r}")
        return self._row(record)

    async def delete(self, key: Any) -> bool:
        """Delete the row with primary key *key*; return whether it existed."""
        key = self._key(key)
        status = await self._executor.execute(
            f"DELETE FROM {self.table} WHERE {self.primary_key} = $1", key
        )
        return status != "DELETE 0"

    async def delete_where(self, where: Where) -> int:
        """Delete every row matching *where* (which must not be empty); return the count."""
        clauses, params = self._where(where)
        if not clauses:
            raise InvalidFilterError("delete_where needs at least one condition")
        status = await self._executor.execute(
            f"DELETE FROM {self.table} WHERE {' AND '.join(clauses)}", *params
        )
        return int(status.split()[-1])
