"""``atlas.vector_search``: embedded pieces of content per file (vector_search, 1536-d)."""

from __future__ import annotations

from ..models import VectorSearch, VectorSearchCreate, VectorSearchUpdate
from ..search import SearchableRepository

__all__ = ["VectorSearchRepository"]


class VectorSearchRepository(
    SearchableRepository[VectorSearch, VectorSearchCreate, VectorSearchUpdate]
):
    """Content chunks with their 1536-d embeddings, upserted by (codebase_id, file_path,
    content_type)."""

    table = "vector_search"
    row_model = VectorSearch
    create_model = VectorSearchCreate
    update_model = VectorSearchUpdate
    natural_key = ("codebase_id", "file_path", "content_type")
    vector_column = "vector_embedding"
    dimensions = 1536
    vector_index = "idx_vector_search_embedding"
