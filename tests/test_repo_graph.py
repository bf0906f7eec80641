"""atlas.graph: bulk nodes and edges, DAG enforcement (also under concurrency), neighbours,
bounded traversal and PageRank, on a real database."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time

import numpy as np
import pytest

import codeatlas
from codeatlas.analysis.dag import AcyclicGraph, CycleGuard, strong_components
from codeatlas.analysis.pagerank import pagerank
from codeatlas.errors import (
    ConstraintViolationError,
    CycleError,
    ForeignKeyViolationError,
    InvalidInputError,
    NotFoundError,
)
from codeatlas.models import CodebaseMetadataCreate, GraphEdgeCreate, GraphNodeCreate
from codeatlas.repositories.graph import EdgeWriteResult

CB = "cb-graph"


def node(node_id: str, *, codebase: str = CB, file_path: str = "src/a.py") -> GraphNodeCreate:
    return GraphNodeCreate(
        codebase_id=codebase, node_id=node_id, node_type="function", name=node_id,
        file_path=file_path,
    )  # fmt: skip


def edge(
    source: str, target: str, *, edge_id: str | None = None, codebase: str = CB,
    edge_type: str = "calls", weight: float = 1.0,
) -> GraphEdgeCreate:  # fmt: skip
    return GraphEdgeCreate(
        codebase_id=codebase, edge_id=edge_id or f"{source}->{target}", from_node_id=source,
        to_node_id=target, edge_type=edge_type, weight=weight,
    )  # fmt: skip


def chain(*names: str, codebase: str = CB) -> list[GraphEdgeCreate]:
    return [edge(a, b, codebase=codebase) for a, b in itertools.pairwise(names)]


async def edge_ids(atlas: codeatlas.Atlas, codebase: str = CB) -> set[str]:
    records = await atlas.executor.fetch(
        "SELECT edge_id FROM graph_edges WHERE codebase_id = $1", codebase
    )
    return {r["edge_id"] for r in records}


# -- nodes ------------------------------------------------------------------------------------


async def test_add_nodes_bulk_upserts_thousands_with_vectors(atlas: codeatlas.Atlas) -> None:
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((3000, 1536)).astype(np.float32)
    nodes = [
        GraphNodeCreate(
            codebase_id=CB,
            node_id=f"n{i}",
            node_type="function",
            name=f"f{i}",
            file_path=f"src/m{i % 40}.py",
            line_number=i,
            vector_embedding=vectors[i],
        )
        for i in range(3000)
    ]
    started = time.perf_counter()
    assert await atlas.graph.add_nodes(iter(nodes)) == 3000
    elapsed = time.perf_counter() - started
    print(f"add_nodes: 3000 nodes x 1536-d in {elapsed:.3f}s")
    assert await atlas.graph.count({"codebase_id": CB}) == 3000
    stored = await atlas.executor.fetchrow(
        "SELECT id FROM graph_nodes WHERE codebase_id = $1 AND node_id = 'n1234'", CB
    )
    assert stored is not None
    row = await atlas.graph.get(stored["id"])
    assert row.vector_embedding is not None
    assert np.array_equal(row.vector_embedding, vectors[1234])  # bit-exact round trip

    # upsert on (codebase_id, node_id): same rows, new values, nothing duplicated
    renamed = [n.model_copy(update={"name": f"g{i}"}) for i, n in enumerate(nodes[:100])]
    assert await atlas.graph.add_nodes(renamed) == 100
    assert await atlas.graph.count({"codebase_id": CB}) == 3000
    again = await atlas.graph.get(stored["id"])
    assert again.name == "f1234"
    assert await atlas.graph.count({"codebase_id": CB, "name": "g7"}) == 1
    assert await atlas.graph.count({"codebase_id": CB, "name": "f7"}) == 0


@pytest.mark.parametrize("size", [10, 200])  # executemany and COPY paths
async def test_add_nodes_is_atomic(atlas: codeatlas.Atlas, size: int) -> None:
    nodes = [node(f"ok{i}") for i in range(size)]
    nodes[-1] = nodes[-1].model_copy(update={"name": None})  # NOT NULL, found by the server
    with pytest.raises(ConstraintViolationError):
        await atlas.graph.add_nodes(nodes)
    assert await atlas.graph.count({"codebase_id": CB}) == 0


# -- graph types ------------------------------------------------------------------------------


async def test_is_dag_reads_the_seed_descriptions(atlas: codeatlas.Atlas) -> None:
    assert await atlas.graph.types.is_dag("CallGraph") is True
    assert await atlas.graph.types.is_dag("ImportGraph") is True
    assert await atlas.graph.types.is_dag("DataFlowGraph") is True
    assert await atlas.graph.types.is_dag("SemanticGraph") is False
    with pytest.raises(NotFoundError):
        await atlas.graph.types.is_dag("NoSuchGraph")


# -- edges ------------------------------------------------------------------------------------


async def test_add_edges_stores_graph_type_in_metadata(atlas: codeatlas.Atlas) -> None:
    first = edge("a", "b")
    first.metadata = {"line": 3}
    result = await atlas.graph.add_edges([first, edge("b", "c")], graph_type="CallGraph")
    assert result.written == 2
    assert result.skipped == ()
    page = await atlas.graph.edges.list({"codebase_id": CB}, order_by="edge_id")
    assert [(e.edge_id, e.metadata) for e in page.items] == [
        ("a->b", {"line": 3, "graph_type": "CallGraph"}),
        ("b->c", {"graph_type": "CallGraph"}),
    ]
    assert first.metadata == {"line": 3}  # the caller's model is left alone


async def test_add_edges_rejects_unknown_graph_type_and_conflicting_metadata(
    atlas: codeatlas.Atlas,
) -> None:
    with pytest.raises(ForeignKeyViolationError, match="NoSuchGraph"):
        await atlas.graph.add_edges([edge("a", "b")], graph_type="NoSuchGraph")
    mislabelled = edge("a", "b")
    mislabelled.metadata = {"graph_type": "ImportGraph"}
    with pytest.raises(InvalidInputError, match="ImportGraph"):
        await atlas.graph.add_edges([mislabelled], graph_type="CallGraph")
    with pytest.raises(InvalidInputError):
        await atlas.graph.add_edges([edge("a", "b")], graph_type="CallGraph", on_cycle="ignore")  # type: ignore[arg-type]
    assert await edge_ids(atlas) == set()
    assert (await atlas.graph.add_edges([], graph_type="CallGraph")).written == 0


async def test_cycle_in_dag_type_raises_naming_the_edge_and_writes_nothing(
    atlas: codeatlas.Atlas,
) -> None:
    await atlas.graph.add_edges(chain("a", "b", "c"), graph_type="CallGraph")
    with pytest.raises(CycleError) as caught:
        await atlas.graph.add_edges(
            [edge("c", "d"), edge("d", "a"), edge("d", "e")], graph_type="CallGraph"
        )
    error = caught.value
    assert isinstance(error, codeatlas.errors.IntegrityError)
    assert (error.edge_id, error.from_node_id, error.to_node_id) == ("d->a", "d", "a")
    assert (error.codebase_id, error.graph_type) == (CB, "CallGraph")
    assert "d->a" in str(error)
    assert await edge_ids(atlas) == {"a->b", "b->c"}  # the batch rolled back as a whole


async def test_cycle_in_dag_type_is_skipped_and_reported(atlas: codeatlas.Atlas) -> None:
    await atlas.graph.add_edges(chain("a", "b", "c"), graph_type="ImportGraph")
    batch = [edge("c", "d"), edge("d", "a"), edge("d", "e"), edge("e", "e"), edge("e", "b")]
    result = await atlas.graph.add_edges(batch, graph_type="ImportGraph", on_cycle="skip")
    assert result.written == 2
    assert [e.edge_id for e in result.skipped] == ["d->a", "e->e", "e->b"]
    assert await edge_ids(atlas) == {"a->b", "b->c", "c->d", "d->e"}


async def test_cycles_are_checked_per_graph_type_and_codebase(atlas: codeatlas.Atlas) -> None:
    await atlas.graph.add_edges([edge("a", "b")], graph_type="CallGraph")
    # the reverse edge in another DAG type, or in another codebase, closes no cycle
    await atlas.graph.add_edges([edge("b", "a", edge_id="imp")], graph_type="ImportGraph")
    await atlas.graph.add_edges([edge("b", "a", codebase="other")], graph_type="CallGraph")
    # a general graph type accepts cycles, self-loops included
    result = await atlas.graph.add_edges(
        [edge("x", "y", edge_id="s1"), edge("y", "x", edge_id="s2"), edge("x", "x", edge_id="s3")],
        graph_type="SemanticGraph",
    )
    assert result == EdgeWriteResult(3)
    assert await edge_ids(atlas) == {"a->b", "imp", "s1", "s2", "s3"}


async def test_upserting_an_edge_id_moves_the_edge(atlas: codeatlas.Atlas) -> None:
    await atlas.graph.add_edges(
        [edge("a", "b", edge_id="e1"), edge("b", "c", edge_id="e2")], graph_type="CallGraph"
    )
    # e1 becomes c -> a: with a -> b gone, a -> ... -> c does not exist, so no cycle
    result = await atlas.graph.add_edges([edge("c", "a", edge_id="e1")], graph_type="CallGraph")
    assert result.written == 1
    page = await atlas.graph.edges.list({"codebase_id": CB}, order_by="edge_id")
    assert [(e.edge_id, e.from_node_id, e.to_node_id) for e in page.items] == [
        ("e1", "c", "a"),
        ("e2", "b", "c"),
    ]
    # now a -> b would close b -> c -> a -> b
    with pytest.raises(CycleError):
        await atlas.graph.add_edges([edge("a", "b", edge_id="e3")], graph_type="CallGraph")
    # e2 moves to a -> b (fine once b -> c is gone); a -> c would close c -> a -> c
    result = await atlas.graph.add_edges(
        [edge("a", "b", edge_id="e2"), edge("a", "c", edge_id="e4")],
        graph_type="CallGraph",
        on_cycle="skip",
    )
    assert (result.written, [e.edge_id for e in result.skipped]) == (1, ["e4"])
    # a refused move keeps the old edge in the check: e1 stays c -> a, so a -> c is refused
    result = await atlas.graph.add_edges(
        [edge("b", "a", edge_id="e1"), edge("a", "c", edge_id="e5")],
        graph_type="CallGraph",
        on_cycle="skip",
    )
    assert (result.written, [e.edge_id for e in result.skipped]) == (0, ["e1", "e5"])
    assert (await atlas.graph.edges.list({"edge_id": "e1"})).items[0].from_node_id == "c"


async def test_large_dag_batch_matches_a_brute_force_check(atlas: codeatlas.Atlas) -> None:
    rng = random.Random(11)
    names = [f"m{i}" for i in range(400)]
    batch = []
    for i in range(3000):
        a, b = rng.sample(names, 2)
        batch.append(edge(a, b, edge_id=f"e{i}", edge_type="imports"))
    expected_skipped = _brute_force_skips([(e.from_node_id, e.to_node_id) for e in batch])
    started = time.perf_counter()
    result = await atlas.graph.add_edges(batch, graph_type="ImportGraph", on_cycle="skip")
    elapsed = time.perf_counter() - started
    print(f"add_edges: 3000 edges, {len(result.skipped)} cycle edges skipped, {elapsed:.3f}s")
    assert [e.edge_id for e in result.skipped] == [f"e{i}" for i in expected_skipped]
    assert result.written == 3000 - len(expected_skipped)
    assert 0 < len(expected_skipped) < 3000


def _brute_force_skips(pairs: list[tuple[str, str]]) -> list[int]:
    out: dict[str, set[str]] = {}
    skipped = []
    for index, (a, b) in enumerate(pairs):
        if a == b or _reaches(out, b, a):
            skipped.append(index)
        else:
            out.setdefault(a, set()).add(b)
    return skipped


def _reaches(out: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, stack = {start}, [start]
    while stack:
        current = stack.pop()
        if current == goal:
            return True
        for nxt in out.get(current, ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return False


@pytest.mark.parametrize("guarded", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_cycle_checks_agree_with_brute_force_under_removals(seed: int, guarded: bool) -> None:
    rng = random.Random(seed)
    names = [f"v{i}" for i in range(25)]
    existing = [(a, b) for a, b in (rng.sample(names, 2) for _ in range(20))]
    # seeds 0-2 start from a DAG (dynamic order), 3-5 may start cyclic (reachability fallback)
    if seed < 3:
        existing = [(a, b) if a < b else (b, a) for a, b in existing]
    # a sparse graph has small components, as code graphs do: the guard's fast path matters
    ops = [
        ("remove", "", "") if rng.random() < 0.25 else ("add", rng.choice(names), rng.choice(names))
        for _ in range(300 if seed % 2 else 60)
    ]
    graph: AcyclicGraph | CycleGuard = (
        CycleGuard(existing, [(a, b) for kind, a, b in ops if kind == "add"])
        if guarded
        else AcyclicGraph(existing)
    )
    edges = list(existing)
    for kind, a, b in ops:
        if kind == "remove":
            if edges:
                graph.remove(*edges.pop(rng.randrange(len(edges))))
            continue
        out: dict[str, set[str]] = {}
        for x, y in edges:
            out.setdefault(x, set()).add(y)
        closes = a == b or _reaches(out, b, a)
        assert graph.add(a, b) is (not closes)
        if not closes:
            edges.append((a, b))


def test_strong_components() -> None:
    component = strong_components(
        [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e"), ("e", "d"), ("f", "f")]
    )
    assert component["a"] == component["b"] == component["c"]
    assert component["d"] == component["e"] != component["a"]
    assert len({component["f"], component["a"], component["d"]}) == 3
    assert strong_components([]) == {}


async def test_concurrent_writers_cannot_close_a_cycle_together(atlas: codeatlas.Atlas) -> None:
    for round_ in range(6):
        codebase = f"race-{round_}"
        names = [f"n{i}" for i in range(10)]
        first = chain(*names[:6], codebase=codebase)  # n0 -> ... -> n5
        second = chain(*names[5:], "n0", codebase=codebase)  # n5 -> ... -> n9 -> n0
        mode = "raise" if round_ % 2 == 0 else "skip"
        outcomes = await asyncio.gather(
            atlas.graph.add_edges(first, graph_type="CallGraph", on_cycle=mode),
            atlas.graph.add_edges(second, graph_type="CallGraph", on_cycle=mode),
            return_exceptions=True,
        )
        if mode == "raise":
            failed = [o for o in outcomes if isinstance(o, CycleError)]
            assert len(failed) == 1, outcomes
            assert sum(1 for o in outcomes if isinstance(o, codeatlas.errors.CodeAtlasError)) == 1
        else:
            skipped = [e.edge_id for o in outcomes for e in o.skipped]  # type: ignore[union-attr]
            assert len(skipped) == 1, outcomes
        stored = await atlas.executor.fetch(
            "SELECT from_node_id, to_node_id FROM graph_edges WHERE codebase_id = $1", codebase
        )
        out: dict[str, set[str]] = {}
        for r in stored:
            out.setdefault(r["from_node_id"], set()).add(r["to_node_id"])
        assert not any(_reaches(out, b, a) for a, targets in out.items() for b in targets)


async def test_a_writer_waits_for_an_open_writer_of_the_same_graph(atlas: codeatlas.Atlas) -> None:
    async with atlas.transaction() as tx:
        await tx.graph.add_edges(chain("a", "b", "c"), graph_type="DataFlowGraph")
        other_type = await atlas.graph.add_edges([edge("c", "a")], graph_type="SemanticGraph")
        assert other_type.written == 1  # another graph type does not wait
        waiting = asyncio.create_task(
            atlas.graph.add_edges([edge("c", "a", edge_id="back")], graph_type="DataFlowGraph")
        )
        await asyncio.sleep(0.3)
        assert not waiting.done()  # queued on the advisory lock until the commit
    with pytest.raises(CycleError):
        await waiting  # and then it sees a -> b -> c


# -- neighbours -------------------------------------------------------------------------------


async def test_neighbours_by_direction_and_edge_type(atlas: codeatlas.Atlas) -> None:
    await atlas.graph.add_nodes([node(n) for n in ("a", "b", "c", "d")])
    await atlas.graph.add_edges(
        [
            edge("a", "b", edge_type="calls", weight=2.0),
            edge("a", "c", edge_type="reads"),
            edge("d", "a", edge_type="calls"),
            edge("a", "ghost", edge_type="calls"),  # no graph_nodes row for ghost
            edge("a", "z", codebase="elsewhere"),
        ],
        graph_type="SemanticGraph",
    )
    out = await atlas.graph.neighbours(CB, "a")
    assert [(n.edge.edge_id, n.direction) for n in out] == [
        ("a->b", "out"),
        ("a->ghost", "out"),
        ("a->c", "out"),
    ]
    assert out[0].node is not None and out[0].node.node_id == "b"
    assert out[0].edge.weight == 2.0 and out[0].node.vector_embedding is None
    assert out[1].node is None
    incoming = await atlas.graph.neighbours(CB, "a", direction="in")
    assert [(n.edge.edge_id, n.node.node_id if n.node else None) for n in incoming] == [
        ("d->a", "d")
    ]
    both = await atlas.graph.neighbours(CB, "a", direction="both", edge_types=["calls"])
    assert [(n.edge.edge_id, n.direction) for n in both] == [
        ("a->b", "out"),
        ("a->ghost", "out"),
        ("d->a", "in"),
    ]
    assert await atlas.graph.neighbours(CB, "a", edge_types=[]) == []
    assert await atlas.graph.neighbours(CB, "nobody") == []
    with pytest.raises(InvalidInputError):
        await atlas.graph.neighbours(CB, "a", direction="up")  # type: ignore[arg-type]


# -- traversal --------------------------------------------------------------------------------


async def test_traverse_is_cycle_safe_shortest_and_depth_bounded(atlas: codeatlas.Atlas) -> None:
    # a -> b -> c -> a (a cycle), c -> d -> e -> f, a -> d (a shortcut), b -> x (other type)
    await atlas.graph.add_nodes([node(n) for n in "abcdef"])
    await atlas.graph.add_edges(
        [*chain("a", "b", "c", "a"), *chain("c", "d", "e", "f"), edge("a", "d")],
        graph_type="SemanticGraph",
    )
    await atlas.graph.add_edges([edge("b", "x", edge_type="reads")], graph_type="SemanticGraph")
    steps = await atlas.graph.traverse(CB, "a", max_depth=10)
    assert [(s.node_id, s.depth, s.path) for s in steps] == [
        ("b", 1, ["a", "b"]),
        ("d", 1, ["a", "d"]),
        ("c", 2, ["a", "b", "c"]),
        ("e", 2, ["a", "d", "e"]),
        ("x", 2, ["a", "b", "x"]),
        ("f", 3, ["a", "d", "e", "f"]),
    ]
    assert steps[0].node is not None and steps[0].node.name == "b"
    assert steps[4].node is None  # x has no node row

    shallow = await atlas.graph.traverse(CB, "a", max_depth=1)
    assert [s.node_id for s in shallow] == ["b", "d"]
    calls_only = await atlas.graph.traverse(CB, "a", edge_types=["calls"], max_depth=10)
    assert "x" not in {s.node_id for s in calls_only}
    limited = await atlas.graph.traverse(CB, "a", max_depth=10, limit=3)
    assert [s.node_id for s in limited] == ["b", "d", "c"]

    upstream = await atlas.graph.traverse(CB, "d", direction="in", max_depth=2)
    assert [(s.node_id, s.depth, s.path) for s in upstream] == [
        ("a", 1, ["d", "a"]),
        ("c", 1, ["d", "c"]),
        ("b", 2, ["d", "c", "b"]),
    ]
    around = await atlas.graph.traverse(CB, "f", direction="both", max_depth=2)
    assert [(s.node_id, s.depth) for s in around] == [("e", 1), ("d", 2)]


async def test_traverse_on_a_dense_cyclic_graph_stays_bounded(atlas: codeatlas.Atlas) -> None:
    # a complete digraph on 30 nodes has ~10^12 simple paths of length 8; BFS rows stay small
    names = [f"k{i}" for i in range(30)]
    await atlas.graph.add_edges(
        [edge(a, b) for a in names for b in names if a != b], graph_type="SemanticGraph"
    )
    started = time.perf_counter()
    steps = await atlas.graph.traverse(CB, "k0", max_depth=8)
    assert time.perf_counter() - started < 5
    assert {s.node_id for s in steps} == set(names[1:])
    assert all(s.depth == 1 for s in steps)


async def test_traverse_validates_its_bounds(atlas: codeatlas.Atlas) -> None:
    for kwargs in ({"max_depth": 0}, {"limit": 0}, {"max_depth": True}, {"direction": "x"}):
        with pytest.raises(InvalidInputError):
            await atlas.graph.traverse(CB, "a", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        await atlas.graph.traverse(CB, "a", edge_types="calls")


# -- PageRank ---------------------------------------------------------------------------------


async def test_compute_pagerank_stores_node_and_file_scores(atlas: codeatlas.Atlas) -> None:
    files = {"a": "src/x.py", "b": "src/x.py", "c": "src/y.py", "d": "src/z.py"}
    await atlas.graph.add_nodes([node(n, file_path=f) for n, f in files.items()])
    await atlas.graph.add_nodes([node("a", codebase="other")])
    await atlas.graph.add_edges(
        [edge("a", "c"), edge("b", "c"), edge("c", "d", weight=3.0), edge("c", "ghost")],
        graph_type="CallGraph",
    )
    await atlas.graph.add_edges([edge("d", "a", edge_id="sem")], graph_type="SemanticGraph")
    for path in ("src/x.py", "src/y.py", "src/w.py"):
        await atlas.codebases.insert(
            CodebaseMetadataCreate(codebase_id=CB, codebase_path="/repo", path=path)
        )
    await atlas.codebases.insert(
        CodebaseMetadataCreate(codebase_id="other", codebase_path="/o", path="src/x.py")
    )

    scores = await atlas.graph.compute_pagerank(CB)
    every_edge = [("a", "c", 1.0), ("b", "c", 1.0), ("c", "d", 3.0), ("d", "a", 1.0)]
    assert scores == pytest.approx(pagerank(list("abcd"), every_edge))
    assert math.isclose(sum(scores.values()), 1.0)

    stored = await atlas.executor.fetch(
        "SELECT node_id, metadata FROM graph_nodes WHERE codebase_id = $1", CB
    )
    assert {r["node_id"]: r["metadata"]["pagerank"] for r in stored} == pytest.approx(scores)
    assert (
        await atlas.executor.fetchval(
            "SELECT metadata FROM graph_nodes WHERE codebase_id = 'other'"
        )
        == {}
    )

    by_path = {
        r["path"]: r["pagerank_score"]
        for r in await atlas.executor.fetch(
            "SELECT path, pagerank_score FROM codebase_metadata WHERE codebase_id = $1", CB
        )
    }
    assert by_path == pytest.approx(
        {"src/x.py": scores["a"] + scores["b"], "src/y.py": scores["c"], "src/w.py": 0.0}
    )
    assert (
        await atlas.executor.fetchval(
            "SELECT pagerank_score FROM codebase_metadata WHERE codebase_id = 'other'"
        )
        == 0.0
    )

    # one graph type only, without touching the files
    calls = await atlas.graph.compute_pagerank(
        CB, graph_type="CallGraph", damping=0.5, update_files=False
    )
    assert calls == pytest.approx(pagerank(list("abcd"), every_edge[:3], damping=0.5))
    assert calls != pytest.approx(scores)
    assert await atlas.executor.fetchval(
        "SELECT pagerank_score FROM codebase_metadata WHERE codebase_id = $1 AND path = 'src/y.py'",
        CB,
    ) == pytest.approx(scores["c"])
    assert await atlas.executor.fetchval(
        "SELECT (metadata->>'pagerank')::float8 FROM graph_nodes "
        "WHERE codebase_id = $1 AND node_id = 'c'",
        CB,
    ) == pytest.approx(calls["c"])

    assert await atlas.graph.compute_pagerank("empty") == {}
    with pytest.raises(NotFoundError):
        await atlas.graph.compute_pagerank(CB, graph_type="NoSuchGraph")
