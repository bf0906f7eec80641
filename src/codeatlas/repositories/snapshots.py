"""``atlas.snapshots``: append-only codebase snapshots (codebase_snapshots)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from ..errors import InvalidInputError
from ..models import CodebaseSnapshot, CodebaseSnapshotCreate
from ..models._base import UpdateModel
from ..models._types import check_json, check_text
from ._base import Repository

__all__ = ["SnapshotsRepository"]

#: First key of the two-key advisory locks taken by ``take`` (a namespace of its own, so
#: its locks never meet the one-key locks of the migration engine or of applications).
_SNAPSHOT_LOCK_CLASS: Final = 0x43410001

# Serialises takes of one codebase until commit: the INSERT below then reads the newest
# snapshot_id in a fresh snapshot (READ COMMITTED), so concurrent takes get consecutive ids.
_LOCK_CODEBASE: Final = "SELECT pg_advisory_xact_lock($1::int, hashtext($2))"

_TAKE: Final = """
INSERT INTO codebase_snapshots
       (codebase_id, snapshot_id, metadata, summary, detected_technologies, features)
SELECT $1::varchar, coalesce(max(snapshot_id), 0) + 1, $2::jsonb, $3::jsonb, $4::varchar[],
       $5::jsonb
  FROM codebase_snapshots
 WHERE codebase_id = $1::varchar
RETURNING id, codebase_id, snapshot_id, metadata, summary, detected_technologies, features,
          inserted_at"""

_LATEST: Final = """
SELECT id, codebase_id, snapshot_id, metadata, summary, detected_technologies, features,
       inserted_at
  FROM codebase_snapshots
 WHERE codebase_id = $1
 ORDER BY snapshot_id DESC
 LIMIT 1"""

# Containment (@>) is what the GIN indexes on detected_technologies and features answer.
_WITH_TECHNOLOGY: Final = {
    False: """
SELECT id, codebase_id, snapshot_id, metadata, summary, detected_technologies, features,
       inserted_at
  FROM codebase_snapshots
 WHERE detected_technologies @> ARRAY[$1]::varchar[]
 ORDER BY codebase_id, snapshot_id
 LIMIT $2""",
    True: """
SELECT id, codebase_id, snapshot_id, metadata, summary, detected_technologies, features,
       inserted_at
  FROM codebase_snapshots
 WHERE detected_technologies @> ARRAY[$1]::varchar[] AND codebase_id = $3
 ORDER BY codebase_id, snapshot_id
 LIMIT $2""",
}

_WITH_FEATURES: Final = {
    False: """
SELECT id, codebase_id, snapshot_id, metadata, summary, detected_technologies, features,
       inserted_at
  FROM codebase_snapshots
 WHERE features @> $1::jsonb
 ORDER BY codebase_id, snapshot_id
 LIMIT $2""",
    True: """
SELECT id, codebase_id, snapshot_id, metadata, summary, detected_technologies, features,
       inserted_at
  FROM codebase_snapshots
 WHERE features @> $1::jsonb AND codebase_id = $3
 ORDER BY codebase_id, snapshot_id
 LIMIT $2""",
}

_MAX_LIMIT: Final = 10_000


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_LIMIT:
        raise InvalidInputError(f"limit must be an integer within 1..{_MAX_LIMIT}, got {limit!r}")


class SnapshotsRepository(Repository[CodebaseSnapshot, CodebaseSnapshotCreate, UpdateModel]):
    """Snapshots of a codebase's detected technologies and features; never updated.

    ``update`` (and an upsert onto an existing snapshot) raises ImmutableRowError, as does
    any UPDATE by raw SQL (a trigger refuses it).
    """

    row_model = CodebaseSnapshot
    create_model = CodebaseSnapshotCreate

    async def take(
        self,
        codebase_id: str,
        *,
        metadata: dict[str, Any] | None = None,
        summary: dict[str, Any] | None = None,
        detected_technologies: Iterable[str] = (),
        features: dict[str, Any] | None = None,
    ) -> CodebaseSnapshot:
        """Record a new snapshot of a codebase under the next snapshot_id (1, 2, ...).

        Safe under concurrency: concurrent takes of one codebase get distinct, consecutive
        ids (they queue on an advisory lock held until their transaction ends).
        """
        technologies = detected_technologies
        if isinstance(technologies, str) or not isinstance(technologies, Iterable):
            raise InvalidInputError("detected_technologies must be a collection of names")
        # validated by the create model; snapshot_id is a placeholder the INSERT replaces
        data = CodebaseSnapshotCreate(
            codebase_id=codebase_id,
            snapshot_id=0,
            metadata=metadata,
            summary=summary,
            detected_technologies=list(detected_technologies),
            features=features,
        )
        async with self._executor.transaction() as tx:
            await tx.execute(_LOCK_CODEBASE, _SNAPSHOT_LOCK_CLASS, data.codebase_id)
            record = await tx.fetchrow(
                _TAKE,
                data.codebase_id,
                data.metadata,
                data.summary,
                data.detected_technologies,
                data.features,
            )
        return self._row(record)

    async def latest(self, codebase_id: str) -> CodebaseSnapshot | None:
        """Return the codebase's snapshot with the highest snapshot_id, or None."""
        codebase_id = self._value("codebase_id", codebase_id)
        record = await self._executor.fetchrow(_LATEST, codebase_id)
        return None if record is None else self._row(record)

    async def with_technology(
        self, technology: str, *, codebase_id: str | None = None, limit: int = 1000
    ) -> list[CodebaseSnapshot]:
        """Return snapshots whose detected technologies include *technology* (GIN index).

        Ordered by (codebase_id, snapshot_id); *codebase_id* narrows to one codebase.
        """
        _check_limit(limit)
        sql = _WITH_TECHNOLOGY[codebase_id is not None]
        args: list[Any] = [check_text(technology, field="technology"), limit]
        if codebase_id is not None:
            args.append(self._value("codebase_id", codebase_id))
        return self._rows(await self._executor.fetch(sql, *args))

    async def with_features(
        self,
        contained: Mapping[str, Any] | Sequence[Any],
        *,
        codebase_id: str | None = None,
        limit: int = 1000,
    ) -> list[CodebaseSnapshot]:
        """Return snapshots whose ``features`` JSON contains *contained* (``@>``, GIN index).

        ``{"auth": {"kind": "jwt"}}`` matches features holding that nested pair; a list
        matches features that are a JSON array holding those elements.
        """
        if isinstance(contained, str | bytes) or not isinstance(contained, Mapping | Sequence):
            raise InvalidInputError("with_features takes a JSON object (dict) or array (list)")
        _check_limit(limit)
        value: Any = dict(contained) if isinstance(contained, Mapping) else list(contained)
        sql = _WITH_FEATURES[codebase_id is not None]
        args: list[Any] = [check_json(value, field="contained"), limit]
        if codebase_id is not None:
            args.append(self._value("codebase_id", codebase_id))
        return self._rows(await self._executor.fetch(sql, *args))
