"""quality_runs and quality_findings (findings are append-only: no Update model)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, Field

from ._base import CreateModel, RowModel, UpdateModel
from ._table import TableSpec
from ._types import Int32, Int64, NonNull, OpenEnum, Str255

__all__ = [
    "QualityFinding",
    "QualityFindingCreate",
    "QualityRun",
    "QualityRunCreate",
    "QualityRunUpdate",
    "QualityTool",
    "RunStatus",
    "Severity",
]


class QualityTool(StrEnum):
    """quality_runs.tool: exactly the Elixir ``Ecto.Enum`` values.

    Deliberately no ``ruff``/``mypy``/``pytest``: the Elixir app loads this column through
    ``Ecto.Enum``, which fails on values it does not list, so a Python-only tool name would
    break every Elixir read of the row. Record other tools as ``CUSTOM`` and name the real
    tool in ``metadata["tool"]``.
    """

    SOBELOW = "sobelow"
    MIX_AUDIT = "mix_audit"
    DIALYZER = "dialyzer"
    CUSTOM = "custom"


class RunStatus(StrEnum):
    """quality_runs.status: exactly the Elixir ``Ecto.Enum`` values (same reason as tools)."""

    OK = "ok"
    WARNING = "warning"
    ERROR = "error"


class Severity(StrEnum):
    """quality_findings.severity: the vulnerability-scale levels.

    The Elixir schema leaves severity free text. This scale is the one mix_audit advisories
    (CVSS) and sobelow confidence levels use, and Python scanners (bandit, pip-audit) map
    onto it; error/warning/info would only repeat the run-level RunStatus.
    """

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class QualityRun(RowModel):
    """A quality_runs row: one execution of a quality tool."""

    __table_spec__ = TableSpec("quality_runs")

    id: int
    tool: OpenEnum[QualityTool]
    status: OpenEnum[RunStatus]
    warning_count: int
    metadata: dict[str, Any] | None
    started_at: AwareDatetime | None
    finished_at: AwareDatetime | None
    inserted_at: AwareDatetime
    updated_at: AwareDatetime


class QualityRunCreate(CreateModel):
    """A quality_runs row to insert."""

    tool: QualityTool
    status: RunStatus
    # the Elixir changeset requires warning_count >= 0
    warning_count: Annotated[Int32, Field(ge=0)] = 0
    metadata: dict[str, Any] | None = Field(default_factory=dict)
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None


class QualityRunUpdate(UpdateModel):
    """A partial update of a quality_runs row."""

    tool: NonNull[QualityTool] = None
    status: NonNull[RunStatus] = None
    warning_count: NonNull[Annotated[Int32, Field(ge=0)]] = None
    metadata: dict[str, Any] | None = None
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None


class QualityFinding(RowModel):
    """A quality_findings row: one finding of a run (immutable once written)."""

    __table_spec__ = TableSpec("quality_findings")

    id: int
    run_id: int
    category: str | None
    message: str
    file: str | None
    line: int | None
    severity: OpenEnum[Severity] | None
    extra: dict[str, Any] | None
    inserted_at: AwareDatetime


class QualityFindingCreate(CreateModel):
    """A quality_findings row to insert (``message`` is varchar(255): truncate long text)."""

    run_id: Int64
    category: Str255 | None = None
    message: Str255
    file: Str255 | None = None
    line: Int32 | None = None
    severity: Severity | None = None
    extra: dict[str, Any] | None = Field(default_factory=dict)
