"""git_agent_sessions, git_pending_merges and git_merge_history: multi-agent git state."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, Field

from ._base import CreateModel, RowModel, UpdateModel
from ._table import TableSpec
from ._types import Int32, NonNull, OpenEnum, Str255

__all__ = [
    "GitAgentSession",
    "GitAgentSessionCreate",
    "GitAgentSessionUpdate",
    "GitMergeHistory",
    "GitMergeHistoryCreate",
    "GitMergeHistoryUpdate",
    "GitPendingMerge",
    "GitPendingMergeCreate",
    "GitPendingMergeUpdate",
    "MergeStatus",
    "SessionStatus",
]


class SessionStatus(StrEnum):
    """git_agent_sessions.status.

    ``active`` (the column default) and ``rules`` are what the Elixir GitTreeSyncCoordinator
    writes (``rules``: a rule-based agent working on main without a branch). ``idle`` and
    ``closed`` are added for the Python agent service; the Elixir side deletes sessions
    instead of closing them.
    """

    ACTIVE = "active"
    RULES = "rules"
    IDLE = "idle"
    CLOSED = "closed"


class MergeStatus(StrEnum):
    """git_merge_history.status.

    ``success``/``conflict``/``failure`` are the values the migration comment documents.
    The Elixir GitTreeSyncCoordinator actually writes ``merged``, ``conflict`` and ``error``,
    and ``GitStateStore.log_merge`` falls back to ``unknown``: those are members too, so
    Elixir rows load as members and Python can write what Elixir queries for.
    """

    SUCCESS = "success"
    CONFLICT = "conflict"
    FAILURE = "failure"
    MERGED = "merged"
    ERROR = "error"
    UNKNOWN = "unknown"


class GitAgentSession(RowModel):
    """A git_agent_sessions row: an agent's workspace (one per agent_id)."""

    __table_spec__ = TableSpec("git_agent_sessions", natural_key=("agent_id",))

    id: int
    agent_id: str
    branch: str | None
    workspace_path: str
    correlation_id: str | None
    status: OpenEnum[SessionStatus]
    meta: dict[str, Any] | None
    inserted_at: AwareDatetime
    updated_at: AwareDatetime


class GitAgentSessionCreate(CreateModel):
    """A git_agent_sessions row to insert (``workspace_path`` is varchar(255))."""

    agent_id: Str255
    branch: Str255 | None = None
    workspace_path: Str255
    correlation_id: Str255 | None = None
    status: SessionStatus = SessionStatus.ACTIVE
    meta: dict[str, Any] | None = Field(default_factory=dict)


class GitAgentSessionUpdate(UpdateModel):
    """A partial update of a git_agent_sessions row."""

    agent_id: NonNull[Str255] = None
    branch: Str255 | None = None
    workspace_path: NonNull[Str255] = None
    correlation_id: Str255 | None = None
    status: NonNull[SessionStatus] = None
    meta: dict[str, Any] | None = None


class GitPendingMerge(RowModel):
    """A git_pending_merges row: a branch (one row per branch) waiting to be merged."""

    __table_spec__ = TableSpec("git_pending_merges", natural_key=("branch",))

    id: int
    branch: str
    pr_number: int | None
    agent_id: str
    task_id: str | None
    correlation_id: str | None
    meta: dict[str, Any] | None
    inserted_at: AwareDatetime
    updated_at: AwareDatetime


class GitPendingMergeCreate(CreateModel):
    """A git_pending_merges row to insert."""

    branch: Str255
    pr_number: Int32 | None = None
    agent_id: Str255
    task_id: Str255 | None = None
    correlation_id: Str255 | None = None
    meta: dict[str, Any] | None = Field(default_factory=dict)


class GitPendingMergeUpdate(UpdateModel):
    """A partial update of a git_pending_merges row."""

    branch: NonNull[Str255] = None
    pr_number: Int32 | None = None
    agent_id: NonNull[Str255] = None
    task_id: Str255 | None = None
    correlation_id: Str255 | None = None
    meta: dict[str, Any] | None = None


class GitMergeHistory(RowModel):
    """A git_merge_history row: the outcome of one merge attempt."""

    __table_spec__ = TableSpec("git_merge_history")

    id: int
    branch: str
    agent_id: str | None
    task_id: str | None
    correlation_id: str | None
    merge_commit: str | None
    status: OpenEnum[MergeStatus]
    details: dict[str, Any] | None
    inserted_at: AwareDatetime
    updated_at: AwareDatetime


class GitMergeHistoryCreate(CreateModel):
    """A git_merge_history row to insert."""

    branch: Str255
    agent_id: Str255 | None = None
    task_id: Str255 | None = None
    correlation_id: Str255 | None = None
    merge_commit: Str255 | None = None
    status: MergeStatus
    details: dict[str, Any] | None = Field(default_factory=dict)


class GitMergeHistoryUpdate(UpdateModel):
    """A partial update of a git_merge_history row."""

    branch: NonNull[Str255] = None
    agent_id: Str255 | None = None
    task_id: Str255 | None = None
    correlation_id: Str255 | None = None
    merge_commit: Str255 | None = None
    status: NonNull[MergeStatus] = None
    details: dict[str, Any] | None = None
