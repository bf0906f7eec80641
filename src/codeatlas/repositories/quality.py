"""``atlas.quality``: quality tool runs and their immutable findings.

A run's life: ``start_run`` inserts it with ``status = 'ok'`` and ``finished_at`` NULL (the
table requires a status and the Elixir app reads it as ``Ecto.Enum`` {ok, warning, error}, so
there is no "running" value: a run is running while ``finished_at IS NULL``);
``add_findings`` appends findings while it runs; ``finish`` stamps ``finished_at`` and
derives ``warning_count`` and ``status`` from the findings. A finished run takes no more
findings (RunFinishedError), and findings themselves are never updated (ImmutableRowError).
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from typing import Any, Final

from .._db import Executor
from ..errors import InvalidInputError, NotFoundError, RunFinishedError
from ..models import (
    QualityFinding,
    QualityFindingCreate,
    QualityRun,
    QualityRunCreate,
    QualityRunUpdate,
    QualityTool,
    RunStatus,
    Severity,
)
from ..models._base import UpdateModel
from ._base import Repository, check_flag, check_items

__all__ = ["ERROR_SEVERITIES", "QualityFindingsRepository", "QualityRepository"]

#: Finding severities that make a finished run's status ``error`` (compared lower-cased):
#: ``critical``, and ``error``, which the Elixir app may have written (severity is free text
#: there). Any other finding makes the run ``warning``; no finding leaves it ``ok``.
ERROR_SEVERITIES: Final = (Severity.CRITICAL.value, "error")

_START_RUN: Final = """
INSERT INTO quality_runs (tool, status, metadata, started_at)
VALUES ($1, $2, $3, (now() AT TIME ZONE 'utc'))
RETURNING id, tool, status, warning_count, metadata, started_at, finished_at, inserted_at,
          updated_at"""

# FOR SHARE lets several add_findings run together but makes finish (FOR UPDATE) wait for
# them, so finish never counts findings while a batch is still being written.
_LOCK_RUN_SHARED: Final = "SELECT finished_at FROM quality_runs WHERE id = $1 FOR SHARE"
# finish locks first, in its own statement: the UPDATE's snapshot is then taken after every
# add_findings holding the run has committed, so its count includes their findings.
_LOCK_RUN: Final = "SELECT finished_at FROM quality_runs WHERE id = $1 FOR UPDATE"

_FINISH: Final = """
UPDATE quality_runs AS r
   SET finished_at   = (now() AT TIME ZONE 'utc'),
       updated_at    = (now() AT TIME ZONE 'utc'),
       warning_count = f.total,
       status        = CASE WHEN f.errors > 0 THEN 'error'
                            WHEN f.total > 0 THEN 'warning'
                            ELSE 'ok' END
  FROM (SELECT count(*) AS total,
               count(*) FILTER (WHERE lower(severity) = ANY($2::text[])) AS errors
          FROM quality_findings
         WHERE run_id = $1) AS f
 WHERE r.id = $1 AND r.finished_at IS NULL
RETURNING r.id, r.tool, r.status, r.warning_count, r.metadata, r.started_at, r.finished_at,
          r.inserted_at, r.updated_at"""

# NULL parameters leave their filter out; run_id always narrows through its index.
_FINDINGS_FOR: Final = """
SELECT id, run_id, category, message, file, line, severity, extra, inserted_at
  FROM quality_findings
 WHERE run_id = $1
   AND ($2::text[] IS NULL OR severity = ANY($2::text[]))
   AND ($3::text IS NULL OR category = $3::text)
   AND ($4::text IS NULL OR file = $4::text)
 ORDER BY id"""

# "Latest" is by start time; rows written by the Elixir app may lack started_at.
_LATEST_RUN: Final = {
    False: """
SELECT id, tool, status, warning_count, metadata, started_at, finished_at, inserted_at,
       updated_at
  FROM quality_runs
 WHERE tool = $1
 ORDER BY coalesce(started_at, inserted_at) DESC, id DESC
 LIMIT 1""",
    True: """
SELECT id, tool, status, warning_count, metadata, started_at, finished_at, inserted_at,
       updated_at
  FROM quality_runs
 WHERE tool = $1 AND finished_at IS NOT NULL
 ORDER BY coalesce(started_at, inserted_at) DESC, id DESC
 LIMIT 1""",
}

_LATEST_RUNS: Final = {
    False: """
SELECT DISTINCT ON (tool)
       id, tool, status, warning_count, metadata, started_at, finished_at, inserted_at,
       updated_at
  FROM quality_runs
 ORDER BY tool, coalesce(started_at, inserted_at) DESC, id DESC""",
    True: """
SELECT DISTINCT ON (tool)
       id, tool, status, warning_count, metadata, started_at, finished_at, inserted_at,
       updated_at
  FROM quality_runs
 WHERE finished_at IS NOT NULL
 ORDER BY tool, coalesce(started_at, inserted_at) DESC, id DESC""",
}


def _tool(tool: QualityTool | str) -> QualityTool:
    try:
        return QualityTool(tool)
    except ValueError:
        raise InvalidInputError(
            f"unknown quality tool {tool!r}: expected one of "
            f"{', '.join(t.value for t in QualityTool)} (record others as 'custom')"
        ) from None


class QualityFindingsRepository(Repository[QualityFinding, QualityFindingCreate, UpdateModel]):
    """``atlas.quality.findings``: append-only findings of a run."""

    row_model = QualityFinding
    create_model = QualityFindingCreate


class QualityRepository(Repository[QualityRun, QualityRunCreate, QualityRunUpdate]):
    """Quality runs, with their findings as ``.findings`` (see the module docstring)."""

    row_model = QualityRun
    create_model = QualityRunCreate
    update_model = QualityRunUpdate

    def __init__(self, executor: Executor) -> None:
        super().__init__(executor)
        self.findings = QualityFindingsRepository(executor)

    async def start_run(
        self, tool: QualityTool | str, *, metadata: dict[str, Any] | None = None
    ) -> QualityRun:
        """Start a run of *tool* now (status ``ok`` until ``finish``); return it."""
        # validated by the create model; started_at comes from the server clock, as
        # finished_at will, so a run's duration never suffers client clock skew
        data = QualityRunCreate(tool=_tool(tool), status=RunStatus.OK, metadata=metadata or {})
        record = await self._executor.fetchrow(
            _START_RUN, data.tool.value, data.status.value, data.metadata
        )
        return self._row(record)

    async def add_findings(self, run_id: int, findings: Sequence[QualityFindingCreate]) -> int:
        """Append *findings* to a running run, all or none; return how many were added.

        Raises NotFoundError for an unknown run and RunFinishedError for a finished one.
        Each finding's ``run_id`` must be *run_id*.
        """
        run_id = self._key(run_id)
        check_items(findings, field="findings")
        for finding in findings:
            if not isinstance(finding, QualityFindingCreate):
                raise InvalidInputError(
                    f"add_findings takes QualityFindingCreate, got {type(finding).__name__}"
                )
            if finding.run_id != run_id:
                raise InvalidInputError(
                    f"a finding of run {finding.run_id} was passed to add_findings({run_id})"
                )
        async with self._executor.transaction() as tx:
            await self._check_running(tx, _LOCK_RUN_SHARED, run_id)
            return await QualityFindingsRepository(tx).insert_many(findings)

    async def finish(self, run_id: int) -> QualityRun:
        """Finish a run: stamp ``finished_at`` and derive ``warning_count`` and ``status``.

        ``warning_count`` is the number of findings; ``status`` is ``error`` if any finding's
        severity is in ERROR_SEVERITIES, else ``warning`` if there are findings, else ``ok``.
        Raises NotFoundError for an unknown run and RunFinishedError if already finished.
        """
        run_id = self._key(run_id)
        async with self._executor.transaction() as tx:
            await self._check_running(tx, _LOCK_RUN, run_id)
            record = await tx.fetchrow(_FINISH, run_id, list(ERROR_SEVERITIES))
        return self._row(record)

    @staticmethod
    async def _check_running(tx: Executor, lock_sql: str, run_id: int) -> None:
        record = await tx.fetchrow(lock_sql, run_id)
        if record is None:
            raise NotFoundError(f"no quality run with id {run_id!r}")
        if record["finished_at"] is not None:
            raise RunFinishedError(f"quality run {run_id} is finished")

    async def findings_for(
        self,
        run_id: int,
        *,
        severity: Severity | str | Sequence[Severity | str] | None = None,
        category: str | None = None,
        file: str | None = None,
    ) -> list[QualityFinding]:
        """Return a run's findings in insertion order, narrowed by the filters given.

        *severity* is one level or a list of levels (any of them).
        """
        severities: list[str] | None
        if not (severity is None or isinstance(severity, str | Sequence | Set)):
            raise InvalidInputError(
                f"severity must be a level or a list of levels, got {type(severity).__name__}"
            )
        if severity is None:
            severities = None
        elif isinstance(severity, str):  # a Severity is a str too
            severities = [str(severity.value if isinstance(severity, Severity) else severity)]
        else:
            severities = [s.value if isinstance(s, Severity) else str(s) for s in severity]
        run_id = self._key(run_id)
        findings = self.findings
        if severities is not None:
            severities = [findings._value("severity", s) for s in severities]
        category = None if category is None else findings._value("category", category)
        file = None if file is None else findings._value("file", file)
        records = await self._executor.fetch(_FINDINGS_FOR, run_id, severities, category, file)
        return [QualityFinding.from_record(record) for record in records]

    async def latest_run(
        self, tool: QualityTool | str, *, finished_only: bool = False
    ) -> QualityRun | None:
        """Return the most recently started run of *tool* (finished ones only if asked)."""
        check_flag(finished_only, field="finished_only")
        record = await self._executor.fetchrow(_LATEST_RUN[finished_only], _tool(tool).value)
        return None if record is None else self._row(record)

    async def latest_runs(
        self, *, finished_only: bool = False
    ) -> dict[QualityTool | str, QualityRun]:
        """Return the most recently started run of every tool that has one, keyed by tool."""
        check_flag(finished_only, field="finished_only")
        records = await self._executor.fetch(_LATEST_RUNS[finished_only])
        runs = self._rows(records)
        return {run.tool: run for run in runs}
