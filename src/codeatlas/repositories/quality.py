"""``atlas.quality``: quality tool runs and their immutable findings."""

from __future__ import annotations

from .._db import Executor
from ..models import (
    QualityFinding,
    QualityFindingCreate,
    QualityRun,
    QualityRunCreate,
    QualityRunUpdate,
)
from ..models._base import UpdateModel
from ._base import Repository

__all__ = ["QualityFindingsRepository", "QualityRepository"]


class QualityFindingsRepository(Repository[QualityFinding, QualityFindingCreate, UpdateModel]):
    """``atlas.quality.findings``: append-only findings of a run."""

    table = "quality_findings"
    row_model = QualityFinding
    create_model = QualityFindingCreate


class QualityRepository(Repository[QualityRun, QualityRunCreate, QualityRunUpdate]):
    """Quality runs, with their findings as ``.findings``."""

    table = "quality_runs"
    row_model = QualityRun
    create_model = QualityRunCreate
    update_model = QualityRunUpdate

    def __init__(self, executor: Executor) -> None:
        super().__init__(executor)
        self.findings = QualityFindingsRepository(executor)
