"""``atlas.rules``: rules (768-d), their executions and evolution proposals.

Consensus on a proposal (the Elixir ``RuleEvolutionProposal.check_consensus`` rule, plus a
rejection the Elixir app leaves implicit), evaluated over every vote after each vote:

* **approved** (and ``consensus_reached``): at least 3 votes, their mean confidence above
  0.85, and no strong rejection;
* **rejected**: at least 3 votes, one of them a strong rejection (``reject`` with
  confidence >= 0.7); ``consensus_reached`` stays false, a veto is not agreement;
* otherwise the proposal stays ``proposed``.

Votes on a proposal that left ``proposed`` (approved, rejected, expired) are refused.
"""

from __future__ import annotations

import builtins
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import UUID

from .._db import Executor
from ..errors import InvalidInputError, NotFoundError, StateConflictError
from ..models import (
    ExecutionDecision,
    ExecutionOutcome,
    ProposalStatus,
    Rule,
    RuleCreate,
    RuleEvolutionProposal,
    RuleEvolutionProposalCreate,
    RuleEvolutionProposalUpdate,
    RuleExecution,
    RuleExecutionCreate,
    RuleExecutionUpdate,
    RuleUpdate,
    Vote,
)
from ..models._types import check_text
from ..search import SearchableRepository
from ._base import Repository, check_items

__all__ = [
    "CONSENSUS_MIN_CONFIDENCE",
    "CONSENSUS_MIN_VOTES",
    "STRONG_REJECTION_CONFIDENCE",
    "RuleExecutionsRepository",
    "RuleProposalsRepository",
    "RuleStats",
    "RulesRepository",
    "VoteResult",
]

#: A proposal needs at least this many votes before it can be approved or rejected.
CONSENSUS_MIN_VOTES: Final = 3
#: Approval needs the mean confidence of all votes strictly above this.
CONSENSUS_MIN_CONFIDENCE: Final = 0.85
#: A ``reject`` vote with at least this confidence is a veto (a strong rejection).
STRONG_REJECTION_CONFIDENCE: Final = 0.7


@dataclass(frozen=True, slots=True)
class RuleStats:
    """Execution statistics of one rule over a window."""

    rule_id: UUID
    #: executions in the window
    executions: int
    #: executions whose outcome has been recorded (success, failure or unknown)
    with_outcome: int
    successes: int
    #: successes / with_outcome; None while no outcome is recorded
    success_rate: float | None
    #: None when there are no executions
    mean_confidence: float | None
    #: 95th percentile (continuous) of execution_time_ms; None when there are no executions
    p95_execution_time_ms: float | None
    #: executions per decision (members of ExecutionDecision; other strings as written)
    decisions: dict[ExecutionDecision | str, int]


@dataclass(frozen=True, slots=True)
class VoteResult:
    """What one ``vote()`` call did."""

    proposal: RuleEvolutionProposal
    #: votes on the proposal including this one (one per agent)
    votes_count: int
    #: True only for the one call whose vote moved the proposal out of ``proposed``
    consensus_changed: bool
    status: ProposalStatus | str


# One statement per call. `e` is the window of executions; rules LEFT JOIN it so a rule
# without executions still answers (zeros), and a missing rule answers nothing.
_STATS_TEMPLATE: Final = """
WITH e AS (
    SELECT rule_id, decision, confidence, execution_time_ms, outcome
      FROM rule_executions
     WHERE {executions_where}
), by_decision AS (
    SELECT rule_id, jsonb_object_agg(decision, n) AS decisions
      FROM (SELECT rule_id, decision, count(*) AS n FROM e GROUP BY rule_id, decision) AS d
     GROUP BY rule_id
)
SELECT r.id                                   AS rule_id,
       count(e.rule_id)                       AS executions,
       count(e.outcome)                       AS with_outcome,
       count(*) FILTER (WHERE e.outcome = 'success') AS successes,
       avg(e.confidence)                      AS mean_confidence,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY e.execution_time_ms)
                                              AS p95_execution_time_ms,
       coalesce(bd.decisions, '{{}}'::jsonb)  AS decisions
  FROM rules AS r
  LEFT JOIN e ON e.rule_id = r.id
  LEFT JOIN by_decision AS bd ON bd.rule_id = r.id
 WHERE {rules_where}
 GROUP BY r.id, bd.decisions
"""
# (one rule?, windowed?) -> the statement; a closed set built once.
_STATS_SQL: Final = {
    (True, False): _STATS_TEMPLATE.format(executions_where="rule_id = $1", rules_where="r.id = $1"),
    (True, True): _STATS_TEMPLATE.format(
        executions_where="rule_id = $1 AND executed_at >= $2", rules_where="r.id = $1"
    ),
    (False, False): _STATS_TEMPLATE.format(executions_where="true", rules_where="true"),
    (False, True): _STATS_TEMPLATE.format(executions_where="executed_at >= $1", rules_where="true"),
}

# One UPDATE adds the vote and decides the status from the votes it produced. The row lock
# serialises concurrent voters; under READ COMMITTED a waiting UPDATE re-evaluates its WHERE
# and SET (the correlated sub-select included) on the row version the previous voter
# committed, so no vote is lost and the status changes in exactly one call.
_VOTE: Final = """
UPDATE rule_evolution_proposals AS p
   SET (votes, status, consensus_reached, updated_at) = (
        SELECT t.votes,
               CASE WHEN t.n >= $5 AND t.vetoed THEN 'rejected'
                    WHEN t.n >= $5 AND t.mean > $6
                         THEN 'approved'
                    ELSE 'proposed' END,
               t.n >= $5 AND NOT t.vetoed
                   AND t.mean > $6,
               (now() AT TIME ZONE 'utc')
          FROM (SELECT nv.votes,
                       count(*) AS n,
                       avg(CASE WHEN jsonb_typeof(v.entry -> 'confidence') = 'number'
                                THEN (v.entry ->> 'confidence')::float8 END) AS mean,
                       coalesce(bool_or(v.entry ->> 'vote' = 'reject'
                                        AND jsonb_typeof(v.entry -> 'confidence') = 'number'
                                        AND (v.entry ->> 'confidence')::float8
                                            >= $7), false) AS vetoed
                  FROM (SELECT coalesce(p.votes, '{}'::jsonb)
                               || jsonb_build_object($2::text, jsonb_build_object(
                                      'vote', $3::text,
                                      'confidence', $4::float8,
                                      'voted_at', to_char(now() AT TIME ZONE 'utc',
                                                          'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')))
                               AS votes) AS nv
                 CROSS JOIN LATERAL jsonb_each(nv.votes) AS v(agent_id, entry)
                 GROUP BY nv.votes) AS t)
 WHERE p.id = $1 AND p.status = 'proposed'
RETURNING id, rule_id, proposer_agent_id, proposed_patterns, proposed_threshold,
          evolution_reasoning, trial_results, trial_confidence, votes, consensus_reached,
          status, inserted_at, updated_at
"""
_PROPOSAL_STATUS: Final = "SELECT status FROM rule_evolution_proposals WHERE id = $1"

_EXPIRE_STALE: Final = """
UPDATE rule_evolution_proposals
   SET status = 'expired', updated_at = (now() AT TIME ZONE 'utc')
 WHERE status = 'proposed' AND inserted_at < (now() AT TIME ZONE 'utc') - $1::interval
"""


class RuleExecutionsRepository(Repository[RuleExecution, RuleExecutionCreate, RuleExecutionUpdate]):
    """``atlas.rules.executions``: the time series of rule executions."""

    row_model = RuleExecution
    create_model = RuleExecutionCreate
    update_model = RuleExecutionUpdate


class RuleProposalsRepository(
    Repository[RuleEvolutionProposal, RuleEvolutionProposalCreate, RuleEvolutionProposalUpdate]
):
    """``atlas.rules.proposals``: proposed rule evolutions and their votes."""

    row_model = RuleEvolutionProposal
    create_model = RuleEvolutionProposalCreate
    update_model = RuleEvolutionProposalUpdate


def _stats(record: Any) -> RuleStats:
    with_outcome = int(record["with_outcome"])
    successes = int(record["successes"])
    decisions = {_decision(name): int(count) for name, count in sorted(record["decisions"].items())}
    return RuleStats(
        rule_id=record["rule_id"],
        executions=int(record["executions"]),
        with_outcome=with_outcome,
        successes=successes,
        success_rate=successes / with_outcome if with_outcome else None,
        mean_confidence=record["mean_confidence"],
        p95_execution_time_ms=record["p95_execution_time_ms"],
        decisions=decisions,
    )


def _decision(name: str) -> ExecutionDecision | str:
    try:
        return ExecutionDecision(name)
    except ValueError:
        return name  # written by another client (the Elixir app); kept as it is


def _since(since: datetime | timedelta | None) -> datetime | None:
    """Return the window's start as the naive UTC the column stores (None: no window)."""
    if since is None:
        return None
    if not isinstance(since, datetime | timedelta):
        raise InvalidInputError(
            f"since must be a datetime, a timedelta or None, got {type(since).__name__}"
        )
    if isinstance(since, timedelta):
        if since <= timedelta(0):
            raise InvalidInputError(f"a window must be positive, got {since}")
        try:
            since = datetime.now(UTC) - since
        except OverflowError:
            raise InvalidInputError(f"the window {since} reaches before year 1") from None
    if since.tzinfo is None:
        raise InvalidInputError("since must be timezone-aware")
    return since.astimezone(UTC).replace(tzinfo=None)


class RulesRepository(SearchableRepository[Rule, RuleCreate, RuleUpdate]):
    """Rules (searchable), with ``.executions`` and ``.proposals``."""

    row_model = Rule
    create_model = RuleCreate
    update_model = RuleUpdate

    def __init__(self, executor: Executor) -> None:
        super().__init__(executor)
        self.executions = RuleExecutionsRepository(executor)
        self.proposals = RuleProposalsRepository(executor)

    # -- executions ---------------------------------------------------------------------

    async def record_execution(
        self,
        rule_id: UUID,
        *,
        decision: ExecutionDecision,
        confidence: float,
        execution_time_ms: int,
        correlation_id: UUID | None = None,
        reasoning: str | None = None,
        context: dict[str, Any] | None = None,
        executed_at: datetime | None = None,
    ) -> RuleExecution:
        """Record one execution of a rule and return it.

        ``executed_at`` defaults to now (this process' clock, as for ``since`` windows) and
        ``correlation_id`` to a fresh UUID.
        """
        return await self.executions.insert(
            RuleExecutionCreate(
                rule_id=rule_id,
                correlation_id=correlation_id or uuid.uuid4(),
                confidence=confidence,
                decision=decision,
                reasoning=reasoning,
                execution_time_ms=execution_time_ms,
                context=context if context is not None else {},
                executed_at=executed_at or datetime.now(UTC),
            )
        )

    async def record_executions(
        self, rows: Sequence[RuleExecutionCreate | Mapping[str, Any]]
    ) -> int:
        """Record many executions atomically; return the count.

        A row is a ``RuleExecutionCreate`` or a mapping of its fields, in which
        ``executed_at`` defaults to now, ``correlation_id`` to a fresh UUID and
        ``outcome_recorded_at`` to now when an ``outcome`` is given.
        """
        check_items(rows, field="rows")
        now = datetime.now(UTC)
        items = [
            row if isinstance(row, RuleExecutionCreate) else self._execution_row(row, now)
            for row in rows
        ]
        return await self.executions.insert_many(items)

    @staticmethod
    def _execution_row(row: Mapping[str, Any], now: datetime) -> RuleExecutionCreate:
        if not isinstance(row, Mapping) or not all(isinstance(key, str) for key in row):
            raise InvalidInputError(
                "rows are RuleExecutionCreate or mappings of field name to value, "
                f"got {type(row).__name__}"
            )
        defaults: dict[str, Any] = {"executed_at": now, "correlation_id": uuid.uuid4()}
        if row.get("outcome") is not None:
            defaults["outcome_recorded_at"] = now
        return RuleExecutionCreate(**{**defaults, **row})

    async def record_outcome(self, execution_id: UUID, outcome: ExecutionOutcome) -> RuleExecution:
        """Set the outcome of an execution, stamping ``outcome_recorded_at``."""
        return await self.executions.update(
            execution_id,
            RuleExecutionUpdate(outcome=outcome, outcome_recorded_at=datetime.now(UTC)),
        )

    async def stats(self, rule_id: UUID, *, since: datetime | timedelta | None = None) -> RuleStats:
        """Return the statistics of one rule's executions since *since* (all when None).

        *since* is a moment (aware datetime) or a window ending now (``timedelta(days=7)``).
        Raise NotFoundError if there is no such rule.
        """
        rule_id = self._key(rule_id)
        start = _since(since)
        if start is None:
            record = await self._executor.fetchrow(_STATS_SQL[True, False], rule_id)
        else:
            record = await self._executor.fetchrow(_STATS_SQL[True, True], rule_id, start)
        if record is None:
            raise NotFoundError(f"no rules row with id = {rule_id!r}")
        return _stats(record)

    async def stats_all(
        self, *, since: datetime | timedelta | None = None
    ) -> dict[UUID, RuleStats]:
        """Return the statistics of every rule (zeros for rules without executions)."""
        start = _since(since)
        if start is None:
            records = await self._executor.fetch(_STATS_SQL[False, False])
        else:
            records = await self._executor.fetch(_STATS_SQL[False, True], start)
        return {record["rule_id"]: _stats(record) for record in records}

    # -- evolution proposals ------------------------------------------------------------

    async def propose(
        self,
        rule_id: UUID,
        proposer_agent_id: str,
        proposed_patterns: builtins.list[dict[str, Any]],
        evolution_reasoning: str,
        *,
        proposed_threshold: float | None = None,
    ) -> RuleEvolutionProposal:
        """Open a proposal to evolve a rule (status ``proposed``, no votes)."""
        return await self.proposals.insert(
            RuleEvolutionProposalCreate(
                rule_id=rule_id,
                proposer_agent_id=proposer_agent_id,
                proposed_patterns=proposed_patterns,
                evolution_reasoning=evolution_reasoning,
                proposed_threshold=proposed_threshold,
            )
        )

    async def vote(
        self, proposal_id: UUID, agent_id: str, vote: Vote, confidence: float
    ) -> VoteResult:
        """Record *agent_id*'s vote and apply the consensus rule (module docstring).

        One vote per agent: voting again replaces the agent's earlier vote. Raise
        StateConflictError if the proposal is no longer ``proposed``, NotFoundError if
        there is no such proposal.
        """
        try:
            vote = Vote(vote)
        except ValueError:
            raise InvalidInputError(f"vote must be one of {[v.value for v in Vote]}") from None
        if isinstance(confidence, bool) or not isinstance(confidence, int | float):
            raise InvalidInputError(f"confidence must be a number, got {type(confidence).__name__}")
        if not (isinstance(confidence, float) or abs(confidence) <= 1) or not (
            math.isfinite(confidence) and 0.0 <= confidence <= 1.0
        ):
            raise InvalidInputError(f"confidence must be within 0..1, got {confidence!r:.40}")
        proposal_id = self.proposals._key(proposal_id)
        check_text(agent_id, field="agent_id")
        if not agent_id or len(agent_id) > 255:
            raise InvalidInputError("agent_id must be 1..255 characters")
        record = await self._executor.fetchrow(
            _VOTE,
            proposal_id,
            agent_id,
            vote.value,
            float(confidence),
            CONSENSUS_MIN_VOTES,
            CONSENSUS_MIN_CONFIDENCE,
            STRONG_REJECTION_CONFIDENCE,
        )
        if record is None:
            status = await self._executor.fetchval(_PROPOSAL_STATUS, proposal_id)
            if status is None:
                raise NotFoundError(f"no rule_evolution_proposals row with id = {proposal_id!r}")
            raise StateConflictError(
                f"proposal {proposal_id} is {status}: voting is closed", state=status
            )
        proposal = RuleEvolutionProposal.from_record(record)
        status_after = proposal.status or ProposalStatus.PROPOSED
        return VoteResult(
            proposal=proposal,
            votes_count=len(proposal.votes or {}),
            # the WHERE saw 'proposed', so any other status is this call's doing
            consensus_changed=status_after != ProposalStatus.PROPOSED,
            status=status_after,
        )

    async def expire_stale(self, older_than: timedelta) -> int:
        """Move ``proposed`` proposals opened more than *older_than* ago to ``expired``."""
        if not isinstance(older_than, timedelta):
            raise InvalidInputError(
                f"older_than must be a timedelta, got {type(older_than).__name__}"
            )
        if older_than < timedelta(0):
            raise InvalidInputError(f"older_than must not be negative, got {older_than}")
        _since(older_than or timedelta.resolution)  # refuses a window reaching before year 1
        status = await self._executor.execute(_EXPIRE_STALE, older_than)
        return int(status.split()[-1])
