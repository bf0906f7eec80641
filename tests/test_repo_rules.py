"""atlas.rules: executions, statistics, proposals, voting and consensus, expiry, cascades."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import codeatlas
from codeatlas import Settings
from codeatlas.errors import (
    ForeignKeyViolationError,
    InvalidInputError,
    NotFoundError,
    StateConflictError,
)
from codeatlas.models import (
    ExecutionDecision,
    ExecutionOutcome,
    ProposalStatus,
    Rule,
    RuleCreate,
    RuleEvolutionProposal,
    RuleEvolutionProposalUpdate,
    RuleExecutionCreate,
    Vote,
)
from codeatlas.repositories.rules import RuleStats, VoteResult

A = ExecutionDecision.AUTONOMOUS
C = ExecutionDecision.COLLABORATIVE
E = ExecutionDecision.ESCALATED


def same_stats(left: RuleStats, right: RuleStats) -> bool:
    """Equal statistics; the mean may differ in the last bit (summation order varies)."""
    if left.mean_confidence is None or right.mean_confidence is None:
        return left == right
    return left.mean_confidence == pytest.approx(right.mean_confidence) and (
        dataclasses.replace(left, mean_confidence=right.mean_confidence) == right
    )


async def new_rule(atlas: codeatlas.Atlas, name: str = "rule") -> Rule:
    return await atlas.rules.insert(RuleCreate(name=name))


async def new_proposal(atlas: codeatlas.Atlas, rule: Rule | None = None) -> RuleEvolutionProposal:
    rule = rule or await new_rule(atlas)
    return await atlas.rules.propose(rule.id, "proposer", [{"pattern": "x"}], "it helps")


async def test_record_execution_and_outcome(atlas: codeatlas.Atlas) -> None:
    rule = await new_rule(atlas)
    before = datetime.now(UTC)
    execution = await atlas.rules.record_execution(
        rule.id, decision=C, confidence=0.75, execution_time_ms=12, context={"file": "a.py"}
    )
    assert execution.rule_id == rule.id
    assert execution.decision is C
    assert execution.context == {"file": "a.py"}
    assert execution.outcome is None and execution.outcome_recorded_at is None
    assert before - timedelta(seconds=1) <= execution.executed_at <= datetime.now(UTC)
    assert isinstance(execution.correlation_id, uuid.UUID)

    recorded = await atlas.rules.record_outcome(execution.id, ExecutionOutcome.FAILURE)
    assert recorded.outcome is ExecutionOutcome.FAILURE
    assert recorded.outcome_recorded_at is not None
    assert recorded.outcome_recorded_at >= execution.executed_at
    assert (await atlas.rules.executions.get(execution.id)).outcome is ExecutionOutcome.FAILURE

    with pytest.raises(NotFoundError):
        await atlas.rules.record_outcome(uuid.uuid4(), ExecutionOutcome.SUCCESS)
    with pytest.raises(ForeignKeyViolationError):
        await atlas.rules.record_execution(
            uuid.uuid4(), decision=A, confidence=0.5, execution_time_ms=1
        )


async def test_record_executions_in_bulk(atlas: codeatlas.Atlas) -> None:
    rule = await new_rule(atlas)
    correlation = uuid.uuid4()
    old = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    rows: list[RuleExecutionCreate | dict[str, Any]] = [
        {"rule_id": rule.id, "decision": A, "confidence": i / 100, "execution_time_ms": i}
        for i in range(99)
    ]
    rows.append(
        RuleExecutionCreate(
            rule_id=rule.id,
            correlation_id=correlation,
            confidence=1.0,
            decision=E,
            execution_time_ms=5,
            outcome=ExecutionOutcome.SUCCESS,
            executed_at=old,
        )
    )
    rows.append(
        {"rule_id": rule.id, "decision": C, "confidence": 0.5, "execution_time_ms": 7,
         "outcome": ExecutionOutcome.UNKNOWN}
    )  # fmt: skip
    assert await atlas.rules.record_executions(rows) == 101  # above the COPY threshold
    assert await atlas.rules.executions.count({"rule_id": rule.id}) == 101
    given = (await atlas.rules.executions.list({"correlation_id": correlation})).items
    assert len(given) == 1 and given[0].executed_at == old
    unknown = (await atlas.rules.executions.list({"outcome": ExecutionOutcome.UNKNOWN})).items
    assert len(unknown) == 1 and unknown[0].outcome_recorded_at is not None
    assert await atlas.rules.record_executions([]) == 0
    with pytest.raises(InvalidInputError):
        await atlas.rules.record_executions([{"rule_id": rule.id, "decision": "guess"}])


async def test_stats_match_hand_computed_figures(atlas: codeatlas.Atlas) -> None:
    rule, other, idle = [await new_rule(atlas, name) for name in ("r", "other", "idle")]
    now = datetime.now(UTC)
    recent = [  # (decision, confidence, execution_time_ms, outcome)
        (A, 0.5, 10, ExecutionOutcome.SUCCESS),
        (A, 0.6, 20, ExecutionOutcome.SUCCESS),
        (C, 0.7, 30, ExecutionOutcome.FAILURE),
        (C, 0.8, 40, ExecutionOutcome.UNKNOWN),
        (E, 0.9, 100, None),
    ]
    rows: list[RuleExecutionCreate | dict[str, Any]] = [
        {"rule_id": rule.id, "decision": d, "confidence": c, "execution_time_ms": t,
         "outcome": o, "executed_at": now - timedelta(hours=i)}
        for i, (d, c, t, o) in enumerate(recent)
    ]  # fmt: skip
    # ten days old: outside a 7-day window
    rows += [
        {"rule_id": rule.id, "decision": E, "confidence": 0.2, "execution_time_ms": 1000,
         "outcome": ExecutionOutcome.FAILURE, "executed_at": now - timedelta(days=10)},
        {"rule_id": other.id, "decision": A, "confidence": 1.0, "execution_time_ms": 1,
         "outcome": ExecutionOutcome.SUCCESS},
    ]  # fmt: skip
    await atlas.rules.record_executions(rows)

    week = await atlas.rules.stats(rule.id, since=timedelta(days=7))
    assert week.rule_id == rule.id
    assert week.executions == 5
    assert week.with_outcome == 4
    assert week.successes == 2
    assert week.success_rate == pytest.approx(0.5)
    assert week.mean_confidence == pytest.approx(0.7)
    # percentile_cont: rank 0.95 * (5 - 1) = 3.8 between 40 and 100 -> 40 + 0.8 * 60
    assert week.p95_execution_time_ms == pytest.approx(88.0)
    assert week.decisions == {A: 2, C: 2, E: 1}
    assert same_stats(await atlas.rules.stats(rule.id, since=now - timedelta(days=7)), week)

    everything = await atlas.rules.stats(rule.id)
    assert everything.executions == 6
    assert everything.with_outcome == 5
    assert everything.success_rate == pytest.approx(2 / 5)
    assert everything.mean_confidence == pytest.approx(3.7 / 6)
    # ranks 0..5 over [10, 20, 30, 40, 100, 1000]: 0.95 * 5 = 4.75 -> 100 + 0.75 * 900
    assert everything.p95_execution_time_ms == pytest.approx(775.0)
    assert everything.decisions == {A: 2, C: 2, E: 2}

    quiet = await atlas.rules.stats(idle.id)
    assert (quiet.executions, quiet.with_outcome, quiet.successes) == (0, 0, 0)
    assert quiet.success_rate is None and quiet.mean_confidence is None
    assert quiet.p95_execution_time_ms is None and quiet.decisions == {}

    all_week = await atlas.rules.stats_all(since=timedelta(days=7))
    assert set(all_week) == {rule.id, other.id, idle.id}
    assert same_stats(all_week[rule.id], week)
    assert all_week[other.id].success_rate == 1.0 and all_week[other.id].executions == 1
    assert all_week[idle.id].executions == 0
    assert same_stats((await atlas.rules.stats_all())[rule.id], everything)

    with pytest.raises(NotFoundError):
        await atlas.rules.stats(uuid.uuid4())
    with pytest.raises(InvalidInputError):
        await atlas.rules.stats(rule.id, since=datetime(2025, 1, 1))  # naive


async def test_propose_round_trips_jsonb_array(atlas: codeatlas.Atlas) -> None:
    rule = await new_rule(atlas)
    patterns: list[dict[str, Any]] = [
        {"regex": r"^def \w+\(", "weight": 0.5, "tags": ["python", "défini"]},
        {"nested": {"any": [1, 2.5, None, True, {"deep": "ok"}]}},
        {},
    ]
    proposal = await atlas.rules.propose(
        rule.id, "agent-7", patterns, "tighter match", proposed_threshold=0.8
    )
    assert proposal.proposed_patterns == patterns
    assert proposal.status is ProposalStatus.PROPOSED
    assert proposal.votes == {} and proposal.consensus_reached is False
    assert proposal.proposed_threshold == 0.8
    stored = await atlas.rules.proposals.get(proposal.id)
    assert stored.proposed_patterns == patterns
    # jsonb[] on the server: one jsonb element per pattern
    assert (
        await atlas.executor.fetchval(
            "SELECT array_length(proposed_patterns, 1) FROM rule_evolution_proposals WHERE id = $1",
            proposal.id,
        )
        == 3
    )
    empty = await atlas.rules.propose(rule.id, "agent-7", [], "nothing yet")
    assert (await atlas.rules.proposals.get(empty.id)).proposed_patterns == []
    with pytest.raises(ForeignKeyViolationError):
        await atlas.rules.propose(uuid.uuid4(), "agent-7", patterns, "no rule")


async def test_vote_replaces_the_agents_earlier_vote(atlas: codeatlas.Atlas) -> None:
    proposal = await new_proposal(atlas)
    vote = atlas.rules.vote
    first = await vote(proposal.id, "a1", Vote.APPROVE, 0.9)
    assert (first.votes_count, first.consensus_changed, first.status) == (1, False, "proposed")
    await vote(proposal.id, "a2", Vote.APPROVE, 0.9)
    again = await vote(proposal.id, "a1", Vote.REJECT, 0.5)  # replaces a1's approval
    assert again.votes_count == 2
    entry = again.proposal.votes and again.proposal.votes["a1"]
    assert entry and entry["vote"] == "reject" and entry["confidence"] == 0.5
    voted_at = datetime.fromisoformat(entry["voted_at"])
    assert abs(voted_at - datetime.now(UTC)) < timedelta(minutes=1)

    # three votes, mean (0.5 + 0.9 + 0.95) / 3 = 0.78: no consensus yet
    third = await vote(proposal.id, "a3", Vote.APPROVE, 0.95)
    assert (third.votes_count, third.consensus_changed) == (3, False)
    # a1 changes its mind: mean (1.0 + 0.9 + 0.95) / 3 = 0.95 > 0.85, no veto
    decisive = await vote(proposal.id, "a1", Vote.APPROVE, 1.0)
    assert decisive.consensus_changed is True
    assert decisive.status is ProposalStatus.APPROVED
    assert decisive.proposal.consensus_reached is True
    assert decisive.votes_count == 3

    with pytest.raises(StateConflictError) as closed:
        await vote(proposal.id, "a4", Vote.APPROVE, 1.0)
    assert closed.value.state == "approved"
    stored = await atlas.rules.proposals.get(proposal.id)
    assert stored.votes is not None and set(stored.votes) == {"a1", "a2", "a3"}


@pytest.mark.parametrize(
    ("votes", "status", "reached"),
    [
        # a strong rejection waits for the third vote, then rejects
        ([(Vote.REJECT, 0.7), (Vote.APPROVE, 1.0)], "proposed", False),
        ([(Vote.REJECT, 0.7), (Vote.APPROVE, 1.0), (Vote.APPROVE, 1.0)], "rejected", False),
        # a reject below 0.7 is no veto: mean (0.69 + 2) / 3 = 0.897
        ([(Vote.REJECT, 0.69), (Vote.APPROVE, 1.0), (Vote.APPROVE, 1.0)], "approved", True),
        # the mean must be above 0.85, not equal to it
        ([(Vote.APPROVE, 0.85)] * 3, "proposed", False),
        ([(Vote.APPROVE, 0.85)] * 3 + [(Vote.APPROVE, 0.9)], "approved", True),
        # two approvals are not enough, however confident
        ([(Vote.APPROVE, 1.0)] * 2, "proposed", False),
    ],
)
async def test_consensus_rule(
    atlas: codeatlas.Atlas, votes: list[tuple[Vote, float]], status: str, reached: bool
) -> None:
    proposal = await new_proposal(atlas)
    results = [
        await atlas.rules.vote(proposal.id, f"agent-{i}", vote, confidence)
        for i, (vote, confidence) in enumerate(votes)
    ]
    assert results[-1].status == status
    assert results[-1].proposal.consensus_reached is reached
    # only the last vote can have moved it (the earlier prefixes are covered by other cases)
    assert [r.consensus_changed for r in results[:-1]] == [False] * (len(results) - 1)
    assert results[-1].consensus_changed is (status != "proposed")


async def test_vote_rejects_bad_input(atlas: codeatlas.Atlas) -> None:
    proposal = await new_proposal(atlas)
    for confidence in (1.5, -0.1, float("nan")):
        with pytest.raises(InvalidInputError):
            await atlas.rules.vote(proposal.id, "a1", Vote.APPROVE, confidence)
    with pytest.raises(InvalidInputError):
        await atlas.rules.vote(proposal.id, "a1", "maybe", 0.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        await atlas.rules.vote(proposal.id, "", Vote.APPROVE, 0.5)
    with pytest.raises(NotFoundError):
        await atlas.rules.vote(uuid.uuid4(), "a1", Vote.APPROVE, 0.5)
    assert (await atlas.rules.proposals.get(proposal.id)).votes == {}


async def _vote_all(
    atlas: codeatlas.Atlas, proposal_id: uuid.UUID, agents: range, confidence: float
) -> list[VoteResult | StateConflictError]:
    async def one(agent: int) -> VoteResult | StateConflictError:
        try:
            return await atlas.rules.vote(proposal_id, f"agent-{agent}", Vote.APPROVE, confidence)
        except StateConflictError as exc:
            return exc

    return await asyncio.gather(*(one(agent) for agent in agents))


async def test_fifty_concurrent_voters_lose_no_vote(migrated_dsn: str) -> None:
    settings = Settings(pool_min_size=10, pool_max_size=10)
    async with codeatlas.connect(migrated_dsn, migrate=False, settings=settings) as atlas:
        proposal = await new_proposal(atlas)
        # round 1: 50 lukewarm votes (mean 0.5) can never reach consensus
        first = await _vote_all(atlas, proposal.id, range(50), 0.5)
        accepted = [r for r in first if isinstance(r, VoteResult)]
        assert len(accepted) == 50
        # each vote saw every earlier one: the counts are 1..50, once each
        assert sorted(r.votes_count for r in accepted) == list(range(1, 51))
        assert not any(r.consensus_changed for r in accepted)
        stored = await atlas.rules.proposals.get(proposal.id)
        assert stored.votes is not None and len(stored.votes) == 50

        # round 2: every agent re-votes with confidence 1.0. The mean passes 0.85 when the
        # 36th re-vote lands (36 * 1.0 + 14 * 0.5 = 43 > 42.5); later ones find it closed.
        second = await _vote_all(atlas, proposal.id, range(50), 1.0)
        winners = [r for r in second if isinstance(r, VoteResult)]
        refused = [r for r in second if isinstance(r, StateConflictError)]
        assert len(winners) == 36 and len(refused) == 14
        assert sum(r.consensus_changed for r in winners) == 1
        assert all(r.state == "approved" for r in refused)
        final = await atlas.rules.proposals.get(proposal.id)
        assert final.status is ProposalStatus.APPROVED and final.consensus_reached is True
        assert final.votes is not None and len(final.votes) == 50
        confident = {agent for agent, entry in final.votes.items() if entry["confidence"] == 1.0}
        # exactly the accepted re-votes are stored; the refused agents keep their first vote
        assert confident == {
            f"agent-{i}" for i, r in enumerate(second) if isinstance(r, VoteResult)
        }


async def test_concurrent_votes_reach_consensus_exactly_once(migrated_dsn: str) -> None:
    settings = Settings(pool_min_size=10, pool_max_size=10)
    async with codeatlas.connect(migrated_dsn, migrate=False, settings=settings) as atlas:
        proposal = await new_proposal(atlas)
        results = await _vote_all(atlas, proposal.id, range(50), 0.95)
        accepted = [r for r in results if isinstance(r, VoteResult)]
        # confident approvals: the third vote approves, the other 47 find the vote closed
        assert sorted(r.votes_count for r in accepted) == [1, 2, 3]
        changed = [r for r in accepted if r.consensus_changed]
        assert len(changed) == 1 and changed[0].votes_count == 3
        stored = await atlas.rules.proposals.get(proposal.id)
        assert stored.status is ProposalStatus.APPROVED
        assert stored.votes is not None
        assert set(stored.votes) == {
            f"agent-{i}" for i, r in enumerate(results) if isinstance(r, VoteResult)
        }


async def test_expire_stale(atlas: codeatlas.Atlas) -> None:
    rule = await new_rule(atlas)
    old, fresh, old_approved = [await new_proposal(atlas, rule) for _ in range(3)]
    await atlas.rules.proposals.update(
        old_approved.id, RuleEvolutionProposalUpdate(status=ProposalStatus.APPROVED)
    )
    await atlas.executor.execute(
        "UPDATE rule_evolution_proposals SET inserted_at = inserted_at - interval '2 days' "
        "WHERE id = ANY($1)",
        [old.id, old_approved.id],
    )
    assert await atlas.rules.expire_stale(timedelta(days=1)) == 1
    assert (await atlas.rules.proposals.get(old.id)).status is ProposalStatus.EXPIRED
    assert (await atlas.rules.proposals.get(fresh.id)).status is ProposalStatus.PROPOSED
    assert (await atlas.rules.proposals.get(old_approved.id)).status is ProposalStatus.APPROVED
    assert await atlas.rules.expire_stale(timedelta(days=1)) == 0
    with pytest.raises(StateConflictError) as closed:
        await atlas.rules.vote(old.id, "late", Vote.APPROVE, 1.0)
    assert closed.value.state == "expired"
    assert await atlas.rules.expire_stale(timedelta(0)) == 1  # everything still proposed
    assert (await atlas.rules.proposals.get(fresh.id)).status is ProposalStatus.EXPIRED


async def test_deleting_a_rule_removes_its_executions_and_proposals(
    atlas: codeatlas.Atlas,
) -> None:
    doomed, kept = await new_rule(atlas, "doomed"), await new_rule(atlas, "kept")
    for rule in (doomed, kept):
        await atlas.rules.record_executions(
            [{"rule_id": rule.id, "decision": A, "confidence": 0.5, "execution_time_ms": 3}] * 4
        )
        await new_proposal(atlas, rule)
    assert await atlas.rules.delete(doomed.id) is True
    assert await atlas.rules.executions.count({"rule_id": doomed.id}) == 0
    assert await atlas.rules.proposals.count({"rule_id": doomed.id}) == 0
    assert await atlas.rules.executions.count({"rule_id": kept.id}) == 4
    assert await atlas.rules.proposals.count({"rule_id": kept.id}) == 1
