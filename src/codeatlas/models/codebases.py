"""codebase_metadata (per-file metrics, 1536-d embedding) and codebase_registry."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, Field

from ._base import CreateModel, RowModel, UpdateModel
from ._table import TableSpec
from ._types import Int32, Int64, NonNull, OpenEnum, Str50, Str100, Str255, Str500, Vector1536

__all__ = [
    "AnalysisStatus",
    "CodebaseMetadata",
    "CodebaseMetadataCreate",
    "CodebaseMetadataUpdate",
    "CodebaseRegistry",
    "CodebaseRegistryCreate",
    "CodebaseRegistryUpdate",
]


class AnalysisStatus(StrEnum):
    """codebase_registry.analysis_status.

    The Elixir source names only the default, ``pending``; ``analyzing``, ``completed`` and
    ``failed`` are added for the Python agent service. All fit varchar(50).
    """

    PENDING = "pending"
    ANALYZING = "analyzing"
    COMPLETED = "completed"
    FAILED = "failed"


class CodebaseMetadata(RowModel):
    """A codebase_metadata row: one analysed file of a codebase."""

    __table_spec__ = TableSpec(
        "codebase_metadata",
        natural_key=("codebase_id", "path"),
        vector_index="idx_codebase_metadata_vector",
        text_index="idx_codebase_metadata_search_tsv",
    )

    id: int
    codebase_id: str
    codebase_path: str
    path: str
    size: int
    lines: int
    language: str
    last_modified: int
    file_type: str
    cyclomatic_complexity: float
    cognitive_complexity: float
    maintainability_index: float
    nesting_depth: int
    function_count: int
    class_count: int
    struct_count: int
    enum_count: int
    trait_count: int
    interface_count: int
    total_lines: int
    code_lines: int
    comment_lines: int
    blank_lines: int
    halstead_vocabulary: int
    halstead_length: int
    halstead_volume: float
    halstead_difficulty: float
    halstead_effort: float
    pagerank_score: float
    centrality_score: float
    dependency_count: int
    dependent_count: int
    technical_debt_ratio: float
    code_smells_count: int
    duplication_percentage: float
    security_score: float
    vulnerability_count: int
    quality_score: float
    test_coverage: float
    documentation_coverage: float
    domains: list[Any] | None
    patterns: list[Any] | None
    features: list[Any] | None
    business_context: list[Any] | None
    performance_characteristics: list[Any] | None
    security_characteristics: list[Any] | None
    dependencies: list[Any] | None
    related_files: list[Any] | None
    imports: list[Any] | None
    exports: list[Any] | None
    functions: list[Any] | None
    classes: list[Any] | None
    structs: list[Any] | None
    enums: list[Any] | None
    traits: list[Any] | None
    vector_embedding: Vector1536 | None = None
    inserted_at: AwareDatetime
    updated_at: AwareDatetime


class CodebaseMetadataCreate(CreateModel):
    """A codebase_metadata row to insert (the 15 JSONB columns default to ``[]``)."""

    codebase_id: Str255
    codebase_path: Str500
    path: Str500
    size: Int64 = 0
    lines: Int32 = 0
    language: Str50 = "unknown"
    last_modified: Int64 = 0
    file_type: Str50 = "source"
    cyclomatic_complexity: float = 0.0
    cognitive_complexity: float = 0.0
    maintainability_index: float = 0.0
    nesting_depth: Int32 = 0
    function_count: Int32 = 0
    class_count: Int32 = 0
    struct_count: Int32 = 0
    enum_count: Int32 = 0
    trait_count: Int32 = 0
    interface_count: Int32 = 0
    total_lines: Int32 = 0
    code_lines: Int32 = 0
    comment_lines: Int32 = 0
    blank_lines: Int32 = 0
    halstead_vocabulary: Int32 = 0
    halstead_length: Int32 = 0
    halstead_volume: float = 0.0
    halstead_difficulty: float = 0.0
    halstead_effort: float = 0.0
    pagerank_score: float = 0.0
    centrality_score: float = 0.0
    dependency_count: Int32 = 0
    dependent_count: Int32 = 0
    technical_debt_ratio: float = 0.0
    code_smells_count: Int32 = 0
    duplication_percentage: float = 0.0
    security_score: float = 0.0
    vulnerability_count: Int32 = 0
    quality_score: float = 0.0
    test_coverage: float = 0.0
    documentation_coverage: float = 0.0
    domains: list[Any] | None = Field(default_factory=list)
    patterns: list[Any] | None = Field(default_factory=list)
    features: list[Any] | None = Field(default_factory=list)
    business_context: list[Any] | None = Field(default_factory=list)
    performance_characteristics: list[Any] | None = Field(default_factory=list)
    security_characteristics: list[Any] | None = Field(default_factory=list)
    dependencies: list[Any] | None = Field(default_factory=list)
    related_files: list[Any] | None = Field(default_factory=list)
    imports: list[Any] | None = Field(default_factory=list)
    exports: list[Any] | None = Field(default_factory=list)
    functions: list[Any] | None = Field(default_factory=list)
    classes: list[Any] | None = Field(default_factory=list)
    structs: list[Any] | None = Field(default_factory=list)
    enums: list[Any] | None = Field(default_factory=list)
    traits: list[Any] | None = Field(default_factory=list)
    vector_embedding: Vector1536 | None = None


class CodebaseMetadataUpdate(UpdateModel):
    """A partial update of a codebase_metadata row."""

    codebase_id: NonNull[Str255] = None
    codebase_path: NonNull[Str500] = None
    path: NonNull[Str500] = None
    size: NonNull[Int64] = None
    lines: NonNull[Int32] = None
    language: NonNull[Str50] = None
    last_modified: NonNull[Int64] = None
    file_type: NonNull[Str50] = None
    cyclomatic_complexity: NonNull[float] = None
    cognitive_complexity: NonNull[float] = None
    maintainability_index: NonNull[float] = None
    nesting_depth: NonNull[Int32] = None
    function_count: NonNull[Int32] = None
    class_count: NonNull[Int32] = None
    struct_count: NonNull[Int32] = None
    enum_count: NonNull[Int32] = None
    trait_count: NonNull[Int32] = None
    interface_count: NonNull[Int32] = None
    total_lines: NonNull[Int32] = None
    code_lines: NonNull[Int32] = None
    comment_lines: NonNull[Int32] = None
    blank_lines: NonNull[Int32] = None
    halstead_vocabulary: NonNull[Int32] = None
    halstead_length: NonNull[Int32] = None
    halstead_volume: NonNull[float] = None
    halstead_difficulty: NonNull[float] = None
    halstead_effort: NonNull[float] = None
    pagerank_score: NonNull[float] = None
    centrality_score: NonNull[float] = None
    dependency_count: NonNull[Int32] = None
    dependent_count: NonNull[Int32] = None
    technical_debt_ratio: NonNull[float] = None
    code_smells_count: NonNull[Int32] = None
    duplication_percentage: NonNull[float] = None
    security_score: NonNull[float] = None
    vulnerability_count: NonNull[Int32] = None
    quality_score: NonNull[float] = None
    test_coverage: NonNull[float] = None
    documentation_coverage: NonNull[float] = None
    domains: list[Any] | None = None
    patterns: list[Any] | None = None
    features: list[Any] | None = None
    business_context: list[Any] | None = None
    performance_characteristics: list[Any] | None = None
    security_characteristics: list[Any] | None = None
    dependencies: list[Any] | None = None
    related_files: list[Any] | None = None
    imports: list[Any] | None = None
    exports: list[Any] | None = None
    functions: list[Any] | None = None
    classes: list[Any] | None = None
    structs: list[Any] | None = None
    enums: list[Any] | None = None
    traits: list[Any] | None = None
    vector_embedding: Vector1536 | None = None


class CodebaseRegistry(RowModel):
    """A codebase_registry row: one registered codebase."""

    __table_spec__ = TableSpec("codebase_registry", natural_key=("codebase_id",))

    id: int
    codebase_id: str
    codebase_path: str
    codebase_name: str
    description: str | None
    language: str | None
    framework: str | None
    last_analyzed: AwareDatetime | None
    analysis_status: OpenEnum[AnalysisStatus] | None
    metadata: dict[str, Any] | None
    inserted_at: AwareDatetime
    updated_at: AwareDatetime


class CodebaseRegistryCreate(CreateModel):
    """A codebase_registry row to insert."""

    codebase_id: Str255
    codebase_path: Str500
    codebase_name: Str255
    description: str | None = None
    language: Str50 | None = None
    framework: Str100 | None = None
    last_analyzed: AwareDatetime | None = None
    analysis_status: AnalysisStatus | None = AnalysisStatus.PENDING
    metadata: dict[str, Any] | None = Field(default_factory=dict)


class CodebaseRegistryUpdate(UpdateModel):
    """A partial update of a codebase_registry row."""

    codebase_id: NonNull[Str255] = None
    codebase_path: NonNull[Str500] = None
    codebase_name: NonNull[Str255] = None
    description: str | None = None
    language: Str50 | None = None
    framework: Str100 | None = None
    last_analyzed: AwareDatetime | None = None
    analysis_status: AnalysisStatus | None = None
    metadata: dict[str, Any] | None = None
