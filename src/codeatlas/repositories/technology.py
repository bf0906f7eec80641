"""``atlas.technology``: technology detection patterns and project templates."""

from __future__ import annotations

from .._db import Executor
from ..models import (
    TechnologyPattern,
    TechnologyPatternCreate,
    TechnologyPatternUpdate,
    TechnologyTemplate,
    TechnologyTemplateCreate,
    TechnologyTemplateUpdate,
)
from ._base import Repository

__all__ = ["TechnologyRepository", "TechnologyTemplatesRepository"]


class TechnologyTemplatesRepository(
    Repository[TechnologyTemplate, TechnologyTemplateCreate, TechnologyTemplateUpdate]
):
    """``atlas.technology.templates``: templates keyed by ``identifier``."""

    table = "technology_templates"
    row_model = TechnologyTemplate
    create_model = TechnologyTemplateCreate
    update_model = TechnologyTemplateUpdate
    natural_key = ("identifier",)


class TechnologyRepository(
    Repository[TechnologyPattern, TechnologyPatternCreate, TechnologyPatternUpdate]
):
    """Technology patterns keyed by (technology_name, technology_type), with ``.templates``."""

    table = "technology_patterns"
    row_model = TechnologyPattern
    create_model = TechnologyPatternCreate
    update_model = TechnologyPatternUpdate
    natural_key = ("technology_name", "technology_type")

    def __init__(self, executor: Executor) -> None:
        super().__init__(executor)
        self.templates = TechnologyTemplatesRepository(executor)
