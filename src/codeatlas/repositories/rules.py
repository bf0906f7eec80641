"""``atlas.rules``: rules (768-d), their executions and evolution proposals."""

from __future__ import annotations

from .._db import Executor
from ..models import (
    Rule,
    RuleCreate,
    RuleEvolutionProposal,
    RuleEvolutionProposalCreate,
    RuleEvolutionProposalUpdate,
    RuleExecution,
    RuleExecutionCreate,
    RuleExecutionUpdate,
    RuleUpdate,
)
from ..search import SearchableRepository
from ._base import Repository

__all__ = ["RuleExecutionsRepository", "RuleProposalsRepository", "RulesRepository"]


class RuleExecutionsRepository(Repository[RuleExecution, RuleExecutionCreate, RuleExecutionUpdate]):
    """``atlas.rules.executions``: the time series of rule executions."""

    table = "rule_executions"
    row_model = RuleExecution
    create_model = RuleExecutionCreate
    update_model = RuleExecutionUpdate


class RuleProposalsRepository(
    Repository[RuleEvolutionProposal, RuleEvolutionProposalCreate, RuleEvolutionProposalUpdate]
):
    """``atlas.rules.proposals``: proposed rule evolutions and their votes."""

    table = "rule_evolution_proposals"
    row_model = RuleEvolutionProposal
    create_model = RuleEvolutionProposalCreate
    update_model = RuleEvolutionProposalUpdate


class RulesRepository(SearchableRepository[Rule, RuleCreate, RuleUpdate]):
    """Rules (searchable), with ``.executions`` and ``.proposals``."""

    table = "rules"
    row_model = Rule
    create_model = RuleCreate
    update_model = RuleUpdate
    vector_column = "embedding"
    dimensions = 768
    vector_index = "idx_rules_embedding_vector"

    def __init__(self, executor: Executor) -> None:
        super().__init__(executor)
        self.executions = RuleExecutionsRepository(executor)
        self.proposals = RuleProposalsRepository(executor)
