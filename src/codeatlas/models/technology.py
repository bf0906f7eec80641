"""technology_patterns (detection signatures) and technology_templates (generation)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, Field

from ._base import CreateModel, RowModel, UpdateModel
from ._table import TableSpec
from ._types import Int32, NonNull, OpenEnum, Str255

__all__ = [
    "TechnologyPattern",
    "TechnologyPatternCreate",
    "TechnologyPatternUpdate",
    "TechnologyTemplate",
    "TechnologyTemplateCreate",
    "TechnologyTemplateUpdate",
    "TechnologyType",
]


class TechnologyType(StrEnum):
    """technology_patterns.technology_type (the values of the Elixir migration's comment)."""

    FRAMEWORK = "framework"
    LANGUAGE = "language"
    TOOL = "tool"
    RUNTIME = "runtime"


class TechnologyPattern(RowModel):
    """A technology_patterns row: how to detect a technology and how to build/test it."""

    __table_spec__ = TableSpec(
        "technology_patterns",
        natural_key=("technology_name", "technology_type"),
    )

    id: int
    technology_name: str
    technology_type: OpenEnum[TechnologyType]
    version_pattern: str | None
    file_patterns: list[str] | None
    directory_patterns: list[str] | None
    config_files: list[str] | None
    build_command: str | None
    dev_command: str | None
    install_command: str | None
    test_command: str | None
    output_directory: str | None
    confidence_weight: float | None
    detection_count: int | None
    success_rate: float | None
    last_detected_at: AwareDatetime | None
    extended_metadata: dict[str, Any] | None
    created_at: AwareDatetime | None
    updated_at: AwareDatetime | None


class TechnologyPatternCreate(CreateModel):
    """A technology_patterns row to insert."""

    technology_name: Str255
    technology_type: TechnologyType
    version_pattern: Str255 | None = None
    file_patterns: list[Str255] | None = Field(default_factory=list)
    directory_patterns: list[Str255] | None = Field(default_factory=list)
    config_files: list[Str255] | None = Field(default_factory=list)
    build_command: Str255 | None = None
    dev_command: Str255 | None = None
    install_command: Str255 | None = None
    test_command: Str255 | None = None
    output_directory: Str255 | None = None
    confidence_weight: float | None = 1.0
    detection_count: Int32 | None = 0
    success_rate: float | None = 1.0
    last_detected_at: AwareDatetime | None = None
    extended_metadata: dict[str, Any] | None = None


class TechnologyPatternUpdate(UpdateModel):
    """A partial update of a technology_patterns row."""

    technology_name: NonNull[Str255] = None
    technology_type: NonNull[TechnologyType] = None
    version_pattern: Str255 | None = None
    file_patterns: list[Str255] | None = None
    directory_patterns: list[Str255] | None = None
    config_files: list[Str255] | None = None
    build_command: Str255 | None = None
    dev_command: Str255 | None = None
    install_command: Str255 | None = None
    test_command: Str255 | None = None
    output_directory: Str255 | None = None
    confidence_weight: float | None = None
    detection_count: Int32 | None = None
    success_rate: float | None = None
    last_detected_at: AwareDatetime | None = None
    extended_metadata: dict[str, Any] | None = None


class TechnologyTemplate(RowModel):
    """A technology_templates row: a versioned code-generation template (a JSON object)."""

    __table_spec__ = TableSpec("technology_templates", natural_key=("identifier",))

    id: int
    identifier: str
    category: str
    version: str | None
    source: str | None
    template: dict[str, Any]
    metadata: dict[str, Any] | None
    checksum: str | None
    inserted_at: AwareDatetime
    updated_at: AwareDatetime


class TechnologyTemplateCreate(CreateModel):
    """A technology_templates row to insert (``template`` must be a JSON object)."""

    identifier: Str255
    category: Str255
    version: Str255 | None = None
    source: Str255 | None = None
    template: dict[str, Any]
    metadata: dict[str, Any] | None = Field(default_factory=dict)
    checksum: Str255 | None = None


class TechnologyTemplateUpdate(UpdateModel):
    """A partial update of a technology_templates row."""

    identifier: NonNull[Str255] = None
    category: NonNull[Str255] = None
    version: Str255 | None = None
    source: Str255 | None = None
    template: NonNull[dict[str, Any]] = None
    metadata: dict[str, Any] | None = None
    checksum: Str255 | None = None
