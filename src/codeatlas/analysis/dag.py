"""Cycle checks for graphs that must stay acyclic: Tarjan's SCC and an incremental order.

Pure algorithms over ``(source, target)`` pairs, with no database and no heavy imports, so
the data layer (``atlas.graph.add_edges``) loads them only when it checks a batch.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Sequence

__all__ = ["AcyclicGraph", "CycleGuard", "strong_components"]


def strong_components(edges: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Return node -> id of its strongly connected component (Tarjan, without recursion)."""
    out: dict[str, list[str]] = defaultdict(list)
    for source, target in edges:
        out[source].append(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    component: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = 0
    for root in list(out):
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(out[root]))]
        while work:
            node, targets = work[-1]
            for nxt in targets:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(out.get(nxt, ()))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component[member] = components
                        if member == node:
                            break
                    components += 1
    return component


class CycleGuard:
    """Checks a batch of edge insertions (and moves) against a stored graph for cycles.

    A cycle lies inside one strongly connected component of any graph containing it, so
    the components of (stored edges + every edge of the batch) bound where a cycle can
    form: an edge between two components is accepted at once, and only edges inside a
    component go through the incremental check. In code graphs those components are
    small (a few mutually importing modules), which makes a large batch cheap to check.
    """

    def __init__(self, stored: Sequence[tuple[str, str]], batch: Sequence[tuple[str, str]]) -> None:
        self._component = strong_components([*stored, *batch])
        self._graph = AcyclicGraph(edge for edge in stored if self._inside(*edge))

    def _inside(self, source: str, target: str) -> bool:
        component = self._component
        return source == target or component.get(source, -1) == component.get(target, -2)

    def add(self, source: str, target: str) -> bool:
        """Add the edge source -> target and return True, or return False if it closes a cycle."""
        return not self._inside(source, target) or self._graph.add(source, target)

    def remove(self, source: str, target: str) -> None:
        """Forget one edge source -> target."""
        if self._inside(source, target):
            self._graph.remove(source, target)


class AcyclicGraph:
    """A directed multigraph that refuses edges closing a cycle.

    Keeps a topological order of the nodes and repairs it locally on each insertion
    (Pearce and Kelly's dynamic topological sort), so checking a batch costs far less than a
    full reachability search per edge. If the stored graph already has a cycle (edges
    written around ``add_edges``), there is no order to keep and each insertion falls back
    to a plain reachability search.
    """

    def __init__(self, edges: Iterable[tuple[str, str]]) -> None:
        self._out: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._in: defaultdict[str, Counter[str]] = defaultdict(Counter)
        for source, target in edges:
            self._link(source, target)
        self._position: dict[str, int] | None = self._topological_order()
        self._first = 0
        self._last = len(self._position or ()) - 1

    def _link(self, source: str, target: str) -> None:
        self._out[source][target] += 1
        self._in[target][source] += 1

    def remove(self, source: str, target: str) -> None:
        """Forget one edge source -> target (a topological order stays valid)."""
        for table, key, other in ((self._out, source, target), (self._in, target, source)):
            counts = table[key]
            counts[other] -= 1
            if counts[other] <= 0:
                del counts[other]

    def _topological_order(self) -> dict[str, int] | None:
        nodes = set(self._out) | set(self._in)
        waiting = {node: sum(self._in[node].values()) for node in nodes}
        ready = deque(sorted(node for node, count in waiting.items() if count == 0))
        order: dict[str, int] = {}
        while ready:
            node = ready.popleft()
            order[node] = len(order)
            for target, count in self._out[node].items():
                waiting[target] -= count
                if waiting[target] == 0:
                    ready.append(target)
        return order if len(order) == len(nodes) else None

    def _reaches(self, start: str, goal: str) -> bool:
        seen = {start}
        stack = [start]
        while stack:
            for target in self._out[stack.pop()]:
                if target == goal:
                    return True
                if target not in seen:
                    seen.add(target)
                    stack.append(target)
        return False

    def add(self, source: str, target: str) -> bool:
        """Add the edge source -> target and return True, or return False if it closes a cycle."""
        if source == target:
            return False
        position = self._position
        if position is None:
            if self._reaches(target, source):
                return False
            self._link(source, target)
            return True
        # A new source can go first and a new target last without breaking the order.
        if source not in position:
            self._first -= 1
            position[source] = self._first
        if target not in position:
            self._last += 1
            position[target] = self._last
        upper, lower = position[source], position[target]
        if upper < lower:
            self._link(source, target)
            return True
        # Nodes reachable from target that sit before source: reaching source is a cycle.
        # Latest-first, so a path to source (if any) is usually found before the rest.
        forward: list[str] = []
        heap, seen = [(-lower, target)], {target}
        while heap:
            node = heapq.heappop(heap)[1]
            forward.append(node)
            for nxt in self._out[node]:
                if nxt == source:
                    return False
                if nxt not in seen and position[nxt] < upper:
                    seen.add(nxt)
                    heapq.heappush(heap, (-position[nxt], nxt))
        # Nodes reaching source that sit after target; they must all move before `forward`.
        backward, stack, seen = [], [source], {source}
        while stack:
            node = stack.pop()
            backward.append(node)
            for prev in self._in[node]:
                if prev not in seen and position[prev] > lower:
                    seen.add(prev)
                    stack.append(prev)
        backward.sort(key=position.__getitem__)
        forward.sort(key=position.__getitem__)
        slots = sorted(position[node] for node in (*backward, *forward))
        for slot, node in zip(slots, (*backward, *forward), strict=True):
            position[node] = slot
        self._link(source, target)
        return True
