"""Models: vector validation, column limits, timestamps, to_db(), from_record(), updates."""

from __future__ import annotations

import types
import typing
import uuid
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pydantic import AwareDatetime, Field, ValidationError

import codeatlas.models as models
from codeatlas.errors import InvalidInputError, InvalidVectorError
from codeatlas.models import (
    AnalysisStatus,
    CodebaseMetadata,
    CodebaseMetadataCreate,
    CodebaseRegistry,
    CodebaseRegistryCreate,
    CodebaseRegistryUpdate,
    ExecutionDecision,
    ExecutionOutcome,
    GitMergeHistory,
    GraphTypeName,
    MergeStatus,
    ProposalStatus,
    QualityFindingCreate,
    QualityRunCreate,
    QualityTool,
    RagDocument,
    RagDocumentCreate,
    RowModel,
    RuleExecution,
    RuleExecutionCreate,
    RuleExecutionUpdate,
    RunStatus,
    SessionStatus,
    Severity,
    TechnologyType,
    VectorSearchCreate,
    VectorSearchUpdate,
    Vote,
    validate_vector,
)
from codeatlas.models._base import _as_utc
from codeatlas.models._types import MAX_VECTOR_NORM, MIN_VECTOR_NORM

ROW_MODELS = sorted(
    (
        obj
        for obj in vars(models).values()
        if isinstance(obj, type) and issubclass(obj, RowModel) and obj is not RowModel
    ),
    key=lambda cls: cls.__table__,
)
IMMUTABLE_TABLES = {"quality_findings", "codebase_snapshots"}


def unit_vector(dim: int, *, dtype: type[np.floating[Any]] = np.float32) -> np.ndarray[Any, Any]:
    """Return a deterministic non-zero vector of *dim* values."""
    return np.linspace(-1.0, 2.0, dim, dtype=dtype)


# --- vectors -------------------------------------------------------------------------------


class TestValidateVector:
    def test_list_and_array_give_the_same_float32_array(self) -> None:
        values = [0.25 * (i % 7) - 0.5 for i in range(768)]
        from_list = validate_vector(values, 768, field="embedding")
        from_array = validate_vector(np.asarray(values), 768, field="embedding")
        for out in (from_list, from_array):
            assert out.dtype == np.float32
            assert out.ndim == 1
            assert out.flags.c_contiguous
        assert np.array_equal(from_list, from_array)

    def test_result_is_a_copy_the_caller_cannot_mutate(self) -> None:
        source = unit_vector(768)
        out = validate_vector(source, 768, field="embedding")
        source[0] = 99.0
        assert out[0] != 99.0

    def test_strided_view_becomes_contiguous(self) -> None:
        strided = unit_vector(1536)[::2]
        assert not strided.flags.c_contiguous
        out = validate_vector(strided, 768, field="embedding")
        assert out.flags.c_contiguous
        assert np.array_equal(out, strided)

    def test_integers_are_accepted(self) -> None:
        out = validate_vector([1] * 768, 768, field="embedding")
        assert out.dtype == np.float32
        assert out.sum() == 768

    def test_wrong_dimension_names_field_expected_and_received(self) -> None:
        with pytest.raises(InvalidVectorError) as info:
            validate_vector(unit_vector(767), 768, field="embedding")
        assert str(info.value) == "embedding: expected 768 dimensions, got 767"
        assert isinstance(info.value, InvalidInputError)
        assert isinstance(info.value, ValueError)

    @pytest.mark.parametrize(
        ("value", "fragment"),
        [
            (np.ones((2, 384), dtype=np.float32), "shape (2, 384)"),
            ("0.1,0.2", "got str"),
            (b"\x00" * 768, "got bytes"),
            ({i: 1.0 for i in range(768)}, "got dict"),
            ({1.0, 2.0}, "got set"),
            ([1.0] * 767 + [None], "dtype object"),
            ([True] * 768, "dtype bool"),
            ([[1.0, 2.0], [3.0]], "flat sequence"),
            (iter([1.0] * 768), "dtype object"),
            (3.5, "shape ()"),
        ],
    )
    def test_non_vectors_are_rejected(self, value: object, fragment: str) -> None:
        with pytest.raises(InvalidVectorError, match=r"^q: ") as info:
            validate_vector(value, 768, field="q")
        assert fragment in str(info.value)

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    def test_non_finite_values_are_rejected(self, bad: float) -> None:
        vector = unit_vector(768)
        vector[100] = bad
        with pytest.raises(InvalidVectorError, match="finite"):
            validate_vector(vector, 768, field="embedding")

    def test_float64_beyond_float32_range_is_rejected_without_a_warning(self) -> None:
        # pytest turns warnings into errors: numpy's overflow warning would fail this test
        vector = unit_vector(768, dtype=np.float64)
        vector[3] = 1e39
        with pytest.raises(InvalidVectorError, match="float32 range"):
            validate_vector(vector, 768, field="embedding")

    @pytest.mark.parametrize("zero", [0.0, -0.0])
    def test_zero_vector_is_rejected(self, zero: float) -> None:
        with pytest.raises(InvalidVectorError, match="all zeros"):
            validate_vector([zero] * 768, 768, field="embedding")

    def test_a_norm_that_underflows_float32_sums_is_rejected(self) -> None:
        # not all zeros, but pgvector's float32 sum of squares is 0: every row would score alike
        vector = np.zeros(768, dtype=np.float32)
        vector[767] = np.float32(1e-45)  # smallest float32 subnormal
        with pytest.raises(InvalidVectorError, match="norm"):
            validate_vector(vector, 768, field="embedding")
        with pytest.raises(InvalidVectorError, match="norm"):
            validate_vector([1e-30] * 1536, 1536, field="embedding")

    def test_a_norm_that_overflows_float32_sums_is_rejected(self) -> None:
        # every value is a finite float32, but the sum of squares is inf: NaN similarities
        with pytest.raises(InvalidVectorError, match="norm") as info:
            validate_vector([3e38] * 1536, 1536, field="embedding")
        assert str(info.value).startswith("embedding: ")

    @pytest.mark.parametrize("scale", [MIN_VECTOR_NORM * 1.01, 1.0, MAX_VECTOR_NORM * 0.99])
    def test_norms_at_the_ends_of_the_range_are_kept_exactly(self, scale: float) -> None:
        unit = np.full(768, 1 / np.sqrt(768))
        out = validate_vector(unit * scale, 768, field="embedding")
        assert np.array_equal(out, (unit * scale).astype(np.float32))

    @pytest.mark.parametrize("scale", [MIN_VECTOR_NORM * 0.99, MAX_VECTOR_NORM * 1.01])
    @pytest.mark.parametrize("dim", [768, 1536])
    def test_norms_just_outside_the_range_are_refused(self, scale: float, dim: int) -> None:
        # the one-pass check decides only vectors well inside the range: these take the
        # exact checks, whatever the float32 sum's rounding
        unit = np.full(dim, 1 / np.sqrt(dim))
        with pytest.raises(InvalidVectorError, match="norm"):
            validate_vector(unit * scale, dim, field="embedding")

    @pytest.mark.parametrize("bad", [np.nan, np.inf])
    def test_one_non_finite_value_among_tiny_ones_is_refused(self, bad: float) -> None:
        vector = np.full(768, 1e-20, dtype=np.float32)
        vector[5] = bad
        with pytest.raises(InvalidVectorError, match="finite"):
            validate_vector(vector, 768, field="embedding")

    @settings(max_examples=60, deadline=None)
    @given(
        arrays(
            np.float32,
            768,
            elements=st.floats(width=32, min_value=-(2.0**50), max_value=2.0**50),
        )
    )
    def test_float64_input_of_float32_values_round_trips_bit_exactly(
        self, original: np.ndarray[Any, Any]
    ) -> None:
        assume(np.linalg.norm(original.astype(np.float64)) >= MIN_VECTOR_NORM)
        for widened in (original.astype(np.float64), original.tolist()):
            out = validate_vector(widened, 768, field="embedding")
            assert out.dtype == np.float32
            assert np.array_equal(out.view(np.uint32), original.view(np.uint32))

    @given(st.integers(min_value=0, max_value=2048).filter(lambda n: n != 1536))
    def test_any_other_dimension_is_rejected_with_both_numbers(self, dim: int) -> None:
        with pytest.raises(InvalidVectorError) as info:
            validate_vector(np.ones(dim), 1536, field="vector_embedding")
        assert str(info.value) == f"vector_embedding: expected 1536 dimensions, got {dim}"

    @given(
        st.integers(min_value=0, max_value=767),
        st.sampled_from([np.nan, np.inf, -np.inf]),
        st.booleans(),
    )
    def test_a_non_finite_value_anywhere_is_rejected(
        self, index: int, bad: float, as_list: bool
    ) -> None:
        vector = unit_vector(768, dtype=np.float64)
        vector[index] = bad
        with pytest.raises(InvalidVectorError, match="finite"):
            validate_vector(vector.tolist() if as_list else vector, 768, field="embedding")


def vector_search_create(**overrides: Any) -> VectorSearchCreate:
    values: dict[str, Any] = {
        "codebase_id": "cb",
        "file_path": "src/app.py",
        "content_type": "function",
        "content": "def f(): ...",
        "vector_embedding": unit_vector(1536),
    }
    values.update(overrides)
    return VectorSearchCreate(**values)


class TestVectorFields:
    def test_create_stores_a_float32_array_from_a_list(self) -> None:
        created = vector_search_create(vector_embedding=unit_vector(1536).tolist())
        assert isinstance(created.vector_embedding, np.ndarray)
        assert created.vector_embedding.dtype == np.float32

    def test_wrong_dimension_raises_invalid_vector_error_not_validation_error(self) -> None:
        with pytest.raises(InvalidVectorError) as info:
            vector_search_create(vector_embedding=unit_vector(768))
        error = info.value
        assert str(error) == (
            "VectorSearchCreate: vector_embedding: expected 1536 dimensions, got 768"
        )
        assert isinstance(error.__cause__, ValidationError)
        details = error.errors  # type: ignore[attr-defined]
        assert [(d["type"], d["loc"]) for d in details] == [
            ("invalid_vector", ("vector_embedding",))
        ]
        assert "input" not in details[0]

    def test_vector_error_wins_over_other_errors(self) -> None:
        with pytest.raises(InvalidVectorError) as info:
            vector_search_create(file_path="x" * 501, vector_embedding=[0.0] * 1536)
        assert "file_path: String should have at most 500 characters" in str(info.value)
        assert "vector_embedding: vector is all zeros" in str(info.value)

    def test_model_validate_and_json_raise_typed_errors(self) -> None:
        payload = {
            "codebase_id": "cb",
            "file_path": "a.py",
            "content_type": "function",
            "content": "x",
            "vector_embedding": [float("nan")] + [1.0] * 1535,
        }
        with pytest.raises(InvalidVectorError, match="finite") as info:
            VectorSearchCreate.model_validate(payload)
        assert str(info.value).startswith("VectorSearchCreate: vector_embedding: values must")
        assert isinstance(info.value.__cause__, ValidationError)
        with pytest.raises(InvalidVectorError, match="expected 1536 dimensions, got 2"):
            VectorSearchCreate.model_validate_json(
                '{"codebase_id": "cb", "file_path": "a.py", "content_type": "f", '
                '"content": "x", "vector_embedding": [1.0, 2.0]}'
            )
        missing = {k: v for k, v in payload.items() if k != "content"}
        missing["vector_embedding"] = [1.0] * 1536
        with pytest.raises(InvalidInputError) as plain:
            VectorSearchCreate.model_validate(missing)
        assert not isinstance(plain.value, InvalidVectorError)
        assert str(plain.value) == "VectorSearchCreate: content: Field required"

    def test_assignment_is_validated(self) -> None:
        created = vector_search_create()
        with pytest.raises(InvalidVectorError, match="got 3"):
            created.vector_embedding = [1.0, 2.0, 3.0]  # type: ignore[assignment]
        created.vector_embedding = unit_vector(1536).tolist()
        assert created.vector_embedding.dtype == np.float32

    def test_model_dump_json_mode_gives_floats(self) -> None:
        dumped = vector_search_create().model_dump(mode="json")
        assert dumped["vector_embedding"] == unit_vector(1536).tolist()
        python_dump = vector_search_create().model_dump()
        assert isinstance(python_dump["vector_embedding"], np.ndarray)

    def test_json_schema_describes_the_vector_as_a_fixed_length_array(self) -> None:
        schema = VectorSearchCreate.model_json_schema()["properties"]["vector_embedding"]
        assert schema["type"] == "array"
        assert schema["minItems"] == schema["maxItems"] == 1536

    def test_equality_compares_arrays_by_value(self) -> None:
        first, second = vector_search_create(), vector_search_create()
        assert first == second
        changed = unit_vector(1536)
        changed[0] += 1
        assert first != vector_search_create(vector_embedding=changed)
        assert first != vector_search_create(content="other")
        assert first != "not a model"

    def test_repr_summarises_vectors(self) -> None:
        text = repr(vector_search_create())
        assert "vector_embedding=<float32[1536]>" in text
        assert len(text) < 300


# --- write-side limits ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "base", "field", "limit"),
    [
        (CodebaseMetadataCreate, {"codebase_id": "c", "codebase_path": "p"}, "path", 500),
        (CodebaseMetadataCreate, {"codebase_id": "c", "path": "p"}, "codebase_path", 500),
        (CodebaseRegistryCreate, {"codebase_path": "p", "codebase_name": "n"}, "codebase_id", 255),
        (QualityFindingCreate, {"run_id": 1}, "message", 255),
        (
            models.VectorSimilarityCacheCreate,
            {"codebase_id": "c", "target_file_path": "t", "similarity_score": 0.5},
            "query_vector_hash",
            64,
        ),
        (
            models.GraphNodeCreate,
            {"codebase_id": "c", "node_id": "n", "name": "x", "file_path": "f"},
            "node_type",
            100,
        ),
        (models.CodebaseMetadataUpdate, {}, "language", 50),
        (models.GitAgentSessionCreate, {"agent_id": "a"}, "workspace_path", 255),
    ],
)
def test_varchar_limits_count_characters(
    model: type[models.WriteModel], base: dict[str, Any], field: str, limit: int
) -> None:
    accepted = model(**base, **{field: "é" * limit})  # multi-byte: PG counts characters
    assert getattr(accepted, field) == "é" * limit
    with pytest.raises(InvalidInputError) as info:
        model(**base, **{field: "é" * (limit + 1)})
    assert not isinstance(info.value, InvalidVectorError)
    assert str(info.value) == (
        f"{model.__name__}: {field}: String should have at most {limit} characters"
    )


def test_varchar_array_elements_are_limited() -> None:
    with pytest.raises(InvalidInputError, match=r"file_patterns\.1: String should have at most"):
        models.TechnologyPatternCreate(
            technology_name="django",
            technology_type=TechnologyType.FRAMEWORK,
            file_patterns=["manage.py", "x" * 256],
        )


def test_integer_columns_are_range_checked() -> None:
    base = {"run_id": 2**63 - 1, "message": "m"}
    assert QualityFindingCreate(**base, line=2**31 - 1).line == 2**31 - 1
    with pytest.raises(InvalidInputError, match="line: Input should be less than or equal"):
        QualityFindingCreate(**base, line=2**31)
    with pytest.raises(InvalidInputError, match="run_id"):
        QualityFindingCreate(run_id=2**63, message="m")


def test_elixir_changeset_rule_warning_count_non_negative() -> None:
    with pytest.raises(InvalidInputError, match="warning_count"):
        QualityRunCreate(tool=QualityTool.CUSTOM, status=RunStatus.OK, warning_count=-1)


def test_unknown_fields_are_rejected_on_write() -> None:
    with pytest.raises(InvalidInputError, match="statuss: Extra inputs are not permitted"):
        CodebaseRegistryUpdate(statuss="failed")  # type: ignore[call-arg]


def test_enums_are_strict_on_write() -> None:
    assert QualityRunCreate(tool="sobelow", status="ok").tool is QualityTool.SOBELOW
    with pytest.raises(InvalidInputError, match="tool: Input should be"):
        QualityRunCreate(tool="ruff", status="ok")


# --- timestamps -----------------------------------------------------------------------------


def rule_execution_create(**overrides: Any) -> RuleExecutionCreate:
    values: dict[str, Any] = {
        "rule_id": uuid.uuid4(),
        "correlation_id": uuid.uuid4(),
        "confidence": 0.9,
        "decision": ExecutionDecision.AUTONOMOUS,
        "execution_time_ms": 12,
        "executed_at": datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
    }
    values.update(overrides)
    return RuleExecutionCreate(**values)


def test_naive_datetimes_are_rejected_on_create_update_and_assignment() -> None:
    naive = datetime(2025, 3, 1, 12, 0)
    with pytest.raises(InvalidInputError, match="executed_at: Input should have timezone info"):
        rule_execution_create(executed_at=naive)
    with pytest.raises(InvalidInputError, match="outcome_recorded_at"):
        RuleExecutionUpdate(outcome_recorded_at=naive)
    created = rule_execution_create()
    with pytest.raises(InvalidInputError, match="executed_at"):
        created.executed_at = naive


def test_required_timestamp_without_db_default_is_required() -> None:
    with pytest.raises(InvalidInputError, match="executed_at: Field required"):
        RuleExecutionCreate(
            rule_id=uuid.uuid4(),
            correlation_id=uuid.uuid4(),
            confidence=1.0,
            decision=ExecutionDecision.ESCALATED,
            execution_time_ms=1,
        )  # type: ignore[call-arg]


# --- to_db ----------------------------------------------------------------------------------


def test_to_db_gives_naive_utc_plain_strings_and_float32_arrays() -> None:
    plus_two = timezone(timedelta(hours=2))
    created = rule_execution_create(
        executed_at=datetime(2025, 3, 1, 14, 30, 5, 123456, tzinfo=plus_two),
        outcome="success",
        context={"files": ["a.py"], "nested": {"n": 1}},
    )
    row = created.to_db()
    assert row["executed_at"] == datetime(2025, 3, 1, 12, 30, 5, 123456)
    assert row["executed_at"].tzinfo is None
    assert type(row["decision"]) is str and row["decision"] == "autonomous"
    assert type(row["outcome"]) is str and row["outcome"] == "success"
    assert row["context"] == {"files": ["a.py"], "nested": {"n": 1}}
    assert isinstance(row["rule_id"], uuid.UUID)
    assert "id" not in row  # None id: the DB default applies

    vectors = vector_search_create(vector_embedding=unit_vector(1536, dtype=np.float64))
    binding = vectors.to_db()["vector_embedding"]
    assert binding.dtype == np.float32 and binding.ndim == 1 and binding.flags.c_contiguous


def test_to_db_columns_follow_declaration_order_and_keep_a_given_id() -> None:
    given_id = uuid.uuid4()
    row = rule_execution_create(id=given_id).to_db()
    assert list(row) == list(RuleExecutionCreate.model_fields)
    assert row["id"] == given_id


def test_create_defaults_match_the_database_defaults() -> None:
    metadata = CodebaseMetadataCreate(codebase_id="c", codebase_path="/r", path="a.py").to_db()
    json_columns = [name for name, value in metadata.items() if isinstance(value, list)]
    assert len(json_columns) == 15 and all(metadata[name] == [] for name in json_columns)
    assert (metadata["language"], metadata["file_type"], metadata["size"]) == (
        "unknown",
        "source",
        0,
    )
    assert metadata["vector_embedding"] is None
    registry = CodebaseRegistryCreate(codebase_id="c", codebase_path="/r", codebase_name="n")
    assert registry.to_db()["analysis_status"] == "pending"
    assert registry.to_db()["metadata"] == {}
    session = models.GitAgentSessionCreate(agent_id="a", workspace_path="/w")
    assert session.to_db()["status"] == "active"
    proposal = models.RuleEvolutionProposalCreate(
        rule_id=uuid.uuid4(),
        proposer_agent_id="agent-1",
        proposed_patterns=[{"match": "x"}],
        evolution_reasoning="fewer false positives",
    ).to_db()
    assert (proposal["status"], proposal["consensus_reached"], proposal["votes"]) == (
        "proposed",
        False,
        {},
    )


def test_default_json_containers_are_not_shared_between_instances() -> None:
    first = CodebaseMetadataCreate(codebase_id="c", codebase_path="/r", path="a.py")
    second = CodebaseMetadataCreate(codebase_id="c", codebase_path="/r", path="b.py")
    assert first.domains is not None
    first.domains.append("auth")
    assert second.domains == []


# --- updates --------------------------------------------------------------------------------


def test_update_writes_only_the_fields_that_were_set() -> None:
    update = CodebaseRegistryUpdate(analysis_status="completed", description=None)
    assert update.to_db() == {"description": None, "analysis_status": "completed"}
    update.last_analyzed = datetime(2025, 1, 1, tzinfo=UTC)
    assert update.to_db() == {
        "description": None,
        "last_analyzed": datetime(2025, 1, 1),
        "analysis_status": "completed",
    }
    assert CodebaseRegistryUpdate().to_db() == {}


def test_update_refuses_null_for_not_null_columns() -> None:
    with pytest.raises(InvalidInputError, match="codebase_name: the column is NOT NULL"):
        CodebaseRegistryUpdate(codebase_name=None)
    with pytest.raises(InvalidInputError, match="vector_embedding: the column is NOT NULL"):
        VectorSearchUpdate(vector_embedding=None)
    with pytest.raises(InvalidVectorError, match="got 2"):
        VectorSearchUpdate(vector_embedding=[1.0, 2.0])


def test_update_validates_like_create() -> None:
    update = RuleExecutionUpdate(outcome="failure")
    assert update.outcome is ExecutionOutcome.FAILURE
    with pytest.raises(InvalidInputError, match="outcome"):
        RuleExecutionUpdate(outcome="exploded")


def test_append_only_tables_have_no_update_model() -> None:
    for row in ROW_MODELS:
        has_update = hasattr(models, f"{row.__name__}Update")
        assert has_update is (row.__table__ not in IMMUTABLE_TABLES), row.__name__
        assert hasattr(models, f"{row.__name__}Create"), row.__name__


# --- from_record ----------------------------------------------------------------------------


class FakeRecord:
    """Exposes items() only, like asyncpg.Record (which is not a Mapping)."""

    def __init__(self, **values: Any) -> None:
        self._values = values

    def items(self) -> typing.Iterator[tuple[str, Any]]:
        return iter(self._values.items())


def registry_record(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": 7,
        "codebase_id": "cb",
        "codebase_path": "/repo",
        "codebase_name": "repo",
        "description": None,
        "language": "python",
        "framework": None,
        "last_analyzed": datetime(2025, 2, 3, 4, 5, 6),
        "analysis_status": "completed",
        "metadata": {"k": "v"},
        "inserted_at": datetime(2025, 1, 1, 0, 0, 0),
        "updated_at": datetime(2025, 1, 2, 0, 0, 0),
    }
    record.update(overrides)
    return record


def test_from_record_makes_naive_timestamps_aware_utc_and_maps_enums() -> None:
    row = CodebaseRegistry.from_record(FakeRecord(**registry_record()))
    assert row.last_analyzed == datetime(2025, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert row.inserted_at.tzinfo is UTC
    assert row.analysis_status is AnalysisStatus.COMPLETED
    assert row.metadata == {"k": "v"}


def test_from_record_keeps_unknown_enum_values_and_nulls() -> None:
    row = CodebaseRegistry.from_record(
        registry_record(analysis_status="queued_by_elixir", last_analyzed=None)
    )
    assert row.analysis_status == "queued_by_elixir"
    assert not isinstance(row.analysis_status, Enum)
    assert row.last_analyzed is None
    assert CodebaseRegistry.from_record(registry_record(analysis_status=None)).analysis_status is (
        None
    )


def test_from_record_keeps_aware_timestamps_and_ignores_extra_columns() -> None:
    aware = datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=-5)))
    row = CodebaseRegistry.from_record(registry_record(inserted_at=aware, distance=0.12))
    assert row.inserted_at is aware
    assert "distance" not in row.__dict__


def test_from_record_does_not_revalidate() -> None:
    # what the database holds is trusted as-is, even when a write model would refuse it
    row = CodebaseRegistry.from_record(registry_record(codebase_name="n" * 300))
    assert row.codebase_name == "n" * 300


def test_from_record_vector_absent_is_none_and_present_is_kept() -> None:
    base = {
        "id": uuid.uuid4(),
        "source_type": "doc",
        "source_id": "1",
        "content": "text",
        "metadata": {},
        "token_count": 2,
        "last_accessed": None,
        "access_count": 0,
        "inserted_at": datetime(2025, 1, 1),
        "updated_at": datetime(2025, 1, 1),
    }
    assert RagDocument.from_record(base).embedding is None
    decoded = unit_vector(768)
    row = RagDocument.from_record({**base, "embedding": decoded})
    assert row.embedding is decoded
    assert row == RagDocument.from_record({**base, "embedding": decoded.copy()})


def _constructed(row_model: type[RowModel], values: dict[str, Any]) -> RowModel:
    """The row as pydantic's model_construct builds it (what from_record must equal)."""
    values = dict(values)
    for name, convert in row_model.__record_converters__.items():
        if values.get(name) is not None:
            values[name] = convert(values[name])
    return row_model.model_construct(**values)


@pytest.mark.parametrize("row_model", ROW_MODELS, ids=lambda model: model.__name__)
def test_from_record_builds_what_model_construct_builds(row_model: type[RowModel]) -> None:
    # from_record builds rows itself (faster): the same __dict__ (order too), fields set,
    # extra and private attributes as model_construct, with every column, with some
    # missing (defaults, required ones unset), and with a computed column beside them
    names = list(row_model.model_fields)
    full: dict[str, Any] = {}
    for number, name in enumerate(names):
        converted = row_model.__record_converters__.get(name)
        full[name] = datetime(2025, 1, 1 + number % 28) if converted is _as_utc else f"v{number}"
    for values in (full, {**full, "_distance": 0.25}, {k: full[k] for k in names[::2]}, {}):
        built, expected = (
            row_model.from_record(FakeRecord(**values)),
            _constructed(row_model, values),
        )
        assert list(built.__dict__.items()) == list(expected.__dict__.items())
        assert built.model_fields_set == expected.model_fields_set
        assert built.__pydantic_extra__ == expected.__pydantic_extra__
        assert built.__pydantic_private__ == expected.__pydantic_private__
        assert built == expected
        for name, field in row_model.model_fields.items():
            if name not in values and not field.is_required():
                assert getattr(built, name) == field.get_default(call_default_factory=True)
    replaced = row_model.from_record(full, **{names[-1]: None})
    assert getattr(replaced, names[-1]) is None
    assert replaced.__dict__ == {**row_model.from_record(full).__dict__, names[-1]: None}


class _RowWithDefaults(RowModel):
    name: str
    level: int = 3
    tags: list[str] = Field(default_factory=list)


def test_a_row_model_pydantic_alone_could_build_is_refused_when_defined() -> None:
    with pytest.raises(TypeError, match="no aliases"):

        class _Aliased(RowModel):
            name: str = Field(alias="other")

    with pytest.raises(TypeError, match="post-init"):

        class _PostInit(RowModel):
            name: str

            def model_post_init(self, context: Any, /) -> None:
                pass


def test_from_record_fills_defaults_as_model_construct_does() -> None:
    # no table's row model has a default other than None today; a new one must still work
    first = _RowWithDefaults.from_record({"name": "a"})
    second = _RowWithDefaults.from_record({"name": "b"})
    assert first == _constructed(_RowWithDefaults, {"name": "a"})
    assert (first.level, first.tags, first.model_fields_set) == (3, [], {"name"})
    assert first.tags is not second.tags


def test_open_enum_validation_prefers_the_member() -> None:
    row = GitMergeHistory.model_validate(
        {
            "id": 1,
            "branch": "feature/x",
            "agent_id": None,
            "task_id": None,
            "correlation_id": None,
            "merge_commit": None,
            "status": "merged",
            "details": {},
            "inserted_at": datetime(2025, 1, 1, tzinfo=UTC),
            "updated_at": datetime(2025, 1, 1, tzinfo=UTC),
        }
    )
    assert row.status is MergeStatus.MERGED
    assert GitMergeHistory.model_validate({**row.model_dump(), "status": "rebased"}).status == (
        "rebased"
    )


def _leaves(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _leaves(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [leaf for arg in typing.get_args(annotation) for leaf in _leaves(arg)]
    return [annotation]


_OMITTED = object()


def _sample(annotation: Any) -> Any:
    """Return a plausible database value for a row field typed *annotation*."""
    first = next(leaf for leaf in _leaves(annotation) if leaf is not type(None))
    if isinstance(first, type) and issubclass(first, Enum):
        return next(iter(first)).value
    if first in (datetime, AwareDatetime):
        return datetime(2025, 6, 1, 8, 30)
    samples: dict[Any, Any] = {int: 3, float: 0.5, str: "s", bool: True, uuid.UUID: uuid.uuid4()}
    if first in samples:
        return samples[first]
    origin = typing.get_origin(first)
    if origin is np.ndarray:
        return _OMITTED  # searches leave vectors out unless asked
    if origin is list:
        return [_sample(typing.get_args(first)[0])]
    assert first is Any or origin is dict, first
    return {"k": [1, "two"]}


@pytest.mark.parametrize("row_model", ROW_MODELS, ids=lambda cls: cls.__table__)
def test_every_row_model_loads_a_record_and_agrees_with_validation(
    row_model: type[RowModel],
) -> None:
    record = {
        name: value
        for name, field in row_model.model_fields.items()
        if (value := _sample(field.annotation)) is not _OMITTED
    }
    row = row_model.from_record(record)
    assert row.__primary_key__ == "id"
    assert row.model_fields_set == set(record)
    for name, value in row.__dict__.items():
        if name not in record:
            assert value is None, name  # an absent vector
        elif isinstance(value, datetime):
            assert value == record[name].replace(tzinfo=UTC), name
        elif isinstance(value, Enum):
            assert value.value == record[name], name
        else:
            assert value is record[name], name
    # validating the same data gives an equal row: from_record built a well-typed one
    assert row_model.model_validate(row.model_dump()) == row


def test_row_models_know_their_table_and_vector_columns() -> None:
    assert CodebaseMetadata.__table__ == "codebase_metadata"
    assert RuleExecution.__table__ == "rule_executions"
    vectors = {
        row.__table__: row.__vector_columns__ for row in ROW_MODELS if row.__vector_columns__
    }
    assert vectors == {
        "codebase_metadata": {"vector_embedding": 1536},
        "graph_nodes": {"vector_embedding": 1536},
        "vector_search": {"vector_embedding": 1536},
        "rules": {"embedding": 768},
        "code_embeddings": {"embedding": 768},
        "code_locations": {"embedding": 768},
        "rag_documents": {"embedding": 768},
        "rag_queries": {"query_embedding": 768},
        "semantic_cache": {"query_embedding": 768},
    }
    assert len(ROW_MODELS) == 25
    assert len({row.__table__ for row in ROW_MODELS}) == 25


# --- enums and exports ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("enum", "values"),
    [
        (AnalysisStatus, {"pending", "analyzing", "completed", "failed"}),
        (ExecutionDecision, {"autonomous", "collaborative", "escalated"}),
        (ExecutionOutcome, {"success", "failure", "unknown"}),
        (ProposalStatus, {"proposed", "approved", "rejected", "expired"}),
        (QualityTool, {"sobelow", "mix_audit", "dialyzer", "custom"}),
        (RunStatus, {"ok", "warning", "error"}),
        (Severity, {"info", "low", "medium", "high", "critical"}),
        (MergeStatus, {"success", "conflict", "failure", "merged", "error", "unknown"}),
        (TechnologyType, {"framework", "language", "tool", "runtime"}),
        (SessionStatus, {"active", "rules", "idle", "closed"}),
        (Vote, {"approve", "reject"}),
        (GraphTypeName, {"CallGraph", "ImportGraph", "SemanticGraph", "DataFlowGraph"}),
    ],
)
def test_enum_values(enum: type[Enum], values: set[str]) -> None:
    assert {member.value for member in enum} == values


def test_all_lists_every_public_name() -> None:
    public = {
        name
        for name, obj in vars(models).items()
        if not name.startswith("_") and not isinstance(obj, types.ModuleType)
    }
    assert set(models.__all__) == public
    assert all(hasattr(models, name) for name in models.__all__)


def test_rag_document_create_round_trip_through_json() -> None:
    created = RagDocumentCreate(
        source_type="doc", source_id="1", content="c", embedding=unit_vector(768)
    )
    again = RagDocumentCreate.model_validate_json(created.model_dump_json())
    assert again == created
