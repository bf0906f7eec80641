"""``atlas.rag``: RAG documents (768-d), queries (768-d) and feedback."""

from __future__ import annotations

from .._db import Executor
from ..models import (
    RagDocument,
    RagDocumentCreate,
    RagDocumentUpdate,
    RagFeedback,
    RagFeedbackCreate,
    RagFeedbackUpdate,
    RagQuery,
    RagQueryCreate,
    RagQueryUpdate,
)
from ..search import SearchableRepository
from ._base import Repository

__all__ = [
    "RagDocumentsRepository",
    "RagFeedbackRepository",
    "RagQueriesRepository",
    "RagRepository",
]


class RagDocumentsRepository(
    SearchableRepository[RagDocument, RagDocumentCreate, RagDocumentUpdate]
):
    """``atlas.rag.documents``: documents keyed by (source_type, source_id)."""

    table = "rag_documents"
    row_model = RagDocument
    create_model = RagDocumentCreate
    update_model = RagDocumentUpdate
    natural_key = ("source_type", "source_id")
    vector_column = "embedding"
    dimensions = 768
    vector_index = "idx_rag_documents_embedding_vector"


class RagQueriesRepository(SearchableRepository[RagQuery, RagQueryCreate, RagQueryUpdate]):
    """``atlas.rag.queries``: questions asked, with the documents returned."""

    table = "rag_queries"
    row_model = RagQuery
    create_model = RagQueryCreate
    update_model = RagQueryUpdate
    vector_column = "query_embedding"
    dimensions = 768
    vector_index = "idx_rag_queries_query_embedding_vector"


class RagFeedbackRepository(Repository[RagFeedback, RagFeedbackCreate, RagFeedbackUpdate]):
    """``atlas.rag.feedback``: relevance feedback on a query's documents."""

    table = "rag_feedback"
    row_model = RagFeedback
    create_model = RagFeedbackCreate
    update_model = RagFeedbackUpdate


class RagRepository:
    """Retrieval-augmented generation: ``.documents``, ``.queries`` and ``.feedback``."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self.documents = RagDocumentsRepository(executor)
        self.queries = RagQueriesRepository(executor)
        self.feedback = RagFeedbackRepository(executor)
