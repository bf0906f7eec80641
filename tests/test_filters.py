"""The where-filter compiler: SQL shape, bound parameters, and rejection of bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeatlas.errors import InvalidFilterError
from codeatlas.filters import Contains, NotNull, Range, compile_where
from codeatlas.models import AnalysisStatus

ALLOWED = frozenset({"codebase_id", "size", "language", "metadata", "inserted_at"})
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
#: text PostgreSQL can store: no NUL, no lone surrogates
STORABLE_TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)))


def test_each_condition_kind_compiles_to_bound_sql() -> None:
    since = datetime(2025, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    clauses, params = compile_where(
        {
            "codebase_id": "atlas",
            "language": ["python", "rust"],
            "size": Range(ge=10, lt=100),
            "metadata": Contains({"kind": "test"}),
            "inserted_at": Range(gt=since),
        },
        ALLOWED,
        first_param=3,
    )
    assert clauses == [
        "codebase_id = $3",
        "language = ANY($4)",
        "size >= $5",
        "size < $6",
        "metadata @> $7",
        "inserted_at > $8",
    ]
    # aware datetimes are bound as naive UTC, as the columns store them
    assert params == [
        "atlas",
        ["python", "rust"],
        10,
        100,
        {"kind": "test"},
        datetime(2025, 1, 1, 10),
    ]


def test_none_not_null_empty_list_enum_and_alias() -> None:
    clauses, params = compile_where(
        {
            "codebase_id": None,
            "size": NotNull(),
            "language": [],
            "metadata": AnalysisStatus.PENDING,
        },
        ALLOWED,
        alias="t.",
    )
    assert clauses == ["t.codebase_id IS NULL", "t.size IS NOT NULL", "false", "t.metadata = $1"]
    assert params == ["pending"]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ({"password": "x"}, "cannot filter on 'password'"),
        ({"codebase_id; DROP TABLE x": 1}, "cannot filter on"),
        ({"metadata": {"a": 1}}, "Contains"),
        ("codebase_id = 1", "mapping"),
        ({"inserted_at": datetime(2025, 1, 1)}, "timezone-aware"),
    ],
)
def test_bad_filters_are_rejected_before_sql(where: object, message: str) -> None:
    with pytest.raises(InvalidFilterError, match=message):
        compile_where(where, ALLOWED)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "build",
    [
        lambda: Range(),
        lambda: Range(gt=1, ge=1),
        lambda: Range(lt=1, le=2),
        lambda: Range(ge="a"),
        lambda: Range(ge=True),
        lambda: Range(ge=datetime(2025, 1, 1)),
    ],
)
def test_malformed_ranges_are_rejected(build: object) -> None:
    with pytest.raises(InvalidFilterError):
        build()  # type: ignore[operator]


@given(
    st.dictionaries(
        st.sampled_from(sorted(ALLOWED)),
        st.one_of(
            INT64,
            STORABLE_TEXT,
            st.lists(INT64, max_size=5),
            st.builds(Range, ge=INT64, lt=INT64),
            st.none(),
        ),
        max_size=5,
    ),
    st.integers(min_value=1, max_value=50),
)
def test_parameters_are_numbered_densely_from_first_param(
    where: dict[str, object], first: int
) -> None:
    clauses, params = compile_where(where, ALLOWED, first_param=first)
    referenced = sorted(
        int(token[1:].rstrip(")"))
        for clause in clauses
        for token in clause.replace("(", " ").split()
        if token.startswith("$")
    )
    assert referenced == list(range(first, first + len(params)))
    # every caller value travels as a parameter, none as SQL text
    for value in where.values():
        if isinstance(value, str | int) and not isinstance(value, bool):
            assert value in params


def test_utc_conversion_keeps_the_instant() -> None:
    instant = datetime(2025, 6, 1, 0, 30, tzinfo=UTC)
    _, params = compile_where({"inserted_at": Range(le=instant)}, ALLOWED)
    assert params == [datetime(2025, 6, 1, 0, 30)]
