"""``atlas.git``: agent sessions, the pending-merge queue and merge history.

The queue: ``enqueue_merge`` adds a branch (one pending row per branch); a worker takes the
oldest unclaimed one with ``claim_next_merge``, which writes its claim into the row's
``meta`` (``claimed_by``, ``claimed_at``, ``lease_until``, naive UTC ISO strings); when the
lease runs out without an outcome (the worker crashed) the merge can be claimed again.
``record_merge_outcome`` moves the pending row into git_merge_history in one statement.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NoReturn, TypedDict, Unpack

from .._db import Executor
from ..errors import InvalidInputError, NotFoundError, StateConflictError
from ..models import (
    GitAgentSession,
    GitAgentSessionCreate,
    GitAgentSessionUpdate,
    GitMergeHistory,
    GitMergeHistoryCreate,
    GitMergeHistoryUpdate,
    GitPendingMerge,
    GitPendingMergeCreate,
    GitPendingMergeUpdate,
    MergeStatus,
    SessionStatus,
)
from ..models._types import check_text
from ._base import Repository

__all__ = [
    "CLAIM_KEYS",
    "GitRepository",
    "MergeHistoryRepository",
    "PendingMergesRepository",
    "SessionFields",
]

#: Keys of git_pending_merges.meta that hold a worker's claim (owned by the queue).
CLAIM_KEYS: Final = ("claimed_by", "claimed_at", "lease_until")
#: Session statuses ``active_sessions()`` returns: Elixir's rule-based agents work on main
#: under status ``rules`` and are as live as ``active`` ones.
_LIVE_SESSION_STATUSES: Final = (SessionStatus.ACTIVE.value, SessionStatus.RULES.value)

# A re-enqueued branch takes the caller's new details but keeps a claim a worker holds on
# it: dropping the claim would let a second worker merge the branch at the same time.
_ENQUEUE: Final = """
INSERT INTO git_pending_merges AS m (branch, pr_number, agent_id, task_id, correlation_id, meta)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (branch) DO UPDATE
   SET pr_number      = EXCLUDED.pr_number,
       agent_id       = EXCLUDED.agent_id,
       task_id        = EXCLUDED.task_id,
       correlation_id = EXCLUDED.correlation_id,
       meta           = coalesce(EXCLUDED.meta, '{}'::jsonb)
                        || jsonb_strip_nulls(jsonb_build_object(
                               'claimed_by',  m.meta -> 'claimed_by',
                               'claimed_at',  m.meta -> 'claimed_at',
                               'lease_until', m.meta -> 'lease_until')),
       updated_at     = (now() AT TIME ZONE 'utc')
RETURNING id, branch, pr_number, agent_id, task_id, correlation_id, meta, inserted_at, updated_at
"""

# FOR UPDATE SKIP LOCKED: concurrent workers each lock a different candidate and never
# wait on one another. A candidate another worker claimed between our snapshot and our
# lock is re-checked on its new version, fails the WHERE and is skipped, so each claim
# goes to exactly one worker.
_CLAIM_NEXT: Final = """
UPDATE git_pending_merges
   SET meta = coalesce(meta, '{}'::jsonb) || jsonb_build_object(
                  'claimed_by',  $1::text,
                  'claimed_at',  (now() AT TIME ZONE 'utc'),
                  'lease_until', (now() AT TIME ZONE 'utc') + $2::interval),
       updated_at = (now() AT TIME ZONE 'utc')
 WHERE id = (SELECT id
               FROM git_pending_merges
              WHERE meta ->> 'claimed_by' IS NULL
                 OR (meta ->> 'lease_until')::timestamp <= (now() AT TIME ZONE 'utc')
              ORDER BY inserted_at, id
              LIMIT 1
                FOR UPDATE SKIP LOCKED)
RETURNING id, branch, pr_number, agent_id, task_id, correlation_id, meta, inserted_at, updated_at
"""

_RELEASE: Final = """
UPDATE git_pending_merges
   SET meta = meta - 'claimed_by' - 'claimed_at' - 'lease_until',
       updated_at = (now() AT TIME ZONE 'utc')
 WHERE id = $1 AND meta ->> 'claimed_by' = $2
RETURNING id, branch, pr_number, agent_id, task_id, correlation_id, meta, inserted_at, updated_at
"""

_CLAIMED_BY: Final = "SELECT meta ->> 'claimed_by' FROM git_pending_merges WHERE id = $1"

# Delete and insert in one statement: both happen or neither does.
_RECORD_OUTCOME: Final = """
WITH moved AS (
    DELETE FROM git_pending_merges
     WHERE id = $1
    RETURNING branch, agent_id, task_id, correlation_id
)
INSERT INTO git_merge_history
       (branch, agent_id, task_id, correlation_id, merge_commit, status, details)
SELECT branch, agent_id, task_id, correlation_id, $2, $3, $4
  FROM moved
RETURNING id, branch, agent_id, task_id, correlation_id, merge_commit, status, details,
          inserted_at, updated_at
"""
_RECORD_OUTCOME_CLAIMED: Final = """
WITH moved AS (
    DELETE FROM git_pending_merges
     WHERE id = $1 AND meta ->> 'claimed_by' = $5
    RETURNING branch, agent_id, task_id, correlation_id
)
INSERT INTO git_merge_history
       (branch, agent_id, task_id, correlation_id, merge_commit, status, details)
SELECT branch, agent_id, task_id, correlation_id, $2, $3, $4
  FROM moved
RETURNING id, branch, agent_id, task_id, correlation_id, merge_commit, status, details,
          inserted_at, updated_at
"""


class SessionFields(TypedDict, total=False):
    """The fields ``update_session`` may change."""

    branch: str | None
    workspace_path: str
    correlation_id: str | None
    status: SessionStatus
    meta: dict[str, Any] | None


class PendingMergesRepository(
    Repository[GitPendingMerge, GitPendingMergeCreate, GitPendingMergeUpdate]
):
    """``atlas.git.pending``: merges waiting for a worker, keyed by ``branch``."""

    row_model = GitPendingMerge
    create_model = GitPendingMergeCreate
    update_model = GitPendingMergeUpdate


class MergeHistoryRepository(
    Repository[GitMergeHistory, GitMergeHistoryCreate, GitMergeHistoryUpdate]
):
    """``atlas.git.history``: the outcome of every merge."""

    row_model = GitMergeHistory
    create_model = GitMergeHistoryCreate
    update_model = GitMergeHistoryUpdate

    async def recent(
        self, branch: str | None = None, agent_id: str | None = None, *, limit: int = 100
    ) -> builtins.list[GitMergeHistory]:
        """Return the latest merge outcomes (newest first), for a branch and/or an agent."""
        where: dict[str, Any] = {}
        if branch is not None:
            where["branch"] = branch
        if agent_id is not None:
            where["agent_id"] = agent_id
        page = await self.list(where, order_by="inserted_at", descending=True, limit=limit)
        return page.items


def _check_worker(worker_id: str) -> None:
    check_text(worker_id, field="worker_id")
    if not worker_id or len(worker_id) > 255:
        raise InvalidInputError("worker_id must be 1..255 characters")


class GitRepository(Repository[GitAgentSession, GitAgentSessionCreate, GitAgentSessionUpdate]):
    """``atlas.git``: one session per agent (keyed by ``agent_id``), the ``.pending`` merge
    queue and the merge ``.history``."""

    row_model = GitAgentSession
    create_model = GitAgentSessionCreate
    update_model = GitAgentSessionUpdate

    def __init__(self, executor: Executor) -> None:
        super().__init__(executor)
        self.pending = PendingMergesRepository(executor)
        self.history = MergeHistoryRepository(executor)

    # -- sessions -----------------------------------------------------------------------

    async def open_session(
        self,
        agent_id: str,
        workspace_path: str,
        *,
        branch: str | None = None,
        correlation_id: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> GitAgentSession:
        """Open the agent's session, or reopen it (status ``active``, fields replaced)."""
        return await self.upsert(
            GitAgentSessionCreate(
                agent_id=agent_id,
                workspace_path=workspace_path,
                branch=branch,
                correlation_id=correlation_id,
                status=SessionStatus.ACTIVE,
                meta=meta if meta is not None else {},
            )
        )

    async def update_session(
        self, agent_id: str, **fields: Unpack[SessionFields]
    ) -> GitAgentSession:
        """Change the given fields of the agent's session; raise NotFoundError if it has none."""
        patch = GitAgentSessionUpdate(**fields)
        agent_id = self._value("agent_id", agent_id)
        session_id = await self._executor.fetchval(
            "SELECT id FROM git_agent_sessions WHERE agent_id = $1", agent_id
        )
        if session_id is None:
            raise NotFoundError(f"no git_agent_sessions row for agent_id = {agent_id!r}")
        return await self.update(session_id, patch)

    async def close_session(self, agent_id: str) -> GitAgentSession:
        """Mark the agent's session ``closed``; raise NotFoundError if it has none."""
        return await self.update_session(agent_id, status=SessionStatus.CLOSED)

    async def active_sessions(self) -> builtins.list[GitAgentSession]:
        """Return the live sessions (status ``active`` or ``rules``), by agent id."""
        sessions: builtins.list[GitAgentSession] = []
        cursor: str | None = None
        while True:
            page = await self.list(
                {"status": _LIVE_SESSION_STATUSES},
                order_by="agent_id",
                limit=1000,
                cursor=cursor,
            )
            sessions.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                return sessions

    # -- the merge queue ----------------------------------------------------------------

    async def enqueue_merge(
        self,
        branch: str,
        agent_id: str,
        *,
        pr_number: int | None = None,
        task_id: str | None = None,
        correlation_id: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> GitPendingMerge:
        """Queue *branch* for merging, or update its pending row (keeping a worker's claim)."""
        if isinstance(meta, Mapping) and any(key in meta for key in CLAIM_KEYS):
            raise InvalidInputError(f"meta keys {', '.join(CLAIM_KEYS)} belong to the queue")
        values = GitPendingMergeCreate(
            branch=branch,
            agent_id=agent_id,
            pr_number=pr_number,
            task_id=task_id,
            correlation_id=correlation_id,
            meta=meta if meta is not None else {},
        ).to_db()
        record = await self._executor.fetchrow(
            _ENQUEUE,
            values["branch"],
            values["pr_number"],
            values["agent_id"],
            values["task_id"],
            values["correlation_id"],
            values["meta"],
        )
        assert record is not None
        return GitPendingMerge.from_record(record)

    async def claim_next_merge(
        self, worker_id: str, *, lease: timedelta = timedelta(minutes=5)
    ) -> GitPendingMerge | None:
        """Claim the oldest merge nobody holds (or whose lease ran out); None if none is free.

        Each pending merge goes to exactly one worker at a time. The claim lasts *lease*;
        finish with ``record_merge_outcome`` or give it back with ``release``.
        """
        _check_worker(worker_id)
        if not isinstance(lease, timedelta):
            raise InvalidInputError(f"lease must be a timedelta, got {type(lease).__name__}")
        if lease <= timedelta(0):
            raise InvalidInputError(f"lease must be positive, got {lease}")
        try:
            datetime.now(UTC) + lease
        except OverflowError:
            raise InvalidInputError(f"lease {lease} ends after year 9999") from None
        record = await self._executor.fetchrow(_CLAIM_NEXT, worker_id, lease)
        return None if record is None else GitPendingMerge.from_record(record)

    async def release(self, merge_id: int, worker_id: str) -> GitPendingMerge:
        """Give back *worker_id*'s claim on a pending merge so another worker can take it.

        Raise StateConflictError if the worker does not hold the claim, NotFoundError if the
        merge is no longer pending.
        """
        merge_id = self.pending._key(merge_id)
        _check_worker(worker_id)
        record = await self._executor.fetchrow(_RELEASE, merge_id, worker_id)
        if record is None:
            await self._raise_not_claimed(merge_id, worker_id)
        return GitPendingMerge.from_record(record)

    async def record_merge_outcome(
        self,
        merge_id: int,
        status: MergeStatus,
        *,
        merge_commit: str | None = None,
        details: dict[str, Any] | None = None,
        worker_id: str | None = None,
    ) -> GitMergeHistory:
        """Move a pending merge into git_merge_history with its outcome, atomically.

        With *worker_id*, only while that worker holds the claim (else StateConflictError).
        Raise NotFoundError if the merge is not pending (its outcome is already recorded).
        """
        merge_id = self.pending._key(merge_id)
        values = GitMergeHistoryUpdate(
            merge_commit=merge_commit,
            status=status,
            details=details if details is not None else {},
        ).to_db()
        args = (merge_id, values["merge_commit"], values["status"], values["details"])
        if worker_id is None:
            record = await self._executor.fetchrow(_RECORD_OUTCOME, *args)
        else:
            _check_worker(worker_id)
            record = await self._executor.fetchrow(_RECORD_OUTCOME_CLAIMED, *args, worker_id)
        if record is None:
            if worker_id is None:
                raise NotFoundError(f"no pending merge with id = {merge_id!r}")
            await self._raise_not_claimed(merge_id, worker_id)
        return GitMergeHistory.from_record(record)

    async def _raise_not_claimed(self, merge_id: int, worker_id: str) -> NoReturn:
        """Raise why *worker_id* could not act on *merge_id* (gone, or not its claim)."""
        row = await self._executor.fetchrow(_CLAIMED_BY, merge_id)
        if row is None:
            raise NotFoundError(f"no pending merge with id = {merge_id!r}")
        holder = row[0]
        raise StateConflictError(
            f"pending merge {merge_id} is not claimed by {worker_id!r} "
            f"({'claimed by ' + repr(holder) if holder else 'unclaimed'})",
            state="claimed" if holder else "unclaimed",
        )
