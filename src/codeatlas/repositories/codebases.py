"""``atlas.codebases``: the codebase registry and per-file metadata (codebase_metadata, 1536-d)."""

from __future__ import annotations

from .._db import Executor
from ..models import (
    CodebaseMetadata,
    CodebaseMetadataCreate,
    CodebaseMetadataUpdate,
    CodebaseRegistry,
    CodebaseRegistryCreate,
    CodebaseRegistryUpdate,
)
from ..search import SearchableRepository
from ._base import Repository

__all__ = ["CodebaseRegistryRepository", "CodebasesRepository"]


class CodebaseRegistryRepository(
    Repository[CodebaseRegistry, CodebaseRegistryCreate, CodebaseRegistryUpdate]
):
    """``atlas.codebases.registry``: one row per codebase, keyed by ``codebase_id``."""

    table = "codebase_registry"
    row_model = CodebaseRegistry
    create_model = CodebaseRegistryCreate
    update_model = CodebaseRegistryUpdate
    natural_key = ("codebase_id",)


class CodebasesRepository(
    SearchableRepository[CodebaseMetadata, CodebaseMetadataCreate, CodebaseMetadataUpdate]
):
    """File metadata of every codebase (searchable), with the registry as ``.registry``."""

    table = "codebase_metadata"
    row_model = CodebaseMetadata
    create_model = CodebaseMetadataCreate
    update_model = CodebaseMetadataUpdate
    natural_key = ("codebase_id", "path")
    vector_column = "vector_embedding"
    dimensions = 1536
    vector_index = "idx_codebase_metadata_vector"

    def __init__(self, executor: Executor) -> None:
        super().__init__(executor)
        self.registry = CodebaseRegistryRepository(executor)
