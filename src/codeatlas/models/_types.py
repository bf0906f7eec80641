"""Annotated column types shared by every model: vectors, bounded strings and integers.

``Vector1536`` / ``Vector768`` validate embeddings with numpy (never per element in Python)
and hold them as contiguous 1-D float32 arrays, the form the asyncpg vector codec binds.
``validate_vector`` is the same check for code outside pydantic (search query vectors).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from enum import StrEnum
from typing import Annotated, Any, Final, TypeAlias, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import AfterValidator, Field, GetCoreSchemaHandler, StringConstraints
from pydantic_core import PydanticCustomError, core_schema

from codeatlas.errors import InvalidVectorError

__all__ = [
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
    "validate_vector",
]

#: Numeric dtype kinds accepted as vector input: signed, unsigned and floating point.
_NUMERIC_KINDS: Final = frozenset("iuf")


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
    # Overflow to inf is caught by the finiteness check below, so numpy's warning is noise.
    with np.errstate(over="ignore"):
        vector = np.array(source, dtype=np.float32, order="C", copy=True)
    if not np.isfinite(vector).all():
        raise _VectorProblem("values must be finite (no NaN or Inf, and within float32 range)")
    if not vector.any():
        raise _VectorProblem("vector is all zeros (cosine distance is undefined)")
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
