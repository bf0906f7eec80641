"""``atlas.code``: code files, their embedded chunks (768-d) and symbol locations (768-d)."""

from __future__ import annotations

from .._db import Executor
from ..models import (
    CodeEmbedding,
    CodeEmbeddingCreate,
    CodeEmbeddingUpdate,
    CodeFile,
    CodeFileCreate,
    CodeFileUpdate,
    CodeLocation,
    CodeLocationCreate,
    CodeLocationUpdate,
)
from ..search import SearchableRepository
from ._base import Repository

__all__ = [
    "CodeEmbeddingsRepository",
    "CodeFilesRepository",
    "CodeLocationsRepository",
    "CodeRepository",
]


class CodeFilesRepository(Repository[CodeFile, CodeFileCreate, CodeFileUpdate]):
    """``atlas.code.files``: source files keyed by (project_name, file_path)."""

    table = "code_files"
    row_model = CodeFile
    create_model = CodeFileCreate
    update_model = CodeFileUpdate
    natural_key = ("project_name", "file_path")


class CodeEmbeddingsRepository(
    SearchableRepository[CodeEmbedding, CodeEmbeddingCreate, CodeEmbeddingUpdate]
):
    """``atlas.code.embeddings``: a file's chunks with their embeddings."""

    table = "code_embeddings"
    row_model = CodeEmbedding
    create_model = CodeEmbeddingCreate
    update_model = CodeEmbeddingUpdate
    vector_column = "embedding"
    dimensions = 768
    vector_index = "idx_code_embeddings_embedding_vector"


class CodeLocationsRepository(
    SearchableRepository[CodeLocation, CodeLocationCreate, CodeLocationUpdate]
):
    """``atlas.code.locations``: symbol locations (functions, classes, ...) per file."""

    table = "code_locations"
    row_model = CodeLocation
    create_model = CodeLocationCreate
    update_model = CodeLocationUpdate
    vector_column = "embedding"
    dimensions = 768
    vector_index = "idx_code_locations_embedding_vector"


class CodeRepository:
    """Code per project: ``.files``, ``.embeddings`` and ``.locations``."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self.files = CodeFilesRepository(executor)
        self.embeddings = CodeEmbeddingsRepository(executor)
        self.locations = CodeLocationsRepository(executor)
