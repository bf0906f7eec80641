"""rules, rule_executions and rule_evolution_proposals: the autonomy rule engine."""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, Field

from ._base import CreateModel, RowModel, UpdateModel
from ._table import TableSpec
from ._types import Int32, NonNull, OpenEnum, Str255, Vector768

__all__ = [
    "ExecutionDecision",
    "ExecutionOutcome",
    "ProposalStatus",
    "Rule",
    "RuleCreate",
    "RuleEvolutionProposal",
    "RuleEvolutionProposalCreate",
    "RuleEvolutionProposalUpdate",
    "RuleExecution",
    "RuleExecutionCreate",
    "RuleExecutionUpdate",
    "RuleUpdate",
    "Vote",
]


class ExecutionDecision(StrEnum):
    """rule_executions.decision (the Elixir changeset's inclusion list)."""

    AUTONOMOUS = "autonomous"
    COLLABORATIVE = "collaborative"
    ESCALATED = "escalated"


class ExecutionOutcome(StrEnum):
    """rule_executions.outcome (the Elixir ``record_outcome`` inclusion list)."""

    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"


class ProposalStatus(StrEnum):
    """rule_evolution_proposals.status (the Elixir changeset's inclusion list)."""

    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


class Vote(StrEnum):
    """The ``"vote"`` of an entry in rule_evolution_proposals.votes.

    ``votes`` maps agent id -> ``{"vote": ..., "confidence": float, "voted_at": ISO-8601}``;
    the Elixir consensus check treats ``"reject"`` with confidence >= 0.7 as a veto.
    """

    APPROVE = "approve"
    REJECT = "reject"


class Rule(RowModel):
    """A rules row (the legacy 2024 table: 768-d embedding, uuid key)."""

    __table_spec__ = TableSpec("rules", vector_index="idx_rules_embedding_vector")

    id: UUID
    name: str
    description: str | None
    category: str | None
    condition: dict[str, Any] | None
    action: dict[str, Any] | None
    metadata: dict[str, Any] | None
    priority: int | None
    active: bool | None
    version: int | None
    parent_id: UUID | None
    embedding: Vector768 | None = None
    inserted_at: AwareDatetime
    updated_at: AwareDatetime


class RuleCreate(CreateModel):
    """A rules row to insert."""

    id: UUID | None = None
    name: Str255
    description: str | None = None
    category: Str255 | None = None
    condition: dict[str, Any] | None = Field(default_factory=dict)
    action: dict[str, Any] | None = Field(default_factory=dict)
    metadata: dict[str, Any] | None = Field(default_factory=dict)
    priority: Int32 | None = 0
    active: bool | None = True
    version: Int32 | None = 1
    parent_id: UUID | None = None
    embedding: Vector768 | None = None


class RuleUpdate(UpdateModel):
    """A partial update of a rules row."""

    name: NonNull[Str255] = None
    description: str | None = None
    category: Str255 | None = None
    condition: dict[str, Any] | None = None
    action: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    priority: Int32 | None = None
    active: bool | None = None
    version: Int32 | None = None
    parent_id: UUID | None = None
    embedding: Vector768 | None = None


class RuleExecution(RowModel):
    """A rule_executions row: one evaluation of a rule, with its outcome once known."""

    __table_spec__ = TableSpec("rule_executions")

    id: UUID
    rule_id: UUID
    correlation_id: UUID
    confidence: float
    decision: OpenEnum[ExecutionDecision]
    reasoning: str | None
    execution_time_ms: int
    context: dict[str, Any]
    outcome: OpenEnum[ExecutionOutcome] | None
    outcome_recorded_at: AwareDatetime | None
    executed_at: AwareDatetime


class RuleExecutionCreate(CreateModel):
    """A rule_executions row to insert (``executed_at`` has no DB default: it is required)."""

    id: UUID | None = None
    rule_id: UUID
    correlation_id: UUID
    confidence: float
    decision: ExecutionDecision
    reasoning: Str255 | None = None
    execution_time_ms: Int32
    context: dict[str, Any] = Field(default_factory=dict)
    outcome: ExecutionOutcome | None = None
    outcome_recorded_at: AwareDatetime | None = None
    executed_at: AwareDatetime


class RuleExecutionUpdate(UpdateModel):
    """A partial update of a rule_executions row (typically recording the outcome)."""

    rule_id: NonNull[UUID] = None
    correlation_id: NonNull[UUID] = None
    confidence: NonNull[float] = None
    decision: NonNull[ExecutionDecision] = None
    reasoning: Str255 | None = None
    execution_time_ms: NonNull[Int32] = None
    context: NonNull[dict[str, Any]] = None
    outcome: ExecutionOutcome | None = None
    outcome_recorded_at: AwareDatetime | None = None
    executed_at: NonNull[AwareDatetime] = None


class RuleEvolutionProposal(RowModel):
    """A rule_evolution_proposals row: a proposed change to a rule, voted on by agents."""

    __table_spec__ = TableSpec("rule_evolution_proposals")

    id: UUID
    rule_id: UUID
    proposer_agent_id: str
    proposed_patterns: list[dict[str, Any]]
    proposed_threshold: float | None
    evolution_reasoning: str
    trial_results: dict[str, Any] | None
    trial_confidence: float | None
    votes: dict[str, Any] | None
    consensus_reached: bool | None
    status: OpenEnum[ProposalStatus] | None
    inserted_at: AwareDatetime
    updated_at: AwareDatetime


class RuleEvolutionProposalCreate(CreateModel):
    """A rule_evolution_proposals row to insert (``proposed_patterns`` is a ``jsonb[]``)."""

    id: UUID | None = None
    rule_id: UUID
    proposer_agent_id: Str255
    proposed_patterns: list[dict[str, Any]]
    proposed_threshold: float | None = None
    evolution_reasoning: Str255
    trial_results: dict[str, Any] | None = None
    trial_confidence: float | None = None
    votes: dict[str, Any] | None = Field(default_factory=dict)
    consensus_reached: bool | None = False
    status: ProposalStatus | None = ProposalStatus.PROPOSED


class RuleEvolutionProposalUpdate(UpdateModel):
    """A partial update of a rule_evolution_proposals row (votes, trial, status)."""

    rule_id: NonNull[UUID] = None
    proposer_agent_id: NonNull[Str255] = None
    proposed_patterns: NonNull[list[dict[str, Any]]] = None
    proposed_threshold: float | None = None
    evolution_reasoning: NonNull[Str255] = None
    trial_results: dict[str, Any] | None = None
    trial_confidence: float | None = None
    votes: dict[str, Any] | None = None
    consensus_reached: bool | None = None
    status: ProposalStatus | None = None
