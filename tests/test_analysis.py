"""Source analysis: metrics, Python structure, chunks, graphs, PageRank and the stdlib scan."""

from __future__ import annotations

import pytest

from codeatlas.analysis import pagerank
from codeatlas.errors import InvalidInputError

# -- PageRank ---------------------------------------------------------------------------------


def test_pagerank_cycle_is_uniform() -> None:
    scores = pagerank(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a")])
    assert scores == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, abs=1e-9)


def test_pagerank_star_points_to_the_hub() -> None:
    leaves = [f"leaf{i}" for i in range(4)]
    scores = pagerank(["hub", *leaves], [(leaf, "hub") for leaf in leaves])
    # The hub is dangling, so it spreads its score evenly; solved by hand:
    # leaf = (0.15 + 0.85 * hub) / 5 and hub = leaf + 0.85 * 4 * leaf, so hub = 4.4 leaf.
    leaf = 1 / 8.4
    assert scores["hub"] == pytest.approx(4.4 * leaf, abs=1e-8)
    for name in leaves:
        assert scores[name] == pytest.approx(leaf, abs=1e-8)
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-12)


def test_pagerank_dangling_nodes_and_isolated_nodes() -> None:
    scores = pagerank(["a", "b", "c", "d"], [("a", "b"), ("a", "c")])
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-12)
    assert scores["b"] == pytest.approx(scores["c"])
    assert scores["a"] == pytest.approx(scores["d"])
    assert scores["b"] > scores["a"]


def test_pagerank_no_edges_is_uniform_and_empty_is_empty() -> None:
    assert pagerank(["x", "y"], []) == {"x": 0.5, "y": 0.5}
    assert pagerank([], [("a", "b")]) == {}


def test_pagerank_weights_parallel_edges_and_unknown_endpoints() -> None:
    weighted = pagerank(["a", "b", "c"], [("a", "b", 3.0), ("a", "c", 1.0), ("b", "a"), ("c", "a")])
    doubled = pagerank(
        ["a", "b", "c"],
        [("a", "b"), ("a", "b"), ("a", "b"), ("a", "c"), ("b", "a"), ("c", "a"), ("c", "zz")],
    )
    assert weighted == pytest.approx(doubled, abs=1e-12)
    assert weighted["b"] > weighted["c"]


def test_pagerank_matches_a_dense_solution() -> None:
    nodes = ["a", "b", "c", "d", "e"]
    edges = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e"), ("e", "a"), ("b", "e")]
    scores = pagerank(nodes, edges, tol=1e-14, max_iter=1000)
    n, d = len(nodes), 0.85
    out = {s: sum(1 for e in edges if e[0] == s) for s in nodes}
    # x = (1 - d)/n + d * M x, checked residual-wise (no linear algebra library needed).
    for node in nodes:
        incoming = sum(scores[s] / out[s] for s, t in edges if t == node)
        assert scores[node] == pytest.approx((1 - d) / n + d * incoming, abs=1e-10)


def test_pagerank_rejects_bad_parameters() -> None:
    with pytest.raises(InvalidInputError):
        pagerank(["a"], [], damping=1.5)
    with pytest.raises(InvalidInputError):
        pagerank(["a"], [], max_iter=0)
    with pytest.raises(InvalidInputError):
        pagerank(["a", "b"], [("a", "b", -1.0)])
