"""``atlas.codebases``: the codebase registry and per-file metadata (codebase_metadata, 1536-d)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final

from .._db import Executor
from ..errors import InvalidInputError, NotFoundError
from ..models import (
    AnalysisStatus,
    CodebaseMetadata,
    CodebaseMetadataCreate,
    CodebaseMetadataUpdate,
    CodebaseRegistry,
    CodebaseRegistryCreate,
    CodebaseRegistryUpdate,
)
from ..models._types import check_json
from ..text_search import TextSearchableRepository
from ._base import Repository, check_count, check_items
from ._maintenance import Vacuumable

__all__ = ["CodebaseRegistryRepository", "CodebasesRepository"]

# Re-registering keeps what analysis recorded (status, last_analyzed) and any optional field
# the caller leaves out; the base upsert would overwrite them with the create model's defaults.
_REGISTER: Final = """
INSERT INTO codebase_registry AS r
       (codebase_id, codebase_path, codebase_name, description, language, framework, metadata)
VALUES ($1, $2, $3, $4, $5, $6, coalesce($7::jsonb, '{}'::jsonb))
ON CONFLICT (codebase_id) DO UPDATE
   SET codebase_path = EXCLUDED.codebase_path,
       codebase_name = EXCLUDED.codebase_name,
       description   = coalesce(EXCLUDED.description, r.description),
       language      = coalesce(EXCLUDED.language, r.language),
       framework     = coalesce(EXCLUDED.framework, r.framework),
       metadata      = coalesce($7::jsonb, r.metadata),
       updated_at    = (now() AT TIME ZONE 'utc')
RETURNING id, codebase_id, codebase_path, codebase_name, description, language, framework,
          last_analyzed, analysis_status, metadata, inserted_at, updated_at"""

_SET_STATUS: Final = """
UPDATE codebase_registry
   SET analysis_status = $2,
       last_analyzed   = CASE WHEN $3 THEN (now() AT TIME ZONE 'utc') ELSE last_analyzed END,
       updated_at      = (now() AT TIME ZONE 'utc')
 WHERE codebase_id = $1
RETURNING id, codebase_id, codebase_path, codebase_name, description, language, framework,
          last_analyzed, analysis_status, metadata, inserted_at, updated_at"""

_FILE_STAMPS: Final = """
SELECT path, size, last_modified FROM codebase_metadata WHERE codebase_id = $1"""

_REMOVE_MISSING: Final = """
DELETE FROM codebase_metadata WHERE codebase_id = $1 AND path <> ALL($2::varchar[])"""

# Dependency counts move when other files change; only rows whose counts differ are touched.
_SET_DEPENDENCY_COUNTS: Final = """
UPDATE codebase_metadata m
   SET dependency_count = s.dependencies, dependent_count = s.dependents,
       updated_at = (now() AT TIME ZONE 'utc')
  FROM unnest($2::text[], $3::int[], $4::int[]) AS s (path, dependencies, dependents)
 WHERE m.codebase_id = $1 AND m.path = s.path
   AND (m.dependency_count, m.dependent_count) IS DISTINCT FROM (s.dependencies, s.dependents)"""

# The indexer's state of a codebase, under one key of the registry row's metadata.
_INDEX_STATE: Final = """
SELECT metadata -> 'index' AS state FROM codebase_registry WHERE codebase_id = $1"""
_SET_INDEX_STATE: Final = """
UPDATE codebase_registry
   SET metadata = coalesce(metadata, '{}'::jsonb) || jsonb_build_object('index', $2::jsonb),
       updated_at = (now() AT TIME ZONE 'utc')
 WHERE codebase_id = $1"""

#: Statuses that mean an analysis completed; only these move ``last_analyzed``, so a failed
#: run never makes stale metadata look fresh.
_ANALYSED: Final = frozenset({AnalysisStatus.COMPLETED})

#: ``on_progress(done, total)``: called after each committed batch of ``ingest``.
ProgressCallback = Callable[[int, int], Any]


class CodebaseRegistryRepository(
    Repository[CodebaseRegistry, CodebaseRegistryCreate, CodebaseRegistryUpdate]
):
    """``atlas.codebases.registry``: one row per codebase, keyed by ``codebase_id``."""

    row_model = CodebaseRegistry
    create_model = CodebaseRegistryCreate
    update_model = CodebaseRegistryUpdate


class CodebasesRepository(
    Vacuumable,
    TextSearchableRepository[CodebaseMetadata, CodebaseMetadataCreate, CodebaseMetadataUpdate],
):
    """File metadata of every codebase (searchable), with the registry as ``.registry``.

    File metadata is upserted by (codebase_id, path) with the base ``upsert``/``upsert_many``.
    """

    row_model = CodebaseMetadata
    create_model = CodebaseMetadataCreate
    update_model = CodebaseMetadataUpdate

    def __init__(self, executor: Executor) -> None:
        super().__init__(executor)
        self.registry = CodebaseRegistryRepository(executor)

    # -- the registry -------------------------------------------------------------------

    async def register(
        self,
        codebase_id: str,
        codebase_path: str,
        codebase_name: str,
        *,
        description: str | None = None,
        language: str | None = None,
        framework: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> CodebaseRegistry:
        """Register a codebase, or update its path, name and the given fields if known.

        Re-registering keeps the analysis status, ``last_analyzed`` and every optional
        field passed as None.
        """
        # validated by the create model (lengths, types) before anything is sent
        data = CodebaseRegistryCreate(
            codebase_id=codebase_id,
            codebase_path=codebase_path,
            codebase_name=codebase_name,
            description=description,
            language=language,
            framework=framework,
            metadata=metadata,
        )
        record = await self._executor.fetchrow(
            _REGISTER,
            data.codebase_id,
            data.codebase_path,
            data.codebase_name,
            data.description,
            data.language,
            data.framework,
            data.metadata,
        )
        assert record is not None  # an upsert always returns its row
        return CodebaseRegistry.from_record(record)

    async def set_status(self, codebase_id: str, status: AnalysisStatus) -> CodebaseRegistry:
        """Move a codebase to *status*; ``completed`` also stamps ``last_analyzed``.

        Raises NotFoundError if the codebase is not registered.
        """
        codebase_id = self._value("codebase_id", codebase_id)
        try:
            status = AnalysisStatus(status)
        except ValueError:
            raise InvalidInputError(
                f"unknown analysis status {status!r}: expected one of "
                f"{', '.join(s.value for s in AnalysisStatus)}"
            ) from None
        record = await self._executor.fetchrow(
            _SET_STATUS, codebase_id, status.value, status in _ANALYSED
        )
        if record is None:
            raise NotFoundError(f"no codebase registered as {codebase_id!r}")
        return CodebaseRegistry.from_record(record)

    # -- file metadata ------------------------------------------------------------------

    async def ingest(
        self,
        rows: Sequence[CodebaseMetadataCreate],
        *,
        batch_size: int = 1000,
        on_progress: ProgressCallback | None = None,
    ) -> int:
        """Upsert *rows* by (codebase_id, path) in batches; return how many were written.

        Each batch commits on its own (atomic), so a failure keeps the batches before it;
        ``on_progress(done, total)`` runs after each one.
        """
        check_count(batch_size, field="batch_size", low=1, high=2**31 - 1)
        check_items(rows, field="rows")
        for row in rows:  # all of them before the first batch commits
            self._check_create(row)
        if on_progress is not None and not callable(on_progress):
            raise InvalidInputError(
                f"on_progress must be callable, got {type(on_progress).__name__}"
            )
        total = len(rows)
        done = 0
        for start in range(0, total, batch_size):
            batch = rows[start : start + batch_size]
            await self.upsert_many(batch)
            done += len(batch)
            if on_progress is not None:
                on_progress(done, total)
        return done

    async def file_stamps(self, codebase_id: str) -> dict[str, tuple[int, int]]:
        """Return path -> (size, last_modified) of every file of a codebase.

        Compare against the files on disk to re-index only what changed.
        """
        codebase_id = self._value("codebase_id", codebase_id)
        records = await self._executor.fetch(_FILE_STAMPS, codebase_id)
        return {r["path"]: (r["size"], r["last_modified"]) for r in records}

    async def remove_missing(self, codebase_id: str, keep_paths: Collection[str]) -> int:
        """Delete the metadata of a codebase's files not in *keep_paths*; return the count."""
        if isinstance(keep_paths, str) or not isinstance(keep_paths, Collection):
            raise InvalidInputError("keep_paths must be a collection of paths, not one string")
        codebase_id = self._value("codebase_id", codebase_id)
        paths = [self._value("path", path) for path in keep_paths]
        status = await self._executor.execute(_REMOVE_MISSING, codebase_id, paths)
        return int(status.split()[-1])

    async def set_dependency_counts(
        self, codebase_id: str, counts: Mapping[str, tuple[int, int]]
    ) -> int:
        """Set (dependency_count, dependent_count) per path; return how many rows changed.

        Rows whose counts already match are not touched; paths without a row are ignored.
        """
        if not isinstance(counts, Mapping):
            raise InvalidInputError(f"counts must map paths to counts, not {type(counts).__name__}")
        codebase_id = self._value("codebase_id", codebase_id)
        paths = sorted(self._value("path", path) for path in counts)
        for path in paths:
            pair = counts[path]
            if not (
                isinstance(pair, tuple | list)
                and len(pair) == 2
                and all(isinstance(n, int) and not isinstance(n, bool) for n in pair)
                and all(0 <= n <= 2**31 - 1 for n in pair)
            ):
                raise InvalidInputError(
                    f"counts[{path!r}] must be two non-negative integers, got {counts[path]!r}"
                )
        status = await self._executor.execute(
            _SET_DEPENDENCY_COUNTS,
            codebase_id,
            paths,
            [counts[p][0] for p in paths],
            [counts[p][1] for p in paths],
        )
        return int(status.split()[-1])

    async def index_state(self, codebase_id: str) -> dict[str, Any] | None:
        """Return what the indexer recorded for a codebase (``metadata["index"]``), or None."""
        codebase_id = self._value("codebase_id", codebase_id)
        state = await self._executor.fetchval(_INDEX_STATE, codebase_id)
        return state if isinstance(state, dict) else None

    async def set_index_state(self, codebase_id: str, state: Mapping[str, Any]) -> None:
        """Store the indexer's *state* of a registered codebase (in its registry metadata).

        Raises NotFoundError if the codebase is not registered.
        """
        codebase_id = self._value("codebase_id", codebase_id)
        if not isinstance(state, Mapping):
            raise InvalidInputError(f"state must be a mapping, got {type(state).__name__}")
        state = check_json(dict(state), field="state")
        status = await self._executor.execute(_SET_INDEX_STATE, codebase_id, state)
        if status.split()[-1] == "0":
            raise NotFoundError(f"no codebase registered as {codebase_id!r}")
