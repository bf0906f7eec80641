"""Base classes of every model: typed errors, array-safe equality, row loading, to_db().

Three kinds of model per table:

* ``RowModel`` - a row as read. ``from_record`` trusts the database (no re-validation) and
  only converts what Python wants in another form: naive UTC timestamps become aware,
  known enum strings become members (unknown ones written by the Elixir app stay ``str``).
* ``CreateModel`` - what callers insert; strict, with the DB defaults as defaults.
* ``UpdateModel`` - a partial update; only the fields the caller set are written.

Validation failures surface as ``InvalidVectorError`` / ``InvalidInputError`` (never a raw
pydantic ``ValidationError``), with pydantic's structured list on ``.errors``. Write models
also refuse what PostgreSQL cannot store (see ``_types``): NaN/Infinity in float columns,
NUL or lone surrogates in text, and JSON that jsonb cannot hold.

``column_types`` derives each column's ``ColumnType`` from these annotations; filters, keys
and arguments are checked against it, so the models stay the one description of a table.
"""

from __future__ import annotations

import types
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from enum import Enum
from typing import (
    Annotated,
    Any,
    ClassVar,
    Final,
    Protocol,
    Self,
    Union,
    get_args,
    get_origin,
)

import annotated_types
import numpy as np
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from codeatlas.errors import InvalidInputError, InvalidVectorError

from ._table import TableSpec
from ._types import ColumnKind, ColumnType, _VectorSchema, json_problem, text_problem

__all__ = [
    "CodeAtlasModel",
    "CreateModel",
    "RecordLike",
    "RowModel",
    "UpdateModel",
    "WriteModel",
    "column_types",
]

#: What pydantic's own constructors set attributes with (its models refuse plain setattr).
_set_attribute: Final = object.__setattr__
#: pydantic error type of a value PostgreSQL cannot store (ctx: field, problem).
_UNSTORABLE: Final = "unstorable_value"


class RecordLike(Protocol):
    """A row as the driver returns it: an ``asyncpg.Record`` or any ``Mapping[str, Any]``."""

    def items(self) -> Iterable[tuple[str, Any]]: ...


def _input_error(model: type[BaseModel], exc: ValidationError) -> InvalidInputError:
    """Return the codeatlas error for a pydantic ValidationError raised by *model*."""
    # No inputs in the details: a rejected 1536-d vector would flood logs.
    details = exc.errors(include_url=False, include_input=False)
    for detail in details:
        # raised by a model validator, so pydantic knows no field: put it where it belongs
        if detail["type"] == _UNSTORABLE and "ctx" in detail:
            detail["loc"] = (detail["ctx"]["field"],)
            detail["msg"] = detail["ctx"]["problem"]
    problems = "; ".join(
        (
            # a JSON path continues the field name: metadata['a']: ...
            f"{'.'.join(map(str, detail['loc']))}"
            f"{'' if detail['msg'].startswith('[') else ': '}{detail['msg']}"
        )
        if detail["loc"]
        else detail["msg"]
        for detail in details
    )
    kind = (
        InvalidVectorError
        if any(detail["type"] == "invalid_vector" for detail in details)
        else InvalidInputError
    )
    error = kind(f"{model.__name__}: {problems}")
    # errors.py (not ours to change) declares no such attribute, hence setattr.
    setattr(error, "errors", details)  # noqa: B010
    return error


def _same(left: object, right: object) -> bool:
    if isinstance(left, np.ndarray) or isinstance(right, np.ndarray):
        return (
            isinstance(left, np.ndarray)
            and isinstance(right, np.ndarray)
            and np.array_equal(left, right)
        )
    return left == right


class _VectorRepr:
    """Stand-in that prints an array as ``<float32[768]>`` instead of 768 numbers."""

    __slots__ = ("_text",)

    def __init__(self, array: np.ndarray[Any, Any]) -> None:
        self._text = f"<{array.dtype}[{', '.join(map(str, array.shape))}]>"

    def __repr__(self) -> str:
        return self._text


class CodeAtlasModel(BaseModel):
    """Root of every codeatlas model: typed errors, array-safe ``==`` and a compact repr."""

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _input_error(type(self), exc) from exc

    # Tell pydantic this __init__ only wraps the base one (as RootModel does): otherwise it
    # routes model_validate through __init__ and re-wraps our ValueError as a ValidationError.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        """Return a validated instance built from *obj*, raising codeatlas errors."""
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as exc:
            raise _input_error(cls, exc) from exc

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> Self:
        """Return a validated instance parsed from JSON, raising codeatlas errors."""
        try:
            return super().model_validate_json(json_data, **kwargs)
        except ValidationError as exc:
            raise _input_error(cls, exc) from exc

    def __eq__(self, other: object) -> bool:
        # pydantic compares __dict__ with ==, which numpy answers elementwise (and then
        # raises on truth-testing); compare arrays by value instead.
        if not isinstance(other, BaseModel):
            return NotImplemented
        if type(self) is not type(other) or self.__dict__.keys() != other.__dict__.keys():
            return False
        return all(_same(value, other.__dict__[name]) for name, value in self.__dict__.items())

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, _VectorRepr(value) if isinstance(value, np.ndarray) else value


def _parts(annotation: Any) -> Iterator[Any]:
    """Yield the types inside unions and Annotated wrappers of *annotation*, and their metadata."""
    # the metadata matters: a nullable vector's marker sits inside `Annotated[...] | None`
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
    # enum columns are text: a StrEnum is a str subclass
    return isinstance(part, type) and issubclass(part, str)


def _kind(parts: list[Any]) -> ColumnKind | None:
    """Return the column kind of a field made of *parts* (see ``_parts``), None if unknown."""
    if any(isinstance(part, _VectorSchema) for part in parts):
        return "vector"
    for part in parts:
        origin = get_origin(part)
        if origin is dict:
            return "json"
        if origin is list:
            inner = [q for arg in get_args(part) for q in _parts(arg)]
            if uuid.UUID in inner:
                return "uuid[]"
            if any(_is_text(q) for q in inner):
                return "text[]"
            if any(get_origin(q) is dict for q in inner):
                return "json[]"
            return "json"  # list[Any]: a jsonb array
    for kind, wanted in (
        ("uuid", (uuid.UUID,)),
        ("bool", (bool,)),
        ("datetime", (datetime, AwareDatetime)),
        ("float", (float,)),
        ("int", (int,)),
    ):
        if any(part in wanted for part in parts):
            return kind  # type: ignore[return-value]
    if any(_is_text(part) for part in parts):
        return "text"
    return None


def _field_parts(field: FieldInfo) -> list[Any]:
    # pydantic moves a top-level Annotated's metadata to field.metadata
    return [*field.metadata, *_parts(field.annotation)]


def _is_int32(parts: list[Any]) -> bool:
    """Return whether the parts bound an integer to PostgreSQL ``integer`` (``Int32``)."""
    metadata = [*parts]
    metadata.extend(m for part in parts if isinstance(part, FieldInfo) for m in part.metadata)
    return any(isinstance(m, annotated_types.Le) and m.le == 2**31 - 1 for m in metadata)


def column_types(
    row_model: type[RowModel], *write_models: type[BaseModel] | None
) -> dict[str, ColumnType]:
    """Return column -> ColumnType of a table: kinds from *row_model*, integer widths from
    the write models (a field they declare ``Int32`` is an ``integer`` column, else ``bigint``).

    Columns of a kind the models do not make clear are left out (a test keeps it empty).
    """
    result: dict[str, ColumnType] = {}
    for name, kind in row_model.__column_kinds__.items():
        bits = 64
        if kind == "int":
            for model in write_models:
                field = None if model is None else model.model_fields.get(name)
                if field is not None and _is_int32(_field_parts(field)):
                    bits = 32
        result[name] = ColumnType(kind, bits)
    return result


def _as_utc(value: datetime) -> datetime:
    # The columns are `timestamp without time zone` holding UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


#: A field a row must have: ``from_record`` leaves it unset when the record lacks it.
_REQUIRED: Final = object()
#: One field as ``from_record`` fills it: name, its default (None, ``_REQUIRED``, or the
#: FieldInfo whose default is computed per row) and the conversion of a non-None value.
_RecordField = tuple[str, Any, Callable[[Any], Any] | None]


def _record_fields(cls: type[BaseModel]) -> tuple[_RecordField, ...]:
    """Return how ``from_record`` fills *cls*'s fields.

    A row model is plain data: aliases, ``model_post_init`` or kept extra fields would need
    pydantic's general ``model_construct``, so they are refused when the class is defined.
    """
    if (
        cls.model_config.get("extra") == "allow"
        or cls.__pydantic_post_init__
        or cls.__pydantic_root_model__
    ):
        raise TypeError(f"{cls.__name__}: a row model keeps no extra fields and has no post-init")
    converters = getattr(cls, "__record_converters__", {})
    plan: list[_RecordField] = []
    for name, field in cls.model_fields.items():
        if field.alias is not None or field.validation_alias is not None:
            raise TypeError(f"{cls.__name__}.{name}: a row model's fields have no aliases")
        if field.is_required():
            default: Any = _REQUIRED
        elif field.default_factory is None and field.default is None:
            default = None
        else:
            default = field
        plan.append((name, default, converters.get(name)))
    return tuple(plan)


def _record_converter(parts: list[Any]) -> Callable[[Any], Any] | None:
    """Return the from_record conversion for a field made of *parts*, if it needs one."""
    for part in parts:
        if isinstance(part, type) and issubclass(part, Enum):
            members = {member.value: member for member in part}
            return lambda value: members.get(value, value)
    # AwareDatetime is its own marker class at run time, not a datetime subclass
    if datetime in parts or AwareDatetime in parts:
        return _as_utc
    return None


class RowModel(CodeAtlasModel):
    """A table row as read from PostgreSQL."""

    model_config = ConfigDict(extra="ignore")

    #: The table's facts, declared once per table model (see ``TableSpec``); bound on subclassing.
    __table_spec__: ClassVar[TableSpec]
    #: Derived from ``__table_spec__``: the table's name and primary key column.
    __table__: ClassVar[str]
    __primary_key__: ClassVar[str] = "id"
    #: vector column -> dimension, e.g. ``{"embedding": 768}``; derived from the field types.
    __vector_columns__: ClassVar[dict[str, int]] = {}
    #: field -> conversion applied by from_record (non-None values only); set per subclass.
    __record_converters__: ClassVar[dict[str, Callable[[Any], Any]]] = {}
    #: field -> column kind, from the annotation (fields of unknown kind are absent).
    __column_kinds__: ClassVar[dict[str, ColumnKind]] = {}
    #: How from_record fills each field (see ``_record_fields``).
    __record_fields__: ClassVar[tuple[_RecordField, ...]] = ()
    #: The field names, for the set of those a record gave.
    __field_names__: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        vectors: dict[str, int] = {}
        converters: dict[str, Callable[[Any], Any]] = {}
        kinds: dict[str, ColumnKind] = {}
        for name, field in cls.model_fields.items():
            parts = _field_parts(field)
            dim = next((part.dim for part in parts if isinstance(part, _VectorSchema)), None)
            if dim is not None:
                vectors[name] = dim
            converter = _record_converter(parts)
            if converter is not None:
                converters[name] = converter
            kind = _kind(parts)
            if kind is not None:
                kinds[name] = kind
        cls.__vector_columns__ = vectors
        cls.__record_converters__ = converters
        cls.__column_kinds__ = kinds
        cls.__record_fields__ = _record_fields(cls)
        cls.__field_names__ = frozenset(cls.model_fields)
        if "__table__" in cls.__dict__:
            # one source: the name is derived from the spec, never set beside it
            raise TypeError(f"{cls.__name__}: declare __table_spec__, not __table__")
        spec: TableSpec | None = getattr(cls, "__table_spec__", None)
        if spec is not None:
            cls.__table_spec__ = spec.bind(cls.__name__, tuple(cls.model_fields), vectors)
            cls.__table__ = spec.name
            cls.__primary_key__ = spec.primary_key

    @classmethod
    def from_record(cls, record: RecordLike, /, **replaced: Any) -> Self:
        """Return the row for a database *record* without re-validating it.

        Columns the record lacks keep their default (vectors: None); keys that are not
        columns (a computed distance, say) are ignored. *replaced* values take the place
        of the record's (converted like them).

        The same instance as ``model_construct`` would build (the same ``__dict__``, fields
        set, no extra, no private attributes; a test compares them for every row model),
        built directly: rows are built for every row a query returns, and pydantic's
        general ``model_construct`` takes twice as long.
        """
        values = dict(record.items())
        if replaced:
            values.update(replaced)
        fields: dict[str, Any] = {}
        for name, default, conversion in cls.__record_fields__:
            if name in values:
                value = values[name]
                fields[name] = value if conversion is None or value is None else conversion(value)
            elif default is None:
                fields[name] = None
            elif default is not _REQUIRED:
                fields[name] = default.get_default(call_default_factory=True, validated_data=fields)
        row = cls.__new__(cls)
        _set_attribute(row, "__dict__", fields)
        _set_attribute(row, "__pydantic_fields_set__", cls.__field_names__ & values.keys())
        _set_attribute(row, "__pydantic_extra__", None)
        _set_attribute(row, "__pydantic_private__", None)
        return row


def _db_value(value: Any) -> Any:
    """Return *value* in the form asyncpg binds for its column."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        # write models only hold aware datetimes; the columns store naive UTC
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _unstorable(kind: ColumnKind, value: Any) -> str | None:
    """Return why *value* of a *kind* field cannot be stored, or None."""
    if kind == "text":
        return text_problem(value) if isinstance(value, str) else None
    if kind == "text[]":
        for index, item in enumerate(value):
            problem = text_problem(item) if isinstance(item, str) else None
            if problem is not None:
                return f"[{index}] {problem}"
        return None
    return json_problem(value)


class WriteModel(CodeAtlasModel):
    """What callers send: unknown fields are errors and assignments are validated too.

    Floats must be finite, and text and JSON storable (see the module docstring).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    #: field -> kind, for the fields whose values need the storable check; set per subclass.
    __checked_fields__: ClassVar[dict[str, ColumnKind]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        checked: dict[str, ColumnKind] = {}
        for name, field in cls.model_fields.items():
            kind = _kind(_field_parts(field))
            if kind in ("text", "text[]", "json", "json[]"):
                checked[name] = kind
        cls.__checked_fields__ = checked

    @model_validator(mode="after")
    def _check_storable(self) -> Self:
        values = self.__dict__
        for name, kind in type(self).__checked_fields__.items():
            value = values.get(name)
            if value is None:
                continue
            problem = _unstorable(kind, value)
            if problem is not None:
                raise PydanticCustomError(
                    _UNSTORABLE, "{field}: {problem}", {"field": name, "problem": problem}
                )
        return self

    def __setattr__(self, name: str, value: Any) -> None:
        missing = object()
        previous = self.__dict__.get(name, missing)
        fields_set = set(self.__pydantic_fields_set__)
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            # a model validator fails after pydantic stored the value: put the old one back
            if previous is missing:
                self.__dict__.pop(name, None)
            else:
                self.__dict__[name] = previous
            self.__pydantic_fields_set__ = fields_set
            raise _input_error(type(self), exc) from exc

    def _db_columns(self) -> Iterator[str]:
        """Yield the columns to write, in declaration order (stable SQL text)."""
        return iter(type(self).model_fields)

    def to_db(self) -> dict[str, Any]:
        """Return column -> value ready for asyncpg binding.

        Aware datetimes become naive UTC, enums their string, vectors stay float32 arrays and
        JSON stays Python objects (the pool registers a JSONB codec).
        """
        return {name: _db_value(getattr(self, name)) for name in self._db_columns()}


class CreateModel(WriteModel):
    """A row to insert. Server-generated columns are absent; ``id=None`` lets the DB pick."""

    def _db_columns(self) -> Iterator[str]:
        for name in type(self).model_fields:
            if name != "id" or self.__dict__[name] is not None:
                yield name


class UpdateModel(WriteModel):
    """A partial update: only fields the caller set (``model_fields_set``) are written."""

    def _db_columns(self) -> Iterator[str]:
        written = self.model_fields_set
        return (name for name in type(self).model_fields if name in written)
