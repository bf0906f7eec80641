"""Annotated column types shared by every model, and the value checks done before SQL.

``Vector1536`` / ``Vector768`` validate embeddings with numpy (never per element in Python)
and hold them as contiguous 1-D float32 arrays, the form the asyncpg vector codec binds.
``validate_vector`` is the same check for code outside pydantic (search query vectors).

What PostgreSQL cannot store is refused here, once, for models, filters and arguments:

* text: NUL (``\\x00``) and lone surrogates (no UTF-8 form), see ``text_problem``;
* JSON: NaN/Infinity, values JSON has no form for (sets, bytes, objects), keys that are not
  strings, containers that contain themselves, nesting deeper than ``MAX_JSON_DEPTH``, more
  than ``MAX_JSON_NODES`` values, and the text rules in keys and strings, see ``json_problem``;
* vectors: a Euclidean norm outside ``MIN_VECTOR_NORM..MAX_VECTOR_NORM`` (pgvector sums
  squares in float32: a larger norm overflows to inf and a smaller one underflows to 0, and
  either makes cosine distance NaN or meaningless);
* ``ColumnType.bind``: a filter value, key or argument against its column's type.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import Annotated, Any, Final, Literal, TypeAlias, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import AfterValidator, Field, GetCoreSchemaHandler, StringConstraints
from pydantic_core import PydanticCustomError, core_schema

from codeatlas.errors import InvalidInputError, InvalidVectorError

__all__ = [
    "CONTAINER_KINDS",
    "MAX_JSON_DEPTH",
    "MAX_JSON_NODES",
    "MAX_VECTOR_NORM",
    "MIN_VECTOR_NORM",
    "SCALAR_KINDS",
    "ColumnKind",
    "ColumnType",
    "Int32",
    "Int64",
    "NonNull",
    "OpenEnum",
    "Str50",
    "Str64",
    "Str100",
    "Str255",
    "Str500",
    "Vector768",
    "Vector1536",
    "check_json",
    "check_text",
    "json_problem",
    "text_problem",
    "validate_vector",
]

#: Numeric dtype kinds accepted as vector input: signed, unsigned and floating point.
_NUMERIC_KINDS: Final = frozenset("iuf")

#: Vector norms accepted. pgvector accumulates squares in float32: below 1e-15 the squares
#: underflow (every row then scores the same), above 1e19 their sum overflows to inf (NaN).
MIN_VECTOR_NORM: Final = 1e-15
MAX_VECTOR_NORM: Final = 1e19
#: Squared norms a float32 dot product may decide alone (see ``_coerce_vector``): well inside
#: the bounds above, so the product's own rounding cannot move a vector across one of them.
_SURE_SQUARED_NORMS: Final = (1e-28, 1e36)

#: Deepest JSON nesting accepted (a top-level object is depth 1): far above real documents,
#: far below Python's recursion limit in the encoder.
MAX_JSON_DEPTH: Final = 64
#: Most values in one JSON document; bounds the work of checking shared sub-documents too.
MAX_JSON_NODES: Final = 1_000_000
#: Largest integer magnitude in JSON (bits): Python refuses to print ints of more than
#: 4300 digits (about 14 284 bits).
_MAX_JSON_INT_BITS: Final = 14_000

_INT32: Final = (-(2**31), 2**31 - 1)
_INT64: Final = (-(2**63), 2**63 - 1)


def text_problem(value: str) -> str | None:
    """Return why PostgreSQL cannot store *value* as text (NUL, lone surrogate), or None."""
    # C-speed checks first (a regex scan is several times slower on large non-ASCII text)
    index = value.find("\x00")
    if index >= 0:
        return f"contains a NUL character (\\x00) at index {index}, which text cannot hold"
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"contains a lone surrogate ({value[exc.start]!r}) at index {exc.start}, "
            "which has no UTF-8 form"
        )
    return None


def check_text(value: object, *, field: str) -> str:
    """Return *value* if it is text PostgreSQL can store; else raise InvalidInputError."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{field}: expected a string, got {type(value).__name__}")
    problem = text_problem(value)
    if problem is not None:
        raise InvalidInputError(f"{field}: {problem}")
    return value


def _json_path(path: str, key: object) -> str:
    return f"{path}[{key!r}]"


def _text_ok(value: str) -> bool:
    return (value.isascii() and "\x00" not in value) or text_problem(value) is None


def _json_ok(value: object) -> bool:
    """Return whether *value* is storable JSON: the fast check, without saying where or why."""
    budget = MAX_JSON_NODES

    def ok(item: Any, depth: int) -> bool:
        nonlocal budget
        budget -= 1
        kind = type(item)
        if kind is str:
            return _text_ok(item)
        if kind is int:
            return bool(item.bit_length() <= _MAX_JSON_INT_BITS)
        if kind is float:
            return math.isfinite(item)
        if kind is bool or item is None:
            return True
        if budget < 0 or depth > MAX_JSON_DEPTH:
            return False  # also ends a cycle: it nests without end
        depth += 1
        if kind is dict:
            for key, child in item.items():
                if type(key) is not str or not _text_ok(key) or not ok(child, depth):
                    return False
            return True
        if kind is list or kind is tuple:
            return all(ok(child, depth) for child in item)
        return False  # subclasses and everything else: the full check decides

    return ok(value, 1)


def json_problem(value: object, root: str = "") -> str | None:
    """Return why *value* is not a JSON document PostgreSQL's jsonb can store, or None.

    The answer names where, below *root*: ``metadata['a'][2]: nan is not JSON ...``.
    """
    if _json_ok(value):
        return None
    return _json_problem(value, root)


def _json_problem(value: object, root: str) -> str | None:
    """The full check of ``json_problem``: the path and the reason of the first problem."""
    nodes = 0
    # (value, depth, path); ids of the containers on the current path detect self-reference
    on_path: set[int] = set()
    stack: list[tuple[object, int, str, bool]] = [(value, 1, "", False)]
    while stack:
        item, depth, path, leaving = stack.pop()
        if leaving:
            on_path.discard(id(item))
            continue
        nodes += 1
        if nodes > MAX_JSON_NODES:
            return f"more than {MAX_JSON_NODES} values"
        where = root + (path if len(path) <= 60 else f"...{path[-50:]}")
        where = where or "the value"
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                return f"{where}: {problem}"
            continue
        if isinstance(item, int):
            if abs(item).bit_length() > _MAX_JSON_INT_BITS:
                return f"{where}: integer too large for JSON"
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return f"{where}: {item!r} is not JSON (only finite numbers are)"
            continue
        if isinstance(item, Mapping | list | tuple):
            if id(item) in on_path:
                return f"{where}: the container contains itself"
            if depth > MAX_JSON_DEPTH:
                return f"{where}: nested deeper than {MAX_JSON_DEPTH} levels"
            on_path.add(id(item))
            stack.append((item, depth, path, True))
            if isinstance(item, Mapping):
                for key, child in item.items():
                    if not isinstance(key, str):
                        return (
                            f"{where}: key {key!r} ({type(key).__name__}) is not a string "
                            "(JSON keys are strings)"
                        )
                    problem = text_problem(key)
                    if problem is not None:
                        return f"{where}: key {key!r} {problem}"
                    stack.append((child, depth + 1, _json_path(path, key), False))
            else:
                for index, child in enumerate(item):
                    stack.append((child, depth + 1, _json_path(path, index), False))
            continue
        return f"{where}: a {type(item).__name__} has no JSON form"
    return None


def check_json(value: object, *, field: str) -> Any:
    """Return *value* if it is a JSON document jsonb can store; else raise InvalidInputError."""
    problem = json_problem(value, field)
    if problem is not None:
        raise InvalidInputError(problem)
    return value


class _VectorProblem(ValueError):
    """Why a value is not a usable vector (message without the field name)."""


def _coerce_vector(value: object, dim: int) -> npt.NDArray[np.float32]:
    """Return *value* as a fresh contiguous 1-D float32 array, or raise _VectorProblem."""
    if isinstance(value, np.ndarray):
        source = value
    elif isinstance(value, str | bytes | bytearray | Mapping | Set):
        raise _VectorProblem(f"expected a sequence of numbers, got {type(value).__name__}")
    else:
        try:
            source = np.asarray(value)
        except (TypeError, ValueError) as exc:
            # ragged nesting, or objects numpy cannot put in one array
            raise _VectorProblem(f"expected a flat sequence of numbers ({exc})") from None
    if source.dtype.kind not in _NUMERIC_KINDS:
        raise _VectorProblem(f"expected numbers, got elements of dtype {source.dtype}")
    if source.ndim != 1:
        raise _VectorProblem(
            f"expected a 1-D vector of {dim} dimensions, got an array of shape {source.shape}"
        )
    if source.shape[0] != dim:
        raise _VectorProblem(f"expected {dim} dimensions, got {source.shape[0]}")
    # Always a copy: the model must not share a buffer the caller can still mutate.
    # Overflow to inf is caught by the checks below, so numpy's warnings are noise.
    with np.errstate(all="ignore"):
        vector = np.array(source, dtype=np.float32, order="C", copy=True)
        # One pass decides the usual vector: a NaN makes the sum of squares NaN and an
        # infinity makes it inf, so a sum within the sure range means every value is
        # finite, not all are zero and the norm is within bounds. Others take the exact
        # checks below (which also say what is wrong).
        squared = float(np.dot(vector, vector))
    if _SURE_SQUARED_NORMS[0] <= squared <= _SURE_SQUARED_NORMS[1]:
        return vector
    if not np.isfinite(vector).all():
        raise _VectorProblem("values must be finite (no NaN or Inf, and within float32 range)")
    if not vector.any():
        raise _VectorProblem("vector is all zeros (cosine distance is undefined)")
    # float64 here, so the check itself neither overflows nor underflows
    norm = float(np.linalg.norm(vector.astype(np.float64)))
    if not MIN_VECTOR_NORM <= norm <= MAX_VECTOR_NORM:
        raise _VectorProblem(
            f"norm {norm:.3g} is outside {MIN_VECTOR_NORM:g}..{MAX_VECTOR_NORM:g} "
            "(pgvector's float32 sums would underflow or overflow: similarities would be "
            "meaningless or NaN)"
        )
    return vector


def validate_vector(value: object, dim: int, *, field: str) -> npt.NDArray[np.float32]:
    """Return *value* as a contiguous 1-D float32 array of *dim* finite, not-all-zero values.

    Raises InvalidVectorError naming *field*, e.g. "embedding: expected 768 dimensions, got 767".
    """
    try:
        return _coerce_vector(value, dim)
    except _VectorProblem as problem:
        raise InvalidVectorError(f"{field}: {problem}") from None


def _vector_to_list(vector: npt.NDArray[np.float32]) -> list[float]:
    return vector.tolist()  # type: ignore[no-any-return]


class _VectorSchema:
    """Pydantic schema hook for a vector of *dim* dimensions (use via Vector1536/Vector768)."""

    __slots__ = ("dim",)

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        dim = self.dim

        def validate(value: object) -> npt.NDArray[np.float32]:
            try:
                return _coerce_vector(value, dim)
            except _VectorProblem as problem:
                raise PydanticCustomError(
                    "invalid_vector", "{problem}", {"problem": str(problem), "expected_dim": dim}
                ) from None

        as_list = core_schema.list_schema(
            core_schema.float_schema(), min_length=dim, max_length=dim
        )
        return core_schema.no_info_plain_validator_function(
            validate,
            json_schema_input_schema=as_list,
            serialization=core_schema.plain_serializer_function_ser_schema(
                _vector_to_list, return_schema=as_list, when_used="json"
            ),
        )


#: vector(1536) column: codebase_metadata, graph_nodes and vector_search embeddings.
Vector1536: TypeAlias = Annotated[npt.NDArray[np.float32], _VectorSchema(1536)]
#: vector(768) column: rules, code_embeddings, code_locations, rag_* and semantic_cache.
Vector768: TypeAlias = Annotated[npt.NDArray[np.float32], _VectorSchema(768)]

Str50: TypeAlias = Annotated[str, StringConstraints(max_length=50)]
Str64: TypeAlias = Annotated[str, StringConstraints(max_length=64)]
Str100: TypeAlias = Annotated[str, StringConstraints(max_length=100)]
Str255: TypeAlias = Annotated[str, StringConstraints(max_length=255)]
Str500: TypeAlias = Annotated[str, StringConstraints(max_length=500)]

#: PostgreSQL ``integer``: out-of-range values fail here instead of on the server.
Int32: TypeAlias = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
#: PostgreSQL ``bigint``.
Int64: TypeAlias = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]

_E = TypeVar("_E", bound=StrEnum)
_T = TypeVar("_T")

#: Enum column in a row model: the member when known, else the raw string the Elixir app
#: stored. Left-to-right so a known value becomes the member rather than matching ``str``.
OpenEnum: TypeAlias = Annotated[_E | str, Field(union_mode="left_to_right")]


def _reject_null(value: _T | None) -> _T:
    if value is None:
        raise PydanticCustomError("null_not_allowed", "the column is NOT NULL: leave it unset")
    return value


#: Update-model field for a NOT NULL column: optional to set, never set to NULL.
NonNull: TypeAlias = Annotated[_T | None, AfterValidator(_reject_null)]


ColumnKind: TypeAlias = Literal[
    "text", "int", "float", "bool", "uuid", "datetime", "json", "vector", "text[]", "uuid[]",
    "json[]",
]  # fmt: skip

#: Kinds that ``=``, ``IN`` and (for numbers and timestamps) ``Range`` compare directly.
SCALAR_KINDS: Final[frozenset[str]] = frozenset(
    {"text", "int", "float", "bool", "uuid", "datetime"}
)
#: Kinds ``Contains`` applies to (``@>``): JSON documents and arrays.
CONTAINER_KINDS: Final[frozenset[str]] = frozenset({"json", "text[]", "uuid[]", "json[]"})

_KIND_NAMES: Final[dict[str, str]] = {
    "text": "a string",
    "int": "an integer",
    "float": "a finite number",
    "bool": "a bool",
    "uuid": "a UUID",
    "datetime": "a timezone-aware datetime",
    "json": "a JSON value",
    "vector": "a vector",
    "text[]": "a list of strings",
    "uuid[]": "a list of UUIDs",
    "json[]": "a list of JSON values",
}


@dataclass(frozen=True, slots=True)
class ColumnType:
    """What a column holds, as the models declare it: the kind and, for integers, the width.

    ``bind`` checks one value against it before it is sent, so a mismatch is an error that
    names the column instead of a driver or server error.
    """

    kind: ColumnKind
    #: integer columns: 32 (``integer``) or 64 (``bigint``)
    bits: int = 64

    def describe(self) -> str:
        """Return the kind in words, e.g. "a 32-bit integer"."""
        if self.kind == "int":
            return f"a {self.bits}-bit integer"
        return _KIND_NAMES[self.kind]

    def bind(
        self,
        value: object,
        *,
        field: str,
        error: type[InvalidInputError] = InvalidInputError,
        stored: bool = False,
    ) -> Any:
        """Return *value* as bound for this column, or raise *error* naming *field* and why.

        Enum members bind as their value. ``stored=True`` accepts naive datetimes (naive UTC,
        as the columns store them: values read back from a cursor).
        """
        if isinstance(value, Enum):
            value = value.value
        kind = self.kind
        if kind == "text":
            if isinstance(value, str):
                problem = text_problem(value)
                if problem is None:
                    return value
                raise error(f"{field}: {problem}")
        elif kind == "int":
            if isinstance(value, int) and not isinstance(value, bool):
                low, high = _INT32 if self.bits == 32 else _INT64
                if low <= value <= high:
                    return value
                raise error(f"{field}: {value} is outside the {self.bits}-bit integer range")
        elif kind == "float":
            if isinstance(value, int | float) and not isinstance(value, bool):
                try:
                    number = float(value)
                except OverflowError:
                    number = math.inf
                if math.isfinite(number):
                    return number
                raise error(f"{field}: {value!r} is not a finite number")
        elif kind == "bool":
            if isinstance(value, bool):
                return value
        elif kind == "uuid":
            if isinstance(value, uuid.UUID):
                return value
            if isinstance(value, str):
                try:
                    return uuid.UUID(value)
                except ValueError:
                    raise error(f"{field}: {value!r} is not a UUID") from None
        elif kind == "datetime":
            if isinstance(value, datetime):
                if value.tzinfo is not None:
                    return value.astimezone(UTC).replace(tzinfo=None)
                if stored:
                    return value
                raise error(f"{field}: datetimes must be timezone-aware")
        elif kind == "json":
            problem = json_problem(value, field)
            if problem is None:
                return value
            raise error(problem)
        elif kind in ("text[]", "uuid[]", "json[]") and isinstance(value, list | tuple | Set):
            element = ColumnType(
                "text" if kind == "text[]" else "uuid" if kind == "uuid[]" else "json"
            )
            return [
                element.bind(item, field=f"{field}[{i}]", error=error, stored=stored)
                for i, item in enumerate(value)
            ]
        raise error(f"{field}: expected {self.describe()}, got {_type_name(value)}")


def _type_name(value: object) -> str:
    if isinstance(value, str | int | float) and len(repr(value)) <= 40:
        return f"{type(value).__name__} {value!r}"
    return type(value).__name__
