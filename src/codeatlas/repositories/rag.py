"""``atlas.rag``: RAG documents (768-d), queries (768-d) and feedback."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

import numpy as np
import numpy.typing as npt

from .._db import Executor
from ..errors import InvalidInputError
from ..filters import Where
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
from ..search import Match, SearchableRepository
from ..text_search import TextSearchableRepository
from ._base import Repository

__all__ = [
    "DocumentFeedback",
    "RagFeedbackRepository",
    "RagQueriesRepository",
    "RagRepository",
]

# Reading a document is not editing it: updated_at stays as it was.
_TOUCH: Final = """
UPDATE rag_documents
   SET access_count = coalesce(access_count, 0) + 1,
       last_accessed = (now() AT TIME ZONE 'utc')
 WHERE id = ANY ($1::uuid[])
RETURNING id, access_count, last_accessed"""
_DOCUMENT_FEEDBACK: Final = """
SELECT count(*) AS count,
       avg(relevance_score)::float8 AS mean_relevance,
       avg(user_rating)::float8 AS mean_rating
  FROM rag_feedback
 WHERE document_id = $1"""


@dataclass(frozen=True, slots=True)
class DocumentFeedback:
    """Feedback on one document: how much, and its means (None when nothing was rated)."""

    count: int
    mean_relevance: float | None
    mean_rating: float | None


def _accessed(document: RagDocument, counts: Mapping[str, Any]) -> RagDocument:
    # from_record converts the naive UTC timestamp the way every row read does
    return RagDocument.from_record({**document.__dict__, **dict(counts.items())})


class RagQueriesRepository(SearchableRepository[RagQuery, RagQueryCreate, RagQueryUpdate]):
    """``atlas.rag.queries``: questions asked, with the documents returned."""

    row_model = RagQuery
    create_model = RagQueryCreate
    update_model = RagQueryUpdate


class RagFeedbackRepository(Repository[RagFeedback, RagFeedbackCreate, RagFeedbackUpdate]):
    """``atlas.rag.feedback``: relevance feedback on a query's documents."""

    row_model = RagFeedback
    create_model = RagFeedbackCreate
    update_model = RagFeedbackUpdate

    async def add(
        self,
        query_id: UUID,
        document_id: UUID,
        relevance_score: float | None = None,
        user_rating: int | None = None,
    ) -> RagFeedback:
        """Record feedback on *document_id* as an answer to *query_id*.

        Raises ForeignKeyViolationError if the query or the document does not exist.
        """
        return await self.insert(
            RagFeedbackCreate(
                query_id=query_id,
                document_id=document_id,
                relevance_score=relevance_score,
                user_rating=user_rating,
            )
        )

    async def document_feedback(self, document_id: UUID) -> DocumentFeedback:
        """Return how much feedback *document_id* received and its mean relevance and rating."""
        document_id = self._value("document_id", document_id)
        record = await self._executor.fetchrow(_DOCUMENT_FEEDBACK, document_id)
        assert record is not None  # an aggregate always returns a row
        return DocumentFeedback(
            count=int(record["count"]),
            mean_relevance=record["mean_relevance"],
            mean_rating=record["mean_rating"],
        )


class RagRepository(TextSearchableRepository[RagDocument, RagDocumentCreate, RagDocumentUpdate]):
    """``atlas.rag``: documents keyed by (source_type, source_id), with the questions asked
    (``.queries``) and the feedback on answers (``.feedback``)."""

    row_model = RagDocument
    create_model = RagDocumentCreate
    update_model = RagDocumentUpdate

    def __init__(self, executor: Executor) -> None:
        super().__init__(executor)
        self.queries = RagQueriesRepository(executor)
        self.feedback = RagFeedbackRepository(executor)

    async def touch(self, ids: Iterable[UUID]) -> int:
        """Count one access of each document in *ids*; return how many of them exist.

        One statement increments access_count and sets last_accessed; updated_at is kept.
        """
        return len(await self._touch(ids))

    async def _touch(self, ids: Iterable[UUID]) -> builtins.list[Any]:
        if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
            raise InvalidInputError(f"ids must be a collection of UUIDs, got {type(ids).__name__}")
        wanted = builtins.list(dict.fromkeys(self._key(key) for key in ids))
        if not wanted:
            return []
        return await self._executor.fetch(_TOUCH, wanted)

    async def retrieve(
        self,
        embedding: Sequence[float] | npt.NDArray[np.floating[Any]],
        k: int = 5,
        *,
        where: Where | None = None,
        min_similarity: float | None = None,
    ) -> builtins.list[Match[RagDocument]]:
        """Return the *k* documents nearest to *embedding* and count an access of each.

        The returned rows carry the access counts and times after this access.
        """
        async with self._executor.transaction() as tx:
            scoped = RagRepository(tx)
            matches = await scoped.search_similar(
                embedding, k, where=where, min_similarity=min_similarity
            )
            touched = {r["id"]: r for r in await scoped._touch(m.item.id for m in matches)}
        return [
            Match(_accessed(match.item, touched[match.item.id]), match.similarity)
            if match.item.id in touched
            else match
            for match in matches
        ]

    async def record_query(
        self,
        query_text: str,
        *,
        query_embedding: Sequence[float] | npt.NDArray[np.floating[Any]] | None = None,
        result_ids: Sequence[UUID] = (),
        response: str | None = None,
        model_used: str | None = None,
        tokens_used: int | None = None,
        latency_ms: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> RagQuery:
        """Record a question, the documents retrieved for it and the answer; return the row."""
        return await self.queries.insert(
            RagQueryCreate(
                query_text=query_text,
                query_embedding=query_embedding,
                result_ids=builtins.list(result_ids)
                if isinstance(result_ids, Iterable) and not isinstance(result_ids, str)
                else result_ids,
                response=response,
                model_used=model_used,
                tokens_used=tokens_used,
                latency_ms=latency_ms,
                metadata={} if metadata is None else metadata,
            )
        )
