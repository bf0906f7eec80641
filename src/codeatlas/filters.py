"""Typed filters for ``list``, ``count`` and ``search_similar``: ``where={column: condition}``.

A condition is one of:

* a plain value: ``column = $n`` (``None`` means ``column IS NULL``);
* a list, tuple, set or frozenset: ``column = ANY($n)`` (IN);
* ``Range(ge=..., lt=...)``: bounds on numbers or timestamps (aware datetimes, stored as UTC);
* ``Contains(value)``: JSONB or array containment, ``column @> $n`` (uses the GIN indexes);
* ``NotNull()``: ``column IS NOT NULL``.

Columns come from each repository's allow-list, never from the caller's strings; every value
is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeAlias

from .errors import InvalidFilterError

__all__ = ["Condition", "Contains", "NotNull", "Range", "Where", "compile_where"]


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


@dataclass(frozen=True, slots=True)
class Contains:
    """JSONB or array containment: the column's value contains *value* (``@>``)."""

    value: Any


@dataclass(frozen=True, slots=True)
class NotNull:
    """The column is not NULL."""


Condition: TypeAlias = Any
Where: TypeAlias = Mapping[str, Condition]


def _bind(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidFilterError("filter datetimes must be timezone-aware")
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def compile_where(
    where: Where | None,
    allowed: Collection[str],
    *,
    first_param: int = 1,
    alias: str = "",
) -> tuple[list[str], list[Any]]:
    """Return SQL conditions and their parameters for *where*, numbered from *first_param*.

    *allowed* is the repository's allow-list of column names (identifiers from code);
    *alias* prefixes every column (``"t."``) when the query joins.
    """
    clauses: list[str] = []
    params: list[Any] = []
    if not where:
        return clauses, params
    if not isinstance(where, Mapping):
        raise InvalidFilterError(f"where must be a mapping of column to condition, got {where!r}")

    def param(value: Any) -> str:
        params.append(_bind(value))
        return f"${first_param + len(params) - 1}"

    for column, condition in where.items():
        if column not in allowed:
            raise InvalidFilterError(
                f"cannot filter on {column!r}: allowed columns are {', '.join(sorted(allowed))}"
            )
        target = f"{alias}{column}"
        if condition is None:
            clauses.append(f"{target} IS NULL")
        elif isinstance(condition, NotNull):
            clauses.append(f"{target} IS NOT NULL")
        elif isinstance(condition, Range):
            for op, bound in (
                (">", condition.gt),
                (">=", condition.ge),
                ("<", condition.lt),
                ("<=", condition.le),
            ):
                if bound is not None:
                    clauses.append(f"{target} {op} {param(bound)}")
        elif isinstance(condition, Contains):
            clauses.append(f"{target} @> {param(condition.value)}")
        elif isinstance(condition, list | tuple | Set):
            values = [_bind(v) for v in condition]
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
            clauses.append(f"{target} = {param(condition)}")
    return clauses, params
