"""Typed pydantic models of every codeatlas table: a row, a Create and (unless the table is
append-only) an Update model per table, plus the enums of the enum-like columns.

Each row model declares its table's facts once, in ``__table_spec__`` (see ``TableSpec``);
``TABLES`` lists the row models by table.
"""

# private aliases: every public name of this module is a model, an enum or a table fact
from collections.abc import Mapping as _Mapping
from types import MappingProxyType as _MappingProxyType
from typing import Final as _Final

from ._base import CodeAtlasModel, CreateModel, RecordLike, RowModel, UpdateModel, WriteModel
from ._table import VECTOR_OPCLASS, TableSpec, VectorIndex
from ._types import Vector768, Vector1536, validate_vector
from .cache import (
    SemanticCacheEntry,
    SemanticCacheEntryCreate,
    SemanticCacheEntryUpdate,
)
from .code import (
    CodeEmbedding,
    CodeEmbeddingCreate,
    CodeEmbeddingUpdate,
    CodeFile,
    CodeFileCreate,
    CodeFileUpdate,
    CodeLocation,
    CodeLocationCreate,
    CodeLocationUpdate,
)
from .codebases import (
    AnalysisStatus,
    CodebaseMetadata,
    CodebaseMetadataCreate,
    CodebaseMetadataUpdate,
    CodebaseRegistry,
    CodebaseRegistryCreate,
    CodebaseRegistryUpdate,
)
from .git import (
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
from .graph import (
    GraphEdge,
    GraphEdgeCreate,
    GraphEdgeUpdate,
    GraphNode,
    GraphNodeCreate,
    GraphNodeUpdate,
    GraphType,
    GraphTypeCreate,
    GraphTypeName,
    GraphTypeUpdate,
)
from .quality import (
    QualityFinding,
    QualityFindingCreate,
    QualityRun,
    QualityRunCreate,
    QualityRunUpdate,
    QualityTool,
    RunStatus,
    Severity,
)
from .rag import (
    RagDocument,
    RagDocumentCreate,
    RagDocumentUpdate,
    RagFeedback,
    RagFeedbackCreate,
    RagFeedbackUpdate,
    RagQuery,
    RagQueryCreate,
    RagQueryUpdate,
)
from .rules import (
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
from .snapshots import (
    CodebaseSnapshot,
    CodebaseSnapshotCreate,
)
from .technology import (
    TechnologyPattern,
    TechnologyPatternCreate,
    TechnologyPatternUpdate,
    TechnologyTemplate,
    TechnologyTemplateCreate,
    TechnologyTemplateUpdate,
    TechnologyType,
)
from .vector_search import (
    VectorSearch,
    VectorSearchCreate,
    VectorSearchUpdate,
    VectorSimilarityCache,
    VectorSimilarityCacheCreate,
    VectorSimilarityCacheUpdate,
)

#: table name -> its row model, for every table codeatlas maps, by name. Derived from the
#: models imported above, so a new table's model is listed as soon as it is exported.
TABLES: _Final[_Mapping[str, type[RowModel]]] = _MappingProxyType(
    {
        model.__table__: model
        for model in sorted(
            (
                value
                for value in list(globals().values())
                if isinstance(value, type) and issubclass(value, RowModel) and value is not RowModel
            ),
            key=lambda model: model.__table__,
        )
    }
)

__all__ = [
    "TABLES",
    "VECTOR_OPCLASS",
    "AnalysisStatus",
    "CodeAtlasModel",
    "CodeEmbedding",
    "CodeEmbeddingCreate",
    "CodeEmbeddingUpdate",
    "CodeFile",
    "CodeFileCreate",
    "CodeFileUpdate",
    "CodeLocation",
    "CodeLocationCreate",
    "CodeLocationUpdate",
    "CodebaseMetadata",
    "CodebaseMetadataCreate",
    "CodebaseMetadataUpdate",
    "CodebaseRegistry",
    "CodebaseRegistryCreate",
    "CodebaseRegistryUpdate",
    "CodebaseSnapshot",
    "CodebaseSnapshotCreate",
    "CreateModel",
    "ExecutionDecision",
    "ExecutionOutcome",
    "GitAgentSession",
    "GitAgentSessionCreate",
    "GitAgentSessionUpdate",
    "GitMergeHistory",
    "GitMergeHistoryCreate",
    "GitMergeHistoryUpdate",
    "GitPendingMerge",
    "GitPendingMergeCreate",
    "GitPendingMergeUpdate",
    "GraphEdge",
    "GraphEdgeCreate",
    "GraphEdgeUpdate",
    "GraphNode",
    "GraphNodeCreate",
    "GraphNodeUpdate",
    "GraphType",
    "GraphTypeCreate",
    "GraphTypeName",
    "GraphTypeUpdate",
    "MergeStatus",
    "ProposalStatus",
    "QualityFinding",
    "QualityFindingCreate",
    "QualityRun",
    "QualityRunCreate",
    "QualityRunUpdate",
    "QualityTool",
    "RagDocument",
    "RagDocumentCreate",
    "RagDocumentUpdate",
    "RagFeedback",
    "RagFeedbackCreate",
    "RagFeedbackUpdate",
    "RagQuery",
    "RagQueryCreate",
    "RagQueryUpdate",
    "RecordLike",
    "RowModel",
    "Rule",
    "RuleCreate",
    "RuleEvolutionProposal",
    "RuleEvolutionProposalCreate",
    "RuleEvolutionProposalUpdate",
    "RuleExecution",
    "RuleExecutionCreate",
    "RuleExecutionUpdate",
    "RuleUpdate",
    "RunStatus",
    "SemanticCacheEntry",
    "SemanticCacheEntryCreate",
    "SemanticCacheEntryUpdate",
    "SessionStatus",
    "Severity",
    "TableSpec",
    "TechnologyPattern",
    "TechnologyPatternCreate",
    "TechnologyPatternUpdate",
    "TechnologyTemplate",
    "TechnologyTemplateCreate",
    "TechnologyTemplateUpdate",
    "TechnologyType",
    "UpdateModel",
    "Vector768",
    "Vector1536",
    "VectorIndex",
    "VectorSearch",
    "VectorSearchCreate",
    "VectorSearchUpdate",
    "VectorSimilarityCache",
    "VectorSimilarityCacheCreate",
    "VectorSimilarityCacheUpdate",
    "Vote",
    "WriteModel",
    "validate_vector",
]
