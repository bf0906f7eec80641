"""``atlas.git``: agent sessions, the pending-merge queue and merge history."""

from __future__ import annotations

from .._db import Executor
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
)
from ._base import Repository

__all__ = [
    "GitRepository",
    "GitSessionsRepository",
    "MergeHistoryRepository",
    "PendingMergesRepository",
]


class GitSessionsRepository(
    Repository[GitAgentSession, GitAgentSessionCreate, GitAgentSessionUpdate]
):
    """``atlas.git.sessions``: one session per agent, keyed by ``agent_id``."""

    table = "git_agent_sessions"
    row_model = GitAgentSession
    create_model = GitAgentSessionCreate
    update_model = GitAgentSessionUpdate
    natural_key = ("agent_id",)


class PendingMergesRepository(
    Repository[GitPendingMerge, GitPendingMergeCreate, GitPendingMergeUpdate]
):
    """``atlas.git.pending``: merges waiting for a worker, keyed by ``branch``."""

    table = "git_pending_merges"
    row_model = GitPendingMerge
    create_model = GitPendingMergeCreate
    update_model = GitPendingMergeUpdate
    natural_key = ("branch",)


class MergeHistoryRepository(
    Repository[GitMergeHistory, GitMergeHistoryCreate, GitMergeHistoryUpdate]
):
    """``atlas.git.history``: the outcome of every merge."""

    table = "git_merge_history"
    row_model = GitMergeHistory
    create_model = GitMergeHistoryCreate
    update_model = GitMergeHistoryUpdate


class GitRepository:
    """Git coordination between agents: ``.sessions``, ``.pending``, ``.history``."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self.sessions = GitSessionsRepository(executor)
        self.pending = PendingMergesRepository(executor)
        self.history = MergeHistoryRepository(executor)
