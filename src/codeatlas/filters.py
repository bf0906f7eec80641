"""Typed filters for ``list``, ``count`` and ``search_similar``: ``where={column: condition}``.

A condition is one of:

* a plain value: ``column = $n`` (``None`` means ``column IS NULL``);
* a list, tuple, set or frozenset: ``column = ANY($n)`` (IN);
* ``Range(ge=..., lt=...)``: bounds on numbers or timestamps (aware datetimes, stored as UTC);
* ``Contains(value)``: JSONB or array containment, ``column @> $n`` (uses the GIN indexes);
* ``NotNull()``: ``column IS NOT NULL``.

Columns come from each repository's allow-list, never from the caller's strings; every value
is a bound parameter. When the allow-list carries the column types (repositories pass
``ColumnType``s derived from their row model), every value is checked against its column
before any SQL is sent: a string for an integer column, an integer beyond the column's
width, NaN, text PostgreSQL cannot store, ``Contains`` on a scalar column or ``Range`` on a
text column is an ``InvalidFilterError`` that names the column and says why.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final, TypeAlias

from .errors import InvalidFilterError
from .models._types import CONTAINER_KINDS, SCALAR_KINDS, ColumnType, json_problem, text_problem

__all__ = ["Condition", "Contains", "NotNull", "Range", "Where", "compile_where"]

#: Range bounds beyond these are refused: no SQL number column holds them (bigint, and the
#: largest finite float).
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
#: Most values one IN list may carry (one bound array; far above any sensible filter).
MAX_IN_VALUES: Final = 100_000


@dataclass(frozen=True, slots=True)
class Range:
    """Bounds on a number or timestamp column; unset bounds are open."""

    gt: Any = None
    ge: Any = None
    lt: Any = None
    le: Any = None

    def __post_init__(self) -> None:
        bounds = [b for b in (self.gt, self.ge, self.lt, self.le) if b is not None]
        if not bounds:
            raise InvalidFilterError("Range needs at least one of gt, ge, lt, le")
        if self.gt is not None and self.ge is not None:
            raise InvalidFilterError("Range takes gt or ge, not both")
        if self.lt is not None and self.le is not None:
            raise InvalidFilterError("Range takes lt or le, not both")
        for bound in bounds:
            if isinstance(bound, bool) or not isinstance(bound, int | float | datetime):
                raise InvalidFilterError(
                    f"Range bounds must be numbers or datetimes, got {type(bound).__name__}"
                )
            if isinstance(bound, datetime) and bound.tzinfo is None:
                raise InvalidFilterError("Range datetimes must be timezone-aware")
            if isinstance(bound, float) and not math.isfinite(bound):
                raise InvalidFilterError(f"Range bounds must be finite, got {bound!r}")
            if isinstance(bound, int) and not _INT64_MIN <= bound <= _INT64_MAX:
                raise InvalidFilterError(f"Range bound {bound} is outside the 64-bit range")
        kinds = {isinstance(b, datetime) for b in bounds}
        if len(kinds) > 1:
            raise InvalidFilterError("Range bounds must all be numbers or all be datetimes")


@dataclass(frozen=True, slots=True)
class Contains:
    """JSONB or array containment: the column's value contains *value* (``@>``)."""

    value: Any


@dataclass(frozen=True, slots=True)
class NotNull:
    """The column is not NULL."""


Condition: TypeAlias = Any
Where: TypeAlias = Mapping[str, Condition]


def _bind_untyped(column: str, value: Any) -> Any:
    """Bind *value* for a column whose type the caller did not give: generic checks only."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidFilterError(f"{column}: filter datetimes must be timezone-aware")
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            raise InvalidFilterError(f"{column}: {problem}")
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidFilterError(f"{column}: {value!r} is not a finite number")
    elif (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not _INT64_MIN <= value <= _INT64_MAX
    ):
        raise InvalidFilterError(f"{column}: {value} is outside the 64-bit integer range")
    return value


def _bind(column: str, kind: ColumnType | None, value: Any) -> Any:
    if kind is None:
        return _bind_untyped(column, value)
    return kind.bind(value, field=column, error=InvalidFilterError)


def _contained(column: str, kind: ColumnType | None, value: Any) -> Any:
    """Check the value of ``Contains`` on *column*; return it as bound."""
    if kind is None:
        problem = json_problem(value, column)
        if problem is not None:
            raise InvalidFilterError(problem)
        return value
    if kind.kind not in CONTAINER_KINDS:
        raise InvalidFilterError(
            f"{column}: Contains applies to JSON and array columns; "
            f"this column holds {kind.describe()}"
        )
    if kind.kind != "json" and not isinstance(value, list | tuple | Set):
        raise InvalidFilterError(
            f"{column}: Contains on {kind.describe()} takes a list of elements, "
            f"got {type(value).__name__}"
        )
    return kind.bind(value, field=column, error=InvalidFilterError)


def compile_where(
    where: Where | None,
    allowed: Collection[str] | Mapping[str, ColumnType],
    *,
    first_param: int = 1,
    alias: str = "",
) -> tuple[list[str], list[Any]]:
    """Return SQL conditions and their parameters for *where*, numbered from *first_param*.

    *allowed* is the repository's allow-list of column names (identifiers from code), or a
    mapping of those names to their ``ColumnType`` (then every value is checked against
    its column); *alias* prefixes every column (``"t."``) when the query joins.
    """
    clauses: list[str] = []
    params: list[Any] = []
    if where is None:
        return clauses, params
    if not isinstance(where, Mapping):
        raise InvalidFilterError(
            f"where must be a mapping of column to condition, got {type(where).__name__}"
        )
    if not where:
        return clauses, params
    types: Mapping[str, ColumnType] = allowed if isinstance(allowed, Mapping) else {}

    def param(value: Any) -> str:
        params.append(value)
        return f"${first_param + len(params) - 1}"

    for column, condition in where.items():
        if not isinstance(column, str) or column not in allowed:
            raise InvalidFilterError(
                f"cannot filter on {column!r}: allowed columns are {', '.join(sorted(allowed))}"
            )
        kind = types.get(column)
        target = f"{alias}{column}"
        if condition is None:
            clauses.append(f"{target} IS NULL")
        elif isinstance(condition, NotNull):
            clauses.append(f"{target} IS NOT NULL")
        elif isinstance(condition, Range):
            if kind is not None and kind.kind not in ("int", "float", "datetime"):
                raise InvalidFilterError(
                    f"{column}: Range applies to number and timestamp columns; "
                    f"this column holds {kind.describe()}"
                )
            for op, bound in (
                (">", condition.gt),
                (">=", condition.ge),
                ("<", condition.lt),
                ("<=", condition.le),
            ):
                if bound is not None:
                    clauses.append(f"{target} {op} {param(_bind(column, kind, bound))}")
        elif isinstance(condition, Contains):
            clauses.append(f"{target} @> {param(_contained(column, kind, condition.value))}")
        elif isinstance(condition, list | tuple | Set):
            if kind is not None and kind.kind not in SCALAR_KINDS:
                raise InvalidFilterError(
                    f"{column}: a list is an IN filter, which applies to scalar columns; "
                    f"this column holds {kind.describe()} (use Contains for containment)"
                )
            if len(condition) > MAX_IN_VALUES:
                raise InvalidFilterError(
                    f"{column}: at most {MAX_IN_VALUES} values in one IN filter"
                )
            values = [_bind(column, kind, v) for v in condition]
            if not values:
                clauses.append("false")  # IN () matches nothing
                continue
            params.append(values)
            clauses.append(f"{target} = ANY(${first_param + len(params) - 1})")
        elif isinstance(condition, Mapping):
            raise InvalidFilterError(
                f"filter on {column!r}: wrap a JSON object in Contains(...) for containment"
            )
        else:
            if kind is not None and kind.kind not in SCALAR_KINDS | {"json"}:
                raise InvalidFilterError(
                    f"{column}: compare {kind.describe()} with Contains([...]), or None / NotNull()"
                )
            clauses.append(f"{target} = {param(_bind(column, kind, condition))}")
    return clauses, params
