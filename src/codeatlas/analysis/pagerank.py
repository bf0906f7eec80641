"""PageRank by power iteration, in plain Python (shared by the analysis and graph code)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from ..errors import InvalidInputError

__all__ = ["pagerank"]


def pagerank(
    node_ids: Sequence[str],
    edges: Iterable[tuple[str, str]] | Iterable[tuple[str, str, float]],
    *,
    damping: float = 0.85,
    tol: float = 1e-9,
    max_iter: int = 100,
) -> dict[str, float]:
    """Return the PageRank of every node in *node_ids*; the scores sum to 1.

    *edges* are ``(source, target)`` or ``(source, target, weight)``; parallel edges add up,
    edges with an endpoint outside *node_ids* and zero-weight edges are ignored. A node
    without outgoing edges (dangling) spreads its score over all nodes, as does the
    ``1 - damping`` teleport. Iteration stops when the L1 change is below ``len(node_ids) *
    tol``, or after *max_iter* rounds with the scores reached so far.
    """
    if not 0.0 <= damping <= 1.0:
        raise InvalidInputError(f"damping must be within [0, 1], got {damping!r}")
    if max_iter < 1:
        raise InvalidInputError(f"max_iter must be at least 1, got {max_iter!r}")
    index: dict[str, int] = {}
    for node in node_ids:
        index.setdefault(node, len(index))
    n = len(index)
    if n == 0:
        return {}

    weights: dict[tuple[int, int], float] = {}
    for edge in edges:
        source, target = index.get(edge[0]), index.get(edge[1])
        weight = float(edge[2]) if len(edge) > 2 else 1.0
        if not math.isfinite(weight) or weight < 0.0:
            raise InvalidInputError(f"edge weights must be finite and >= 0, got {weight!r}")
        if source is None or target is None or weight == 0.0:
            continue
        weights[source, target] = weights.get((source, target), 0.0) + weight
    out_weight = [0.0] * n
    for (source, _), weight in weights.items():
        out_weight[source] += weight
    links = [(s, t, w / out_weight[s]) for (s, t), w in weights.items()]
    dangling = [i for i in range(n) if out_weight[i] == 0.0]

    rank = [1.0 / n] * n
    for _ in range(max_iter):
        spread = (1.0 - damping + damping * sum(rank[i] for i in dangling)) / n
        new = [spread] * n
        for source, target, share in links:
            new[target] += damping * rank[source] * share
        change = sum(abs(a - b) for a, b in zip(new, rank, strict=True))
        rank = new
        if change < n * tol:
            break
    total = sum(rank)
    return {node: rank[i] / total for node, i in index.items()}
